"""One link's IPv6 addresses and routes, read by dumps that the kernel filters and that this module bounds.

Why not pyroute2's get_addr()/get_routes() (which still make every change to the kernel elsewhere in boot.net):
pyroute2 0.9 filters `get_routes(oif=...)` in Python after the kernel sent the whole table, and its synchronous API
reads a whole dump into a tuple before the caller sees the first message; 0.7 (Debian 12) puts the filter into the
request but, when the caller stops early, reads the rest of that dump on its next request. With 100,000 routes
(a full table, or a flood of router advertisements) each poll then cost 8-30 s and over 500 MB.

Here the request asks the kernel to filter (NETLINK_GET_STRICT_CHK, Linux 4.20: the link's index in the address
request's header; the table and protocol in the route request's header and the link in RTA_OIF), every record
is checked again in Python (a kernel without strict checking sends everything), messages are parsed one at a time
out of one fixed buffer, and a dump stops after `limit` messages or at the deadline: closing the socket drops
whatever is left of it. The parsing functions are pure (bytes in, records out) and tested on their own.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import struct
from collections.abc import Callable, Iterator
from typing import TypeVar

from initiator.deadline import Deadline
from initiator.errors import NetworkError
from initiator.record import record

T = TypeVar("T")

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
IFA_ADDRESS = 1
IFA_FLAGS = 8
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_MULTIPATH = 9
RTA_TABLE = 15
RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2
RTPROT_RA = 9  # what the kernel marks the routes of router advertisements with (default and route-information)
RECV_BUFFER = 65536  # one read; the kernel sizes its dump batches to what the reader asks for
MAX_ADDRESSES = 256  # per dump: SLAAC makes at most 16 per link (net.ipv6.conf.*.max_addresses), statics a few
MAX_ROUTES = 1024  # per dump: a wait needs one route; a flood of router advertisements makes unbounded numbers

NLMSGHDR = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
_RTA = struct.Struct("=HH")  # length, type
_RTNEXTHOP = struct.Struct("=HBBi")  # length, flags, hops, ifindex


class DumpError(NetworkError):
    """A netlink dump that failed or could not be read; names the request and the reason."""

    def __init__(self, what: str, reason: str) -> None:
        self.what = what
        self.reason = reason
        super().__init__(f"netlink {what}: {reason}")


class DumpCut(DumpError):
    """The deadline came in the middle of a dump: what was read is not the whole answer."""

    def __init__(self, what: str) -> None:
        super().__init__(what, "cut short by the deadline")


@record
class LinkAddress:
    """An RTM_NEWADDR record: the header's fields, and IFA_FLAGS (32 bits) where the kernel sends it."""

    index: int
    address: ipaddress.IPv6Interface
    flags: int
    scope: int


@record
class LinkRoute:
    """An RTM_NEWROUTE record: destination, gateways (RTA_GATEWAY, or each hop of RTA_MULTIPATH), where it goes."""

    dst: ipaddress.IPv6Network
    oif: int | None
    gateways: tuple[tuple[ipaddress.IPv6Address, int | None], ...]  # (gateway, the hop's link or None: the route's)
    table: int
    protocol: int


# ---- requests ---------------------------------------------------------------------------------------------------


def message(kind: int, sequence: int, body: bytes, flags: int = NLM_F_DUMP) -> bytes:
    """One netlink request: NLM_F_REQUEST and `flags` (a dump unless told otherwise; boot.net.rtnl sends the
    others)."""
    return NLMSGHDR.pack(NLMSGHDR.size + len(body), kind, NLM_F_REQUEST | flags, sequence, 0) + body


