"""The import statements our own code runs at boot, read from its source, so the tree can be made to run each one.

modulefinder sees which modules a statement names, not whether the name it takes from a module is there at run
time. pyroute2 0.7.2 builds `pyroute2.IPRoute` while it is imported, from its distribution's entry points, which
no frozen tree carries: every module was in the tree and `from pyroute2 import IPRoute` still failed at boot.
Only running the very statements our code runs (the function-level ones too: `pyiscsi boot` imports each step
when it gets there) proves each name is there.
"""

from __future__ import annotations

import ast
import dataclasses
import modulefinder
from collections.abc import Iterable
from pathlib import Path

from boot.commands.agent import PRELOAD as AGENT_PRELOAD
from boot.freeze.closure import excluded

# Whose statements are run: ours, all needed at boot. A library's optional imports (other platforms, other
# Pythons) are guarded where it makes them, and its own business.
OWN_PACKAGES = ("boot", "initiator")
# Modules imported by name (importlib.import_module), which no statement shows: importer -> what it imports.
DYNAMIC_IMPORTS: dict[str, tuple[str, ...]] = {"boot.commands.agent": AGENT_PRELOAD}


@dataclasses.dataclass(frozen=True)
class RuntimeImport:
    """One import our code runs: `from module import name`, or `import module` when name is empty."""

    module: str
    name: str = ""
    importer: str = ""  # the module whose code runs it, for the message

    @property
    def statement(self) -> str:
        return f"from {self.module} import {self.name}" if self.name else f"import {self.module}"


def _for_type_checkers(test: ast.expr) -> bool:
    """`if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`): never true at run time."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    package = importer if is_package else importer.rpartition(".")[0]
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - (node.level - 1)])
    return f"{base}.{node.module}" if node.module else base


def statements(source: bytes | str, importer: str, is_package: bool = False) -> list[RuntimeImport]:
    """Every import statement in one module's source, at any depth (function bodies too), with absolute names."""
    tree = ast.parse(source)
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _for_type_checkers(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    found: list[RuntimeImport] = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend(RuntimeImport(alias.name, "", importer) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, importer, is_package)
            found.extend(RuntimeImport(module, alias.name, importer) for alias in node.names)
    return found


def runtime_imports(
    finder: modulefinder.ModuleFinder, excludes: Iterable[str], own: Iterable[str] = OWN_PACKAGES
) -> tuple[RuntimeImport, ...]:
    """The imports the closure's modules of our own packages run, each (module, name) once, sorted."""
    own = tuple(own)
    excludes = tuple(excludes)
    found: dict[tuple[str, str], RuntimeImport] = {}
    for name in sorted(finder.modules):
        module = finder.modules[name]
        path = module.__file__
        if name.split(".")[0] not in own or excluded(name, excludes) or not path or not path.endswith(".py"):
            continue
        for item in statements(Path(path).read_bytes(), name, bool(module.__path__)):
            found.setdefault((item.module, item.name), item)
        for target in DYNAMIC_IMPORTS.get(name, ()):
            found.setdefault((target, ""), RuntimeImport(target, "", name))
    return tuple(found[key] for key in sorted(found))
