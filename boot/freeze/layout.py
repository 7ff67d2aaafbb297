"""Where the frozen runtime lives inside the tree, and the record of what one build wrote there.

Every path is absolute as the initramfs sees it (PurePosixPath); `rel()` turns one into a path under the tree's
root on the build machine. The private prefix keeps us clear of any other python3 in the image.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path, PurePosixPath

from boot.freeze.imports import RuntimeImport

PREFIX = PurePosixPath("/usr/lib/pyiscsi")
WRAPPER = PurePosixPath("/usr/sbin/pyiscsi")
PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"
BYTECODE_DIR = f"python{PYVER}"  # under lib/: the stdlib directory the interpreter has on its path by itself
FILE_MODE = 0o644
DIR_MODE = 0o755
EXEC_MODE = 0o755


def rel(path: PurePosixPath) -> str:
    """An absolute path of the image as a path relative to the tree's root."""
    return str(path).lstrip("/")


# What the wrapper runs: boot.__main__'s two lines, without `-m` (runpy and what it imports: importlib.util,
# contextlib, ... are a fifth of a frozen `pyiscsi --version`). The agent's own start (`-m boot agent`) keeps -m.
WRAPPER_CODE = "from boot.cli import exit_with, main; exit_with(main())"


def wrapper_script(prefix: PurePosixPath) -> str:
    """The command users and hooks run: isolated (-I), no site (-S), never writing bytecode (-B)."""
    command = f"exec {prefix}/bin/python3 -I -S -B -c '{WRAPPER_CODE}' \"$@\""
    return f"#!/bin/sh\n# pyiscsi, frozen by boot.freeze\n{command}\n"


@dataclasses.dataclass(frozen=True)
class FrozenTree:
    """What a build wrote, for the report and for verify()."""

    root: Path
    prefix: PurePosixPath
    entries: tuple[str, ...]
    modules: tuple[str, ...]
    extensions: tuple[str, ...]
    libraries: tuple[str, ...]
    missing_entries: tuple[str, ...]
    unresolved: tuple[str, ...]  # names the finder saw imported but could not find (platform-specific, optional)
    probes: tuple[str, ...] = ()  # extras verify() imports too (all but those that run something on import)
    imports: tuple[RuntimeImport, ...] = ()  # every import our code runs at boot: each must work in the tree

    @property
    def interpreter(self) -> PurePosixPath:
        return self.prefix / "bin" / "python3"

    @property
    def bytecode_dir(self) -> Path:
        """Our .pyc files (boot.freeze.bytecode), and lib-dynload beside them."""
        return self.root / rel(self.prefix / "lib" / BYTECODE_DIR)

    def bytecode_files(self) -> list[Path]:
        """Every .pyc of the tree, sorted (lib-dynload holds none)."""
        return sorted(self.bytecode_dir.rglob("*.pyc"))

    def bytecode_bytes(self) -> int:
        """The .pyc files' size: the report's and the bench's figure."""
        return sum(path.stat().st_size for path in self.bytecode_files())
