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

Every root also boots through `netroot=` + `ip=dhcp` on a fresh disk (point 4 below): with the README's
configuration (which omits dracut's `iscsi`, `network` and `ifcfg` modules) no systemd-networkd runs in the
initramfs, so the real root's systemd-network-generator does not trip over a file the initramfs's left in /run; and
with 95pyiscsi's `.link` files the NIC has its real-root name before it is brought up, so systemd-networkd takes it
over.

Point 4, per variant one boot over the routed test network (harness.netlab, dnsmasq's lease LEASE seconds,
`netroot=` + `ip=dhcp`): once multi-user, the guest writes 1 MiB files with fsync for LEASE + 30 s; 10 s in, it
restarts the network manager as an admin would (Variant.restart). Who renews a lease in the real root: only the
network manager's own DHCP client could, never pyiscsi. pyiscsi's initramfs client put the address on without a
lifetime and is gone, and its agent stops when iscsid adopts the session (`agents=0`). systemd-networkd takes the
interface over through the `.network` file `pyiscsi handover` left in /run, as the same DHCP client as pyiscsi
(`ClientIdentifier=mac`), and renews the root's own lease; NetworkManager does the same with the profile the
handover left and the device state naming it (/run/NetworkManager/devices/<ifindex>, `dhcp-client-id=mac`);
ifupdown's `ifup@<if>.service` runs dhclient as another client (a second address). The writes outlast the
initramfs's lease, and dnsmasq must acknowledge the manager's renewals of the root's own lease while they run,
except where ROOT_LEASE_NOT_RENEWED says why not (known problems, asserted as they are). Afterwards: no I/O error in
the kernel log, every file reads back with its checksum after the page cache is dropped, and the root's address is
still there.

Timings print with `-s`.
"""

from __future__ import annotations

import enum
import itertools
import json
import os
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
# measured under TCG on 2 shared cores: networkd 5.1-17.5 s, NetworkManager 5.0-5.1 s (23.8-39.3 s while dracut's
# network-manager module was in the image, before the README's configuration left it out), ifupdown 4.7-7.2 s; the
# bound leaves room for a loaded CI
POWEROFF_BOUND = 60.0
# this variant's second boot is the one through `netroot=iscsi:...` + `ip=dhcp` instead of the iBFT
NETROOT_VARIANT = "networkmanager"
# units whose failure would concern iSCSI, the network or the root
# dnsmasq's lease in the point-4 boots (its minimum): the DHCP clients renew at half of it
LEASE = 120
# Known problem (README, "A real Debian system"): with ifupdown the real root does not renew the lease pyiscsi took.
# The root's address stays (pyiscsi put it on without a lifetime), but a DHCP server may hand it out again once that
# lease has run out. networkd and NetworkManager renew it: keepnet gives them pyiscsi's client identifier (and NM the
# device's run state naming pyiscsi's profile).
ROOT_LEASE_NOT_RENEWED = {
    "ifupdown": "ifupdown runs `dhclient -4 -i -I`: a DUID-based client identifier (RFC 4361) where pyiscsi sent "
    "01+MAC, so the server sees another client: a second address, renewed instead",
}
CONCERNING = ("iscsi", "network", "networkd", "NetworkManager", "ifup", "dhc", "fsck", "remount", "mount", "sysroot")


# a .deb to test instead of what `make deb` makes of this checkout (another build of the package)
DEB_ENV = "PYISCSI_REALROOT_DEB"


@pytest.fixture(scope="session")
def our_deb():
    given = os.environ.get(DEB_ENV)
    return Path(given).resolve() if given else debroot.make_deb()


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
    waited = booted.detail("adopted").get("waited")
    adoption = f", iscsid's adoption waited for {waited}s" if waited not in (None, "0") else ""
    print(f"{booted.guest.name}: {shown} ({booted.wall:.0f}s wall, {c.reason.value}{adoption})")


def said_after(log: str, mark: str) -> list[str]:
    """The guest check's lines right after a mark (what it printed about it, e.g. iscsid's journal)."""
    lines = log.splitlines()
    start = next((i for i, line in enumerate(lines) if f"PYISCSI-MARK {mark} " in line), len(lines))
    return list(itertools.takewhile(lambda line: line.startswith("  check: "), lines[start + 1 :]))


class Data(enum.Enum):
    """Who logs in to the data target in a boot."""

    IBFT = "ibft"  # pyiscsi, in the initramfs: it is the iBFT's second target (open-iscsi finds it present)
    RECORD = "record"  # open-iscsi.service at start-up, from the `automatic` record an earlier boot left
    NONE = "none"  # nobody: not in the iBFT, no record yet


def assert_running_system(booted: realboot.Booted, data: Data, address: str = "10.0.2.15/24") -> None:
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
    # iscsid's start-up sync re-logs each session after DefaultTime2Wait: the check waits for it (bounded)
    adoption = (c.marker("adopted"), said_after(c.log(), "adopted"))
    assert adopted.get("nochange") == adopted.get("loggedin") == sessions.get("total"), adoption
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
    assert address in net.get("addr", ""), c.marker("net")
    assert "=active" in net.get("units", "") and "=failed" not in net.get("units", ""), c.marker("net")
    errors = booted.detail("errors")
    assert errors.get("ioerr") == "0", c.summary()
    # iscsid's adoption drops and remakes each adopted connection once (the kernel logs it, at info level); more
    # than one per session would be a connection failing for real
    assert int(errors.get("connerr", "99")) <= int(sessions.get("total", "0")), c.marker("errors")


def assert_clean_shutdown(booted: realboot.Booted, action: str, address: str = "10.0.2.15/24") -> float:
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
    assert address in final.get("addr", ""), c.marker("final")
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


def acks_between(booted: realboot.Booted, first: str, last: str) -> list[str]:
    """The addresses of the DHCP acknowledgements dnsmasq logged between two of the guest's marks."""
    at = booted.extra.get("acks_at", {})
    assert first in at and last in at, (at, booted.console.summary())
    return [str(ack.address) for ack in booted.extra["acks"][at[first] : at[last]]]


