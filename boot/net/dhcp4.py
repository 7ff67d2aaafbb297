"""A sans-I/O DHCPv4 client (RFC 2131/2132): bytes and times in, bytes and a lease out. No socket here.

Theory of operation. `Dhcp4Client.start(now)` returns the first DISCOVER; the driver sends whatever the client
returns and feeds back every UDP payload that reaches port 68 (`receive`) and the passing of time
(`on_timeout` once `now >= next_timeout()`). Every state change is a row of `DHCP4_TRANSITIONS` below,
(state, event) -> state, and goes through it; the comment above the table sets it against RFC 2131.

Replies for another xid or another hardware address are ignored; a malformed packet, or one whose lease we could
not use (the address is the server's own, the subnet's broadcast, class E...), raises DhcpPacketError (naming the
field and value) and leaves the state as it was, so one hostile host on the LAN cannot end a boot that a real
server answers. A single bad option (a multicast router, a name server of 0.0.0.0, an MTU the link cannot take,
a domain that is no domain) is dropped and named in the lease's `warnings`; anything from the network that goes
into a message is escaped (initiator.printable). The whole wait belongs to the driver's Deadline: this object
only says when the next transmission is due. The schedule is RFC 2131's doubling backoff with jitter (section
4.1), starting shorter (2s, not 4s) because a boot is waiting on it; the same schedule spaces the restarts after
a NAK or a DECLINE, so a server that refuses everything gets a handful of messages, not thousands.

Before a lease is used the driver checks that no other host has its address (ARP probe, RFC 5227): the client
asks for that with a CheckAddress event and is told the answer by `address_checked`.
"""

from __future__ import annotations

import enum
import ipaddress
import random
import struct
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType

from boot.net.exchange import CheckAddress, Event, Ignored, LeaseBound, Noted, PacketError, SendPacket, advance
from boot.net.names import checked_name, name_problem
from boot.net.state import shown_root_path
from initiator.printable import printable
from initiator.record import field, record

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

# ---------------------------------------------------------------------------------------------------------------
# The client's states and the table that moves between them


class Dhcp4State(enum.Enum):
    INIT = "init"
    SELECTING = "selecting"
    REQUESTING = "requesting"
    CHECKING = "checking"  # ACKed: the driver probes (ARP) that no other host has the address
    RESTARTING = "restarting"  # NAKed, or the address was in use (DECLINE sent): waiting out a backoff
    BOUND = "bound"


class Dhcp4Event(enum.Enum):
    START = "start() called"
    OFFER = "a usable OFFER"
    ACK = "a usable ACK from the chosen server"
    NAK = "a NAK from the chosen server"
    RETRANSMIT = "the retransmission time came"
    NEXT_OFFER = "the retransmission time came, the REQUESTs for this offer unanswered, another offer kept"
    REQUESTS_EXHAUSTED = "the retransmission time came, the REQUESTs for this offer unanswered, no offer kept"
    ADDRESS_FREE = "the driver's ARP probe found no other host with the address"
    ADDRESS_IN_USE = "the driver's ARP probe found another host with the address"
    BACKOFF_OVER = "the backoff after a NAK or a DECLINE ran out"


S, E = Dhcp4State, Dhcp4Event

