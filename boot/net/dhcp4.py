"""A sans-I/O DHCPv4 client (RFC 2131/2132): bytes and times in, bytes and a lease out. No socket here.

Theory of operation. `Dhcp4Client.start(now)` returns the first DISCOVER; the driver sends whatever the client
returns and feeds back every UDP payload that reaches port 68 (`receive`) and the passing of time
(`on_timeout` once `now >= next_timeout()`). States and the events that move them:

    INIT       --start-->            SELECTING   (send DISCOVER)
    SELECTING  --OFFER-->            REQUESTING  (send REQUEST naming the offer's server and address)
    SELECTING  --timeout-->          SELECTING   (re-send DISCOVER, same xid, longer wait)
    REQUESTING --ACK-->              BOUND       (the lease)
    REQUESTING --NAK-->              SELECTING   (new xid, send DISCOVER)
    REQUESTING --timeout x N-->      SELECTING   (no ACK after N REQUESTs: new xid, send DISCOVER)

Replies for another xid or another hardware address are ignored; a malformed packet raises DhcpPacketError
(naming the field and value) and leaves the state as it was, so one hostile host on the LAN cannot end a boot
that a real server answers. The whole wait belongs to the driver's Deadline: this object only says when the
next retransmission is due. The schedule is RFC 2131's doubling backoff with jitter, starting shorter (2s, not
4s) because a boot is waiting on it.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import struct
from dataclasses import dataclass, field

from boot.net.exchange import Event, Ignored, LeaseBound, PacketError, SendPacket

BOOTREQUEST = 1
BOOTREPLY = 2
HTYPE_ETHER = 1
MAGIC_COOKIE = b"\x63\x82\x53\x63"
FIXED_LEN = 236  # op .. file, before the magic cookie
MIN_REQUEST_LEN = 300  # BOOTP's minimum: some relays drop shorter packets
CLIENT_PORT = 68
SERVER_PORT = 67
MAX_MESSAGE_SIZE = 1472  # what we announce (option 57): a 1500-byte link minus IP and UDP headers
ZERO4 = ipaddress.IPv4Address(0)
BROADCAST4 = ipaddress.IPv4Address(0xFFFFFFFF)


class MessageType(enum.IntEnum):
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Option(enum.IntEnum):
    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    INTERFACE_MTU = 26
    BROADCAST = 28
    REQUESTED_IP = 50
    LEASE_TIME = 51
    OVERLOAD = 52
    MESSAGE_TYPE = 53
    SERVER_ID = 54
    PARAMETER_LIST = 55
    MESSAGE = 56
    MAX_MESSAGE_SIZE = 57
    RENEWAL_TIME = 58
    REBINDING_TIME = 59
    CLIENT_ID = 61
    END = 255


REQUESTED = (
    Option.SUBNET_MASK,
    Option.ROUTER,
    Option.DNS,
    Option.HOSTNAME,
    Option.DOMAIN_NAME,
    Option.INTERFACE_MTU,
    Option.BROADCAST,
    Option.LEASE_TIME,
    Option.SERVER_ID,
    Option.RENEWAL_TIME,
    Option.REBINDING_TIME,
)


class DhcpPacketError(PacketError):
    """A DHCP packet we cannot accept. Names the field and the offending value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__("DHCP", field, value, reason)


