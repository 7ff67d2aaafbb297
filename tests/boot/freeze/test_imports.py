"""boot.freeze.imports: every import statement our code runs at boot, function-level ones included, read from
the source; checked here against an independent walk of the files `pyiscsi boot`, the agent and handover reach."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from boot import freeze
from boot.commands.agent import PRELOAD
from boot.freeze.imports import RuntimeImport, statements


def pairs(source: str, importer: str = "pkg.mod", is_package: bool = False) -> set[tuple[str, str]]:
    return {(item.module, item.name) for item in statements(textwrap.dedent(source), importer, is_package)}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", {("os", "")}),
        ("import os.path as p, json", {("os.path", ""), ("json", "")}),
        ("from pyroute2 import IPRoute", {("pyroute2", "IPRoute")}),
        ("from pyroute2 import IPRoute as R, NetNS", {("pyroute2", "IPRoute"), ("pyroute2", "NetNS")}),
        ("def f():\n    from boot.orchestrate import run_boot", {("boot.orchestrate", "run_boot")}),  # lazy
        ("class C:\n    def m(self):\n        import pyudev", {("pyudev", "")}),
        ("try:\n    import pyudev\nexcept ImportError:\n    pyudev = None", {("pyudev", "")}),  # still needed
        ("from . import sibling", {("pkg", "sibling")}),
        ("from .sibling import x", {("pkg.sibling", "x")}),
        ("from .. import up", {("", "up")}),  # pkg.mod's grandparent: the top level
        ("from x import *", {("x", "*")}),
        ("if TYPE_CHECKING:\n    from a import B\nelse:\n    import c", {("c", "")}),  # typing only: never run
        ("if typing.TYPE_CHECKING:\n    import a", set()),
        ("x = 'import os'", set()),
    ],
)
def test_statements_are_read_at_every_depth(source: str, expected: set[tuple[str, str]]) -> None:
    assert pairs(source) == expected


def test_relative_imports_in_a_package_start_from_the_package_itself() -> None:
    assert pairs("from . import links\nfrom .state import X", "boot.net", is_package=True) == {
        ("boot.net", "links"),
        ("boot.net.state", "X"),
    }


@pytest.mark.parametrize(
    ("item", "statement"),
    [
        (RuntimeImport("pyroute2", "IPRoute", "boot.net.links"), "from pyroute2 import IPRoute"),
        (RuntimeImport("pyudev", "", "boot.disk"), "import pyudev"),
        (RuntimeImport("a.b", "", "x"), "import a.b"),
    ],
)
def test_each_import_is_the_statement_the_code_runs(item: RuntimeImport, statement: str) -> None:
    assert item.statement == statement


@pytest.fixture(scope="module")
def default_closure(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], set[tuple[str, str]]]:
    """The default build's modules of ours (name -> source) and the (module, name) pairs it will check."""
    options = freeze.FreezeOptions(out=tmp_path_factory.mktemp("closure"))
    finder, _ = freeze.find_closure(options)
    ours = {
        name: Path(module.__file__)
        for name, module in finder.modules.items()
        if name.split(".")[0] in ("boot", "initiator") and module.__file__
    }
    checked = {(item.module, item.name) for item in freeze.runtime_imports(finder, options.excludes)}
    return ours, checked


def test_the_boot_agent_and_handover_code_is_all_walked(
    default_closure: tuple[dict[str, Path], set[tuple[str, str]]],
) -> None:
    ours, _ = default_closure
    expected = ["boot.commands.boot", "boot.commands.agent", "boot.commands.handover", "boot.orchestrate"]
    expected += ["boot.live", "boot.net.bringup", "boot.net.links", "boot.disk", "boot.handover", "initiator.recovery"]
    assert [name for name in expected if name not in ours] == []


def test_every_import_statement_found_by_a_plain_walk_is_checked(
    default_closure: tuple[dict[str, Path], set[tuple[str, str]]],
) -> None:
    """A second, plain walk must find nothing unchecked but what only type checkers read."""
    ours, checked = default_closure
    found: dict[tuple[str, str], str] = {}
    typing_only: set[tuple[str, str]] = set()
    for name, path in sorted(ours.items()):
        tree = ast.parse(path.read_bytes())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                found.update({(node.module or "", alias.name): name for alias in node.names})
            elif isinstance(node, ast.Import):
                found.update({(alias.name, ""): name for alias in node.names})
            elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                for inner in (n for statement in node.body for n in ast.walk(statement)):
                    if isinstance(inner, ast.ImportFrom):
                        typing_only.update((inner.module or "", alias.name) for alias in inner.names)
    missed = {pair: importer for pair, importer in found.items() if pair not in checked}
    assert found and set(missed) <= typing_only, missed


@pytest.mark.parametrize(
    "pair",
    [
        ("pyudev", ""),  # boot.disk, inside a function, guarded
        ("boot.orchestrate", "run_boot"),  # pyiscsi boot, when it gets there
        ("boot.handover", "write_files"),  # pyiscsi handover
        ("initiator.recovery", "RecoveryLoop"),  # pyiscsi agent
    ],
)
def test_the_imports_that_matter_at_boot_are_checked(
    default_closure: tuple[dict[str, Path], set[tuple[str, str]]], pair: tuple[str, str]
) -> None:
    assert pair in default_closure[1]


def test_every_name_boot_net_takes_from_pyroute2_is_checked(
    default_closure: tuple[dict[str, Path], set[tuple[str, str]]],
) -> None:
    """What failed at boot: a name boot/net/*.py takes from pyroute2 that the frozen pyroute2 did not make."""
    ours, checked = default_closure
    taken = {
        (node.module, alias.name)
        for name, path in ours.items()
        if name.startswith("boot.net.")
        for node in ast.walk(ast.parse(path.read_bytes()))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pyroute2"
        for alias in node.names
    }
    assert ("IPRoute" in {name for _, name in taken}) and taken <= checked


def test_the_agents_preload_is_checked_though_no_statement_names_it(
    default_closure: tuple[dict[str, Path], set[tuple[str, str]]],
) -> None:
    assert [name for name in PRELOAD if (name, "") not in default_closure[1]] == []


def test_each_import_is_checked_once_naming_the_first_importer(tmp_path: Path) -> None:
    (tmp_path / "boot").mkdir()
    (tmp_path / "boot" / "__init__.py").write_text("")
    (tmp_path / "boot" / "a.py").write_text("from json import dumps\nimport boot.b\n")
    (tmp_path / "boot" / "b.py").write_text("from json import dumps\nimport os\n")
    options = freeze.FreezeOptions(
        out=tmp_path / "out", entries=("boot.a",), extras=(), packages=(), search_path=(tmp_path,)
    )
    finder, _ = freeze.find_closure(options)
    assert freeze.runtime_imports(finder, options.excludes) == (
        RuntimeImport("boot.b", "", "boot.a"),
        RuntimeImport("json", "dumps", "boot.a"),
        RuntimeImport("os", "", "boot.b"),
    )
    assert freeze.runtime_imports(finder, ("boot.b",)) == (
        RuntimeImport("boot.b", "", "boot.a"),
        RuntimeImport("json", "dumps", "boot.a"),
    )
