"""The sans-I/O DHCPv6 client: wire format, the state table, retransmission, and hostile servers' messages."""

from __future__ import annotations

import ipaddress
import itertools
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boot.net.dhcp6 import (
    REQ_MAX_RC,
    SOL_MAX_RT,
    Dhcp6Client,
    Dhcp6PacketError,
    Ignored,
    LeaseBound,
    MessageType,
    Option,
    SendPacket,
    State,
    Status,
    decode_message,
    decode_options,
    duid_ll,
    encode_message,
    encode_options,
)
from initiator.errors import ExitStatus

MAC = bytes.fromhex("525400123456")
SERVER_DUID = bytes.fromhex("000300015254000000ff")
ADDRESS = ipaddress.IPv6Address("2001:db8::150")
DNS = ipaddress.IPv6Address("2001:db8::53")


def iaaddr(address: ipaddress.IPv6Address = ADDRESS, preferred: int = 100, valid: int = 200, status: int | None = None):
    inner = [] if status is None else [(Option.STATUS_CODE, struct.pack("!H", status))]
    return (Option.IAADDR, address.packed + struct.pack("!II", preferred, valid) + encode_options(inner))


def ia_na(client: Dhcp6Client, *inner: tuple[int, bytes], iaid: int | None = None, t1: int = 50, t2: int = 80):
    head = struct.pack("!III", client.iaid if iaid is None else iaid, t1, t2)
    return (Option.IA_NA, head + encode_options(list(inner)))


def message(
    client: Dhcp6Client,
    kind: MessageType,
    *options: tuple[int, bytes],
    xid: int | None = None,
    client_id: bytes | None = None,
    server_id: bytes | None = SERVER_DUID,
) -> bytes:
    head: list[tuple[int, bytes]] = [(Option.CLIENTID, client.duid if client_id is None else client_id)]
    if server_id is not None:
        head.append((Option.SERVERID, server_id))
    body = list(options) if options else [ia_na(client, iaaddr())]
    return encode_message(kind, client.xid if xid is None else xid, head + body)


def started() -> Dhcp6Client:
    client = Dhcp6Client(MAC, rng=random.Random(7))
    client.start(0.0)
    return client


def requesting() -> Dhcp6Client:
    client = started()
    event = client.receive(message(client, MessageType.ADVERTISE), 0.3)
    assert isinstance(event, SendPacket)
    return client


def test_solicit_carries_our_duid_an_empty_ia_na_rapid_commit_and_the_options_we_want():
    client = Dhcp6Client(MAC, rng=random.Random(1))
    sent = decode_message(client.start(10.0))
    assert sent.type == MessageType.SOLICIT and sent.xid == client.xid
    assert sent.option(Option.CLIENTID) == duid_ll(MAC) == bytes.fromhex("00030001") + MAC
    assert sent.option(Option.RAPID_COMMIT) == b""
    assert sent.option(Option.ELAPSED_TIME) == b"\0\0"
    assert sent.option(Option.ORO) == struct.pack("!HH", Option.DNS_SERVERS, Option.DOMAIN_LIST)
    assert sent.option(Option.IA_NA) == struct.pack("!III", int.from_bytes(MAC[2:], "big"), 0, 0)
    assert sent.option(Option.SERVERID) is None
    assert client.state is State.SELECTING


def test_advertise_then_reply_binds_the_address_with_its_options():
    client = requesting()
    assert client.state is State.REQUESTING
    request_xid = client.xid
    reply = message(
        client,
        MessageType.REPLY,
        ia_na(client, iaaddr()),
        (Option.DNS_SERVERS, DNS.packed),
        (Option.DOMAIN_LIST, b"\x04boot\x04test\x00\x03lab\x00"),
    )
    event = client.receive(reply, 0.5)
    assert isinstance(event, LeaseBound)
    lease = event.lease
    assert (lease.address, lease.preferred_lifetime, lease.valid_lifetime, lease.t1, lease.t2) == (
        ADDRESS,
        100,
        200,
        50,
        80,
    )
    assert lease.server_id == SERVER_DUID and lease.dns == (DNS,) and lease.domains == ("boot.test", "lab")
    assert client.state is State.BOUND and client.next_timeout() == float("inf")
    assert request_xid != 0