class State(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    BOUND = "bound"


# ---------------------------------------------------------------------------------------------------------------
# Wire format: messages and options


@dataclass(frozen=True)
class Message:
    """A decoded DHCP message: the fixed fields we use and the options, concatenated per RFC 3396."""

    op: int
    xid: int
    secs: int
    flags: int
    ciaddr: ipaddress.IPv4Address
    yiaddr: ipaddress.IPv4Address
    siaddr: ipaddress.IPv4Address
    chaddr: bytes  # the hardware address, hlen bytes
    options: dict[int, bytes] = field(default_factory=dict)

    @property
    def message_type(self) -> MessageType | None:
        raw = self.options.get(Option.MESSAGE_TYPE)
        if raw is None:
            return None
        if len(raw) != 1 or raw[0] not in MessageType._value2member_map_:
            raise DhcpPacketError("option 53 (message type)", raw.hex(), "not a DHCP message type")
        return MessageType(raw[0])


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    """Options, splitting values over 255 bytes into several instances (RFC 3396), then END."""
    out = bytearray()
    for code, value in options:
        if not 0 < code < 255:
            raise ValueError(f"DHCP option code {code} cannot carry a value")
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [b""]
        for chunk in chunks:
            out += bytes((code, len(chunk))) + chunk
    out.append(Option.END)
    return bytes(out)


def decode_options(data: bytes, where: str = "options") -> dict[int, bytes]:
    """Options up to END (or the end of `data`); repeated codes are concatenated (RFC 3396). Bounds-checked."""
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == Option.PAD:
            i += 1
            continue
        if code == Option.END:
            break
        if i + 1 >= len(data):
            raise DhcpPacketError(f"{where}: option {code}", None, "length byte missing at the end of the packet")
        length = data[i + 1]
        if i + 2 + length > len(data):
            raise DhcpPacketError(
                f"{where}: option {code}", length, f"length runs past the end ({len(data) - i - 2} bytes left)"
            )
        options[code] = options.get(code, b"") + data[i + 2 : i + 2 + length]
        i += 2 + length
    return options


def encode_message(
    *,
    op: int,
    xid: int,
    chaddr: bytes,
    options: list[tuple[int, bytes]],
    secs: int = 0,
    flags: int = 0,
    ciaddr: ipaddress.IPv4Address = ZERO4,
    yiaddr: ipaddress.IPv4Address = ZERO4,
    siaddr: ipaddress.IPv4Address = ZERO4,
) -> bytes:
    if len(chaddr) > 16:
        raise ValueError("chaddr longer than 16 bytes")
    head = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        op,
        HTYPE_ETHER,
        len(chaddr),
        0,
        xid,
        min(secs, 0xFFFF),
        flags,
        ciaddr.packed,
        yiaddr.packed,
        siaddr.packed,
        ZERO4.packed,
        chaddr,
        b"",
        b"",
    )
    packet = head + MAGIC_COOKIE + encode_options(options)
    return packet.ljust(MIN_REQUEST_LEN, b"\0")


def decode_message(data: bytes) -> Message:
    """Parse a DHCP message; anything malformed raises DhcpPacketError naming the field."""
    if len(data) < FIXED_LEN + len(MAGIC_COOKIE):
        raise DhcpPacketError("message length", len(data), f"shorter than {FIXED_LEN + len(MAGIC_COOKIE)} bytes")
    op, _htype, hlen, _hops, xid, secs, flags = struct.unpack_from("!BBBBIHH", data, 0)
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise DhcpPacketError("op", op, "neither BOOTREQUEST nor BOOTREPLY")
    if hlen > 16:
        raise DhcpPacketError("hlen", hlen, "hardware address longer than 16 bytes")
    ciaddr, yiaddr, siaddr = (ipaddress.IPv4Address(data[o : o + 4]) for o in (12, 16, 20))
    chaddr = data[28 : 28 + hlen]
    cookie = data[FIXED_LEN : FIXED_LEN + 4]
    if cookie != MAGIC_COOKIE:
        raise DhcpPacketError("magic cookie", cookie.hex(), "not 63825363")
    options = decode_options(data[FIXED_LEN + 4 :])
    overload = options.get(Option.OVERLOAD)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise DhcpPacketError("option 52 (overload)", overload.hex(), "not 1, 2 or 3")
        # RFC 2131: options continue in `file` (1), then `sname` (2).
        for bit, start, size, name in ((1, 108, 128, "file"), (2, 44, 64, "sname")):
            if overload[0] & bit:
                for code, value in decode_options(data[start : start + size], name).items():
                    options[code] = options.get(code, b"") + value
    return Message(op, xid, secs, flags, ciaddr, yiaddr, siaddr, chaddr, options)


# ---------------------------------------------------------------------------------------------------------------
# Option values: each decoder checks the length and the range


def _address(code: int, name: str, raw: bytes) -> ipaddress.IPv4Address:
    if len(raw) != 4:
        raise DhcpPacketError(f"option {code} ({name})", raw.hex(), "not 4 bytes")
    return ipaddress.IPv4Address(raw)


def _addresses(code: int, name: str, raw: bytes) -> tuple[ipaddress.IPv4Address, ...]:
    if not raw or len(raw) % 4:
        raise DhcpPacketError(f"option {code} ({name})", raw.hex(), "not a non-empty multiple of 4 bytes")
    return tuple(ipaddress.IPv4Address(raw[i : i + 4]) for i in range(0, len(raw), 4))


