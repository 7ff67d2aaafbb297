from __future__ import annotations

import os
import stat

import pytest

from boot import atomic
from boot.atomic import write_atomic


@pytest.mark.parametrize(("mode", "data"), [(0o600, "secret = x\n"), (0o644, b"\x00binary")])
def test_writes_whole_file_with_mode(tmp_path, mode, data):
    target = write_atomic(tmp_path / "a" / "b.conf", data, mode)
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert target.read_bytes() == (data.encode() if isinstance(data, str) else data)
    assert os.listdir(target.parent) == ["b.conf"]


def test_replaces_and_leaves_no_temp_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "f"
    write_atomic(target, "old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_a_taken_temporary_name_is_skipped_and_left_alone(tmp_path, monkeypatch):
    """Someone else's file (or a planted symlink) at the first random name: the next name is used."""
    draws = iter([b"\x01" * 6, b"\x02" * 6])
    monkeypatch.setattr(os, "urandom", lambda n: next(draws))
    taken = tmp_path / f".f.{'01' * 6}"
    victim = tmp_path / "victim"
    victim.write_text("keep")
    taken.symlink_to(victim)
    write_atomic(tmp_path / "f", "new", 0o600)
    assert (tmp_path / "f").read_text() == "new"
    assert victim.read_text() == "keep" and taken.is_symlink()
    assert sorted(os.listdir(tmp_path)) == sorted(["f", "victim", taken.name])


def test_no_free_temporary_name_is_an_error_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "unique_bytes", lambda n: b"\x07" * n)
    (tmp_path / f".f.{'07' * 6}").write_text("other")
    with pytest.raises(FileExistsError, match=r"beside .*/f after"):
        write_atomic(tmp_path / "f", "new")
    assert not (tmp_path / "f").exists()
