"""The sans-I/O DHCPv4 client: wire format, the state table, retransmission, and hostile servers' packets."""

from __future__ import annotations

import ipaddress
import itertools
import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from boot.net.dhcp4 import (
    BACKOFF,
    BOOTREPLY,
    BOOTREQUEST,
    DHCP4_TRANSITIONS,
    JITTER,
    MIN_REQUEST_LEN,
    REQUESTS_PER_OFFER,
    REQUESTS_WITH_FALLBACK,
    ZERO4,
    Dhcp4Client,
    Dhcp4Event,
    Dhcp4Lease,
    Dhcp4MessageType,
    Dhcp4Option,
    Dhcp4State,
    DhcpPacketError,
    Ignored,
    LeaseBound,
    SendPacket,
    article,
    decode_message,
    decode_options,
    encode_message,
    encode_options,
)
from boot.net.exchange import CheckAddress, DhcpTransitionError, Noted
from initiator.errors import ExitStatus
from initiator.printable import printable

MAC = bytes.fromhex("525400123456")
SERVER = ipaddress.IPv4Address("10.0.0.1")
OFFERED = ipaddress.IPv4Address("10.0.0.50")


def reply(
    client: Dhcp4Client,
    kind: Dhcp4MessageType,
    *,
    yiaddr: ipaddress.IPv4Address = OFFERED,
    server: ipaddress.IPv4Address | None = SERVER,
    extra: list[tuple[int, bytes]] | None = None,
    xid: int | None = None,
    chaddr: bytes = MAC,
    op: int = BOOTREPLY,
    siaddr: ipaddress.IPv4Address = ZERO4,
) -> bytes:
    options: list[tuple[int, bytes]] = [(Dhcp4Option.MESSAGE_TYPE, bytes((kind,)))]
    if server is not None:
        options.append((Dhcp4Option.SERVER_ID, server.packed))
    options += (
        extra
        if extra is not None
        else [
            (Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
            (Dhcp4Option.ROUTER, SERVER.packed),
            (Dhcp4Option.DNS, bytes((10, 0, 0, 53, 10, 0, 0, 54))),
            (Dhcp4Option.LEASE_TIME, (3600).to_bytes(4, "big")),
            (Dhcp4Option.INTERFACE_MTU, (1400).to_bytes(2, "big")),
            (Dhcp4Option.HOSTNAME, b"node7"),
            (Dhcp4Option.DOMAIN_NAME, b"example.test"),
        ]
    )
    xid = client.xid if xid is None else xid
    return encode_message(op=op, xid=xid, chaddr=chaddr, options=options, yiaddr=yiaddr, siaddr=siaddr)


def bind(client: Dhcp4Client, ack: bytes, now: float = 0.5, wall: float = 0.0) -> LeaseBound:
    """Feed an ACK; the client asks for the address to be checked; no one else has it: the lease."""
    check = client.receive(ack, now, wall=wall)
    assert isinstance(check, CheckAddress) and client.state is Dhcp4State.CHECKING
    bound = client.address_checked(None, now)
    assert isinstance(bound, LeaseBound) and check.address == bound.lease.address.ip
    return bound


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
    assert message.message_type is Dhcp4MessageType.DISCOVER
    assert message.options[Dhcp4Option.CLIENT_ID] == b"\x01" + MAC
    assert message.options[Dhcp4Option.HOSTNAME] == b"client1"
    assert {Dhcp4Option.SUBNET_MASK, Dhcp4Option.ROUTER, Dhcp4Option.DNS, Dhcp4Option.INTERFACE_MTU} <= set(
        message.options[Dhcp4Option.PARAMETER_LIST]
    )
    assert client.state is Dhcp4State.SELECTING


def test_offer_request_ack_binds_the_lease():
    client = new_client()
    client.start(100.0)
    event = client.receive(reply(client, Dhcp4MessageType.OFFER), 100.1)
    assert isinstance(event, SendPacket) and client.state is Dhcp4State.REQUESTING
    request = options_of(event.payload)
    assert request[Dhcp4Option.MESSAGE_TYPE] == bytes((Dhcp4MessageType.REQUEST,))
    assert request[Dhcp4Option.REQUESTED_IP] == OFFERED.packed
    assert request[Dhcp4Option.SERVER_ID] == SERVER.packed
    bound = bind(client, reply(client, Dhcp4MessageType.ACK), 100.2, wall=1.7e9)
    assert client.state is Dhcp4State.BOUND
    assert bound.lease == Dhcp4Lease(
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
        assert decode_message(again).message_type is Dhcp4MessageType.DISCOVER
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
    client.receive(reply(client, Dhcp4MessageType.OFFER), 0.1)
    old_xid = client.xid
    kinds = []
    for _ in range(3):
        payload = client.on_timeout(client.next_timeout())
        kinds.append(decode_message(payload).message_type)
    assert kinds == [Dhcp4MessageType.REQUEST, Dhcp4MessageType.REQUEST, Dhcp4MessageType.DISCOVER]
    assert client.state is Dhcp4State.SELECTING and client.xid != old_xid


def test_nak_restarts_discovery_after_a_backoff():
    client = new_client(jitter=0.0)
    client.start(0.0)
    client.receive(reply(client, Dhcp4MessageType.OFFER), 0.1)
    old_xid = client.xid
    event = client.receive(reply(client, Dhcp4MessageType.NAK, extra=[(Dhcp4Option.MESSAGE, b"wrong network")]), 0.2)
    assert event == Noted("NAK from 10.0.0.1: wrong network; DISCOVER again in 2.0s")
    assert client.state is Dhcp4State.RESTARTING and client.next_timeout() == 2.2
    assert client.on_timeout(2.1) is None
    again = decode_message(client.on_timeout(2.2))
    assert again.message_type is Dhcp4MessageType.DISCOVER and again.xid == client.xid != old_xid
    assert "last refusal: NAK from 10.0.0.1: wrong network" in client.progress()


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda c: reply(c, Dhcp4MessageType.OFFER, xid=c.xid ^ 1), "is not ours"),
        (lambda c: reply(c, Dhcp4MessageType.OFFER, chaddr=b"\x02" * 6), "chaddr"),
        (lambda c: reply(c, Dhcp4MessageType.OFFER, op=BOOTREQUEST), "BOOTREQUEST"),
        (lambda c: reply(c, Dhcp4MessageType.ACK), "an ACK while selecting"),
        (lambda c: encode_message(op=BOOTREPLY, xid=c.xid, chaddr=MAC, options=[]), "without a DHCP message type"),
    ],
    ids=["other-xid", "other-chaddr", "another-client", "ack-before-offer", "plain-bootp"],
)
def test_packets_not_for_us_are_ignored(make, reason):
    client = new_client()
    client.start(0.0)
    event = client.receive(make(client), 0.1)
    assert isinstance(event, Ignored) and reason in event.reason
    assert client.state is Dhcp4State.SELECTING


