"""`initiator/` is a library that stands alone: no module of it imports the application (`boot`), the
benchmarks, the VM harness or the tests, not even inside a function or under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIBRARY = REPO / "initiator"
FORBIDDEN = frozenset({"boot", "bench", "harness", "tests"})


def forbidden_imports(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """(line, module) of every absolute import anywhere in `source` whose top-level package is forbidden."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.split(".")[0] in FORBIDDEN]
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import boot.plan\n", [(1, "boot.plan")]),
        ("from boot.plan import Chap\n", [(1, "boot.plan")]),
        ("import os, bench\n", [(1, "bench")]),
        ("def f():\n    from boot.disk import scan_host\n", [(2, "boot.disk")]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tests.x import y\n", [(3, "tests.x")]),
        ("try:\n    import harness.lab as lab\nexcept ImportError:\n    pass\n", [(2, "harness.lab")]),
        ("import bootstrap\nfrom initiator.boot import x\nfrom . import boot\nimport testsuite\n", []),
    ],
)
def test_the_check_finds_every_kind_of_import(source: str, expected: list[tuple[int, str]]) -> None:
    assert forbidden_imports(source) == expected


def test_initiator_imports_nothing_of_the_application() -> None:
    modules = sorted(LIBRARY.rglob("*.py"))
    assert len(modules) > 10  # the walk found the library
    offenders = [
        f"{path.relative_to(REPO)}:{line}: imports {module}"
        for path in modules
        for line, module in forbidden_imports(path.read_text(), str(path))
    ]
    assert offenders == [], "\n".join(offenders)
