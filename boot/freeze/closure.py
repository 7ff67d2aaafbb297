"""Which modules the frozen tree carries: the entries, everything their import statements reach, the modules
imported by name that no statement shows, minus what the boot path never runs.

The finder is the stdlib's modulefinder, run over a search path (our source root first, then this interpreter's
sys.path) without importing anything.
"""

from __future__ import annotations

import importlib.machinery
import modulefinder
import sys
import sysconfig
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from boot.cli import COMMANDS
from boot.commands.agent import PRELOAD as AGENT_PRELOAD
from initiator.errors import BadInputError

if TYPE_CHECKING:
    from boot.freeze.options import FreezeOptions

# What `pyiscsi` reaches in the initramfs: every subcommand (by hand in the emergency shell too: `discover` and
# `probe` to see what a portal offers). Commands are imported by name (boot.cli's table), so each is an entry of
# its own; the ones that do not exist are reported, not silently skipped.
DEFAULT_ENTRIES = ("boot.cli", *(module for module, _ in COMMANDS.values()))
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
# The agent imports these up front (it must survive switch_root deleting the tree): carry every one (ours
# come with the boot.commands.agent entry).
DEFAULT_EXTRAS += tuple(
    name for name in AGENT_PRELOAD if name not in DEFAULT_EXTRAS and not name.startswith(("initiator.", "boot."))
)
NOT_PROBED = frozenset({"boot.__main__"})
# Packages whose submodules are found with pkgutil at run time: take all of them.
DEFAULT_PACKAGES = ("pyroute2.netlink.rtnl.ifinfmsg.plugins",)
# Distribution metadata and package resources (and the zip and mail parsing they bring): reached through
# importlib's own functions for them, which nothing at boot calls (pyroute2 0.7.2's package init did; the tree
# carries ours instead). zipfile is otherwise reached only by shutil's archive functions.
METADATA_MODULES = ("importlib.metadata", "importlib.resources", "importlib.readers", "zipfile")
# multiprocessing's parts for starting processes and talking between them. pyroute2 imports the package (its
# config names multiprocessing.Pipe, Queue and Process) and asyncio names some of it in functions, but nothing
# runs them at boot: pyroute2 starts a process only for a network namespace, which the boot never asks for, and
# the agent is a fork of `pyiscsi boot` (os.fork). The package itself and what it imports (context, process,
# reduction) stay. With them go tempfile and secrets, which only these import, and runpy (the interpreter has
# its own frozen copy for `-m`). A third of a MiB of bytecode.
MULTIPROCESSING_UNUSED = (
    *(
        f"multiprocessing.{part}"
        for part in (
            "connection",
            "dummy",
            "forkserver",
            "heap",
            "managers",
            "pool",
            "popen_fork",
            "popen_forkserver",
            "popen_spawn_posix",
            "queues",
            "resource_sharer",
            "resource_tracker",
            "shared_memory",
            "sharedctypes",
            "spawn",
            "synchronize",
            "util",
        )
    ),
    "_multiprocessing",
    "_posixshmem",
    "concurrent.futures.process",
)
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
    # Reached by some import statement of the closure but never loaded by `boot`, the agent or the handover with
    # pyroute2 0.7.2 or 0.9 (the modules each loads, importing the entries and running our import statements):
    # decimal arithmetic, XML, archives, mail formatting, other platforms' code.
    "decimal",
    "_decimal",
    "_pydecimal",
    "fractions",
    "statistics",
    "plistlib",
    "xml",
    "pyexpat",
    "tarfile",
    "gzip",
    "py_compile",
    "tracemalloc",
    "email.generator",
    "email.policy",
    "email.headerregistry",
    "email._header_value_parser",
    "email.contentmanager",
    "unittest.async_case",
    "asyncio.windows_events",
    "asyncio.windows_utils",
    "asyncio.proactor_events",
    "multiprocessing.popen_spawn_win32",
    "encodings.mbcs",
    "ctypes._aix",
    "pyroute2.bsd.pf_route",
    "pyroute2.bsd.rtmsocket",
    "pyroute2.bsd.util",
    "pyroute2.iproute.bsd",
    "pyroute2.iproute.darwin",
    "pyroute2.iproute.windows",
    "pyroute2.iproute.pyodide",
    *METADATA_MODULES,
    *MULTIPROCESSING_UNUSED,
    # Loaded, but each import is guarded and nothing on the boot path compresses: without them shutil, zipfile
    # and tarfile say "unsupported", and liblzma and libbz2 stay out of the tree.
    "bz2",
    "_bz2",
    "lzma",
    "_lzma",
    # hashlib falls back to the interpreter's built-in MD5/SHA-1/SHA-2/SHA-3 (all CHAP needs) and hmac to its
    # pure-Python code: no OpenSSL start-up on the first digest.
    "_hashlib",
    # TLS: `ssl` is our stand-in (DEFAULT_REPLACEMENTS), so neither _ssl nor libssl/libcrypto are carried.
    "_ssl",
    # uuid's C part serves time-based UUIDs (uuid1); the only UUIDs made at boot are name-based (uuid5, SHA-1), and
    # uuid guards the import: without it libuuid stays out too.
    "_uuid",
)
LIGHTER = Path(__file__).resolve().parent / "lighter"
# Modules the tree carries as a source of ours instead of the library's (a package's __init__, or a module):
# - pyroute2: the library's package init imports every public class it has (NDB with sqlite3, conntrack, wireless,
#   plan9...) whenever any of its modules is imported; ours sets what its modules read from the package. The boot
#   imports the modules it uses by their own names, so it loads a third fewer modules, and sqlite3 stays out.
# - ssl: the initramfs makes no TLS connection, but asyncio and pyroute2 0.9 import ssl and name its exception
#   types at import time; the stand-in has those types and raises on any way into TLS. OpenSSL (5.6 MiB) stays out.
# - pyroute2.netlink.rt_files (0.9): the library declares its iproute2 map files as dataclasses, whose methods
#   are compiled with exec() when any of its sockets is imported; ours are the same classes written once.
# - unittest: pyroute2 0.9 imports unittest.mock when imported; ours loads the test framework only when a name of
#   it is asked for, so the boot does not import unittest's cases, loader, runner and argparse-based main.
# - ctypes.util: find_library looks in the loader's directories itself instead of running `ldconfig -p` (pyudev
#   finds libudev through it): no ldconfig in the tree (1 MiB), no process started at boot.
# - datetime: the C implementation alone; the stdlib's module defines its pure-Python one first (pyudev imports
#   datetime when imported).
# - gettext: the tree has no message catalogs, so every message is its own translation; the stdlib's module
#   imports locale and looks for catalogs on each of argparse's headings (a by-hand command builds a parser).
DEFAULT_REPLACEMENTS = (
    ("pyroute2", LIGHTER / "pyroute2_init.py"),
    ("pyroute2.netlink.rt_files", LIGHTER / "pyroute2_rt_files.py"),
    ("ssl", LIGHTER / "ssl_absent.py"),
    ("ctypes.util", LIGHTER / "ctypes_util.py"),
    ("unittest", LIGHTER / "unittest_init.py"),
    ("datetime", LIGHTER / "datetime_c.py"),
    ("gettext", LIGHTER / "gettext_untranslated.py"),
)


