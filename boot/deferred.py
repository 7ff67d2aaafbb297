"""Modules the boot imports without ever running them: their bodies run on first use, if any comes.

pyroute2's IPRoute imports the traffic-control message package, and with it every qdisc, classifier and action
module it has (twenty-odd modules of nested netlink attribute classes). The package keeps them in a table of
kinds, for decoding tc messages and for tc requests; a boot sends none and subscribes to none. Executing them
was 7% of the boot's import CPU on a host, and the boot's CPU is its critical path under emulation.

`install()` puts a finder before the others that gives each module under DEFERRED the stdlib's LazyLoader
(importlib.util): the import binds a module object at once, and its body runs when an attribute of it is first
read. Packages themselves load as usual. Python 3.11's lazy modules carry no lock, so a deferred module must be
one that no two threads first touch at once: nothing on the boot's path touches these at all.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Sequence

# packages whose submodules (not the package itself) are loaded on first use
DEFERRED = ("pyroute2.netlink.rtnl.tcmsg",)


class DeferredFinder:
    """A meta path finder: the path finder's spec, with a lazy loader for a module under a DEFERRED package."""

    def __init__(self, packages: Sequence[str] = DEFERRED) -> None:
        self.prefixes = tuple(f"{package}." for package in packages)

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: object = None) -> object:
        if not name.startswith(self.prefixes):
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.submodule_search_locations is not None or not hasattr(spec.loader, "exec_module"):
            return spec  # a package, or a loader LazyLoader cannot wrap: the usual import
        spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec

    def invalidate_caches(self) -> None:
        """Nothing cached here (the path finder's caches are its own)."""


def install(packages: Sequence[str] = DEFERRED) -> DeferredFinder:
    """Defer `packages`' submodules from now on in this process (once: a second call returns the first finder)."""
    for finder in sys.meta_path:
        if isinstance(finder, DeferredFinder):
            return finder
    finder = DeferredFinder(packages)
    sys.meta_path.insert(0, finder)
    return finder
