"""A sans-I/O stateful DHCPv6 client (RFC 8415, one IA_NA): bytes and times in, bytes and a lease out.

Theory of operation. `Dhcp6Client.start(now)` returns the first SOLICIT; the driver multicasts whatever the
client returns to ff02::1:2 port 547 and feeds back every UDP payload that reaches port 546 (`receive`) and the
passing of time (`on_timeout` once `now >= next_timeout()`). Every state change is a row of `DHCP6_TRANSITIONS`
below, (state, event) -> state, and goes through it; the comment above the table sets it against RFC 8415.

Two deliberate departures from the RFC, both because a boot is waiting: the first SOLICIT goes out at once (no
SOL_MAX_DELAY), and the first usable ADVERTISE is taken instead of collecting them for a whole first
retransmission time. Messages for another transaction or another client are ignored; a malformed one raises
Dhcp6PacketError (naming the field and value) and leaves the state as it was. An address we could not use
(IPv4-mapped, link-local, multicast...) or an IA_NA with T1 > T2 (RFC 8415 21.4) is skipped as if not sent; a
bad configuration option (a name that is no domain name, a multicast name server) is dropped and named in the
lease's `warnings`. Text from the server (status messages) is escaped before it reaches any message. The whole
wait belongs to the driver's Deadline: this object only says when the next transmission is due; after a refusal
that is a backoff that doubles (RFC 8415 section 15), so a server that refuses everything sees a handful of
messages, not thousands.

DHCPv6 gives addresses, not prefixes or routes: the address is applied as a /128, and the on-link prefix and
the default route come from router advertisements (RFC 8415 section 18.2.10.1; the M flag in RAs).
"""

from __future__ import annotations

import enum
import ipaddress
import random
import struct
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

from boot.net.exchange import Event, Ignored, LeaseBound, Noted, PacketError, SendPacket, advance
from boot.net.names import checked_name, name_problem
from initiator.printable import printable
from initiator.record import record

CLIENT_PORT = 546
SERVER_PORT = 547
ALL_SERVERS = "ff02::1:2"  # All_DHCP_Relay_Agents_and_Servers
DUID_LL = 3
HWTYPE_ETHER = 1
MAX_MESSAGE = 65535

SOL_TIMEOUT = 1.0
SOL_MAX_RT = 16.0  # RFC: 3600 s; a boot's bound is far shorter, so keep trying often
REQ_TIMEOUT = 1.0
REQ_MAX_RT = 30.0
REQ_MAX_RC = 10
RESTART_TIMEOUT = 1.0  # the first wait after a refusal (IRT); it doubles up to SOL_MAX_RT (MRT), with RAND


# ---- the client's states and the table that moves between them ------------------------------------------------


