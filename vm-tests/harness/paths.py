"""Where things live: the checkout, the per-user cache, the tools Debian packages put on the host."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VM_TESTS = REPO / "vm-tests"
# Heavy artefacts (the pinned kernel, Debian roots, images) live outside the checkout, so a fresh clone (as CI
# makes every run) reuses what an earlier run built; keys inside it are hashes of each artefact's inputs.
# `make deps` links `cache` in the checkout to it for people who look there.
CACHE = Path(os.environ.get("PYISCSI_CACHE") or Path.home() / ".cache" / "pyiscsi")
PIN_FILE = VM_TESTS / "kernel.pin"
BUSYBOX = Path("/bin/busybox")
# QEMU 7.2 finds this (ipxe-qemu's BIOS+EFI image) by itself for virtio-net-pci; an explicit romfile= of the
# BIOS-only pxe-virtio.rom was never offered as a boot device by SeaBIOS here.
IPXE_VIRTIO_ROM = Path("/usr/lib/ipxe/qemu/efi-virtio.rom")
