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
    DHCP6_TRANSITIONS,
    REQ_MAX_RC,
    RESTART_TIMEOUT,
    SOL_MAX_RT,
    Dhcp6Client,
    Dhcp6Event,
    Dhcp6MessageType,
    Dhcp6Option,
    Dhcp6PacketError,
    Dhcp6State,
    Dhcp6Status,
    Ignored,
    LeaseBound,
    SendPacket,
    decode_message,
    decode_options,
    duid_ll,
    encode_message,
    encode_options,
)
from boot.net.exchange import DhcpTransitionError, Noted
from boot.net.names import name_problem
from initiator.errors import ExitStatus

MAC = bytes.fromhex("525400123456")
SERVER_DUID = bytes.fromhex("000300015254000000ff")
ADDRESS = ipaddress.IPv6Address("2001:db8::150")
DNS = ipaddress.IPv6Address("2001:db8::53")


def iaaddr(address: ipaddress.IPv6Address = ADDRESS, preferred: int = 100, valid: int = 200, status: int | None = None):
    inner = [] if status is None else [(Dhcp6Option.STATUS_CODE, struct.pack("!H", status))]
    return (Dhcp6Option.IAADDR, address.packed + struct.pack("!II", preferred, valid) + encode_options(inner))


def ia_na(client: Dhcp6Client, *inner: tuple[int, bytes], iaid: int | None = None, t1: int = 50, t2: int = 80):
    head = struct.pack("!III", client.iaid if iaid is None else iaid, t1, t2)
    return (Dhcp6Option.IA_NA, head + encode_options(list(inner)))


def message(
    client: Dhcp6Client,
    kind: Dhcp6MessageType,
    *options: tuple[int, bytes],
    xid: int | None = None,
    client_id: bytes | None = None,
    server_id: bytes | None = SERVER_DUID,
) -> bytes:
    head: list[tuple[int, bytes]] = [(Dhcp6Option.CLIENTID, client.duid if client_id is None else client_id)]
    if server_id is not None:
        head.append((Dhcp6Option.SERVERID, server_id))
    body = list(options) if options else [ia_na(client, iaaddr())]
    return encode_message(kind, client.xid if xid is None else xid, head + body)


def started() -> Dhcp6Client:
    client = Dhcp6Client(MAC, rng=random.Random(7))
    client.start(0.0)
    return client


def requesting() -> Dhcp6Client:
    client = started()
    event = client.receive(message(client, Dhcp6MessageType.ADVERTISE), 0.3)
    assert isinstance(event, SendPacket)
    return client


def test_solicit_carries_our_duid_an_empty_ia_na_rapid_commit_and_the_options_we_want():
    client = Dhcp6Client(MAC, rng=random.Random(1))
    sent = decode_message(client.start(10.0))
    assert sent.type == Dhcp6MessageType.SOLICIT and sent.xid == client.xid
    assert sent.option(Dhcp6Option.CLIENTID) == duid_ll(MAC) == bytes.fromhex("00030001") + MAC
    assert sent.option(Dhcp6Option.RAPID_COMMIT) == b""
    assert sent.option(Dhcp6Option.ELAPSED_TIME) == b"\0\0"
    assert sent.option(Dhcp6Option.ORO) == struct.pack("!HH", Dhcp6Option.DNS_SERVERS, Dhcp6Option.DOMAIN_LIST)
    assert sent.option(Dhcp6Option.IA_NA) == struct.pack("!III", int.from_bytes(MAC[2:], "big"), 0, 0)
    assert sent.option(Dhcp6Option.SERVERID) is None
    assert client.state is Dhcp6State.SELECTING


