"""boot.freeze.archive: the bytecode zip is the same bytes on every build, and carries nothing of the build host."""

from __future__ import annotations

import marshal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from boot import freeze
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import ENTRIES, options, zip_names


def test_two_builds_give_byte_identical_zips(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    again = freeze.build(options(tmp_path / "again", copy_libraries=False))
    assert again.zip_path.read_bytes() == tree.zip_path.read_bytes()


def test_a_build_in_another_process_gives_the_same_zip(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "boot.freeze", "--out", str(tmp_path), "--no-libs"]
    result = subprocess.run(
        argv + [f"--entry={name}" for name in ENTRIES], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / freeze._rel(freeze.PREFIX / "lib" / freeze.ZIP_NAME)).read_bytes() == tree.zip_path.read_bytes()


def test_entries_are_sorted_dated_1980_with_fixed_modes(tree: freeze.FrozenTree) -> None:
    with zipfile.ZipFile(tree.zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {(freeze.FIXED_DATE, 0o100644)}
    assert all(i.filename.endswith(".pyc") for i in infos)


@pytest.mark.parametrize("member", ["boot/cli.pyc", "pyroute2/iproute/linux.pyc", "json/__init__.pyc"])
def test_pycs_are_unchecked_hash_based_with_relative_filenames(tree: freeze.FrozenTree, member: str) -> None:
    with zipfile.ZipFile(tree.zip_path) as archive:
        data = archive.read(member)
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, check_source off
    code = marshal.loads(data[16:])
    assert code.co_filename == member[:-1]  # "boot/cli.py": nothing of the build machine's paths


def test_every_module_of_the_closure_is_one_member(tree: freeze.FrozenTree) -> None:
    assert sorted(zip_names(tree)) == sorted(f"{stem}.pyc" for stem in tree.modules)


def test_a_source_that_does_not_compile_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def (:\n")
    with pytest.raises(BadInputError) as caught:
        freeze.write_zip(tmp_path / "out.zip", {"broken": broken}, optimize=0)
    assert str(broken) in str(caught.value) and "does not compile" in str(caught.value)
    assert not (tmp_path / "out.zip").exists()


@pytest.mark.parametrize(("compress", "method"), [(False, zipfile.ZIP_STORED), (True, zipfile.ZIP_DEFLATED)])
def test_members_are_stored_unless_compression_is_asked_for(tmp_path: Path, compress: bool, method: int) -> None:
    """Stored by default: zipimport reads them without inflating, and the image's zstd packs them better."""
    source = tmp_path / "mod.py"
    source.write_text("VALUE = 'x' * 4\n" * 50)
    out = tmp_path / f"{compress}.zip"
    freeze.write_zip(out, {"mod": source}, optimize=0, compress=compress)
    again = tmp_path / f"{compress}-again.zip"
    freeze.write_zip(again, {"mod": source}, optimize=0, compress=compress)
    assert out.read_bytes() == again.read_bytes()
    with zipfile.ZipFile(out) as archive:
        assert [info.compress_type for info in archive.infolist()] == [method]
    code = f"import sys; sys.path.insert(0, {str(out)!r}); import mod; print(mod.VALUE)"
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.stdout.strip() == "xxxx", result.stderr


def test_the_default_tree_has_a_stored_zip(tree: freeze.FrozenTree) -> None:
    with zipfile.ZipFile(tree.zip_path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
