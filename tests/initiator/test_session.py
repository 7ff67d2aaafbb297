"""The full feature phase driven with scripted target PDUs: numbering, reassembly, pings, async, logout."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import pdu as P
from initiator import scsi
from initiator.errors import IllegalTransition, IscsiError, LocalProtocolError, PyiscsiError, RemoteProtocolError
from initiator.session import (
    TRANSITIONS,
    AsyncNotice,
    CommandDone,
    LoggedOut,
    LogoutRequested,
    PingAnswered,
    Send,
    Session,
    SessionEvent,
    SessionPhase,
    TextReply,
    next_state,
    serial_le,
    serial_lt,
)

READ = scsi.read_10(0, 2, 512)  # 1024 bytes


def _session(**kw) -> Session:
    return Session(cmdsn=10, exp_statsn=100, max_cmdsn=20, **kw)


def _sn(**kw) -> dict:
    return {"exp_cmdsn": 11, "max_cmdsn": 42} | kw


@pytest.mark.parametrize(
    ("a", "b", "lt"),
    [(1, 2, True), (2, 1, False), (1, 1, False), (0xFFFFFFFF, 0, True), (0, 0xFFFFFFFF, False), (0, 1 << 31, False)],
)
def test_serial_arithmetic(a: int, b: int, lt: bool) -> None:
    assert serial_lt(a, b) is lt
    assert serial_le(a, a)


def test_command_pdu_fields_and_cmdsn_advance() -> None:
    s = _session()
    itt, cmd = s.scsi_command(3, READ)
    assert (cmd.cmdsn, cmd.exp_statsn, cmd.itt, cmd.expected_length) == (10, 100, itt, 1024)
    assert cmd.read and cmd.final and not cmd.write and not cmd.immediate
    assert cmd.lun == P.encode_lun(3) and cmd.cdb == READ.cdb
    itt2, cmd2 = s.scsi_command(0, scsi.test_unit_ready())
    assert itt2 != itt and cmd2.cmdsn == 11 and not cmd2.read
    assert s.outstanding == 2


def test_immediate_pdus_do_not_take_cmdsn() -> None:
    s = _session()
    _, nop = s.ping()
    assert nop.immediate and nop.cmdsn == 10
    _, cmd = s.scsi_command(0, READ)
    assert cmd.cmdsn == 10
    logout = s.logout()
    assert logout.immediate and logout.cmdsn == 11 and logout.reason == P.LogoutReason.CLOSE_SESSION


def test_data_in_reassembly_then_response() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, READ)
    assert s.receive(P.DataIn(itt=itt, datasn=0, buffer_offset=0, data=b"a" * 512, **_sn())) == []
    # F without S: the data is complete but the status comes in a SCSI Response.
    assert s.receive(P.DataIn(itt=itt, datasn=1, buffer_offset=512, data=b"b" * 512, final=True, **_sn())) == []
    [done] = s.receive(P.ScsiResponse(itt=itt, status=0, statsn=100, **_sn()))
    assert isinstance(done, CommandDone)
    assert done.check() == b"a" * 512 + b"b" * 512
    assert s.outstanding == 0 and s.exp_statsn == 101


def test_data_in_with_status() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, READ)
    s.receive(P.DataIn(itt=itt, datasn=0, buffer_offset=0, data=b"a" * 512, **_sn()))
    [done] = s.receive(
        P.DataIn(
            itt=itt, datasn=1, buffer_offset=512, data=b"b" * 512, final=True, has_status=True, statsn=100, **_sn()
        )
    )
    assert isinstance(done, CommandDone)
    assert done.check() == b"a" * 512 + b"b" * 512
    assert (s.exp_statsn, s.exp_cmdsn, s.max_cmdsn, s.outstanding) == (101, 11, 42, 0)


def test_response_with_sense_and_short_read() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, scsi.read_capacity_16())
    sense = bytes.fromhex("700005000000000a00000000200000000000")
    [done] = s.receive(
        P.ScsiResponse(itt=itt, status=2, statsn=100, data=struct.pack(">H", len(sense)) + sense, **_sn())
    )
    assert done.sense is not None and done.sense.key == scsi.SenseKey.ILLEGAL_REQUEST
    with pytest.raises(scsi.ScsiCommandError, match=r"READ CAPACITY\(16\).*ILLEGAL_REQUEST"):
        done.check()
    assert s.state is SessionPhase.FULL_FEATURE  # a failed command does not fail the session


def test_underflow_keeps_what_arrived() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, scsi.inquiry(96))
    s.receive(P.DataIn(itt=itt, datasn=0, buffer_offset=0, data=b"x" * 36, **_sn()))
    [done] = s.receive(P.ScsiResponse(itt=itt, status=0, underflow=True, residual=60, statsn=100, **_sn()))
    assert done.data == b"x" * 36 and done.residual == 60


@pytest.mark.parametrize(
    ("pdu_kw", "match"),
    [
        ({"datasn": 1, "buffer_offset": 0, "data": b"a"}, "DataSN 1, expected 0"),
        ({"datasn": 0, "buffer_offset": 4, "data": b"a"}, "BufferOffset 4, expected 0"),
        ({"datasn": 0, "buffer_offset": 0, "data": b"a" * 1025}, "more than the 1024 asked"),
        ({"datasn": 0, "buffer_offset": 0, "data": b"a", "has_status": True}, "S bit without F bit"),
        ({"itt": 0x777, "datasn": 0, "data": b"a"}, "ITT 0x00000777 names no outstanding"),
    ],
)
def test_hostile_data_in(pdu_kw: dict, match: str) -> None:
    s = _session()
    itt, _ = s.scsi_command(0, READ)
    with pytest.raises(RemoteProtocolError, match=match):
        s.receive(P.DataIn(**({"itt": itt} | pdu_kw | _sn())))
    assert s.state is SessionPhase.FAILED
    with pytest.raises(LocalProtocolError, match="failed"):
        s.scsi_command(0, READ)


@pytest.mark.parametrize(
    "pdu",
    [
        P.ScsiResponse(itt=5, statsn=100),
        P.NopIn(itt=5, statsn=100),
        P.TextResponse(itt=5, statsn=100),
        P.LogoutResponse(itt=5, statsn=100),
        P.R2T(itt=1),
    ],
)
def test_responses_for_unknown_tasks_or_unexpected_pdus(pdu: P.Pdu) -> None:
    s = _session()
    with pytest.raises(RemoteProtocolError):
        s.receive(pdu)


def test_target_failure_response() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, READ)
    with pytest.raises(IscsiError, match="failed the command"):
        s.receive(P.ScsiResponse(itt=itt, response=1, statsn=100, **_sn()))


def test_bad_sense_length() -> None:
    s = _session()
    itt, _ = s.scsi_command(0, READ)
    with pytest.raises(RemoteProtocolError, match="SenseLength"):
        s.receive(P.ScsiResponse(itt=itt, status=2, statsn=100, data=b"\x00\x40abc", **_sn()))


def test_window() -> None:
    s = Session(cmdsn=10, exp_statsn=1, max_cmdsn=9)  # closed: MaxCmdSN = ExpCmdSN - 1
    assert not s.window_open
    with pytest.raises(LocalProtocolError, match="MaxCmdSN 9"):
        s.scsi_command(0, READ)
    itt, _ = s.ping()  # immediate: allowed with the window closed
    [answered] = s.receive(P.NopIn(itt=itt, statsn=1, exp_cmdsn=10, max_cmdsn=12))
    assert isinstance(answered, PingAnswered) and s.window_open
    # A stale pair (MaxCmdSN < ExpCmdSN - 1) is ignored, and numbers never go backwards.
    s.receive(P.NopIn(itt=P.RESERVED_TAG, ttt=P.RESERVED_TAG, statsn=2, exp_cmdsn=30, max_cmdsn=5))
    assert (s.exp_cmdsn, s.max_cmdsn) == (10, 12)
    s.receive(P.NopIn(itt=P.RESERVED_TAG, ttt=P.RESERVED_TAG, statsn=2, exp_cmdsn=9, max_cmdsn=11))
    assert (s.exp_cmdsn, s.max_cmdsn) == (10, 12)


def test_target_ping_is_answered_without_advancing_statsn() -> None:
    s = _session()
    [send] = s.receive(P.NopIn(lun=P.encode_lun(2), itt=P.RESERVED_TAG, ttt=0x1234, statsn=100, data=b"ping", **_sn()))
    assert isinstance(send, Send)
    out = send.pdu
    assert isinstance(out, P.NopOut)
    assert (out.itt, out.ttt, out.lun, out.data, out.immediate) == (
        P.RESERVED_TAG,
        0x1234,
        P.encode_lun(2),
        b"ping",
        True,
    )
    assert (out.cmdsn, out.exp_statsn) == (10, 100)
    assert s.exp_statsn == 100


def test_text_exchange_with_continuation() -> None:
    s = _session()
    itt, req = s.text(b"SendTargets=All\x00")
    assert req.ttt == P.RESERVED_TAG and req.cmdsn == 10 and req.final and not req.immediate
    [part] = s.receive(P.TextResponse(itt=itt, final=False, cont=True, ttt=77, statsn=100, data=b"Target", **_sn()))
    assert part == TextReply(itt, b"Target", False, True, 77)
    more = s.text_continue(itt, part.ttt)
    assert (more.ttt, more.data, more.cmdsn, more.exp_statsn) == (77, b"", 11, 101)
    [last] = s.receive(P.TextResponse(itt=itt, final=True, statsn=101, data=b"Name=x\x00", **_sn()))
    assert last.final and s.outstanding == 0
    with pytest.raises(LocalProtocolError):
        s.text_continue(itt, 77)


def test_text_response_with_f_and_c() -> None:
    s = _session()
    itt, _ = s.text(b"SendTargets=All\x00")
    with pytest.raises(RemoteProtocolError, match="both F and C"):
        s.receive(P.TextResponse(itt=itt, final=True, cont=True, statsn=100, **_sn()))


def test_logout() -> None:
    s = _session()
    req = s.logout()
    assert s.state is SessionPhase.LOGGING_OUT
    with pytest.raises(LocalProtocolError, match="logging out"):
        s.scsi_command(0, READ)
    [out] = s.receive(P.LogoutResponse(itt=req.itt, statsn=100, time2wait=2, time2retain=20, **_sn()))
    assert out == LoggedOut(0, 2, 20)
    assert s.state is SessionPhase.LOGGED_OUT
    with pytest.raises(LocalProtocolError):
        s.receive(P.NopIn(itt=P.RESERVED_TAG, statsn=1))


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (P.AsyncEvent.LOGOUT_REQUESTED, LogoutRequested(7, 1)),
        (P.AsyncEvent.NEGOTIATION_REQUESTED, LogoutRequested(7, 4)),
        (P.AsyncEvent.SCSI_EVENT, AsyncNotice(0, b"")),
        (P.AsyncEvent.VENDOR_SPECIFIC, AsyncNotice(255, b"")),
    ],
)
def test_async_events(event: int, expected: object) -> None:
    s = _session()
    assert s.receive(P.AsyncMessage(event=event, parameter3=7, statsn=100, **_sn())) == [expected]
    assert s.exp_statsn == 101


@pytest.mark.parametrize(("event", "match"), [(2, "dropping the connection"), (3, "dropping the session")])
def test_async_drop(event: int, match: str) -> None:
    s = _session()
    with pytest.raises(IscsiError, match=match):
        s.receive(P.AsyncMessage(event=event, statsn=100, **_sn()))
    assert s.state is SessionPhase.FAILED


def test_reject_names_reason_and_opcode() -> None:
    s = _session()
    _, cmd = s.scsi_command(0, READ)
    with pytest.raises(IscsiError, match=r"rejected opcode 0x01: reason PROTOCOL_ERROR \(0x04\)"):
        s.receive(P.Reject(reason=4, statsn=100, data=cmd.encode_bhs(), **_sn()))


def test_data_in_bound() -> None:
    s = Session(cmdsn=1, exp_statsn=1, max_data_in=4096)
    with pytest.raises(LocalProtocolError, match="over the bound 4096"):
        s.scsi_command(0, scsi.read_10(0, 16, 512))


def test_itt_skips_reserved_and_busy_tags() -> None:
    s = Session(cmdsn=1, exp_statsn=1, max_cmdsn=100, first_itt=0xFFFFFFFE)
    a, _ = s.scsi_command(0, READ)
    b, _ = s.scsi_command(0, READ)
    assert (a, b) == (0xFFFFFFFE, 0)


_TAGS = st.sampled_from([0, 1, 2, 3, P.RESERVED_TAG, 0x1234])
_SMALL = st.integers(0, 4)
_SN = st.integers(0, 0xFFFFFFFF)
_HOSTILE_PDUS = st.one_of(
    st.builds(
        P.DataIn,
        itt=_TAGS,
        datasn=_SMALL,
        buffer_offset=st.integers(0, 2048),
        data=st.binary(max_size=600),
        final=st.booleans(),
        has_status=st.booleans(),
        status=st.integers(0, 255),
        statsn=_SN,
        exp_cmdsn=_SN,
        max_cmdsn=_SN,
    ),
    st.builds(
        P.ScsiResponse,
        itt=_TAGS,
        status=st.integers(0, 255),
        response=st.integers(0, 255),
        data=st.binary(max_size=40),
        statsn=_SN,
        exp_cmdsn=_SN,
        max_cmdsn=_SN,
    ),
    st.builds(P.NopIn, itt=_TAGS, ttt=_TAGS, data=st.binary(max_size=20), statsn=_SN, exp_cmdsn=_SN, max_cmdsn=_SN),
    st.builds(P.TextResponse, itt=_TAGS, ttt=_TAGS, final=st.booleans(), cont=st.booleans(), statsn=_SN),
    st.builds(P.LogoutResponse, itt=_TAGS, response=st.integers(0, 255), statsn=_SN),
    st.builds(P.AsyncMessage, event=st.integers(0, 255), parameter3=st.integers(0, 0xFFFF), statsn=_SN),
    st.builds(P.Reject, reason=st.integers(0, 255), data=st.binary(max_size=60), statsn=_SN),
    st.builds(P.R2T, itt=_TAGS),
    st.builds(P.TaskMgmtResponse, itt=_TAGS),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_HOSTILE_PDUS, max_size=8))
def test_hostile_pdu_sequences_give_typed_errors_only(pdus: list[P.Pdu]) -> None:
    s = Session(cmdsn=1, exp_statsn=1, max_cmdsn=50)
    s.scsi_command(0, READ)
    s.scsi_command(1, scsi.inquiry())
    s.text(b"SendTargets=All\x00")
    for pdu in pdus:
        try:
            events = s.receive(pdu)
        except PyiscsiError:
            break
        for event in events:
            if isinstance(event, CommandDone):
                assert len(event.data) <= event.command.data_in_length


# ---- the transition table, row by row ---------------------------------------------------------------------

_BARE_NOP = P.NopIn(itt=P.RESERVED_TAG, ttt=P.RESERVED_TAG, statsn=100, **_sn())
_PING = P.NopIn(itt=P.RESERVED_TAG, ttt=0x1234, statsn=100, data=b"ping", **_sn())


def _in(state: SessionPhase) -> tuple[Session, int]:
    """A session in `state` (reached through the public API) and the ITT of its Logout Request, if any."""
    s = _session()
    logout_itt = -1
    if state in (SessionPhase.LOGGING_OUT, SessionPhase.LOGGED_OUT):
        logout_itt = s.logout().itt
    if state is SessionPhase.LOGGED_OUT:
        s.receive(P.LogoutResponse(itt=logout_itt, statsn=100, **_sn()))
    if state is SessionPhase.FAILED:
        with pytest.raises(RemoteProtocolError):
            s.receive(P.R2T(itt=1))
    assert s.state is state
    return s, logout_itt


def _fire(s: Session, event: SessionEvent, logout_itt: int) -> list:
    """The public call that makes `event` happen; what it returned (events, or the PDU to send)."""
    if event is SessionEvent.SEND:
        return [s.ping()[1]]
    if event is SessionEvent.SEND_LOGOUT:
        return [s.logout()]
    if event is SessionEvent.RECEIVE:
        return s.receive(_BARE_NOP)
    if event is SessionEvent.ANSWER_PING:
        return s.receive(_PING)
    if event is SessionEvent.LOGOUT_RESPONSE:
        return s.receive(P.LogoutResponse(itt=logout_itt, statsn=100, time2wait=2, time2retain=20, **_sn()))
    with pytest.raises(RemoteProtocolError):
        s.receive(P.R2T(itt=1))  # TARGET_ERROR: we never ask for R2T (no writes)
    return []


_ROW_OUTPUT = {
    SessionEvent.SEND: [P.NopOut],
    SessionEvent.SEND_LOGOUT: [P.LogoutRequest],
    SessionEvent.RECEIVE: [],
    SessionEvent.ANSWER_PING: [Send],
    SessionEvent.LOGOUT_RESPONSE: [LoggedOut],
    SessionEvent.TARGET_ERROR: [],
}


@pytest.mark.parametrize(("state", "event"), list(TRANSITIONS), ids=lambda x: x.name)
def test_every_row_of_the_table_through_the_public_api(state: SessionPhase, event: SessionEvent) -> None:
    s, logout_itt = _in(state)
    out = _fire(s, event, logout_itt)
    assert s.state is TRANSITIONS[(state, event)]
    assert [type(x) for x in out] == _ROW_OUTPUT[event]


_UNLISTED = [(st_, ev) for st_ in SessionPhase for ev in SessionEvent if (st_, ev) not in TRANSITIONS]


def test_final_states_have_no_way_out() -> None:
    assert not any(state in (SessionPhase.LOGGED_OUT, SessionPhase.FAILED) for state, _ in TRANSITIONS)
    assert {after for (state, _), after in TRANSITIONS.items() if after is not state} == {
        SessionPhase.LOGGING_OUT,
        SessionPhase.LOGGED_OUT,
        SessionPhase.FAILED,
    }


@pytest.mark.parametrize(("state", "event"), _UNLISTED, ids=lambda x: x.name)
def test_an_unlisted_pair_is_refused_naming_state_and_event(state: SessionPhase, event: SessionEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_state(state, event, "a Thing")
    assert (info.value.state, info.value.event, info.value.machine) == (state, event, "session")
    assert isinstance(info.value, LocalProtocolError)
    assert state.value in str(info.value)
    assert "a Thing" in str(info.value) or event.value in str(info.value)


@pytest.mark.parametrize(
    ("state", "call", "message"),
    [
        (SessionPhase.LOGGING_OUT, lambda s: s.ping(), "session: cannot send NOP-Out while logging out"),
        (SessionPhase.LOGGING_OUT, lambda s: s.text(b""), "session: cannot send Text Request while logging out"),
        (SessionPhase.LOGGING_OUT, lambda s: s.logout(), "session: cannot send Logout Request while logging out"),
        (SessionPhase.LOGGED_OUT, lambda s: s.scsi_command(0, READ), "cannot send SCSI READ.* while logged out"),
        (SessionPhase.LOGGED_OUT, lambda s: s.logout(), "session: cannot send Logout Request while logged out"),
        (SessionPhase.LOGGED_OUT, lambda s: s.receive(_BARE_NOP), "session: PDU NopIn received while logged out"),
        (SessionPhase.FAILED, lambda s: s.ping(), "session: cannot send NOP-Out while failed"),
        (SessionPhase.FAILED, lambda s: s.receive(_PING), "session: PDU NopIn received while failed"),
    ],
)
def test_refused_calls_leave_the_state_alone(state: SessionPhase, call, message: str) -> None:
    s, _ = _in(state)
    with pytest.raises(IllegalTransition, match=message):
        call(s)
    assert s.state is state


def test_a_ping_while_logging_out_goes_unanswered() -> None:
    s, _ = _in(SessionPhase.LOGGING_OUT)
    assert s.receive(_PING) == []  # no ANSWER_PING line for LOGGING_OUT: nothing more goes out
    assert s.state is SessionPhase.LOGGING_OUT


def test_a_target_error_while_logging_out_fails_the_session() -> None:
    s, _ = _in(SessionPhase.LOGGING_OUT)
    with pytest.raises(IscsiError, match="dropping the session"):
        s.receive(P.AsyncMessage(event=P.AsyncEvent.SESSION_DROPPED, statsn=100, **_sn()))
    assert s.state is SessionPhase.FAILED