def test_advertise_then_reply_binds_the_address_with_its_options():
    client = requesting()
    assert client.state is Dhcp6State.REQUESTING
    request_xid = client.xid
    reply = message(
        client,
        Dhcp6MessageType.REPLY,
        ia_na(client, iaaddr()),
        (Dhcp6Option.DNS_SERVERS, DNS.packed),
        (Dhcp6Option.DOMAIN_LIST, b"\x04boot\x04test\x00\x03lab\x00"),
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
    assert client.state is Dhcp6State.BOUND and client.next_timeout() == float("inf")
    assert request_xid != 0


def test_the_request_names_the_server_and_the_offered_address_in_a_new_transaction():
    client = started()
    solicit_xid = client.xid
    event = client.receive(message(client, Dhcp6MessageType.ADVERTISE), 0.25)
    assert isinstance(event, SendPacket)
    sent = decode_message(event.payload)
    assert sent.type == Dhcp6MessageType.REQUEST and sent.xid == client.xid != solicit_xid
    assert sent.option(Dhcp6Option.SERVERID) == SERVER_DUID
    assert sent.option(Dhcp6Option.IA_NA)[12:] == encode_options([(Dhcp6Option.IAADDR, ADDRESS.packed + bytes(8))])
    assert sent.option(Dhcp6Option.ELAPSED_TIME) == b"\0\0"  # a new exchange starts its own clock


def test_rapid_commit_reply_binds_while_selecting():
    client = started()
    reply = message(client, Dhcp6MessageType.REPLY, (Dhcp6Option.RAPID_COMMIT, b""), ia_na(client, iaaddr()))
    event = client.receive(reply, 0.2)
    assert isinstance(event, LeaseBound) and event.lease.address == ADDRESS


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda c: message(c, Dhcp6MessageType.ADVERTISE, xid=(c.xid + 1) & 0xFFFFFF), "another transaction"),
        (lambda c: message(c, Dhcp6MessageType.ADVERTISE, client_id=duid_ll(b"\x02" * 6)), "another client"),
        (lambda c: message(c, Dhcp6MessageType.ADVERTISE, server_id=None), "no server identifier"),
        (lambda c: message(c, Dhcp6MessageType.REPLY), "reply without rapid commit while selecting"),
        (
            lambda c: message(
                c,
                Dhcp6MessageType.ADVERTISE,
                (Dhcp6Option.STATUS_CODE, struct.pack("!H", Dhcp6Status.NO_ADDRS_AVAIL) + b"full"),
            ),
            "NO_ADDRS_AVAIL: full",
        ),
        (
            lambda c: message(c, Dhcp6MessageType.ADVERTISE, ia_na(c, iaaddr(), iaid=1)),
            "no IA_NA for us in the message",
        ),
        (lambda c: message(c, Dhcp6MessageType.ADVERTISE, ia_na(c)), "the IA_NA holds no usable address"),
        (
            lambda c: message(c, Dhcp6MessageType.ADVERTISE, ia_na(c, iaaddr(valid=0))),
            "the IA_NA holds no usable address",
        ),
        (
            lambda c: message(c, Dhcp6MessageType.ADVERTISE, ia_na(c, iaaddr(preferred=9, valid=5))),
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
    assert client.state is Dhcp6State.SELECTING and client.ignored == 1
    assert "1 message(s) ignored" in client.progress()


def test_reply_from_another_server_is_ignored_while_requesting():
    client = requesting()
    assert client.receive(message(client, Dhcp6MessageType.REPLY, server_id=b"\0\3other"), 0.6) == Ignored(
        "reply from another server"
    )
    assert client.state is Dhcp6State.REQUESTING


def test_a_refusing_reply_starts_over_with_a_new_solicit_after_a_backoff():
    client = requesting()
    xid = client.xid
    refusal = message(client, Dhcp6MessageType.REPLY, ia_na(client, (Dhcp6Option.STATUS_CODE, b"\0\4moved")))
    event = client.receive(refusal, 0.6)
    assert isinstance(event, Noted) and event.reason.startswith("reply: NOT_ON_LINK: moved; Solicit again in")
    assert client.state is Dhcp6State.RESTARTING
    assert 0.6 + 0.9 <= client.next_timeout() <= 0.6 + 1.1  # RESTART_TIMEOUT with RAND
    assert client.on_timeout(client.next_timeout() - 0.01) is None
    sent = decode_message(client.on_timeout(client.next_timeout()))
    assert sent.type == Dhcp6MessageType.SOLICIT
    assert client.state is Dhcp6State.SELECTING and client.xid != xid
    assert "last refusal: reply: NOT_ON_LINK: moved" in client.progress()


def test_solicits_back_off_doubling_with_jitter_up_to_the_cap():
    client = Dhcp6Client(MAC, rng=random.Random(3))
    client.start(0.0)
    first = client.next_timeout()
    assert 1.0 < first <= 1.1  # RFC 8415: the first Solicit's RAND is strictly positive
    gaps, now = [], first
    for _ in range(8):
        sent = client.on_timeout(now)
        assert sent is not None and decode_message(sent).type == Dhcp6MessageType.SOLICIT
        gaps.append(client.next_timeout() - now)
        now = client.next_timeout()
    assert all(1.8 * a <= b <= 2.2 * a or b >= 0.9 * SOL_MAX_RT for a, b in itertools.pairwise(gaps))
    assert max(gaps) <= 1.1 * SOL_MAX_RT
    assert client.on_timeout(now - 0.01) is None  # not due yet
    elapsed = decode_message(client.on_timeout(now)).option(Dhcp6Option.ELAPSED_TIME)
    assert int.from_bytes(elapsed, "big") == round(now * 100)


def test_requests_give_up_after_req_max_rc_and_solicit_again():
    client = requesting()
    sent_types = []
    for _ in range(REQ_MAX_RC):
        sent_types.append(decode_message(client.on_timeout(client.next_timeout())).type)
    assert sent_types == [Dhcp6MessageType.REQUEST] * (REQ_MAX_RC - 1) + [Dhcp6MessageType.SOLICIT]
    assert client.state is Dhcp6State.SELECTING
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
        ((Dhcp6Option.IA_NA, b"\0\0\0"), "IA_NA"),
        (("iaaddr-short", None), "IAADDR"),
    ],
)
def test_hostile_ia_contents_raise_and_leave_the_state(option, field):
    client = started()
    body = ia_na(client, (Dhcp6Option.IAADDR, b"\0" * 10)) if option[0] == "iaaddr-short" else option
    with pytest.raises(Dhcp6PacketError) as info:
        client.receive(message(client, Dhcp6MessageType.ADVERTISE, body), 0.1)
    assert info.value.field == field
    assert client.state is Dhcp6State.SELECTING


