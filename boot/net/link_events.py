"""Wake a link wait when the kernel reports a link change, instead of dumping every link 20 times a second.

The link waits (a link to appear, udev's rename, carrier) re-read the links through pyroute2. Under TCG one dump
costs 10-20 ms of the single vCPU: polled every 50 ms while udev's coldplug loads the NIC's driver, it took a
quarter of the CPU from the very work being waited for. A NETLINK_ROUTE socket bound to the link group gets a
message on every new link, rename, and flags or carrier change; a wait sleeps on it and re-reads the links when
one comes, and at the latest after PERIOD (a message lost to a full socket buffer costs that much, no more).
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Callable
from types import TracebackType

RTMGRP_LINK = 0x1  # linux/rtnetlink.h: the multicast group of RTM_NEWLINK/RTM_DELLINK
PERIOD = 0.5  # seconds a link wait goes without a message before it looks again anyway
DRAIN_LIMIT = 256  # messages read per wake-up: a flood of link changes cannot hold the wait in the loop
RECV_SIZE = 65536


class LinkEvents:
    """A `sleep(seconds)` for the link waits that returns early when a link changes. `period` tells the waits
    (boot.net.links) how long they may sleep between looks; they pass less when their deadline is nearer."""

    period = PERIOD

    def __init__(self) -> None:
        self._sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        try:
            self._sock.bind((0, RTMGRP_LINK))
        except OSError:
            self._sock.close()
            raise

    def __call__(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when a link message ended it early."""
        if seconds <= 0:
            return False
        ready, _, _ = select.select([self._sock], [], [], seconds)
        if not ready:
            return False
        self._drain()
        return True

    def _drain(self) -> None:
        for _ in range(DRAIN_LIMIT):
            try:
                if not self._sock.recv(RECV_SIZE):
                    return
            except BlockingIOError:
                return
            except OSError:  # ENOBUFS: messages were lost; the wait reads the links again anyway
                return

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> LinkEvents:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def link_waits(sleep: Callable[[float], None]) -> contextlib.AbstractContextManager[Callable[[float], object]]:
    """The sleep the link waits use: LinkEvents for the real clock (time.sleep), the caller's own otherwise (the
    tests' fake clocks), and time.sleep where no netlink socket can be had."""
    if sleep is time.sleep:
        try:
            return LinkEvents()
        except OSError:
            pass
    return contextlib.nullcontext(sleep)