# The client's whole life, one row per (state, event) -> state, and what it sends on the way. This is RFC 2131's
# client diagram (section 4.4, figure 5) cut down to what a boot needs:
# - INIT is left at once for SELECTING. Where the RFC goes back to INIT after a refusal (a NAK; a DECLINE for an
#   address another host answers for, section 3.1 step 5) the client waits in RESTARTING first, for the next
#   step of the retransmission backoff (section 4.1; 3.1 asks for at least 10 s after a DECLINE, scaled down
#   with the rest of our schedule), then goes to SELECTING with a new xid.
# - the first usable OFFER is REQUESTed at once; offers that come later (from other servers) are kept, and when
#   the REQUESTs for the chosen one go unanswered the next kept one is REQUESTed (RFC 2131 3.1 step 3 lets the
#   client choose among offers); with none kept, a new DISCOVER (section 4.4.1).
# - an ACK is not used before the driver checked the address (CHECKING; section 4.4.1 "SHOULD probe").
# - BOUND is the end: no RENEWING, REBINDING or INIT-REBOOT here.
# Retransmissions (section 4.1) are the rows that stay in their state. A reply with no row in the current state
# is ignored, as figure 5 discards it (an ACK while SELECTING, anything while BOUND); anything else with no row
# is a call out of turn (start() twice) and raises DhcpTransitionError naming the state and the event.
DHCP4_TRANSITIONS: Mapping[tuple[Dhcp4State, Dhcp4Event], Dhcp4State] = MappingProxyType(
    {
        (S.INIT, E.START): S.SELECTING,  # send DISCOVER
        (S.SELECTING, E.RETRANSMIT): S.SELECTING,  # DISCOVER again: same xid, longer wait
        (S.SELECTING, E.OFFER): S.REQUESTING,  # send REQUEST naming the offer's server and address
        (S.REQUESTING, E.OFFER): S.REQUESTING,  # another server's offer: kept for later, nothing sent
        (S.REQUESTING, E.RETRANSMIT): S.REQUESTING,  # REQUEST again
        (S.REQUESTING, E.NEXT_OFFER): S.REQUESTING,  # REQUEST the next kept offer (same xid: it answered it)
        (S.REQUESTING, E.REQUESTS_EXHAUSTED): S.SELECTING,  # no ACK or NAK, no offer kept: new xid, DISCOVER
        (S.REQUESTING, E.NAK): S.RESTARTING,  # nothing sent: DISCOVER after the backoff
        (S.REQUESTING, E.ACK): S.CHECKING,  # ask the driver to probe the address
        (S.CHECKING, E.ADDRESS_FREE): S.BOUND,  # the lease
        (S.CHECKING, E.ADDRESS_IN_USE): S.RESTARTING,  # send DECLINE; DISCOVER after the backoff
        (S.RESTARTING, E.BACKOFF_OVER): S.SELECTING,  # new xid, send DISCOVER
    }
)


class Dhcp4MessageType(enum.IntEnum):
    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class Dhcp4Option(enum.IntEnum):
    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DNS = 6
    HOSTNAME = 12
    DOMAIN_NAME = 15
    ROOT_PATH = 17
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
    Dhcp4Option.SUBNET_MASK,
    Dhcp4Option.ROUTER,
    Dhcp4Option.DNS,
    Dhcp4Option.HOSTNAME,
    Dhcp4Option.DOMAIN_NAME,
    Dhcp4Option.ROOT_PATH,  # netroot=dhcp / root=dhcp: the root's iscsi: spec (asked always; used only then)
    Dhcp4Option.INTERFACE_MTU,
    Dhcp4Option.BROADCAST,
    Dhcp4Option.LEASE_TIME,
    Dhcp4Option.SERVER_ID,
    Dhcp4Option.RENEWAL_TIME,
    Dhcp4Option.REBINDING_TIME,
)