UNUSABLE = [
    ("v4-mapped", "::ffff:10.0.0.1", "an IPv4-mapped address"),
    ("v4-compatible", "::10.0.0.1", "an IPv4-compatible address (deprecated)"),
    ("link-local", "fe80::5", "a link-local address"),
    ("multicast", "ff02::1", "a multicast address"),
    ("loopback", "::1", "the loopback address"),
    ("unspecified", "::", "the unspecified address"),
]


@pytest.mark.parametrize(("address", "problem"), [(a, p) for _, a, p in UNUSABLE], ids=[n for n, _, _ in UNUSABLE])
def test_an_advertise_of_an_unusable_address_is_ignored_naming_it(address, problem):
    client = started()
    advertise = message(client, Dhcp6MessageType.ADVERTISE, ia_na(client, iaaddr(ipaddress.IPv6Address(address))))
    reason = f"the IA_NA holds no usable address (IAADDR {ipaddress.IPv6Address(address)}: {problem})"
    assert client.receive(advertise, 0.1) == Ignored(reason)
    assert client.state is Dhcp6State.SELECTING


@pytest.mark.parametrize(("address", "problem"), [(a, p) for _, a, p in UNUSABLE], ids=[n for n, _, _ in UNUSABLE])
def test_a_reply_of_an_unusable_address_is_a_refusal(address, problem):
    client = requesting()
    reply = message(client, Dhcp6MessageType.REPLY, ia_na(client, iaaddr(ipaddress.IPv6Address(address))))
    assert isinstance(client.receive(reply, 0.5), Noted)
    assert client.state is Dhcp6State.RESTARTING and problem in client.progress()


def test_the_next_usable_address_of_the_ia_is_taken():
    client = requesting()
    body = ia_na(client, iaaddr(ipaddress.IPv6Address("::ffff:10.0.0.1")), iaaddr())
    assert client.receive(message(client, Dhcp6MessageType.REPLY, body), 0.5).lease.address == ADDRESS