def _u32(code: int, name: str, raw: bytes) -> int:
    if len(raw) != 4:
        raise DhcpPacketError(f"option {code} ({name})", raw.hex(), "not 4 bytes")
    return int.from_bytes(raw, "big")


def _text(code: int, name: str, raw: bytes) -> str:
    text = raw.rstrip(b"\0")
    if not text or any(b < 0x21 or b > 0x7E for b in text):
        raise DhcpPacketError(f"option {code} ({name})", raw[:64], "not printable ASCII without spaces")
    return text.decode("ascii")


def _prefix(raw: bytes) -> int:
    mask = int.from_bytes(_address(Option.SUBNET_MASK, "subnet mask", raw).packed, "big")
    prefix = 32 - (~mask & 0xFFFFFFFF).bit_length()
    if mask != (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF or prefix == 0:
        raise DhcpPacketError("option 1 (subnet mask)", str(ipaddress.IPv4Address(raw)), "not a contiguous netmask")
    return prefix


def _classful_prefix(address: ipaddress.IPv4Address) -> int:
    first = address.packed[0]
    return 8 if first < 128 else 16 if first < 192 else 24


INFINITE = 0xFFFFFFFF


@dataclass(frozen=True)
class Lease:
    """What an ACK gave us, checked. Times are seconds; lease_time None means infinite."""

    address: ipaddress.IPv4Interface
    server: ipaddress.IPv4Address
    routers: tuple[ipaddress.IPv4Address, ...] = ()
    dns: tuple[ipaddress.IPv4Address, ...] = ()
    hostname: str | None = None
    domain: str | None = None
    mtu: int | None = None
    broadcast: ipaddress.IPv4Address | None = None
    lease_time: int | None = None
    renewal_time: int | None = None
    rebinding_time: int | None = None
    obtained_at: float = 0.0  # the driver's wall clock at the ACK

    @classmethod
    def from_ack(cls, message: Message, obtained_at: float = 0.0) -> Lease:
        o = message.options
        yiaddr = message.yiaddr
        if yiaddr.is_unspecified or yiaddr.is_multicast or yiaddr.is_loopback or yiaddr == BROADCAST4:
            raise DhcpPacketError("yiaddr", str(yiaddr), "not a usable host address")
        prefix = _prefix(o[Option.SUBNET_MASK]) if Option.SUBNET_MASK in o else _classful_prefix(yiaddr)
        if Option.SERVER_ID not in o:
            raise DhcpPacketError("option 54 (server identifier)", None, "missing from the ACK")
        mtu = None
        if Option.INTERFACE_MTU in o:
            raw = o[Option.INTERFACE_MTU]
            if len(raw) != 2 or not 68 <= int.from_bytes(raw, "big") <= 65535:
                raise DhcpPacketError("option 26 (interface MTU)", raw.hex(), "not a 2-byte MTU of at least 68")
            mtu = int.from_bytes(raw, "big")
        times = {}
        for code, name in (
            (Option.LEASE_TIME, "lease time"),
            (Option.RENEWAL_TIME, "renewal time"),
            (Option.REBINDING_TIME, "rebinding time"),
        ):
            value = _u32(code, name, o[code]) if code in o else None
            times[code] = None if value == INFINITE else value
        return cls(
            address=ipaddress.IPv4Interface((yiaddr, prefix)),
            server=_address(Option.SERVER_ID, "server identifier", o[Option.SERVER_ID]),
            routers=_addresses(Option.ROUTER, "router", o[Option.ROUTER]) if Option.ROUTER in o else (),
            dns=_addresses(Option.DNS, "domain name server", o[Option.DNS]) if Option.DNS in o else (),
            hostname=_text(Option.HOSTNAME, "host name", o[Option.HOSTNAME]) if Option.HOSTNAME in o else None,
            domain=_text(Option.DOMAIN_NAME, "domain name", o[Option.DOMAIN_NAME]) if Option.DOMAIN_NAME in o else None,
            mtu=mtu,
            broadcast=_address(Option.BROADCAST, "broadcast", o[Option.BROADCAST]) if Option.BROADCAST in o else None,
            lease_time=times[Option.LEASE_TIME],
            renewal_time=times[Option.RENEWAL_TIME],
            rebinding_time=times[Option.REBINDING_TIME],
            obtained_at=obtained_at,
        )


# ---------------------------------------------------------------------------------------------------------------
# The client state machine


BACKOFF = (2.0, 4.0, 8.0, 16.0)  # seconds before each retransmission; the last repeats
JITTER = 0.5  # +/- seconds (RFC 2131 says +/-1 around 4, 8, 16...; shorter steps, smaller jitter)
REQUESTS_BEFORE_RESTART = 3


class Dhcp4Client:
    """DISCOVER/OFFER/REQUEST/ACK for one interface, until BOUND. Time is the caller's monotonic seconds."""

    def __init__(
        self,
        mac: bytes,
        *,
        hostname: str | None = None,
        rng: random.Random | None = None,
        backoff: tuple[float, ...] = BACKOFF,
        jitter: float = JITTER,
    ) -> None:
        if len(mac) != 6:
            raise ValueError(f"mac: want 6 bytes, got {len(mac)}")
        self.mac = mac
        self.hostname = hostname
        self._rng = rng or random.Random()
        self._backoff = backoff
        self._jitter = jitter
        self.state = State.INIT
        self.xid = self._rng.getrandbits(32)
        self._started = 0.0
        self._attempt = 0
        self._next = float("inf")
        self._offer: Message | None = None
        self.discovers_sent = 0
        self.requests_sent = 0
        self.requests_sent_this_offer = 0
        self.last_ignored: str | None = None

    # ----- inputs

    def start(self, now: float) -> bytes:
        if self.state is not State.INIT:
            raise RuntimeError(f"start() in state {self.state.value}")
        self._started = now
        return self._discover(now)

    def next_timeout(self) -> float:
        """When `on_timeout` wants to be called next (monotonic seconds); inf when BOUND."""
        return self._next

    def on_timeout(self, now: float) -> bytes | None:
        """Retransmit if due: the DISCOVER again, the REQUEST again, or a fresh DISCOVER after too many REQUESTs."""
        if now < self._next or self.state in (State.INIT, State.BOUND):
            return None
        if self.state is State.SELECTING:
            return self._send_discover(now)
        if self.requests_sent_this_offer >= REQUESTS_BEFORE_RESTART:
            return self._discover(now, new_xid=True)
        return self._send_request(now)

    def receive(self, payload: bytes, now: float, wall: float = 0.0) -> Event:
        """One UDP payload from port 67. Raises DhcpPacketError if it is malformed."""
        message = decode_message(payload)
        if message.op != BOOTREPLY:
            return self._ignore("a BOOTREQUEST (another client)")
        if message.xid != self.xid:
            return self._ignore(f"xid {message.xid:#010x} is not ours")
        if message.chaddr[:6] != self.mac:
            return self._ignore(f"chaddr {message.chaddr.hex(':')} is not ours")
        kind = message.message_type
        if kind is None:
            return self._ignore("a BOOTP reply without a DHCP message type")
        if self.state is State.SELECTING and kind is MessageType.OFFER:
            if Option.SERVER_ID not in message.options:
                raise DhcpPacketError("option 54 (server identifier)", None, "missing from the OFFER")
            _address(Option.SERVER_ID, "server identifier", message.options[Option.SERVER_ID])
            Lease.from_ack(message)  # the same checks as an ACK: do not request what we could not use
            self._offer = message
            self.state = State.REQUESTING
            self._attempt = 0
            self.requests_sent_this_offer = 0
            return SendPacket(self._send_request(now))
        if self.state is State.REQUESTING and kind is MessageType.ACK:
            if message.options.get(Option.SERVER_ID) != self._offer_server():
                return self._ignore("an ACK from a server we did not choose")
            lease = Lease.from_ack(message, obtained_at=wall)
            self.state = State.BOUND
            self._next = float("inf")
            return LeaseBound(lease)
        if self.state is State.REQUESTING and kind is MessageType.NAK:
            if message.options.get(Option.SERVER_ID) != self._offer_server():
                return self._ignore("a NAK from a server we did not choose")
            reason = message.options.get(Option.MESSAGE, b"").decode("ascii", "replace")[:100]
            self.last_ignored = f"NAK from the server{': ' + reason if reason else ''}"
            return SendPacket(self._discover(now, new_xid=True))
        return self._ignore(f"a {kind.name} while {self.state.value}")

    # ----- internals

    def _ignore(self, reason: str) -> Ignored:
        self.last_ignored = reason
        return Ignored(reason)

    def _offer_server(self) -> bytes | None:
        return None if self._offer is None else self._offer.options.get(Option.SERVER_ID)

    def _schedule(self, now: float) -> None:
        step = self._backoff[min(self._attempt, len(self._backoff) - 1)]
        self._next = now + max(0.1, step + self._rng.uniform(-self._jitter, self._jitter))
        self._attempt += 1

    def _secs(self, now: float) -> int:
        return max(0, int(now - self._started))

    def _common_options(self) -> list[tuple[int, bytes]]:
        options: list[tuple[int, bytes]] = [
            (Option.CLIENT_ID, bytes((HTYPE_ETHER,)) + self.mac),
            (Option.MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE.to_bytes(2, "big")),
            (Option.PARAMETER_LIST, bytes(REQUESTED)),
        ]
        if self.hostname:
            options.append((Option.HOSTNAME, self.hostname.encode("ascii", "replace")[:255]))
        return options

    def _discover(self, now: float, new_xid: bool = False) -> bytes:
        if new_xid:
            self.xid = self._rng.getrandbits(32)
        self.state = State.SELECTING
        self._offer = None
        self._attempt = 0
        return self._send_discover(now)

    def _send_discover(self, now: float) -> bytes:
        self._schedule(now)
        self.discovers_sent += 1
        options = [(Option.MESSAGE_TYPE, bytes((MessageType.DISCOVER,))), *self._common_options()]
        return encode_message(op=BOOTREQUEST, xid=self.xid, chaddr=self.mac, options=options, secs=self._secs(now))

    def _send_request(self, now: float) -> bytes:
        assert self._offer is not None
        self._schedule(now)
        self.requests_sent += 1
        self.requests_sent_this_offer += 1
        options = [
            (Option.MESSAGE_TYPE, bytes((MessageType.REQUEST,))),
            (Option.REQUESTED_IP, self._offer.yiaddr.packed),
            (Option.SERVER_ID, self._offer.options[Option.SERVER_ID]),
            *self._common_options(),
        ]
        return encode_message(op=BOOTREQUEST, xid=self.xid, chaddr=self.mac, options=options, secs=self._secs(now))

    def progress(self) -> str:
        """A short account for a timeout message: what was sent and what came back."""
        text = f"{self.state.value}, {self.discovers_sent} DISCOVER and {self.requests_sent} REQUEST sent"
        if self.state is State.SELECTING and self._offer is None and self.requests_sent == 0:
            text += ", no offer from any server"
        if self.last_ignored:
            text += f"; last: {self.last_ignored}"
        return text


# ---------------------------------------------------------------------------------------------------------------
# IPv4/UDP framing for a packet socket (no IP address is configured yet, so the kernel's UDP cannot be used)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame_udp(
    payload: bytes,
    src: ipaddress.IPv4Address = ZERO4,
    dst: ipaddress.IPv4Address = BROADCAST4,
    sport: int = CLIENT_PORT,
    dport: int = SERVER_PORT,
) -> bytes:
    """An IPv4 header + UDP header + payload, checksums filled in."""
    udp_len = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp_sum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + udp_len, 0, 0, 64, 17, 0, src.packed, dst.packed)
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return header + udp


