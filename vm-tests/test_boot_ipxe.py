"""iPXE in QEMU: sanhook to our tgtd, then boot the pinned kernel from our HTTP server; the guest sees an iBFT."""

from __future__ import annotations

import pytest

from harness.capture_ibft import BOOT_BOUND, Scenario, TargetSetup, boot_scenario
from harness.console import ExitReason
from harness.ipxe import Chap
from initiator.secret import Secret

pytestmark = pytest.mark.vm


@pytest.mark.parametrize(
    "scenario",
    [
        Scenario("boot-dhcp", (TargetSetup("iqn.2026-11.org.pyiscsi:boot-test"),)),
        Scenario(
            "boot-chap",
            (TargetSetup("iqn.2026-11.org.pyiscsi:boot-chap"),),
            initiator_iqn="iqn.2026-11.org.pyiscsi:chap-initiator",
            chap=Chap("boot-user", Secret("bootsecret123")),
        ),
    ],
    ids=lambda s: s.name,
)
def test_sanhook_boot_leaves_an_ibft_in_low_memory_and_in_sysfs(pinned_kernel, scenario):
    capture = boot_scenario(scenario, BOOT_BOUND)
    console = capture.console
    assert console.reason is ExitReason.POWEROFF, console.summary()
    assert "pyiscsi-ipxe: sanhooked" in console.log(), console.summary()
    assert [r for r in capture.http_requests if r in ("/vmlinuz", "/initrd.img")] == ["/vmlinuz", "/initrd.img"]
    assert [m.name for m in console.markers] == ["init", "modules", "done"]

    # Low memory (what pyiscsi's legacy-BIOS path reads): a checksummed table naming our target.
    target = scenario.targets[0]
    assert capture.table is not None, console.summary()
    assert capture.table[:4] == b"iBFT"
    assert target.iqn.encode() in capture.table
    assert scenario.initiator_iqn.encode() in capture.table

    # The guest kernel's iscsi_ibft read the same table.
    sysfs = capture.sysfs
    assert sysfs["target0/target-name"] == target.iqn
    assert sysfs["target0/port"] == str(capture.portal_port)
    assert sysfs["target0/lun"] == f"{target.lun:02x}000000"
    assert sysfs["target0/ip-addr"] == "10.0.2.2"
    assert sysfs["initiator/initiator-name"] == scenario.initiator_iqn
    assert sysfs["ethernet0/ip-addr"] == "10.0.2.15"
    if scenario.chap is None:
        assert sysfs["target0/chap-type"] == "0"
    else:
        assert sysfs["target0/chap-name"] == scenario.chap.username
        assert sysfs["target0/chap-type"] == "1"
