from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from boot.cmdline import parse_cmdline
from boot.net.state import InterfaceState
from boot.orchestrate import RootPathsFailed, run_boot, with_retries
from boot.paths import MULTIPATH_REPLACEMENT
from boot.plan import BootPlan, DhcpRootPlan, InterfacePlan, TargetPlan, Timeouts
from boot.sessions import SessionState
from boot.timeline import Timeline
from initiator.credentials import Chap
from initiator.deadline import Deadline, FakeClock
from initiator.errors import BadInputError, CmdlineError, IscsiError, NetworkError, PyiscsiError, WaitTimeout
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.record import replace
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
    failures: dict[str, list[PyiscsiError]] = field(default_factory=dict)  # target name or portal -> errors
    discovered: list[TargetPlan] = field(default_factory=list)
    disk_missing: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    net_warnings: tuple[str, ...] = ()
    unreachable: set[str] = field(default_factory=set)  # addresses without a route
    root_path: str | None = None  # option 17 of eth0's lease
    replacements: dict[str, float] = field(default_factory=dict)  # portal -> the replacement the attach was given
    barrier: threading.Barrier | None = None  # every attach waits here: proves the logins run at once
    lock: threading.Lock = field(default_factory=threading.Lock)
    attached: int = 0

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
        portal = f"{target.address}:{target.port}"
        with self.lock:
            self.calls.append(f"attach {target.name}")
            self.replacements[portal] = plan.timeouts.replacement
            self.clock.advance(0.1)
            errors = self.failures.get(portal) or self.failures.get(target.name or "", [])
            error = errors.pop(0) if errors else None
            if error is None:
                self.attached += 1
                sid = self.attached
        if self.barrier is not None:
            self.barrier.wait()
        if error is not None:
            raise error
        return session_for(target, sid=sid)

    def wait_disk(self, row, deadline):
        session = row.session
        self.calls.append(f"disk {session.target}")
        if {session.target, f"{session.portal.address}:{session.portal.port}"} & self.disk_missing:
            raise deadline.timeout(f"no block device for lun {session.lun}")
        return f"/dev/sd{chr(ord('a') + session.sid - 1)}"

    def sleep(self, seconds):
        with self.lock:
            self.calls.append(f"sleep {seconds:g}")
            self.clock.advance(seconds)


def make(clock: FakeClock, targets, **kw) -> tuple[BootPlan, FakeSteps, Timeline, list[str]]:
    plan = BootPlan(
        initiator_name="iqn.2026-11.test:init",
        interfaces=(InterfacePlan(name="eth0"),),
        targets=tuple(targets),
        timeouts=Timeouts(login=5.0, disk=3.0, total=60.0),
        dm_multipath=True,  # the image carries multipathd (a LUN's paths get the short replacement timeout)
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
    assert steps.calls[0] == "net"
    per_target = [["route 10.0.2.2", f"attach {t.name}", f"disk {t.name}"] for t in (ROOT, DATA)]
    assert sorted(steps.calls[1:]) == sorted(per_target[0] + per_target[1])
    for name in (ROOT.name, DATA.name):  # each target: its login, then its disk
        assert steps.calls.index(f"attach {name}") < steps.calls.index(f"disk {name}")
    assert [(s.session.target, s.root) for s in sessions] == [(ROOT.name, True), (DATA.name, False)]
    assert sorted(s.device for s in sessions) == ["/dev/sda", "/dev/sdb"]
    assert [m[0] for m in timeline.marks][:2] == ["plan", "address"]
    assert sorted(m[0] for m in timeline.marks[2:]) == ["disk", "disk", "login", "login"]
    assert all(line.startswith("PYISCSI-MARK ") for line in lines)
    assert all(s.replacement is None for s in sessions)  # one path each: the plan's replacement timeout


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


# ---- paths of one LUN (boot.paths) -------------------------------------------------------------------------------


ROOT2 = replace(ROOT, address="10.0.3.2")  # the root LUN at a second portal
ROOT3 = replace(ROOT, address="fec0::2", port=3261)
P1, P2, P3 = "10.0.2.2:3260", "10.0.3.2:3260", "fec0::2:3261"


def test_every_path_logs_in_at_once():
    # each attach waits for the others: run one after another, the barrier breaks and the boot fails
    clock = FakeClock()
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2, DATA], barrier=threading.Barrier(3, timeout=30))
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert len(sessions) == 3


