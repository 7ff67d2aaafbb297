"""UEFI firmware: OVMF (q35) runs the EFI iPXE, whose `sanhook` leaves the iBFT as an ACPI table, not in low memory.

Every other iPXE boot in these tests is legacy BIOS (SeaBIOS; the iBFT in low memory, read through iscsi_ibft's
sysfs). Here the same product initramfs, in both dracut flavours, boots with mutual CHAP to the real root, and:

- pyiscsi's `firmware` milestone says it read `/sys/firmware/acpi/tables/iBFT` (the contract's first source);
- the kernel booted with EFI, found the table among the ACPI tables (`ACPI: iBFT ... FENSYS iPXE` in its log)
  and its EFI stub loaded the initrd iPXE named (`initrd=` on the kernel line);
- the real root sees the table at the same path and node records that carry mutual CHAP (names only, no secret),
  then iscsid adopts the session as in test_boot_root.

The initramfs images are conftest's (cached by content: the BIOS tests' own); the real root is harness.rootimage's
with one extra phase (below), built once.
"""

from __future__ import annotations

import pytest
from test_boot_root import assert_reached_root

from harness import bootvm, rootimage
from harness.qemu import Firmware

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools(Firmware.UEFI)
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

ACPI_IBFT = "/sys/firmware/acpi/tables/iBFT"
# run by the real root's init before iscsid starts: what the firmware left, and what pyiscsi's handover wrote
UEFI_PHASE = r"""
# -- UEFI: the iBFT is an ACPI table; the node record keeps mutual CHAP (vm-tests/test_boot_uefi.py) --
t=ACPI_IBFT_PATH
[ -r $t ] || fail "no ACPI table $t in the real root"
mark acpi-ibft "sig=$(head -c 4 $t) oem=$(dd if=$t bs=1 skip=10 count=6 2> /dev/null) bytes=$(wc -c < $t)"
# the kernel's own word (an info line: in its log, not on this quiet console) and the EFI runtime it booted with
efi=no
[ -d /sys/firmware/efi ] && efi=yes
mark kernel-acpi "efi=$efi $(dmesg | grep -m1 'ACPI: iBFT' | sed 's/^\[[^]]*\] *//')"
node=$(find /etc/iscsi/nodes -type f | head -n1)
field() { sed -n "s/^node\.session\.auth\.$1 = //p" "$node" | head -n1; }
pin=unset
[ -n "$(field password_in)" ] && pin=set
mark auth "method=$(field authmethod) user=$(field username) user_in=$(field username_in) password_in=$pin"
""".replace("ACPI_IBFT_PATH", ACPI_IBFT)


@pytest.fixture(scope="module")
def uefi_root_image():
    return rootimage.build(before_iscsid=UEFI_PHASE)


@pytest.mark.parametrize("flavour", ["systemd", "sh"])
def test_uefi_ipxe_sanhook_mutual_chap_ibft_from_acpi_adopted(request, pinned_kernel, uefi_root_image, flavour):
    image = request.getfixturevalue(f"{flavour}_image")
    spec = bootvm.Boot(
        f"uefi-ibft-mutual-{flavour}",
        "rd.iscsi.firmware=1 root=UUID={uuid} pyiscsi.test=adopt",
        ipxe=True,
        mutual=True,
        firmware=Firmware.UEFI,
    )
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, image, uefi_root_image)
    console = result.console
    log = console.log()
    assert_reached_root(result)
    # UEFI's iPXE hooked the target, the EFI stub found the initrd by the name iPXE gave it, the kernel ran on EFI
    # and listed the iBFT among the ACPI tables
    assert "pyiscsi-ipxe: sanhooked" in log, console.summary()
    assert "EFI stub: Loaded initrd from command line option" in log, console.summary()
    kernel = console.marker("kernel-acpi").detail
    assert kernel.startswith("efi=yes ACPI: iBFT 0x") and "FENSYS iPXE" in kernel, kernel
    # pyiscsi read the ACPI table (not iscsi_ibft's sysfs copy, not a low-memory scan), before its plan
    firmware = console.marker("firmware")
    assert firmware is not None and firmware.detail == f"ibft=acpi:{ACPI_IBFT}", console.summary()
    assert firmware.uptime <= console.marker("plan").uptime
    assert console.marker("acpi-ibft").detail.startswith("sig=iBFT oem=FENSYS "), console.marker("acpi-ibft")
    # mutual CHAP came through the table: both identities in the record the real root's iscsid reads
    auth = console.marker("auth").detail
    assert auth == f"method=CHAP user={bootvm.USER} user_in={bootvm.RUSER} password_in=set", auth
    print(f"{spec.name}: ibft at {firmware.uptime:.1f}s from {firmware.detail.split('=', 1)[1]}")
