from __future__ import annotations

import os
import stat

import pytest

from boot import atomic
from boot.atomic import write_all_atomic, write_atomic


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


# write_all_atomic: several files, one sync, then the renames


def _files(tmp_path):
    return [
        (tmp_path / "etc" / "a.conf", "a\n", 0o644),
        (tmp_path / "etc" / "nodes" / "b", b"secret=x\n", 0o600),
        (tmp_path / "c", "", 0o644),
    ]


def test_write_all_writes_each_whole_with_its_mode(tmp_path):
    files = _files(tmp_path)
    assert write_all_atomic(files) == [path for path, _, _ in files]
    for path, data, mode in files:
        assert path.read_bytes() == (data.encode() if isinstance(data, str) else data)
        assert stat.S_IMODE(path.stat().st_mode) == mode
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.conf", "b", "c", "etc", "nodes"]  # no temporary left


def test_write_all_gives_one_files_error_and_writes_the_others(tmp_path):
    (tmp_path / "etc").write_text("a file where a directory should be")
    files = [(tmp_path / "etc" / "a.conf", "a", 0o644), (tmp_path / "b", "b", 0o644)]
    first, second = write_all_atomic(files)
    assert isinstance(first, OSError) and second == tmp_path / "b"
    assert (tmp_path / "b").read_text() == "b" and sorted(os.listdir(tmp_path)) == ["b", "etc"]


@pytest.mark.parametrize("fail", ["sync", "interrupt"])
def test_write_all_renames_nothing_when_the_sync_fails(tmp_path, monkeypatch, fail):
    """The data must be on disk before any name is replaced: a failed sync (or an interruption) leaves every old
    file as it was and no temporary name behind."""
    write_atomic(tmp_path / "c", "old")
    error = OSError(5, "Input/output error") if fail == "sync" else KeyboardInterrupt()

    def broken(fds):
        raise error

    monkeypatch.setattr(atomic, "_make_durable", broken)
    with pytest.raises(type(error)):
        write_all_atomic(_files(tmp_path))
    assert (tmp_path / "c").read_text() == "old"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["c", "etc", "nodes"]


def test_make_durable_syncs_each_filesystem_once(tmp_path, monkeypatch):
    synced: list[int] = []
    monkeypatch.setattr(atomic, "_syncfs", lambda: synced.append)
    fds = [os.open(tmp_path / name, os.O_CREAT | os.O_WRONLY, 0o600) for name in "abc"]
    try:
        atomic._make_durable(fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert synced == fds[:1]  # one directory, one filesystem


def test_make_durable_falls_back_to_fsync_per_file(tmp_path, monkeypatch):
    fsynced: list[int] = []
    monkeypatch.setattr(atomic, "_syncfs", lambda: None)
    monkeypatch.setattr(atomic.os, "fsync", fsynced.append)
    atomic._make_durable([5, 6])
    assert fsynced == [5, 6]


def test_syncfs_is_the_c_librarys_and_reports_its_errno(tmp_path):
    syncfs = atomic._syncfs()
    assert syncfs is not None
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syncfs(fd)
    finally:
        os.close(fd)
    with pytest.raises(OSError) as raised:
        syncfs(fd)  # closed: EBADF
    assert raised.value.errno == 9