# Known problem, not understood yet (README, "Not supported"): on 2026-12-02 the NetworkManager root lost its iSCSI
# connection (ping timeout) in 2 of 3 runs, about 15 s after NetworkManager renewed the lease ("dhcp4 (ens2):
# state changed new lease" at 124 s, the last packet from the target at ~139 s), while the earlier 5 runs of this
# test passed. The check shows NetworkManager's DHCP events on the console (`journal:` lines) for the next look.
# Not strict: a pass is reported as XPASS, a loss as XFAIL, and either shows in the output.
NM_SESSION_LOST = pytest.mark.xfail(
    reason="NetworkManager root: the iSCSI connection intermittently lost ~15 s after NM's lease renewal",
    strict=False,
)
STRESS_VARIANTS = [pytest.param(v, marks=NM_SESSION_LOST) if v == "networkmanager" else v for v in debroot.VARIANTS]


# Before keepnet's ClientIdentifier=mac, networkd held a second lease and once lost the root's address (and the
# session) about 20 s after pyiscsi's lease ran out; now it renews the root's own lease.
@pytest.mark.parametrize("variant", STRESS_VARIANTS)
def test_network_manager_restart_and_lease_renewal_under_writes(variant, debian_roots):
    """Point 4 (see the module docstring): the network manager restarted and the lease renewed while the root is
    written to; the network manager renews, and the data, the address and the session stay."""
    root = debian_roots(variant)
    # Point 2, on every variant: before the README omitted dracut's `network` module, Debian 12's
    # systemd-network-generator.service ran in the initrd (dracut's systemd-networkd module) and again in the real
    # root, where it exited 1 ("Failed to create unit file '/run/systemd/network/91-default.network', as it already
    # exists") and left a networkd root degraded after a netroot= + ip=dhcp boot, which is what this one is.
    unwanted = {"systemd-networkd", "network", "iscsi"} & set(root.info["initrd_modules"])
    assert not unwanted, f"the README's dracut configuration let these in: {sorted(unwanted)}"
    with realboot.NetLabRoot(root, LEASE) as lab:
        guest = realboot.Guest(f"{variant}-stress", ipxe=False, data=False, action="poweroff",
                               extra=f"pyiscsi.test.stress={LEASE + 30}")  # fmt: skip
        booted = lab.boot(guest)
        report(booted)
        c = booted.console
        print(f"{variant}: acks at marks {booted.extra['acks_at']}")
        for line in booted.extra["dhcp_log"].splitlines():
            if "DHCPACK" in line or "DHCPREQUEST" in line:
                print(f"  dnsmasq: {line.strip()}")
        stress = booted.detail("stress")
        assert stress, f"the writes never finished; {c.summary()}"
        before = booted.detail("stress-begin").get("addr", "none")
        assert before != "none", c.marker("stress-begin")
        address = before.split(",")[0].split("=", 1)[1]
        assert_running_system(booted, Data.NONE, address)
        restarted = booted.detail("restarted")
        assert restarted.get("rc") == "0", (c.marker("restart"), c.marker("restarted"))
        assert "=failed" not in restarted.get("units", "") and "=active" in restarted.get("units", ""), c.marker(
            "restarted"
        )
        assert int(stress.get("writes", "0")) > 0, c.marker("stress")
        assert stress.get("failed") == "0" and stress.get("bad") == "0", c.marker("stress")
        assert set(before.split(",")) <= set(stress.get("after", "").split(",")), c.marker("stress")
        begin, end = booted.uptime("stress-begin"), booted.uptime("stress")
        assert begin is not None and end is not None
        assert end - begin > LEASE, f"the writes ran {end - begin:.0f}s, not past the initramfs's lease"
        assert realboot.kernel_errors(c.log(), begin, end) == []
        renewed = acks_between(booted, "stress-begin", "stress")
        print(f"{variant}: acknowledged while writing: {renewed}")
        adopted = booted.detail("adopted")
        assert adopted.get("agents") == "0", c.marker("adopted")
        explain = booted.detail("explain")  # what the README has a user look at after the boot
        assert explain.get("rc") == "0" and explain.get("targets") == "1", c.marker("explain")
        if variant == "ifupdown":
            assert int(stress.get("dhclients", "0")) >= 1, c.marker("stress")
        took = assert_clean_shutdown(booted, "poweroff", address)
        print(f"{variant}: {stress.get('writes')} writes over {end - begin:.0f}s, "
              f"{len(renewed)} acks meanwhile, lft {stress.get('lft')}, "
              f"poweroff {took:.1f}s (guest)")  # fmt: skip
        # last, so that everything above is proven either way: whose lease the manager renewed (T1 = LEASE / 2)
        root_ip = address.split("/")[0]
        if variant in ROOT_LEASE_NOT_RENEWED:  # asserted as it is: this fails once it is fixed (then drop the entry)
            assert renewed.count(root_ip) == 0, (ROOT_LEASE_NOT_RENEWED[variant], renewed)
        else:
            assert renewed.count(root_ip) >= 2, (renewed, booted.extra["acks_at"], c.marker("stress"))
