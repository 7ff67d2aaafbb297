"""pyiscsi with real Debian 12 roots: systemd, open-iscsi, Debian's dracut and a real network manager.

Each root (harness.debroot: networkd, NetworkManager, ifupdown) has our package installed from `make deb`, the
README's dracut configuration, and the pinned kernel installed after both, so the initrd that boots is the one
Debian's kernel postinst hook made with the root's own dracut. Per variant, two boots on one private disk:

1. iPXE `sanhook`s the root and a data target (an iBFT naming both); the root reaches multi-user.target with no
   failed unit about iSCSI, the network or the root; iscsid owns both sessions (one per target), the root's node
   record is `onboot`, the data target's `automatic`, its disk is there, and open-iscsi's own login command logs
   it in again from that record; a token is written, then `systemctl reboot`: the network and the sessions are
   still up when systemd-shutdown has unmounted or remounted the root read-only, with no I/O or connection error.
2. the same disk, found clean on the host (dumpe2fs/e2fsck) and by the guest (no journal recovery), boots again,
   reads the token back, and `systemctl poweroff` completes within POWEROFF_BOUND guest seconds, the same way.
   For the NetworkManager root this second boot goes through `netroot=iscsi:...` + `ip=dhcp` instead of the iBFT
   (QEMU's 10.0.2.2 is the host's tgtd): the data target is then not pyiscsi's, and open-iscsi.service logs in to
   it at start-up from the `automatic` node record the first boot left.

And the networkd root once through `netroot=` + `ip=dhcp` on a fresh disk (a known failure, see the xfail).

Timings print with `-s`.
"""

from __future__ import annotations

import enum
import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import bootvm, debroot, realboot
from harness.console import ExitReason

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools()
for tool in ("mmdebstrap", "debugfs", "dumpe2fs", "e2fsck"):
    if MISSING is None and shutil.which(tool) is None:
        MISSING = f"{tool} not installed (deps/debian-packages.txt)"
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

# guest seconds from `systemctl poweroff|reboot` to systemd-shutdown's final hook (the root unmounted or read-only),
# measured under TCG on 2 shared cores: networkd 5.8-17.5 s, NetworkManager 23.8-39.3 s (its stop is the slow part,
# not understood yet), ifupdown with its root NIC kept (an experiment) 7.2 s; the bound leaves room for a loaded CI
POWEROFF_BOUND = 60.0
# this variant's second boot is the one through `netroot=iscsi:...` + `ip=dhcp` instead of the iBFT
NETROOT_VARIANT = "networkmanager"
# units whose failure would concern iSCSI, the network or the root
CONCERNING = ("iscsi", "network", "networkd", "NetworkManager", "ifup", "dhc", "fsck", "remount", "mount", "sysroot")


@pytest.fixture(scope="session")
def our_deb():
    return debroot.make_deb()


@pytest.fixture(scope="session")
def debian_roots(our_deb):
    """Builds each variant's root the first time it is asked for (cached across runs by content)."""
    built: dict[str, debroot.DebRoot] = {}

    def get(variant: str) -> debroot.DebRoot:
        if variant not in built:
            started = time.monotonic()
            built[variant] = debroot.build(variant, our_deb)
            took = time.monotonic() - started
            print(f"root {variant}: {took:.0f}s here; built in {built[variant].info['seconds']} "
                  f"(initrd {built[variant].info['initrd_bytes'] / 1e6:.1f} MB)")  # fmt: skip
        return built[variant]

    return get


def report(booted: realboot.Booted) -> None:
    c = booted.console
    names = ("realroot", "multiuser", "shutdown", "final")
    shown = " ".join(f"{n}={booted.uptime(n):.1f}" for n in names if booted.uptime(n) is not None)
    print(f"{booted.guest.name}: {shown} ({booted.wall:.0f}s wall, {c.reason.value})")


class Data(enum.Enum):
    """Who logs in to the data target in a boot."""

    IBFT = "ibft"  # pyiscsi, in the initramfs: it is the iBFT's second target (open-iscsi finds it present)
    RECORD = "record"  # open-iscsi.service at start-up, from the `automatic` record an earlier boot left
    NONE = "none"  # nobody: not in the iBFT, no record yet


