from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from boot.net.state import InterfaceState
from boot.orchestrate import run_boot, with_retries
from boot.plan import BootPlan, InterfacePlan, TargetPlan, Timeouts
from boot.sessions import SessionState
from boot.timeline import Timeline
from initiator.deadline import Deadline, FakeClock
from initiator.errors import BadInputError, IscsiError, NetworkError, PyiscsiError, WaitTimeout
from initiator.held_session import HeldSession
from initiator.portal import Portal

ROOT = TargetPlan(name="iqn.2026-11.test:root", address="10.0.2.2", port=3260, lun=1)
DATA = TargetPlan(name="iqn.2026-11.test:data", address="10.0.2.2", port=3261, lun=2)
DISCOVER = TargetPlan(name=None, address="10.0.2.2", port=3260, lun=1)


class Busy(IscsiError):
    retryable = True


def session_for(t: TargetPlan, sid: int) -> SessionState:
    held = HeldSession(
        target=t.name or "?",
        portal=Portal(t.address, t.port),
        tpgt=1,
        lun=t.lun,
        sid=sid,
        host_no=sid + 1,
        isid=bytes.fromhex("800000000001"),
        tsih=sid,
        initiator_name="iqn.2026-11.test:init",
    )
    return SessionState(held, device=None, root=False, seconds=0.1)


@dataclass
class FakeSteps:
    clock: FakeClock
    failures: dict[str, list[PyiscsiError]] = field(default_factory=dict)  # target name -> errors, in order
    discovered: list[TargetPlan] = field(default_factory=list)
    disk_missing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    net_warnings: tuple[str, ...] = ()

    def bring_up(self, plan, deadline):
        self.calls.append("net")
        return tuple(
            InterfaceState(name="eth0", mac="52:54:00:12:34:56", method="dhcp", addresses=("10.0.2.15/24",),
                           warnings=self.net_warnings)
            for _ in plan.interfaces
        )  # fmt: skip

    def discover(self, target, initiator, deadline):
        self.calls.append(f"discover {target.address}")
        return list(self.discovered)

    def attach(self, target, initiator, plan, deadline):
        self.calls.append(f"attach {target.name}")
        self.clock.advance(0.1)
        errors = self.failures.get(target.name or "", [])
        if errors:
            raise errors.pop(0)
        return session_for(target, sid=len([c for c in self.calls if c.startswith("attach")]))

    def wait_disk(self, row, deadline):
        session = row.session
        self.calls.append(f"disk {session.target}")
        if session.target in self.disk_missing:
            raise deadline.timeout(f"no block device for lun {session.lun}")
        return f"/dev/sd{chr(ord('a') + session.sid - 1)}"

    def sleep(self, seconds):
        self.calls.append(f"sleep {seconds:g}")
        self.clock.advance(seconds)


def make(clock: FakeClock, targets, **kw) -> tuple[BootPlan, FakeSteps, Timeline, list[str]]:
    plan = BootPlan(
        initiator_name="iqn.2026-11.test:init",
        interfaces=(InterfacePlan(name="eth0"),),
        targets=tuple(targets),
        timeouts=Timeouts(login=5.0, disk=3.0, total=60.0),
    )
    lines: list[str] = []
    timeline = Timeline(out=lines.append, kmsg=None, clock=lambda: clock.now - 1000.0)
    return plan, FakeSteps(clock=clock, **kw), timeline, lines


@pytest.fixture
def clock():
    return FakeClock()


def run(plan, steps, timeline, warn):
    return run_boot(plan, steps, timeline, warn=warn, clock=steps.clock)


def test_root_then_data_in_plan_order_with_milestones(clock):
    plan, steps, timeline, lines = make(clock, [ROOT, DATA])
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert steps.calls == [
        "net",
        f"attach {ROOT.name}",
        f"disk {ROOT.name}",
        f"attach {DATA.name}",
        f"disk {DATA.name}",
    ]
    assert [(s.session.target, s.root, s.device) for s in sessions] == [
        (ROOT.name, True, "/dev/sda"),
        (DATA.name, False, "/dev/sdb"),
    ]
    assert [m[0] for m in timeline.marks] == ["plan", "address", "login", "disk", "login", "disk"]
    assert all(line.startswith("PYISCSI-MARK ") for line in lines)