def test_ack_from_another_server_is_ignored():
    client = new_client()
    client.start(0.0)
    client.receive(reply(client, Dhcp4MessageType.OFFER), 0.1)
    event = client.receive(reply(client, Dhcp4MessageType.ACK, server=ipaddress.IPv4Address("10.0.0.2")), 0.2)
    assert isinstance(event, Ignored) and client.state is Dhcp4State.REQUESTING


def test_missing_mask_gives_the_classful_prefix_and_infinite_lease_is_none():
    client = new_client()
    client.start(0.0)
    extra = [(Dhcp4Option.LEASE_TIME, b"\xff\xff\xff\xff")]
    client.receive(reply(client, Dhcp4MessageType.OFFER, extra=extra), 0.1)
    bound = bind(client, reply(client, Dhcp4MessageType.ACK, extra=extra), 0.2)
    assert bound.lease.address == ipaddress.IPv4Interface("10.0.0.50/8")
    assert bound.lease.lease_time is None and bound.lease.routers == ()


def test_long_options_split_and_concatenated():
    """RFC 3396: a value over 255 bytes travels as several instances of the option and is joined on receipt."""
    servers = b"".join(ipaddress.IPv4Address(f"10.1.{i // 250}.{i % 250 + 1}").packed for i in range(100))
    encoded = encode_options([(Dhcp4Option.DNS, servers)])
    assert encoded.count(bytes((Dhcp4Option.DNS,))) >= 2
    assert decode_options(encoded)[Dhcp4Option.DNS] == servers


def test_overloaded_file_field_carries_options():
    client = new_client()
    client.start(0.0)
    packet = bytearray(reply(client, Dhcp4MessageType.OFFER, extra=[(Dhcp4Option.OVERLOAD, b"\x01")]))
    more = encode_options([(Dhcp4Option.SUBNET_MASK, bytes((255, 255, 0, 0)))])
    packet[108 : 108 + len(more)] = more
    client.receive(bytes(packet), 0.1)
    ack = bytearray(reply(client, Dhcp4MessageType.ACK, extra=[(Dhcp4Option.OVERLOAD, b"\x01")]))
    ack[108 : 108 + len(more)] = more
    assert bind(client, bytes(ack), 0.2).lease.address == ipaddress.IPv4Interface("10.0.0.50/16")