def test_the_request_names_the_server_and_the_offered_address_in_a_new_transaction():
    client = started()
    solicit_xid = client.xid
    event = client.receive(message(client, MessageType.ADVERTISE), 0.25)
    assert isinstance(event, SendPacket)
    sent = decode_message(event.payload)
    assert sent.type == MessageType.REQUEST and sent.xid == client.xid != solicit_xid
    assert sent.option(Option.SERVERID) == SERVER_DUID
    assert sent.option(Option.IA_NA)[12:] == encode_options([(Option.IAADDR, ADDRESS.packed + bytes(8))])
    assert sent.option(Option.ELAPSED_TIME) == b"\0\0"  # a new exchange starts its own clock


def test_rapid_commit_reply_binds_while_selecting():
    client = started()
    reply = message(client, MessageType.REPLY, (Option.RAPID_COMMIT, b""), ia_na(client, iaaddr()))
    event = client.receive(reply, 0.2)
    assert isinstance(event, LeaseBound) and event.lease.address == ADDRESS


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda c: message(c, MessageType.ADVERTISE, xid=(c.xid + 1) & 0xFFFFFF), "another transaction"),
        (lambda c: message(c, MessageType.ADVERTISE, client_id=duid_ll(b"\x02" * 6)), "another client"),
        (lambda c: message(c, MessageType.ADVERTISE, server_id=None), "no server identifier"),
        (lambda c: message(c, MessageType.REPLY), "reply without rapid commit while selecting"),
        (
            lambda c: message(
                c, MessageType.ADVERTISE, (Option.STATUS_CODE, struct.pack("!H", Status.NO_ADDRS_AVAIL) + b"full")
            ),
            "NO_ADDRS_AVAIL: full",
        ),
        (lambda c: message(c, MessageType.ADVERTISE, ia_na(c, iaaddr(), iaid=1)), "no IA_NA for us in the message"),
        (lambda c: message(c, MessageType.ADVERTISE, ia_na(c)), "the IA_NA holds no usable address"),
        (lambda c: message(c, MessageType.ADVERTISE, ia_na(c, iaaddr(valid=0))), "the IA_NA holds no usable address"),
        (
            lambda c: message(c, MessageType.ADVERTISE, ia_na(c, iaaddr(preferred=9, valid=5))),
            "the IA_NA holds no usable address",
        ),
    ],
    ids=[
        "xid",
        "client",
        "no-server-id",
        "reply-no-rapid",
        "no-addrs",
        "other-iaid",
        "empty-ia",
        "valid-0",
        "pref>valid",
    ],
)
def test_unusable_messages_while_selecting_are_ignored_and_counted(build, reason):
    client = started()
    event = client.receive(build(client), 0.1)
    assert event == Ignored(reason)
    assert client.state is State.SELECTING and client.ignored == 1
    assert "1 message(s) ignored" in client.progress()


def test_reply_from_another_server_is_ignored_while_requesting():
    client = requesting()
    assert client.receive(message(client, MessageType.REPLY, server_id=b"\0\3other"), 0.6) == Ignored(
        "reply from another server"
    )
    assert client.state is State.REQUESTING


def test_a_refusing_reply_starts_over_with_a_new_solicit():
    client = requesting()
    xid = client.xid
    refusal = message(client, MessageType.REPLY, ia_na(client, (Option.STATUS_CODE, b"\0\4moved")))
    event = client.receive(refusal, 0.6)
    assert isinstance(event, SendPacket)
    assert decode_message(event.payload).type == MessageType.SOLICIT
    assert client.state is State.SELECTING and client.xid != xid
    assert "last refusal: reply: NOT_ON_LINK: moved" in client.progress()


