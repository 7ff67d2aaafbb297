"""The sans-I/O DHCPv4 client: wire format, the state table, retransmission, and hostile servers' packets."""

from __future__ import annotations

import ipaddress
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boot.net.dhcp4 import (
    BOOTREPLY,
    BOOTREQUEST,
    MIN_REQUEST_LEN,
    Dhcp4Client,
    DhcpPacketError,
    Ignored,
    Lease,
    LeaseBound,
    MessageType,
    Option,
    SendPacket,
    State,
    _checksum,
    decode_message,
    decode_options,
    encode_message,
    encode_options,
    frame_udp,
    unframe_udp,
)
from initiator.errors import ExitStatus

MAC = bytes.fromhex("525400123456")
SERVER = ipaddress.IPv4Address("10.0.0.1")
OFFERED = ipaddress.IPv4Address("10.0.0.50")


def reply(
    client: Dhcp4Client,
    kind: MessageType,
    *,
    yiaddr: ipaddress.IPv4Address = OFFERED,
    server: ipaddress.IPv4Address | None = SERVER,
    extra: list[tuple[int, bytes]] | None = None,
    xid: int | None = None,
    chaddr: bytes = MAC,
    op: int = BOOTREPLY,
) -> bytes:
    options: list[tuple[int, bytes]] = [(Option.MESSAGE_TYPE, bytes((kind,)))]
    if server is not None:
        options.append((Option.SERVER_ID, server.packed))
    options += (
        extra
        if extra is not None
        else [
            (Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
            (Option.ROUTER, SERVER.packed),
            (Option.DNS, bytes((10, 0, 0, 53, 10, 0, 0, 54))),
            (Option.LEASE_TIME, (3600).to_bytes(4, "big")),
            (Option.INTERFACE_MTU, (1400).to_bytes(2, "big")),
            (Option.HOSTNAME, b"node7"),
            (Option.DOMAIN_NAME, b"example.test"),
        ]
    )
    return encode_message(op=op, xid=client.xid if xid is None else xid, chaddr=chaddr, options=options, yiaddr=yiaddr)


def new_client(seed: int = 1, **kwargs) -> Dhcp4Client:
    return Dhcp4Client(MAC, rng=random.Random(seed), **kwargs)


def options_of(payload: bytes) -> dict[int, bytes]:
    return decode_message(payload).options


def test_discover_on_the_wire():
    client = new_client(hostname="client1")
    payload = client.start(100.0)
    assert len(payload) >= MIN_REQUEST_LEN
    message = decode_message(payload)
    assert (message.op, message.xid, message.chaddr) == (BOOTREQUEST, client.xid, MAC)
    assert message.message_type is MessageType.DISCOVER
    assert message.options[Option.CLIENT_ID] == b"\x01" + MAC
    assert message.options[Option.HOSTNAME] == b"client1"
    assert {Option.SUBNET_MASK, Option.ROUTER, Option.DNS, Option.INTERFACE_MTU} <= set(
        message.options[Option.PARAMETER_LIST]
    )
    assert client.state is State.SELECTING


def test_offer_request_ack_binds_the_lease():
    client = new_client()
    client.start(100.0)
    event = client.receive(reply(client, MessageType.OFFER), 100.1)
    assert isinstance(event, SendPacket) and client.state is State.REQUESTING
    request = options_of(event.payload)
    assert request[Option.MESSAGE_TYPE] == bytes((MessageType.REQUEST,))
    assert request[Option.REQUESTED_IP] == OFFERED.packed
    assert request[Option.SERVER_ID] == SERVER.packed
    bound = client.receive(reply(client, MessageType.ACK), 100.2, wall=1.7e9)
    assert isinstance(bound, LeaseBound) and client.state is State.BOUND
    assert bound.lease == Lease(
        address=ipaddress.IPv4Interface("10.0.0.50/24"),
        server=SERVER,
        routers=(SERVER,),
        dns=(ipaddress.IPv4Address("10.0.0.53"), ipaddress.IPv4Address("10.0.0.54")),
        hostname="node7",
        domain="example.test",
        mtu=1400,
        lease_time=3600,
        obtained_at=1.7e9,
    )
    assert client.next_timeout() == float("inf")


def test_retransmission_backs_off_and_repeats_the_last_step():
    client = new_client(jitter=0.0)
    now = 0.0
    client.start(now)
    gaps = []
    for _ in range(6):
        due = client.next_timeout()
        assert client.on_timeout(due - 0.01) is None  # not yet
        gaps.append(due - now)
        now = due
        again = client.on_timeout(now)
        assert decode_message(again).message_type is MessageType.DISCOVER
        assert decode_message(again).xid == client.xid
    assert gaps == [2.0, 4.0, 8.0, 16.0, 16.0, 16.0]
    assert client.discovers_sent == 7


def test_jitter_stays_within_half_a_second():
    client = new_client(seed=7)
    client.start(0.0)
    assert 1.5 <= client.next_timeout() <= 2.5


def test_requests_without_ack_restart_discovery_with_a_new_xid():
    client = new_client(jitter=0.0)
    client.start(0.0)
    client.receive(reply(client, MessageType.OFFER), 0.1)
    old_xid = client.xid
    kinds = []
    for _ in range(3):
        payload = client.on_timeout(client.next_timeout())
        kinds.append(decode_message(payload).message_type)
    assert kinds == [MessageType.REQUEST, MessageType.REQUEST, MessageType.DISCOVER]
    assert client.state is State.SELECTING and client.xid != old_xid


def test_nak_restarts_discovery():
    client = new_client()
    client.start(0.0)
    client.receive(reply(client, MessageType.OFFER), 0.1)
    old_xid = client.xid
    event = client.receive(reply(client, MessageType.NAK, extra=[(Option.MESSAGE, b"wrong network")]), 0.2)
    assert isinstance(event, SendPacket) and decode_message(event.payload).message_type is MessageType.DISCOVER
    assert client.xid != old_xid and "wrong network" in client.progress()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda c: reply(c, MessageType.OFFER, xid=c.xid ^ 1), "is not ours"),
        (lambda c: reply(c, MessageType.OFFER, chaddr=b"\x02" * 6), "chaddr"),
        (lambda c: reply(c, MessageType.OFFER, op=BOOTREQUEST), "BOOTREQUEST"),
        (lambda c: reply(c, MessageType.ACK), "a ACK while selecting"),
        (lambda c: encode_message(op=BOOTREPLY, xid=c.xid, chaddr=MAC, options=[]), "without a DHCP message type"),
    ],
    ids=["other-xid", "other-chaddr", "another-client", "ack-before-offer", "plain-bootp"],
)
def test_packets_not_for_us_are_ignored(make, reason):
    client = new_client()
    client.start(0.0)
    event = client.receive(make(client), 0.1)
    assert isinstance(event, Ignored) and reason in event.reason
    assert client.state is State.SELECTING