def _replace_option(code: int, value: bytes):
    def make(client: Dhcp4Client) -> bytes:
        base = [
            (Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
            (Dhcp4Option.ROUTER, SERVER.packed),
        ]
        return reply(client, Dhcp4MessageType.OFFER, extra=[(c, v) for c, v in base if c != code] + [(code, value)])

    return make


HOSTILE = [
    ("truncated", lambda c: reply(c, Dhcp4MessageType.OFFER)[:100], "message length"),
    ("bad-cookie", lambda c: reply(c, Dhcp4MessageType.OFFER)[:236] + b"XXXX" + b"\0" * 60, "magic cookie"),
    ("bad-op", lambda c: b"\x07" + reply(c, Dhcp4MessageType.OFFER)[1:], "op"),
    (
        "long-hlen",
        lambda c: reply(c, Dhcp4MessageType.OFFER)[:2] + b"\x11" + reply(c, Dhcp4MessageType.OFFER)[3:],
        "hlen",
    ),
    (
        "option-past-end",
        lambda c: (
            reply(c, Dhcp4MessageType.OFFER)[:240]
            + bytes((Dhcp4Option.MESSAGE_TYPE, 1, 2, Dhcp4Option.ROUTER, 200, 1, 2))
        ),
        "option 3",
    ),
    ("length-byte-missing", lambda c: reply(c, Dhcp4MessageType.OFFER)[:240] + bytes((53, 1, 2, 3)), "option 3"),
    ("bad-message-type", _replace_option(Dhcp4Option.MESSAGE_TYPE, b"\x63"), "option 53"),
    ("short-mask", _replace_option(Dhcp4Option.SUBNET_MASK, b"\xff\xff\xff"), "option 1"),
    ("holey-mask", _replace_option(Dhcp4Option.SUBNET_MASK, bytes((255, 0, 255, 0))), "not a contiguous netmask"),
    ("zero-mask", _replace_option(Dhcp4Option.SUBNET_MASK, bytes(4)), "option 1"),
    ("short-lease-time", _replace_option(Dhcp4Option.LEASE_TIME, b"\x00\x01"), "option 51"),
    ("bad-overload", _replace_option(Dhcp4Option.OVERLOAD, b"\x09"), "option 52"),
    ("no-server-id", lambda c: reply(c, Dhcp4MessageType.OFFER, server=None), "option 54"),
    ("zero-yiaddr", lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address(0)), "yiaddr"),
    (
        "broadcast-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("255.255.255.255")),
        "yiaddr",
    ),
    ("server-yiaddr", lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=SERVER), "yiaddr: the server's own address"),
    (
        "siaddr-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, siaddr=OFFERED),
        "yiaddr: the next server's address (siaddr)",
    ),
    (
        "network-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("10.0.0.0")),
        "yiaddr: not a usable host address: the network address of 10.0.0.0/24",
    ),
    (
        "subnet-broadcast-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("10.0.0.255")),
        "yiaddr: not a usable host address: the broadcast address of 10.0.0.0/24",
    ),
    (
        "class-e-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("240.0.0.5")),
        "yiaddr: not a usable host address: in 240.0.0.0/4 (class E, reserved)",
    ),
    (
        "multicast-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("224.0.0.9")),
        "a multicast address",
    ),
    (
        "loopback-yiaddr",
        lambda c: reply(c, Dhcp4MessageType.OFFER, yiaddr=ipaddress.IPv4Address("127.0.0.9")),
        "a loopback address",
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
    assert client.state is Dhcp4State.SELECTING  # a bad packet changes nothing: a real server may still answer


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
    assert isinstance(event, SendPacket | Ignored | Noted)


@settings(max_examples=300, deadline=None)
@given(position=st.integers(min_value=0, max_value=399), value=st.integers(min_value=0, max_value=255))
def test_mutated_offers_give_an_event_or_the_typed_error(position, value):
    client = new_client()
    client.start(0.0)
    packet = bytearray(reply(client, Dhcp4MessageType.OFFER))
    if position < len(packet):
        packet[position] = value
    try:
        event = client.receive(bytes(packet), 0.1)
    except DhcpPacketError:
        return
    assert isinstance(event, SendPacket | Ignored | Noted)


# ---------------------------------------------------------------------------------------------------------------
# The transition table: every row walked through the public calls, every missing pair refused

OTHER_SERVER = ipaddress.IPv4Address("10.0.0.2")


def in_state(state: Dhcp4State) -> Dhcp4Client:
    """A client brought to `state` the way a real exchange brings it there."""
    client = new_client(jitter=0.0)
    if state is Dhcp4State.INIT:
        return client
    client.start(0.0)
    if state is not Dhcp4State.SELECTING:
        client.receive(reply(client, Dhcp4MessageType.OFFER), 0.1)
    if state is Dhcp4State.RESTARTING:
        client.receive(reply(client, Dhcp4MessageType.NAK), 0.2)
    if state in (Dhcp4State.CHECKING, Dhcp4State.BOUND):
        client.receive(reply(client, Dhcp4MessageType.ACK), 0.2)
    if state is Dhcp4State.BOUND:
        client.address_checked(None, 0.3)
    assert client.state is state
    return client


def _exhaust_requests(client: Dhcp4Client) -> bytes | None:
    while client.requests_sent_this_offer < REQUESTS_PER_OFFER:
        assert decode_message(client.on_timeout(client.next_timeout())).message_type is Dhcp4MessageType.REQUEST
    return client.on_timeout(client.next_timeout())


def _next_offer(client: Dhcp4Client) -> bytes | None:
    other = reply(client, Dhcp4MessageType.OFFER, server=OTHER_SERVER, yiaddr=ipaddress.IPv4Address("10.0.0.60"))
    assert isinstance(client.receive(other, 0.4), Noted)
    while client.requests_sent_this_offer < REQUESTS_WITH_FALLBACK:
        assert decode_message(client.on_timeout(client.next_timeout())).message_type is Dhcp4MessageType.REQUEST
    return client.on_timeout(client.next_timeout())


TRIGGER = {
    Dhcp4Event.START: lambda c: c.start(0.0),
    Dhcp4Event.OFFER: lambda c: c.receive(reply(c, Dhcp4MessageType.OFFER, server=OTHER_SERVER), 0.5),
    Dhcp4Event.ACK: lambda c: c.receive(reply(c, Dhcp4MessageType.ACK), 0.5),
    Dhcp4Event.NAK: lambda c: c.receive(reply(c, Dhcp4MessageType.NAK), 0.5),
    Dhcp4Event.RETRANSMIT: lambda c: c.on_timeout(c.next_timeout()),
    Dhcp4Event.NEXT_OFFER: _next_offer,
    Dhcp4Event.REQUESTS_EXHAUSTED: _exhaust_requests,
    Dhcp4Event.ADDRESS_FREE: lambda c: c.address_checked(None, 0.5),
    Dhcp4Event.ADDRESS_IN_USE: lambda c: c.address_checked("02:00:00:00:00:99", 0.5),
    Dhcp4Event.BACKOFF_OVER: lambda c: c.on_timeout(c.next_timeout()),
}

# What each row gives back: a message type sent (and whether in a new transaction), LeaseBound, CheckAddress, or
# Noted (nothing to send now).
SENDS = {
    (Dhcp4State.INIT, Dhcp4Event.START): (Dhcp4MessageType.DISCOVER, False),
    (Dhcp4State.SELECTING, Dhcp4Event.RETRANSMIT): (Dhcp4MessageType.DISCOVER, False),
    (Dhcp4State.SELECTING, Dhcp4Event.OFFER): (Dhcp4MessageType.REQUEST, False),
    (Dhcp4State.REQUESTING, Dhcp4Event.OFFER): (Noted, False),
    (Dhcp4State.REQUESTING, Dhcp4Event.RETRANSMIT): (Dhcp4MessageType.REQUEST, False),
    (Dhcp4State.REQUESTING, Dhcp4Event.NEXT_OFFER): (Dhcp4MessageType.REQUEST, False),
    (Dhcp4State.REQUESTING, Dhcp4Event.REQUESTS_EXHAUSTED): (Dhcp4MessageType.DISCOVER, True),
    (Dhcp4State.REQUESTING, Dhcp4Event.NAK): (Noted, False),
    (Dhcp4State.REQUESTING, Dhcp4Event.ACK): (CheckAddress, False),
    (Dhcp4State.CHECKING, Dhcp4Event.ADDRESS_FREE): (LeaseBound, False),
    (Dhcp4State.CHECKING, Dhcp4Event.ADDRESS_IN_USE): (Dhcp4MessageType.DECLINE, False),
    (Dhcp4State.RESTARTING, Dhcp4Event.BACKOFF_OVER): (Dhcp4MessageType.DISCOVER, True),
}


def test_every_row_has_its_expected_output():
    assert set(SENDS) == set(DHCP4_TRANSITIONS)


@pytest.mark.parametrize(
    ("row", "after"), list(DHCP4_TRANSITIONS.items()), ids=[f"{s.name}-{e.name}" for s, e in DHCP4_TRANSITIONS]
)
def test_every_row_of_the_table_moves_the_client_and_sends_what_it_says(row, after):
    before, event = row
    client = in_state(before)
    xid = client.xid
    result = TRIGGER[event](client)
    assert client.state is after
    kind, new_xid = SENDS[row]
    if isinstance(kind, type):
        assert isinstance(result, kind)
        return
    payload = result.payload if isinstance(result, SendPacket) else result
    assert decode_message(payload).message_type is kind
    assert (client.xid != xid) is new_xid


MISSING = [(s, e) for s in Dhcp4State for e in Dhcp4Event if (s, e) not in DHCP4_TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), MISSING, ids=[f"{s.name}-{e.name}" for s, e in MISSING])
def test_a_pair_missing_from_the_table_is_refused_with_a_typed_error(state, event):
    client = in_state(state)
    with pytest.raises(DhcpTransitionError) as caught:
        client._advance(event)
    assert (caught.value.state, caught.value.event) == (state, event)
    assert f"event {event.name} is not allowed in state {state.name}" in str(caught.value)
    assert caught.value.exit_status is ExitStatus.BAD_INPUT
    assert client.state is state


