"""The shared libraries the frozen interpreter needs, copied from the host to the same paths under the tree.

ldd finds what the ELF files link against; a library only ever dlopen()ed (pyudev's libudev, through ctypes) is
named by hand with the module that opens it, and found in the host's loader cache. In the tree, ctypes finds it
without ldconfig (closure.DEFAULT_REPLACEMENTS: our ctypes.util).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path, PurePosixPath

from boot.freeze.layout import rel
from initiator.errors import BadInputError, WaitTimeout

# Shared libraries loaded with dlopen (ctypes), which ldd cannot see: soname -> the module that needs it.
DEFAULT_DLOPEN = {"libudev.so.1": "pyudev"}
MAX_LINKS = 40  # as the kernel's ELOOP limit

_LDD_ARROW = re.compile(r"^\s*(\S+)\s+=>\s+(/\S+)\s+\(0x[0-9a-f]+\)$")
_LDD_PLAIN = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)$")


def shared_libraries(elf: Path) -> list[str]:
    """The absolute paths ldd resolves for one ELF file (the loader included)."""
    try:
        result = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout("ldd", 30, str(elf)) from exc
    if result.returncode != 0 and "not a dynamic executable" in (result.stdout + result.stderr):
        return []
    if result.returncode != 0:
        raise BadInputError("ldd", str(elf), result.stderr.strip() or f"exit status {result.returncode}")
    paths = []
    for line in result.stdout.splitlines():
        if "=> not found" in line:
            raise BadInputError("shared library", line.split()[0], f"needed by {elf} and not found")
        match = _LDD_ARROW.match(line) or _LDD_PLAIN.match(line)
        if match:
            paths.append(match.groups()[-1])
    return paths


def find_dlopen_library(soname: str) -> str:
    """Where the host's loader cache puts a library that is only ever dlopen()ed (ctypes)."""
    try:
        result = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout("ldconfig -p", 30) from exc
    multiarch = sysconfig.get_config_var("MULTIARCH") or ""
    found = []
    for line in result.stdout.splitlines():
        name, _, where = line.strip().partition(" => ")
        if name.split(" ", 1)[0] == soname and where:
            found.append(where.strip())
    found.sort(key=lambda where: f"/{multiarch}/" not in where)  # this interpreter's architecture first
    if not found:
        raise BadInputError("dlopen library", soname, "not in the host's loader cache (ldconfig -p)")
    return found[0]


def install_host_file(host_path: str, root: Path, mode: int | None = None) -> None:
    """Copy a host file to the same path under root, recreating symlinked directories and symlink chains as
    the host has them (usr-merged /lib, libfoo.so.1 -> libfoo.so.1.2.3); files already there are kept.
    Paths under root are resolved as a chroot would see them, so no link, absolute or not, leads out of root."""
    path = PurePosixPath(os.path.normpath(host_path))
    _install_dirs(path.parent, root)
    host = Path(path)
    if host.is_symlink():
        link = os.readlink(host)
        spot = _resolve_in(root, path.parent) / path.name
        if not spot.is_symlink() and not spot.exists():
            spot.symlink_to(link)
        install_host_file(os.path.normpath(path.parent / link), root, mode)
        return
    dest = _resolve_in(root, path)
    if dest.exists():
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(host, dest)
    os.chmod(dest, mode if mode is not None else (host.stat().st_mode & 0o777))


def _install_dirs(directory: PurePosixPath, root: Path, depth: int = 0) -> None:
    """Every directory of a host path exists under root: a symlink where the host has one, else a directory."""
    if depth > MAX_LINKS:
        raise BadInputError("host path", str(directory), "too many levels of symbolic links")
    current = PurePosixPath("/")
    for part in directory.parts[1:]:
        current = current / part
        spot = _resolve_in(root, current.parent) / part
        if not spot.is_symlink() and not spot.exists():
            host = Path(current)
            if host.is_symlink():
                spot.symlink_to(os.readlink(host))
            else:
                spot.mkdir(mode=0o755)
        if spot.is_symlink():
            target = PurePosixPath(os.path.normpath(current.parent / os.readlink(spot)))
            _install_dirs(target, root, depth + 1)


def _resolve_in(root: Path, path: PurePosixPath, depth: int = 0) -> Path:
    """Where an absolute path lands under root, following symlinks as if root were / (never above root)."""
    if depth > MAX_LINKS:
        raise BadInputError("tree path", str(path), "too many levels of symbolic links")
    current = PurePosixPath("/")
    for part in path.parts[1:]:
        candidate = root / rel(current / part)
        if candidate.is_symlink():
            joined = PurePosixPath(os.path.normpath(current / os.readlink(candidate)))  # an absolute link restarts
            current = PurePosixPath("/") / _resolve_in(root, joined, depth + 1).relative_to(root)
        else:
            current = current / part
    return root / rel(current)
