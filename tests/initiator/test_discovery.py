from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import client, scsi
from initiator import pdu as P
from initiator.deadline import Deadline, FakeClock
from initiator.discovery import (
    CHECK_EVERY,
    MAX_RESPONSE_BYTES,
    SEND_TARGETS_ALL,
    DiscoveredPortal,
    DiscoveredTarget,
    SendTargets,
    parse_send_targets,
)
from initiator.errors import (
    ExitStatus,
    IscsiError,
    LocalProtocolError,
    PyiscsiError,
    RemoteProtocolError,
    RemoteValueError,
    WaitTimeout,
)
from initiator.portal import Portal
from initiator.session import Session, TextReply
from tests.initiator.scripted_target import Script, scripted_portal

HERE = Portal("192.0.2.1", 3260)
T1 = "iqn.2001-04.com.example:disk1"
T2 = "iqn.2001-04.com.example:disk2"


def _kv(*pairs: str) -> bytes:
    return b"".join(p.encode() + b"\x00" for p in pairs)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", []),
        (
            _kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:3260,1"),
            [DiscoveredTarget(T1, (DiscoveredPortal("10.0.0.1", 3260, 1),))],
        ),
        (
            _kv(
                f"TargetName={T1}",
                "TargetAddress=10.0.0.1:3260,1",
                "TargetAddress=[fec0::2]:3261,2",
                "TargetAddress=[fe80::1%eth0],3",
                f"TargetName={T2}",
                "TargetAddress=storage.example.com,1",
            ),
            [
                DiscoveredTarget(
                    T1,
                    (
                        DiscoveredPortal("10.0.0.1", 3260, 1),
                        DiscoveredPortal("fec0::2", 3261, 2),
                        DiscoveredPortal("fe80::1%eth0", 3260, 3),
                    ),
                ),
                DiscoveredTarget(T2, (DiscoveredPortal("storage.example.com", 3260, 1),)),
            ],
        ),
        # No address: the discovery portal, tag unknown.
        (_kv(f"TargetName={T1}"), [DiscoveredTarget(T1, (DiscoveredPortal("192.0.2.1", 3260, None),))]),
        # Address without a tag; alias and unknown keys ignored; repeats merged.
        (
            _kv(
                f"TargetName={T1}",
                "TargetAlias=disk",
                "TargetAddress=10.0.0.1",
                "X-vendor=1",
                f"TargetName={T1}",
                "TargetAddress=10.0.0.1",
            ),
            [DiscoveredTarget(T1, (DiscoveredPortal("10.0.0.1", 3260, None),))],
        ),
    ],
)
def test_parse(data: bytes, expected: list[DiscoveredTarget]) -> None:
    assert parse_send_targets(data, HERE) == expected