@pytest.mark.parametrize(
    "state", [s for s in Dhcp4State if (s, Dhcp4Event.START) not in DHCP4_TRANSITIONS], ids=lambda s: s.name
)
def test_start_out_of_turn_raises(state):
    client = in_state(state)
    with pytest.raises(DhcpTransitionError, match=f"START is not allowed in state {state.name}"):
        client.start(1.0)
    assert client.state is state


@pytest.mark.parametrize("state", [s for s in Dhcp4State if s is not Dhcp4State.CHECKING], ids=lambda s: s.name)
def test_an_address_check_answer_out_of_turn_raises(state):
    client = in_state(state)
    with pytest.raises(DhcpTransitionError, match="is not allowed in state"):
        client.address_checked(None, 1.0)
    assert client.state is state


REPLY_EVENTS = {Dhcp4Event.OFFER: "OFFER", Dhcp4Event.ACK: "ACK", Dhcp4Event.NAK: "NAK"}
MISSING_REPLIES = [(s, e) for s, e in MISSING if e in REPLY_EVENTS]


@pytest.mark.parametrize(("state", "event"), MISSING_REPLIES, ids=[f"{s.name}-{e.name}" for s, e in MISSING_REPLIES])
def test_a_reply_with_no_row_in_this_state_is_ignored(state, event):
    client = in_state(state)
    result = TRIGGER[event](client)
    name = REPLY_EVENTS[event]
    assert result == Ignored(f"{article(name)} {name} while {state.value}")
    assert client.state is state


TIMED = {Dhcp4Event.RETRANSMIT, Dhcp4Event.NEXT_OFFER, Dhcp4Event.REQUESTS_EXHAUSTED, Dhcp4Event.BACKOFF_OVER}


@pytest.mark.parametrize(
    "state", [s for s in Dhcp4State if not any((s, e) in DHCP4_TRANSITIONS for e in TIMED)], ids=lambda s: s.name
)
def test_nothing_is_due_where_the_table_has_no_timed_row(state):
    client = in_state(state)
    assert client.next_timeout() == float("inf")
    assert client.on_timeout(1e9) is None
    assert client.state is state


