"""Two paths to the root LUN, booted with the product image (dracut + 95pyiscsi) to the lab real root.

tgtd serves ONE LUN at two portals (two ports of 127.0.0.1, 10.0.2.2 from inside QEMU). Two boots only:

- systemd flavour from iPXE's multipath `sanhook` (both URIs in one sanhook; iPXE writes one iBFT target per
  path): the boot logs in to both paths, both sessions reach the real root, iscsid adopts both, and both node
  records are the root's (`onboot`).
- sh flavour from two `netroot=` where the first portal is down (nothing listens on it): the boot goes on
  through the second path; the down path costs its login bound and one console line.

There is no multipathd in this image: the root file system is mounted from ONE of the path disks (the one its
UUID link names), the other path's disk is the same LUN unused. The Debian dm-multipath root is another test.

The real root's phase below (rootimage's `before_iscsid`) marks what it was handed (`paths`), and wraps its
`poweroff` so that the adopt-only run first waits, bounded, until iscsid has adopted EVERY session (`sessions`).
"""

from __future__ import annotations

import re

import pytest
from test_boot_root import leaked, report

from harness import bootvm, rootimage
from harness.console import ExitReason
from harness.http import GUEST_HOST

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

LOGIN_BOUND = 10  # rd.pyiscsi.timeout.login: what a down path may cost
SLACK = 20.0  # guest seconds (TCG) for the good path's login and disk, the handover and the marks around them

# runs in the real root after `rootstate`, before iscsid; `mark`, `now` and ADOPT_BOUND are the init script's.
# `fail` powers off at once (the wrapped poweroff below waits only on the way out of a good run).
PATHS_PHASE = r"""
rootdev=$(readlink -f "$(awk '$2 == "/" {print $1}' /proc/mounts | tail -n 1)")
disks=$(ls /sys/block | grep '^sd' | tr '\n' ' ')
mark paths "root=$rootdev disks=${disks}sessions=$(ls /sys/class/iscsi_session | grep -c session)"
fail() { mark realroot-fail "$*"; sync; /bin/busybox poweroff -f; sleep 10; }
poweroff() {
    want=$(ls /sys/class/iscsi_session | grep -c session)
    end=$(($(now) + ADOPT_BOUND))
    while :; do
        all=$(iscsiadm -m session -P 1 2>&1)
        adopted=$(echo "$all" | grep -c 'Internal iscsid Session State: NO CHANGE')
        up=$(echo "$all" | grep -c 'iSCSI Connection State: LOGGED IN')
        [ "$adopted" -ge "$want" ] && [ "$up" -ge "$want" ] && break
        [ "$(now)" -ge $end ] && break
        sleep 0.5
    done
    portals=$(echo "$all" | grep 'Current Portal:' | sed 's/.*Current Portal: *//; s/,.*//' | sort | tr '\n' ' ')
    mark sessions "want=$want adopted=$adopted loggedin=$up portals=$portals"
    sync
    /bin/busybox poweroff "$@"
}
"""


@pytest.fixture(scope="session")
def paths_root_image():
    return rootimage.build(before_iscsid=PATHS_PHASE)


def portal(port: int) -> str:
    return f"{GUEST_HOST}:{port}"


def login_portals(result: bootvm.BootResult) -> list[str]:
    """The portal of each `login` mark (`<target> <address>:<port> session <sid>`)."""
    return [m.detail.split()[1] for m in result.console.markers if m.name == "login"]


def assert_adopted_root(result: bootvm.BootResult, sessions: int) -> dict[str, str]:
    """The real root ran, iscsid adopted all `sessions`, the root file system is one of the path disks, no secret
    leaked, it ended by itself. Returns the `sessions` mark's fields."""
    console = result.console
    names = [m.name for m in console.markers]
    assert "realroot-fail" not in names and "adopted" in names, console.summary()
    assert console.reason is ExitReason.POWEROFF, console.summary()
    paths = console.marker("paths").detail
    root = re.search(r"root=(\S+)", paths)
    assert root and root.group(1).startswith("/dev/sd"), paths  # no multipathd here: one path's disk
    assert f"sessions={sessions}" in paths, paths
    fields = dict(word.split("=", 1) for word in console.marker("sessions").detail.split() if "=" in word)
    assert fields["want"] == fields["adopted"] == fields["loggedin"] == str(sessions), console.marker("sessions")
    assert leaked(console.log(), bootvm.SECRET, bootvm.RSECRET) == []
    return fields


def test_ibft_two_paths_systemd_both_sessions_adopted(pinned_kernel, systemd_image, paths_root_image):
    """iPXE's `sanhook uri1 uri2` for one LUN: two iBFT targets, two logins, two root sessions and node records."""
    spec = bootvm.Boot("ibft-two-paths", "rd.iscsi.firmware=1 root=UUID={uuid} pyiscsi.test=adopt", ipxe=True,
                       paths=2)  # fmt: skip
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, paths_root_image)
    console = result.console
    both = sorted(portal(p) for p in result.extra["ports"])
    assert len(both) == 2 and "pyiscsi-ipxe: sanhooked" in console.log(), console.summary()
    assert sorted(login_portals(result)) == both, console.summary()
    assert console.has("multipath") and "2 of 2 paths up" in console.marker("multipath").detail, console.summary()
    assert "2 session(s)" in console.marker("booted").detail
    state = console.marker("rootstate").detail
    # the handover left the real root both node records, each the root's (onboot) and 0600
    assert "nodes=2 " in state and "startup=node.startup=onboot,node.startup=onboot," in state, state
    assert "mode0600=2" in state, state
    assert_adopted_root(result, sessions=2)
    adopted_portals = console.marker("sessions").detail.split("portals=", 1)[1].split()
    assert sorted(adopted_portals) == both, console.marker("sessions")
    multipath = console.marker("multipath")
    print(f"{report(result)}; multipath={multipath.uptime:.1f} ({multipath.detail})")


def test_netroot_first_path_down_sh_boots_through_the_second(pinned_kernel, sh_image, paths_root_image):
    """Two netroot= for the one LUN, the first portal refusing connections: one warning line, then the real root."""
    cmd = (
        "netroot=iscsi:{host}::{downport}:{lun}:{iqn} netroot=iscsi:{host}::{port}:{lun}:{iqn} ip=dhcp "
        f"root=UUID={{uuid}} rd.pyiscsi.timeout.login={LOGIN_BOUND} pyiscsi.test=adopt"
    )
    spec = bootvm.Boot("netroot-path-down-sh", cmd)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, sh_image, paths_root_image)
    console = result.console
    down, up = portal(result.extra["downport"]), portal(result.port)
    assert login_portals(result) == [up], console.summary()
    named = [line for line in console.log().splitlines() if "pyiscsi boot:" in line and down in line]
    assert len(named) == 1, f"lines naming {down}: {named}; {console.summary()}"
    cause = named[0].split(down, 1)[1]
    assert "'login'" in cause and "connection refused" in cause, named[0]  # its bound ran out, and why
    assert "1 of 2 paths up" in console.marker("multipath").detail, console.summary()
    state = console.marker("rootstate").detail
    assert "startup=node.startup=onboot," in state and "mode0600=" in state, state
    assert_adopted_root(result, sessions=1)
    # the down path cost its login bound, not more: the boot was done within it (plus slack) after the address
    took = console.marker("booted").uptime - console.marker("address").uptime
    assert took <= LOGIN_BOUND + SLACK, f"{took:.1f}s from address to booted; {console.summary()}"
    print(f"{report(result)}; address->booted {took:.1f}s; {named[0].split('pyiscsi boot:', 1)[1].strip()}")
