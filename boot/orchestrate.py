"""`pyiscsi boot` as a sequence of bounded steps: network, (discovery,) login + kernel handover, disk.

The order, the bounds, the retries and what is fatal live here; the work itself is behind `Steps`, so tests
drive the whole sequence with fakes and a FakeClock, and `boot.live.LiveSteps` does it for real.

Rules:
- The first target of the plan carries the root. Targets with its name and LUN at other portals (a second
  netroot=, a second iBFT target, what discovery found) are more paths of the root LUN (boot.paths). Other
  targets are logged in too, but their failure is a warning.
- Every path logs in at once, one thread each, each under its own 'login' bound (and retries), then its own
  'disk' bound. A path that fails costs its bound and one warning line naming it and the cause; the boot fails
  only when every path of the root LUN failed (one path: its own error, as always; several: one line naming
  each path's cause). The sessions come back in a fixed order: the root LUN's paths, then the others.
- A LUN with two or more paths gets a short replacement timeout in its kernel sessions
  (boot.paths.replacement_for), so dm-multipath moves I/O to a live path quickly.
- A login that fails for a reason that may pass (connection refused or reset, target busy) is retried with a
  doubling pause until the 'login' bound runs out; the timeout then names the last failure. A refusal that will
  not pass (authentication, no such target) fails at once.
- rd.iscsi.login_retry_max=<n> (n > 0) makes that at most n attempts per target, still under the 'login' bound
  (0, or not given: as many as the bound allows).
- rd.iscsi.testroute=1 (dracut's default): a target the routing table has no route to is not tried; for the root
  that is the boot's failure (one line naming the target), for another target a warning.
- rd.iscsi.waitnet=0: the bring-up returns as soon as an interface is up that reaches the root target
  (`Steps.bring_up` reads it from the plan); =1 (the default) waits for every interface.
- root=dhcp / netroot=dhcp: the targets are the first lease's root path (DHCP option 17), parsed as a netroot=
  value (boot.planner.targets_from_root_path); no lease with one is a one-line network failure.
- Everything runs under the plan's 'total' bound; each phase has its own bound beneath it.
"""

from __future__ import annotations

import functools
import ipaddress
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from boot.net.state import InterfaceState
from boot.paths import group_paths, lun_key, replacement_for
from boot.plan import BootPlan, TargetPlan
from boot.sessions import SessionState
from boot.timeline import Timeline
from initiator.deadline import Deadline
from initiator.errors import BadInputError, IscsiError, NetworkError, PyiscsiError, WaitTimeout
from initiator.printable import printable
from initiator.record import record, replace

FIRST_PAUSE = 0.5
MAX_PAUSE = 4.0
JOIN_SLACK = 5.0  # seconds beyond the total bound a login thread is waited for (its own bounds end it first)
T = TypeVar("T")


class Steps(Protocol):
    def bring_up(self, plan: BootPlan, deadline: Deadline) -> tuple[InterfaceState, ...]: ...

    def discover(self, target: TargetPlan, initiator: str, deadline: Deadline) -> list[TargetPlan]:
        """The plan's discovery entry expanded into one TargetPlan per target found (names filled in)."""
        ...

    def attach(self, target: TargetPlan, initiator: str, plan: BootPlan, deadline: Deadline) -> SessionState:
        """Log in and hand the connection to the kernel; `device` is still None in the result."""
        ...

    def wait_disk(self, session: SessionState, deadline: Deadline) -> str: ...

    def has_route(self, address: str) -> bool:
        """Whether the routing table reaches `address` (an IP address), as `ip route get` answers."""
        ...

    def sleep(self, seconds: float) -> None: ...


def retryable(exc: PyiscsiError) -> bool:
    if isinstance(exc, NetworkError):
        return True
    return isinstance(exc, IscsiError) and bool(getattr(exc, "retryable", False))


def with_retries(
    attempt: Callable[[Deadline], SessionState],
    deadline: Deadline,
    sleep: Callable[[float], None],
    what: str,
    attempts: int | None = None,
) -> SessionState:
    """Run `attempt` until it succeeds, fails for good, `attempts` (None: no count) have failed, or `deadline`
    runs out (WaitTimeout naming the cause)."""
    pause = FIRST_PAUSE
    tried = 0
    while True:
        try:
            tried += 1
            return attempt(deadline)
        except WaitTimeout:
            raise
        except PyiscsiError as exc:
            if not retryable(exc):
                raise
            if attempts is not None and tried >= attempts:
                kind = NetworkError if isinstance(exc, NetworkError) else IscsiError
                raise kind(f"{what}: {exc} ({tried} attempts, rd.iscsi.login_retry_max={attempts})") from None
            if deadline.remaining() <= pause:
                raise deadline.timeout(f"{what}: {exc}") from None
            sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)


