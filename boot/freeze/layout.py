"""Where the frozen runtime lives inside the tree, and the record of what one build wrote there.

Every path is absolute as the initramfs sees it (PurePosixPath); `rel()` turns one into a path under the tree's
root on the build machine. The private prefix keeps us clear of any other python3 in the image.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Sequence
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
WRAPPER_CODE = "from boot.cli import entry; entry()"


# What `-E` would ignore, as the wrapper cannot pass -E (see wrapper_script): the variables the stdlib reads on its
# own, and (interpreter_variables) every PYTHON... name in the interpreter's binary, found when the tree is built.
STDLIB_VARIABLES = ("PYTHONASYNCIODEBUG", "PYTHONHOME", "PYTHONINSPECT", "PYTHONPATH", "PYTHONSTARTUP")
HASH_SEED = "PYTHONHASHSEED"
UUID_SOURCE = "/proc/sys/kernel/random/uuid"  # a fresh random uuid per read, never waiting for entropy
_HEX8 = "[0-9a-f]" * 8


def interpreter_variables(*binaries: Path) -> tuple[str, ...]:
    """Every environment variable the interpreter may read, but the hash seed: names found in its binaries."""
    names = set(STDLIB_VARIABLES)
    for binary in binaries:
        names.update(found.decode() for found in re.findall(rb"PYTHON[A-Z0-9_]+", binary.read_bytes()))
    names.discard(HASH_SEED)
    return tuple(sorted(names))


def wrapper_script(prefix: PurePosixPath, variables: Sequence[str] = STDLIB_VARIABLES) -> str:
    """The command users and hooks run: isolated, no site (-S), never writing bytecode (-B).

    Isolated as -I is, but for PYTHONHASHSEED: -s -P, every other variable in `variables` unset, and a hash seed
    from the kernel's uuid source, which never waits. Python's own seed is a read of /dev/urandom, which early in
    a boot without a hardware random source waits until the kernel's pool is seeded (seconds under emulation).
    """
    lines = [
        "#!/bin/sh",
        "# pyiscsi, frozen by boot.freeze: as python3 -I, but with a hash seed that never waits for entropy",
        f"unset {' '.join(variables)}",
        f"{HASH_SEED}=",
        f"read -r {HASH_SEED} 2>/dev/null <{UUID_SOURCE}",
        f"case ${HASH_SEED} in",
        f"{_HEX8}-*) {HASH_SEED}=$((0x${{{HASH_SEED}%%-*}})) && export {HASH_SEED} ;;",
        f"*) unset {HASH_SEED} ;;",
        "esac",
        f"exec {prefix}/bin/python3 -s -P -S -B -c '{WRAPPER_CODE}' \"$@\"",
    ]
    return "\n".join(lines) + "\n"


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
