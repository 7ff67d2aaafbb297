"""`pyiscsi boot` as a sequence of bounded steps: network, (discovery,) login + kernel handover, disk.

The order, the bounds, the retries and what is fatal live here; the work itself is behind `Steps`, so tests
drive the whole sequence with fakes and a FakeClock, and `boot.live.LiveSteps` does it for real.

Rules:
- The first target of the plan carries the root: any failure on it fails the boot. Other targets (a second
  netroot, a second iBFT target) are logged in too, but their failure is a warning.
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

import ipaddress
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
from initiator.printable import printable

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
    attempts = plan.login_retry_max or None  # dracut: 0 is no limit of its own

    sessions: list[SessionState] = []
    for index, planned in enumerate(plan.targets):
        root = index == 0
        try:
            if plan.testroute and is_ip_address(planned.address) and not steps.has_route(planned.address):
                raise NetworkError(f"no route to {_label(planned)} (rd.iscsi.testroute=1; =0 tries it anyway)")
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
                    attempts,
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