@pytest.mark.parametrize(("t1", "t2", "kept"), [(90, 80, False), (80, 80, True), (90, 0, True), (0, 80, True)])
def test_an_ia_na_with_t1_greater_than_t2_is_discarded(t1, t2, kept):
    """RFC 8415 21.4: both non-zero and T1 > T2: the IA_NA is discarded, the rest of the message read."""
    client = started()
    event = client.receive(message(client, Dhcp6MessageType.ADVERTISE, ia_na(client, iaaddr(), t1=t1, t2=t2)), 0.1)
    assert isinstance(event, SendPacket) is kept
    if not kept:
        assert event == Ignored(f"the IA_NA was discarded: T1 {t1} is greater than T2 {t2}")


def test_a_good_ia_na_after_a_discarded_one_is_taken():
    client = requesting()
    body = [ia_na(client, iaaddr(ipaddress.IPv6Address("2001:db8::99")), t1=9, t2=5), ia_na(client, iaaddr())]
    event = client.receive(message(client, Dhcp6MessageType.REPLY, *body), 0.5)
    assert isinstance(event, LeaseBound) and (event.lease.address, event.lease.t1) == (ADDRESS, 50)


def bound_with(*options: tuple[int, bytes]):
    client = requesting()
    event = client.receive(message(client, Dhcp6MessageType.REPLY, ia_na(client, iaaddr()), *options), 0.6)
    assert isinstance(event, LeaseBound)
    return event.lease


def names(*labels_of_names: tuple[bytes, ...]) -> bytes:
    return b"".join(b"".join(bytes((len(label),)) + label for label in labels) + b"\0" for labels in labels_of_names)


BAD_OPTIONS = [
    ("dns-ragged", (Dhcp6Option.DNS_SERVERS, b"\1" * 17), "option 23 (DNS servers) dropped: 17 bytes"),
    ("dns-multicast", (Dhcp6Option.DNS_SERVERS, ipaddress.IPv6Address("ff02::1").packed), "ff02::1 dropped"),
    (
        "domain-escape",
        (Dhcp6Option.DOMAIN_LIST, names((b"boot\x1b[31m", b"test"))),
        "option 24 (domain search list) 'boot\\x1b[31m.test' dropped: label 'boot\\x1b[31m'",
    ),
    ("domain-long-label", (Dhcp6Option.DOMAIN_LIST, b"\x40" + b"a" * 64 + b"\0"), "label length 64 runs past"),
    ("domain-cut", (Dhcp6Option.DOMAIN_LIST, b"\x09short"), "label length 9 runs past the option"),
    ("domain-unterminated", (Dhcp6Option.DOMAIN_LIST, b"\x04boot"), "no terminating zero-length label"),
    (
        "domain-too-long",
        (Dhcp6Option.DOMAIN_LIST, names((b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 63))),
        "255 characters, more than 253",
    ),
]


@pytest.mark.parametrize(("option", "warning"), [(o, w) for _, o, w in BAD_OPTIONS], ids=[n for n, _, _ in BAD_OPTIONS])
def test_a_bad_configuration_option_is_dropped_with_a_warning(option, warning):
    lease = bound_with(option)
    (text,) = lease.warnings
    assert warning in text and text.isprintable()
    assert (lease.dns, lease.domains) == ((), ())


def test_good_names_survive_beside_a_bad_one():
    lease = bound_with((Dhcp6Option.DOMAIN_LIST, names((b"boot", b"test"), (b"under_score", b"test"), (b"lab",))))
    assert lease.domains == ("boot.test", "lab") and len(lease.warnings) == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_domain_list_gives_names_that_are_names_and_printable_warnings(raw):
    lease = bound_with((Dhcp6Option.DOMAIN_LIST, raw))
    assert all(name_problem(name) is None for name in lease.domains)
    assert all(warning.isprintable() for warning in lease.warnings)


@settings(max_examples=300, deadline=None)
@given(code=st.integers(1, 6), text=st.binary(max_size=200))
def test_whatever_a_status_message_says_the_progress_is_one_printable_line(code, text):
    client = requesting()
    refusal = message(client, Dhcp6MessageType.REPLY, (Dhcp6Option.STATUS_CODE, struct.pack("!H", code) + text))
    client.receive(refusal, 0.6)
    assert client.state is Dhcp6State.RESTARTING
    assert client.progress().isprintable()


