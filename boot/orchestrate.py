"""`pyiscsi boot` as a sequence of bounded steps: network, (discovery,) login + kernel handover, disk.

The order, the bounds, the retries and what is fatal live here; the work itself is behind `Steps`, so tests
drive the whole sequence with fakes and a FakeClock, and `boot.live.LiveSteps` does it for real.

Rules:
- The first target of the plan carries the root: any failure on it fails the boot. Other targets (a second
  netroot, a second iBFT target) are logged in too, but their failure is a warning.
- A login that fails for a reason that may pass (connection refused or reset, target busy) is retried with a
  doubling pause until the 'login' bound runs out; the timeout then names the last failure. A refusal that will
  not pass (authentication, no such target) fails at once.
- Everything runs under the plan's 'total' bound; each phase has its own bound beneath it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from boot.net.state import InterfaceState
from boot.plan import BootPlan, TargetPlan
from boot.sessions import SessionState
from boot.timeline import Timeline
from initiator.deadline import Deadline
from initiator.errors import BadInputError, IscsiError, NetworkError, PyiscsiError, WaitTimeout

FIRST_PAUSE = 0.5
MAX_PAUSE = 4.0


class Steps(Protocol):
    def bring_up(self, plan: BootPlan, deadline: Deadline) -> tuple[InterfaceState, ...]: ...

    def discover(self, target: TargetPlan, initiator: str, deadline: Deadline) -> list[TargetPlan]:
        """The plan's discovery entry expanded into one TargetPlan per target found (names filled in)."""
        ...

    def attach(self, target: TargetPlan, initiator: str, plan: BootPlan, deadline: Deadline) -> SessionState:
        """Log in and hand the connection to the kernel; `device` is still None in the result."""
        ...

    def wait_disk(self, session: SessionState, deadline: Deadline) -> str: ...

    def sleep(self, seconds: float) -> None: ...


def retryable(exc: PyiscsiError) -> bool:
    if isinstance(exc, NetworkError):
        return True
    return isinstance(exc, IscsiError) and bool(getattr(exc, "retryable", False))


def with_retries(
    attempt: Callable[[Deadline], SessionState], deadline: Deadline, sleep: Callable[[float], None], what: str
) -> SessionState:
    """Run `attempt` until it succeeds, fails for good, or `deadline` runs out (WaitTimeout naming the cause)."""
    pause = FIRST_PAUSE
    while True:
        try:
            return attempt(deadline)
        except WaitTimeout:
            raise
        except PyiscsiError as exc:
            if not retryable(exc):
                raise
            if deadline.remaining() <= pause:
                raise deadline.timeout(f"{what}: {exc}") from None
            sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)


def _label(t: TargetPlan) -> str:
    host = f"[{t.address}]" if ":" in t.address else t.address
    return f"{t.name or '(discovery)'} at {host}:{t.port} lun {t.lun}"


def run_boot(
    plan: BootPlan,
    steps: Steps,
    timeline: Timeline,
    warn: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
) -> list[SessionState]:
    """Carry out the plan; returns the sessions with their disks, the root's first."""
    if not plan.targets:
        raise BadInputError("netroot", None, "no iSCSI target in the command line (netroot=, root=iscsi:) or the iBFT")
    if not plan.initiator_name:
        raise BadInputError("rd.iscsi.initiator", None, "no initiator name could be resolved")
    initiator = plan.initiator_name
    total = Deadline("total", plan.timeouts.total, clock=clock)
    timeline.mark("plan", f"{len(plan.interfaces)} interface(s), {len(plan.targets)} target(s)")

    for state in steps.bring_up(plan, total):
        timeline.mark("address", f"{state.name} {' '.join(state.addresses)} ({state.seconds:.2f}s)")
        for dropped in state.warnings:  # a bad DHCP option was left out: said, never a failed boot (escaped)
            warn(f"{state.name}: {dropped}")

    sessions: list[SessionState] = []
    for index, planned in enumerate(plan.targets):
        root = index == 0
        try:
            if planned.name is None:
                found = steps.discover(planned, initiator, total.child("login", plan.timeouts.login))
                if not found:
                    raise IscsiError(f"discovery at {_label(planned)}: the portal reported no target")
                timeline.mark("discovery", f"{len(found)} target(s) at {planned.address}:{planned.port}")
            else:
                found = [planned]
            for n, target in enumerate(found):
                session = with_retries(
                    lambda d, t=target: steps.attach(t, initiator, plan, d),
                    total.child("login", plan.timeouts.login),
                    steps.sleep,
                    _label(target),
                )
                session = replace(session, root=root and n == 0)
                held = session.session
                timeline.mark("login", f"{held.target} {held.portal.address}:{held.portal.port} session {held.sid}")
                device = steps.wait_disk(session, total.child("disk", plan.timeouts.disk))
                sessions.append(replace(session, device=device))
                timeline.mark("disk", f"{device} lun {held.lun} of {held.target}")
        except PyiscsiError as exc:
            if root:
                raise
            warn(f"target {_label(planned)} left out: {exc}")
    return sessions
