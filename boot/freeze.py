"""Build the minimal Python runtime the initramfs carries, and prove it runs on its own.

The initramfs has no pip and no compiler, and every megabyte is read at each boot, so `pyiscsi` ships as:

    usr/lib/pyiscsi/bin/python3                  the host's interpreter (same binary the venv was made from)
    usr/lib/pyiscsi/lib/python311.zip            bytecode of exactly the modules the entries reach
    usr/lib/pyiscsi/lib/python3.11/lib-dynload/  only the extension modules that closure needs
    usr/sbin/pyiscsi                             exec python3 -I -S -B -m boot "$@"
    + the shared libraries of the ELF files above, at their host paths (ldd), /sbin/ldconfig for ctypes

The private prefix keeps us clear of any other python3 in the image. The interpreter finds it on its own: getpath
searches up from the executable for `lib/python3.11/lib-dynload` (exec_prefix) and the zip (prefix), so there is
no "Could not find platform ... libraries" warning and sys.path holds nothing outside the prefix.

The zip is reproducible: entries sorted, timestamps 1980-01-01, fixed modes, unchecked hash-based .pyc (no
mtimes, no source needed at run time), a fixed optimize level, and co_filename the module-relative path (never a
path of the build machine). `verify()` runs the tree in a chroot with `-I -S -B`, imports the entries and fails,
naming the module, if one is missing or was loaded from outside the tree.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.machinery
import importlib.util
import io
import json
import modulefinder
import os
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
import time
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path, PurePosixPath

from boot.commands.agent import PRELOAD as AGENT_PRELOAD
from initiator.errors import BadInputError, ExitStatus, PyiscsiError, WaitTimeout

PREFIX = PurePosixPath("/usr/lib/pyiscsi")
WRAPPER = PurePosixPath("/usr/sbin/pyiscsi")
PYVER = f"{sys.version_info.major}.{sys.version_info.minor}"
ZIP_NAME = f"python{sys.version_info.major}{sys.version_info.minor}.zip"

# What `pyiscsi` reaches in the initramfs. Commands are imported by name (boot.cli's table), so each is an
# entry of its own; the first ones that do not exist yet are reported, not silently skipped.
DEFAULT_ENTRIES = (
    "boot.cli",
    "boot.commands.ibft",
    "boot.commands.explain",
    "boot.commands.net",
    "boot.commands.boot",
    "boot.commands.handover",
    "boot.commands.agent",  # started by `pyiscsi boot` (`-m boot agent --daemon`)
)
# Imported at run time without an import statement the finder can see.
DEFAULT_EXTRAS = (
    "boot.__main__",  # `python3 -m boot`; importing it runs the CLI, so it is no entry to probe
    "encodings.aliases",  # interpreter start-up: the codec search and the UTF-8/ASCII/Latin-1 codecs
    "encodings.ascii",
    "encodings.latin_1",
    "encodings.utf_8",
    "encodings.idna",  # socket.getaddrinfo/create_connection encode every host name with it (C code, no import)
    "pyroute2.iproute",  # boot.net reaches IPRoute; named here so verify() imports it (and all of pyroute2/__init__)
    "pyudev",  # boot.disk imports it inside a function, guarded
    "ctypes.util",  # pyudev finds libudev through it
)
# The agent imports these up front (it must survive switch_root deleting the archive): carry every one (ours
# come with the boot.commands.agent entry).
DEFAULT_EXTRAS += tuple(
    name for name in AGENT_PRELOAD if name not in DEFAULT_EXTRAS and not name.startswith(("initiator.", "boot."))
)
NOT_PROBED = frozenset({"boot.__main__"})
# Packages whose submodules are found with pkgutil at run time: take all of them.
DEFAULT_PACKAGES = ("pyroute2.netlink.rtnl.ifinfmsg.plugins",)
# Never carried, even when some import statement names them: the boot path does not run them.
DEFAULT_EXCLUDES = (
    "test",
    "idlelib",
    "tkinter",
    "_tkinter",
    "turtle",
    "turtledemo",
    "ensurepip",
    "pydoc",
    "pydoc_data",
    "lib2to3",
    "distutils",
    "venv",
    "doctest",
    "pdb",
    "curses",
    "readline",
    "xmlrpc",
    "pyroute2.fixtures",
    "pytest",
)
# Shared libraries loaded with dlopen (ctypes), which ldd cannot see: soname -> the module that needs it.
DEFAULT_DLOPEN = {"libudev.so.1": "pyudev"}

FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
EXEC_MODE = 0o755
VERIFY_BOUND = 60.0
ZIP_BOUND = 300.0
MAX_LINKS = 40  # as the kernel's ELOOP limit


@dataclasses.dataclass(frozen=True)
class FreezeOptions:
    """Everything a build depends on; the same options over the same files give the same zip."""

    out: Path
    entries: tuple[str, ...] = DEFAULT_ENTRIES
    extras: tuple[str, ...] = DEFAULT_EXTRAS
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES
    search_path: tuple[Path, ...] = ()  # empty: our source root, then the running interpreter's sys.path
    interpreter: Path | None = None  # None: the interpreter this venv was made from (/usr/bin/python3)
    prefix: PurePosixPath = PREFIX
    wrapper: PurePosixPath | None = WRAPPER
    skip_missing: bool = False  # missing entries become warnings (a partial build while commands are written)
    copy_libraries: bool = True
    dlopen: tuple[tuple[str, str], ...] = tuple(DEFAULT_DLOPEN.items())  # (soname, module that dlopens it)
    ldconfig: bool = True
    optimize: int = 0  # asserts and docstrings stay: argparse help and error paths rely on them


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

    @property
    def interpreter(self) -> PurePosixPath:
        return self.prefix / "bin" / "python3"

    @property
    def zip_path(self) -> Path:
        return self.root / _rel(self.prefix / "lib" / ZIP_NAME)


@dataclasses.dataclass(frozen=True)
class Verification:
    """The frozen tree ran: how long it took and where each loaded module came from."""

    loaded: int
    startup_version_s: float
    import_entries_s: float


# ---------------------------------------------------------------------------------------------------------------
# The module closure


def default_search_path() -> tuple[Path, ...]:
    """Our source root first (the checkout or wherever the package is installed), then the running sys.path."""
    ours = Path(__file__).resolve().parent.parent
    paths = [ours]
    for entry in sys.path:
        path = Path(entry) if entry else None
        if path is not None and path.is_dir() and path.resolve() not in {p.resolve() for p in paths}:
            paths.append(path)
    return tuple(paths)


def host_interpreter() -> Path:
    """The real binary behind the venv (Debian's /usr/bin/python3 -> python3.11)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(base).resolve()


def _excluded(name: str, excludes: Iterable[str]) -> bool:
    return any(name == ex or name.startswith(ex + ".") for ex in excludes)


def _find_spec(name: str, search_path: Sequence[Path]) -> bool:
    """Whether `name` is on the search path or built into the interpreter, found without importing anything."""
    if name in sys.builtin_module_names or importlib.machinery.FrozenImporter.find_spec(name) is not None:
        return True
    paths = [str(p) for p in search_path]
    parts = name.split(".")
    for depth, part in enumerate(parts):
        spec = importlib.machinery.PathFinder.find_spec(part, paths)
        if spec is None:
            return False
        if depth < len(parts) - 1:
            if not spec.submodule_search_locations:
                return False
            paths = list(spec.submodule_search_locations)
    return True


def _submodules(package: str, search_path: Sequence[Path]) -> list[str]:
    """Every module under a package directory (for packages that load their plugins by listing themselves)."""
    parts = package.split(".")
    for base in search_path:
        directory = base.joinpath(*parts)
        if (directory / "__init__.py").is_file():
            names = [package]
            for path in sorted(directory.rglob("*.py")):
                rel = path.relative_to(base).with_suffix("")
                dotted = ".".join(rel.parts)
                names.append(dotted[: -len(".__init__")] if dotted.endswith(".__init__") else dotted)
            return sorted(set(names))
    raise BadInputError("package", package, "no such package on the search path")


def find_closure(options: FreezeOptions) -> tuple[modulefinder.ModuleFinder, tuple[str, ...]]:
    """Run the stdlib's modulefinder from every entry; returns it and the entries that do not exist."""
    search_path = options.search_path or default_search_path()
    missing = tuple(name for name in options.entries if not _find_spec(name, search_path))
    if missing and not options.skip_missing:
        where = ", ".join(str(p) for p in search_path[:3])
        raise BadInputError("entry", missing[0], f"no such module on the search path ({where}, ...)")
    for name in options.extras:
        if not _find_spec(name, search_path):
            raise BadInputError("extra", name, "no such module on the search path")
    finder = modulefinder.ModuleFinder(path=[str(p) for p in search_path], excludes=list(options.excludes))
    roots = [name for name in options.entries if name not in missing] + list(options.extras)
    for package in options.packages:
        roots.extend(_submodules(package, search_path))
    for name in roots:
        if _excluded(name, options.excludes):
            raise BadInputError("entry", name, "is also excluded")
        finder.import_hook(name)
    return finder, missing


# ---------------------------------------------------------------------------------------------------------------
# Bytecode and the archive


def _pyc(source: bytes, rel_name: str, optimize: int) -> bytes:
    code = compile(source, rel_name, "exec", dont_inherit=True, optimize=optimize)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), False))