class DhcpPacketError(PacketError):
    """A DHCP packet we cannot accept. Names the field and the offending value."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        super().__init__("DHCP", field, value, reason)


# ---------------------------------------------------------------------------------------------------------------
# Wire format: messages and options


@record
class Dhcp4Message:
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
    def message_type(self) -> Dhcp4MessageType | None:
        raw = self.options.get(Dhcp4Option.MESSAGE_TYPE)
        if raw is None:
            return None
        if len(raw) != 1 or raw[0] not in Dhcp4MessageType._value2member_map_:
            raise DhcpPacketError("option 53 (message type)", raw.hex(), "not a DHCP message type")
        return Dhcp4MessageType(raw[0])


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    """Options, splitting values over 255 bytes into several instances (RFC 3396), then END."""
    out = bytearray()
    for code, value in options:
        if not 0 < code < 255:
            raise ValueError(f"DHCP option code {code} cannot carry a value")
        chunks = [value[i : i + 255] for i in range(0, len(value), 255)] or [b""]
        for chunk in chunks:
            out += bytes((code, len(chunk))) + chunk
    out.append(Dhcp4Option.END)
    return bytes(out)


def decode_options(data: bytes, where: str = "options") -> dict[int, bytes]:
    """Options up to END (or the end of `data`); repeated codes are concatenated (RFC 3396). Bounds-checked."""
    options: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == Dhcp4Option.PAD:
            i += 1
            continue
        if code == Dhcp4Option.END:
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


def decode_message(data: bytes) -> Dhcp4Message:
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
    overload = options.get(Dhcp4Option.OVERLOAD)
    if overload is not None:
        if len(overload) != 1 or overload[0] not in (1, 2, 3):
            raise DhcpPacketError("option 52 (overload)", overload.hex(), "not 1, 2 or 3")
        # RFC 2131: options continue in `file` (1), then `sname` (2).
        for bit, start, size, name in ((1, 108, 128, "file"), (2, 44, 64, "sname")):
            if overload[0] & bit:
                for code, value in decode_options(data[start : start + size], name).items():
                    options[code] = options.get(code, b"") + value
    return Dhcp4Message(op, xid, secs, flags, ciaddr, yiaddr, siaddr, chaddr, options)


# ---------------------------------------------------------------------------------------------------------------
# Option values: each decoder checks the length and the range. What the lease cannot do without (our address, its
# subnet, the server's identifier, the lease times) raises DhcpPacketError; any other bad option is dropped and
# named in `warnings`, so a server's typo in a router or a search domain never costs the boot.


def _address(code: int, name: str, raw: bytes) -> ipaddress.IPv4Address:
    if len(raw) != 4:
        raise DhcpPacketError(f"option {code} ({name})", raw.hex(), "not 4 bytes")
    return ipaddress.IPv4Address(raw)


def _u32(code: int, name: str, raw: bytes) -> int:
    if len(raw) != 4:
        raise DhcpPacketError(f"option {code} ({name})", raw.hex(), "not 4 bytes")
    return int.from_bytes(raw, "big")


def _prefix(raw: bytes) -> int:
    mask = int.from_bytes(_address(Dhcp4Option.SUBNET_MASK, "subnet mask", raw).packed, "big")
    prefix = 32 - (~mask & 0xFFFFFFFF).bit_length()
    if mask != (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF or prefix == 0:
        raise DhcpPacketError("option 1 (subnet mask)", str(ipaddress.IPv4Address(raw)), "not a contiguous netmask")
    return prefix


def _classful_prefix(address: ipaddress.IPv4Address) -> int:
    first = address.packed[0]
    return 8 if first < 128 else 16 if first < 192 else 24


THIS_NETWORK = ipaddress.IPv4Network("0.0.0.0/8")
CLASS_E = ipaddress.IPv4Network("240.0.0.0/4")
MIN_MTU = 68  # RFC 791: every IPv4 host takes 68-byte datagrams; RFC 2132 section 5.1: the option's minimum


def host_problem(address: ipaddress.IPv4Address) -> str | None:
    """Why no host (we, a router, a name server) can have `address`, or None if one can."""
    if address == BROADCAST4:
        return "the limited broadcast address"
    if address in THIS_NETWORK:
        return "in 0.0.0.0/8 (this network)"
    if address.is_loopback:
        return "a loopback address"
    if address.is_multicast:
        return "a multicast address"
    if address in CLASS_E:
        return "in 240.0.0.0/4 (class E, reserved)"
    return None


def subnet_problem(address: ipaddress.IPv4Address, interface: ipaddress.IPv4Interface) -> str | None:
    """Why `address` cannot be a host of `interface`'s subnet (its network or broadcast address), or None."""
    network = interface.network
    if network.prefixlen > 30:  # /31 (RFC 3021) and /32 have no network or broadcast address
        return None
    if address == network.network_address:
        return f"the network address of {network}"
    if address == network.broadcast_address:
        return f"the broadcast address of {network}"
    return None


def _field(code: int, name: str) -> str:
    return f"option {code} ({name})"


