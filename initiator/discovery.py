"""SendTargets discovery (RFC 7143 Appendix C): the text exchange and the parse of its answer, sans-I/O.

The answer is `TargetName=` keys, each followed by zero or more `TargetAddress=addr[:port],tpgt` keys (IPv6 in
brackets, host names allowed). A target listed without an address is reachable at the discovery portal itself.
The response may span several Text Responses (C bit / F bit 0 with a TTT); the pieces are joined before parsing
because a key may be cut anywhere, and the whole is bounded in bytes and rounds. The parse is linear in the
answer (a 1 MiB answer may hold ~30,000 addresses) and checks the caller's deadline as it goes.
"""

from __future__ import annotations

from initiator import pdu as P
from initiator.deadline import Deadline
from initiator.errors import BadInputError, IscsiError, LocalProtocolError, RemoteProtocolError, RemoteValueError
from initiator.numbers import ascii_int
from initiator.portal import Portal, parse_portal
from initiator.record import record
from initiator.session import Session, TextReply
from initiator.text import decode_text

SEND_TARGETS_ALL = b"SendTargets=All\x00"
MAX_RESPONSE_BYTES = 1 << 20
MAX_ROUNDS = 1024
MAX_NAME = 223
CHECK_EVERY = 256  # keys parsed between two looks at the deadline
ADDRESS_FIELD = "SendTargets TargetAddress"


@record
class DiscoveredPortal:
    """One portal of a target. `tpgt` None: the target gave no address, so no portal group tag either."""

    address: str
    port: int
    tpgt: int | None

    @property
    def portal(self) -> Portal:
        return Portal(self.address, self.port)

    def __str__(self) -> str:
        return f"{self.portal},{-1 if self.tpgt is None else self.tpgt}"


@record
class DiscoveredTarget:
    name: str
    portals: tuple[DiscoveredPortal, ...]

    def lines(self) -> list[str]:
        """`ADDRESS:PORT,TPGT TARGETNAME` per portal, as `iscsiadm -m discovery -t st` prints them."""
        return [f"{p} {self.name}" for p in self.portals]


def _target_address(value: str) -> DiscoveredPortal:
    host, comma, tag = value.rpartition(",")
    if not comma:
        host = value
    tpgt = ascii_int(tag, ADDRESS_FIELD, 0, 0xFFFF, peer=True, whole=value, what="portal group tag") if comma else None
    try:
        portal = parse_portal(host, field=ADDRESS_FIELD)
    except BadInputError as exc:
        raise RemoteValueError(ADDRESS_FIELD, value[:80], exc.reason) from None
    return DiscoveredPortal(portal.address, portal.port, tpgt)


def parse_send_targets(
    data: bytes, discovery_portal: Portal, *, deadline: Deadline | None = None
) -> list[DiscoveredTarget]:
    """The targets in a whole SendTargets answer, in the order the target listed them, repeats merged.

    Linear in the answer: targets and their portals are insertion-ordered dicts (an ordered set each), so a
    target repeating one address 30,000 times costs 30,000 look-ups, not 30,000**2 / 2 comparisons. `deadline`
    (the caller's) is checked every CHECK_EVERY keys: the work of a 1 MiB answer counts against it too.
    """
    pairs = decode_text(data)
    found: dict[str, dict[DiscoveredPortal, None]] = {}
    current: dict[DiscoveredPortal, None] | None = None
    for count, (key, value) in enumerate(pairs):
        if deadline is not None and count % CHECK_EVERY == 0:
            deadline.check(f"parsing the SendTargets answer ({count} of {len(pairs)} keys)")
        if key == "SendTargets" and value in ("Reject", "Irrelevant", "NotUnderstood"):
            raise IscsiError(f"the target answered SendTargets={value}")
        if key == "TargetName":
            if not value or len(value.encode()) > MAX_NAME:
                raise RemoteProtocolError(f"SendTargets: TargetName {value[:80]!r} is not 1..{MAX_NAME} bytes")
            current = found.setdefault(value, {})
        elif key == "TargetAddress":
            if current is None:
                raise RemoteProtocolError(f"SendTargets: TargetAddress {value[:80]!r} before any TargetName")
            current.setdefault(_target_address(value), None)
        # Other keys (TargetAlias, vendor keys) carry nothing discovery needs.
    here = (DiscoveredPortal(discovery_portal.address, discovery_portal.port, None),)
    return [DiscoveredTarget(name, tuple(portals) or here) for name, portals in found.items()]


class SendTargets:
    """One SendTargets=All exchange over a Session: `start()`, then `receive()` each TextReply until it returns
    None, then `targets()`."""

    def __init__(
        self,
        session: Session,
        discovery_portal: Portal,
        *,
        max_bytes: int = MAX_RESPONSE_BYTES,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.session = session
        self.discovery_portal = discovery_portal
        self.max_bytes = max_bytes
        self.max_rounds = max_rounds
        self._itt: int | None = None
        self._parts: list[bytes] = []
        self._size = 0
        self._rounds = 0
        self._done = False

    def start(self) -> P.TextRequest:
        if self._itt is not None:
            raise LocalProtocolError("SendTargets: already started")
        self._itt, request = self.session.text(SEND_TARGETS_ALL)
        return request

    def receive(self, reply: TextReply) -> P.TextRequest | None:
        """Take one Text Response's part; the request asking for more, or None when the answer is whole."""
        if self._itt is None or self._done:
            raise LocalProtocolError("SendTargets: receive() before start() or after the end")
        if reply.itt != self._itt:
            raise RemoteProtocolError(
                f"SendTargets: Text Response for ITT 0x{reply.itt:08x}, ours is 0x{self._itt:08x}"
            )
        self._rounds += 1
        self._size += len(reply.data)
        if self._size > self.max_bytes:
            raise RemoteProtocolError(f"SendTargets: answer exceeds {self.max_bytes} bytes")
        self._parts.append(reply.data)
        if reply.final:
            self._done = True
            return None
        if self._rounds >= self.max_rounds:
            raise RemoteProtocolError(f"SendTargets: answer not final after {self.max_rounds} Text Responses")
        if reply.ttt == P.RESERVED_TAG:
            raise RemoteProtocolError("SendTargets: a Text Response that is not final must carry a Target Transfer Tag")
        return self.session.text_continue(self._itt, reply.ttt)

    @property
    def done(self) -> bool:
        return self._done

    def targets(self, deadline: Deadline | None = None) -> list[DiscoveredTarget]:
        """The whole answer parsed; `deadline` bounds the parse (see parse_send_targets)."""
        if not self._done:
            raise LocalProtocolError("SendTargets: the answer is not complete yet")
        return parse_send_targets(b"".join(self._parts), self.discovery_portal, deadline=deadline)
