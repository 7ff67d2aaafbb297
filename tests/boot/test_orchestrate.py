from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from boot.cmdline import parse_cmdline
from boot.net.state import InterfaceState
from boot.orchestrate import run_boot, with_retries
from boot.plan import BootPlan, DhcpRootPlan, InterfacePlan, TargetPlan, Timeouts
from boot.sessions import SessionState
from boot.timeline import Timeline
from initiator.credentials import Chap
from initiator.deadline import Deadline, FakeClock
from initiator.errors import BadInputError, CmdlineError, IscsiError, NetworkError, PyiscsiError, WaitTimeout
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.secret import Secret

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
    unreachable: set[str] = field(default_factory=set)  # addresses without a route
    root_path: str | None = None  # option 17 of eth0's lease

    def bring_up(self, plan, deadline):
        self.calls.append("net")
        return tuple(
            InterfaceState(name="eth0", mac="52:54:00:12:34:56", method="dhcp", addresses=("10.0.2.15/24",),
                           warnings=self.net_warnings, root_path=self.root_path)
            for _ in plan.interfaces
        )  # fmt: skip

    def has_route(self, address):
        self.calls.append(f"route {address}")
        return address not in self.unreachable

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
        "route 10.0.2.2",
        f"attach {ROOT.name}",
        f"disk {ROOT.name}",
        "route 10.0.2.2",
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
    assert steps.calls[2] == "discover 10.0.2.2"
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


# ---- rd.iscsi.testroute, rd.iscsi.login_retry_max --------------------------------------------------------------


FAR = TargetPlan(name="iqn.2026-11.test:far", address="192.0.2.9", port=3260, lun=0)


def test_testroute_root_without_a_route_fails_at_once_naming_it(clock):
    plan, steps, timeline, _ = make(clock, [FAR], unreachable={FAR.address})
    with pytest.raises(NetworkError, match=r"no route to iqn.2026-11.test:far at 192.0.2.9:3260 .*testroute"):
        run(plan, steps, timeline, warn=pytest.fail)
    assert not [c for c in steps.calls if c.startswith("attach")]


def test_testroute_other_target_without_a_route_is_skipped_with_a_line(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, FAR], unreachable={FAR.address})
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [s.session.target for s in sessions] == [ROOT.name]
    assert f"attach {FAR.name}" not in steps.calls
    assert len(warnings) == 1 and "no route to" in warnings[0] and FAR.name in warnings[0]


def test_testroute_0_tries_the_target_anyway(clock):
    plan, steps, timeline, _ = make(clock, [FAR], unreachable={FAR.address})
    sessions = run(replace(plan, testroute=False), steps, timeline, warn=pytest.fail)
    assert [s.session.target for s in sessions] == [FAR.name]
    assert not [c for c in steps.calls if c.startswith("route")]


def test_a_host_name_is_not_route_checked(clock):
    named = replace(ROOT, address="san.example.test")
    plan, steps, timeline, _ = make(clock, [named], unreachable={"san.example.test"})
    assert [s.session.target for s in run(plan, steps, timeline, warn=pytest.fail)] == [ROOT.name]


@pytest.mark.parametrize(
    ("retry_max", "failures", "attempts", "outcome"),
    [
        (None, 3, 4, "ok"),  # not given: retried as long as the login bound allows
        (0, 3, 4, "ok"),  # dracut's 0: no limit of its own
        (4, 3, 4, "ok"),
        (3, 3, 3, "failed"),
        (1, 1, 1, "failed"),
        (2, 100, 2, "failed"),
    ],
)
def test_login_retry_max_is_the_number_of_attempts(clock, retry_max, failures, attempts, outcome):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: [Busy("target busy (0x0301)")] * failures})
    plan = replace(plan, login_retry_max=retry_max)
    if outcome == "ok":
        assert run(plan, steps, timeline, warn=pytest.fail)[0].root
    else:
        with pytest.raises(IscsiError) as info:
            run(plan, steps, timeline, warn=pytest.fail)
        assert f"{attempts} attempts" in str(info.value) and "0x0301" in str(info.value)
        assert f"rd.iscsi.login_retry_max={retry_max}" in str(info.value)
    assert len([c for c in steps.calls if c.startswith("attach")]) == attempts


