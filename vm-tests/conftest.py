"""VM tests: `harness` (this folder) and the repo root are importable; the pinned kernel is fetched once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE, HERE.parent):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


@pytest.fixture(scope="session")
def pinned_kernel():
    """The pinned Debian kernel, unpacked under cache/kernel (quick when `make deps` already fetched it)."""
    from harness import kernel

    return kernel.require()


@pytest.fixture(scope="session")
def systemd_image(pinned_kernel):
    """The product initramfs, systemd flavour (harness.initramfs: built once per content, then from its cache)."""
    from harness import initramfs

    return initramfs.build(pinned_kernel.release, pinned_kernel.modules, "systemd").path


@pytest.fixture(scope="session")
def sh_image(pinned_kernel):
    """The product initramfs, dracut's own sh init."""
    from harness import initramfs

    return initramfs.build(pinned_kernel.release, pinned_kernel.modules, "sh").path