def _hosts(
    options: Mapping[int, bytes], code: int, name: str, interface: ipaddress.IPv4Interface, warnings: list[str]
) -> tuple[ipaddress.IPv4Address, ...]:
    """The usable addresses of a list option (routers, name servers), each bad one dropped with a warning. A router
    outside the subnet stays: clouds give /32 leases with an on-link router (a host route to it is added)."""
    raw = options.get(code)
    if raw is None:
        return ()
    if not raw or len(raw) % 4:
        warnings.append(f"{_field(code, name)} dropped: {len(raw)} bytes, not a non-empty multiple of 4")
        return ()
    out: list[ipaddress.IPv4Address] = []
    for address in (ipaddress.IPv4Address(raw[i : i + 4]) for i in range(0, len(raw), 4)):
        problem = host_problem(address) or subnet_problem(address, interface)
        if address == interface.ip:
            problem = "our own address"
        if problem:
            warnings.append(f"{_field(code, name)} {address} dropped: {problem}")
        elif address not in out:
            out.append(address)
    return tuple(out)


def _name(options: Mapping[int, bytes], code: int, name: str, warnings: list[str]) -> str | None:
    """A host or domain name option (RFC 1035 labels), or None with a warning if it is no such name."""
    raw = options.get(code)
    if raw is None:
        return None
    text = raw.rstrip(b"\0")  # some servers count a C string's terminator
    try:
        decoded = text.decode("ascii")
    except UnicodeDecodeError:
        problem: str | None = "not ASCII"
    else:
        problem = name_problem(decoded)
    if problem:
        warnings.append(f"{_field(code, name)} '{printable(text[:64])}' dropped: {problem}")
        return None
    return checked_name(decoded)


MAX_ROOT_PATH = 1024  # an iscsi: spec is ~300 characters at most; RFC 3396 lets a server send far more


def _root_path(options: Mapping[int, bytes], warnings: list[str]) -> str | None:
    """Option 17 (root path) as printable ASCII, or None with a warning: it becomes a netroot= value, so a
    control character, a byte beyond ASCII or an endless value is refused here, before any parser sees it."""
    raw = options.get(Dhcp4Option.ROOT_PATH)
    if raw is None:
        return None
    text = raw.rstrip(b"\0")  # some servers count a C string's terminator
    field_ = _field(Dhcp4Option.ROOT_PATH, "root path")
    problem = None
    if not text:
        problem = "empty"
    elif len(text) > MAX_ROOT_PATH:
        problem = f"{len(text)} bytes, more than {MAX_ROOT_PATH}"
    elif any(b < 0x21 or b > 0x7E for b in text):
        problem = "white space, control characters or bytes beyond ASCII"
    if problem:
        warnings.append(f"{field_} '{shown_root_path(text)[:64]}' dropped: {problem}")
        return None
    return text.decode("ascii")


def _mtu(options: Mapping[int, bytes], max_mtu: int | None, warnings: list[str]) -> int | None:
    raw = options.get(Dhcp4Option.INTERFACE_MTU)
    if raw is None:
        return None
    field_ = _field(Dhcp4Option.INTERFACE_MTU, "interface MTU")
    if len(raw) != 2:
        warnings.append(f"{field_} dropped: {len(raw)} bytes, not 2")
        return None
    mtu = int.from_bytes(raw, "big")
    if mtu < MIN_MTU:
        warnings.append(f"{field_} {mtu} dropped: less than {MIN_MTU}, the least IPv4 allows")
        return None
    if max_mtu and mtu > max_mtu:
        warnings.append(f"{field_} {mtu} dropped: more than the link's maximum {max_mtu}")
        return None
    return mtu


def _broadcast(
    options: Mapping[int, bytes], interface: ipaddress.IPv4Interface, warnings: list[str]
) -> ipaddress.IPv4Address | None:
    raw = options.get(Dhcp4Option.BROADCAST)
    if raw is None:
        return None
    field_ = _field(Dhcp4Option.BROADCAST, "broadcast address")
    if len(raw) != 4:
        warnings.append(f"{field_} dropped: {len(raw)} bytes, not 4")
        return None
    address = ipaddress.IPv4Address(raw)
    network = interface.network
    if address == BROADCAST4 or (network.prefixlen <= 30 and address == network.broadcast_address):
        return address
    reason = "our own address" if address == interface.ip else f"not the broadcast address of {network}"
    warnings.append(f"{field_} {address} dropped: {reason}")
    return None


INFINITE = 0xFFFFFFFF


