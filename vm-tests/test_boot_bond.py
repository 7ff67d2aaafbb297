"""bond= in the lab VM's kernel (the host's has no bonding driver): the namespace tests of the link forms
(tests/boot/net/test_virtual.py: active-backup with a dead slave, 802.3ad, a VLAN on a bond, bridge, rename,
MAC and MTU) run there, none of them skipped; and one real boot on the lab network over a bond of two NICs whose
first has no link (QEMU's set_link over QMP), the NICs renamed by ifname= (after udev's coldplug named them), the
root on iSCSI over the bond, the bond's MAC address its first slave's."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from harness import bootvm, netlab, qemu, rootimage
from harness.console import ExitReason
from harness.lab import run_in_lab
from harness.netlab import LabConfig, NetLab, Stack
from harness.paths import REPO

pytestmark = pytest.mark.vm
MISSING = bootvm.require_tools() or netlab.unavailable_reason()
BOOT_BOUND = 300.0  # one boot under TCG (bootvm.BOUND)

GUEST_BOUND = 300.0  # pytest's start-up over 9p under TCG dominates, as in test_net_guest.py


def test_link_forms_pass_in_the_guest_kernel(pinned_kernel):
    argv = [
        "sh",
        "-c",
        'modprobe veth && modprobe 8021q && modprobe bonding max_bonds=0 && modprobe bridge && exec "$@"',
        "sh",
        str(REPO / ".venv/bin/python"),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rA",
        "tests/boot/net/test_virtual.py",
    ]
    result = run_in_lab(argv, bound=GUEST_BOUND)
    assert result.status == 0, result.stdout[-3000:] + result.stderr[-2000:] + result.console.summary()
    for name in (
        "active_backup_bond_comes_up_over_the_live_slave",
        "802_3ad_bond_with_its_options",
        "vlan_on_a_bond",
        "bridge_gets_the_address",
        "ifname_renames_the_link_and_every_record_names_it",
    ):
        assert f"PASSED tests/boot/net/test_virtual.py::test_{name}" in result.stdout, result.stdout[-3000:]
    assert "SKIPPED" not in result.stdout


# --- one boot over a bond of two NICs, the first one's link down ----------------------------------------------

BOND_CHECK = r"""
if [ -d /sys/class/net/bond0/bonding ]; then
    b=/sys/class/net/bond0/bonding
    n=/sys/class/net
    mark bond "active=$(cat $b/active_slave) mode=$(cat $b/mode) slaves=$(cat $b/slaves) mtu=$(cat $n/bond0/mtu)\
 carrier0=$(cat $n/nic0/carrier) carrier1=$(cat $n/nic1/carrier) mac=$(cat $n/bond0/address)"
fi
"""
MACS = ("52:54:00:12:34:56", "52:54:00:12:34:57")  # QEMU's defaults for the first and second NIC
BOND_LINE = (
    f"ifname=nic0:{MACS[0]} ifname=nic1:{MACS[1]} bond=bond0:nic0,nic1:mode=active-backup,miimon=100:1400 "
    "ip=bond0:dhcp netroot=iscsi:{server}::3260:1:{iqn} root=UUID={uuid} pyiscsi.test=adopt"
)
QMP_BOUND = 30.0


def set_link_down(path: Path, netdev: str, outcome: list[str]) -> None:
    """QEMU's `set_link <netdev> off` over QMP as soon as the socket is there (long before the guest's kernel
    probes the NIC, under TCG): virtio-net then reports no link, as a pulled cable would."""
    end = time.monotonic() + QMP_BOUND
    while not path.exists() and time.monotonic() < end:
        time.sleep(0.05)
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(max(1.0, end - time.monotonic()))
            sock.connect(str(path))
            stream = sock.makefile("rw")
            stream.readline()  # the greeting
            for command in ({"execute": "qmp_capabilities"},
                            {"execute": "set_link", "arguments": {"name": netdev, "up": False}}):  # fmt: skip
                stream.write(json.dumps(command) + "\n")
                stream.flush()
                outcome.append(stream.readline().strip())
    except OSError as exc:
        outcome.append(f"QMP failed: {exc}")


@pytest.fixture(scope="module")
def bond_root_image():
    return rootimage.build(before_iscsid=BOND_CHECK)


@pytest.mark.skipif(bool(MISSING), reason=MISSING or "")
def test_boot_over_a_bond_whose_first_nic_has_no_link(pinned_kernel, systemd_image, bond_root_image):
    """The product image as every other test has it: module-setup.sh always installs bonding and bridge."""
    with NetLab(LabConfig(stack=Stack.IPV4, taps=2)) as lab:
        assert lab.workdir is not None
        disk = rootimage.copy_for_boot(bond_root_image, lab.workdir / "root.ext4")
        lab.root_target(bootvm.IQN, disk)
        values = {"server": lab.server, "iqn": bootvm.IQN, "uuid": rootimage.root_uuid(disk)}
        append = f"{bootvm.BASE_APPEND} {bootvm.fill(BOND_LINE, values)}"
        qmp = lab.workdir / "qmp.sock"
        spec = qemu.VmSpec(kernel=pinned_kernel.vmlinuz, initrd=systemd_image, append=append, memory_mb=768,
                           extra=("-qmp", f"unix:{qmp},server=on,wait=off"))  # fmt: skip
        outcome: list[str] = []
        thread = threading.Thread(target=set_link_down, args=(qmp, "n0", outcome), daemon=True)
        thread.start()
        console = qemu.run(lab.attach(spec), BOOT_BOUND, name="bond-boot", probe_kernel=pinned_kernel.vmlinuz)
        thread.join(QMP_BOUND)
    assert outcome[-1:] == ['{"return": {}}'], outcome
    names = [m.name for m in console.markers]
    assert "failed" not in names and "realroot-fail" not in names, console.summary()
    assert "adopted" in names and console.reason is ExitReason.POWEROFF, console.summary()
    assert "booted=/dev/sd" in console.marker("rootstate").detail, console.summary()
    assert "bond0" in console.marker("address").detail and "192.168.77." in console.marker("address").detail
    bond = console.marker("bond").detail
    assert "active=nic1 mode=active-backup 1 slaves=nic0 nic1 mtu=1400 carrier0=0 carrier1=1" in bond, bond
    assert f"mac={MACS[0]}" in bond, bond  # the first slave's, as every boot: not udev's, from a fresh machine-id
