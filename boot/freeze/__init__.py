"""Build the minimal Python runtime the initramfs carries, and prove it runs on its own.

The initramfs has no pip and no compiler, and every megabyte is read at each boot, so `pyiscsi` ships as:

    usr/lib/pyiscsi/bin/python3                  the host's interpreter (same binary the venv was made from)
    usr/lib/pyiscsi/lib/python3.11/              bytecode (.pyc) of exactly the modules the entries reach
    usr/lib/pyiscsi/lib/python3.11/lib-dynload/  only the extension modules that closure needs
    usr/sbin/pyiscsi                             sh: PYTHON... unset, a hash seed that never waits,
                                                 exec python3 -s -P -S -B -c '<boot.__main__'s code>' "$@"
    + the shared libraries of the ELF files above, at their host paths (ldd)

The interpreter finds its prefix on its own: getpath searches up from the executable for `lib/python3.11/
lib-dynload` (exec_prefix) and `lib/python3.11/os.pyc` (prefix), so there is no "Could not find platform ...
libraries" warning and sys.path holds nothing outside the prefix (its first entry, lib/python311.zip, does not
exist and costs nothing).

A tree that cannot boot is never handed on: build() ends by running, with the tree's own interpreter, every
import statement our code runs at boot (function-level ones too), and fails naming the first that does not work
(`from pyroute2 import IPRoute`); verify() runs the tree as the initramfs will (a chroot), imports the entries,
runs those statements again, checks that nothing comes from outside the prefix, and times `pyiscsi --version`.

One module per job: `closure` (which modules), `imports` (the import statements our code runs at boot),
`bytecode` (the reproducible .pyc files), `libraries` (shared libraries), `lighter` (our sources in place of
pyroute2's package init, ssl, ctypes.util, unittest's package init and datetime), `interpreter`, `layout`
(paths in the tree, FrozenTree), `options`, `build`, `verify` (run the tree: imports, --version, timing),
`report`, `cli` (`python -m boot.freeze`).
"""

from __future__ import annotations

from boot.freeze.build import build
from boot.freeze.bytecode import BYTECODE_BOUND, FIXED_MTIME, in_stdlib, write_bytecode
from boot.freeze.cli import main
from boot.freeze.closure import (
    DEFAULT_ENTRIES,
    DEFAULT_EXCLUDES,
    DEFAULT_EXTRAS,
    DEFAULT_PACKAGES,
    NOT_PROBED,
    collect_extensions,
    collect_sources,
    default_search_path,
    find_closure,
)
from boot.freeze.imports import RuntimeImport, runtime_imports
from boot.freeze.interpreter import host_interpreter
from boot.freeze.layout import (
    BYTECODE_DIR,
    DIR_MODE,
    EXEC_MODE,
    FILE_MODE,
    PREFIX,
    PYVER,
    WRAPPER,
    WRAPPER_CODE,
    FrozenTree,
    interpreter_variables,
    rel,
    wrapper_script,
)
from boot.freeze.libraries import (
    DEFAULT_DLOPEN,
    MAX_LINKS,
    find_dlopen_library,
    install_host_file,
    shared_libraries,
)
from boot.freeze.options import FreezeOptions
from boot.freeze.report import report, tree_size
from boot.freeze.verify import VERIFY_BOUND, Verification, check_imports, verify

_rel = rel  # the name the bench and the tests have always used

__all__ = [
    "BYTECODE_BOUND",
    "BYTECODE_DIR",
    "DEFAULT_DLOPEN",
    "DEFAULT_ENTRIES",
    "DEFAULT_EXCLUDES",
    "DEFAULT_EXTRAS",
    "DEFAULT_PACKAGES",
    "DIR_MODE",
    "EXEC_MODE",
    "FILE_MODE",
    "FIXED_MTIME",
    "MAX_LINKS",
    "NOT_PROBED",
    "PREFIX",
    "PYVER",
    "VERIFY_BOUND",
    "WRAPPER",
    "WRAPPER_CODE",
    "FreezeOptions",
    "FrozenTree",
    "RuntimeImport",
    "Verification",
    "build",
    "check_imports",
    "collect_extensions",
    "collect_sources",
    "default_search_path",
    "find_closure",
    "find_dlopen_library",
    "host_interpreter",
    "in_stdlib",
    "install_host_file",
    "interpreter_variables",
    "main",
    "rel",
    "report",
    "runtime_imports",
    "shared_libraries",
    "tree_size",
    "verify",
    "wrapper_script",
    "write_bytecode",
]