def _archive_name(module: modulefinder.Module, name: str) -> str:
    base = name.replace(".", "/")
    return f"{base}/__init__" if module.__path__ else base


def collect_sources(finder: modulefinder.ModuleFinder, excludes: Iterable[str]) -> dict[str, Path]:
    """Archive stem -> source file for every pure-Python module in the closure (sorted for determinism)."""
    sources: dict[str, Path] = {}
    for name in sorted(finder.modules):
        module = finder.modules[name]
        if _excluded(name, excludes) or not module.__file__ or not module.__file__.endswith(".py"):
            continue
        sources[_archive_name(module, name)] = Path(module.__file__)
    return sources


def collect_extensions(finder: modulefinder.ModuleFinder) -> dict[str, Path]:
    """Module name -> extension-module file (.so) in the closure; only the stdlib's lib-dynload is supported."""
    dynload = Path(sysconfig.get_path("platstdlib", vars={"platbase": sys.base_exec_prefix})) / "lib-dynload"
    found: dict[str, Path] = {}
    for name in sorted(finder.modules):
        path = finder.modules[name].__file__
        if path and path.endswith(".so"):
            if Path(path).parent.resolve() != dynload.resolve():
                raise BadInputError("extension module", path, "only the interpreter's lib-dynload can be carried")
            found[name] = Path(path)
    return found