def test_root_lun_paths_come_first_in_plan_order_then_the_others(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, DATA, ROOT2, ROOT3])
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert [(s.session.portal.address, s.session.target, s.root) for s in sessions] == [
        ("10.0.2.2", ROOT.name, True),
        ("10.0.3.2", ROOT.name, True),
        ("fec0::2", ROOT.name, True),
        ("10.0.2.2", DATA.name, False),
    ]
    (multipath,) = [m[2] for m in timeline.marks if m[0] == "multipath"]
    assert multipath.startswith("root LUN: 3 of 3 paths up (")


def test_multipath_sessions_get_the_short_replacement_timeout(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2, DATA])
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert steps.replacements == {P1: MULTIPATH_REPLACEMENT, P2: MULTIPATH_REPLACEMENT, "10.0.2.2:3261": 120.0}
    assert [s.replacement for s in sessions] == [MULTIPATH_REPLACEMENT, MULTIPATH_REPLACEMENT, None]


def test_without_dm_multipath_paths_keep_the_plain_replacement_timeout(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2])
    sessions = run(replace(plan, dm_multipath=False), steps, timeline, warn=pytest.fail)
    assert steps.replacements == {P1: 120.0, P2: 120.0}  # the root is one path's disk: it must ride out an outage
    assert [s.root for s in sessions] == [True, True]


def test_a_replacement_timeout_set_on_the_command_line_is_kept_for_paths(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2])
    plan = replace(plan, timeouts=replace(plan.timeouts, replacement=30.0), replacement_given=True)
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert steps.replacements == {P1: 30.0, P2: 30.0}
    assert [s.replacement for s in sessions] == [30.0, 30.0]


@pytest.mark.parametrize(
    ("down", "disk_missing", "cause"),
    [
        ({P1: [NetworkError("connection refused")] * 100}, set(), "wait 'login' ran out after 5s"),
        ({P2: [IscsiError("authentication failed (0x0201)")]}, set(), "authentication failed"),
        ({}, {P1}, "wait 'disk' ran out after 3s"),
        ({}, {P2}, "wait 'disk' ran out after 3s"),
    ],
)
def test_one_root_path_down_is_one_warning_not_the_boot(clock, down, disk_missing, cause):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2], failures=dict(down), disk_missing=set(disk_missing))
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    failed = next(iter(down or disk_missing))
    alive = "10.0.3.2" if failed == P1 else "10.0.2.2"
    assert [s.session.portal.address for s in sessions] == [alive]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"path {ROOT.name} at {failed} lun 1 of the root LUN left out: ")
    assert cause in warnings[0]
    assert all(s.root for s in sessions) and len(sessions) == 1


def test_a_down_path_costs_its_own_bound_only(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2], failures={P2: [NetworkError("connection refused")] * 100})
    run(plan, steps, timeline, warn=lambda _: None)
    assert clock.now - 1000.0 <= plan.timeouts.login + 0.5


def test_every_root_path_down_fails_in_one_line_naming_each_cause(clock):
    down = {P1: [NetworkError("connection refused")] * 100, P2: [IscsiError("authentication failed (0x0201)")]}
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2, DATA], failures=down)
    warnings: list[str] = []
    with pytest.raises(RootPathsFailed) as info:
        run(plan, steps, timeline, warn=warnings.append)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("every path of the root LUN failed: ")
    assert f"{ROOT.name} at 10.0.2.2:3260 lun 1: wait 'login' ran out after 5s" in text
    assert f"{ROOT.name} at 10.0.3.2:3260 lun 1: authentication failed (0x0201)" in text
    assert text.index("10.0.2.2:3260") < text.index("10.0.3.2:3260")  # plan order
    assert info.value.exit_status == WaitTimeout.exit_status  # the first path's kind
    assert len(warnings) == 2


