"""The product end to end: a diskless VM boots through dracut + 95pyiscsi to its real root on a local tgtd.

Each boot uses the initramfs `make initramfs` builds (harness.initramfs, cached by content) and the real root
of harness.rootimage, whose /sbin/init starts Debian's iscsid, checks that it adopted our session, and (in the
full scenarios) waits while the host restarts tgtd, then checks that iscsid recovered the session. Failing
boots must end by themselves (dracut's emergency path with rd.emergency=poweroff) with the cause on the console.

Each test prints its guest uptimes; `-s` shows them. Images are built once per session (module fixtures).
"""

from __future__ import annotations

import re

import pytest

from harness import bootvm, initramfs, rootimage
from harness.console import ExitReason
from harness.ipxe import StaticNet
from tests.support.tgtd import ipv6_loopback_available

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

NETROOT = "netroot=iscsi:{host}::{port}:{lun}:{iqn}"
TIMELINE = ("start", "address", "login", "disk", "booted", "realroot", "iscsid", "adopted")


@pytest.fixture(scope="session")
def root_image():
    return rootimage.build()


@pytest.fixture(scope="session")
def systemd_image(pinned_kernel):
    return initramfs.build(pinned_kernel.release, pinned_kernel.modules, "systemd").path


@pytest.fixture(scope="session")
def sh_image(pinned_kernel):
    return initramfs.build(pinned_kernel.release, pinned_kernel.modules, "sh").path


def leaked(log: str, *secrets: str) -> list[str]:
    """Console lines showing a secret, but for the kernel command line itself (where the user put it)."""
    return [
        line
        for line in log.splitlines()
        if any(s in line for s in secrets) and "Kernel command line:" not in line and not line.startswith("# harness:")
    ]


def report(result: bootvm.BootResult) -> str:
    shown = " ".join(f"{m.name}={m.uptime:.1f}" for m in result.console.markers if m.name in (*TIMELINE, "recovered"))
    line = f"{result.boot.name}: {shown} ({result.console.wall_seconds:.0f}s wall)"
    print(line)
    return line


def assert_reached_root(result: bootvm.BootResult, until: str = "adopted") -> None:
    console = result.console
    names = [m.name for m in console.markers]
    assert "realroot-fail" not in names, console.summary()
    assert until in names, console.summary()
    assert console.reason is ExitReason.POWEROFF, console.summary()
    # a CHAP adoption once stalled 2 minutes (OpenSSL reading its configuration from the stopped root disk) until
    # replacement_timeout failed the root's I/O; the guest's own bound (rootimage.ADOPT_BOUND) stays below that
    took = console.marker("adopted").uptime - console.marker("iscsid").uptime
    assert took < rootimage.ADOPT_BOUND, f"iscsid took {took:.0f}s to adopt the session; {console.summary()}"
    root = console.marker("realroot")
    assert root is not None and root.uptime > console.marker("booted").uptime
    state = console.marker("rootstate").detail
    # pyiscsi handover left the real root node records (0600, the root onboot) and kept the network
    assert "booted=/dev/sd" in state, state
    assert "startup=node.startup=onboot," in state and "mode0600=1" in state, state
    assert re.search(r"keepnet=[1-9]", state), state
    assert leaked(console.log(), bootvm.SECRET, bootvm.RSECRET) == []
    report(result)


def assert_failed_with(result: bootvm.BootResult, cause: str) -> None:
    console = result.console
    assert console.reason is ExitReason.POWEROFF, console.summary()  # ended by itself: bounded
    assert not console.has("realroot"), console.summary()
    assert console.has("failed"), console.summary()
    lines = [line for line in console.log().splitlines() if "pyiscsi boot:" in line and cause in line]
    assert lines, f"no line naming {cause!r}; {console.summary()}"
    assert leaked(console.log(), bootvm.SECRET, "wrongsecret99") == []
    print(f"{result.boot.name}: failed at {console.marker('failed').uptime:.1f}s, powered off after "
          f"{console.kernel_uptime}s: {lines[0].split('pyiscsi boot:', 1)[1].strip()}")  # fmt: skip


# --- boots to the real root, priority order ------------------------------------------------------------------


def test_ibft_from_ipxe_sanhook_dhcp_systemd_adopted_and_recovered(pinned_kernel, systemd_image, root_image):
    spec = bootvm.Boot("ibft-dhcp", "rd.iscsi.firmware=1 root=UUID={uuid}", ipxe=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result, until="recovered")
    assert result.restarted
    assert "pyiscsi-ipxe: sanhooked" in result.console.log()


def test_netroot_dhcp_sh_flavour_adopted_and_recovered(pinned_kernel, sh_image, root_image):
    spec = bootvm.Boot("netroot-sh", f"{NETROOT} ip=dhcp root=UUID={{uuid}}")
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, sh_image, root_image)
    assert_reached_root(result, until="recovered")