@pytest.mark.parametrize("kind", list(Dhcp4MessageType), ids=lambda k: k.name)
def test_the_article_follows_the_spelled_name(kind):
    expected = {"OFFER": "an", "ACK": "an", "INFORM": "an"}.get(kind.name, "a")
    assert article(kind.name) == expected


class RecordingClient(Dhcp4Client):
    """Notes every event the client puts through its table."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[Dhcp4Event] = []

    def _advance(self, event: Dhcp4Event) -> None:
        self.events.append(event)
        super()._advance(event)


ACTIONS = [
    "timeout",
    "offer",
    "offer-other-server",
    "ack",
    "nak",
    "ack-other-server",
    "offer-other-xid",
    "garbage",
    "address-free",
    "address-in-use",
]


@settings(max_examples=300, deadline=None)
@given(actions=st.lists(st.sampled_from(ACTIONS), max_size=30), seed=st.integers(0, 2**16))
def test_every_state_change_is_a_row_of_the_table(actions, seed):
    client = RecordingClient(MAC, rng=random.Random(seed))
    client.start(0.0)
    now = 0.0
    for action in actions:
        before = client.state
        client.events.clear()
        now += 1.0
        try:
            if action == "timeout":
                now = max(now, client.next_timeout()) if client.next_timeout() < float("inf") else now
                client.on_timeout(now)
            elif action == "ack-other-server":
                client.receive(reply(client, Dhcp4MessageType.ACK, server=OTHER_SERVER), now)
            elif action == "offer-other-server":
                client.receive(reply(client, Dhcp4MessageType.OFFER, server=OTHER_SERVER), now)
            elif action == "offer-other-xid":
                client.receive(reply(client, Dhcp4MessageType.OFFER, xid=client.xid ^ 1), now)
            elif action == "garbage":
                client.receive(reply(client, Dhcp4MessageType.OFFER)[:100], now)
            elif action.startswith("address-"):
                if client.state is Dhcp4State.CHECKING:  # the driver answers only what was asked
                    client.address_checked(None if action == "address-free" else "02:00:00:00:00:99", now)
            else:
                kind = {"offer": Dhcp4MessageType.OFFER, "ack": Dhcp4MessageType.ACK, "nak": Dhcp4MessageType.NAK}
                client.receive(reply(client, kind[action]), now)
        except DhcpPacketError:
            pass
        state = before
        for event in client.events:
            state = DHCP4_TRANSITIONS[(state, event)]
        assert client.state is state
        assert len(client.events) <= 1


# ---------------------------------------------------------------------------------------------------------------
# Whole exchanges against scripted servers, time jumping from one timeout to the next


GOOD_SERVER = ipaddress.IPv4Address("10.0.0.3")


def simulate(client: Dhcp4Client, answer, seconds: float, probe=lambda address: None):
    """Drive `client` as boot.net.exchange does, each sent message answered at once by `answer(message)` (a list
    of reply payloads), `probe(address)` standing in for ARP. Returns (messages sent, lease or None)."""
    now = 0.0
    outbox = [client.start(now)]
    sent: list[Dhcp4MessageType] = []
    while True:
        while outbox:
            message = decode_message(outbox.pop(0))
            sent.append(message.message_type)
            for payload in answer(message):
                event = client.receive(payload, now)
                while isinstance(event, CheckAddress):
                    event = client.address_checked(probe(event.address), now)
                if isinstance(event, SendPacket):
                    outbox.append(event.payload)
                elif isinstance(event, LeaseBound):
                    return sent, event.lease
        now = client.next_timeout()
        if now > seconds:
            return sent, None
        payload = client.on_timeout(now)
        if payload is not None:
            outbox.append(payload)


def server_reply(message, kind, server=SERVER, yiaddr=OFFERED, extra=(), mask=(255, 255, 255, 0)) -> bytes:
    options = [
        (Dhcp4Option.MESSAGE_TYPE, bytes((kind,))),
        (Dhcp4Option.SERVER_ID, server.packed),
        (Dhcp4Option.SUBNET_MASK, bytes(mask)),
        *extra,
    ]
    return encode_message(op=BOOTREPLY, xid=message.xid, chaddr=MAC, options=options, yiaddr=yiaddr)


def requested_server(message) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(message.options[Dhcp4Option.SERVER_ID])


NAK_TEXT = b"go away\x1b[2J\x07\x00"


def always_nak(message):
    if message.message_type is Dhcp4MessageType.DISCOVER:
        return [server_reply(message, Dhcp4MessageType.OFFER)]
    if message.message_type is Dhcp4MessageType.REQUEST:
        return [server_reply(message, Dhcp4MessageType.NAK, extra=[(Dhcp4Option.MESSAGE, NAK_TEXT)])]
    return []


def test_a_server_that_naks_everything_gets_a_handful_of_messages_and_the_count_is_true():
    client = new_client(seed=3)
    sent, lease = simulate(client, always_nak, 5.0)
    assert lease is None and len(sent) <= 6  # was ~9,800 pairs in 5 s
    assert sent[:2] == [Dhcp4MessageType.DISCOVER, Dhcp4MessageType.REQUEST]
    counts = f"{sent.count(Dhcp4MessageType.DISCOVER)} DISCOVER and {sent.count(Dhcp4MessageType.REQUEST)} REQUEST"
    assert client.progress().startswith(f"restarting, {counts} sent")


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), seconds=st.floats(1.0, 120.0))
def test_restarts_after_refusals_back_off_exponentially(seed, seconds):
    """However long the bound: consecutive DISCOVERs after NAKs are at least the backoff's steps apart."""
    client = new_client(seed=seed)
    times: list[float] = []
    real_discover = client._send_discover

    def noting(now):
        times.append(now)
        return real_discover(now)

    client._send_discover = noting
    simulate(client, always_nak, seconds)
    for i, (a, b) in enumerate(itertools.pairwise(times)):
        assert b - a >= BACKOFF[min(i, len(BACKOFF) - 1)] - JITTER - 1e-9
    assert len(times) <= 2 + seconds / (BACKOFF[0] - JITTER)