def test_solicits_back_off_doubling_with_jitter_up_to_the_cap():
    client = Dhcp6Client(MAC, rng=random.Random(3))
    client.start(0.0)
    first = client.next_timeout()
    assert 1.0 < first <= 1.1  # RFC 8415: the first Solicit's RAND is strictly positive
    gaps, now = [], first
    for _ in range(8):
        sent = client.on_timeout(now)
        assert sent is not None and decode_message(sent).type == MessageType.SOLICIT
        gaps.append(client.next_timeout() - now)
        now = client.next_timeout()
    assert all(1.8 * a <= b <= 2.2 * a or b >= 0.9 * SOL_MAX_RT for a, b in itertools.pairwise(gaps))
    assert max(gaps) <= 1.1 * SOL_MAX_RT
    assert client.on_timeout(now - 0.01) is None  # not due yet
    elapsed = decode_message(client.on_timeout(now)).option(Option.ELAPSED_TIME)
    assert int.from_bytes(elapsed, "big") == round(now * 100)


def test_requests_give_up_after_req_max_rc_and_solicit_again():
    client = requesting()
    sent_types = []
    for _ in range(REQ_MAX_RC):
        sent_types.append(decode_message(client.on_timeout(client.next_timeout())).type)
    assert sent_types == [MessageType.REQUEST] * (REQ_MAX_RC - 1) + [MessageType.SOLICIT]
    assert client.state is State.SELECTING
    assert f"no Reply to {REQ_MAX_RC} Requests" in client.progress()


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"\x02\x00\x00", "message"),
        (b"\x02\x00\x00\x01\x00\x01", "options"),
        (b"\x02\x00\x00\x01\x00\x01\x00\x09abc", "options: option 1"),
    ],
)
def test_malformed_messages_name_the_field(raw, field):
    with pytest.raises(Dhcp6PacketError) as info:
        decode_message(raw)
    assert info.value.field == field
    assert info.value.exit_status == ExitStatus.NETWORK


@pytest.mark.parametrize(
    ("option", "field"),
    [
        ((Option.IA_NA, b"\0\0\0"), "IA_NA"),
        (("iaaddr-short", None), "IAADDR"),
        (("multicast", None), "IAADDR"),
    ],
)
def test_hostile_ia_contents_raise_and_leave_the_state(option, field):
    client = started()
    if option[0] == "iaaddr-short":
        body = ia_na(client, (Option.IAADDR, b"\0" * 10))
    elif option[0] == "multicast":
        body = ia_na(client, iaaddr(ipaddress.IPv6Address("ff02::1")))
    else:
        body = option
    with pytest.raises(Dhcp6PacketError) as info:
        client.receive(message(client, MessageType.ADVERTISE, body), 0.1)
    assert info.value.field == field
    assert client.state is State.SELECTING


def test_dns_option_of_a_wrong_length_is_refused():
    client = requesting()
    reply = message(client, MessageType.REPLY, ia_na(client, iaaddr()), (Option.DNS_SERVERS, b"\1" * 17))
    with pytest.raises(Dhcp6PacketError, match="DNS servers"):
        client.receive(reply, 0.6)


def test_options_round_trip():
    options = [(1, b"abc"), (23, DNS.packed), (14, b"")]
    assert decode_options(encode_options(options)) == options


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_give_an_event_or_a_packet_error(data, as_reply):
    client = requesting() if as_reply else started()
    # a random tail behind a valid header for us, and random bytes alone
    for payload in (data, message(client, MessageType.REPLY if as_reply else MessageType.ADVERTISE)[:4] + data):
        try:
            event = client.receive(payload, 1.0)
        except Dhcp6PacketError:
            continue
        assert isinstance(event, SendPacket | LeaseBound | Ignored)
