"""Where things live: the checkout, the git-ignored cache, the tools Debian packages put on the host."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VM_TESTS = REPO / "vm-tests"
CACHE = REPO / "cache"
PIN_FILE = VM_TESTS / "kernel.pin"
BUSYBOX = Path("/bin/busybox")
IPXE_VIRTIO_ROM = Path("/usr/lib/ipxe/qemu/pxe-virtio.rom")
