"""The one frozen tree most boot.freeze tests share (a build takes seconds)."""

from __future__ import annotations

import os
import stat

import pytest

from boot import freeze
from tests.boot.freeze.frozen import options


@pytest.fixture(scope="session")
def tree(tmp_path_factory: pytest.TempPathFactory) -> freeze.FrozenTree:
    built = freeze.build(options(tmp_path_factory.mktemp("frozen") / "root"))
    if os.geteuid() == 0:  # what an initramfs always has: a child process opens /dev/null
        (built.root / "dev").mkdir()
        os.mknod(built.root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return built
