"""The options of one build, with the defaults `pyiscsi` needs in the initramfs."""

from __future__ import annotations

import dataclasses
from pathlib import Path, PurePosixPath

from boot.freeze.closure import (
    DEFAULT_ENTRIES,
    DEFAULT_EXCLUDES,
    DEFAULT_EXTRAS,
    DEFAULT_PACKAGES,
    DEFAULT_REPLACEMENTS,
)
from boot.freeze.imports import OWN_PACKAGES
from boot.freeze.layout import PREFIX, WRAPPER
from boot.freeze.libraries import DEFAULT_DLOPEN


@dataclasses.dataclass(frozen=True)
class FreezeOptions:
    """Everything a build depends on; the same options over the same files give the same bytecode."""

    out: Path
    entries: tuple[str, ...] = DEFAULT_ENTRIES
    extras: tuple[str, ...] = DEFAULT_EXTRAS
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES
    replacements: tuple[tuple[str, Path], ...] = DEFAULT_REPLACEMENTS  # (module, our source carried in its place)
    search_path: tuple[Path, ...] = ()  # empty: our source root, then the running interpreter's sys.path
    interpreter: Path | None = None  # None: the interpreter this venv was made from (/usr/bin/python3)
    prefix: PurePosixPath = PREFIX
    wrapper: PurePosixPath | None = WRAPPER
    skip_missing: bool = False  # missing entries become warnings (a partial build while commands are written)
    copy_libraries: bool = True
    dlopen: tuple[tuple[str, str], ...] = tuple(DEFAULT_DLOPEN.items())  # (soname, module that dlopens it)
    optimize: int = 0  # asserts and docstrings stay: argparse help and error paths rely on them
    line_numbers: bool = False  # True: each instruction's own line, not its function's first (+0.6 MiB of bytecode)
    # build() ends by running every import statement of ours in the tree: a tree that cannot boot is an error
    check_imports: bool = True
    own_packages: tuple[str, ...] = OWN_PACKAGES  # whose import statements the tree must run (verify() too)
