"""Boots on a real private network (harness.netlab) instead of QEMU's NAT: a short DHCP lease, IPv6 without ip=,
a root path from DHCP. The guest, dnsmasq and tgtd share one namespace, so the target advertises the address
the guest really reaches, and dnsmasq hands out what QEMU's NAT cannot (2-minute leases, RA, option 17).

The real root is harness.rootimage's; `LEASE_CHECK` adds a phase before iscsid starts (in its own cached image).
Each test prints its guest uptimes; `-s` shows them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import bootvm, initramfs, netlab, qemu, rootimage
from harness.console import ConsoleResult, ExitReason
from harness.ipxe import IpxeScript, SanTarget
from harness.netlab import LabConfig, NetLab, Stack

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools() or netlab.unavailable_reason()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

IQN = bootvm.IQN
LEASE = netlab.MIN_LEASE  # 2 minutes: T1 at 60 s, the end at 120 s
BOUND = 420.0  # one boot under TCG (bootvm.BOUND is 300), plus the lease phase's LEASE + 10 s
ADOPT = "pyiscsi.test=adopt"

# Before iscsid: note the root session's address (the iSCSI host's), read the disk (O_DIRECT) every 3 s, renew
# the lease past T1 with busybox udhcpc as a real root's DHCP client would (asking for the same address; the
# event script only records, it never touches the link), and go on past the first lease's end: the address must
# still be on the link, the session LOGGED_IN, the disk must read and take a write.
LEASE_CHECK = r"""
lease=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in pyiscsi.test.lease=*) lease=${arg#pyiscsi.test.lease=} ;; esac
done
if [ "$lease" -gt 0 ]; then
    addr=$(cat /sys/class/iscsi_host/host*/ipaddress 2> /dev/null | head -n1)
    [ -n "$addr" ] || addr=$(ip -o -4 addr show scope global | awk '{ sub("/.*", "", $4); print $4; exit }')
    iface=$(ip -o -4 addr show | grep " inet $addr/" | awk '{ print $2; exit }')
    [ -n "$iface" ] || fail "the session's address ($addr) is on no interface"
    start=$(now)
    mark lease-start "$iface $addr lease=$lease"
    printf '#!/bin/sh\necho "$1 $ip $lease" >> /tmp/lease-events\n' > /tmp/lease-event
    chmod 755 /tmp/lease-event
    reads=0
    io() {
        dd if="$dev" of=/dev/null bs=4096 count=1 skip=$((reads % 2048)) iflag=direct 2> /dev/null ||
            fail "$dev does not read at $(now)s ($1)"
        reads=$((reads + 1))
    }
    while [ "$(now)" -lt $((start + lease / 2 + 5)) ]; do io "before the renewal"; sleep 3; done
    udhcpc -f -q -n -i "$iface" -r "$addr" -t 5 -T 3 -s /tmp/lease-event > /dev/null 2>&1 ||
        fail "no DHCP answer to the renewal of $addr on $iface"
    set -- $(grep '^bound ' /tmp/lease-events | tail -n1)
    [ "$2" = "$addr" ] || fail "the renewal gave '$2', not $addr"
    mark lease-renewed "$iface $2 lease=$3"
    while [ "$(now)" -lt $((start + lease + 10)) ]; do io "after the renewal"; sleep 3; done
    ip -o -4 addr show dev "$iface" | grep -q " inet $addr/" || fail "$addr left $iface"
    state=$(cat /sys/class/iscsi_session/$sid/state)
    [ "$state" = LOGGED_IN ] || fail "session $sid is $state after the lease time"
    { echo lease-check > /lease-check && sync; } || fail "the root does not take a write"
    mark lease-kept "$iface $addr, $reads reads in $(($(now) - start))s, $sid $state"
fi
"""


@pytest.fixture(scope="module")
def root_image():
    return rootimage.build()


@pytest.fixture(scope="module")
def lease_root_image():
    return rootimage.build(before_iscsid=LEASE_CHECK)


@pytest.fixture(scope="module")
def systemd_image(pinned_kernel):
    return initramfs.build(pinned_kernel.release, pinned_kernel.modules, "systemd").path


def boot_in_lab(
    lab: NetLab, name: str, cmdline: str, vmlinuz: Path, initrd: Path, root_image: Path, *, ipxe: bool = False
) -> ConsoleResult:
    """Serve `root_image` (a private copy) as LUN 1 of IQN on the lab's tgtd and boot the product initramfs with
    `cmdline` (bootvm's template: {server}, {server6}, {iqn}, {uuid}, {lease}), through iPXE sanhook if asked."""
    assert lab.workdir is not None
    disk = rootimage.copy_for_boot(root_image, lab.workdir / "root.ext4")
    lab.root_target(IQN, disk)
    values = {
        "server": lab.server,
        "server6": str(lab.plan.server6),
        "iqn": IQN,
        "uuid": rootimage.root_uuid(disk),
        "lease": str(lab.config.lease_seconds),
    }
    append = f"{bootvm.BASE_APPEND} {bootvm.fill(cmdline, values)}"
    if ipxe:
        (lab.www / "vmlinuz").symlink_to(vmlinuz)
        (lab.www / "initrd.img").symlink_to(initrd)
        IpxeScript(
            targets=(SanTarget(lab.server, netlab.ISCSI_PORT, 1, IQN),),
            kernel_url=lab.url("vmlinuz"),
            initrd_url=lab.url("initrd.img"),
            cmdline=append + " initrd=initrd.img",
            initiator_iqn=bootvm.INITIATOR,
        ).write(lab.www / "boot.ipxe")
        spec = qemu.VmSpec(memory_mb=768)  # a netboot: dnsmasq names boot.ipxe, iPXE's ROM fetches it
    else:
        spec = qemu.VmSpec(kernel=vmlinuz, initrd=initrd, append=append, memory_mb=768)
    console = qemu.run(lab.attach(spec), BOUND, name=f"netlab-{name}", probe_kernel=vmlinuz)
    shown = " ".join(f"{m.name}={m.uptime:.1f}" for m in console.markers if m.name != "rootstate")
    print(f"{name}: {shown} ({console.wall_seconds:.0f}s wall, {console.reason.value})")
    return console


def assert_adopted(console: ConsoleResult) -> None:
    names = [m.name for m in console.markers]
    assert "realroot-fail" not in names and "failed" not in names, console.summary()
    assert "adopted" in names, console.summary()
    assert console.reason is ExitReason.POWEROFF, console.summary()
    assert "booted=/dev/sd" in console.marker("rootstate").detail, console.summary()


def failure_line(console: ConsoleResult) -> str:
    """pyiscsi's own line naming why the boot failed, or the console's last lines."""
    lines = [line for line in console.log().splitlines() if "pyiscsi boot:" in line]
    return lines[-1].split("pyiscsi boot:", 1)[1].strip() if lines else console.summary()


# --- (a) iBFT through iPXE sanhook on the lab network, a 2-minute lease --------------------------------------


def test_ibft_sanhook_keeps_its_address_and_io_across_a_lease_renewal(pinned_kernel, systemd_image, lease_root_image):
    config = LabConfig(stack=Stack.IPV4, lease_seconds=LEASE, boot_file="boot.ipxe")
    cmdline = f"rd.iscsi.firmware=1 root=UUID={{uuid}} {ADOPT} pyiscsi.test.lease={{lease}}"
    with NetLab(config) as lab:
        console = boot_in_lab(lab, "ibft-lease", cmdline, pinned_kernel.vmlinuz, systemd_image, lease_root_image,
                              ipxe=True)  # fmt: skip
        acks = [ack for ack in lab.dhcp_acks() if ack.address.version == 4]
        requests = lab.http_requests
    assert "pyiscsi-ipxe: sanhooked" in console.log(), console.summary()
    assert_adopted(console)
    server = str(lab.plan.server4)
    # the iBFT named the lab's own address, and pyiscsi logged in there: nothing translated it on the way
    assert f"{server}:{netlab.ISCSI_PORT}" in console.marker("login").detail, console.summary()
    address = console.marker("address").detail
    assert "192.168.77." in address, address
    kept = console.marker("lease-kept")
    assert kept is not None, console.summary()
    renewed = console.marker("lease-renewed")
    assert renewed is not None and f"lease={LEASE}" in renewed.detail, console.summary()
    assert kept.uptime - console.marker("lease-start").uptime >= LEASE, kept
    # dnsmasq's side: iPXE's ROM, its script, pyiscsi and the renewal, one client, one address throughout
    assert len(acks) >= 4, acks
    assert len({ack.client for ack in acks}) == 1 and len({ack.address for ack in acks}) == 1, acks
    assert str(acks[-1].address) in renewed.detail and str(acks[-1].address) in address
    assert requests[:3] == ["/boot.ipxe", "/vmlinuz", "/initrd.img"], requests


# --- (b) IPv6 only: router advertisements (+ stateful DHCPv6), no IPv4 at all --------------------------------

IPV6_ONLY = LabConfig(stack=Stack.IPV6, ra=True, slaac=True, dhcp6=True)
NETROOT6 = "netroot=iscsi:[{server6}]::3260:1:{iqn}"


def test_ipv6_only_netroot_without_ip_option(pinned_kernel, systemd_image, root_image):
    """No ip=: DHCPv4 and IPv6 at once; the login waits only for IPv6 (the target's family), so the DHCPv4 that
    never answers here costs nothing, not its 'dhcp' bound."""
    with NetLab(IPV6_ONLY) as lab:
        console = boot_in_lab(lab, "ipv6-noip", f"{NETROOT6} root=UUID={{uuid}} {ADOPT}", pinned_kernel.vmlinuz,
                              systemd_image, root_image)  # fmt: skip
    print(f"ipv6-noip: {failure_line(console)}")
    assert_adopted(console)
    assert "fd70:7969:7363:1:" in console.marker("address").detail, console.summary()
    assert f"{lab.plan.server6}" in console.marker("login").detail, console.summary()
    print(f"ipv6-noip: address {console.marker('address').uptime - console.marker('plan').uptime:.1f}s after plan")


def test_ipv6_only_netroot_with_ip_auto6(pinned_kernel, systemd_image, root_image):
    with NetLab(IPV6_ONLY) as lab:
        console = boot_in_lab(lab, "ipv6-auto6", f"{NETROOT6} ip=auto6 root=UUID={{uuid}} {ADOPT}",
                              pinned_kernel.vmlinuz, systemd_image, root_image)  # fmt: skip
    assert_adopted(console)
    assert "fd70:7969:7363:1:" in console.marker("address").detail, console.summary()
    assert f"{lab.plan.server6}" in console.marker("login").detail, console.summary()


# --- (c) the root path from DHCP: netroot=dhcp, dnsmasq's option 17 names the target ---------------------------


def test_netroot_dhcp_takes_the_target_from_option_17(pinned_kernel, systemd_image, root_image):
    """Only what a diskless farm writes: netroot=dhcp ip=dhcp and the real root's UUID; the target, its port and
    LUN come from dnsmasq's root-path."""
    plan = netlab.AddressPlan()
    config = LabConfig(stack=Stack.IPV4, root_path=f"iscsi:{plan.server4}::{netlab.ISCSI_PORT}:1:{IQN}", plan=plan)
    with NetLab(config) as lab:
        console = boot_in_lab(lab, "netroot-dhcp", f"netroot=dhcp ip=dhcp root=UUID={{uuid}} {ADOPT}",
                              pinned_kernel.vmlinuz, systemd_image, root_image)  # fmt: skip
    print(f"netroot-dhcp: {failure_line(console)}")
    assert_adopted(console)
    assert f"{IQN} at {plan.server4}:{netlab.ISCSI_PORT} lun 1" in console.marker("root-path").detail
    assert f"{plan.server4}:{netlab.ISCSI_PORT}" in console.marker("login").detail, console.summary()


def test_no_lab_namespace_is_left_behind():
    """Every lab above removed its namespace (and whatever ran in it), failing or not."""
    assert [name for name in netlab.lab_namespaces() if netlab.namespace_owner(name) == os.getpid()] == []
