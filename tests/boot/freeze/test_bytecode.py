"""boot.freeze.bytecode: the .pyc files are the same bytes and metadata on every build, carry nothing of the build
host, and replace the directory only once all are written."""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from boot import freeze
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import ENTRIES, options, pyc_names


def _contents(directory: Path) -> dict[str, tuple[int, int, bytes | None]]:
    """Every entry under `directory`: (mode, mtime, bytes of a file), by relative path."""
    return {
        path.relative_to(directory).as_posix(): (
            path.stat().st_mode,
            int(path.stat().st_mtime),
            path.read_bytes() if path.is_file() else None,
        )
        for path in sorted(directory.rglob("*"))
        if "lib-dynload" not in path.parts
    }


def test_two_builds_give_identical_bytecode(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    again = freeze.build(options(tmp_path / "again", copy_libraries=False))
    assert _contents(again.bytecode_dir) == _contents(tree.bytecode_dir)


def test_a_build_in_another_process_gives_the_same_bytecode(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "boot.freeze", "--out", str(tmp_path), "--no-libs"]
    result = subprocess.run(
        argv + [f"--entry={name}" for name in ENTRIES], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    written = tmp_path / freeze.rel(freeze.PREFIX / "lib" / freeze.BYTECODE_DIR)
    assert _contents(written) == _contents(tree.bytecode_dir)


def test_files_and_directories_have_fixed_modes_and_1980_times(tree: freeze.FrozenTree) -> None:
    seen = {(mode, mtime, data is None) for mode, mtime, data in _contents(tree.bytecode_dir).values()}
    assert seen == {(0o100644, freeze.FIXED_MTIME, False), (0o040755, freeze.FIXED_MTIME, True)}
    assert all(name.endswith(".pyc") for name in pyc_names(tree))


@pytest.mark.parametrize("member", ["boot/cli.pyc", "pyroute2/iproute/linux.pyc", "json/__init__.pyc"])
def test_pycs_are_unchecked_hash_based_with_relative_filenames(tree: freeze.FrozenTree, member: str) -> None:
    data = (tree.bytecode_dir / member).read_bytes()
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, check_source off
    code = marshal.loads(data[16:])
    assert code.co_filename == member[:-1]  # "boot/cli.py": nothing of the build machine's paths


def test_every_module_of_the_closure_is_one_file(tree: freeze.FrozenTree) -> None:
    assert pyc_names(tree) == sorted(f"{stem}.pyc" for stem in tree.modules)


def test_a_source_that_does_not_compile_is_named_and_the_old_directory_stays(tmp_path: Path) -> None:
    good = tmp_path / "good.py"
    good.write_text("VALUE = 1\n")
    out = tmp_path / "lib" / "python3.11"
    freeze.write_bytecode(out, {"good": good}, optimize=0)
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    with pytest.raises(BadInputError) as caught:
        freeze.write_bytecode(out, {"good": good, "broken": broken}, optimize=0)
    assert str(broken) in str(caught.value) and "does not compile" in str(caught.value)
    assert sorted(p.name for p in out.parent.iterdir()) == ["python3.11"]  # no staging directory left
    assert sorted(p.name for p in out.iterdir()) == ["good.pyc"]


def test_a_new_build_replaces_what_an_old_one_left(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("VALUE = 'x' * 4\n")
    out = tmp_path / "lib" / "python3.11"
    (out / "stale").mkdir(parents=True)
    (out / "stale" / "old.pyc").write_bytes(b"")
    freeze.write_bytecode(out, {"pkg/__init__": source, "pkg/mod": source}, optimize=0)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["pkg", "pkg/__init__.pyc", "pkg/mod.pyc"]
    code = f"import sys; sys.path.insert(0, {str(out)!r}); import pkg.mod; print(pkg.mod.VALUE, pkg.mod.__file__)"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.split() == ["xxxx", str(out / "pkg" / "mod.pyc")], result.stderr


SHAPES = '''"""The module's docstring."""
import dataclasses


def documented():
    """A function's docstring."""


async def documented_async():
    """A coroutine's docstring."""
    return 1


class Bare:
    """A bare class's docstring."""

    def method(self):
        """A method's docstring."""
        return 2


@dataclasses.dataclass(frozen=True)
class Record:
    """A decorated class keeps its docstring."""

    value: int = 0


def asserting(flag):
    """Asserts stay."""
    assert flag, "asserted"
    return "kept"


def failing():
    raise ValueError("on line 36")
'''

# (expression evaluated in the frozen module, what it gives)
STRIPPED = [
    ("m.__doc__", None),
    ("m.documented.__doc__", None),
    ("m.documented()", None),
    ("m.documented_async.__doc__", None),
    ("m.Bare.__doc__", None),
    ("m.Bare.method.__doc__", None),
    ("m.Bare().method()", 2),
    ("m.Record.__doc__", "A decorated class keeps its docstring."),
    ("m.asserting(True)", "kept"),
    ("m.asserting.__doc__", None),
    ("m.failing.__code__.co_firstlineno", 35),
]


def _load(out: Path, name: str) -> object:
    code = (
        f"import sys, json; sys.path.insert(0, {str(out)!r}); import {name} as m; "
        f"print(json.dumps([eval(e, {{'m': m}}) for e in {[e for e, _ in STRIPPED]!r}]))"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_docstrings_are_left_out_but_decorated_classes_and_asserts_stay(tmp_path: Path) -> None:
    source = tmp_path / "shapes.py"
    source.write_text(SHAPES)
    out = tmp_path / "lib" / "python3.11"
    freeze.write_bytecode(out, {"shapes": source}, optimize=0)
    assert _load(out, "shapes") == [want for _, want in STRIPPED]
    code = f"import sys; sys.path.insert(0, {str(out)!r}); import shapes; shapes.asserting(False)"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert "AssertionError: asserted" in result.stderr


def test_a_module_that_names_doc_keeps_every_docstring(tmp_path: Path) -> None:
    source = tmp_path / "reads.py"
    source.write_text('"""Kept."""\n\n\ndef helper():\n    """Also kept."""\n\n\nSUMMARY = helper.__doc__\n')
    out = tmp_path / "lib" / "python3.11"
    freeze.write_bytecode(out, {"reads": source}, optimize=0)
    code = f"import sys; sys.path.insert(0, {str(out)!r}); import reads; print(reads.__doc__, reads.SUMMARY)"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["Kept.", "Also", "kept."], result.stderr


@pytest.mark.parametrize(("line_numbers", "line"), [(False, 35), (True, 36)])
def test_code_carries_no_columns_and_by_default_one_line_per_function(
    tmp_path: Path, line_numbers: bool, line: int
) -> None:
    """Column positions (Python 3.11's ^^^ under a traceback's line) and each instruction's own line are most of
    a line table's bytes: by default a traceback names file, function and the function's `def` line (35), with
    line_numbers the raising line (36). Handlers still catch (the exception tables are whole)."""
    source = tmp_path / "shapes.py"
    source.write_text(SHAPES)
    out = tmp_path / "lib" / "python3.11"
    freeze.write_bytecode(out, {"shapes": source}, optimize=0, line_numbers=line_numbers)
    code = marshal.loads((out / "shapes.pyc").read_bytes()[16:])
    failing = next(c for c in code.co_consts if getattr(c, "co_name", "") == "failing")
    positions = [p for p in failing.co_positions() if p[0] is not None]
    assert positions and all(p[2] is None and p[3] is None for p in positions)
    assert {p[0] for p in positions} == ({35} if not line_numbers else {35, 36})
    run = (
        f"import sys; sys.path.insert(0, {str(out)!r}); import shapes\n"
        "try:\n    shapes.failing()\nexcept ValueError:\n    print('caught')\n"
        "shapes.failing()"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", run], capture_output=True, text=True, timeout=60)
    assert result.stdout == "caught\n"
    assert f'File "shapes.py", line {line}, in failing' in result.stderr and "ValueError: on line 36" in result.stderr


def test_a_standard_library_module_that_names_doc_loses_its_docstrings_too(tmp_path: Path) -> None:
    """-OO runs the standard library without docstrings, so there `__doc__` in the source does not keep them;
    a library's module (outside the standard library) keeps them."""
    stdlib = tmp_path / "stdlib"
    site = stdlib / "site-packages"
    site.mkdir(parents=True)
    text = '"""Module."""\n\n\ndef helper():\n    """Helper."""\n\n\nSUMMARY = helper.__doc__\n'
    (stdlib / "stdreads.py").write_text(text)
    (site / "libreads.py").write_text(text)
    out = tmp_path / "lib" / "python3.11"
    sources = {"stdreads": stdlib / "stdreads.py", "libreads": site / "libreads.py"}
    freeze.write_bytecode(out, sources, optimize=0, stdlib=stdlib)
    code = (
        f"import sys; sys.path.insert(0, {str(out)!r}); import stdreads, libreads\n"
        "print(stdreads.__doc__, stdreads.SUMMARY, libreads.__doc__, libreads.SUMMARY)"
    )
    result = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["None", "None", "Module.", "Helper."], result.stderr


@pytest.mark.parametrize(
    ("relative", "expected"),
    [("json/decoder.py", True), ("os.py", True), ("site-packages/pyroute2/x.py", False), ("../other/x.py", False)],
)
def test_in_stdlib_tells_the_standard_librarys_sources_from_installed_packages(
    tmp_path: Path, relative: str, expected: bool
) -> None:
    stdlib = tmp_path / "lib" / "python3.11"
    assert freeze.in_stdlib(stdlib / relative, stdlib) is expected
