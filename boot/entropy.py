"""Nothing on the boot's path may wait for the kernel's entropy pool, which is not seeded yet early in a boot
without a hardware random source (QEMU's emulated CPUs, VMs without virtio-rng); seeding it from timer jitter
takes seconds under emulation. See initiator.unique for the bytes we draw ourselves.

pyroute2's config imports multiprocessing, whose `process` module draws the main process's authkey with
os.urandom() as it is imported: that waits. The key guards multiprocessing's authenticated connections, which
neither pyroute2's IPRoute nor the boot nor the agent forked from it ever opens, so the boot imports the module
once with a key that does not wait. Only a boot that makes a VLAN, bond or bridge imports pyroute2's IPRoute
(boot.net.rtnl does the rest; boot.commands.boot.needs_pyroute2)."""

from __future__ import annotations

import os
import sys

from initiator.unique import unique_bytes

WAITING_IMPORTS = ("multiprocessing.process",)


def import_without_waiting(names: tuple[str, ...] = WAITING_IMPORTS) -> None:
    """Import `names` with os.urandom standing in as unique_bytes (single-threaded callers only)."""
    missing = [name for name in names if name not in sys.modules]
    if not missing:
        return
    import importlib

    urandom = os.urandom
    os.urandom = unique_bytes
    try:
        for name in missing:
            importlib.import_module(name)
    finally:
        os.urandom = urandom
