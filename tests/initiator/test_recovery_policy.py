from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import iscsi_if as nl
from initiator.deadline import FakeClock
from initiator.errors import IllegalTransition, LocalProtocolError
from initiator.recovery_policy import (
    BACKOFF,
    LATE_INTERVAL,
    TRANSITIONS,
    LogLine,
    Phase,
    Reconnect,
    RecoveryEvent,
    RecoveryPolicy,
    StopConn,
    TimedOut,
    logged_attempt,
    next_phase,
)
from tests.initiator.fake_kernel import conn_error, event

SID = 4
TARGET = "iqn.2003-01.org.example:disk1"


@dataclass(frozen=True)
class Session:
    """The policy reads only these fields; recovery.OwnedSession has them too."""

    sid: int = SID
    cid: int = 0
    time2wait: float = 2.0
    replacement_timeout: float = 60.0

    @property
    def label(self) -> str:
        return f"session {self.sid} ({TARGET} at 10.0.2.2:3260)"


SESSION = Session()


def _policy(clock: FakeClock, *sessions: Session) -> RecoveryPolicy:
    return RecoveryPolicy(sessions or (SESSION,), clock)


def _texts(actions) -> list[str]:
    return [a.text for a in actions if isinstance(a, LogLine)]


# -- the policy -------------------------------------------------------------------------------------------------


def test_a_connection_error_stops_the_connection_and_waits_time2wait() -> None:
    clock = FakeClock()
    policy = _policy(clock)
    actions = policy.on_event(conn_error(SID))
    assert [type(a) for a in actions] == [LogLine, StopConn, LogLine]
    assert actions[1] == StopConn(SID, 0)
    assert "connection failed: TCP_CONN_CLOSE (1020); stopping it for recovery" in actions[0].text
    assert "waiting DefaultTime2Wait 2s" in actions[2].text
    assert policy.phase(SID) is Phase.WAITING and policy.busy()
    assert policy.next_wake() == clock.now + 2.0
    assert policy.due() == []
    clock.advance(2.0)
    assert policy.due() == [Reconnect(SID, 1, 30.0)]
    assert policy.phase(SID) is Phase.ATTEMPTING


@pytest.mark.parametrize(
    "message",
    [
        conn_error(SID + 1),  # not ours
        conn_error(SID, cid=1),  # not our connection
        event(nl.UEvent.K_CREATE_SESSION, sid=SID, host_no=2),
        event(nl.UEvent.RECV_PDU, sid=SID, cid=0),
    ],
)
def test_events_that_are_not_our_failures_do_nothing(message: nl.Message) -> None:
    policy = _policy(FakeClock())
    assert policy.on_event(message) == []
    assert policy.phase(SID) is Phase.WATCHING and not policy.busy()


def test_the_same_failure_reported_again_while_recovering_is_ignored() -> None:
    policy = _policy(FakeClock())
    policy.on_event(conn_error(SID))
    assert policy.on_event(conn_error(SID, error=nl.IscsiErr.CONN_FAILED)) == []


def test_failed_attempts_back_off_and_success_ends_the_recovery() -> None:
    clock = FakeClock()
    failed_at = clock.now
    policy = _policy(clock)
    policy.on_event(conn_error(SID))
    clock.advance(2.0)
    waits = []
    for attempt in range(1, 7):
        (action,) = policy.due()
        assert action == Reconnect(SID, attempt, min(30.0, failed_at + 60.0 - clock.now))
        (line,) = policy.attempt_done(SID, "connection refused")
        assert f"attempt {attempt} failed: connection refused" in line.text and line.warning
        wait = policy.next_wake() - clock.now
        waits.append(wait)
        clock.advance(wait)
    assert waits == [*BACKOFF, BACKOFF[-1]]
    policy.due()
    assert _texts(policy.attempt_done(SID, None)) == [
        f"session {SID} ({TARGET} at 10.0.2.2:3260): recovered after {clock.now - failed_at:.1f}s (7 attempt(s))"
    ]
    assert policy.phase(SID) is Phase.WATCHING and not policy.busy()
    assert policy.on_event(conn_error(SID))[1] == StopConn(SID, 0)  # and the next failure is recovered too


