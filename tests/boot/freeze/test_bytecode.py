"""boot.freeze.bytecode: the .pyc files are the same bytes and metadata on every build, carry nothing of the build
host, and replace the directory only once all are written."""

from __future__ import annotations

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