def test_the_nak_message_reaches_the_progress_escaped():
    client = new_client(seed=3)
    simulate(client, always_nak, 1.0)
    assert "last refusal: NAK from 10.0.0.1: go away\\x1b[2J\\x07\\x00" in client.progress()


@settings(max_examples=300, deadline=None)
@given(text=st.binary(max_size=300))
def test_whatever_a_nak_says_the_progress_is_one_printable_line(text):
    client = in_state(Dhcp4State.REQUESTING)
    client.receive(reply(client, Dhcp4MessageType.NAK, extra=[(Dhcp4Option.MESSAGE, text)]), 1.0)
    assert client.progress().isprintable()


def test_an_offer_that_is_never_acked_gives_way_to_the_next_offer():
    """The first OFFER wins the REQUEST, but its server never answers it: the OFFER that came 0.3 s later is
    REQUESTed after REQUESTS_WITH_FALLBACK tries, well inside a 30 s bound."""
    good_yiaddr = ipaddress.IPv4Address("10.0.0.77")

    def two_servers(message):
        if message.message_type is Dhcp4MessageType.DISCOVER:
            return [
                server_reply(message, Dhcp4MessageType.OFFER),  # answers first, never ACKs
                server_reply(message, Dhcp4MessageType.OFFER, server=GOOD_SERVER, yiaddr=good_yiaddr),
            ]
        if message.message_type is Dhcp4MessageType.REQUEST and requested_server(message) == GOOD_SERVER:
            return [server_reply(message, Dhcp4MessageType.ACK, server=GOOD_SERVER, yiaddr=good_yiaddr)]
        return []

    client = new_client(seed=5)
    sent, lease = simulate(client, two_servers, 30.0)
    assert lease is not None and lease.address.ip == good_yiaddr and lease.server == GOOD_SERVER
    assert sent == [Dhcp4MessageType.DISCOVER] + [Dhcp4MessageType.REQUEST] * (REQUESTS_WITH_FALLBACK + 1)


def test_an_address_another_host_answers_for_is_declined_and_the_next_one_taken():
    addresses = iter([ipaddress.IPv4Address("10.0.0.50"), ipaddress.IPv4Address("10.0.0.51")])
    declined = []
    offered = {}

    def server(message):
        if message.message_type is Dhcp4MessageType.DISCOVER:
            offered[message.xid] = next(addresses)
            return [server_reply(message, Dhcp4MessageType.OFFER, yiaddr=offered[message.xid])]
        if message.message_type is Dhcp4MessageType.REQUEST:
            return [server_reply(message, Dhcp4MessageType.ACK, yiaddr=offered[message.xid])]
        if message.message_type is Dhcp4MessageType.DECLINE:
            declined.append(message)
        return []

    taken = {ipaddress.IPv4Address("10.0.0.50"): "02:00:00:00:00:99"}
    client = new_client(seed=9)
    sent, lease = simulate(client, server, 30.0, probe=taken.get)
    assert lease is not None and lease.address.ip == ipaddress.IPv4Address("10.0.0.51")
    assert sent == [Dhcp4MessageType.DISCOVER, Dhcp4MessageType.REQUEST, Dhcp4MessageType.DECLINE] * 1 + [
        Dhcp4MessageType.DISCOVER,
        Dhcp4MessageType.REQUEST,
    ]
    (decline,) = declined
    assert decline.options[Dhcp4Option.REQUESTED_IP] == ipaddress.IPv4Address("10.0.0.50").packed
    assert decline.options[Dhcp4Option.SERVER_ID] == SERVER.packed
    assert Dhcp4Option.PARAMETER_LIST not in decline.options and decline.ciaddr == ZERO4  # RFC 2131 table 5


def test_a_failed_send_is_not_counted():
    client = new_client()
    payload = client.start(0.0)
    client.send_failed(payload)
    assert client.discovers_sent == 0 and client.progress().startswith("selecting, 0 DISCOVER and 0 REQUEST sent")


# ---------------------------------------------------------------------------------------------------------------
# Lease values: an unusable lease is refused whole (above); a bad option is dropped and named


def lease_of(extra, *, yiaddr=OFFERED, mask=(255, 255, 255, 0), max_mtu=None) -> Dhcp4Lease:
    options = [(Dhcp4Option.SUBNET_MASK, bytes(mask))] if mask else []
    message = decode_message(
        encode_message(
            op=BOOTREPLY,
            xid=1,
            chaddr=MAC,
            yiaddr=yiaddr,
            options=[
                (Dhcp4Option.MESSAGE_TYPE, bytes((Dhcp4MessageType.ACK,))),
                (Dhcp4Option.SERVER_ID, SERVER.packed),
                *options,
                *extra,
            ],
        )
    )
    return Dhcp4Lease.from_ack(message, max_mtu=max_mtu)