@record
class Dhcp4Lease:
    """What an ACK gave us, checked. Times are seconds; lease_time None means infinite. `warnings`: the options
    that were dropped, each named with its value (escaped) and why."""

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
    warnings: tuple[str, ...] = ()
    root_path: str | None = None  # option 17, printable ASCII (netroot=dhcp)

    @classmethod
    def from_ack(cls, message: Dhcp4Message, obtained_at: float = 0.0, max_mtu: int | None = None) -> Dhcp4Lease:
        """The lease of an ACK (or what an OFFER would give); DhcpPacketError if it is unusable as a whole.
        `max_mtu`: the link's largest MTU (IFLA_MAX_MTU), when known."""
        o = message.options
        yiaddr = message.yiaddr
        problem = host_problem(yiaddr)
        if problem:
            raise DhcpPacketError("yiaddr", str(yiaddr), f"not a usable host address: {problem}")
        prefix = _prefix(o[Dhcp4Option.SUBNET_MASK]) if Dhcp4Option.SUBNET_MASK in o else _classful_prefix(yiaddr)
        interface = ipaddress.IPv4Interface((yiaddr, prefix))
        problem = subnet_problem(yiaddr, interface)
        if problem:
            raise DhcpPacketError("yiaddr", str(yiaddr), f"not a usable host address: {problem}")
        if Dhcp4Option.SERVER_ID not in o:
            raise DhcpPacketError("option 54 (server identifier)", None, "missing")
        server = _address(Dhcp4Option.SERVER_ID, "server identifier", o[Dhcp4Option.SERVER_ID])
        if yiaddr == server:
            raise DhcpPacketError("yiaddr", str(yiaddr), "the server's own address (option 54)")
        if yiaddr == message.siaddr:
            raise DhcpPacketError("yiaddr", str(yiaddr), "the next server's address (siaddr)")
        times = {}
        for code, name in (
            (Dhcp4Option.LEASE_TIME, "lease time"),
            (Dhcp4Option.RENEWAL_TIME, "renewal time"),
            (Dhcp4Option.REBINDING_TIME, "rebinding time"),
        ):
            value = _u32(code, name, o[code]) if code in o else None
            times[code] = None if value == INFINITE else value
        warnings: list[str] = []
        return cls(
            address=interface,
            server=server,
            routers=_hosts(o, Dhcp4Option.ROUTER, "router", interface, warnings),
            dns=_hosts(o, Dhcp4Option.DNS, "domain name server", interface, warnings),
            hostname=_name(o, Dhcp4Option.HOSTNAME, "host name", warnings),
            domain=_name(o, Dhcp4Option.DOMAIN_NAME, "domain name", warnings),
            mtu=_mtu(o, max_mtu, warnings),
            broadcast=_broadcast(o, interface, warnings),
            lease_time=times[Dhcp4Option.LEASE_TIME],
            renewal_time=times[Dhcp4Option.RENEWAL_TIME],
            rebinding_time=times[Dhcp4Option.REBINDING_TIME],
            obtained_at=obtained_at,
            root_path=_root_path(o, warnings),
            warnings=tuple(warnings),
        )


# ---------------------------------------------------------------------------------------------------------------
# The client state machine


BACKOFF = (2.0, 4.0, 8.0, 16.0)  # seconds before each retransmission, and before each restart; the last repeats
JITTER = 0.5  # +/- seconds (RFC 2131 says +/-1 around 4, 8, 16...; shorter steps, smaller jitter)
REQUESTS_PER_OFFER = 3  # REQUESTs for one offer before giving it up (~14 s with BACKOFF)
REQUESTS_WITH_FALLBACK = 2  # ... when another server's offer is kept and waiting (~6 s)
MAX_KEPT_OFFERS = 8  # offers of other servers kept for later; more are ignored

# The replies that can move the client; the table says in which state. Any other type is never acted on.
_EVENT_OF_REPLY = {
    Dhcp4MessageType.OFFER: Dhcp4Event.OFFER,
    Dhcp4MessageType.ACK: Dhcp4Event.ACK,
    Dhcp4MessageType.NAK: Dhcp4Event.NAK,
}