def test_root_iscsi_mutual_chap_port_and_lun_2(pinned_kernel, systemd_image, root_image):
    """root=iscsi:user:pass:ruser:rpass@... names no device: pyiscsi gives the LUN /dev/root. tgtd's port is never
    3260 here, and the root is LUN 2 behind a blank LUN 1."""
    cmd = "root=iscsi:{user}:{secret}:{ruser}:{rsecret}@{host}::{port}:{lun}:{iqn} ip=dhcp pyiscsi.test=adopt"
    spec = bootvm.Boot("mutual-chap-lun2", cmd, mutual=True, lun=2)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result)
    assert "lun 2 of" in result.console.marker("disk").detail


def test_root_iscsi_sh_flavour_and_ibft_without_root(pinned_kernel, sh_image, root_image):
    """No root= at all with rd.iscsi.firmware: the LUN becomes /dev/pyiscsiroot, dracut's sh init mounts that."""
    spec = bootvm.Boot("ibft-noroot-sh", "rd.iscsi.firmware=1 pyiscsi.test=adopt", ipxe=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, sh_image, root_image)
    assert_reached_root(result)
    assert result.console.has("root-link")


def test_ibft_without_root_systemd_flavour_mounts_what_the_generator_names(pinned_kernel, systemd_image, root_image):
    """No root= with rd.iscsi.firmware in a systemd image: pyiscsi-generator writes sysroot.mount for
    /dev/pyiscsiroot before any unit starts (no cmdline hook, no daemon-reload), and systemd mounts that."""
    spec = bootvm.Boot("ibft-noroot-systemd", "rd.iscsi.firmware=1 pyiscsi.test=adopt", ipxe=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result)
    assert result.console.has("root-link")


def test_netroot_chap_discovery_empty_target_name(pinned_kernel, systemd_image, root_image):
    """An empty target name: SendTargets discovery at the portal, then login to what it names (one-way CHAP)."""
    cmd = "netroot=iscsi:{user}:{secret}@{host}::{port}:{lun}: ip=dhcp root=UUID={uuid} pyiscsi.test=adopt"
    spec = bootvm.Boot("chap-discovery", cmd, chap=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result)
    assert result.console.has("discovery")


def test_ibft_static_address_from_ipxe(pinned_kernel, systemd_image, root_image):
    """iPXE configured net0 by hand: the iBFT's NIC says static (origin manual), pyiscsi sets the address itself."""
    spec = bootvm.Boot("ibft-static", "rd.iscsi.firmware=1 root=UUID={uuid} pyiscsi.test=adopt", ipxe=True,
                       static=StaticNet())  # fmt: skip
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result)
    assert "10.0.2.15/24" in result.console.marker("address").detail


def test_two_netroots_root_first_and_a_data_disk(pinned_kernel, systemd_image, root_image):
    extra = "iqn.2026-12.org.pyiscsi:data"
    cmd = f"{NETROOT} netroot=iscsi:{{host}}::{{port}}:1:{{iqn2}} ip=dhcp root=UUID={{uuid}} pyiscsi.test=adopt"
    spec = bootvm.Boot("two-netroots", cmd, extra_targets=(extra,))
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    console = result.console
    assert console.has("adopted"), console.summary()
    assert "2 session(s)" in console.marker("booted").detail
    state = console.marker("rootstate").detail
    assert "nodes=2" in state and "mode0600=2" in state and "onboot" in state and "automatic" in state, state
    report(result)


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback here: tgtd cannot listen on [::1]")
def test_ipv6_target_over_slaac(pinned_kernel, systemd_image, root_image):
    """QEMU's user network announces fec0::/64; the host's [::1] is [fec0::2] from inside."""
    cmd = "netroot=iscsi:[{host6}]::{port}:{lun}:{iqn} ip=auto6 root=UUID={uuid} pyiscsi.test=adopt"
    spec = bootvm.Boot("ipv6-slaac", cmd, ipv6=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_reached_root(result)
    assert "fec0::" in result.console.marker("address").detail
    assert "fec0::2" in result.console.marker("login").detail


# --- failures: bounded, the cause on the console, then dracut's emergency path ---------------------------------


def test_wrong_chap_secret_fails_at_once_naming_authentication(pinned_kernel, systemd_image, root_image):
    cmd = "netroot=iscsi:{user}:{secret}@{host}::{port}:{lun}:{iqn} ip=dhcp root=UUID={uuid}"
    spec = bootvm.Boot("wrong-secret", cmd, chap=True, wrong_secret=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_failed_with(result, "authentication")


def test_target_down_fails_when_the_login_bound_runs_out(pinned_kernel, systemd_image, root_image):
    cmd = f"{NETROOT} ip=dhcp root=UUID={{uuid}} rd.pyiscsi.timeout.login=15"
    spec = bootvm.Boot("target-down", cmd, target_up=False)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_failed_with(result, "login")


def test_no_dhcp_answer_fails_when_the_dhcp_bound_runs_out(pinned_kernel, systemd_image, root_image):
    cmd = f"{NETROOT} ip=dhcp root=UUID={{uuid}} rd.net.timeout.dhcp=10"
    spec = bootvm.Boot("no-dhcp", cmd, netdev=bootvm.DEAD_NETDEV)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, systemd_image, root_image)
    assert_failed_with(result, "dhcp")