def addresses(*texts: str) -> bytes:
    return b"".join(ipaddress.IPv4Address(t).packed for t in texts)


NL = b"\n"
DROPPED = [
    ("router-broadcast", [(3, addresses("255.255.255.255"))], "option 3 (router) 255.255.255.255 dropped: the limited"),
    ("router-multicast", [(3, addresses("224.0.0.1"))], "option 3 (router) 224.0.0.1 dropped: a multicast address"),
    ("router-ourselves", [(3, addresses("10.0.0.50"))], "option 3 (router) 10.0.0.50 dropped: our own address"),
    ("router-ragged", [(3, b"\x0a\x00\x00")], "option 3 (router) dropped: 3 bytes"),
    ("dns-zero", [(6, addresses("0.0.0.0"))], "option 6 (domain name server) 0.0.0.0 dropped: in 0.0.0.0/8"),
    ("dns-broadcast", [(6, addresses("255.255.255.255"))], "option 6 (domain name server) 255.255.255.255 dropped"),
    ("dns-multicast", [(6, addresses("239.1.2.3"))], "option 6 (domain name server) 239.1.2.3 dropped: a multicast"),
    ("dns-subnet-broadcast", [(6, addresses("10.0.0.255"))], "dropped: the broadcast address of 10.0.0.0/24"),
    ("broadcast-ourselves", [(28, addresses("10.0.0.50"))], "option 28 (broadcast address) 10.0.0.50 dropped: our own"),
    ("broadcast-elsewhere", [(28, addresses("10.0.1.255"))], "dropped: not the broadcast address of 10.0.0.0/24"),
    ("mtu-tiny", [(26, (67).to_bytes(2, "big"))], "option 26 (interface MTU) 67 dropped: less than 68"),
    ("mtu-huge", [(26, (65535).to_bytes(2, "big"))], "option 26 (interface MTU) 65535 dropped: more than the link's"),
    ("mtu-ragged", [(26, b"\x05")], "option 26 (interface MTU) dropped: 1 bytes, not 2"),
    ("hostname-newline", [(12, b"evil\nhost")], f"option 12 (host name) '{printable(b'evil' + NL + b'host')}' dropped"),
    ("domain-double-dot", [(15, b"a..b")], "option 15 (domain name) 'a..b' dropped: an empty label"),
    ("domain-255", [(15, b"a" * 63 + (b"." + b"b" * 63) * 3 + b".c")], "dropped: 257 characters, more than 253"),
    ("domain-escape", [(15, b"boot\x1b]0;pwned\x07.test")], "option 15 (domain name) 'boot\\x1b]0;pwned\\x07.test'"),
    ("domain-utf8", [(15, "bücher.test".encode())], "option 15 (domain name) 'b\u00fccher.test' dropped: not ASCII"),
]


@pytest.mark.parametrize(("extra", "warning"), [(e, w) for _, e, w in DROPPED], ids=[n for n, _, _ in DROPPED])
def test_a_bad_option_is_dropped_with_a_warning_naming_it(extra, warning):
    lease = lease_of(extra, max_mtu=1500)
    (text,) = lease.warnings
    assert warning in text and text.isprintable()
    assert lease.address == ipaddress.IPv4Interface("10.0.0.50/24")
    assert (lease.routers, lease.dns, lease.broadcast, lease.mtu, lease.hostname, lease.domain) == (
        (),
        (),
        None,
        None,
        None,
        None,
    )


def test_only_the_bad_entries_of_a_list_are_dropped():
    lease = lease_of([(3, addresses("255.255.255.255", "10.0.0.1")), (6, addresses("224.0.0.5", "10.0.0.53"))])
    assert lease.routers == (SERVER,) and lease.dns == (ipaddress.IPv4Address("10.0.0.53"),)
    assert len(lease.warnings) == 2


def test_a_32_lease_with_an_on_link_router_outside_it_stays_legal():
    """What clouds hand out: a /32 and a router beyond it (reached by a host route; RFC 3442 would carry it)."""
    lease = lease_of([(3, addresses("10.0.0.1"))], yiaddr=ipaddress.IPv4Address("10.0.5.9"), mask=(255,) * 4)
    assert lease.address == ipaddress.IPv4Interface("10.0.5.9/32") and lease.routers == (SERVER,)
    assert lease.warnings == ()


@pytest.mark.parametrize(("mtu", "max_mtu", "kept"), [(68, None, 68), (9000, 9000, 9000), (65535, None, 65535)])
def test_an_mtu_the_link_takes_is_kept(mtu, max_mtu, kept):
    assert lease_of([(26, mtu.to_bytes(2, "big"))], max_mtu=max_mtu).mtu == kept


ipv4s = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)


