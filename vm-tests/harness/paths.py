"""Where things live: the checkout, the git-ignored cache, the tools Debian packages put on the host."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VM_TESTS = REPO / "vm-tests"
CACHE = REPO / "cache"
PIN_FILE = VM_TESTS / "kernel.pin"
BUSYBOX = Path("/bin/busybox")
# QEMU 7.2 finds this (ipxe-qemu's BIOS+EFI image) by itself for virtio-net-pci; an explicit romfile= of the
# BIOS-only pxe-virtio.rom was never offered as a boot device by SeaBIOS here.
IPXE_VIRTIO_ROM = Path("/usr/lib/ipxe/qemu/efi-virtio.rom")
