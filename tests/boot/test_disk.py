from __future__ import annotations

import threading

import pytest

from boot.disk import find_block_device, wait_for_block_device
from initiator.deadline import Deadline, FakeClock
from initiator.errors import WaitTimeout


def _lun(sysfs, sid, host, lun, name=None):
    dev = sysfs / "class" / "iscsi_session" / f"session{sid}" / "device" / f"target{host}:0:0" / f"{host}:0:0:{lun}"
    dev.mkdir(parents=True, exist_ok=True)
    if name:
        (dev / "block" / name).mkdir(parents=True)
    return dev


@pytest.mark.parametrize(
    ("luns", "want", "expected"),
    [
        ({0: None, 1: "sdb", 2: "sdc"}, 1, "/dev/sdb"),
        ({0: None, 1: "sdb", 2: "sdc"}, 2, "/dev/sdc"),
        ({0: None, 1: None}, 1, None),  # the SCSI device exists, its disk not yet
        ({}, 1, None),
    ],
)
def test_finds_the_lun_of_the_session(tmp_path, luns, want, expected):
    for lun, name in luns.items():
        _lun(tmp_path, 3, 2, lun, name)
    _lun(tmp_path, 4, 5, want, "sda")  # another session's disk of the same LUN number
    assert find_block_device(3, want, tmp_path) == expected


def test_wait_returns_when_the_disk_appears(tmp_path):
    _lun(tmp_path, 1, 0, 1)
    timer = threading.Timer(0.3, lambda: _lun(tmp_path, 1, 0, 1, "sdx"))
    timer.start()
    try:
        assert wait_for_block_device(1, 1, Deadline("disk", 10), tmp_path) == "/dev/sdx"
    finally:
        timer.cancel()


def test_wait_is_bounded_and_named(tmp_path):
    clock = FakeClock()
    deadline = Deadline("disk", 30, clock=clock)
    clock.advance(31)
    with pytest.raises(WaitTimeout, match=r"wait 'disk' ran out after 30s: no block device for session 9 LUN 1"):
        wait_for_block_device(9, 1, deadline, tmp_path)


def test_the_wait_imports_the_boots_later_modules_meanwhile_and_still_sees_the_disk(tmp_path):
    """Armed (boot.warmup), each look at sysfs that finds nothing makes one import instead of sleeping; the disk
    that appears meanwhile is found at the next look."""
    import time

    from boot import warmup

    _lun(tmp_path, 1, 0, 1)
    imported: list[str] = []

    def importer(name: str) -> None:
        imported.append(name)
        time.sleep(0.05)
        if len(imported) == 3:
            _lun(tmp_path, 1, 0, 1, "sdx")

    warmup._armed = warmup.Warmup([f"later.step{i}" for i in range(10)], importer=importer)
    try:
        assert wait_for_block_device(1, 1, Deadline("disk", 10), tmp_path) == "/dev/sdx"
    finally:
        warmup.disarm()
    assert imported == ["later.step0", "later.step1", "later.step2"]