@settings(max_examples=500, deadline=None)
@given(
    yiaddr=ipv4s,
    prefix=st.integers(1, 32),
    routers=st.lists(ipv4s, max_size=3),
    dns=st.lists(ipv4s, max_size=3),
    broadcast=st.none() | ipv4s,
    mtu=st.none() | st.integers(0, 65535),
    max_mtu=st.none() | st.integers(68, 65535),
)
def test_a_lease_either_is_refused_naming_the_field_or_holds_only_usable_values(
    yiaddr, prefix, routers, dns, broadcast, mtu, max_mtu
):
    extra = [(3, addresses(*map(str, routers))), (6, addresses(*map(str, dns)))]
    if broadcast is not None:
        extra.append((28, broadcast.packed))
    if mtu is not None:
        extra.append((26, mtu.to_bytes(2, "big")))
    mask = ipaddress.IPv4Network(f"0.0.0.0/{prefix}").netmask.packed
    try:
        lease = lease_of([e for e in extra if e[1]], yiaddr=yiaddr, mask=mask, max_mtu=max_mtu)
    except DhcpPacketError as exc:
        assert exc.field == "yiaddr"
        return
    network = lease.address.network
    special = {network.network_address, network.broadcast_address} if prefix <= 30 else set()
    for host in (lease.address.ip, *lease.routers, *lease.dns):
        assert not (host.is_multicast or host.is_loopback or host.is_reserved or host.packed[0] == 0)
        assert host not in special
    assert lease.address.ip not in (*lease.routers, *lease.dns, SERVER)
    assert lease.broadcast in (None, ipaddress.IPv4Address("255.255.255.255"), network.broadcast_address)
    assert lease.mtu is None or 68 <= lease.mtu <= (max_mtu or 65535)
    assert all(w.isprintable() for w in lease.warnings)


# ---- option 17, the root path (netroot=dhcp) -------------------------------------------------------------------


def test_the_parameter_request_list_asks_for_the_root_path():
    client = new_client()
    assert Dhcp4Option.ROOT_PATH in options_of(client.start(1.0))[Dhcp4Option.PARAMETER_LIST]


def _lease_with_root_path(value: bytes) -> Dhcp4Lease:
    client = new_client()
    client.start(0.0)
    client.receive(reply(client, Dhcp4MessageType.OFFER), 0.1)
    extra = [(Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))), (Dhcp4Option.ROOT_PATH, value)]
    return bind(client, reply(client, Dhcp4MessageType.ACK, extra=extra)).lease


@pytest.mark.parametrize(
    ("value", "root_path"),
    [
        (b"iscsi:10.0.0.1::3260:1:iqn.2026-11.test:root", "iscsi:10.0.0.1::3260:1:iqn.2026-11.test:root"),
        (b"iscsi:[fd00::1]::3260:0:iqn.2026-11.test:root\0", "iscsi:[fd00::1]::3260:0:iqn.2026-11.test:root"),
        (b"10.0.0.1:/srv/nfsroot", "10.0.0.1:/srv/nfsroot"),  # not ours: the boot says so, the lease keeps it
    ],
)
def test_root_path_is_kept_as_sent(value, root_path):
    lease = _lease_with_root_path(value)
    assert (lease.root_path, lease.warnings) == (root_path, ())


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (b"", "empty"),
        (b"\0", "empty"),
        (b"iscsi:10.0.0.1::3260:1:iqn.x\x1b[2J", "control characters"),
        (b"iscsi:10.0.0.1::3260:1:iqn. x", "white space"),
        ("iscsi:10.0.0.1::3260:1:iqn.é".encode(), "beyond ASCII"),
        (b"iscsi:" + b"a" * 2000, "more than 1024"),
    ],
)
def test_hostile_root_path_is_dropped_with_an_escaped_warning(value, problem):
    lease = _lease_with_root_path(value)
    assert lease.root_path is None and lease.address == ipaddress.IPv4Interface("10.0.0.50/24")
    (warning,) = lease.warnings
    assert warning.startswith("option 17 (root path)") and problem in warning
    assert warning.isprintable() and "\x1b" not in warning and len(warning) < 200


@given(st.binary(max_size=300))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_root_path_bytes_give_printable_text_or_a_warning(value):
    lease = _lease_with_root_path(value)
    if lease.root_path is None:
        assert len(lease.warnings) == 1 and lease.warnings[0].isprintable()
    else:
        assert lease.root_path.isascii() and lease.root_path.isprintable() and " " not in lease.root_path


CHAP_SECRET = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=6, max_size=40)


def _shown_root_path(path: str) -> tuple[str, Dhcp4Lease]:
    """All a user could see of a root path: the warnings of its lease, and the `net --json` record holding it."""
    from boot.net.state import InterfaceState

    lease = _lease_with_root_path(path.encode())
    record = InterfaceState(name="eth0", mac=None, method="dhcp", root_path=lease.root_path).to_json()
    return " ".join(lease.warnings) + " " + str(record), lease


@given(secret=CHAP_SECRET, tail=st.sampled_from(["", "\x1b[2J", " x", "é", "a" * 1100]))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_root_path_never_shows_its_chap_secret(secret, tail):
    """option 17 may carry `iscsi:user:secret@...` (a secret may hold '@' or ':'): neither the warning of a dropped
    path nor the `net --json` record of a kept one (which the state file holds too) shows the secret."""
    path = "iscsi:user:{}@10.0.0.1::3260:1:iqn.2026-11.org.example:root" + tail
    shown, lease = _shown_root_path(path.format(secret))
    blank, _ = _shown_root_path(path.format("Z" * len(secret)))
    assume(secret not in blank)  # a secret that spells part of the message's own text tells nothing
    assert secret not in shown
    if lease.root_path is not None:
        assert lease.root_path == path.format(secret)  # kept whole for the login
        assert "***@10.0.0.1::3260:1:iqn.2026-11.org.example:root" in shown
