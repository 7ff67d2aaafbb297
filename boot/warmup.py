"""Imports the boot's later steps need, made while the boot would otherwise only wait.

Under emulation the boot's own CPU is its critical path, and importing is most of that CPU. It idles only where
it waits on something else: the ARP probe of a DHCP lease (RFC 5227) listens 0.3 s for another owner of the
address, and the disk wait waits for the kernel's scan and udev. A wait that calls `step()` instead of sleeping
spends that time importing, one module per call, what the login, the kernel handoff, the disk wait and the agent
import when they get there.

The ARP probe runs in the bring-up's thread for its interface while the boot's main thread only waits for it
(join), so a step may come from any thread; a lock makes it one at a time: no two threads ever import at once
on the warm-up's account, and a step that finds another one importing returns at once (the wait sleeps
instead). The warm-up's modules (the login, the kernel handoff, the disk wait) and the bring-up's own imports
(pyroute2's, boot.net's) import nothing of each other, so a bring-up thread's import never waits on a module
the warm-up is importing. Unarmed (every use but `pyiscsi boot`, and the tests of the waits), `step()` does
nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from collections.abc import Callable, Iterable

GAP = 0.05  # seconds a wait must have left before it imports instead of sleeping
# What `pyiscsi boot` imports after the address is up, leaves first, so that one step is one module's own body
# rather than a whole chain (a step can then run at most one module past the wait's end).
AFTER_ADDRESS = (
    "initiator.text",
    "initiator.framing",
    "initiator.pdu",
    "initiator.status",
    "initiator.negotiation",
    "initiator.chap",
    "initiator.login",
    "initiator.session",
    "initiator.discovery",
    "initiator.transport",
    "initiator.client",
    "initiator.iscsi_if",
    "initiator.kernel",
    "initiator.handoff",
    "initiator.held_session",
    "ctypes",
    "pyudev",
    "boot.disk",
    "boot.sessions",
    "boot.rootdev",
    "initiator.recovery_policy",
    "initiator.recovery",
    "boot.argv0",
    "boot.commands.agent",
)


class Warmup:
    """A queue of modules to import, one per `step()`, one thread at a time."""

    def __init__(self, modules: Iterable[str], importer: Callable[[str], object] = importlib.import_module) -> None:
        self._pending = list(modules)
        self._importer = importer
        self._busy = threading.Lock()

    def step(self) -> bool:
        """Import the next module not imported yet; False when none is left or another thread is importing."""
        if not self._busy.acquire(blocking=False):
            return False
        try:
            while self._pending:
                name = self._pending.pop(0)
                if name in sys.modules:
                    continue
                with contextlib.suppress(Exception):  # the step that needs it imports it again and says why
                    self._importer(name)
                return True
            return False
        finally:
            self._busy.release()


_armed: Warmup | None = None


def arm(modules: Iterable[str] = AFTER_ADDRESS) -> None:
    """Let the waits that call `step()` import `modules`, in this thread."""
    global _armed
    _armed = Warmup(modules)


def disarm() -> None:
    global _armed
    _armed = None


def step() -> bool:
    """One module imported (True), or nothing to do here (False): what a wait calls instead of sleeping."""
    return _armed.step() if _armed is not None else False
