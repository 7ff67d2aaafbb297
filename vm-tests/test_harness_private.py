"""harness.private: a lab's directory named after its maker, and the ones killed runs left removed by the next."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness import debroot, multipath, private, realboot
from harness.errors import HarnessError

PREFIX = ".netlabroot-networkd"
DEAD = 999_999_999  # above any pid_max: no such process


@pytest.mark.parametrize(
    ("name", "pid"),
    [
        (f"{PREFIX}-123-abc_9", 123),
        (f"{PREFIX}-yucxrmd1", None),  # made before names carried the pid: never ours to remove
        (f"{PREFIX}-123-", None),
        (f"{PREFIX}-12a-abc", None),
        (f"{PREFIX}d-123-abc", None),  # another prefix that starts the same
        (".netlabroot-networkmanager-123-abc", None),
        (f"x{PREFIX}-123-abc", None),
        (f"{PREFIX}-123-abc/def", None),
    ],
)
def test_owner_is_the_pid_in_a_name_of_this_prefix_only(name: str, pid: int | None) -> None:
    assert private.owner(name, PREFIX) == pid


def test_stale_are_the_prefixs_names_whose_maker_is_gone() -> None:
    names = [f"{PREFIX}-10-a", f"{PREFIX}-11-b", f"{PREFIX}-old", ".mpath-10-c", f"{PREFIX}-12-d"]
    assert private.stale(names, PREFIX, lambda pid: pid == 11) == [f"{PREFIX}-10-a", f"{PREFIX}-12-d"]


def test_process_alive_tells_a_running_process_from_an_ended_one() -> None:
    ended = subprocess.Popen(["true"])
    ended.wait()
    assert private.process_alive(os.getpid())
    assert not private.process_alive(ended.pid)
    assert not private.process_alive(DEAD)


def test_a_new_directory_removes_only_what_killed_runs_of_its_kind_left(tmp_path: Path) -> None:
    def made(name: str) -> Path:
        path = tmp_path / name
        path.mkdir()
        (path / "root.ext4").write_bytes(b"x")
        return path

    killed = made(f"{PREFIX}-{DEAD}-abc")
    running = made(f"{PREFIX}-{os.getpid()}-def")
    legacy = made(f"{PREFIX}-yucxrmd1")
    other = made(f".mpath-{DEAD}-ghi")
    new = private.make_private_dir(tmp_path, PREFIX)
    assert not killed.exists()
    assert running.exists() and legacy.exists() and other.exists()
    assert new.parent == tmp_path and private.owner(new.name, PREFIX) == os.getpid()
    assert new.stat().st_mode & 0o777 == 0o755
    assert list(new.iterdir()) == []


def test_the_parent_is_made_when_missing(tmp_path: Path) -> None:
    new = private.make_private_dir(tmp_path / "cache", PREFIX)
    assert new.is_dir() and new.parent == tmp_path / "cache"


@pytest.mark.parametrize(
    ("module", "make", "prefix"),
    [
        (realboot, lambda root: realboot.Lab(root), ".realboot-v"),
        (realboot, lambda root: realboot.NetLabRoot(root, 60), ".netlabroot-v"),
        (multipath, lambda root: multipath.MultipathLab(root), ".mpath"),
    ],
)
def test_the_labs_take_their_directory_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: object, make: object, prefix: str
) -> None:
    monkeypatch.setattr(module, "CACHE", tmp_path)
    killed = tmp_path / f"{prefix}-{DEAD}-abc"
    killed.mkdir()
    lab = make(SimpleNamespace(variant="v", initrd=tmp_path / "initrd"))  # type: ignore[operator]
    try:
        assert not killed.exists()
        assert private.owner(lab._tmp.name, prefix) == os.getpid()
    finally:
        lab.close()
    assert not lab._tmp.exists()


def test_the_mode_and_the_removal_are_the_callers(tmp_path: Path) -> None:
    """A stage keeps mkdtemp's 0700 and is removed the Debian root builder's way; one the remover refuses (a mount
    left under it) stays, and the new directory is made all the same."""
    refused = tmp_path / f"{PREFIX}-{DEAD}-abc"
    refused.mkdir()
    asked: list[Path] = []

    def remove(path: Path) -> None:
        asked.append(path)
        raise HarnessError(f"not removing {path}: mounts under it")

    new = private.make_private_dir(tmp_path, PREFIX, mode=0o700, remove=remove)
    assert asked == [refused] and refused.exists()
    assert new.stat().st_mode & 0o777 == 0o700


def test_a_root_build_removes_the_stage_a_killed_build_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under the build lock, a stage of the variant whose builder is gone goes (through debroot's own removal);
    the failed build's own stage goes as before."""
    killed = tmp_path / f".stage-networkd-{DEAD}-abc"
    (killed / "root").mkdir(parents=True)
    removed: list[Path] = []
    real_remove = debroot._remove_tree

    def remove(path: Path) -> None:
        removed.append(path)
        real_remove(path)

    def tar_fails(argv: object, log: Path, bound: float, env: object = None) -> str:
        raise HarnessError("tar: no base")

    monkeypatch.setattr(debroot, "_remove_tree", remove)
    monkeypatch.setattr(debroot, "_run", tar_fails)
    variant = SimpleNamespace(name="networkd")
    with pytest.raises(HarnessError, match="tar: no base"):
        debroot._build_locked(variant, "k", tmp_path / "base.tar", 0.0, tmp_path / "o.deb", tmp_path / "k.deb", "",
                              tmp_path)  # fmt: skip
    assert removed[0] == killed and not killed.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