def unframe_udp(packet: bytes, dport: int = CLIENT_PORT) -> bytes | None:
    """The UDP payload of an IPv4 packet to `dport`, or None if it is something else. Malformed: DhcpPacketError.

    The UDP checksum is not checked: on veth and with checksum offload, a packet socket sees packets whose
    checksum the sender left for hardware that never ran. The IP header checksum is always computed in software.
    """
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    if ihl < 20 or total < ihl + 8 or len(packet) < total:
        raise DhcpPacketError("IPv4 header", packet[:4].hex(), f"bad lengths (ihl {ihl}, total {total})")
    if packet[9] != 17:
        return None
    if int.from_bytes(packet[6:8], "big") & 0x3FFF:
        return None  # a fragment: DHCP replies are never fragmented in practice
    if _checksum(packet[:ihl]) != 0:
        raise DhcpPacketError("IPv4 header checksum", packet[10:12].hex(), "does not match")
    sport, port, length = struct.unpack_from("!HHH", packet, ihl)
    if port != dport:
        return None
    if length < 8 or ihl + length > total:
        raise DhcpPacketError("UDP length", length, f"outside the IPv4 packet ({total - ihl} bytes)")
    if sport != SERVER_PORT:
        return None
    return packet[ihl + 8 : ihl + length]
