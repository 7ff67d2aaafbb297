"""When to recover a kernel-owned session after a connection failure (ERL 0): events in, actions out, no I/O.

Theory of operation. The kernel reports a failed connection with a CONN_ERROR event on NETLINK_ISCSI and then
holds the session's I/O for up to its replacement timeout (`recovery_tmo`), after which it fails that I/O
itself. At error recovery level 0 the only remedy RFC 7143 gives is session recovery by reinstatement: wait
DefaultTime2Wait after the connection went, then log in again with the same ISID and TSIH 0 (the drivers in
initiator.recovery do that). `RecoveryPolicy` decides, per owned session, when to stop, when to try, how long to
back off, and what changes once the replacement timeout has passed (the kernel has failed the queued I/O; we go
on reconnecting every LATE_INTERVAL, as iscsid does, so a path of a multipath LUN comes back whenever its portal
does); its driver (initiator.recovery.RecoveryLoop) does the I/O and reports back.

Every change of a session's phase is one line of `TRANSITIONS`, (phase, event) -> phase, checked by
`next_phase`. A line that keeps the phase is a report the policy drops on purpose (it asks for no action); a
pair with no line is a bug in the driver and raises IllegalTransition naming both. Nothing else here changes a
phase.

Public API
    RecoveryPolicy(sessions, clock=time.monotonic, backoff=BACKOFF, attempt_bound=ATTEMPT_BOUND):
        .on_event(netlink message), .due(), .attempt_done(sid, error) -> list[Action];
        .phase(sid), .owned(), .busy(), .next_wake()
    Action = LogLine | StopConn | Reconnect | TimedOut
    Phase, RecoveryEvent, TRANSITIONS, next_phase(phase, event), Recoverable (what a session must offer)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Generic, Protocol, TypeVar

from initiator import iscsi_if as nl
from initiator.codes import Code
from initiator.errors import IllegalTransition
from initiator.kernel_login import error_name
from initiator.record import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from initiator.deadline import Clock

BACKOFF = (1.0, 2.0, 4.0, 8.0, 16.0)  # seconds between failed attempts; the last repeats
ATTEMPT_BOUND = 30.0  # one attempt: connect, login, parameters, start
LATE_INTERVAL = 5.0  # seconds between attempts once the replacement timeout has passed (no I/O waits any more)


class Recoverable(Protocol):
    """What the policy reads of a session (initiator.recovery.OwnedSession offers it)."""

    @property
    def sid(self) -> int: ...
    @property
    def cid(self) -> int: ...
    @property
    def label(self) -> str: ...
    @property
    def time2wait(self) -> float: ...
    @property
    def replacement_timeout(self) -> float: ...


S = TypeVar("S", bound=Recoverable)


# -- actions: what the policy asks its driver to do -------------------------------------------------------------


@record
class LogLine:
    text: str
    warning: bool = False


@record
class StopConn:
    sid: int
    cid: int


@record
class Reconnect:
    sid: int
    attempt: int
    bound: float  # seconds this attempt may take


@record
class TimedOut:
    """The replacement timeout passed: the kernel has failed the session's queued I/O (we go on reconnecting)."""

    sid: int


Action = LogLine | StopConn | Reconnect | TimedOut


# -- the state machine ------------------------------------------------------------------------------------------


class Phase(Code):
    WATCHING = "watching"
    WAITING = "waiting to reconnect"
    ATTEMPTING = "attempting"
    LATE_WAITING = "past the replacement timeout, waiting to reconnect"
    LATE_ATTEMPTING = "past the replacement timeout, attempting"
    FORGOTTEN = "no longer ours"  # reached only to drop the session: phase() then answers None


class RecoveryEvent(Code):
    CONN_ERROR = "CONN_ERROR for our connection"
    DESTROYED = "K_DESTROY_SESSION"
    WAIT_OVER = "wait before the next attempt over"
    TIMED_OUT = "replacement timeout passed"
    RECOVERED = "attempt succeeded"
    ATTEMPT_FAILED = "attempt failed"


P, E = Phase, RecoveryEvent

