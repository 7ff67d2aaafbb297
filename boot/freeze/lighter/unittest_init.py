"""unittest's package init, as the frozen tree carries it: the test framework loads when a name of it is asked for.

pyroute2 0.9 imports `unittest.mock` when it is imported (its netlink mock); the stdlib's package init then loads
the whole framework first (cases, loader, runner, `main` with argparse, difflib, pprint): 7 ms of the boot's
imports on a host, ten times that under TCG, for nothing the boot uses. `unittest.mock` itself needs only
`unittest.util`. The names the stdlib's init gives are looked up in its submodules on first use."""

from __future__ import annotations

import importlib

# the stdlib's unittest/__init__.py imports its public names from these, in this order; a part the tree leaves out
# (the closure follows no name looked up here) is skipped
_PARTS = ("result", "case", "suite", "loader", "main", "runner", "signals", "async_case")
# `from unittest import mock` asks the package for the name first: a submodule is not looked for in the parts
# (`main` is the one name that is both; the stdlib's init gives the function)
_SUBMODULES = frozenset((*_PARTS, "mock", "util", "_log")) - {"main"}


def __getattr__(name: str) -> object:
    if name.startswith("__") or name in _SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for part in _PARTS:
        try:
            module = importlib.import_module(f"{__name__}.{part}")
        except ImportError:
            continue
        if part in vars(module):  # `unittest.main` is the function, as the stdlib's init leaves it, not the module
            globals()[part] = vars(module)[part]
        if name in getattr(module, "__all__", ()) or (not name.startswith("_") and name in vars(module)):
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
