from __future__ import annotations

import os
import stat

import pytest

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