# One session's recovery, one line per transition. A line whose phase does not change drops the report.
TRANSITIONS: Mapping[tuple[Phase, RecoveryEvent], Phase] = MappingProxyType(
    {
        # The kernel saw the connection fail and now queues the session's I/O. We stop the connection with
        # STOP_CONN_RECOVER (the kernel keeps the session and its queue) and wait DefaultTime2Wait: RFC 7143's
        # least pause after an unexpected connection termination before a logout, and a reinstating login
        # logs the old session out implicitly.
        (P.WATCHING, E.CONN_ERROR): P.WAITING,
        # The failure we are already recovering from, reported again (by the kernel, or by a sysfs resync that
        # finds the session FAILED): dropped. An attempt under way learns of its own failure from its result.
        (P.WAITING, E.CONN_ERROR): P.WAITING,
        (P.ATTEMPTING, E.CONN_ERROR): P.ATTEMPTING,
        (P.LATE_WAITING, E.CONN_ERROR): P.LATE_WAITING,
        (P.LATE_ATTEMPTING, E.CONN_ERROR): P.LATE_ATTEMPTING,
        # Wait over and time left: one reinstatement attempt (same ISID, TSIH 0, RFC 7143 session
        # reinstatement), bounded by ATTEMPT_BOUND and by what is left of the replacement timeout.
        (P.WAITING, E.WAIT_OVER): P.ATTEMPTING,
        # The replacement timeout passed: the kernel's own recovery timer fails the queued I/O (dm-multipath, if
        # any, has moved it to another path). We go on trying, every LATE_INTERVAL, each attempt bounded by
        # ATTEMPT_BOUND: once the portal is back, the session is too (and dm-multipath's path checker with it).
        (P.WAITING, E.TIMED_OUT): P.LATE_WAITING,
        (P.LATE_WAITING, E.WAIT_OVER): P.LATE_ATTEMPTING,
        (P.LATE_ATTEMPTING, E.RECOVERED): P.WATCHING,
        (P.LATE_ATTEMPTING, E.ATTEMPT_FAILED): P.LATE_WAITING,
        # Logged in again and the connection started: the kernel resumes the queued I/O; watch again.
        (P.ATTEMPTING, E.RECOVERED): P.WATCHING,
        # Connect, login or a kernel step failed: back off (BACKOFF), never past the replacement timeout.
        (P.ATTEMPTING, E.ATTEMPT_FAILED): P.WAITING,
        # A result for an attempt not under way (late, or for a session not failing): dropped.
        (P.WATCHING, E.RECOVERED): P.WATCHING,
        (P.WATCHING, E.ATTEMPT_FAILED): P.WATCHING,
        (P.WAITING, E.RECOVERED): P.WAITING,
        (P.WAITING, E.ATTEMPT_FAILED): P.WAITING,
        (P.LATE_WAITING, E.RECOVERED): P.LATE_WAITING,
        (P.LATE_WAITING, E.ATTEMPT_FAILED): P.LATE_WAITING,
        # The kernel or another owner (iscsiadm, a later agent) ended the session: whatever we were doing, it
        # is no longer ours to recover.
        (P.WATCHING, E.DESTROYED): P.FORGOTTEN,
        (P.WAITING, E.DESTROYED): P.FORGOTTEN,
        (P.ATTEMPTING, E.DESTROYED): P.FORGOTTEN,
        (P.LATE_WAITING, E.DESTROYED): P.FORGOTTEN,
        (P.LATE_ATTEMPTING, E.DESTROYED): P.FORGOTTEN,
    }
)


def logged_attempt(attempt: int) -> bool:
    """Whether attempt number `attempt` says it is connecting (and, past the replacement timeout, that it failed):
    1, 2, 4, 8, ..., so an outage of hours costs the kernel log a dozen lines, not one every LATE_INTERVAL."""
    return attempt > 0 and attempt & (attempt - 1) == 0


def next_phase(phase: Phase, event: RecoveryEvent) -> Phase:
    """The phase `event` leads to from `phase`; IllegalTransition when the table has no line for the pair."""
    after = TRANSITIONS.get((phase, event))
    if after is None:
        raise IllegalTransition("recovery policy", phase, event)
    return after


@record(frozen=False)
class _Track(Generic[S]):
    session: S
    phase: Phase = Phase.WATCHING
    failed_at: float = 0.0
    wake_at: float = 0.0
    attempts: int = 0


