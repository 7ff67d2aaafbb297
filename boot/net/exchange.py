"""What DHCPv4 and DHCPv6 share: the client's events, the errors, the table lookup, and the driver loop.

Both sans-I/O clients (boot.net.dhcp4, boot.net.dhcp6) answer the same calls (`start`, `next_timeout`,
`on_timeout`, `receive`, `progress`); `run_exchange` drives either over its own socket until a lease is bound or
the Deadline runs out, so the retransmission and timeout rules live in one place. Each client keeps its state
changes in one table, (state, event) -> state, and moves only through `advance`.
"""

from __future__ import annotations

import enum
import ipaddress
import select
from collections.abc import Callable, Mapping
from typing import Generic, Protocol, TypeVar

from boot.net.waits import ran_out
from initiator.deadline import Deadline
from initiator.errors import IllegalTransition, NetworkError
from initiator.record import record

L = TypeVar("L")
S = TypeVar("S", bound=enum.Enum)


class PacketError(NetworkError):
    """A DHCP message we cannot accept. Names the field and the offending value."""

    def __init__(self, protocol: str, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{protocol} {field}: {reason} (got {value!r})")


class DhcpTransitionError(IllegalTransition):
    """A client was driven out of turn: the (state, event) pair has no row in its table. A bug in the caller;
    what a server sends never gets here (a message the table has no row for is ignored, as the RFCs say)."""

    def __init__(self, protocol: str, state: enum.Enum, event: enum.Enum) -> None:
        machine = f"{protocol} client"
        super().__init__(machine, state, event, f"{machine}: event {event.name} is not allowed in state {state.name}")


def advance(protocol: str, table: Mapping[tuple[S, enum.Enum], S], state: S, event: enum.Enum) -> S:
    """The state `table` gives for `event` in `state`; DhcpTransitionError if it has no such row."""
    after = table.get((state, event))
    if after is None:
        raise DhcpTransitionError(protocol, state, event)
    return after


@record
class SendPacket:
    """Send this payload (the driver knows where: broadcast for DHCPv4, ff02::1:2 for DHCPv6)."""

    payload: bytes


@record
class LeaseBound(Generic[L]):
    lease: L


@record
class Ignored:
    """A well-formed message that is not for us, or not now; `reason` is for the log and the timeout message."""

    reason: str


@record
class Noted:
    """A message that changed the client without anything to send now (a refusal, an offer kept for later)."""

    reason: str


@record
class CheckAddress:
    """Before the lease is used: does another host already have `address`? The driver probes and answers with
    the client's `address_checked` (DHCPv4: RFC 2131 4.4.1, RFC 5227)."""

    address: ipaddress.IPv4Address


Event = SendPacket | LeaseBound | Ignored | Noted | CheckAddress


class Client(Protocol):
    def start(self, now: float) -> bytes: ...
    def next_timeout(self) -> float: ...
    def on_timeout(self, now: float) -> bytes | None: ...
    def receive(self, payload: bytes, now: float) -> Event: ...
    def send_failed(self, payload: bytes) -> None: ...
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
    check: Callable[[CheckAddress], Event] | None = None,
) -> object:
    """Start, retransmit when due, feed every payload `read` returns (None: not ours) until LeaseBound; a send
    that fails is retried at the next timeout (and not counted as sent: `client.send_failed`). A CheckAddress
    goes to `check`, which probes and returns the client's next event. The timeout names the interface, the wait
    and how far it got."""
    clock = deadline.clock
    receive = receive or client.receive
    problem: str | None = None

    def transmit(payload: bytes) -> None:
        nonlocal problem
        try:
            send(payload)
        except OSError as exc:  # ENETDOWN and friends: retried at the next timeout, bounded by the deadline
            client.send_failed(payload)
            problem = f"send failed: {exc.strerror or exc}"

    def handle(event: Event) -> object:
        """The lease if `event` (or what a check led to) bound one, else None once its packet is sent."""
        while isinstance(event, CheckAddress):
            if check is None:
                raise TypeError("the client asked for an address check and the driver has none")
            event = check(event)
        if isinstance(event, SendPacket):
            transmit(event.payload)
        elif isinstance(event, LeaseBound):
            return event.lease
        return None

    transmit(client.start(clock()))
    while True:
        now = clock()
        if deadline.expired():
            raise ran_out(ifname, deadline, client.progress() + (f"; {problem}" if problem else ""))
        if now >= client.next_timeout():  # before reading: a busy LAN must not starve the retransmissions
            resend = client.on_timeout(now)
            if resend is not None:
                transmit(resend)
            continue
        wait = max(0.0, min(client.next_timeout(), deadline.expires_at) - now)
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
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
        lease = handle(event)
        if lease is not None:
            return lease
