"""A sans-I/O stateful DHCPv6 client (RFC 8415, one IA_NA): bytes and times in, bytes and a lease out.

Theory of operation. `Dhcp6Client.start(now)` returns the first SOLICIT; the driver multicasts whatever the
client returns to ff02::1:2 port 547 and feeds back every UDP payload that reaches port 546 (`receive`) and the
passing of time (`on_timeout` once `now >= next_timeout()`). States and the events that move them:

    INIT       --start-->              SELECTING   (send SOLICIT, with Rapid Commit)
    SELECTING  --ADVERTISE-->          REQUESTING  (send REQUEST naming the server and its address)
    SELECTING  --REPLY+RapidCommit-->  BOUND
    SELECTING  --timeout-->            SELECTING   (re-send SOLICIT, same transaction, longer wait)
    REQUESTING --REPLY with address--> BOUND
    REQUESTING --REPLY refusing-->     SELECTING   (NoAddrsAvail/NotOnLink: new transaction, SOLICIT)
    REQUESTING --timeout x 10-->       SELECTING   (REQ_MAX_RC: new transaction, SOLICIT)

Two deliberate departures from the RFC, both because a boot is waiting: the first SOLICIT goes out at once (no
SOL_MAX_DELAY), and the first usable ADVERTISE is taken instead of collecting them for a whole first
retransmission time. Messages for another transaction or another client are ignored; a malformed one raises
Dhcp6PacketError (naming the field and value) and leaves the state as it was. The whole wait belongs to the
driver's Deadline: this object only says when the next retransmission is due.

DHCPv6 gives addresses, not prefixes or routes: the address is applied as a /128, and the on-link prefix and
the default route come from router advertisements (RFC 8415 section 18.2.10.1; the M flag in RAs).
"""

from __future__ import annotations

import enum
import ipaddress
import random
import struct
from dataclasses import dataclass

from boot.net.exchange import Event, Ignored, LeaseBound, PacketError, SendPacket

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


class MessageType(enum.IntEnum):
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


class Option(enum.IntEnum):
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


class Status(enum.IntEnum):
    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5
    NO_PREFIX_AVAIL = 6


REQUESTED = (Option.DNS_SERVERS, Option.DOMAIN_LIST)


