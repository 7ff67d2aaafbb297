"""The bounded netlink reader: requests byte by byte, replies parsed from crafted and random bytes, and the limits
(messages, deadline) enforced against a fake socket that would send forever."""

from __future__ import annotations

import errno
import ipaddress
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot.net import linkdump
from boot.net.linkdump import (
    IFA_ADDRESS,
    IFA_FLAGS,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTA_DST,
    RTA_GATEWAY,
    RTA_MULTIPATH,
    RTA_OIF,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTPROT_RA,
    DumpCut,
    DumpError,
    LinkAddress,
    LinkRoute,
    address_request,
    parse_address,
    parse_route,
    route_request,
    split_messages,
)
from initiator.deadline import Deadline, FakeClock

from .nlbytes import nlmsg, rta

GW = ipaddress.IPv6Address("fe80::1")


def addr_body(index: int, address: str, prefixlen: int = 64, flags: int = 0, scope: int = 0, big_flags=None) -> bytes:
    body = struct.pack("=BBBBI", socket.AF_INET6, prefixlen, flags & 0xFF, scope, index)
    body += rta(IFA_ADDRESS, ipaddress.IPv6Address(address).packed)
    if big_flags is not None:
        body += rta(IFA_FLAGS, struct.pack("=I", big_flags))
    return body


def route_body(
    oif: int | None, dst: str = "::", dst_len: int = 0, *, gateway=None, hops=(), table=254, protocol=RTPROT_RA
) -> bytes:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET6, dst_len, 0, 0, table, protocol, 0, 1, 0)
    if dst_len:
        body += rta(RTA_DST, ipaddress.IPv6Address(dst).packed)
    if oif is not None:
        body += rta(RTA_OIF, struct.pack("=I", oif))
    if gateway is not None:
        body += rta(RTA_GATEWAY, ipaddress.IPv6Address(gateway).packed)
    if hops:
        nexthops = b""
        for hop_gateway, hop_index in hops:
            inner = rta(RTA_GATEWAY, ipaddress.IPv6Address(hop_gateway).packed)
            nexthops += struct.pack("=HBBi", 8 + len(inner), 0, 0, hop_index) + inner
        body += rta(RTA_MULTIPATH, nexthops)
    return body


def test_the_address_request_asks_the_kernel_for_one_links_ipv6_addresses():
    data = address_request(7, sequence=9)
    length, kind, flags, sequence, _port = struct.unpack_from("=IHHII", data)
    assert (length, kind, flags, sequence) == (len(data), 22, 0x301, 9)
    assert struct.unpack_from("=BBBBI", data, 16) == (socket.AF_INET6, 0, 0, 0, 7)


def test_the_route_request_puts_table_and_protocol_in_the_header_and_the_link_in_rta_oif():
    data = route_request(7, protocol=RTPROT_RA)
    assert struct.unpack_from("=HH", data, 4) == (26, 0x301)
    family, dst_len, src_len, tos, table, protocol, scope, kind, flags = struct.unpack_from("=BBBBBBBBI", data, 16)
    assert (family, table, protocol) == (socket.AF_INET6, 254, RTPROT_RA)
    assert (dst_len, src_len, tos, scope, kind, flags) == (0, 0, 0, 0, 0, 0)  # a strict kernel refuses others
    assert data[28:] == rta(RTA_OIF, struct.pack("=I", 7))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (addr_body(3, "2001:db8::5", flags=0x80), LinkAddress(3, ipaddress.IPv6Interface("2001:db8::5/64"), 0x80, 0)),
        (
            addr_body(3, "fe80::1", flags=0x80, scope=253, big_flags=0x308),
            LinkAddress(3, ipaddress.IPv6Interface("fe80::1/64"), 0x308, 253),
        ),
        (struct.pack("=BBBBI", socket.AF_INET, 24, 0, 0, 3) + rta(IFA_ADDRESS, bytes(4)), None),
        (struct.pack("=BBBBI", socket.AF_INET6, 64, 0, 0, 3), None),  # no address at all
        (struct.pack("=BBBBI", socket.AF_INET6, 200, 0, 0, 3) + rta(IFA_ADDRESS, bytes(16)), None),
        (b"\x0a\x40", None),
    ],
    ids=["global", "ifa-flags-win", "ipv4", "no-address", "prefix-200", "short"],
)
def test_parse_address(body, expected):
    assert parse_address(body) == expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (route_body(3, gateway="fe80::1"), LinkRoute(ipaddress.IPv6Network("::/0"), 3, ((GW, None),), 254, RTPROT_RA)),
        (
            route_body(None, hops=[("fe80::1", 3), ("fe80::2", 4)]),
            LinkRoute(
                ipaddress.IPv6Network("::/0"),
                None,
                ((GW, 3), (ipaddress.IPv6Address("fe80::2"), 4)),
                254,
                RTPROT_RA,
            ),
        ),
        (
            route_body(3, "2001:db8:1::", 64, protocol=2),
            LinkRoute(ipaddress.IPv6Network("2001:db8:1::/64"), 3, (), 254, 2),
        ),
        (struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 0, 0, 254, 9, 0, 1, 0), None),
        (b"\x0a\0\0", None),
    ],
    ids=["default", "multipath", "prefix", "ipv4", "short"],
)
def test_parse_route(body, expected):
    assert parse_route(body) == expected


