"""ctypes.util as the frozen tree carries it: find_library without ldconfig, a compiler or a linker.

The stdlib's find_library asks `ldconfig -p` (or gcc, or ld) for a library's file name. An initramfs has none of
them unless it carries them (ldconfig alone is 1 MiB), and each call would start a process. The libraries the tree's
code opens by name (libudev for pyudev, libc for pyroute2's namespace code) are in the loader's own directories,
under their soname: `lib<name>.so.<major>`."""

from __future__ import annotations

import os
import sys

_BASES = ("/usr/lib", "/lib", "/usr/lib64", "/lib64")


def _directories() -> list[str]:
    multiarch = getattr(sys.implementation, "_multiarch", "")
    found: list[str] = []
    for base in _BASES:
        found.extend([f"{base}/{multiarch}", base] if multiarch else [base])
    return found


def find_library(name: str) -> str | None:
    """The soname (`libudev.so.1`) of lib<name> in the loader's directories, the highest major if several; None
    if there is none, as the stdlib's answers for a library it cannot find."""
    prefix = f"lib{name}.so."
    for directory in _directories():
        try:
            entries = os.listdir(directory)
        except OSError:
            continue
        majors = [entry[len(prefix) :] for entry in entries if entry.startswith(prefix)]
        numbered = sorted(int(major) for major in majors if major.isdigit())
        if numbered:
            return f"{prefix}{numbered[-1]}"
    return None