def test_ack_from_another_server_is_ignored():
    client = new_client()
    client.start(0.0)
    client.receive(reply(client, MessageType.OFFER), 0.1)
    event = client.receive(reply(client, MessageType.ACK, server=ipaddress.IPv4Address("10.0.0.2")), 0.2)
    assert isinstance(event, Ignored) and client.state is State.REQUESTING


def test_missing_mask_gives_the_classful_prefix_and_infinite_lease_is_none():
    client = new_client()
    client.start(0.0)
    extra = [(Option.LEASE_TIME, b"\xff\xff\xff\xff")]
    client.receive(reply(client, MessageType.OFFER, extra=extra), 0.1)
    bound = client.receive(reply(client, MessageType.ACK, extra=extra), 0.2)
    assert bound.lease.address == ipaddress.IPv4Interface("10.0.0.50/8")
    assert bound.lease.lease_time is None and bound.lease.routers == ()


def test_long_options_split_and_concatenated():
    """RFC 3396: a value over 255 bytes travels as several instances of the option and is joined on receipt."""
    servers = b"".join(ipaddress.IPv4Address(f"10.1.{i // 250}.{i % 250 + 1}").packed for i in range(100))
    encoded = encode_options([(Option.DNS, servers)])
    assert encoded.count(bytes((Option.DNS,))) >= 2
    assert decode_options(encoded)[Option.DNS] == servers


def test_overloaded_file_field_carries_options():
    client = new_client()
    client.start(0.0)
    packet = bytearray(reply(client, MessageType.OFFER, extra=[(Option.OVERLOAD, b"\x01")]))
    more = encode_options([(Option.SUBNET_MASK, bytes((255, 255, 0, 0)))])
    packet[108 : 108 + len(more)] = more
    client.receive(bytes(packet), 0.1)
    ack = bytearray(reply(client, MessageType.ACK, extra=[(Option.OVERLOAD, b"\x01")]))
    ack[108 : 108 + len(more)] = more
    assert client.receive(bytes(ack), 0.2).lease.address == ipaddress.IPv4Interface("10.0.0.50/16")


