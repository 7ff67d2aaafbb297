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