def article(word: str) -> str:
    """'an' before a message type's name that is spelled out from a vowel (an OFFER, an ACK), else 'a' (a NAK)."""
    return "an" if word[:1].upper() in "AEIOU" else "a"


class Dhcp4Client:
    """DISCOVER/OFFER/REQUEST/ACK for one interface, until BOUND. Time is the caller's monotonic seconds.

    `max_mtu`: the link's largest MTU, so a lease's MTU option is checked against it. `sent` counts the messages
    handed to the driver by type, less those whose sending failed (`send_failed`): what a server can have seen."""

    def __init__(
        self,
        mac: bytes,
        *,
        hostname: str | None = None,
        rng: random.Random | None = None,
        backoff: tuple[float, ...] = BACKOFF,
        jitter: float = JITTER,
        max_mtu: int | None = None,
    ) -> None:
        if len(mac) != 6:
            raise ValueError(f"mac: want 6 bytes, got {len(mac)}")
        self.mac = mac
        self.hostname = hostname
        self.max_mtu = max_mtu
        self._rng = rng or random.Random()
        self._backoff = backoff
        self._jitter = jitter
        self.state = Dhcp4State.INIT
        self.xid = self._rng.getrandbits(32)
        self._started = 0.0
        self._attempt = 0
        self._restarts = 0
        self._next = float("inf")
        self._offer: Dhcp4Message | None = None
        self._kept: list[Dhcp4Message] = []
        self._lease: Dhcp4Lease | None = None
        self.sent: Counter[Dhcp4MessageType] = Counter()
        self.requests_sent_this_offer = 0
        self.offers_seen = 0
        self.last_ignored: str | None = None
        self.last_refusal: str | None = None

    @property
    def discovers_sent(self) -> int:
        return self.sent[Dhcp4MessageType.DISCOVER]

    @property
    def requests_sent(self) -> int:
        return self.sent[Dhcp4MessageType.REQUEST]

    # ----- inputs

    def start(self, now: float) -> bytes:
        self._advance(Dhcp4Event.START)
        self._started = now
        return self._discover(now)

    def next_timeout(self) -> float:
        """When `on_timeout` wants to be called next (monotonic seconds); inf when CHECKING or BOUND."""
        return self._next

    def on_timeout(self, now: float) -> bytes | None:
        """What is due: a DISCOVER or REQUEST again, the next kept offer's REQUEST, or a DISCOVER after a REQUEST
        went unanswered or a backoff ran out."""
        if now < self._next:
            return None
        if self.state is Dhcp4State.SELECTING:
            self._advance(Dhcp4Event.RETRANSMIT)
            return self._send_discover(now)
        if self.state is Dhcp4State.REQUESTING:
            allowed = REQUESTS_WITH_FALLBACK if self._kept else REQUESTS_PER_OFFER
            if self.requests_sent_this_offer < allowed:
                self._advance(Dhcp4Event.RETRANSMIT)
                return self._send_request(now)
            self.last_refusal = f"no ACK or NAK to {self.requests_sent_this_offer} REQUEST(s) for {self._offered()}"
            if self._kept:
                self._advance(Dhcp4Event.NEXT_OFFER)
                self._choose(self._kept.pop(0))
                return self._send_request(now)
            self._advance(Dhcp4Event.REQUESTS_EXHAUSTED)
            return self._discover(now, new_xid=True)
        if self.state is Dhcp4State.RESTARTING:
            self._advance(Dhcp4Event.BACKOFF_OVER)
            return self._discover(now, new_xid=True)
        return None

    def receive(self, payload: bytes, now: float, wall: float = 0.0) -> Event:
        """One UDP payload from port 67. Raises DhcpPacketError if it is malformed or its lease unusable."""
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
        event = _EVENT_OF_REPLY.get(kind)
        if event is None or not self._expects(event):
            return self._ignore(f"{article(kind.name)} {kind.name} while {self.state.value}")
        if event is Dhcp4Event.OFFER:
            return self._on_offer(message, now)
        server = message.options.get(Dhcp4Option.SERVER_ID)
        if server != self._offer_server():
            return self._ignore(f"{article(kind.name)} {kind.name} from a server we did not choose")
        if event is Dhcp4Event.ACK:
            lease = Dhcp4Lease.from_ack(message, obtained_at=wall, max_mtu=self.max_mtu)
            self._advance(Dhcp4Event.ACK)
            self._lease = lease
            self._next = float("inf")
            return CheckAddress(lease.address.ip)
        # what is left is a NAK
        text = printable(message.options.get(Dhcp4Option.MESSAGE, b"")[:100])
        self.last_refusal = f"NAK from {_server_text(server)}{': ' + text if text else ''}"
        self._advance(Dhcp4Event.NAK)
        delay = self._restart_after(now)
        return Noted(f"{self.last_refusal}; DISCOVER again in {delay:.1f}s")

    def address_checked(self, in_use_by: str | None, now: float) -> Event:
        """The driver's answer to CheckAddress: None if no other host answered for the address, else who did.
        Free: the lease is bound. In use: a DECLINE to send, and a new DISCOVER after the backoff."""
        lease = self._lease
        if in_use_by is None:
            self._advance(Dhcp4Event.ADDRESS_FREE)
            assert lease is not None
            return LeaseBound(lease)
        self._advance(Dhcp4Event.ADDRESS_IN_USE)
        assert lease is not None
        self.last_refusal = f"{lease.address.ip} is in use by {printable(in_use_by)}: DECLINE sent"
        decline = self._send_decline(lease, now)
        self._restart_after(now)
        return SendPacket(decline)

    def send_failed(self, payload: bytes) -> None:
        """The driver could not send `payload` (one this client returned): it does not count as sent."""
        kind = decode_message(payload).message_type
        if kind is not None and self.sent[kind] > 0:
            self.sent[kind] -= 1

    # ----- internals

    def _on_offer(self, message: Dhcp4Message, now: float) -> Event:
        if Dhcp4Option.SERVER_ID not in message.options:
            raise DhcpPacketError("option 54 (server identifier)", None, "missing from the OFFER")
        server = _address(Dhcp4Option.SERVER_ID, "server identifier", message.options[Dhcp4Option.SERVER_ID])
        Dhcp4Lease.from_ack(message, max_mtu=self.max_mtu)  # the checks of an ACK: do not request what we cannot use
        self.offers_seen += 1
        if self.state is Dhcp4State.SELECTING:
            self._advance(Dhcp4Event.OFFER)
            self._choose(message)
            return SendPacket(self._send_request(now))
        servers = [self._offer_server(), *(m.options.get(Dhcp4Option.SERVER_ID) for m in self._kept)]
        if message.options[Dhcp4Option.SERVER_ID] in servers:
            return self._ignore(f"a second OFFER from {server}")
        if len(self._kept) >= MAX_KEPT_OFFERS:
            return self._ignore(f"an OFFER from {server}: {MAX_KEPT_OFFERS} offers are kept already")
        self._advance(Dhcp4Event.OFFER)
        self._kept.append(message)
        return Noted(f"an OFFER of {message.yiaddr} from {server} kept for later")

    def _choose(self, offer: Dhcp4Message) -> None:
        self._offer = offer
        self._attempt = 0
        self.requests_sent_this_offer = 0

    def _expects(self, event: Dhcp4Event) -> bool:
        return (self.state, event) in DHCP4_TRANSITIONS

    def _advance(self, event: Dhcp4Event) -> None:
        """The one place the state changes: by the table's row, or DhcpTransitionError."""
        self.state = advance("DHCPv4", DHCP4_TRANSITIONS, self.state, event)

    def _ignore(self, reason: str) -> Ignored:
        self.last_ignored = reason
        return Ignored(reason)

    def _offer_server(self) -> bytes | None:
        return None if self._offer is None else self._offer.options.get(Dhcp4Option.SERVER_ID)

    def _offered(self) -> str:
        return "nothing" if self._offer is None else f"{self._offer.yiaddr} from {_server_text(self._offer_server())}"

    def _step(self, attempt: int) -> float:
        step = self._backoff[min(attempt, len(self._backoff) - 1)]
        return max(0.1, step + self._rng.uniform(-self._jitter, self._jitter))

    def _schedule(self, now: float) -> None:
        self._next = now + self._step(self._attempt)
        self._attempt += 1

    def _restart_after(self, now: float) -> float:
        """Wait the next step of the backoff before the DISCOVER of a restart (RESTARTING); returns the delay."""
        delay = self._step(self._restarts)
        self._restarts += 1
        self._offer = None
        self._kept.clear()
        self._next = now + delay
        return delay

    def _secs(self, now: float) -> int:
        return max(0, int(now - self._started))

    def _common_options(self) -> list[tuple[int, bytes]]:
        options: list[tuple[int, bytes]] = [
            (Dhcp4Option.CLIENT_ID, bytes((HTYPE_ETHER,)) + self.mac),
            (Dhcp4Option.MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE.to_bytes(2, "big")),
            (Dhcp4Option.PARAMETER_LIST, bytes(REQUESTED)),
        ]
        if self.hostname:
            options.append((Dhcp4Option.HOSTNAME, self.hostname.encode("ascii", "replace")[:255]))
        return options

    def _discover(self, now: float, new_xid: bool = False) -> bytes:
        """A DISCOVER starting a new round of SELECTING (the caller has moved the state)."""
        if new_xid:
            self.xid = self._rng.getrandbits(32)
        self._offer = None
        self._kept.clear()
        self._attempt = 0
        return self._send_discover(now)

    def _send_discover(self, now: float) -> bytes:
        self._schedule(now)
        self.sent[Dhcp4MessageType.DISCOVER] += 1
        options = [(Dhcp4Option.MESSAGE_TYPE, bytes((Dhcp4MessageType.DISCOVER,))), *self._common_options()]
        return encode_message(op=BOOTREQUEST, xid=self.xid, chaddr=self.mac, options=options, secs=self._secs(now))

    def _send_request(self, now: float) -> bytes:
        assert self._offer is not None
        self._schedule(now)
        self.sent[Dhcp4MessageType.REQUEST] += 1
        self.requests_sent_this_offer += 1
        options = [
            (Dhcp4Option.MESSAGE_TYPE, bytes((Dhcp4MessageType.REQUEST,))),
            (Dhcp4Option.REQUESTED_IP, self._offer.yiaddr.packed),
            (Dhcp4Option.SERVER_ID, self._offer.options[Dhcp4Option.SERVER_ID]),
            *self._common_options(),
        ]
        return encode_message(op=BOOTREQUEST, xid=self.xid, chaddr=self.mac, options=options, secs=self._secs(now))

    def _send_decline(self, lease: Dhcp4Lease, now: float) -> bytes:
        """RFC 2131 table 5: requested address and server identifier, no parameter list or size; ciaddr 0."""
        self.sent[Dhcp4MessageType.DECLINE] += 1
        options = [
            (Dhcp4Option.MESSAGE_TYPE, bytes((Dhcp4MessageType.DECLINE,))),
            (Dhcp4Option.REQUESTED_IP, lease.address.ip.packed),
            (Dhcp4Option.SERVER_ID, lease.server.packed),
            (Dhcp4Option.CLIENT_ID, bytes((HTYPE_ETHER,)) + self.mac),
            (Dhcp4Option.MESSAGE, b"address in use (ARP)"),
        ]
        return encode_message(op=BOOTREQUEST, xid=self.xid, chaddr=self.mac, options=options, secs=self._secs(now))

    def progress(self) -> str:
        """A short account for a timeout message: what was sent (and could be), and what came back."""
        counts = f"{self.discovers_sent} DISCOVER and {self.requests_sent} REQUEST"
        if declines := self.sent[Dhcp4MessageType.DECLINE]:
            counts = f"{self.discovers_sent} DISCOVER, {self.requests_sent} REQUEST and {declines} DECLINE"
        text = f"{self.state.value}, {counts} sent"
        if self.offers_seen == 0:
            text += ", no usable offer from any server"
        if self.last_refusal:
            text += f"; last refusal: {self.last_refusal}"
        if self.last_ignored:
            text += f"; last ignored: {self.last_ignored}"
        return text


def _server_text(server: bytes | None) -> str:
    return str(ipaddress.IPv4Address(server)) if server is not None and len(server) == 4 else "the server"