def write_zip(path: Path, sources: dict[str, Path], optimize: int) -> None:
    """A byte-for-byte reproducible archive of hash-based .pyc files, written by a fresh worker process.

    marshal marks an object for back-references when its refcount is above one, so the bytes of a .pyc depend
    on what else the compiling process holds (pytest, a long-lived build tool...). A worker that starts the same
    way every time, with a fixed hash seed, compiles the same sources to the same bytes."""
    job = {"out": str(path), "optimize": optimize, "sources": [[stem, str(sources[stem])] for stem in sorted(sources)]}
    root = str(Path(__file__).resolve().parent.parent)
    code = f"import sys; sys.path.insert(0, {root!r}); from boot.freeze import _zip_worker; _zip_worker()"
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-B", "-c", code],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            env=env,
            timeout=ZIP_BOUND,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout("bytecode archive", ZIP_BOUND, str(path)) from exc
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise BadInputError("bytecode archive", str(path), last)


def _zip_worker() -> None:
    """The worker's side of write_zip: a job as JSON on stdin."""
    job = json.load(sys.stdin)
    optimize = int(job["optimize"])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for stem, source_path in job["sources"]:
            try:
                pyc = _pyc(Path(source_path).read_bytes(), stem + ".py", optimize)
            except SyntaxError as exc:
                raise SystemExit(f"{source_path}: does not compile: {exc}") from None
            info = zipfile.ZipInfo(stem + ".pyc", date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = (0o100000 | FILE_MODE) << 16
            archive.writestr(info, pyc, compresslevel=9)
    out = Path(job["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())
    os.chmod(out, FILE_MODE)


# ---------------------------------------------------------------------------------------------------------------
# ELF files and their shared libraries

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
        candidate = root / _rel(current / part)
        if candidate.is_symlink():
            joined = PurePosixPath(os.path.normpath(current / os.readlink(candidate)))  # an absolute link restarts
            current = PurePosixPath("/") / _resolve_in(root, joined, depth + 1).relative_to(root)
        else:
            current = current / part
    return root / _rel(current)


def _rel(path: PurePosixPath) -> str:
    return str(path).lstrip("/")


# ---------------------------------------------------------------------------------------------------------------
# The build


def wrapper_script(prefix: PurePosixPath) -> str:
    """The command users and hooks run: isolated (-I), no site (-S), never writing bytecode (-B)."""
    return f'#!/bin/sh\n# pyiscsi, frozen by boot.freeze\nexec {prefix}/bin/python3 -I -S -B -m boot "$@"\n'


def _check_magic(interpreter: Path) -> None:
    """The bytecode is compiled here and run there: both must agree on the .pyc format."""
    if interpreter == host_interpreter():
        return
    probe = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    try:
        result = subprocess.run([str(interpreter), "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInputError("interpreter", str(interpreter), f"does not run: {exc}") from None
    if result.stdout != importlib.util.MAGIC_NUMBER.hex():
        raise BadInputError("interpreter", str(interpreter), f"is not the Python {PYVER} this build compiles for")


def build(options: FreezeOptions) -> FrozenTree:
    """Write the frozen tree under options.out (which may already hold an initramfs staging tree)."""
    interpreter = options.interpreter or host_interpreter()
    if not interpreter.is_file():
        raise BadInputError("interpreter", str(interpreter), "no such file")
    _check_magic(interpreter)
    finder, missing = find_closure(options)
    sources = collect_sources(finder, options.excludes)
    extensions = collect_extensions(finder)
    root = options.out
    prefix = options.prefix
    lib = root / _rel(prefix / "lib")
    dynload = lib / f"python{PYVER}" / "lib-dynload"
    dynload.mkdir(parents=True, exist_ok=True)  # getpath's exec_prefix landmark, even when empty
    write_zip(lib / ZIP_NAME, sources, options.optimize)
    bindir = root / _rel(prefix / "bin")
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(interpreter, bindir / "python3")
    os.chmod(bindir / "python3", EXEC_MODE)
    for path in extensions.values():
        shutil.copyfile(path, dynload / path.name)
        os.chmod(dynload / path.name, EXEC_MODE)
    if options.wrapper is not None:
        wrapper = root / _rel(options.wrapper)
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        wrapper.write_text(wrapper_script(prefix))
        os.chmod(wrapper, EXEC_MODE)
    libraries: set[str] = set()
    dlopen = [soname for soname, user in options.dlopen if user in finder.modules]
    if options.copy_libraries:
        for elf in [interpreter, *extensions.values()]:
            libraries.update(shared_libraries(elf))
        for soname in dlopen:
            where = find_dlopen_library(soname)
            libraries.add(where)
            libraries.update(shared_libraries(Path(where)))
        for library in sorted(libraries):
            install_host_file(library, root)
        if options.ldconfig:
            _install_ldconfig(root)
    return FrozenTree(
        root=root,
        prefix=prefix,
        entries=tuple(name for name in options.entries if name not in missing),
        modules=tuple(sorted(sources)),
        extensions=tuple(sorted(extensions)),
        libraries=tuple(sorted(libraries)),
        missing_entries=missing,
        probes=tuple(name for name in options.extras if name not in NOT_PROBED),
        unresolved=tuple(sorted(name for name in finder.badmodules if not _excluded(name, options.excludes))),
    )


def _install_ldconfig(root: Path) -> None:
    """ctypes.util.find_library (pyudev -> libudev) runs `/sbin/ldconfig -p`: carry it (static) and a cache."""
    ldconfig = "/sbin/ldconfig"
    if not Path(ldconfig).is_file():
        return
    install_host_file(ldconfig, root)
    conf = root / "etc" / "ld.so.conf"
    if not conf.exists():
        conf.parent.mkdir(parents=True, exist_ok=True)
        multiarch = sysconfig.get_config_var("MULTIARCH") or ""
        dirs = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
        conf.write_text("".join(f"{d}\n" for d in dirs))
    try:
        subprocess.run([ldconfig, "-r", str(root)], capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout("ldconfig -r", 60, str(root)) from exc


# ---------------------------------------------------------------------------------------------------------------
# Verification: run the tree on its own

_PROBE = r"""
import importlib, json, sys, time
start = time.monotonic()
failed = {}
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
took = time.monotonic() - start
prefix = sys.argv[1]
outside = {}
for name, module in sorted(sys.modules.items()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) if spec is not None else None
    where = getattr(module, "__file__", None) or origin
    if origin in ("built-in", "frozen") or where is None:
        continue
    if not str(where).startswith(prefix + "/"):
        outside[name] = str(where)
print(json.dumps({"failed": failed, "outside": outside, "loaded": len(sys.modules), "seconds": took,
                  "path": sys.path}))
"""


def _chroot_command(tree: FrozenTree, args: Sequence[str], chroot: bool) -> list[str]:
    python = [str(tree.interpreter), "-I", "-S", "-B", *args]
    if chroot:
        return ["chroot", str(tree.root), *python]
    return [str(tree.root.resolve() / _rel(tree.interpreter)), *python[1:]]


def _run(command: list[str], what: str, bound: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=bound, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout(what, bound) from exc


def _best_of(command: list[str], what: str, runs: int) -> tuple[float, subprocess.CompletedProcess[str]]:
    best = float("inf")
    result = None
    for _ in range(runs):
        started = time.monotonic()
        result = _run(command, what, VERIFY_BOUND)
        best = min(best, time.monotonic() - started)
    assert result is not None
    return best, result


@contextlib.contextmanager
def _dev_null(root: Path, chroot: bool) -> Iterator[None]:
    """subprocess (ctypes.util -> ldconfig) opens /dev/null; an initramfs has one, a bare tree needs it lent."""
    null = root / "dev" / "null"
    made: list[Path] = []
    if chroot and not null.exists():
        if not null.parent.exists():
            null.parent.mkdir()
            made.append(null.parent)
        os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        made.insert(0, null)
    try:
        yield
    finally:
        for path in made:
            path.rmdir() if path.is_dir() else path.unlink()


def verify(tree: FrozenTree, extra: Sequence[str] = (), chroot: bool | None = None, runs: int = 3) -> Verification:
    """Run the tree isolated (a chroot when root) and fail, naming the module, on anything it cannot import or
    loads from outside its prefix; also check `pyiscsi --version` and time both."""
    if chroot is None:
        chroot = os.geteuid() == 0
    with _dev_null(tree.root, chroot):
        return _verify(tree, [*tree.entries, *tree.probes, *extra], chroot, runs)


def _seen_prefix(tree: FrozenTree, chroot: bool) -> str:
    """The prefix as the frozen interpreter sees it: itself in a chroot, under the tree's root otherwise."""
    return str(tree.prefix) if chroot else str(tree.root.resolve() / _rel(tree.prefix))


def _verify(tree: FrozenTree, names: list[str], chroot: bool, runs: int) -> Verification:
    seconds, result = _best_of(
        _chroot_command(tree, ["-c", _PROBE, _seen_prefix(tree, chroot), *names], chroot), "frozen tree import", runs
    )
    where = "chroot" if chroot else "tree"
    if result.returncode != 0 or not result.stdout.strip():
        raise BadInputError(
            "frozen tree", str(tree.root), f"the interpreter failed in the {where}: {result.stderr.strip()[-400:]}"
        )
    if result.stderr.strip():  # getpath's "Could not find platform ... libraries" and any other warning
        raise BadInputError("frozen tree", str(tree.root), f"interpreter warned: {result.stderr.strip()[:400]}")
    probe = json.loads(result.stdout)
    if probe["failed"]:
        name, error = sorted(probe["failed"].items())[0]
        raise BadInputError(
            "frozen tree",
            name,
            f"does not import in the {where}: {error} (a module missing from the closure: add it with --extra)",
        )
    if probe["outside"]:
        name, origin = sorted(probe["outside"].items())[0]
        raise BadInputError("frozen tree", name, f"was loaded from outside {_seen_prefix(tree, chroot)}: {origin}")
    version_s, version = _best_of(_chroot_command(tree, ["-m", "boot", "--version"], chroot), "pyiscsi", runs)
    if version.returncode != 0 or not version.stdout.startswith("pyiscsi "):
        raise BadInputError(
            "frozen tree", "pyiscsi --version", f"exit {version.returncode}: {version.stderr.strip()[-400:]}"
        )
    return Verification(loaded=int(probe["loaded"]), startup_version_s=version_s, import_entries_s=seconds)


def tree_size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def report(tree: FrozenTree, checked: Verification | None) -> dict[str, object]:
    """The numbers the issue asks for, as JSON-ready data."""
    data: dict[str, object] = {
        "modules": len(tree.modules),
        "zip_bytes": tree.zip_path.stat().st_size,
        "tree_bytes": tree_size(tree.root),
        "extensions": list(tree.extensions),
        "libraries": list(tree.libraries),
        "entries": list(tree.entries),
        "missing_entries": list(tree.missing_entries),
        "unresolved_imports": len(tree.unresolved),
    }
    if checked is not None:
        data["loaded_modules"] = checked.loaded
        data["startup_version_ms"] = round(checked.startup_version_s * 1000, 1)
        data["import_entries_ms"] = round(checked.import_entries_s * 1000, 1)
    return data


# ---------------------------------------------------------------------------------------------------------------
# Command line: python -m boot.freeze --out DIR


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m boot.freeze", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="tree to write into (e.g. dracut's $initdir)")
    parser.add_argument("--entry", action="append", help="entry module (repeatable; default: pyiscsi's commands)")
    parser.add_argument("--extra", action="append", default=[], help="also carry this module (dynamic imports)")
    parser.add_argument("--package", action="append", default=[], help="also carry every module of this package")
    parser.add_argument("--exclude", action="append", default=[], help="never carry this module or package")
    parser.add_argument("--path", action="append", type=Path, default=[], help="search here before sys.path")
    parser.add_argument("--prefix", default=str(PREFIX), help=f"runtime prefix inside the tree ({PREFIX})")
    parser.add_argument("--skip-missing", action="store_true", help="warn about missing entries instead of failing")
    parser.add_argument("--no-libs", action="store_true", help="do not copy shared libraries (the caller does)")
    parser.add_argument("--verify", action="store_true", help="run the tree (in a chroot when root) and check it")
    parser.add_argument("--report", action="store_true", help="print sizes and start-up times as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    defaults = FreezeOptions(out=args.out)
    options = dataclasses.replace(
        defaults,
        entries=tuple(args.entry) if args.entry else defaults.entries,
        extras=defaults.extras + tuple(args.extra),
        packages=defaults.packages + tuple(args.package),
        excludes=defaults.excludes + tuple(args.exclude),
        search_path=tuple(args.path) + default_search_path() if args.path else (),
        prefix=PurePosixPath(args.prefix),
        skip_missing=args.skip_missing,
        copy_libraries=not args.no_libs,
        ldconfig=not args.no_libs,
    )
    try:
        tree = build(options)
        for name in tree.missing_entries:
            print(f"boot.freeze: warning: entry module {name!r} does not exist; skipped", file=sys.stderr)
        checked = verify(tree) if args.verify or args.report else None
    except PyiscsiError as exc:
        print(f"boot.freeze: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    if args.report:
        print(json.dumps(report(tree, checked), indent=2))
    return int(ExitStatus.OK)


if __name__ == "__main__":
    raise SystemExit(main())