def test_lines_as_iscsiadm_prints_them() -> None:
    t = DiscoveredTarget(
        T1,
        (DiscoveredPortal("10.0.0.1", 3260, 1), DiscoveredPortal("fec0::2", 3260, 1), DiscoveredPortal("h", 1, None)),
    )
    assert t.lines() == [f"10.0.0.1:3260,1 {T1}", f"[fec0::2]:3260,1 {T1}", f"h:1,-1 {T1}"]


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_kv("TargetAddress=10.0.0.1:3260,1"), "before any TargetName"),
        (_kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:3260,x"), "portal group tag 'x'"),
        (_kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:3260,70000"), "portal group tag"),
        (_kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:99999,1"), r"port '99999' .* \(got '10.0.0.1:99999,1'\)"),
        (_kv(f"TargetName={T1}", "TargetAddress=[::1:3260,1"), "closing"),
        (_kv("TargetName="), "TargetName '' is not"),
        (_kv("TargetName=" + "x" * 224), "is not 1..223"),
        (_kv("TargetName=" + "x" * 300), "exceeds 255"),
        (_kv("garbage"), "has no '='"),
        (b"TargetName=x", "not NUL-terminated"),
        (b"TargetName=\xff\x00", "not UTF-8"),
    ],
)
def test_hostile_answers(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        parse_send_targets(data, HERE)


def test_target_rejects_sendtargets() -> None:
    with pytest.raises(IscsiError, match="SendTargets=Reject"):
        parse_send_targets(_kv("SendTargets=Reject"), HERE)


def _exchange(**kw) -> tuple[Session, SendTargets, P.TextRequest]:
    session = Session(cmdsn=1, exp_statsn=5, max_cmdsn=10)
    st = SendTargets(session, HERE, **kw)
    return session, st, st.start()


def _reply(
    session: Session, request: P.TextRequest, data: bytes, *, final: bool, ttt: int = P.RESERVED_TAG, statsn: int = 5
) -> TextReply:
    [reply] = session.receive(
        P.TextResponse(
            itt=request.itt,
            final=final,
            cont=not final,
            ttt=ttt,
            statsn=statsn,
            exp_cmdsn=request.cmdsn + 1,
            max_cmdsn=20,
            data=data,
        )
    )
    return reply


def test_exchange_joins_parts_cut_mid_key() -> None:
    session, st, request = _exchange()
    assert request.data == SEND_TARGETS_ALL and request.ttt == P.RESERVED_TAG
    whole = _kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:3260,1")
    more = st.receive(_reply(session, request, whole[:17], final=False, ttt=0x99))
    assert more is not None and (more.ttt, more.data, more.cmdsn, more.exp_statsn) == (0x99, b"", 2, 6)
    assert not st.done
    with pytest.raises(LocalProtocolError):
        st.targets()
    assert st.receive(_reply(session, more, whole[17:], final=True, statsn=6)) is None
    assert st.targets() == [DiscoveredTarget(T1, (DiscoveredPortal("10.0.0.1", 3260, 1),))]


def test_exchange_bounded_in_bytes_and_rounds() -> None:
    session, st, request = _exchange(max_bytes=10)
    with pytest.raises(RemoteProtocolError, match="exceeds 10 bytes"):
        st.receive(_reply(session, request, b"x" * 11, final=True))
    session, st, request = _exchange(max_rounds=3)
    for n in range(2):
        request = st.receive(_reply(session, request, b"", final=False, ttt=1, statsn=5 + n))
    with pytest.raises(RemoteProtocolError, match="not final after 3"):
        st.receive(_reply(session, request, b"", final=False, ttt=1, statsn=7))


def test_not_final_without_ttt() -> None:
    session, st, request = _exchange()
    with pytest.raises(RemoteProtocolError, match="Target Transfer Tag"):
        st.receive(_reply(session, request, b"", final=False, ttt=P.RESERVED_TAG))


def test_reply_for_another_exchange() -> None:
    _, st, request = _exchange()
    with pytest.raises(RemoteProtocolError, match="ours is"):
        st.receive(TextReply(request.itt + 1, b"", True, False, P.RESERVED_TAG))


_PIECES = st.sampled_from(
    [
        b"TargetName=iqn.2000-01.com.x:y\x00",
        b"TargetAddress=",
        b"10.0.0.1",
        b":3260",
        b",1",
        b"[::1]",
        b"\x00",
        b"=",
        b",",
        b"[",
        b"]",
        b":",
        b"\xff",
        b"SendTargets=Reject\x00",
        b"X-a=b\x00",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map(b"".join) | st.binary(max_size=100))
def test_any_answer_gives_targets_or_a_typed_error(data: bytes) -> None:
    try:
        targets = parse_send_targets(data, HERE)
    except PyiscsiError:
        return
    for target in targets:
        assert target.portals and all(0 < p.port < 65536 for p in target.portals)


# ---- hostile numbers: ASCII digits only ------------------------------------------------------------------

NON_ASCII_DIGIT = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii())
WITH_NON_ASCII_DIGIT = st.builds(
    lambda before, digit, after: before + digit + after,
    st.text(alphabet="0123456789", max_size=4),
    NON_ASCII_DIGIT,
    st.text(alphabet="0123456789", max_size=4),
)


@pytest.mark.parametrize(
    ("address", "part"),
    [
        ("10.0.0.1:3²60,1", "port '3²60'"),  # int() raises on it: once an internal error
        ("10.0.0.1:٣٢٦٠,1", "port '٣٢٦٠'"),  # int() reads 3260: once silently accepted
        ("10.0.0.1:3260,²", "portal group tag '²'"),
        ("10.0.0.1:3260,\u0661", "portal group tag '\u0661'"),  # Arabic-Indic one
        ("[fec0::2]:3260,+1", "portal group tag '+1'"),
        ("10.0.0.1:3260, 1", "portal group tag ' 1'"),
        ("10.0.0.1:3260,", "portal group tag ''"),
    ],
)
def test_target_address_numbers_are_ascii_digits(address: str, part: str) -> None:
    with pytest.raises(RemoteValueError) as info:
        parse_send_targets(_kv(f"TargetName={T1}", f"TargetAddress={address}"), HERE)
    assert info.value.field == "SendTargets TargetAddress" and info.value.exit_status is ExitStatus.ISCSI_REFUSED
    assert part in str(info.value) and repr(address) in str(info.value)


@settings(max_examples=200, deadline=None)
@given(WITH_NON_ASCII_DIGIT, st.booleans())
def test_any_non_ascii_digit_in_port_or_tag_is_refused_naming_the_key(number: str, in_port: bool) -> None:
    address = f"10.0.0.1:{number},1" if in_port else f"10.0.0.1:3260,{number}"
    with pytest.raises(RemoteValueError) as info:
        parse_send_targets(_kv(f"TargetName={T1}", f"TargetAddress={address}"), HERE)
    assert str(info.value).startswith("SendTargets TargetAddress: ")


# ---- unbounded work: linear in the answer, under the caller's deadline ---------------------------------------


def _flood(addresses: int, *, distinct: bool) -> bytes:
    keys = [f"TargetName={T1}"]
    for n in range(addresses):
        host = f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}" if distinct else "10.0.0.1"
        keys.append(f"TargetAddress={host}:3260,1")
    return _kv(*keys)


@pytest.mark.parametrize("distinct", [True, False], ids=["distinct", "one-address-repeated"])
def test_thirty_thousand_addresses_take_linear_work(monkeypatch: pytest.MonkeyPatch, distinct: bool) -> None:
    """Merging repeats compared each new portal with every one kept (30,000 keys: 450 million comparisons, 54 s
    of CPU). Counting DiscoveredPortal comparisons shows the structure: at most one per key now."""
    data = _flood(30_000, distinct=distinct)
    assert len(data) < MAX_RESPONSE_BYTES  # an answer the exchange accepts
    compared = 0
    equal = DiscoveredPortal.__eq__

    def counting(self: DiscoveredPortal, other: object) -> bool:
        nonlocal compared
        compared += 1
        return equal(self, other)

    monkeypatch.setattr(DiscoveredPortal, "__eq__", counting)
    [target] = parse_send_targets(data, HERE)
    assert len(target.portals) == (30_000 if distinct else 1)
    assert compared <= 30_000
    if distinct:
        assert target.portals[:2] == (DiscoveredPortal("10.0.0.0", 3260, 1), DiscoveredPortal("10.0.0.1", 3260, 1))


def test_repeats_merge_keeping_first_order() -> None:
    data = _kv(
        f"TargetName={T2}",
        "TargetAddress=10.0.0.2,1",
        f"TargetName={T1}",
        "TargetAddress=10.0.0.1,1",
        f"TargetName={T2}",
        "TargetAddress=10.0.0.3,1",
        "TargetAddress=10.0.0.2,1",
    )
    assert parse_send_targets(data, HERE) == [
        DiscoveredTarget(T2, (DiscoveredPortal("10.0.0.2", 3260, 1), DiscoveredPortal("10.0.0.3", 3260, 1))),
        DiscoveredTarget(T1, (DiscoveredPortal("10.0.0.1", 3260, 1),)),
    ]


class _TickingClock(FakeClock):
    """Every reading costs `tick` seconds: stands for the CPU time the parse spends between two looks."""

    def __init__(self, tick: float) -> None:
        super().__init__()
        self.tick = tick
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += self.tick
        return self.now


def test_the_parse_runs_under_the_callers_deadline() -> None:
    clock = _TickingClock(1.0)
    deadline = Deadline("discover", 5, clock=clock)
    with pytest.raises(WaitTimeout, match=r"wait 'discover' ran out after 5s: parsing the SendTargets answer"):
        parse_send_targets(_flood(30_000, distinct=True), HERE, deadline=deadline)
    assert clock.readings < 10  # it stopped at the first look past the bound, not at the end of the answer


def test_the_deadline_is_looked_at_in_proportion_to_the_keys() -> None:
    for keys in (3_000, 30_000):
        clock = _TickingClock(0.0)
        parse_send_targets(_flood(keys, distinct=True), HERE, deadline=Deadline("discover", 5, clock=clock))
        assert clock.readings - 1 == (keys + 1 + CHECK_EVERY - 1) // CHECK_EVERY  # one reading made the deadline


def test_send_targets_passes_the_deadline_to_the_parse() -> None:
    session, exchange, request = _exchange()
    exchange.receive(_reply(session, request, _flood(1000, distinct=True), final=True))
    with pytest.raises(WaitTimeout, match="parsing the SendTargets answer"):
        exchange.targets(Deadline("discover", 0.5, clock=_TickingClock(1.0)))


# ---- a discovery session sends Text and Logout Requests only (RFC 7143 4.3) ----------------------------------

LIO_ANSWER = _kv(
    f"TargetName={T1}",
    "TargetAddress=10.0.0.1:3260,1",
    "TargetAddress=[fec0::2]:3260,1",
    f"TargetName={T2}",
    "TargetAddress=10.0.0.2:3260,2",
)
LIO_TARGETS = [
    DiscoveredTarget(T1, (DiscoveredPortal("10.0.0.1", 3260, 1), DiscoveredPortal("fec0::2", 3260, 1))),
    DiscoveredTarget(T2, (DiscoveredPortal("10.0.0.2", 3260, 2),)),
]


@pytest.mark.parametrize(
    "script",
    [
        Script(send_targets=LIO_ANSWER),  # LIO: a window of one command, answer in one piece
        Script(send_targets=LIO_ANSWER, text_piece=25),  # continued answer; the window grows per answer
        Script(send_targets=LIO_ANSWER, text_piece=25, window_grows_on_continue=False),  # older LIO: it does not
        Script(send_targets=LIO_ANSWER, login_window=0),  # a window closed from the login on
        Script(send_targets=LIO_ANSWER, text_piece=40, ping_before_answer=True),  # pings we must not answer
        Script(send_targets=b""),  # no targets at all
    ],
    ids=["lio", "continued", "continued-window-stays", "closed-window", "target-pings", "empty"],
)
def test_discovery_session_sends_only_login_text_and_logout(script: Script) -> None:
    with scripted_portal(script) as (portal, targets):
        found = client.discover(portal, "iqn.2026-11.org.example:i", Deadline("discover", 10))
    [target] = targets
    assert target.errors == []
    assert set(target.received) <= {"LoginRequest", "TextRequest", "LogoutRequest"}, target.received
    assert target.logged_out
    assert found == (LIO_TARGETS if script.send_targets else [])


@pytest.mark.parametrize("what", ["ping", "scsi"])
def test_discovery_session_refuses_to_build_other_requests(what: str) -> None:
    session = Session(cmdsn=1, exp_statsn=5, max_cmdsn=10, discovery=True)
    with pytest.raises(LocalProtocolError, match="discovery session sends only Text and Logout Requests"):
        if what == "ping":
            session.ping()
        else:
            session.scsi_command(0, scsi.inquiry())


def test_discovery_text_request_goes_immediate_only_while_the_window_is_closed() -> None:
    session = Session(cmdsn=1, exp_statsn=5, max_cmdsn=1, discovery=True)
    exchange = SendTargets(session, HERE)
    first = exchange.start()
    assert (first.immediate, first.cmdsn, session.cmdsn) == (False, 1, 2)  # the one slot the window had
    reply = session.receive(
        P.TextResponse(itt=first.itt, final=False, cont=True, ttt=9, statsn=5, exp_cmdsn=2, max_cmdsn=1, data=b"")
    )[0]
    more = exchange.receive(reply)
    assert more is not None and (more.immediate, more.cmdsn, session.cmdsn) == (True, 2, 2)  # window closed
    normal = Session(cmdsn=2, exp_statsn=5, max_cmdsn=1)
    with pytest.raises(LocalProtocolError, match="beyond the target's MaxCmdSN"):
        normal.text(SEND_TARGETS_ALL)  # a normal session keeps the window's rule (and may ping to open it)