def test_attempts_and_waits_stay_within_the_replacement_timeout() -> None:
    clock = FakeClock()
    policy = _policy(clock)
    policy.on_event(conn_error(SID))
    clock.advance(50.0)  # 10 s of the 60 left
    assert policy.due() == [Reconnect(SID, 1, 10.0)]
    clock.advance(9.5)
    policy.attempt_done(SID, "timed out")
    assert policy.next_wake() == pytest.approx(clock.now + 0.5)  # not the 1 s backoff: the bound is nearer
    clock.advance(0.5)
    actions = policy.due()
    assert actions[-1] == TimedOut(SID)
    assert actions[0].text.endswith(
        "not recovered within the replacement timeout 60s (1 attempt(s)); the kernel fails its queued I/O; "
        "reconnecting every 5s until the portal is back"
    )
    assert policy.phase(SID) is Phase.LATE_WAITING and not policy.busy()  # a new owner may take over now
    assert policy.on_event(conn_error(SID)) == []


def test_past_the_replacement_timeout_it_goes_on_reconnecting_until_the_portal_is_back() -> None:
    """A path of a multipath LUN: its I/O went to the other path when the timeout passed, and it must come back
    when its portal does (as iscsid brings it back), however long that takes."""
    clock = FakeClock()
    policy = _policy(clock)
    policy.on_event(conn_error(SID))
    failed_at = clock.now
    clock.advance(SESSION.replacement_timeout)
    assert policy.due()[-1] == TimedOut(SID)
    logged = []
    for attempt in range(1, 10):
        assert policy.next_wake() == pytest.approx(clock.now + LATE_INTERVAL)
        assert policy.due() == []  # not before its time
        clock.advance(LATE_INTERVAL)
        assert policy.due() == [Reconnect(SID, attempt, 30.0)]  # a whole attempt's bound, not what is left
        assert policy.busy() and policy.phase(SID) is Phase.LATE_ATTEMPTING
        lines = policy.attempt_done(SID, "connection refused")
        logged += [attempt] if lines else []
        assert all(line.warning and "still reconnecting every 5s" in line.text for line in lines)
    assert logged == [1, 2, 4, 8]  # a long outage does not flood the kernel log
    clock.advance(LATE_INTERVAL)
    policy.due()
    (line,) = policy.attempt_done(SID, None)
    assert line.text.endswith(
        f"recovered after {clock.now - failed_at:.1f}s (10 attempt(s)); its I/O had failed meanwhile "
        "(past the replacement timeout)"
    )
    assert policy.phase(SID) is Phase.WATCHING and not policy.busy()


def test_a_destroyed_session_is_forgotten() -> None:
    policy = _policy(FakeClock())
    (line,) = policy.on_event(event(nl.UEvent.K_DESTROY_SESSION, host_no=2, sid=SID))
    assert "no longer ours" in line.text
    assert policy.phase(SID) is None and policy.owned() == ()


def test_a_late_attempt_result_for_a_session_not_attempting_is_ignored() -> None:
    policy = _policy(FakeClock())
    assert policy.attempt_done(SID, None) == []
    assert policy.attempt_done(99, "x") == []


def test_sessions_recover_independently() -> None:
    clock = FakeClock()
    other = replace(SESSION, sid=5, time2wait=0.0)
    policy = _policy(clock, SESSION, other)
    policy.on_event(conn_error(SID))
    policy.on_event(conn_error(5))
    assert policy.due() == [Reconnect(5, 1, 30.0)]
    assert policy.phase(SID) is Phase.WAITING


# -- the transition table, row by row -------------------------------------------------------------------------


def _to(phase: Phase, clock: FakeClock) -> RecoveryPolicy:
    """A policy whose one session is in `phase`, reached through the public API only."""
    policy = _policy(clock)
    if phase is not Phase.WATCHING:
        policy.on_event(conn_error(SID))
    if phase is Phase.ATTEMPTING:
        clock.advance(SESSION.time2wait)
        policy.due()
    if phase in (Phase.LATE_WAITING, Phase.LATE_ATTEMPTING):
        clock.advance(SESSION.replacement_timeout)
        policy.due()
    if phase is Phase.LATE_ATTEMPTING:
        clock.advance(LATE_INTERVAL)
        policy.due()
    assert policy.phase(SID) is phase
    return policy


def _fire(policy: RecoveryPolicy, clock: FakeClock, event_: RecoveryEvent) -> list:
    """The public call that makes `event_` happen to the session."""
    if event_ is RecoveryEvent.CONN_ERROR:
        return policy.on_event(conn_error(SID))
    if event_ is RecoveryEvent.DESTROYED:
        return policy.on_event(event(nl.UEvent.K_DESTROY_SESSION, sid=SID, host_no=2))
    if event_ is RecoveryEvent.WAIT_OVER:
        clock.advance(LATE_INTERVAL if policy.phase(SID) is Phase.LATE_WAITING else SESSION.time2wait)
        return policy.due()
    if event_ is RecoveryEvent.TIMED_OUT:
        clock.advance(SESSION.replacement_timeout)
        return policy.due()
    return policy.attempt_done(SID, None if event_ is RecoveryEvent.RECOVERED else "connection refused")


