"""Run the frozen tree on its own and prove it can boot: every entry and probed extra imports, every import
statement of ours runs, nothing loads from outside the prefix, `pyiscsi --version` and `python3 -m boot --version`
answer; the best of a few runs is the start-up time.

verify() runs the tree in a chroot when root (as the initramfs will), in place otherwise; check_imports() is
build()'s own quicker check, in place and without root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from boot.freeze.layout import WRAPPER_CODE, FrozenTree, rel
from initiator.errors import BadInputError, WaitTimeout

VERIFY_BOUND = 60.0

# Runs in the frozen interpreter: argv is the prefix, import statements as JSON, then the modules to import.
_PROBE = r"""
import importlib, json, sys, time
start = time.monotonic()
failed = {}
for name in sys.argv[3:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
took = time.monotonic() - start
statements = {}
for statement in json.loads(sys.argv[2]):
    try:
        exec(statement, {})
    except BaseException as exc:
        missing = getattr(exc, "name", None)  # ImportError's: the module that lacks a name, or is missing
        statements[statement] = [f"{type(exc).__name__}: {exc}", missing if isinstance(missing, str) else None]
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
print(json.dumps({"failed": failed, "statements": statements, "outside": outside, "loaded": len(sys.modules),
                  "seconds": took, "path": sys.path}))
"""


@dataclasses.dataclass(frozen=True)
class Verification:
    """The frozen tree ran: how long it took and where each loaded module came from."""

    loaded: int
    startup_version_s: float
    import_entries_s: float


def _chroot_command(tree: FrozenTree, args: Sequence[str], chroot: bool) -> list[str]:
    python = [str(tree.interpreter), "-I", "-S", "-B", *args]
    if chroot:
        return ["chroot", str(tree.root), *python]
    return [str(tree.root.resolve() / rel(tree.interpreter)), *python[1:]]


def _run(command: list[str], what: str, bound: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=bound, check=False)
    except subprocess.TimeoutExpired as exc:
        raise WaitTimeout(what, bound) from exc
    except OSError as exc:  # e.g. a tree on a noexec mount
        raise BadInputError("frozen tree", command[0], f"{what} does not run: {exc}") from None


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
    """a child process opens /dev/null for its stdio; an initramfs has one, a bare tree needs it lent."""
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


def _seen_prefix(tree: FrozenTree, chroot: bool) -> str:
    """The prefix as the frozen interpreter sees it: itself in a chroot, under the tree's root otherwise."""
    return str(tree.prefix) if chroot else str(tree.root.resolve() / rel(tree.prefix))


def _probe(
    tree: FrozenTree, names: Sequence[str], statements: Sequence[str], chroot: bool, runs: int
) -> tuple[float, dict[str, Any]]:
    """Run the probe; the interpreter failing to start is an error here, what it found is the caller's to judge."""
    args = ["-c", _PROBE, _seen_prefix(tree, chroot), json.dumps(list(statements)), *names]
    seconds, result = _best_of(_chroot_command(tree, args, chroot), "frozen tree import", runs)
    if result.returncode != 0 or not result.stdout.strip():
        where = "chroot" if chroot else "tree"
        raise BadInputError(
            "frozen tree", str(tree.root), f"the interpreter failed in the {where}: {result.stderr.strip()[-400:]}"
        )
    probe: dict[str, Any] = json.loads(result.stdout)
    probe["stderr"] = result.stderr.strip()
    return seconds, probe


def _root_cause(failed: dict[str, list[str | None]], modules: dict[str, str]) -> str:
    """Of the statements that failed, the one whose own module or name is missing (`from pyroute2 import
    IPRoute`), not one that failed only because it imports that one (`from boot.net import links`)."""
    direct = [statement for statement, (_, name) in failed.items() if name is not None and name == modules[statement]]
    return sorted(direct or failed)[0]


def _check_statements(tree: FrozenTree, chroot: bool) -> dict[str, Any]:
    """Run every import statement of ours in the tree; the first that fails is one line: the statement, who runs
    it, Python's own error (`cannot import name 'IPRoute' from 'pyroute2'`)."""
    _, probe = _probe(tree, (), [item.statement for item in tree.imports], chroot, runs=1)
    if probe["statements"]:
        by_statement = {item.statement: item for item in tree.imports}
        statement = _root_cause(probe["statements"], {text: item.module for text, item in by_statement.items()})
        error = probe["statements"][statement][0]
        first_line = (error.splitlines() or [error])[0]
        where = "chroot" if chroot else "tree"
        importer = by_statement[statement].importer
        missing = "ModuleNotFoundError" in first_line
        hint = " (a module missing from the closure: add it with --extra)" if missing else ""
        raise BadInputError(
            "frozen tree", statement, f"{importer} runs it at boot; in the {where} it fails: {first_line}{hint}"
        )
    return probe


def _check_outside(tree: FrozenTree, probe: dict[str, Any], chroot: bool) -> None:
    if probe["outside"]:
        name, origin = sorted(probe["outside"].items())[0]
        raise BadInputError("frozen tree", name, f"was loaded from outside {_seen_prefix(tree, chroot)}: {origin}")


def check_imports(tree: FrozenTree) -> None:
    """build()'s check: every import statement of ours runs with the tree's interpreter, in place (no root)."""
    if tree.imports:
        _check_statements(tree, chroot=False)


def _check_version(result: subprocess.CompletedProcess[str], what: str) -> None:
    if result.returncode != 0 or not result.stdout.startswith("pyiscsi "):
        raise BadInputError("frozen tree", what, f"exit {result.returncode}: {result.stderr.strip()[-400:]}")


def verify(tree: FrozenTree, extra: Sequence[str] = (), chroot: bool | None = None, runs: int = 3) -> Verification:
    """Run the tree isolated (a chroot when root) and fail, naming the module, on anything it cannot import or
    loads from outside its prefix; also check `pyiscsi --version` and time both."""
    if chroot is None:
        chroot = os.geteuid() == 0
    with _dev_null(tree.root, chroot):
        return _verify(tree, [*tree.entries, *tree.probes, *extra], chroot, runs)


def _verify(tree: FrozenTree, names: list[str], chroot: bool, runs: int) -> Verification:
    seconds, probe = _probe(tree, names, (), chroot, runs)  # timed: the entries alone, as `pyiscsi` starts
    if probe["stderr"]:  # getpath's "Could not find platform ... libraries" and any other warning
        raise BadInputError("frozen tree", str(tree.root), f"interpreter warned: {probe['stderr'][:400]}")
    if probe["failed"]:
        name, error = sorted(probe["failed"].items())[0]
        where = "chroot" if chroot else "tree"
        raise BadInputError(
            "frozen tree",
            name,
            f"does not import in the {where}: {error} (a module missing from the closure: add it with --extra)",
        )
    _check_outside(tree, probe, chroot)
    if tree.imports:
        _check_outside(tree, _check_statements(tree, chroot), chroot)
    version_s, version = _best_of(_chroot_command(tree, ["-c", WRAPPER_CODE, "--version"], chroot), "pyiscsi", runs)
    _check_version(version, "pyiscsi --version")
    # the agent started as a process of its own (when a fork is not safe) runs `-m boot agent`: runpy, from C
    _check_version(
        _run(_chroot_command(tree, ["-m", "boot", "--version"], chroot), "python3 -m boot", VERIFY_BOUND),
        "python3 -m boot --version",
    )
    return Verification(loaded=int(probe["loaded"]), startup_version_s=version_s, import_entries_s=seconds)
