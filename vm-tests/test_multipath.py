"""A multipath root on a real Debian 12 system (issue 15): one LUN at two portals, two NICs, dm-multipath over both.

The root is harness.multipath's variant (the networkd root plus multipath-tools and dracut's multipath module, its
initrd made by the kernel package's postinst with the root's own dracut). tgtd on 127.0.0.1 serves the root disk
as one LUN at two ports; the guest reaches them as 10.0.2.2:<port 1> through NIC 1 and 10.0.3.2:<port 2> through
NIC 2 (two QEMU user networks), with `ip=ens2:dhcp ip=ens3:dhcp` and one `netroot=` per portal. One boot does it
all (CI time):

a. multi-user with nothing concerning failed; the root is a dm-multipath map with 2 active paths, one session per
   path, both node records `onboot`;
b. phase `agent`, iscsid held back (`pyiscsi.test.hold_iscsid`, harness.multipath's drop-in), so pyiscsi's
   recovery agent owns the sessions: the guest writes fsync'ed 1 MiB files with checksums, 10 s in the host pulls
   NIC 2's link (QMP `set_link`), the writes go on over path 1 (the longest gap between two completed writes is
   the path-loss-to-I/O-again time), 30 s later the link returns and the agent logs the path in again: dm shows 2
   active paths within RECOVER_BOUND;
c. phase `iscsid`: the check starts iscsid (its pyiscsi drop-in stops the agent first), which adopts both
   sessions; the same cut and return, recovered by iscsid;
d. every checksum reads back after dropping the page cache, no I/O error on the dm device or the file system
   (errors on the sdX paths are expected), and a clean power-off.

A second test boots a fresh copy of the disk with portal 2 on a port where nothing listens: the boot goes on over
path 1, one console line names the dead path, and the dm map has one path.

No replacement timeout is set on the kernel line: with multipathd in the image a multi-path LUN's sessions get
the short one (boot.paths) by themselves, and the `paths` mark checks it. Timings print with `-s`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import bootvm, debroot, multipath, realboot
from harness.console import ExitReason

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools() or multipath.require()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

DEB_ENV = "PYISCSI_REALROOT_DEB"  # as test_realroot: a .deb to test instead of `make deb` of this checkout
HOLD = f"{multipath.HOLD_ISCSID}=1"
# guest seconds: the longest pause between two completed writes. A write caught on the cut path waits until dm fails
# the path: the nop-out (5 s + 5 s), then the replacement timeout (5 s); the bound leaves room for the SCSI layer and
# a loaded CI. Under TCG on 2026-12-02 the writes paused at most 1.1 s (agent) and 0.7 s (iscsid), and dm failed the
# cut path 15.1 s and 11.9 s after the cut
IO_AGAIN_BOUND = 45.0
POWEROFF_BOUND = 60.0
CONCERNING = ("iscsi", "network", "multipath", "fsck", "remount", "mount", "sysroot")


@pytest.fixture(scope="module")
def mpath_root():
    given = os.environ.get(DEB_ENV)
    deb = Path(given).resolve() if given else debroot.make_deb()
    root = multipath.build(deb)
    print(f"root multipath: {root.info['seconds']} (initrd {root.info['initrd_bytes'] / 1e6:.1f} MB)")
    assert "multipath" in root.info["initrd_modules"], root.info["initrd_modules"]
    assert "pyiscsi" in root.info["initrd_modules"], root.info["initrd_modules"]
    listing = (root.directory / "lsinitrd.txt").read_text()
    for item in (*multipath.MPATH_RULES, *multipath.MPATH_PLUGINS, "etc/multipath.conf", multipath.SOCKET_DROPIN_PATH):
        assert item in listing, f"{item}: not in the initramfs the root's dracut made"
    return root


def marks(booted: realboot.Booted) -> list[tuple[str, dict[str, str]]]:
    return [(m.name, realboot.details(m)) for m in booted.console.markers]


def assert_multipath_root(booted: realboot.Booted, paths: int) -> dict[str, str]:
    """(a) multi-user, the root on a dm map of `paths` active paths, one session and one `onboot` record each."""
    c = booted.console
    assert booted.detail("multiuser").get("state") in ("running", "degraded"), c.summary()
    failed = booted.detail("failed").get("units", "none")
    bad = [u for u in failed.split(",") if u != "none" and any(w.lower() in u.lower() for w in CONCERNING)]
    assert bad == [], f"failed units {failed}; {c.summary()}"
    root = booted.detail("rootdev")
    assert root.get("dm", "").startswith("dm-") and root.get("dmuuid", "").startswith("mpath-"), c.marker("rootdev")
    assert len(root.get("slaves", "").split(",")) == paths, c.marker("rootdev")
    state = booted.detail("paths")  # the first `paths` mark: phase=boot
    assert state.get("phase") == "boot", c.marker("paths")
    assert state.get("active") == state.get("total") == str(paths), c.marker("paths")
    assert state.get("sessions") == str(paths), c.marker("paths")
    assert state.get("startup") == ",".join(["onboot"] * paths), c.marker("paths")
    # dm-multipath moves I/O only once the kernel fails it: the sessions of a LUN the plan gives two paths get a
    # short timeout (with one path down at boot too: dm's no_path_retry then queues the map's I/O instead)
    assert state.get("recovery_tmo") == ",".join(["5"] * paths), c.marker("paths")
    return state


def phase_problems(booted: realboot.Booted) -> list[str]:
    """(b), (c): what went wrong in either phase (both are reported, not only the first)."""
    problems = []
    for name in ("agent", "iscsid"):
        phase = multipath.phase_figures(name, marks(booted))
        print(f"mpath {name}: {phase.writes} writes, longest pause between two of them {phase.max_gap}s; "
              f"dm failed the cut path {phase.lost_after_cut}s after the cut; both paths active again "
              f"{'never' if phase.recovered_after is None else f'{phase.recovered_after}s'} after the link "
              "returned")  # fmt: skip
        if phase.writes == 0 or phase.failed != 0:
            problems.append(f"{name}: {phase.writes} writes, {phase.failed} failed")
        if phase.lost_after_cut is None:
            problems.append(f"{name}: dm never failed the cut path")
        if phase.max_gap is None or phase.max_gap >= IO_AGAIN_BOUND:
            problems.append(f"{name}: I/O again after {phase.max_gap}s (bound {IO_AGAIN_BOUND}s)")
        if phase.recovered_after is None:
            problems.append(f"{name}: the path did not come back within {multipath.RECOVER_BOUND}s of the link")
    return problems


def test_multipath_root_loses_and_recovers_a_path_under_writes(mpath_root):
    with multipath.MultipathLab(mpath_root) as lab:
        guest = realboot.Guest("mpath", ipxe=False, data=False, extra=HOLD)
        booted = lab.boot(guest)
    c = booted.console
    print(f"mpath: ports {lab.ports}; qmp {booted.extra['qmp']}; {booted.wall:.0f}s wall, {c.reason.value}")
    state = assert_multipath_root(booted, 2)
    assert state.get("agents") == "1" and state.get("iscsid") != "active", c.marker("paths")
    assert len(booted.extra["qmp"]) == 4 and all("{}" in said for said in booted.extra["qmp"]), booted.extra["qmp"]
    adopted = booted.detail("adopted")
    assert adopted.get("iscsid") == "active" and adopted.get("nochange") == "2", c.marker("adopted")
    assert adopted.get("agents") == "0", c.marker("adopted")
    problems = phase_problems(booted)
    assert problems == [], f"{problems}; {c.summary()}"
    verify = booted.detail("verify")
    assert verify.get("bad") == "0" and int(verify.get("sums", "0")) > 0, c.marker("verify")
    errors = booted.detail("errors")
    assert errors.get("dmerr") == "0", c.marker("errors")
    assert c.reason is ExitReason.POWEROFF, c.summary()
    final = booted.detail("final")
    assert final.get("root") in ("ro", "unmounted"), c.marker("final")
    start, end = booted.uptime("shutdown"), booted.uptime("final")
    assert start is not None and end is not None and end - start < POWEROFF_BOUND, c.summary()
    print(f"mpath: multi-user at {booted.uptime('multiuser'):.1f}s, power-off {end - start:.1f}s (guest)")


def test_a_path_down_at_boot_costs_a_line_not_the_boot(mpath_root):
    """Portal 2 on a port where nothing listens: the boot goes on over path 1, one line names the dead path."""
    with multipath.MultipathLab(mpath_root) as lab:
        dead = lab.free_port()
        guest = realboot.Guest("mpath-dead", ipxe=False, data=False, extra="pyiscsi.test.phases=none")
        booted = lab.boot(guest, ports=(lab.ports[0], dead))
    c = booted.console
    print(f"mpath-dead: multi-user at {booted.uptime('multiuser')}; {booted.wall:.0f}s wall, {c.reason.value}")
    named = [line.strip() for line in c.log().splitlines() if f"10.0.3.2:{dead}" in line and "check:" not in line]
    print("mpath-dead: " + "\n  ".join(named))
    assert named, f"no console line names the dead path 10.0.3.2:{dead}; {c.summary()}"
    assert_multipath_root(booted, 1)
    assert booted.detail("errors").get("dmerr") == "0", c.marker("errors")
    assert c.reason is ExitReason.POWEROFF, c.summary()