# What each row is observed to do through the API: the action types it asks for ([] for a dropped report).
ROW_ACTIONS = {
    RecoveryEvent.CONN_ERROR: [LogLine, StopConn, LogLine],
    RecoveryEvent.DESTROYED: [LogLine],
    RecoveryEvent.WAIT_OVER: [Reconnect],
    RecoveryEvent.TIMED_OUT: [LogLine, TimedOut],
    RecoveryEvent.RECOVERED: [LogLine],
    RecoveryEvent.ATTEMPT_FAILED: [LogLine],
}


@pytest.mark.parametrize(("phase", "event_"), list(TRANSITIONS), ids=lambda x: x.name)
def test_every_row_of_the_table_through_the_public_api(phase: Phase, event_: RecoveryEvent) -> None:
    clock = FakeClock()
    policy = _to(phase, clock)
    actions = _fire(policy, clock, event_)
    after = TRANSITIONS[(phase, event_)]
    assert policy.phase(SID) is (None if after is Phase.FORGOTTEN else after)
    assert [type(a) for a in actions] == ([] if after is phase else ROW_ACTIONS[event_])


UNLISTED = [(p, e) for p in Phase for e in RecoveryEvent if (p, e) not in TRANSITIONS]


def test_the_unlisted_pairs_are_the_timer_events_outside_waiting_and_all_after_forgetting() -> None:
    # What the driver delivers (kernel events, attempt results) is never refused while we own the session;
    # only the policy's own timer events (fired from `due`, for WAITING sessions) are, elsewhere.
    outside = {RecoveryEvent.CONN_ERROR, RecoveryEvent.DESTROYED, RecoveryEvent.RECOVERED, RecoveryEvent.ATTEMPT_FAILED}
    for phase, event_ in UNLISTED:
        assert phase is Phase.FORGOTTEN or (event_ not in outside and phase is not Phase.WAITING)
    assert not any(p is Phase.FORGOTTEN for p, _ in TRANSITIONS)


@pytest.mark.parametrize(("phase", "event_"), UNLISTED, ids=lambda x: x.name)
def test_an_unlisted_pair_is_refused_naming_phase_and_event(phase: Phase, event_: RecoveryEvent) -> None:
    with pytest.raises(IllegalTransition) as info:
        next_phase(phase, event_)
    assert (info.value.state, info.value.event) == (phase, event_)
    assert isinstance(info.value, LocalProtocolError)
    assert str(info.value) == f"recovery policy: {event_.value} is not allowed while {phase.value}"


_OPS = st.lists(
    st.one_of(
        st.just(("conn_error",)),
        st.just(("destroy",)),
        st.tuples(st.just("advance"), st.floats(0.0, 40.0)),
        st.just(("due",)),
        st.tuples(st.just("done"), st.sampled_from([None, "connection refused"])),
    ),
    max_size=30,
)


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_any_sequence_of_calls_moves_only_along_the_table(ops: list[tuple]) -> None:
    clock = FakeClock()
    policy = _policy(clock)
    for op in ops:
        before = policy.phase(SID)
        if op[0] == "conn_error":
            policy.on_event(conn_error(SID))
        elif op[0] == "destroy":
            policy.on_event(event(nl.UEvent.K_DESTROY_SESSION, sid=SID, host_no=2))
        elif op[0] == "advance":
            clock.advance(op[1])
        elif op[0] == "due":
            policy.due()
        else:
            policy.attempt_done(SID, op[1])
        after = policy.phase(SID)
        if before is None:
            assert after is None  # a forgotten session never comes back
        elif after is not before:
            target = Phase.FORGOTTEN if after is None else after
            assert any(TRANSITIONS.get((before, e)) is target for e in RecoveryEvent)


@pytest.mark.parametrize(("attempt", "logged"), [(0, False), (1, True), (2, True), (3, False), (4, True), (6, False),
                                                 (8, True), (1024, True), (1023, False)])  # fmt: skip
def test_attempts_1_2_4_8_say_they_are_connecting(attempt: int, logged: bool) -> None:
    assert logged_attempt(attempt) is logged