@pytest.mark.parametrize(
    "errors, pauses",
    [
        ([NetworkError("refused")], ["sleep 0.5"]),
        ([NetworkError("refused"), Busy("busy (0x0301)"), NetworkError("reset")], ["sleep 0.5", "sleep 1", "sleep 2"]),
    ],
)
def test_passing_failures_are_retried_with_doubling_pauses(clock, errors, pauses):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: list(errors)})
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert [c for c in steps.calls if c.startswith("sleep")] == pauses
    assert sessions[0].root


def test_refused_login_is_not_retried(clock):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: [IscsiError("authentication failed (0x0201)")]})
    with pytest.raises(IscsiError, match="authentication"):
        run(plan, steps, timeline, warn=pytest.fail)
    assert [c for c in steps.calls if c.startswith("attach")] == [f"attach {ROOT.name}"]


def test_target_down_ends_as_login_timeout_naming_the_cause(clock):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: [NetworkError("connection refused")] * 100})
    with pytest.raises(WaitTimeout) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert info.value.wait == "login" and info.value.bound == 5.0
    assert "connection refused" in str(info.value) and ROOT.name in str(info.value)
    assert clock.now - 1000.0 <= 5.0 + 0.1


def test_missing_root_disk_is_fatal_and_names_the_disk_wait(clock):
    plan, steps, timeline, _ = make(clock, [ROOT], disk_missing={ROOT.name})
    with pytest.raises(WaitTimeout) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert info.value.wait == "disk"


def test_failing_second_target_is_a_warning(clock):
    plan, steps, timeline, _ = make(
        clock, [ROOT, DATA], failures={DATA.name: [IscsiError("target not found (0x0203)")]}
    )
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [s.session.target for s in sessions] == [ROOT.name]
    assert len(warnings) == 1 and DATA.name in warnings[0] and "0x0203" in warnings[0]


def test_what_the_bring_up_left_out_is_a_warning_not_a_failure(clock):
    dropped = ("option 15 (domain name) 'a..b' dropped: an empty label", "option 26 (MTU) 65535 dropped")
    plan, steps, timeline, _ = make(clock, [ROOT], net_warnings=dropped)
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [s.session.target for s in sessions] == [ROOT.name]
    assert warnings == [f"eth0: {d}" for d in dropped]


def test_discovery_logs_into_every_target_found_root_first(clock):
    found = [ROOT, DATA]
    plan, steps, timeline, _ = make(clock, [DISCOVER], discovered=found)
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert steps.calls[1] == "discover 10.0.2.2"
    assert [(s.session.target, s.root) for s in sessions] == [(ROOT.name, True), (DATA.name, False)]


def test_discovery_finding_nothing_fails_the_root(clock):
    plan, steps, timeline, _ = make(clock, [DISCOVER], discovered=[])
    with pytest.raises(IscsiError, match="no target"):
        run(plan, steps, timeline, warn=pytest.fail)


@pytest.mark.parametrize(
    "plan, field",
    [
        (BootPlan(initiator_name="iqn.x:y"), "netroot"),
        (BootPlan(initiator_name=None, targets=(ROOT,)), "rd.iscsi.initiator"),
    ],
)
def test_nothing_to_do_is_bad_input_naming_the_option(plan, field):
    with pytest.raises(BadInputError) as info:
        run_boot(plan, FakeSteps(clock=FakeClock()), Timeline(out=lambda _: None, kmsg=None), warn=pytest.fail)
    assert info.value.field == field


def test_with_retries_never_sleeps_past_the_bound(clock):
    deadline = Deadline("login", 1.0, clock=clock)
    slept: list[float] = []

    def attempt(d):
        raise NetworkError("refused")

    def sleep(s):
        slept.append(s)
        clock.advance(s)

    with pytest.raises(WaitTimeout):
        with_retries(attempt, deadline, sleep, "t")
    assert sum(slept) <= 1.0