def is_ip_address(text: str) -> bool:
    """dracut's is_ip: only an address is route-checked (a host name is resolved by the login itself)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def dhcp_targets(plan: BootPlan, states: tuple[InterfaceState, ...]) -> tuple[TargetPlan, ...]:
    """root=dhcp: the first interface's lease that carries a root path gives the targets (dracut tries the
    interfaces in turn and takes the first valid root-path)."""
    from boot.planner import targets_from_root_path

    for state in states:
        if state.root_path:
            return targets_from_root_path(plan, state.root_path, printable(state.name))
    names = ", ".join(printable(s.name) for s in states) or "no interface"
    raise NetworkError(f"netroot=dhcp: no DHCP lease carried a root path (option 17) ({names})")


def _label(t: TargetPlan) -> str:
    """A target as a warning or error names it (a discovered name came from the network: escaped)."""
    host = f"[{t.address}]" if ":" in t.address else t.address
    return f"{printable(t.name or '(discovery)')} at {printable(host)}:{t.port} lun {t.lun}"


class RootPathsFailed(PyiscsiError):
    """Every path of the root LUN failed: one line naming each path and its cause. The exit status is the first
    path's (its error type says what kind of failure it was)."""

    def __init__(self, causes: list[tuple[TargetPlan, PyiscsiError]]) -> None:
        self.causes = causes
        self.exit_status = causes[0][1].exit_status
        text = "; ".join(f"{_label(t)}: {exc}" for t, exc in causes)
        super().__init__(f"every path of the root LUN failed: {text}")


@record
class PathJob:
    """One login to make: the target, the plan entry it came from, whether it is a path of the root LUN, how many
    paths its LUN has, and whether the routing table is asked first (named plan entries, as dracut does)."""

    target: TargetPlan
    entry: int
    root: bool
    paths: int
    check_route: bool


_UNFINISHED = object()


def run_concurrently(jobs: list[Callable[[], T]], total: Deadline) -> list[T | PyiscsiError]:
    """Run each job in a thread of its own and wait for all of them: each result, or the PyiscsiError it raised.
    Every job is bounded by its own deadlines; the wait for it by what is left of `total` plus JOIN_SLACK (a job
    still running then counts as the total bound run out). One job runs in this thread. Any other exception is a
    bug and is raised here."""
    results: list[object] = [_UNFINISHED] * len(jobs)

    def run(index: int) -> None:
        try:
            results[index] = jobs[index]()
        except BaseException as exc:  # carried to the caller's thread, raised or returned there
            results[index] = exc

    if len(jobs) == 1:
        run(0)
    else:
        threads = [
            threading.Thread(target=run, args=(i,), name=f"pyiscsi-login-{i}", daemon=True) for i in range(len(jobs))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=total.remaining() + JOIN_SLACK)
    out: list[T | PyiscsiError] = []
    for result in results:
        if result is _UNFINISHED:
            result = total.timeout("a login or disk wait did not return")
        elif isinstance(result, BaseException) and not isinstance(result, PyiscsiError):
            raise result
        out.append(result)  # type: ignore[arg-type]
    return out


def run_boot(
    plan: BootPlan,
    steps: Steps,
    timeline: Timeline,
    warn: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
) -> list[SessionState]:
    """Carry out the plan; returns the sessions with their disks: the root LUN's paths first, then the others,
    each in plan order."""
    if not plan.targets and plan.dhcp_root is None:
        raise BadInputError("netroot", None, "no iSCSI target in the command line (netroot=, root=iscsi:) or the iBFT")
    if not plan.initiator_name:
        raise BadInputError("rd.iscsi.initiator", None, "no initiator name could be resolved")
    initiator = plan.initiator_name
    total = Deadline("total", plan.timeouts.total, clock=clock)
    timeline.mark("plan", f"{len(plan.interfaces)} interface(s), {len(plan.targets)} target(s)")

    states = steps.bring_up(plan, total)
    for state in states:
        timeline.mark("address", f"{state.name} {' '.join(state.addresses)} ({state.seconds:.2f}s)")
        for dropped in state.warnings:  # a bad DHCP option was left out: said, never a failed boot (escaped)
            warn(f"{state.name}: {dropped}")
    if plan.dhcp_root is not None:
        plan = replace(plan, targets=dhcp_targets(plan, states))
        timeline.mark("root-path", ", ".join(_label(t) for t in plan.targets))

    lock = threading.Lock()  # the jobs run in threads: one line at a time, and Timeline.marks stays a list

    def mark(name: str, detail: str) -> None:
        with lock:
            timeline.mark(name, detail)

    def say(line: str) -> None:
        with lock:
            warn(line)

    jobs = _path_jobs(plan, steps, initiator, total, mark, say)
    results = run_concurrently(
        [functools.partial(_login, job, plan, steps, initiator, total, mark, say) for job in jobs], total
    )
    sessions: list[SessionState] = []
    root_failures: list[tuple[TargetPlan, PyiscsiError]] = []
    for job, result in zip(jobs, results, strict=True):
        if isinstance(result, SessionState):
            sessions.append(result)
        elif job.root:
            root_failures.append((job.target, result))
    root_paths = [job for job in jobs if job.root]
    if root_failures and len(root_failures) == len(root_paths):
        if len(root_failures) == 1:
            raise root_failures[0][1]  # one path: its own error, as a one-target boot always failed
        raise RootPathsFailed(root_failures)
    if len(root_paths) >= 2:
        up = [s for s in sessions if s.root]
        devices = " ".join(str(s.device) for s in up)
        timeline.mark("multipath", f"root LUN: {len(up)} of {len(root_paths)} paths up ({devices})")
    return [s for s in sessions if s.root] + [s for s in sessions if not s.root]