def test_one_root_path_failing_keeps_its_own_error(clock):
    plan, steps, timeline, _ = make(
        clock, [ROOT, DATA], failures={ROOT.name: [IscsiError("target not found (0x0203)")]}
    )
    with pytest.raises(IscsiError) as info:
        run(plan, steps, timeline, warn=pytest.fail)
    assert str(info.value) == "target not found (0x0203)" and not isinstance(info.value, RootPathsFailed)


def test_a_root_path_without_a_route_is_one_path_down(clock):
    plan, steps, timeline, _ = make(clock, [ROOT, ROOT2], unreachable={"10.0.2.2"})
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [s.session.portal.address for s in sessions] == ["10.0.3.2"]
    assert len(warnings) == 1 and "no route to" in warnings[0]


def test_a_data_lun_with_two_paths_one_down_is_a_warning(clock):
    data2 = replace(DATA, address="10.0.3.2")
    plan, steps, timeline, _ = make(clock, [ROOT, DATA, data2], failures={"10.0.3.2:3261": [IscsiError("gone")]})
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [(s.session.target, s.root, s.replacement) for s in sessions] == [
        (ROOT.name, True, None),
        (DATA.name, False, MULTIPATH_REPLACEMENT),
    ]
    assert warnings == [f"target {DATA.name} at 10.0.3.2:3261 lun 2 left out: gone"]


def test_discovery_finding_the_root_at_two_portals_gives_two_root_paths(clock):
    plan, steps, timeline, _ = make(clock, [DISCOVER], discovered=[ROOT, DATA, ROOT2])
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert [(s.session.portal.address, s.session.target, s.root) for s in sessions] == [
        ("10.0.2.2", ROOT.name, True),
        ("10.0.3.2", ROOT.name, True),
        ("10.0.2.2", DATA.name, False),
    ]
    assert steps.replacements[P1] == MULTIPATH_REPLACEMENT


def test_a_named_root_and_a_discovery_entry_finding_its_second_path(clock):
    other = replace(DISCOVER, address="10.0.3.2")
    plan, steps, timeline, _ = make(clock, [ROOT, other], discovered=[ROOT2])
    sessions = run(plan, steps, timeline, warn=pytest.fail)
    assert [(s.session.portal.address, s.root) for s in sessions] == [("10.0.2.2", True), ("10.0.3.2", True)]


def test_a_failing_second_discovery_entry_is_a_warning(clock):
    other = replace(DISCOVER, address="10.0.3.2")
    plan, steps, timeline, _ = make(clock, [ROOT, other], discovered=[])
    warnings: list[str] = []
    sessions = run(plan, steps, timeline, warn=warnings.append)
    assert [s.session.target for s in sessions] == [ROOT.name]
    assert len(warnings) == 1 and "reported no target" in warnings[0]


def test_warnings_from_login_threads_never_overlap(clock):
    inside = threading.Lock()
    warnings: list[str] = []

    def warn(line):
        assert inside.acquire(blocking=False), "two warnings at once"
        try:
            warnings.append(line)
        finally:
            inside.release()

    down = {p: [IscsiError(f"refused at {p}")] for p in ("10.0.2.2:3261", "10.0.3.2:3261", "10.0.4.2:3261")}
    datas = [
        replace(DATA, address=a, name=f"iqn.2026-11.test:d{i}")
        for i, a in enumerate(["10.0.2.2", "10.0.3.2", "10.0.4.2"])
    ]
    plan, steps, timeline, _ = make(clock, [ROOT, *datas], failures=down)
    run(plan, steps, timeline, warn=warn)
    assert len(warnings) == 3


def test_a_discovered_name_with_control_characters_is_escaped_in_the_warning(clock):
    hostile = replace(DATA, name="iqn.2026-11.test:\x1b]0;x\x07")
    plan, steps, timeline, _ = make(clock, [ROOT, DISCOVER], discovered=[hostile])
    steps.failures[hostile.name] = [IscsiError("refused")]
    warnings: list[str] = []
    run(plan, steps, timeline, warn=warnings.append)
    assert len(warnings) == 1 and "\x1b" not in warnings[0] and "\\x1b" in warnings[0]
