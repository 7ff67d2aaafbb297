"""Recovery of kernel-owned sessions after a connection failure (ERL 0), as a sans-I/O policy plus thin drivers.

Theory of operation. The kernel reports a failed connection with a CONN_ERROR event on NETLINK_ISCSI group 1
and then queues the session's I/O for up to its replacement timeout. `RecoveryPolicy` turns what happens (an
event, the clock passing a point, the outcome of an attempt) into actions, with no I/O of its own; it lives in
initiator.recovery_policy, whose table TRANSITIONS is the exact version of this summary:

    CONN_ERROR for a session we own   -> Log, StopConn (flag RECOVER)   and wait DefaultTime2Wait
    wait over                          -> Log, Reconnect(attempt n)
    attempt failed                     -> Log, and wait the next backoff step (BACKOFF), if the bound allows
    attempt succeeded                  -> Log ("recovered after ..."), watch again
    replacement timeout passed         -> Log, TimedOut (the kernel fails the queued I/O; we go on, every LATE_INTERVAL)
    K_DESTROY_SESSION for it           -> forget the session (someone else ended it)
    events lost (ENOBUFS on the socket) -> the loop reads each owned session's sysfs `state`: FAILED counts as
                                          a CONN_ERROR we missed

`reconnect()` is one attempt, the sequence kernel-facts.md gives: stop with recover (releases the old socket),
new TCP connection, BIND_CONN on the same sid/cid, login through the kernel with the same ISID and TSIH 0 and
ExpStatSN = the kernel's last StatSN + 1 (initiator.kernel_login), every SET_PARAM with EXP_STATSN from the new
login, START_CONN, rescan. `RecoveryLoop` is the driver around `NetlinkIscsi.next_event()`: it waits on the
event socket (and a stop descriptor) no longer than the policy's next wake-up, and executes the actions.

Every action and step is one line through the `log` callable the caller passes (the agent's writes to the
console and the kernel log). CHAP secrets travel as `Secret` and are revealed only in SET_PARAM payloads and on
the wire.
"""

from __future__ import annotations

import errno
import os
import select
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