def assert_running_system(booted: realboot.Booted, data: Data) -> None:
    """(a) multi-user, nothing concerning failed; (b) iscsid owns the sessions, one per target, records' startup;
    (c) the data target's record, disk, and open-iscsi's login from that record."""
    c = booted.console
    assert booted.fatal is None, f"the root disk was lost: {booted.fatal}; {c.summary()}"
    assert c.has("errors"), c.summary()
    multiuser = booted.detail("multiuser")
    assert multiuser.get("state") in ("running", "degraded"), c.summary()
    assert multiuser.get("target") == "active", c.summary()
    failed = booted.detail("failed").get("units", "none")
    bad = [u for u in failed.split(",") if u != "none" and any(w.lower() in u.lower() for w in CONCERNING)]
    assert bad == [], f"failed units {failed}; {c.summary()}"
    root = booted.detail("rootdev")
    assert root.get("target") == realboot.ROOT_IQN, c.marker("rootdev")
    sessions = booted.detail("sessions")
    assert sessions.get("root") == "1", c.marker("sessions")
    assert sessions.get("total") == ("1" if data is Data.NONE else "2"), c.marker("sessions")
    adopted = booted.detail("adopted")
    assert adopted.get("iscsid") == "active", c.marker("adopted")
    assert adopted.get("nochange") == adopted.get("loggedin") == sessions.get("total"), c.marker("adopted")
    assert adopted.get("agents") == "0" and adopted.get("pidfile") == "no", c.marker("adopted")
    startup = booted.detail("startup")
    assert startup.get("root") == "onboot", c.marker("startup")
    loginsvc = booted.detail("loginsvc")
    assert loginsvc.get("state") == "active", c.marker("loginsvc")
    said = loginsvc.get("said", "")
    if data is Data.IBFT:  # pyiscsi logged in to every iBFT target; open-iscsi's start-up login finds it there
        assert "already_present" in said, c.marker("loginsvc")
    elif data is Data.RECORD:  # open-iscsi's start-up login did it, from the record pyiscsi wrote in an earlier boot
        assert f"Login_to_[iface:_default,_target:_{realboot.DATA_IQN}," in said and "successful" in said, said
    if data is not Data.NONE:
        assert sessions.get("data") == "1", c.marker("sessions")
        assert startup.get("data") == "automatic", c.marker("startup")
        disk = booted.detail("datadisk")
        assert disk.get("dev", "none") != "none" and disk.get("reads") == "yes", c.marker("datadisk")
        assert disk.get("size") == str(realboot.DATA_BYTES), c.marker("datadisk")
        relogin = booted.detail("relogin")
        assert relogin.get("loggedout") == "0", c.marker("relogin")
        assert relogin.get("data") == "1" and relogin.get("root") == "1", c.marker("relogin")
        assert relogin.get("dev", "none") != "none", c.marker("relogin")
    net = booted.detail("net")
    assert "10.0.2.15/24" in net.get("addr", ""), c.marker("net")
    assert "=active" in net.get("units", "") and "=failed" not in net.get("units", ""), c.marker("net")
    errors = booted.detail("errors")
    assert errors.get("ioerr") == "0", c.summary()
    # iscsid's adoption drops and remakes each adopted connection once (the kernel logs it, at info level); more
    # than one per session would be a connection failing for real
    assert int(errors.get("connerr", "99")) <= int(sessions.get("total", "0")), c.marker("errors")


def assert_clean_shutdown(booted: realboot.Booted, action: str) -> float:
    """(d) the shutdown: bounded, and the network and the root's session up until the root is unmounted or
    read-only, with no I/O or connection error meanwhile. Returns the guest seconds it took."""
    c = booted.console
    assert booted.fatal is None, f"the root disk was lost during {action}: {booted.fatal}; {c.summary()}"
    assert c.reason is ExitReason.POWEROFF, c.summary()
    assert booted.detail("shutdown").get("action") == action, c.summary()
    final = booted.detail("final")
    assert final, f"systemd-shutdown's final hook never ran; {c.summary()}"
    assert final.get("action") == action, c.marker("final")
    assert final.get("root") in ("ro", "unmounted"), c.marker("final")
    states = final.get("sessions", "none").split(",")
    assert states and all(s == "LOGGED_IN" for s in states), c.marker("final")
    assert "10.0.2.15/24" in final.get("addr", ""), c.marker("final")
    assert final.get("ioerr") == "0", c.marker("final")
    assert final.get("connerr") == booted.detail("errors").get("connerr"), (c.marker("errors"), c.marker("final"))
    start, end = booted.uptime("shutdown"), booted.uptime("final")
    assert start is not None and end is not None
    assert realboot.kernel_errors(c.log(), start, end) == []
    took = end - start
    assert took < POWEROFF_BOUND, f"{action} took {took:.1f} guest seconds; {c.summary()}"
    return took