@record(frozen=False)
class RecoveryPolicy(Generic[S]):
    """One policy for every owned session; the clock is injected, so tests need neither kernel nor time."""

    sessions: Iterable[S]
    clock: Clock = time.monotonic
    backoff: tuple[float, ...] = BACKOFF
    attempt_bound: float = ATTEMPT_BOUND
    late_interval: float = LATE_INTERVAL
    _tracks: dict[int, _Track[S]]  # not a field (record skips _names): __post_init__ sets it, from `sessions`

    def __post_init__(self) -> None:
        self._tracks = {s.sid: _Track(s) for s in self.sessions}

    def phase(self, sid: int) -> Phase | None:
        track = self._tracks.get(sid)
        return None if track is None else track.phase

    def owned(self) -> tuple[S, ...]:
        return tuple(t.session for t in self._tracks.values())

    def busy(self) -> bool:
        """A recovery is under way (a hand-over of ownership should wait for it to end). Past the replacement
        timeout only an attempt in flight counts: the next owner goes on from there, and no I/O waits any more."""
        return any(t.phase in (Phase.WAITING, Phase.ATTEMPTING, Phase.LATE_ATTEMPTING) for t in self._tracks.values())

    def next_wake(self) -> float | None:
        times = [t.wake_at for t in self._tracks.values() if t.phase in (Phase.WAITING, Phase.LATE_WAITING)]
        return min(times) if times else None

    def _move(self, track: _Track[S], event: RecoveryEvent) -> bool:
        """Apply the table to one session; False when its line keeps the phase (nothing to do)."""
        after = next_phase(track.phase, event)
        if after is track.phase:
            return False
        track.phase = after
        if after is Phase.FORGOTTEN:
            del self._tracks[track.session.sid]
        return True

    def on_event(self, msg: nl.Message) -> list[Action]:
        sid = msg.fields.get("sid")
        track = self._tracks.get(sid) if isinstance(sid, int) else None
        if track is None:
            return []
        if msg.type == nl.UEvent.K_DESTROY_SESSION:
            self._move(track, E.DESTROYED)
            return [LogLine(f"{track.session.label}: destroyed by the kernel or another owner; no longer ours")]
        if msg.type != nl.UEvent.CONN_ERROR or msg.fields.get("cid") != track.session.cid:
            return []  # not about our connection
        reason = error_name(msg.fields.get("error", 0))
        if not self._move(track, E.CONN_ERROR):
            return []
        now = self.clock()
        track.failed_at, track.attempts = now, 0
        track.wake_at = now + track.session.time2wait
        s = track.session
        return [
            LogLine(f"{s.label}: connection failed: {reason}; stopping it for recovery", warning=True),
            StopConn(s.sid, s.cid),
            LogLine(
                f"{s.label}: waiting DefaultTime2Wait {s.time2wait:g}s, then reconnecting "
                f"(replacement timeout {s.replacement_timeout:g}s)"
            ),
        ]

    def due(self) -> list[Action]:
        """Attempts whose wait is over (or sessions whose bound ran out)."""
        now = self.clock()
        out: list[Action] = []
        for track in self._tracks.values():
            if track.phase not in (Phase.WAITING, Phase.LATE_WAITING) or now < track.wake_at:
                continue
            s = track.session
            if track.phase is Phase.LATE_WAITING:
                self._move(track, E.WAIT_OVER)
                track.attempts += 1
                out.append(Reconnect(s.sid, track.attempts, self.attempt_bound))
                continue
            left = track.failed_at + s.replacement_timeout - now
            if left <= 0:
                self._move(track, E.TIMED_OUT)
                track.wake_at = now + self.late_interval
                out += [
                    LogLine(
                        f"{s.label}: not recovered within the replacement timeout {s.replacement_timeout:g}s "
                        f"({track.attempts} attempt(s)); the kernel fails its queued I/O; reconnecting every "
                        f"{self.late_interval:g}s until the portal is back",
                        warning=True,
                    ),
                    TimedOut(s.sid),
                ]
                continue
            self._move(track, E.WAIT_OVER)
            track.attempts += 1
            out.append(Reconnect(s.sid, track.attempts, min(self.attempt_bound, left)))
        return out

    def attempt_done(self, sid: int, error: str | None) -> list[Action]:
        track = self._tracks.get(sid)
        late = track is not None and track.phase is Phase.LATE_ATTEMPTING
        if track is None or not self._move(track, E.RECOVERED if error is None else E.ATTEMPT_FAILED):
            return []
        s, now = track.session, self.clock()
        if error is None:
            took = now - track.failed_at
            after = "; its I/O had failed meanwhile (past the replacement timeout)" if late else ""
            return [LogLine(f"{s.label}: recovered after {took:.1f}s ({track.attempts} attempt(s)){after}")]
        if late:  # a long outage: attempts 1, 2, 4, 8... are logged, not every one (the kernel log stays small)
            track.wake_at = now + self.late_interval
            n = track.attempts
            if not logged_attempt(n):
                return []
            return [
                LogLine(
                    f"{s.label}: attempt {n} failed: {error}; still reconnecting every {self.late_interval:g}s "
                    f"(down {now - track.failed_at:.0f}s)",
                    warning=True,
                )
            ]
        delay = self.backoff[min(track.attempts - 1, len(self.backoff) - 1)]
        left = track.failed_at + s.replacement_timeout - now
        track.wake_at = now + min(delay, max(0.0, left))
        return [
            LogLine(
                f"{s.label}: attempt {track.attempts} failed: {error}; next in {min(delay, max(0.0, left)):.1f}s "
                f"({max(0.0, left):.0f}s of the replacement timeout left)",
                warning=True,
            )
        ]