def default_search_path() -> tuple[Path, ...]:
    """Our source root first (the checkout or wherever the package is installed), then the running sys.path."""
    ours = Path(__file__).resolve().parents[2]
    paths = [ours]
    for entry in sys.path:
        path = Path(entry) if entry else None
        if path is not None and path.is_dir() and path.resolve() not in {p.resolve() for p in paths}:
            paths.append(path)
    return tuple(paths)


def excluded(name: str, excludes: Iterable[str]) -> bool:
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
    for name, source in options.replacements:
        if not source.is_file():
            raise BadInputError("replacement", name, f"no such file: {source}")
    finder = _Finder(options.replacements, path=[str(p) for p in search_path], excludes=list(options.excludes))
    roots = [name for name in options.entries if name not in missing] + list(options.extras)
    for package in options.packages:
        roots.extend(_submodules(package, search_path))
    for name in roots:
        if excluded(name, options.excludes):
            raise BadInputError("entry", name, "is also excluded")
        finder.import_hook(name)
    return finder, missing


class _Finder(modulefinder.ModuleFinder):
    """modulefinder that reads our source for a replaced module (a package keeps its directory for its
    submodules; only its __init__ is ours)."""

    def __init__(self, replacements: Iterable[tuple[str, Path]], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.replacements = dict(replacements)

    def find_module(self, name: str, path: object, parent: object = None) -> tuple[object, str, tuple[str, str, int]]:
        fullname = f"{parent.__name__}.{name}" if parent is not None else name  # type: ignore[attr-defined]
        source = self.replacements.get(fullname)
        if source is None:
            return super().find_module(name, path, parent)
        try:
            found = super().find_module(name, path, parent)
        except ImportError:
            found = (None, "", ("", "", 0))
        if found[2][2] == modulefinder._PKG_DIRECTORY:  # type: ignore[attr-defined]
            return found  # load_package reads our __init__
        if found[0] is not None:
            found[0].close()  # type: ignore[attr-defined]
        return open(source, "rb"), str(source), (".py", "rb", modulefinder._PY_SOURCE)  # type: ignore[attr-defined]

    def _safe_import_hook(self, name: str, caller: object, fromlist: object, level: int = -1) -> None:
        """modulefinder files a failed relative import under its bare name and then skips every import of that
        name: once multiprocessing.context's `.queues` was excluded, asyncio's own `.queues` was never followed
        and asyncio.queues went missing from the tree. A relative import is followed for its own package."""
        if level < 1 or name not in self.badmodules:
            super()._safe_import_hook(name, caller, fromlist, level)  # type: ignore[misc]
            return
        earlier = self.badmodules.pop(name)
        try:
            super()._safe_import_hook(name, caller, fromlist, level)  # type: ignore[misc]
        finally:
            self.badmodules.setdefault(name, {}).update(earlier)

    def load_package(self, fqname: str, pathname: str) -> modulefinder.Module:
        source = self.replacements.get(fqname)
        if source is None:
            return super().load_package(fqname, pathname)
        module = self.add_module(fqname)
        module.__path__ = [pathname]
        with open(source, "rb") as init:
            self.load_module(fqname, init, str(source), (".py", "rb", modulefinder._PY_SOURCE))  # type: ignore[attr-defined]
        return module


def _stem(module: modulefinder.Module, name: str) -> str:
    base = name.replace(".", "/")
    return f"{base}/__init__" if module.__path__ else base


def collect_sources(finder: modulefinder.ModuleFinder, excludes: Iterable[str]) -> dict[str, Path]:
    """Bytecode stem (`pkg/__init__`, `pkg/mod`) -> source file, for every pure-Python module in the closure
    (sorted for determinism)."""
    sources: dict[str, Path] = {}
    for name in sorted(finder.modules):
        module = finder.modules[name]
        if excluded(name, excludes) or not module.__file__ or not module.__file__.endswith(".py"):
            continue
        sources[_stem(module, name)] = Path(module.__file__)
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