def test_the_status_message_is_escaped():
    client = requesting()
    text = b"full\x1b]0;owned\x07\x00"
    client.receive(message(client, Dhcp6MessageType.REPLY, (Dhcp6Option.STATUS_CODE, b"\0\1" + text)), 0.6)
    assert "last refusal: reply: UNSPEC_FAIL: full\\x1b]0;owned\\x07\\x00" in client.progress()


def test_options_round_trip():
    options = [(1, b"abc"), (23, DNS.packed), (14, b"")]
    assert decode_options(encode_options(options)) == options


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.booleans())
def test_random_bytes_give_an_event_or_a_packet_error(data, as_reply):
    client = requesting() if as_reply else started()
    # a random tail behind a valid header for us, and random bytes alone
    for payload in (
        data,
        message(client, Dhcp6MessageType.REPLY if as_reply else Dhcp6MessageType.ADVERTISE)[:4] + data,
    ):
        try:
            event = client.receive(payload, 1.0)
        except Dhcp6PacketError:
            continue
        assert isinstance(event, SendPacket | LeaseBound | Ignored | Noted)


# ---- the transition table: every row walked through the public calls, every missing pair refused -------------


def in_state(state: Dhcp6State) -> Dhcp6Client:
    """A client brought to `state` the way a real exchange brings it there."""
    if state is Dhcp6State.INIT:
        return Dhcp6Client(MAC, rng=random.Random(7))
    client = started() if state is Dhcp6State.SELECTING else requesting()
    if state is Dhcp6State.BOUND:
        client.receive(message(client, Dhcp6MessageType.REPLY), 0.5)
    if state is Dhcp6State.RESTARTING:
        client.receive(reply_to(client, ia_na(client, REFUSING_IA)), 0.5)
    assert client.state is state
    return client


def reply_to(client: Dhcp6Client, ia: tuple[int, bytes]) -> bytes:
    rapid = [(Dhcp6Option.RAPID_COMMIT, b"")] if client.state is Dhcp6State.SELECTING else []
    return message(client, Dhcp6MessageType.REPLY, *rapid, ia)


def _exhaust_requests(client: Dhcp6Client) -> bytes | None:
    for _ in range(REQ_MAX_RC - 1):
        assert decode_message(client.on_timeout(client.next_timeout())).type == Dhcp6MessageType.REQUEST
    return client.on_timeout(client.next_timeout())


REFUSING_IA = (Dhcp6Option.STATUS_CODE, struct.pack("!H", Dhcp6Status.NO_ADDRS_AVAIL))
TRIGGER = {
    Dhcp6Event.START: lambda c: c.start(0.0),
    Dhcp6Event.ADVERTISE: lambda c: c.receive(message(c, Dhcp6MessageType.ADVERTISE), 0.5),
    Dhcp6Event.REPLY_BOUND: lambda c: c.receive(reply_to(c, ia_na(c, iaaddr())), 0.5),
    Dhcp6Event.REPLY_REFUSED: lambda c: c.receive(reply_to(c, ia_na(c, REFUSING_IA)), 0.5),
    Dhcp6Event.RETRANSMIT: lambda c: c.on_timeout(c.next_timeout()),
    Dhcp6Event.REQUESTS_EXHAUSTED: _exhaust_requests,
    Dhcp6Event.BACKOFF_OVER: lambda c: c.on_timeout(c.next_timeout()),
}

# What each row sends (None: it binds), and whether it starts a new transaction.
SENDS = {
    (Dhcp6State.INIT, Dhcp6Event.START): (Dhcp6MessageType.SOLICIT, True),
    (Dhcp6State.SELECTING, Dhcp6Event.RETRANSMIT): (Dhcp6MessageType.SOLICIT, False),
    (Dhcp6State.SELECTING, Dhcp6Event.ADVERTISE): (Dhcp6MessageType.REQUEST, True),
    (Dhcp6State.SELECTING, Dhcp6Event.REPLY_BOUND): (None, False),
    (Dhcp6State.SELECTING, Dhcp6Event.REPLY_REFUSED): (Noted, False),
    (Dhcp6State.REQUESTING, Dhcp6Event.RETRANSMIT): (Dhcp6MessageType.REQUEST, False),
    (Dhcp6State.REQUESTING, Dhcp6Event.REQUESTS_EXHAUSTED): (Dhcp6MessageType.SOLICIT, True),
    (Dhcp6State.REQUESTING, Dhcp6Event.REPLY_BOUND): (None, False),
    (Dhcp6State.REQUESTING, Dhcp6Event.REPLY_REFUSED): (Noted, False),
    (Dhcp6State.RESTARTING, Dhcp6Event.BACKOFF_OVER): (Dhcp6MessageType.SOLICIT, True),
}