def test_login_retry_max_keeps_the_error_kind(clock):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: [NetworkError("connection refused")] * 5})
    with pytest.raises(NetworkError, match=r"connection refused.*2 attempts"):
        run(replace(plan, login_retry_max=2), steps, timeline, warn=pytest.fail)


def test_login_retry_max_never_outlives_the_login_bound(clock):
    plan, steps, timeline, _ = make(clock, [ROOT], failures={ROOT.name: [NetworkError("refused")] * 1000})
    with pytest.raises(WaitTimeout) as info:
        run(replace(plan, login_retry_max=1000), steps, timeline, warn=pytest.fail)
    assert info.value.wait == "login"


# ---- root=dhcp / netroot=dhcp ------------------------------------------------------------------------------------


def dhcp_plan(clock, root_path, **plan_fields):
    plan, steps, timeline, lines = make(clock, [], root_path=root_path)
    return replace(plan, dhcp_root=DhcpRootPlan(), **plan_fields), steps, timeline, lines


def test_dhcp_root_path_becomes_the_root_target(clock):
    plan, steps, timeline, _ = dhcp_plan(clock, "iscsi:10.0.2.2::3261:3:iqn.2026-11.test:fromdhcp")
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert [(s.session.target, s.session.portal.port, s.session.lun, s.root) for s in sessions] == [
        ("iqn.2026-11.test:fromdhcp", 3261, 3, True)
    ]
    assert ("root-path", "iqn.2026-11.test:fromdhcp at 10.0.2.2:3261 lun 3") in [(m[0], m[2]) for m in timeline.marks]


def test_dhcp_root_path_takes_the_command_lines_chap_unless_it_has_its_own(clock):
    chap = Chap("user", Secret("secret-1234"))
    seen: list = []
    plan, steps, timeline, _ = dhcp_plan(clock, "iscsi:10.0.2.2::::iqn.2026-11.test:fromdhcp")
    plan = replace(plan, dhcp_root=DhcpRootPlan(chap=chap))
    steps.attach = lambda t, i, p, d: seen.append(t) or session_for(t, 1)
    run(plan, steps, timeline, warn=pytest.fail)
    assert seen[0].chap == chap
    plan2, steps2, timeline2, _ = dhcp_plan(clock, "iscsi:own:pw-5678@10.0.2.2::::iqn.2026-11.test:fromdhcp")
    steps2.attach = lambda t, i, p, d: seen.append(t) or session_for(t, 1)
    run(replace(plan2, dhcp_root=DhcpRootPlan(chap=chap)), steps2, timeline2, warn=pytest.fail)
    assert seen[1].chap.username == "own" and seen[1].chap.password.reveal() == "pw-5678"


def test_a_lease_without_a_root_path_is_one_line_naming_option_17(clock):
    plan, steps, timeline, _ = dhcp_plan(clock, None)
    with pytest.raises(NetworkError) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert str(info.value) == "netroot=dhcp: no DHCP lease carried a root path (option 17) (eth0)"


@pytest.mark.parametrize(
    ("root_path", "reason"),
    [
        ("10.0.2.2:/srv/nfsroot", "is not an iscsi: root"),
        ("nbd:10.0.2.2:2000", "is not an iscsi: root"),
        ("iscsi:10.0.2.2:17:3260:1:iqn.2026-11.test:x", "only TCP"),
        ("iscsi:10.0.2.2::99999:1:iqn.2026-11.test:x", "port"),
        ("iscsi:", "expected"),
    ],
)
def test_a_bad_root_path_fails_as_the_same_netroot_would(clock, root_path, reason):
    plan, steps, timeline, _ = dhcp_plan(clock, root_path)
    with pytest.raises(CmdlineError) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert info.value.field == "netroot" and reason in str(info.value)
    if root_path.startswith("iscsi:"):  # the same parser: the same reason as on the command line
        with pytest.raises(CmdlineError) as direct:
            parse_cmdline(f"netroot={root_path}")
        assert direct.value.reason == info.value.reason


def test_a_root_path_with_a_password_never_shows_it(clock):
    plan, steps, timeline, _ = dhcp_plan(clock, "iscsi:u:hunter2-pw@10.0.2.2:9:3260:1:iqn.2026-11.test:x")
    with pytest.raises(CmdlineError) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert "hunter2" not in str(info.value) and "***" in str(info.value)