def _replace_option(code: int, value: bytes):
    def make(client: Dhcp4Client) -> bytes:
        base = [
            (Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
            (Option.ROUTER, SERVER.packed),
        ]
        return reply(client, MessageType.OFFER, extra=[(c, v) for c, v in base if c != code] + [(code, value)])

    return make


HOSTILE = [
    ("truncated", lambda c: reply(c, MessageType.OFFER)[:100], "message length"),
    ("bad-cookie", lambda c: reply(c, MessageType.OFFER)[:236] + b"XXXX" + b"\0" * 60, "magic cookie"),
    ("bad-op", lambda c: b"\x07" + reply(c, MessageType.OFFER)[1:], "op"),
    ("long-hlen", lambda c: reply(c, MessageType.OFFER)[:2] + b"\x11" + reply(c, MessageType.OFFER)[3:], "hlen"),
    (
        "option-past-end",
        lambda c: reply(c, MessageType.OFFER)[:240] + bytes((Option.MESSAGE_TYPE, 1, 2, Option.ROUTER, 200, 1, 2)),
        "option 3",
    ),
    ("length-byte-missing", lambda c: reply(c, MessageType.OFFER)[:240] + bytes((53, 1, 2, 3)), "option 3"),
    ("bad-message-type", _replace_option(Option.MESSAGE_TYPE, b"\x63"), "option 53"),
    ("short-mask", _replace_option(Option.SUBNET_MASK, b"\xff\xff\xff"), "option 1"),
    ("holey-mask", _replace_option(Option.SUBNET_MASK, bytes((255, 0, 255, 0))), "not a contiguous netmask"),
    ("zero-mask", _replace_option(Option.SUBNET_MASK, bytes(4)), "option 1"),
    ("ragged-router", _replace_option(Option.ROUTER, b"\x0a\x00\x00"), "option 3"),
    ("tiny-mtu", _replace_option(Option.INTERFACE_MTU, (67).to_bytes(2, "big")), "option 26"),
    ("control-chars-hostname", _replace_option(Option.HOSTNAME, b"evil\nhost"), "option 12"),
    ("short-lease-time", _replace_option(Option.LEASE_TIME, b"\x00\x01"), "option 51"),
    ("bad-overload", _replace_option(Option.OVERLOAD, b"\x09"), "option 52"),
    ("no-server-id", lambda c: reply(c, MessageType.OFFER, server=None), "option 54"),
    ("zero-yiaddr", lambda c: reply(c, MessageType.OFFER, yiaddr=ipaddress.IPv4Address(0)), "yiaddr"),
    (
        "broadcast-yiaddr",
        lambda c: reply(c, MessageType.OFFER, yiaddr=ipaddress.IPv4Address("255.255.255.255")),
        "yiaddr",
    ),
]


@pytest.mark.parametrize(("make", "field"), [(m, f) for _, m, f in HOSTILE], ids=[n for n, _, _ in HOSTILE])
def test_hostile_packets_raise_a_typed_error_naming_the_field(make, field):
    client = new_client()
    client.start(0.0)
    with pytest.raises(DhcpPacketError) as caught:
        client.receive(make(client), 0.1)
    assert field in str(caught.value)
    assert caught.value.exit_status is ExitStatus.NETWORK
    assert client.state is State.SELECTING  # a bad packet changes nothing: a real server may still answer


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=600))
def test_random_bytes_never_escape_as_anything_but_the_typed_error(data):
    client = new_client()
    client.start(0.0)
    try:
        event = client.receive(data, 0.1)
    except DhcpPacketError as exc:
        assert str(exc).startswith("DHCP ")
        return
    assert isinstance(event, SendPacket | Ignored)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=399), value=st.integers(min_value=0, max_value=255))
def test_mutated_offers_give_an_event_or_the_typed_error(position, value):
    client = new_client()
    client.start(0.0)
    packet = bytearray(reply(client, MessageType.OFFER))
    if position < len(packet):
        packet[position] = value
    try:
        event = client.receive(bytes(packet), 0.1)
    except DhcpPacketError:
        return
    assert isinstance(event, SendPacket | Ignored)


def test_udp_framing_round_trip_and_checksums():
    framed = frame_udp(b"hello")
    assert len(framed) == 20 + 8 + 5
    assert framed[9] == 17 and framed[16:20] == b"\xff\xff\xff\xff"
    assert struct.unpack("!HH", framed[20:24]) == (68, 67)
    # a reply is the same frame with the ports swapped
    swapped = framed[:20] + framed[22:24] + framed[20:22] + framed[24:]
    assert unframe_udp(swapped) == b"hello"
    assert unframe_udp(framed) is None  # to port 67: not for a client


def fix_ip_checksum(packet: bytes) -> bytes:
    header = packet[:10] + b"\0\0" + packet[12:20]
    return header[:10] + struct.pack("!H", _checksum(header)) + packet[12:]


@pytest.mark.parametrize(
    ("mutate", "outcome"),
    [
        (lambda p: p[:9] + b"\x06" + p[10:], None),  # TCP
        (lambda p: b"\x60" + p[1:], None),  # IPv6
        (lambda p: fix_ip_checksum(p[:22] + b"\x00\x43" + p[24:]), None),  # to port 67
        (lambda p: p[:10] + b"\x00\x00" + p[12:], "IPv4 header checksum"),
        (lambda p: p[:2] + b"\x00\x10" + p[4:], "IPv4 header"),
        (lambda p: p[:24] + b"\xff\xff" + p[26:], "UDP length"),
    ],
    ids=["not-udp", "not-ipv4", "not-port-68", "bad-header-checksum", "short-total-length", "udp-length-too-long"],
)
def test_unframe_rejects_or_skips(mutate, outcome):
    packet = mutate(frame_udp(b"x" * 20, sport=67, dport=68))
    if outcome is None:
        assert unframe_udp(packet) is None
    else:
        with pytest.raises(DhcpPacketError, match=outcome):
            unframe_udp(packet)