def test_every_row_has_its_expected_output():
    assert set(SENDS) == set(DHCP6_TRANSITIONS)


@pytest.mark.parametrize(
    ("row", "after"), list(DHCP6_TRANSITIONS.items()), ids=[f"{s.name}-{e.name}" for s, e in DHCP6_TRANSITIONS]
)
def test_every_row_of_the_table_moves_the_client_and_sends_what_it_says(row, after):
    before, event = row
    client = in_state(before)
    xid = client.xid
    result = TRIGGER[event](client)
    assert client.state is after
    kind, new_xid = SENDS[row]
    if kind is None:
        assert isinstance(result, LeaseBound) and result.lease.address == ADDRESS
        return
    if kind is Noted:
        assert isinstance(result, Noted) and client.next_timeout() > 0.5
        return
    payload = result.payload if isinstance(result, SendPacket) else result
    assert decode_message(payload).type == kind
    assert (client.xid != xid) is new_xid


MISSING = [(s, e) for s in Dhcp6State for e in Dhcp6Event if (s, e) not in DHCP6_TRANSITIONS]


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
    "state", [s for s in Dhcp6State if (s, Dhcp6Event.START) not in DHCP6_TRANSITIONS], ids=lambda s: s.name
)
def test_start_out_of_turn_raises(state):
    client = in_state(state)
    xid = client.xid
    with pytest.raises(DhcpTransitionError, match=f"START is not allowed in state {state.name}"):
        client.start(1.0)
    assert (client.state, client.xid) == (state, xid)


MESSAGE_EVENTS = {
    Dhcp6Event.ADVERTISE: "message type 2 while {}",
    Dhcp6Event.REPLY_BOUND: "reply while {}",
    Dhcp6Event.REPLY_REFUSED: "reply while {}",
}
MISSING_MESSAGES = [(s, e) for s, e in MISSING if e in MESSAGE_EVENTS]


@pytest.mark.parametrize(("state", "event"), MISSING_MESSAGES, ids=[f"{s.name}-{e.name}" for s, e in MISSING_MESSAGES])
def test_a_message_with_no_row_in_this_state_is_ignored(state, event):
    client = in_state(state)
    assert TRIGGER[event](client) == Ignored(MESSAGE_EVENTS[event].format(state.value))
    assert client.state is state


TIMED = {Dhcp6Event.RETRANSMIT, Dhcp6Event.REQUESTS_EXHAUSTED, Dhcp6Event.BACKOFF_OVER}


@pytest.mark.parametrize(
    "state", [s for s in Dhcp6State if not any((s, e) in DHCP6_TRANSITIONS for e in TIMED)], ids=lambda s: s.name
)
def test_nothing_is_due_where_the_table_has_no_timed_row(state):
    client = in_state(state)
    assert client.on_timeout(1e9) is None
    assert client.state is state