def test_messages_are_split_at_their_aligned_lengths():
    data = nlmsg(RTM_NEWADDR, b"abcde") + nlmsg(NLMSG_DONE, struct.pack("=i", 0))
    assert list(split_messages(data)) == [(RTM_NEWADDR, b"abcde"), (NLMSG_DONE, b"\0\0\0\0")]


@pytest.mark.parametrize("length", [3, 15, 1000])
def test_a_length_that_does_not_fit_is_a_dump_error(length):
    data = struct.pack("=IHHII", length, RTM_NEWADDR, 2, 1, 0) + b"x" * 20
    with pytest.raises(DumpError, match="message length"):
        list(split_messages(data))


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_random_payloads_give_a_record_or_none(data):
    assert parse_address(data) is None or isinstance(parse_address(data), LinkAddress)
    assert parse_route(data) is None or isinstance(parse_route(data), LinkRoute)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_random_replies_split_or_raise_the_typed_error(data):
    try:
        for kind, payload in split_messages(data):
            assert isinstance(kind, int) and isinstance(payload, bytes)
    except DumpError as exc:
        assert str(exc).startswith("netlink reply: message length")


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.integers(1, 50),
            st.ip_addresses(v=6),
            st.integers(0, 128),
            st.integers(0, 0xFFFFFFFF),
            st.integers(0, 255),
        ),
        max_size=5,
    )
)
def test_addresses_survive_the_round_trip(records):
    data = b"".join(nlmsg(RTM_NEWADDR, addr_body(i, str(a), p, f & 0xFF, s, big_flags=f)) for i, a, p, f, s in records)
    parsed = [parse_address(payload) for _kind, payload in split_messages(data)]
    assert parsed == [LinkAddress(i, ipaddress.IPv6Interface((a, p)), f, s) for i, a, p, f, s in records]


class EndlessKernel:
    """A netlink socket that answers a dump with `per_read` routes per read, forever (or `replies` then)."""

    def __init__(self, clock: FakeClock, per_read: int = 50, replies: list[bytes] | None = None, step: float = 0.0):
        self.clock = clock
        self.per_read = per_read
        self.replies = replies
        self.step = step
        self.reads = 0
        self.sent: list[bytes] = []
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def bind(self, address):
        pass

    def sendall(self, data):
        self.sent.append(data)

    def settimeout(self, seconds):
        assert seconds > 0

    def recv(self, size):
        self.reads += 1
        self.clock.advance(self.step)
        if self.replies is not None:
            return self.replies.pop(0)
        body = route_body(3, "2001:db8::", 64, protocol=2)
        return nlmsg(RTM_NEWROUTE, body) * self.per_read


@pytest.fixture
def kernel(monkeypatch):
    made = []

    def install(**kwargs):
        clock = FakeClock()
        fake = EndlessKernel(clock, **kwargs)
        monkeypatch.setattr(linkdump, "_open", lambda: fake)
        made.append(fake)
        return fake, Deadline("ipv6auto", 5, clock=clock)

    return install


def test_a_dump_stops_after_its_limit_and_closes_the_socket(kernel):
    fake, deadline = kernel()
    routes = list(linkdump.link_routes(3, deadline, limit=120))
    assert len(routes) == 120 and fake.reads == 3 and fake.closed


def test_a_dump_stops_at_the_deadline_and_says_it_was_cut(kernel):
    fake, deadline = kernel(step=1.0)  # every read takes a second
    routes = []
    with pytest.raises(DumpCut, match=r"^netlink route dump: cut short by the deadline$"):
        routes.extend(linkdump.link_routes(3, deadline, limit=10**9))
    assert fake.reads == 5 and len(routes) == 5 * 50 and fake.closed


def test_stopping_early_closes_the_socket(kernel):
    fake, deadline = kernel()
    routes = linkdump.link_routes(3, deadline)
    next(routes)
    routes.close()
    assert fake.closed and fake.reads == 1


def test_records_for_other_links_tables_or_protocols_are_dropped_in_python_too(kernel):
    replies = [
        nlmsg(RTM_NEWROUTE, route_body(4, gateway="fe80::4"))  # another link: a kernel without strict checking
        + nlmsg(RTM_NEWROUTE, route_body(3, gateway="fe80::5", table=255))
        + nlmsg(RTM_NEWROUTE, route_body(3, gateway="fe80::6", protocol=2))
        + nlmsg(RTM_NEWROUTE, route_body(None, hops=[("fe80::7", 3)]))
        + nlmsg(RTM_NEWROUTE, route_body(3, gateway="fe80::8"))
        + nlmsg(NLMSG_DONE, struct.pack("=i", 0))
    ]
    _fake, deadline = kernel(replies=replies)
    got = [r.gateways[0][0] for r in linkdump.link_routes(3, deadline, protocol=RTPROT_RA)]
    assert got == [ipaddress.IPv6Address("fe80::7"), ipaddress.IPv6Address("fe80::8")]


def test_a_kernel_error_is_a_dump_error_naming_the_request_and_the_errno(kernel):
    _fake, deadline = kernel(replies=[nlmsg(NLMSG_ERROR, struct.pack("=i", -errno.EINVAL) + bytes(16))])
    with pytest.raises(DumpError, match=r"^netlink route dump: EINVAL: Invalid argument$"):
        list(linkdump.link_routes(3, deadline))