def require_route(plan: BootPlan, steps: Steps, target: TargetPlan) -> None:
    """rd.iscsi.testroute=1: a target the routing table does not reach is not tried (dracut's check)."""
    if plan.testroute and is_ip_address(target.address) and not steps.has_route(target.address):
        raise NetworkError(f"no route to {_label(target)} (rd.iscsi.testroute=1; =0 tries it anyway)")


def _path_jobs(
    plan: BootPlan,
    steps: Steps,
    initiator: str,
    total: Deadline,
    mark: Callable[[str, str], None],
    say: Callable[[str], None],
) -> list[PathJob]:
    """Every login to make, in plan order: discovery entries expanded first (concurrently), then the targets
    grouped into LUNs (boot.paths). The root LUN is the first target's; a discovery entry that finds nothing
    (or fails) is the boot's failure when it is the first, a warning otherwise."""

    def discover(planned: TargetPlan) -> list[TargetPlan]:
        require_route(plan, steps, planned)
        found = steps.discover(planned, initiator, total.child("login", plan.timeouts.login))
        if not found:
            raise IscsiError(f"discovery at {_label(planned)}: the portal reported no target")
        mark("discovery", f"{len(found)} target(s) at {planned.address}:{planned.port}")
        return found

    wanted = [i for i, t in enumerate(plan.targets) if t.name is None]
    results = run_concurrently([functools.partial(discover, plan.targets[i]) for i in wanted], total)
    found = dict(zip(wanted, results, strict=True))
    entries: list[tuple[int, TargetPlan, bool]] = []  # (plan entry, target, check the route)
    for index, planned in enumerate(plan.targets):
        result = found.get(index, [planned])
        if isinstance(result, PyiscsiError):
            if index == 0:
                raise result
            say(f"target {_label(planned)} left out: {result}")
            continue
        entries += [(index, target, index not in found) for target in result]
    if not entries:
        return []
    luns = {lun_key(lun.paths[0]): lun for lun in group_paths(t for _, t, _ in entries)}
    root_key = lun_key(entries[0][1])
    jobs: list[PathJob] = []
    seen: set[tuple[object, ...]] = set()
    for index, target, check_route in entries:
        key = lun_key(target)
        if (key, target.address, target.port) in seen:  # the same target at the same portal twice: one login
            continue
        seen.add((key, target.address, target.port))
        jobs.append(PathJob(target, index, key == root_key, len(luns[key].paths), check_route))
    return jobs


def _login(
    job: PathJob,
    plan: BootPlan,
    steps: Steps,
    initiator: str,
    total: Deadline,
    mark: Callable[[str, str], None],
    say: Callable[[str], None],
) -> SessionState:
    """One path: route check, login with retries under its own 'login' bound, then its disk under its own 'disk'
    bound. A failure is returned to run_boot; a path that is not the root's only one also says it (one line)."""
    target = job.target
    try:
        if job.check_route:
            require_route(plan, steps, target)
        replacement = replacement_for(plan, job.paths)
        login_plan = plan
        if replacement != plan.timeouts.replacement:  # a path of a multipath LUN: the kernel session gets it
            login_plan = replace(plan, timeouts=replace(plan.timeouts, replacement=replacement))
        attempts = plan.login_retry_max or None  # dracut: 0 is no limit of its own
        session = with_retries(
            lambda d: steps.attach(target, initiator, login_plan, d),
            total.child("login", plan.timeouts.login),
            steps.sleep,
            _label(target),
            attempts,
        )
        session = replace(session, root=job.root, replacement=replacement if job.paths >= 2 else None)
        held = session.session
        mark("login", f"{held.target} {held.portal.address}:{held.portal.port} session {held.sid}")
        device = steps.wait_disk(session, total.child("disk", plan.timeouts.disk))
        mark("disk", f"{device} lun {held.lun} of {held.target}")
        return replace(session, device=device)
    except PyiscsiError as exc:
        if not job.root:
            say(f"target {_label(target)} left out: {exc}")
        elif job.paths >= 2:
            say(f"path {_label(target)} of the root LUN left out: {exc}")
        raise