class RecordingClient(Dhcp6Client):
    """Notes every event the client puts through its table."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[Dhcp6Event] = []

    def _advance(self, event: Dhcp6Event) -> None:
        self.events.append(event)
        super()._advance(event)


ACTIONS = ["timeout", "advertise", "reply", "rapid-reply", "refusing-reply", "other-server", "other-xid", "garbage"]


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(st.sampled_from(ACTIONS), max_size=25), seed=st.integers(0, 2**16))
def test_every_state_change_is_a_row_of_the_table(actions, seed):
    client = RecordingClient(MAC, rng=random.Random(seed))
    client.start(0.0)
    now = 0.0
    build = {
        "advertise": lambda c: message(c, Dhcp6MessageType.ADVERTISE),
        "reply": lambda c: message(c, Dhcp6MessageType.REPLY),
        "rapid-reply": lambda c: message(
            c, Dhcp6MessageType.REPLY, (Dhcp6Option.RAPID_COMMIT, b""), ia_na(c, iaaddr())
        ),
        "refusing-reply": lambda c: reply_to(c, ia_na(c, REFUSING_IA)),
        "other-server": lambda c: message(c, Dhcp6MessageType.REPLY, server_id=b"\0\3other"),
        "other-xid": lambda c: message(c, Dhcp6MessageType.ADVERTISE, xid=(c.xid + 1) & 0xFFFFFF),
        "garbage": lambda c: message(c, Dhcp6MessageType.ADVERTISE)[:9],
    }
    for action in actions:
        before = client.state
        client.events.clear()
        now += 1.0
        try:
            if action == "timeout":
                now = max(now, client.next_timeout())
                client.on_timeout(now)
            else:
                client.receive(build[action](client), now)
        except Dhcp6PacketError:
            pass
        state = before
        for event in client.events:
            state = DHCP6_TRANSITIONS[(state, event)]
        assert client.state is state
        assert len(client.events) <= 1


# ---- whole exchanges against servers that refuse everything, time jumping from one timeout to the next --------


def simulate(client: Dhcp6Client, answer, seconds: float):
    """Drive `client` as boot.net.exchange does, each message answered at once by `answer(client, message)`.
    Returns the types sent, in order."""
    now = 0.0
    outbox = [client.start(now)]
    sent = []
    while True:
        while outbox:
            sent_message = decode_message(outbox.pop(0))
            sent.append(sent_message.type)
            for payload in answer(client, sent_message):
                event = client.receive(payload, now)
                if isinstance(event, SendPacket):
                    outbox.append(event.payload)
                assert not isinstance(event, LeaseBound)
        now = client.next_timeout()
        if now > seconds:
            return sent
        payload = client.on_timeout(now)
        if payload is not None:
            outbox.append(payload)


def unspec_fail(client, sent):
    """Advertises an address, then fails every Request (the status message as a hostile server writes it)."""
    if sent.type == Dhcp6MessageType.SOLICIT:
        return [message(client, Dhcp6MessageType.ADVERTISE)]
    refusal = (Dhcp6Option.STATUS_CODE, struct.pack("!H", Dhcp6Status.UNSPEC_FAIL) + b"sorry\x1b[2J\x07")
    return [message(client, Dhcp6MessageType.REPLY, refusal)]


def no_addrs_rapid(client, sent):
    """Answers every Solicit at once with a Rapid Commit Reply that has no address for us."""
    refusal = ia_na(client, (Dhcp6Option.STATUS_CODE, struct.pack("!H", Dhcp6Status.NO_ADDRS_AVAIL)))
    return [message(client, Dhcp6MessageType.REPLY, (Dhcp6Option.RAPID_COMMIT, b""), refusal)]


@pytest.mark.parametrize("server", [unspec_fail, no_addrs_rapid], ids=["unspec-fail", "no-addrs-rapid-commit"])
def test_a_server_that_refuses_everything_gets_a_handful_of_messages_and_the_count_is_true(server):
    client = Dhcp6Client(MAC, rng=random.Random(11))
    sent = simulate(client, server, 5.0)
    assert len(sent) <= 6  # was ~10,300 Solicit+Request pairs in 5 s
    solicits, requests = sent.count(Dhcp6MessageType.SOLICIT), sent.count(Dhcp6MessageType.REQUEST)
    assert solicits >= 2
    assert f"after {solicits} Solicit(s) and {requests} Request(s) in all" in client.progress()


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), seconds=st.floats(1.0, 200.0))
def test_solicits_after_refusals_back_off_as_rfc_8415_section_15_says(seed, seconds):
    client = Dhcp6Client(MAC, rng=random.Random(seed))
    times = []
    real = client._encode_solicit

    def noting(now):
        times.append(now)
        return real(now)

    client._encode_solicit = noting
    simulate(client, no_addrs_rapid, seconds)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0.9 * RESTART_TIMEOUT <= gap <= 1.1 * SOL_MAX_RT for gap in gaps)
    for a, b in itertools.pairwise(gaps):
        assert b >= 1.8 * a or b >= 0.9 * SOL_MAX_RT


def test_a_failed_send_is_not_counted():
    client = Dhcp6Client(MAC, rng=random.Random(1))
    client.send_failed(client.start(0.0))
    assert "after 0 Solicit(s) and 0 Request(s) in all" in client.progress()