from initiator import iscsi_if as nl
from initiator.chap import DEFAULT_ALGORITHMS, MD5_ONLY, with_md5_fallback
from initiator.deadline import Deadline
from initiator.errors import IscsiError, LocalProtocolError, PyiscsiError, WaitTimeout
from initiator.handoff import OPTIONAL_PARAMS, HandoffParams, kernel_params
from initiator.held_session import HeldSession
from initiator.kernel import SYSFS, KernelError, connection_dir, scan_host, session_dir
from initiator.kernel_login import Channel, drop_stale_errors, login_through_kernel
from initiator.login import LoggedIn, LoginConfig, Redirect
from initiator.negotiation import Offers
from initiator.portal import Portal
from initiator.record import record
from initiator.recovery_policy import (
    Action,
    LogLine,
    Reconnect,
    RecoveryPolicy,
    StopConn,
    TimedOut,
    logged_attempt,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from initiator.deadline import Clock

Log = Callable[[str], None]


@record
class OwnedSession:
    """A kernel session whose recovery we own: the session (CHAP secrets included, which the sessions file never
    holds: the agent reloads them from the plan) and how long and how patiently to recover it."""

    session: HeldSession
    replacement_timeout: float = 120.0
    time2wait: float = 2.0
    root: bool = False

    def __post_init__(self) -> None:
        if self.session.sid is None or self.session.host_no is None:
            raise LocalProtocolError(f"recovery: {self.session.label} has no kernel session (sid, host) to own")

    @property
    def sid(self) -> int:
        assert self.session.sid is not None
        return self.session.sid

    @property
    def cid(self) -> int:
        return self.session.cid

    @property
    def host_no(self) -> int:
        assert self.session.host_no is not None
        return self.session.host_no

    @property
    def label(self) -> str:
        return self.session.label


# -- one attempt, against the kernel ----------------------------------------------------------------------------


def last_exp_statsn(sid: int, cid: int, sysfs: Path = SYSFS) -> int:
    """The kernel's ExpStatSN of the failed connection (0 when sysfs does not say)."""
    path = connection_dir(sid, cid, sysfs) / "exp_statsn"
    try:
        return int(path.read_text().strip()) & 0xFFFFFFFF
    except (OSError, ValueError):
        return 0


def set_params(channel: Channel, sid: int, cid: int, params: HandoffParams, deadline: Deadline) -> int:
    """Every SET_PARAM; optional ones this kernel lacks (ENOSYS) are skipped. Returns how many were set."""
    count = 0
    for param, value in kernel_params(params):
        try:
            channel.request(nl.set_param(channel.handle, sid, cid, param, value), deadline)
            count += 1
        except KernelError as exc:
            if exc.errno == errno.ENOSYS and param in OPTIONAL_PARAMS:
                continue
            raise KernelError(f"{exc} (parameter {param.name})", exc.errno) from None
    return count


def stop_for_recovery(channel: Channel, s: OwnedSession, deadline: Deadline) -> None:
    channel.request(nl.stop_conn(channel.handle, s.sid, s.cid, nl.StopFlag.RECOVER), deadline)


Connect = Callable[[Portal, Deadline], int]  # a connected TCP socket's fd, ours to close after BIND_CONN
Scan = Callable[[int], None]


def tcp_connect(portal: Portal, deadline: Deadline) -> int:
    from initiator.transport import Transport

    sock = Transport.connect(portal, deadline.child("connect", 10.0)).detach()
    return sock.detach()  # the bare fd: closed with os.close once the kernel holds its own reference


def _connect_and_login(
    channel: Channel,
    s: OwnedSession,
    attempt: int,
    deadline: Deadline,
    log: Log,
    connect: Connect,
    sysfs: Path,
    deferred: list[nl.Message] | None,
    algorithms: tuple[int, ...],
) -> LoggedIn | Redirect:
    held = s.session
    stop_for_recovery(channel, s, deadline)  # again: a failed try may have left a socket bound
    drop_stale_errors(channel, s.sid, s.cid, deferred, deadline.clock)
    exp_statsn = last_exp_statsn(s.sid, s.cid, sysfs)
    if logged_attempt(attempt):
        log(f"{s.label}: attempt {attempt}: connecting to {held.portal.address}:{held.portal.port}")
    fd = connect(held.portal, deadline)
    try:
        channel.request(nl.bind_conn(channel.handle, s.sid, s.cid, fd), deadline)
    finally:
        os.close(fd)  # iscsi_tcp holds its own reference once bound; on failure the socket simply goes
    config = LoginConfig(
        initiator_name=held.initiator_name,
        target_name=held.target,
        isid=held.isid,
        tsih=0,  # session reinstatement: the target replaces the old session of this ISID
        cid=s.cid,
        exp_statsn=exp_statsn,
        chap=held.credentials,
        chap_algorithms=algorithms,
        offers=Offers(header_digest=(held.header_digest,), data_digest=(held.data_digest,)),
    )
    return login_through_kernel(channel, s.sid, s.cid, config, deadline, deferred)


def reconnect(
    channel: Channel,
    s: OwnedSession,
    attempt: int,
    deadline: Deadline,
    log: Log,
    *,
    connect: Connect = tcp_connect,
    scan: Scan | None = None,
    sysfs: Path = SYSFS,
    deferred: list[nl.Message] | None = None,
    md5_learned: set[int] | None = None,
) -> int:
    """One recovery attempt; raises PyiscsiError naming the failed step. Returns the new TSIH.

    `md5_learned`: sessions whose target took only MD5 before; they offer MD5 alone at once, and a session that
    needed the fallback this time is added, so later recoveries spend no refused login on it."""
    learned = md5_learned if md5_learned is not None else set()

    def login(algorithms: tuple[int, ...]) -> LoggedIn | Redirect:
        return _connect_and_login(channel, s, attempt, deadline, log, connect, sysfs, deferred, algorithms)

    def falling_back(refusal: PyiscsiError) -> None:
        log(f"{s.label}: attempt {attempt}: the target refused our CHAP hash ({refusal}); again with MD5 alone")

    outcome, algorithms = with_md5_fallback(login, MD5_ONLY if s.sid in learned else DEFAULT_ALGORITHMS, falling_back)
    if algorithms == MD5_ONLY:
        learned.add(s.sid)
    if not isinstance(outcome, LoggedIn):
        raise IscsiError(f"{s.label}: the target redirected the re-login to {outcome.address}:{outcome.port}")
    result = outcome.result
    params = HandoffParams.from_login(result, s.session.relogged(result), recovery_timeout=s.replacement_timeout)
    count = set_params(channel, s.sid, s.cid, params, deadline)
    channel.request(nl.start_conn(channel.handle, s.sid, s.cid), deadline)
    (scan or (lambda host: scan_host(host, sysfs)))(s.host_no)
    log(
        f"{s.label}: attempt {attempt}: logged in through the kernel (ISID {s.session.isid.hex()}, new TSIH "
        f"{result.tsih}, "
        f"ExpStatSN {result.exp_statsn}), {count} parameters set, connection started, host{s.host_no} rescanned"
    )
    return result.tsih


# -- the driver loop ----------------------------------------------------------------------------------------------


class EventSource(Channel, Protocol):
    def events_fileno(self) -> int: ...


class RecoveryLoop:
    """Listens for connection errors and runs the policy's actions until `stop_fd` becomes readable."""

    def __init__(
        self,
        channel: EventSource,
        sessions: Iterable[OwnedSession],
        log: Log,
        *,
        clock: Clock = time.monotonic,
        reconnect_fn: Callable[..., int] = reconnect,
        sysfs: Path = SYSFS,
    ) -> None:
        self.sysfs = sysfs
        self.channel = channel
        self.clock = clock
        self.policy = RecoveryPolicy(sessions, clock)
        self.log = log
        self.reconnect_fn = reconnect_fn
        self.deferred: list[nl.Message] = []
        # descriptors the owner also waits on, with what to do when one is readable (the agent's requests)
        self.also_wait: dict[int, Callable[[], None]] = {}
        self.timed_out: set[int] = set()  # sessions whose queued I/O the kernel failed at least once
        self.recovered = 0
        self.md5_learned: set[int] = set()

    def execute(self, actions: list[Action]) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, LogLine):
                self.log(action.text)
            elif isinstance(action, StopConn):
                session = self._session(action.sid)
                try:
                    stop_for_recovery(self.channel, session, Deadline("stop conn", 5.0, clock=self.clock))
                except (PyiscsiError, OSError) as exc:
                    self.log(f"{session.label}: stop for recovery failed: {exc}")
            elif isinstance(action, Reconnect):
                session = self._session(action.sid)
                deadline = Deadline(f"recovery attempt {action.attempt}", action.bound, clock=self.clock)
                error: str | None = None
                try:
                    self.reconnect_fn(
                        self.channel, session, action.attempt, deadline, self.log,
                        deferred=self.deferred, md5_learned=self.md5_learned,
                    )  # fmt: skip
                    self.recovered += 1
                except (PyiscsiError, OSError) as exc:
                    error = str(exc) or type(exc).__name__
                queue = self.policy.attempt_done(action.sid, error) + queue
            elif isinstance(action, TimedOut):
                self.timed_out.add(action.sid)

    def resync(self) -> None:
        """Treat every owned session whose sysfs state is FAILED as a connection error we missed."""
        for session in self.policy.owned():
            state = session_dir(session.sid, self.sysfs) / "state"
            try:
                failed = state.read_text().strip() == "FAILED"
            except OSError:
                continue
            if failed:
                missed = nl.Message(
                    nl.UEvent.CONN_ERROR,
                    0,
                    0,
                    {"sid": session.sid, "cid": session.cid, "error": nl.IscsiErr.CONN_FAILED},
                    b"",
                )
                self.execute(self.policy.on_event(missed))

    def _session(self, sid: int) -> OwnedSession:
        return next(s for s in self.policy.owned() if s.sid == sid)

    def step(self, timeout: float, stop_fd: int | None = None) -> bool:
        """Wait at most `timeout` for an event or the policy's next wake-up; False once told to stop."""
        while self.deferred:
            self.execute(self.policy.on_event(self.deferred.pop(0)))
        self.execute(self.policy.due())
        wake = self.policy.next_wake()
        if wake is not None:
            timeout = max(0.0, min(timeout, wake - self.clock()))
        fds = [self.channel.events_fileno(), *self.also_wait] + ([stop_fd] if stop_fd is not None else [])
        try:
            ready, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; a signal handler may still land here
            ready = []
        if self.channel.events_fileno() in ready:  # before honouring a stop: an error that came is ours
            try:
                msg = self.channel.next_event(Deadline("netlink event", 0.5, clock=self.clock))
            except WaitTimeout:
                pass
            except (PyiscsiError, OSError) as exc:  # e.g. ENOBUFS: the kernel dropped events we never saw
                self.log(f"netlink events: {exc}; looking in sysfs for failed sessions instead")
                self.resync()
            else:
                self.execute(self.policy.on_event(msg))
        for fd in ready:
            if fd in self.also_wait:
                self.also_wait[fd]()
        self.execute(self.policy.due())
        return not (stop_fd is not None and stop_fd in ready)

    def run(self, stop_fd: int, tick: float = 1.0) -> None:
        """Until stop_fd is readable. A recovery under way is finished first (bounded by its timeout), so that
        whoever takes ownership next never finds a half-done re-login. A session that failed before we listened
        (its error went to no one) is found in sysfs first."""
        self.resync()
        while self.step(tick, stop_fd):
            pass
        while self.policy.busy():
            self.step(tick)
