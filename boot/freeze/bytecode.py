"""The bytecode: one unchecked hash-based .pyc file per module, in the directory the interpreter puts on its path
by itself (lib/python3.11), the same bytes and metadata on every build.

Files sorted into their package directories, modes 0644/0755, times 1980-01-01, no source needed at run time, a
fixed optimize level, and co_filename the module-relative path (never a path of the build machine). Lines but no
columns (`-X no_debug_ranges`: a traceback names file and line, without the carets) and no docstrings but where
something may read them: together a quarter of the bytes and a third of the compressed image.

Why files and not a zip (which the tree carried before): zipimport reads and unmarshals every module twice (once
to tell importlib the module's file name, once for its code), opening the archive for each read; a directory
costs one open, one read and one unmarshal per module. On the host that is an eighth of the boot's imports and of
every `pyiscsi` start-up.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

from boot.freeze.layout import DIR_MODE, FILE_MODE
from initiator.errors import BadInputError, WaitTimeout

FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, every file's and directory's time
BYTECODE_BOUND = 300.0


def _pyc(source: bytes, rel_name: str, optimize: int) -> bytes:
    code = compile(_without_docstrings(source, rel_name), rel_name, "exec", dont_inherit=True, optimize=optimize)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), False))


def _without_docstrings(source: bytes, rel_name: str) -> ast.Module | bytes:
    """The module's syntax tree without its docstrings, which nothing at boot reads.

    A decorated class keeps its own: dataclasses computes one with inspect.signature at import for a class
    without it.
    A module whose source names `__doc__` is left whole (it may read its own or another's), and so are asserts
    (optimize 1 would drop them too, and code relies on them)."""
    if b"__doc__" in source:
        return source
    tree = ast.parse(source, rel_name)
    for node in ast.walk(tree):
        bare_class = isinstance(node, ast.ClassDef) and not node.decorator_list
        if (bare_class or isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef)) and _has_docstring(
            node.body
        ):
            first = node.body[0]
            node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
    return tree


def _has_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def write_bytecode(directory: Path, sources: dict[str, Path], optimize: int) -> None:
    """Write `directory` anew: one .pyc per module, compiled by a fresh worker process, into a staging directory
    beside it that replaces it only once complete (a failed build leaves no half-written directory).

    marshal marks an object for back-references when its refcount is above one, so the bytes of a .pyc depend
    on what else the compiling process holds (pytest, a long-lived build tool...). A worker that starts the same
    way every time, with a fixed hash seed, compiles the same sources to the same bytes."""
    staging = directory.with_name(f".{directory.name}.new")
    shutil.rmtree(staging, ignore_errors=True)
    job = {
        "out": str(staging),
        "optimize": optimize,
        "sources": [[stem, str(sources[stem])] for stem in sorted(sources)],
    }
    root = str(Path(__file__).resolve().parents[2])
    code = f"import sys; sys.path.insert(0, {root!r}); from boot.freeze.bytecode import _worker; _worker()"
    env = {"PYTHONHASHSEED": "0", "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        try:
            result = subprocess.run(
                [sys.executable, "-I", "-S", "-B", "-X", "no_debug_ranges", "-c", code],
                input=json.dumps(job),
                capture_output=True,
                text=True,
                env=env,
                timeout=BYTECODE_BOUND,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise WaitTimeout("bytecode", BYTECODE_BOUND, str(directory)) from exc
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise BadInputError("bytecode", str(directory), last)
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:  # gone once renamed; whatever a failed worker left
        shutil.rmtree(staging, ignore_errors=True)


def _worker() -> None:
    """The worker's side of write_bytecode: a job as JSON on stdin."""
    job = json.load(sys.stdin)
    optimize = int(job["optimize"])
    out = Path(job["out"])
    out.mkdir(parents=True)
    for stem, source_path in job["sources"]:
        try:
            pyc = _pyc(Path(source_path).read_bytes(), stem + ".py", optimize)
        except SyntaxError as exc:
            raise SystemExit(f"{source_path}: does not compile: {exc}") from None
        path = out / f"{stem}.pyc"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(pyc)
    for path in sorted(out.rglob("*"), reverse=True):  # a directory's time after its entries were written
        os.chmod(path, DIR_MODE if path.is_dir() else FILE_MODE)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME))
    os.chmod(out, DIR_MODE)
    os.utime(out, (FIXED_MTIME, FIXED_MTIME))