class Dhcp6State(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    RESTARTING = "restarting"  # a Reply refused us: waiting out a backoff before the next Solicit
    BOUND = "bound"


class Dhcp6Event(enum.Enum):
    START = "start() called"
    ADVERTISE = "an Advertise offering an address for our IA_NA"
    REPLY_BOUND = "a Reply giving an address for our IA_NA"
    REPLY_REFUSED = "a Reply with a refusing status or no address for our IA_NA"
    RETRANSMIT = "the retransmission time came"
    REQUESTS_EXHAUSTED = "the retransmission time came after REQ_MAX_RC Requests"
    BACKOFF_OVER = "the backoff after a refusal ran out"


S, E = Dhcp6State, Dhcp6Event

# The client's whole life, one row per (state, event) -> state, and what it sends on the way. RFC 8415 draws no
# client diagram; the states are named as in RFC 2131 (and boot.net.dhcp4) and the rows follow section 18.2:
# - SELECTING is server discovery: Solicit (18.2.1) with Rapid Commit, so a server may answer with a Reply that
#   binds at once; an Advertise (18.2.9) is answered with a Request (18.2.2) to that server for that address.
# - a Reply (18.2.10.1) with our address binds; one that refuses (UnspecFail, NoAddrsAvail, NotOnLink, no usable
#   IA_NA for us) restarts discovery after a backoff (RESTARTING): 18.2.10.1 asks a client that retries after
#   UnspecFail to limit its rate, and the wait is section 15's, RT = 2*RTprev + RAND*RTprev from RESTART_TIMEOUT
#   up to SOL_MAX_RT, growing with each refusal. A Request unanswered after REQ_MAX_RC tries restarts discovery
#   at once (one of the choices 18.2.2 gives; those tries were the backoff). Each restart and each Request is a
#   new transaction (section 8).
# - retransmissions (section 15) are the rows that stay in their state; BOUND is the end (no Renew or Rebind).
# A message with no row in the current state is ignored (an Advertise while REQUESTING, anything while BOUND);
# anything else with no row is a call out of turn (start() twice) and raises DhcpTransitionError naming the
# state and the event.
DHCP6_TRANSITIONS: Mapping[tuple[Dhcp6State, Dhcp6Event], Dhcp6State] = MappingProxyType(
    {
        (S.INIT, E.START): S.SELECTING,  # send Solicit
        (S.SELECTING, E.RETRANSMIT): S.SELECTING,  # Solicit again: same transaction, longer wait
        (S.SELECTING, E.ADVERTISE): S.REQUESTING,  # send Request naming the server and the address
        (S.SELECTING, E.REPLY_BOUND): S.BOUND,  # Rapid Commit
        (S.SELECTING, E.REPLY_REFUSED): S.RESTARTING,  # a Rapid Commit Reply refusing us: nothing sent now
        (S.REQUESTING, E.RETRANSMIT): S.REQUESTING,  # Request again
        (S.REQUESTING, E.REQUESTS_EXHAUSTED): S.SELECTING,  # new Solicit
        (S.REQUESTING, E.REPLY_BOUND): S.BOUND,
        (S.REQUESTING, E.REPLY_REFUSED): S.RESTARTING,  # nothing sent now
        (S.RESTARTING, E.BACKOFF_OVER): S.SELECTING,  # new Solicit
    }
)


class Dhcp6MessageType(enum.IntEnum):
    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11


class Dhcp6Option(enum.IntEnum):
    CLIENTID = 1
    SERVERID = 2
    IA_NA = 3
    IAADDR = 5
    ORO = 6
    PREFERENCE = 7
    ELAPSED_TIME = 8
    STATUS_CODE = 13
    RAPID_COMMIT = 14
    DNS_SERVERS = 23
    DOMAIN_LIST = 24


class Dhcp6Status(enum.IntEnum):
    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5
    NO_PREFIX_AVAIL = 6


REQUESTED = (Dhcp6Option.DNS_SERVERS, Dhcp6Option.DOMAIN_LIST)


class Dhcp6PacketError(PacketError):
    """A DHCPv6 message we cannot accept. Names the field and the offending value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__("DHCPv6", field, value, reason)


# ---- codec ----------------------------------------------------------------------------------------------------


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack("!HH", code, len(data)) + data for code, data in options)


def decode_options(data: bytes, where: str = "options") -> list[tuple[int, bytes]]:
    """Every (code, data) in order; an option running past its container is an error naming it."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if offset + 4 > len(data):
            raise Dhcp6PacketError(where, len(data) - offset, "option header cut short")
        code, length = struct.unpack_from("!HH", data, offset)
        if offset + 4 + length > len(data):
            raise Dhcp6PacketError(f"{where}: option {code}", length, "option length runs past the message")
        out.append((code, data[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    return out


def _first(options: list[tuple[int, bytes]], code: int) -> bytes | None:
    return next((data for c, data in options if c == code), None)


@record
class Dhcp6Message:
    type: int
    xid: int
    options: tuple[tuple[int, bytes], ...]

    def option(self, code: int) -> bytes | None:
        return _first(list(self.options), code)


def encode_message(type_: Dhcp6MessageType, xid: int, options: list[tuple[int, bytes]]) -> bytes:
    return bytes((int(type_),)) + xid.to_bytes(3, "big") + encode_options(options)


def decode_message(data: bytes) -> Dhcp6Message:
    if len(data) < 4:
        raise Dhcp6PacketError("message", len(data), "shorter than the 4-byte header")
    if len(data) > MAX_MESSAGE:
        raise Dhcp6PacketError("message", len(data), "longer than a UDP datagram")
    return Dhcp6Message(data[0], int.from_bytes(data[1:4], "big"), tuple(decode_options(data[4:])))


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (type 3): stable for the NIC, needs no clock or storage (an initramfs has neither)."""
    return struct.pack("!HH", DUID_LL, HWTYPE_ETHER) + mac


MAX_STATUS_TEXT = 100  # bytes of a status message kept for our messages


def _status(raw: bytes | None, where: str) -> tuple[int, str]:
    """The code and the message of a Status Code option; the message escaped (printable), ready for a console."""
    if raw is None:
        return Dhcp6Status.SUCCESS, ""
    if len(raw) < 2:
        raise Dhcp6PacketError(f"{where} status code", raw.hex(), "shorter than 2 bytes")
    return int.from_bytes(raw[:2], "big"), printable(raw[2 : 2 + MAX_STATUS_TEXT])


def _status_text(code: int, message: str) -> str:
    try:
        name = Dhcp6Status(code).name
    except ValueError:
        name = f"status {code}"
    return f"{name}{': ' + message if message else ''}"


def _dns_names(raw: bytes, warnings: list[str]) -> tuple[str, ...]:
    """RFC 1035 names, uncompressed (RFC 8415 section 10). A name that is not one (a bad character, an empty or
    long label, over 253 characters) is dropped with a warning; an encoding that runs past the option drops the
    rest of it."""
    field = f"option {Dhcp6Option.DOMAIN_LIST} (domain search list)"
    names: list[str] = []
    labels: list[bytes] = []
    i = 0
    while i < len(raw):
        length = raw[i]
        i += 1
        if length == 0:
            if labels:
                text = b".".join(labels)
                try:
                    decoded = text.decode("ascii")
                except UnicodeDecodeError:
                    problem: str | None = "not ASCII"
                else:
                    problem = name_problem(decoded)
                if problem:
                    warnings.append(f"{field} '{printable(text[:64])}' dropped: {problem}")
                elif checked_name(decoded) not in names:
                    names.append(checked_name(decoded))
            labels = []
            continue
        if length > 63 or i + length > len(raw):
            warnings.append(f"{field}: the rest dropped at byte {i - 1}: label length {length} runs past the option")
            return tuple(names)
        labels.append(raw[i : i + length])
        i += length
    if labels:
        warnings.append(f"{field}: the last name dropped: it has no terminating zero-length label")
    return tuple(names)


V4_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")
V4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated (RFC 4291 2.5.5.1); holds :: and ::1 too


def address_problem(address: ipaddress.IPv6Address) -> str | None:
    """Why `address` cannot be ours or a name server's (beyond the link), or None if it can."""
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "the loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_link_local:
        return "a link-local address"
    if address in V4_MAPPED:
        return "an IPv4-mapped address"
    if address in V4_COMPATIBLE:
        return "an IPv4-compatible address (deprecated)"
    return None


def _dns_servers(raw: bytes, warnings: list[str]) -> tuple[ipaddress.IPv6Address, ...]:
    field = f"option {Dhcp6Option.DNS_SERVERS} (DNS servers)"
    if len(raw) % 16:
        warnings.append(f"{field} dropped: {len(raw)} bytes, not a multiple of 16")
        return ()
    out: list[ipaddress.IPv6Address] = []
    for address in (ipaddress.IPv6Address(raw[i : i + 16]) for i in range(0, len(raw), 16)):
        problem = address_problem(address)
        if problem:
            warnings.append(f"{field} {address} dropped: {problem}")
        elif address not in out:
            out.append(address)
    return tuple(out)


@record
class Dhcp6Lease:
    """What a bound IA_NA gave us, plus the configuration options of the same Reply."""

    address: ipaddress.IPv6Address
    preferred_lifetime: int
    valid_lifetime: int
    t1: int
    t2: int
    server_id: bytes
    dns: tuple[ipaddress.IPv6Address, ...] = ()
    domains: tuple[str, ...] = ()
    obtained_at: float = 0.0
    warnings: tuple[str, ...] = ()  # options dropped, each named with its value (escaped) and why


def _ia_na_address(message: Dhcp6Message, iaid: int) -> tuple[ipaddress.IPv6Address, int, int, int, int] | str:
    """The first usable address of our IA_NA, or why there is none (a status the server gave, or what was wrong
    with what it gave: the IA_NA's times, the address)."""
    code, text = _status(message.option(Dhcp6Option.STATUS_CODE), "message")
    if code != Dhcp6Status.SUCCESS:
        return _status_text(code, text)
    why = "no IA_NA for us in the message"
    for c, data in message.options:
        if c != Dhcp6Option.IA_NA:
            continue
        if len(data) < 12:
            raise Dhcp6PacketError("IA_NA", data.hex(), "shorter than 12 bytes")
        got_iaid, t1, t2 = struct.unpack_from("!III", data)
        if got_iaid != iaid:
            continue
        if t1 > t2 > 0:  # RFC 8415 21.4: discard the IA_NA, read the rest of the message as if it were not there
            why = f"the IA_NA was discarded: T1 {t1} is greater than T2 {t2}"
            continue
        inner = decode_options(data[12:], "IA_NA options")
        code, text = _status(_first(inner, Dhcp6Option.STATUS_CODE), "IA_NA")
        if code != Dhcp6Status.SUCCESS:
            return _status_text(code, text)
        why = "the IA_NA holds no usable address"
        for ic, idata in inner:
            if ic != Dhcp6Option.IAADDR:
                continue
            if len(idata) < 24:
                raise Dhcp6PacketError("IAADDR", idata.hex(), "shorter than 24 bytes")
            address = ipaddress.IPv6Address(idata[:16])
            preferred, valid = struct.unpack_from("!II", idata, 16)
            code, text = _status(
                _first(decode_options(idata[24:], "IAADDR options"), Dhcp6Option.STATUS_CODE), "IAADDR"
            )
            if code != Dhcp6Status.SUCCESS or valid == 0 or preferred > valid:
                continue
            problem = address_problem(address)
            if problem:
                why = f"the IA_NA holds no usable address (IAADDR {address}: {problem})"
                continue
            return address, preferred, valid, t1, t2
        return why
    return why


class Dhcp6Client:
    """One IA_NA on one interface. `rng` is injectable so tests see a fixed schedule and transaction ids.

    `sent` counts the messages handed to the driver by type, less those whose sending failed (`send_failed`):
    what a server can have seen, for the timeout's message."""

    def __init__(self, mac: bytes, *, iaid: int | None = None, rng: random.Random | None = None) -> None:
        if len(mac) != 6:
            raise ValueError(f"mac must be 6 bytes, got {len(mac)}")
        self.duid = duid_ll(mac)
        self.iaid = int.from_bytes(mac[2:], "big") if iaid is None else iaid
        self.rng = rng or random.Random()
        self.state = Dhcp6State.INIT
        self.xid = 0
        self._started = 0.0  # of the current exchange, for Elapsed Time
        self._rt = 0.0
        self._restart_rt = 0.0
        self._next = float("inf")
        self._sent = 0  # of the current exchange: the Request retransmissions' count (REQ_MAX_RC)
        self.sent: Counter[Dhcp6MessageType] = Counter()
        self._server_id: bytes | None = None
        self._offered: ipaddress.IPv6Address | None = None
        self.last_refusal: str | None = None
        self.ignored = 0

    # -- the driver's interface --

    def start(self, now: float) -> bytes:
        self._advance(Dhcp6Event.START)
        return self._solicit(now)

    def next_timeout(self) -> float:
        return self._next

    def on_timeout(self, now: float) -> bytes | None:
        if now < self._next:
            return None
        if self.state is Dhcp6State.SELECTING:
            self._advance(Dhcp6Event.RETRANSMIT)
            self._backoff(now, SOL_MAX_RT)
            return self._encode_solicit(now)
        if self.state is Dhcp6State.REQUESTING:
            if self._sent >= REQ_MAX_RC:
                self.last_refusal = f"no Reply to {REQ_MAX_RC} Requests"
                self._advance(Dhcp6Event.REQUESTS_EXHAUSTED)
                return self._solicit(now)
            self._advance(Dhcp6Event.RETRANSMIT)
            self._backoff(now, REQ_MAX_RT)
            return self._encode_request(now)
        if self.state is Dhcp6State.RESTARTING:
            self._advance(Dhcp6Event.BACKOFF_OVER)
            return self._solicit(now)
        return None

    def receive(self, payload: bytes, now: float) -> Event:
        message = decode_message(payload)
        if message.xid != self.xid:
            return self._ignore("another transaction")
        if message.option(Dhcp6Option.CLIENTID) != self.duid:
            return self._ignore("another client")
        server_id = message.option(Dhcp6Option.SERVERID)
        if not server_id:
            return self._ignore("no server identifier")
        if message.type == Dhcp6MessageType.ADVERTISE and self._expects(Dhcp6Event.ADVERTISE):
            found = _ia_na_address(message, self.iaid)
            if isinstance(found, str):
                self.last_refusal = f"advertise: {found}"
                return self._ignore(found)
            self._server_id, self._offered = server_id, found[0]
            self._advance(Dhcp6Event.ADVERTISE)
            self.xid = self._new_xid()  # every exchange has its own transaction (RFC 8415 section 8)
            self._begin(now, REQ_TIMEOUT)
            return SendPacket(self._encode_request(now))
        if message.type != Dhcp6MessageType.REPLY:
            return self._ignore(f"message type {message.type} while {self.state.value}")
        if self.state is Dhcp6State.SELECTING and message.option(Dhcp6Option.RAPID_COMMIT) is None:
            return self._ignore("reply without rapid commit while selecting")
        if self.state is Dhcp6State.REQUESTING and server_id != self._server_id:
            return self._ignore("reply from another server")
        if not self._expects(Dhcp6Event.REPLY_BOUND):
            return self._ignore(f"reply while {self.state.value}")
        found = _ia_na_address(message, self.iaid)
        if isinstance(found, str):
            self.last_refusal = f"reply: {found}"
            self._advance(Dhcp6Event.REPLY_REFUSED)
            delay = self._restart_after(now)
            return Noted(f"{self.last_refusal}; Solicit again in {delay:.1f}s")
        address, preferred, valid, t1, t2 = found
        warnings: list[str] = []
        dns = _dns_servers(message.option(Dhcp6Option.DNS_SERVERS) or b"", warnings)
        domains = _dns_names(message.option(Dhcp6Option.DOMAIN_LIST) or b"", warnings)
        self._advance(Dhcp6Event.REPLY_BOUND)
        self._next = float("inf")
        lease = Dhcp6Lease(address, preferred, valid, t1, t2, server_id, dns, domains, now, tuple(warnings))
        return LeaseBound(lease)

    def send_failed(self, payload: bytes) -> None:
        """The driver could not send `payload` (one this client returned): it does not count as sent."""
        kind = payload[0] if payload else None
        if kind in Dhcp6MessageType._value2member_map_ and self.sent[Dhcp6MessageType(kind)] > 0:
            self.sent[Dhcp6MessageType(kind)] -= 1

    def progress(self) -> str:
        """For a timeout's message: how far the exchange got, and every Solicit and Request sent, in all."""
        solicits, requests = self.sent[Dhcp6MessageType.SOLICIT], self.sent[Dhcp6MessageType.REQUEST]
        if self.state is Dhcp6State.REQUESTING:
            text = f"no Reply after {self._sent} Request(s) for {self._offered}"
        elif self.state is Dhcp6State.RESTARTING:
            text = "refused, waiting to solicit again"
        else:
            text = "no usable Advertise" if self.state is Dhcp6State.SELECTING else self.state.value
        text += f" after {solicits} Solicit(s) and {requests} Request(s) in all"
        if self.last_refusal:
            text += f"; last refusal: {self.last_refusal}"
        if self.ignored:
            text += f"; {self.ignored} message(s) ignored"
        return text

    # -- internals --

    def _expects(self, event: Dhcp6Event) -> bool:
        return (self.state, event) in DHCP6_TRANSITIONS

    def _advance(self, event: Dhcp6Event) -> None:
        """The one place the state changes: by the table's row, or DhcpTransitionError."""
        self.state = advance("DHCPv6", DHCP6_TRANSITIONS, self.state, event)

    def _ignore(self, reason: str) -> Ignored:
        self.ignored += 1
        return Ignored(reason)

    def _solicit(self, now: float) -> bytes:
        """A Solicit starting a new round of SELECTING (the caller has moved the state)."""
        self.xid = self._new_xid()
        self._server_id = self._offered = None
        self._begin(now, SOL_TIMEOUT, first_solicit=True)
        return self._encode_solicit(now)

    def _new_xid(self) -> int:
        xid = self.rng.getrandbits(24)
        return xid if xid != self.xid else (xid + 1) & 0xFFFFFF

    def _begin(self, now: float, initial: float, first_solicit: bool = False) -> None:
        self._started = now
        self._sent = 1
        # RFC 8415 section 15: RT = IRT + RAND*IRT, RAND in [-0.1, 0.1] (strictly positive for the first Solicit)
        rand = self.rng.uniform(0.0 if first_solicit else -0.1, 0.1)
        self._rt = initial + rand * initial
        self._next = now + self._rt

    def _restart_after(self, now: float) -> float:
        """RESTARTING: the next Solicit after RT = RESTART_TIMEOUT, then doubled per refusal up to SOL_MAX_RT, each
        with RAND in [-0.1, 0.1] (RFC 8415 section 15). Returns the delay."""
        if self._restart_rt == 0.0:
            rt = RESTART_TIMEOUT + self.rng.uniform(-0.1, 0.1) * RESTART_TIMEOUT
        else:
            rt = 2 * self._restart_rt + self.rng.uniform(-0.1, 0.1) * self._restart_rt
            if rt > SOL_MAX_RT:
                rt = SOL_MAX_RT + self.rng.uniform(-0.1, 0.1) * SOL_MAX_RT
        self._restart_rt = rt
        self._server_id = self._offered = None
        self._next = now + rt
        return rt

    def _backoff(self, now: float, max_rt: float) -> None:
        self._sent += 1
        rt = 2 * self._rt + self.rng.uniform(-0.1, 0.1) * self._rt
        if rt > max_rt:
            rt = max_rt + self.rng.uniform(-0.1, 0.1) * max_rt
        self._rt = rt
        self._next = now + rt

    def _elapsed(self, now: float) -> bytes:
        return min(0xFFFF, max(0, round((now - self._started) * 100))).to_bytes(2, "big")

    def _ia_na(self, address: ipaddress.IPv6Address | None) -> bytes:
        inner = b""
        if address is not None:
            inner = encode_options([(Dhcp6Option.IAADDR, address.packed + struct.pack("!II", 0, 0))])
        return struct.pack("!III", self.iaid, 0, 0) + inner

    def _common(self, now: float) -> list[tuple[int, bytes]]:
        return [
            (Dhcp6Option.CLIENTID, self.duid),
            (Dhcp6Option.ELAPSED_TIME, self._elapsed(now)),
            (Dhcp6Option.ORO, b"".join(struct.pack("!H", code) for code in REQUESTED)),
        ]

    def _encode_solicit(self, now: float) -> bytes:
        options = [*self._common(now), (Dhcp6Option.RAPID_COMMIT, b""), (Dhcp6Option.IA_NA, self._ia_na(None))]
        self.sent[Dhcp6MessageType.SOLICIT] += 1
        return encode_message(Dhcp6MessageType.SOLICIT, self.xid, options)

    def _encode_request(self, now: float) -> bytes:
        assert self._server_id is not None
        options = [
            *self._common(now),
            (Dhcp6Option.SERVERID, self._server_id),
            (Dhcp6Option.IA_NA, self._ia_na(self._offered)),
        ]
        self.sent[Dhcp6MessageType.REQUEST] += 1
        return encode_message(Dhcp6MessageType.REQUEST, self.xid, options)