def attribute(kind: int, value: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    padded = value + b"\0" * (-len(value) % 4)
    return _RTA.pack(_RTA.size + len(value), kind) + padded


def address_request(index: int, sequence: int = 1) -> bytes:
    """RTM_GETADDR for the IPv6 addresses of link `index` (a strict kernel filters on the header's index)."""
    return message(RTM_GETADDR, sequence, IFADDRMSG.pack(socket.AF_INET6, 0, 0, 0, index))


def route_request(index: int, *, table: int = RT_TABLE_MAIN, protocol: int = 0, sequence: int = 1) -> bytes:
    """RTM_GETROUTE for the IPv6 routes out of link `index` in `table`, of `protocol` if not 0 (any)."""
    header = RTMSG.pack(socket.AF_INET6, 0, 0, 0, table if table < 256 else 0, protocol, 0, 0, 0)
    return message(RTM_GETROUTE, sequence, header + attribute(RTA_OIF, struct.pack("=I", index)))


# ---- replies ----------------------------------------------------------------------------------------------------


def split_messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of every netlink message in one read; a length that does not fit is a DumpError."""
    offset = 0
    while offset + NLMSGHDR.size <= len(data):
        length, kind, _flags, _sequence, _port = NLMSGHDR.unpack_from(data, offset)
        if length < NLMSGHDR.size or offset + length > len(data):
            raise DumpError("reply", f"message length {length} at offset {offset} of {len(data)} bytes")
        yield kind, data[offset + NLMSGHDR.size : offset + length]
        offset += (length + 3) & ~3


def attributes(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, value) of each rtattr; a truncated one ends the list (the kernel never sends one)."""
    offset = 0
    while offset + _RTA.size <= len(data):
        length, kind = _RTA.unpack_from(data, offset)
        if length < _RTA.size or offset + length > len(data):
            return
        yield kind & 0x3FFF, data[offset + _RTA.size : offset + length]  # without NLA_F_NESTED/NET_BYTEORDER
        offset += (length + 3) & ~3


def _u32(value: bytes) -> int | None:
    return struct.unpack("=I", value)[0] if len(value) == 4 else None


def _ipv6(value: bytes) -> ipaddress.IPv6Address | None:
    return ipaddress.IPv6Address(value) if len(value) == 16 else None


def parse_address(payload: bytes) -> LinkAddress | None:
    """An IPv6 RTM_NEWADDR body, or None if it is something else or too short to be one."""
    if len(payload) < IFADDRMSG.size:
        return None
    family, prefixlen, flags, scope, index = IFADDRMSG.unpack_from(payload)
    if family != socket.AF_INET6 or prefixlen > 128:
        return None
    address = None
    for kind, value in attributes(payload[IFADDRMSG.size :]):
        if kind == IFA_ADDRESS:
            address = _ipv6(value)
        elif kind == IFA_FLAGS and _u32(value) is not None:
            flags = _u32(value) or 0
    if address is None:
        return None
    return LinkAddress(index, ipaddress.IPv6Interface((address, prefixlen)), flags, scope)


def _hops(value: bytes) -> Iterator[tuple[ipaddress.IPv6Address, int | None]]:
    offset = 0
    while offset + _RTNEXTHOP.size <= len(value):
        length, _flags, _hops_count, ifindex = _RTNEXTHOP.unpack_from(value, offset)
        if length < _RTNEXTHOP.size or offset + length > len(value):
            return
        for kind, inner in attributes(value[offset + _RTNEXTHOP.size : offset + length]):
            if kind == RTA_GATEWAY and (gateway := _ipv6(inner)) is not None:
                yield gateway, ifindex
        offset += (length + 3) & ~3


def parse_route(payload: bytes) -> LinkRoute | None:
    """An IPv6 RTM_NEWROUTE body, or None if it is something else or too short to be one."""
    if len(payload) < RTMSG.size:
        return None
    family, dst_len, _src, _tos, table, protocol, _scope, _type, _flags = RTMSG.unpack_from(payload)
    if family != socket.AF_INET6 or dst_len > 128:
        return None
    dst = ipaddress.IPv6Address(0)
    oif = None
    gateways: list[tuple[ipaddress.IPv6Address, int | None]] = []
    for kind, value in attributes(payload[RTMSG.size :]):
        if kind == RTA_DST and (address := _ipv6(value)) is not None:
            dst = address
        elif kind == RTA_OIF:
            oif = _u32(value)
        elif kind == RTA_TABLE and _u32(value) is not None:
            table = _u32(value) or table
        elif kind == RTA_GATEWAY and (gateway := _ipv6(value)) is not None:
            gateways.append((gateway, None))
        elif kind == RTA_MULTIPATH:
            gateways.extend(_hops(value))
    network = ipaddress.IPv6Network((dst, dst_len), strict=False)
    return LinkRoute(network, oif, tuple(gateways), table, protocol)


# ---- the reader -------------------------------------------------------------------------------------------------


def _open() -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    # Without strict checking (Linux < 4.20) the kernel ignores the filter and sends everything: every record is
    # checked again by the caller and `limit` still bounds the work.
    with contextlib.suppress(OSError):
        sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
    return sock


def dump(
    what: str, request: bytes, reply_type: int, parse: Callable[[bytes], T | None], *, limit: int, deadline: Deadline
) -> Iterator[T]:
    """The records of one dump, in the kernel's order, at most `limit` messages read and none after `deadline`
    (DumpCut then, after the records read: the caller must not take them for the whole answer).

    A generator: stopping early (or closing it) closes the socket, and the kernel drops the rest of the dump."""
    with _open() as sock:
        try:
            sock.bind((0, 0))
            sock.sendall(request)
        except OSError as exc:
            raise DumpError(what, exc.strerror or str(exc)) from exc
        seen = 0
        while seen < limit:
            remaining = deadline.remaining()
            if remaining <= 0:
                raise DumpCut(what)
            sock.settimeout(remaining)
            try:
                data = sock.recv(RECV_BUFFER)
            except TimeoutError:
                raise DumpCut(what) from None
            except OSError as exc:  # ENOBUFS and friends: the caller polls again
                raise DumpError(what, exc.strerror or str(exc)) from exc
            if not data:
                return
            for kind, payload in split_messages(data):
                if kind in (NLMSG_DONE, NLMSG_ERROR):
                    code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
                    if code:
                        raise DumpError(what, f"{errno.errorcode.get(code, code)}: {os.strerror(code)}")
                    return
                seen += 1
                if kind == reply_type and (record := parse(payload)) is not None:
                    yield record
                if seen >= limit:
                    return


def link_addresses(index: int, deadline: Deadline, limit: int = MAX_ADDRESSES) -> Iterator[LinkAddress]:
    """The IPv6 addresses of link `index`."""
    records = dump("address dump", address_request(index), RTM_NEWADDR, parse_address, limit=limit, deadline=deadline)
    with contextlib.closing(records):
        yield from (record for record in records if record.index == index)


def link_routes(index: int, deadline: Deadline, *, protocol: int = 0, limit: int = MAX_ROUTES) -> Iterator[LinkRoute]:
    """The IPv6 routes of the main table out of link `index` (directly or by one hop), of `protocol` if not 0."""
    request = route_request(index, protocol=protocol)
    records = dump("route dump", request, RTM_NEWROUTE, parse_route, limit=limit, deadline=deadline)
    with contextlib.closing(records):
        for record in records:
            if record.table != RT_TABLE_MAIN or (protocol and record.protocol != protocol):
                continue
            if record.oif == index or any(hop == index for _gateway, hop in record.gateways):
                yield record
