"""Has udev handled a link yet? `pyiscsi boot` starts while udev's coldplug is still running (it does not wait
for systemd-udev-trigger.service, which does not wait for udev either), and a link must not be set up before
udev has handled it: the kernel refuses to rename a link that is up, so udev's name (ens2 for eth0) would never
be given, and the real root's networking would wait for a link of that name.

systemd-udevd keeps a database entry `/run/udev/data/n<ifindex>` for each network link it has run its rules on.
While it renames one, the entry exists already and carries `E:ID_RENAMING=1`; the property goes when the
rename's `move` event has been handled. So a link is handled once its entry exists without that property, or
with it once the kernel says the link's name came from a rename (`name_assign_type` 4, NET_NAME_RENAMED): udev
writes the entry, then renames, and has applied the link's settings (its .link file) before either. The `move`
event itself waits in udev's queue behind every coldplug event queued before it; nothing in it concerns us.
The wait applies only where udev can handle our links: udevd runs (`/run/udev/control` exists) and we are in the
network namespace of PID 1 (udev gets no events from other namespaces, such as the tests'). Paths are arguments
so that tests use a fake tree.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from initiator.deadline import Deadline

UDEV_ROOT = Path("/run/udev")
PROC = Path("/proc")
POLL = 0.05  # seconds between looks: short against the bound, nothing for the CPU
RENAMING = "E:ID_RENAMING="  # the entry's property while udev renames the link
ENTRY_LIMIT = 65536  # bytes of an entry read: a link's is a few hundred
SYS_NET = Path("/sys/class/net")
NET_NAME_RENAMED = b"4"  # linux/netdevice.h: name_assign_type of a name given by a rename from user space


def _netns(proc: Path, pid: str) -> int | None:
    try:
        return os.stat(proc / pid / "ns" / "net").st_ino
    except OSError:
        return None


def udev_handles_links(root: Path = UDEV_ROOT, proc: Path = PROC) -> bool:
    """True when udevd runs and sees this network namespace's links (it is PID 1's)."""
    if not (root / "control").exists():
        return False
    ours = _netns(proc, "self")
    return ours is not None and ours == _netns(proc, "1")


def renamed(index: int, sys_net: Path = SYS_NET) -> bool:
    """True when the kernel says link `index` got its current name from a rename (sysfs: the link's directory
    whose `ifindex` is `index`, and its `name_assign_type`)."""
    try:
        for link in sys_net.iterdir():
            with open(link / "ifindex", "rb") as number:
                if number.read(16).strip() != str(index).encode():
                    continue
            with open(link / "name_assign_type", "rb") as kind:
                return kind.read(16).strip() == NET_NAME_RENAMED
    except OSError:  # a link gone meanwhile, or no sysfs: not known to be renamed
        return False
    return False


def handled(index: int, root: Path = UDEV_ROOT, sys_net: Path = SYS_NET) -> bool:
    """True once udev has run its rules on link `index` and is not renaming it, or has renamed it."""
    try:
        with open(root / "data" / f"n{index}", "rb") as entry:
            text = entry.read(ENTRY_LIMIT).decode("utf-8", "replace")
    except OSError:
        return False
    if not any(line.startswith(RENAMING) for line in text.splitlines()):
        return True
    return renamed(index, sys_net)


def wait_handled(
    indexes: Iterable[int],
    deadline: Deadline,
    *,
    root: Path = UDEV_ROOT,
    proc: Path = PROC,
    sleep: Callable[[float], None] = time.sleep,
    sys_net: Path = SYS_NET,
) -> tuple[int, ...]:
    """Wait, under `deadline`, until udev has handled every link of `indexes` (at once when udev does not handle
    links here). Returns the indexes still not handled when the deadline ran out (empty: all handled)."""
    waiting = tuple(indexes)
    if not waiting or not udev_handles_links(root, proc):
        return ()
    while True:
        waiting = tuple(index for index in waiting if not handled(index, root, sys_net))
        if not waiting or deadline.expired():
            return waiting
        sleep(min(POLL, max(0.0, deadline.remaining())))
