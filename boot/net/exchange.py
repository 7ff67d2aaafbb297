"""What DHCPv4 and DHCPv6 share: the client's events, the packet error, and the driver loop around a socket.

Both sans-I/O clients (boot.net.dhcp4, boot.net.dhcp6) answer the same calls (`start`, `next_timeout`,
`on_timeout`, `receive`, `progress`); `run_exchange` drives either over its own socket until a lease is bound or
the Deadline runs out, so the retransmission and timeout rules live in one place.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from boot.net.waits import ran_out
from initiator.deadline import Deadline
from initiator.errors import NetworkError

L = TypeVar("L")


class PacketError(NetworkError):
    """A DHCP message we cannot accept. Names the field and the offending value."""

    def __init__(self, protocol: str, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{protocol} {field}: {reason} (got {value!r})")


@dataclass(frozen=True)
class SendPacket:
    """Send this payload (the driver knows where: broadcast for DHCPv4, ff02::1:2 for DHCPv6)."""

    payload: bytes


@dataclass(frozen=True)
class LeaseBound(Generic[L]):
    lease: L


@dataclass(frozen=True)
class Ignored:
    """A well-formed message that is not for us, or not now; `reason` is for the log and the timeout message."""

    reason: str


Event = SendPacket | LeaseBound | Ignored


class Client(Protocol):
    def start(self, now: float) -> bytes: ...
    def next_timeout(self) -> float: ...
    def on_timeout(self, now: float) -> bytes | None: ...
    def receive(self, payload: bytes, now: float) -> Event: ...
    def progress(self) -> str: ...


class Socket(Protocol):
    def fileno(self) -> int: ...


def run_exchange(
    ifname: str,
    client: Client,
    sock: Socket,
    send: Callable[[bytes], None],
    read: Callable[[], bytes | None],
    deadline: Deadline,
    receive: Callable[[bytes, float], Event] | None = None,
) -> object:
    """Start, retransmit when due, feed every payload `read` returns (None: not ours) until LeaseBound; a send
    that fails is retried at the next timeout. The timeout names the interface, the wait and how far it got."""
    clock = deadline.clock
    receive = receive or client.receive
    problem: str | None = None

    def transmit(payload: bytes) -> None:
        nonlocal problem
        try:
            send(payload)
        except OSError as exc:  # ENETDOWN and friends: retried at the next timeout, bounded by the deadline
            problem = f"send failed: {exc.strerror or exc}"

    transmit(client.start(clock()))
    while True:
        now = clock()
        if deadline.expired():
            raise ran_out(ifname, deadline, client.progress() + (f"; {problem}" if problem else ""))
        wait = max(0.0, min(client.next_timeout(), deadline.expires_at) - now)
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            resend = client.on_timeout(clock())
            if resend is not None:
                transmit(resend)
            continue
        try:
            payload = read()
            if payload is None:
                continue
            event = receive(payload, clock())
        except BlockingIOError:
            continue
        except PacketError as exc:
            problem = f"bad packet ignored: {exc}"
            continue
        if isinstance(event, SendPacket):
            transmit(event.payload)
        elif isinstance(event, LeaseBound):
            return event.lease
