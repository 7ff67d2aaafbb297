"""Find the block device of one LUN of one kernel iSCSI session, and wait for it under a bound.

Found through sysfs (session -> SCSI target -> device with that LUN -> block), never by guessing `sda`: another
disk, or a second session, can take any name first. The scan that makes the kernel look for the LUNs is
`initiator.kernel.scan_host`.
"""

from __future__ import annotations

import re
import select
from pathlib import Path

from boot import warmup
from initiator.deadline import Deadline
from initiator.kernel import SYSFS, session_dir

_SCSI_ADDR = re.compile(r"^(\d+):(\d+):(\d+):(\d+)$")


def find_block_device(sid: int, lun: int, sysfs: Path = SYSFS) -> str | None:
    """The /dev name of `lun` in session `sid`, or None while it has not appeared."""
    devices = session_dir(sid, sysfs) / "device"
    if not devices.exists():
        return None
    for target in sorted(devices.glob("target*")):
        for dev in sorted(target.iterdir()):
            match = _SCSI_ADDR.match(dev.name)
            if not match or int(match.group(4)) != lun:
                continue
            block = dev / "block"
            names = sorted(p.name for p in block.iterdir()) if block.is_dir() else []
            if names:
                return f"/dev/{names[0]}"
    return None


def wait_for_block_device(sid: int, lun: int, deadline: Deadline, sysfs: Path = SYSFS) -> str:
    """Wait for udev to announce the disk (or find it already there); WaitTimeout names the wait."""
    try:
        import pyudev
    except ImportError:  # pragma: no cover - the frozen runtime always carries pyudev
        pyudev = None
    monitor = None
    if pyudev is not None:
        try:
            context = pyudev.Context()
            monitor = pyudev.Monitor.from_netlink(context)
            monitor.filter_by(subsystem="block")
            monitor.start()
        except (OSError, ImportError):
            monitor = None  # no udev (tests, containers): sysfs polling alone still finds it
    while True:
        found = find_block_device(sid, lun, sysfs)
        if found:
            return found
        if deadline.expired():
            raise deadline.timeout(f"no block device for session {sid} LUN {lun}")
        wait = min(0.25, deadline.remaining())
        if wait > warmup.GAP and warmup.step():  # one of the boot's later imports instead of idling
            wait = 0.0
        if monitor is not None:  # wake early on any block event, then look again
            select.select([monitor], [], [], wait)
            while monitor.poll(timeout=0) is not None:
                pass
        else:
            select.select([], [], [], wait)
