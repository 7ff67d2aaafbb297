"""The bytecode: one unchecked hash-based .pyc file per module, in the directory the interpreter puts on its path
by itself (lib/python3.11), the same bytes and metadata on every build.

Files sorted into their package directories, modes 0644/0755, times 1980-01-01, no source needed at run time, a
fixed optimize level, and co_filename the module-relative path (never a path of the build machine). No columns
(`-X no_debug_ranges`: no carets under a traceback's line), one line per function (every instruction of a function
is on its `def` line: a traceback names file, function and the function's first line; `line_numbers=True` keeps
each instruction's own line, for a debugging build) and no docstrings but where something may read them: together
two fifths of the bytes.

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
import sysconfig
import types
from importlib._bootstrap_external import _code_to_hash_pyc  # type: ignore[attr-defined]
from pathlib import Path

from boot.freeze.layout import DIR_MODE, FILE_MODE
from initiator.errors import BadInputError, WaitTimeout

STDLIB = Path(sysconfig.get_path("stdlib"))
FIXED_MTIME = 315532800  # 1980-01-01T00:00:00Z, every file's and directory's time
BYTECODE_BOUND = 300.0


def _pyc(source: bytes, rel_name: str, optimize: int, line_numbers: bool = False, stdlib: bool = False) -> bytes:
    stripped = _without_docstrings(source, rel_name, stdlib)
    code = compile(stripped, rel_name, "exec", dont_inherit=True, optimize=optimize)
    if not line_numbers:
        code = _one_line_per_function(code)
    return bytes(_code_to_hash_pyc(code, importlib.util.source_hash(source), False))


# Python 3.11's location table (CPython's Objects/locations.md): entries of one byte 1CCCCLLL, C the kind and L+1
# the code units (at most 8) it covers, then the kind's data. Kind 13 is "no columns", its data a signed varint
# line delta from the entry before (the first from co_firstlineno): 0 is one byte, 0.
_NO_COLUMNS = 13
_SAME_LINE = 0


def _first_line_table(units: int) -> bytes:
    """A location table that puts `units` code units on the code object's first line."""
    full, rest = divmod(units, 8)
    table = bytes((0x80 | _NO_COLUMNS << 3 | 7, _SAME_LINE)) * full
    return table + (bytes((0x80 | _NO_COLUMNS << 3 | (rest - 1), _SAME_LINE)) if rest else b"")


def _one_line_per_function(code: types.CodeType) -> types.CodeType:
    """The code with each function's (and class body's, and the module's) instructions on its first line: the
    line tables are two thirds of what -X no_debug_ranges leaves, and nothing at boot reads a line but a
    traceback. The exception tables, which handlers depend on, are untouched."""
    consts = tuple(_one_line_per_function(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_consts=consts, co_linetable=_first_line_table(len(code.co_code) // 2))


def _without_docstrings(source: bytes, rel_name: str, stdlib: bool = False) -> ast.Module | bytes:
    """The module's syntax tree without its docstrings, which nothing at boot reads.

    The standard library's modules lose every one, as under the interpreter's -OO, which runs all of them so
    (where they read `__doc__` they allow for None: email's policies add to a base class's docstring only when
    both have one). Elsewhere a decorated class keeps its own (dataclasses computes one with inspect.signature at
    import for a class without it), and a module whose source names `__doc__` is left whole (it may read its own
    or another's): stripping only some of a module's docstrings is no state -OO ever tests. Asserts stay
    (optimize 1 would drop them too, and code relies on them)."""
    if b"__doc__" in source and not stdlib:
        return source
    tree = ast.parse(source, rel_name)
    for node in ast.walk(tree):
        bare_class = isinstance(node, ast.ClassDef) and (stdlib or not node.decorator_list)
        if (bare_class or isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef)) and _has_docstring(
            node.body
        ):
            first = node.body[0]
            node.body = node.body[1:] or [ast.copy_location(ast.Pass(), first)]
    return tree


def _has_docstring(body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def in_stdlib(path: Path, stdlib: Path = STDLIB) -> bool:
    """Whether a source is the standard library's own (not a package installed into its site directory)."""
    try:
        parts = path.resolve().relative_to(stdlib.resolve()).parts
    except ValueError:
        return False
    return not parts or parts[0] not in ("site-packages", "dist-packages")


def write_bytecode(
    directory: Path,
    sources: dict[str, Path],
    optimize: int,
    line_numbers: bool = False,
    stdlib: Path | None = None,
) -> None:
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
        "line_numbers": line_numbers,
        "stdlib": str(stdlib or STDLIB),
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
    line_numbers = bool(job.get("line_numbers", False))
    stdlib = Path(job["stdlib"])
    out = Path(job["out"])
    out.mkdir(parents=True)
    for stem, source_path in job["sources"]:
        try:
            path = Path(source_path)
            pyc = _pyc(path.read_bytes(), stem + ".py", optimize, line_numbers, in_stdlib(path, stdlib))
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