@pytest.mark.parametrize("variant", debroot.VARIANTS)
def test_boot_reboot_and_poweroff(variant, debian_roots):
    root = debian_roots(variant)
    token = secrets.token_hex(8)
    netroot = variant == NETROOT_VARIANT
    with realboot.Lab(root) as lab:
        first = lab.boot(realboot.Guest(f"{variant}-ibft-1", action="reboot", phase="write"), token)
        report(first)
        assert_running_system(first, Data.IBFT)
        assert first.detail("token").get("wrote") == token, first.console.summary()
        reboot_took = assert_clean_shutdown(first, "reboot")
        verdict, dump = lab.fs_state()
        assert verdict == "clean", dump
        name = f"{variant}-{'netroot' if netroot else 'ibft'}-2"
        guest = realboot.Guest(name, ipxe=not netroot, data=not netroot, action="poweroff", phase="verify")
        second = lab.boot(guest, token)
        report(second)
        assert_running_system(second, Data.RECORD if netroot else Data.IBFT)
        assert second.detail("token").get("found") == token, second.console.summary()
        fscheck = second.detail("fscheck")
        assert fscheck.get("recoveries") == "0", second.console.marker("fscheck")
        assert "clean" in fscheck.get("fsck", ""), second.console.marker("fscheck")
        poweroff_took = assert_clean_shutdown(second, "poweroff")
        print(f"{variant}: disk copy {lab.copy_seconds:.1f}s; reboot {reboot_took:.1f}s, poweroff "
              f"{poweroff_took:.1f}s (guest); multi-user at {first.uptime('multiuser'):.1f}s / "
              f"{second.uptime('multiuser'):.1f}s; boots {first.wall:.0f}s + {second.wall:.0f}s wall")  # fmt: skip


NETWORKD_NETROOT = (
    "known problem: with ip= on the command line, Debian 12's systemd-network-generator.service runs in the initrd "
    "(dracut's systemd-networkd module, which the README's configuration keeps) and again in the real root, "
    "where it exits 1 (\"Failed to create unit file '/run/systemd/network/91-default.network', as it already "
    'exists") and leaves the system degraded'
)


@pytest.mark.xfail(strict=True, reason=NETWORKD_NETROOT)
def test_netroot_ip_dhcp_networkd(debian_roots):
    """netroot= + ip=dhcp on a fresh networkd root: no iBFT, no data target, no record of one yet."""
    with realboot.Lab(debian_roots("networkd")) as lab:
        booted = lab.boot(realboot.Guest("networkd-netroot", ipxe=False, data=False, action="poweroff"))
        report(booted)
        took = assert_clean_shutdown(booted, "poweroff")
        print(f"networkd-netroot: poweroff {took:.1f}s (guest)")
        assert_running_system(booted, Data.NONE)


def test_the_ci_tool_boots_an_image_made_by_the_roots_own_dracut(tmp_path, debian_roots):
    """pyiscsi-vmtest with images it did not build: the networkd root's kernel and the initramfs Debian's own
    dracut made in it, from an iPXE iBFT with CHAP, to the real root's systemd."""
    root = debian_roots("networkd")
    command = Path(sys.executable).parent / "pyiscsi-vmtest"
    secret = "Ci5ecretValue9"
    report = tmp_path / "timeline.json"
    done = subprocess.run(
        [str(command), "--kernel", str(root.vmlinuz), "--initrd", str(root.initrd), "--root", str(root.image),
         "--ibft", "--chap", f"ci-user:{secret}", "--name", "debian-own-dracut", "--json", str(report),
         "--junit", str(tmp_path / "junit.xml"), "--timeout", "400"],
        capture_output=True, text=True, timeout=480, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, output
    data = json.loads(report.read_text())
    assert data["passed"] and data["last_phase"] == "realroot", output
    assert {"login", "disk", "realroot"} <= {p["phase"] for p in data["phases"]}, output
    assert secret not in output + report.read_text() + (tmp_path / "junit.xml").read_text()
