from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import pdu as P
from initiator.discovery import (
    SEND_TARGETS_ALL,
    DiscoveredPortal,
    DiscoveredTarget,
    SendTargets,
    parse_send_targets,
)
from initiator.errors import IscsiError, LocalProtocolError, PyiscsiError, RemoteProtocolError
from initiator.portal import Portal
from initiator.session import Session, TextReply

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
        (_kv(f"TargetName={T1}", "TargetAddress=10.0.0.1:99999,1"), "TargetAddress '10.0.0.1:99999,1': port"),
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