class Dhcp6PacketError(PacketError):
    """A DHCPv6 message we cannot accept. Names the field and the offending value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__("DHCPv6", field, value, reason)


class State(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    BOUND = "bound"


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


@dataclass(frozen=True)
class Message:
    type: int
    xid: int
    options: tuple[tuple[int, bytes], ...]

    def option(self, code: int) -> bytes | None:
        return _first(list(self.options), code)


def encode_message(type_: MessageType, xid: int, options: list[tuple[int, bytes]]) -> bytes:
    return bytes((int(type_),)) + xid.to_bytes(3, "big") + encode_options(options)


def decode_message(data: bytes) -> Message:
    if len(data) < 4:
        raise Dhcp6PacketError("message", len(data), "shorter than the 4-byte header")
    if len(data) > MAX_MESSAGE:
        raise Dhcp6PacketError("message", len(data), "longer than a UDP datagram")
    return Message(data[0], int.from_bytes(data[1:4], "big"), tuple(decode_options(data[4:])))


def duid_ll(mac: bytes) -> bytes:
    """DUID-LL (type 3): stable for the NIC, needs no clock or storage (an initramfs has neither)."""
    return struct.pack("!HH", DUID_LL, HWTYPE_ETHER) + mac


def _status(raw: bytes | None, where: str) -> tuple[int, str]:
    if raw is None:
        return Status.SUCCESS, ""
    if len(raw) < 2:
        raise Dhcp6PacketError(f"{where} status code", raw.hex(), "shorter than 2 bytes")
    return int.from_bytes(raw[:2], "big"), raw[2:].decode("utf-8", "replace")


def _status_text(code: int, message: str) -> str:
    try:
        name = Status(code).name
    except ValueError:
        name = f"status {code}"
    return f"{name}{': ' + message if message else ''}"


def _dns_names(raw: bytes) -> tuple[str, ...]:
    """RFC 1035 names, uncompressed (RFC 8415 section 10); stops at the first malformed label."""
    names: list[str] = []
    labels: list[str] = []
    i = 0
    while i < len(raw):
        length = raw[i]
        i += 1
        if length == 0:
            if labels:
                names.append(".".join(labels))
            labels = []
            continue
        if length > 63 or i + length > len(raw):
            raise Dhcp6PacketError("domain list", raw.hex(), "label runs past the option")
        labels.append(raw[i : i + length].decode("ascii", "replace"))
        i += length
    return tuple(names)


@dataclass(frozen=True)
class Lease:
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


def _ia_na_address(message: Message, iaid: int) -> tuple[ipaddress.IPv6Address, int, int, int, int] | str:
    """The first usable address of our IA_NA, or why there is none (a status the server gave)."""
    code, text = _status(message.option(Option.STATUS_CODE), "message")
    if code != Status.SUCCESS:
        return _status_text(code, text)
    for c, data in message.options:
        if c != Option.IA_NA:
            continue
        if len(data) < 12:
            raise Dhcp6PacketError("IA_NA", data.hex(), "shorter than 12 bytes")
        got_iaid, t1, t2 = struct.unpack_from("!III", data)
        if got_iaid != iaid:
            continue
        inner = decode_options(data[12:], "IA_NA options")
        code, text = _status(_first(inner, Option.STATUS_CODE), "IA_NA")
        if code != Status.SUCCESS:
            return _status_text(code, text)
        for ic, idata in inner:
            if ic != Option.IAADDR:
                continue
            if len(idata) < 24:
                raise Dhcp6PacketError("IAADDR", idata.hex(), "shorter than 24 bytes")
            address = ipaddress.IPv6Address(idata[:16])
            preferred, valid = struct.unpack_from("!II", idata, 16)
            code, text = _status(_first(decode_options(idata[24:], "IAADDR options"), Option.STATUS_CODE), "IAADDR")
            if code != Status.SUCCESS or valid == 0 or preferred > valid:
                continue
            if address.is_multicast or address.is_unspecified or address.is_loopback or address.is_link_local:
                raise Dhcp6PacketError("IAADDR", str(address), "not a unicast address we can use")
            return address, preferred, valid, t1, t2
        return "the IA_NA holds no usable address"
    return "no IA_NA for us in the message"


class Dhcp6Client:
    """One IA_NA on one interface. `rng` is injectable so tests see a fixed schedule and transaction ids."""

    def __init__(self, mac: bytes, *, iaid: int | None = None, rng: random.Random | None = None) -> None:
        if len(mac) != 6:
            raise ValueError(f"mac must be 6 bytes, got {len(mac)}")
        self.duid = duid_ll(mac)
        self.iaid = int.from_bytes(mac[2:], "big") if iaid is None else iaid
        self.rng = rng or random.Random()
        self.state = State.INIT
        self.xid = 0
        self._started = 0.0  # of the current exchange, for Elapsed Time
        self._rt = 0.0
        self._next = float("inf")
        self._sent = 0
        self._server_id: bytes | None = None
        self._offered: ipaddress.IPv6Address | None = None
        self.last_refusal: str | None = None
        self.ignored = 0

    # -- the driver's interface --

    def start(self, now: float) -> bytes:
        return self._solicit(now)

    def next_timeout(self) -> float:
        return self._next

    def on_timeout(self, now: float) -> bytes | None:
        if now < self._next:
            return None
        if self.state is State.SELECTING:
            self._backoff(now, SOL_MAX_RT)
            return self._encode_solicit(now)
        if self.state is State.REQUESTING:
            if self._sent >= REQ_MAX_RC:
                self.last_refusal = f"no Reply to {REQ_MAX_RC} Requests"
                return self._solicit(now)
            self._backoff(now, REQ_MAX_RT)
            return self._encode_request(now)
        return None

    def receive(self, payload: bytes, now: float) -> Event:
        message = decode_message(payload)
        if message.xid != self.xid:
            return self._ignore("another transaction")
        if message.option(Option.CLIENTID) != self.duid:
            return self._ignore("another client")
        server_id = message.option(Option.SERVERID)
        if not server_id:
            return self._ignore("no server identifier")
        if self.state is State.SELECTING and message.type == MessageType.ADVERTISE:
            found = _ia_na_address(message, self.iaid)
            if isinstance(found, str):
                self.last_refusal = f"advertise: {found}"
                return self._ignore(found)
            self._server_id, self._offered = server_id, found[0]
            self.state = State.REQUESTING
            self.xid = self._new_xid()  # every exchange has its own transaction (RFC 8415 section 8)
            self._begin(now, REQ_TIMEOUT)
            return SendPacket(self._encode_request(now))
        if message.type != MessageType.REPLY:
            return self._ignore(f"message type {message.type} while {self.state.value}")
        if self.state is State.SELECTING and message.option(Option.RAPID_COMMIT) is None:
            return self._ignore("reply without rapid commit while selecting")
        if self.state is State.REQUESTING and server_id != self._server_id:
            return self._ignore("reply from another server")
        if self.state not in (State.SELECTING, State.REQUESTING):
            return self._ignore(f"reply while {self.state.value}")
        found = _ia_na_address(message, self.iaid)
        if isinstance(found, str):
            self.last_refusal = f"reply: {found}"
            return SendPacket(self._solicit(now))
        address, preferred, valid, t1, t2 = found
        dns_raw = message.option(Option.DNS_SERVERS) or b""
        if len(dns_raw) % 16:
            raise Dhcp6PacketError("DNS servers", len(dns_raw), "length not a multiple of 16")
        dns = tuple(ipaddress.IPv6Address(dns_raw[i : i + 16]) for i in range(0, len(dns_raw), 16))
        domains = _dns_names(message.option(Option.DOMAIN_LIST) or b"")
        self.state = State.BOUND
        self._next = float("inf")
        return LeaseBound(Lease(address, preferred, valid, t1, t2, server_id, dns, domains, obtained_at=now))

    def progress(self) -> str:
        """For a timeout's message: how far the exchange got."""
        if self.state is State.SELECTING:
            text = f"no usable Advertise after {self._sent} Solicit(s)"
        elif self.state is State.REQUESTING:
            text = f"no Reply after {self._sent} Request(s) for {self._offered}"
        else:
            text = self.state.value
        if self.last_refusal:
            text += f"; last refusal: {self.last_refusal}"
        if self.ignored:
            text += f"; {self.ignored} message(s) ignored"
        return text

    # -- internals --

    def _ignore(self, reason: str) -> Ignored:
        self.ignored += 1
        return Ignored(reason)

    def _solicit(self, now: float) -> bytes:
        self.state = State.SELECTING
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
            inner = encode_options([(Option.IAADDR, address.packed + struct.pack("!II", 0, 0))])
        return struct.pack("!III", self.iaid, 0, 0) + inner

    def _common(self, now: float) -> list[tuple[int, bytes]]:
        return [
            (Option.CLIENTID, self.duid),
            (Option.ELAPSED_TIME, self._elapsed(now)),
            (Option.ORO, b"".join(struct.pack("!H", code) for code in REQUESTED)),
        ]

    def _encode_solicit(self, now: float) -> bytes:
        options = [*self._common(now), (Option.RAPID_COMMIT, b""), (Option.IA_NA, self._ia_na(None))]
        return encode_message(MessageType.SOLICIT, self.xid, options)

    def _encode_request(self, now: float) -> bytes:
        assert self._server_id is not None
        options = [*self._common(now), (Option.SERVERID, self._server_id), (Option.IA_NA, self._ia_na(self._offered))]
        return encode_message(MessageType.REQUEST, self.xid, options)
