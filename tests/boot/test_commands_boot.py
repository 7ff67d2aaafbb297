"""boot.commands.boot: the `failed` milestone a harness (and a person at the console) can wait for."""

from __future__ import annotations

import argparse
import os

import pytest

from boot.commands import boot as boot_command
from initiator.errors import IscsiError


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, out=None, kmsg=None, clock=None):  # stands in for the Timeline class
        from boot.timeline import Timeline

        return Timeline(out=self.lines.append, kmsg=None, clock=lambda: 12.5)


@pytest.mark.parametrize(
    ("error", "last_line"),
    [
        (IscsiError("authentication failed (0x0201)"), "PYISCSI-MARK failed 12.500 exit 4: IscsiError"),
        (LookupError("unknown encoding: idna"), "PYISCSI-MARK failed 12.500 internal error: LookupError"),
    ],
    ids=["refused-login", "bug"],
)
def test_a_failure_marks_failed_with_its_cause(monkeypatch: pytest.MonkeyPatch, error, last_line) -> None:
    recorder = Recorder()
    monkeypatch.setattr(boot_command, "Timeline", recorder)
    monkeypatch.setattr(boot_command, "process_start", lambda: 10.25)

    def fail(args, timeline):
        raise error

    monkeypatch.setattr(boot_command, "_boot", fail)
    with pytest.raises(type(error)):
        boot_command.run(argparse.Namespace())
    assert recorder.lines == [
        "PYISCSI-MARK exec 10.250 the process started (the interpreter's start-up follows)",
        "PYISCSI-MARK start 12.500",
        last_line,
    ]


def test_without_a_process_start_there_is_no_exec_mark(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(boot_command, "Timeline", recorder)
    monkeypatch.setattr(boot_command, "process_start", lambda: None)
    monkeypatch.setattr(boot_command, "_boot", lambda args, timeline: 0)
    assert boot_command.run(argparse.Namespace()) == 0
    assert recorder.lines == ["PYISCSI-MARK start 12.500"]


# -- the recovery agent: started before `booted`, switchable, a failure only warns -----------------------------


class FakeSteps:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def close(self) -> None:
        pass

    def load_modules_for(self, cmdline) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def fake_boot(tmp_path, monkeypatch: pytest.MonkeyPatch):
    import boot.commands.plan_args as plan_args
    import boot.live as live
    import boot.orchestrate as orchestrate
    from boot.plan import BootPlan
    from boot.sessions import SessionState
    from initiator.held_session import HeldSession
    from initiator.portal import Portal

    session = SessionState(
        HeldSession(
            target="iqn.2026-11.test:root", portal=Portal("10.0.2.2", 3260), tpgt=1, lun=1, sid=3, host_no=2,
            isid=bytes.fromhex("800000000001"), tsih=7, initiator_name="iqn.2026-11.test:init",
        ),
        device="/dev/sda", root=True, seconds=1.5,
    )  # fmt: skip
    events: list[str] = []
    plans = {"agent": True}

    def plan_from_args(args, before_firmware=None):  # type: ignore[no-untyped-def]
        plans["before_firmware"] = before_firmware
        return BootPlan("iqn.x:y", root="/dev/sda", agent=plans["agent"])

    monkeypatch.setattr(plan_args, "plan_from_args", plan_from_args)
    monkeypatch.setattr(live, "LiveSteps", FakeSteps)
    monkeypatch.setattr(orchestrate, "run_boot", lambda plan, steps, timeline, warn: [session])

    def start_agent(args, state_dir, plan, sessions):
        events.append(
            "agent" if (state_dir / "sessions.json").exists() and not (state_dir / "booted").exists() else "?"
        )
        return plans.get("warning"), "forked"

    monkeypatch.setattr(boot_command, "start_agent", start_agent)
    monkeypatch.setattr(boot_command, "_warn", lambda line: events.append(f"warn: {line}"))
    args = argparse.Namespace(state_dir=str(tmp_path), root_link=None, no_agent=False)
    return args, plans, events, tmp_path


def test_boot_starts_the_agent_after_the_sessions_file_and_before_booted(fake_boot) -> None:
    args, _plans, events, state_dir = fake_boot
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    assert events == ["agent"] and (state_dir / "booted").read_text() == "/dev/sda\n"


def test_the_booted_mark_says_how_much_cpu_the_boot_used(fake_boot, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under emulation the one vCPU bounds the boot; `make bench boot` reads pyiscsi's share of it off this mark:
    the process's own and its waited-for children's, user and system."""
    args, _plans, _events, _state_dir = fake_boot
    used = os.times_result((0.75, 0.25, 0.5, 0.125, 99.0))
    monkeypatch.setattr(boot_command.os, "times", lambda: used)
    timeline = boot_command.Timeline(out=lambda line: None, kmsg=None)
    assert boot_command._boot(args, timeline) == 0
    (detail,) = [detail for name, _at, detail in timeline.marks if name == "booted"]
    assert detail == "1 session(s), root /dev/sda, cpu 1.62s"


def test_boot_loads_its_kernel_modules_before_the_firmware_is_read(fake_boot) -> None:
    """The plan's command line decides (rd.iscsi.firmware: the iBFT modules too); the steps load them."""
    args, plans, _events, _state_dir = fake_boot
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    hook = plans["before_firmware"]
    assert hook.__func__ is FakeSteps.load_modules_for and hook.__self__.state_dir == str(args.state_dir)


@pytest.mark.parametrize("how", ["cmdline", "flag"])
def test_rd_pyiscsi_agent_0_or_no_agent_leave_it_out(fake_boot, how: str) -> None:
    args, plans, events, state_dir = fake_boot
    if how == "cmdline":
        plans["agent"] = False
    else:
        args.no_agent = True
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    assert events == [] and (state_dir / "booted").exists()


def test_an_agent_that_does_not_start_warns_and_the_boot_goes_on(fake_boot) -> None:
    args, plans, events, state_dir = fake_boot
    plans["warning"] = "recovery agent not started: no"
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    assert events == ["agent", "warn: recovery agent not started: no"]
    assert (state_dir / "booted").exists()


# -- which iBFT the plan read: a `firmware` milestone names its source ------------------------------------------


def _table(source: str):
    from pathlib import Path

    from initiator.ibft import parse_ibft

    return parse_ibft((Path(__file__).parents[1] / "fixtures" / "ibft" / "ipxe-chap.bin").read_bytes(), source=source)


def _plan(source: str, where: str = "targets"):
    from boot.plan import BootPlan, InterfacePlan, Source, TargetPlan

    if where == "targets":
        return BootPlan("iqn.x:y", targets=(TargetPlan("10.0.2.2", "iqn.x:root", source=Source(source)),))
    return BootPlan("iqn.x:y", interfaces=(InterfacePlan(source=Source(source)),))


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        ("/sys/firmware/acpi/tables/iBFT", "acpi:/sys/firmware/acpi/tables/iBFT"),
        ("/sys/firmware/ibft", "sysfs:/sys/firmware/ibft"),
        ("/dev/mem", "mem:/dev/mem"),
    ],
    ids=["uefi-acpi", "iscsi_ibft-sysfs", "bios-scan"],
)
@pytest.mark.parametrize("where", ["targets", "interfaces"])
def test_ibft_origin_names_the_source_the_lookup_found(monkeypatch, found, expected, where) -> None:
    from initiator import ibft_sources

    monkeypatch.setattr(ibft_sources, "find_ibft", lambda: _table(found))
    assert boot_command.ibft_origin(_plan("ibft", where), None) == expected


def test_ibft_origin_given_source_or_nothing_from_the_ibft(monkeypatch, tmp_path) -> None:
    from initiator import ibft_sources
    from initiator.errors import IbftError

    def never():
        raise AssertionError("looked for an iBFT")

    monkeypatch.setattr(ibft_sources, "find_ibft", never)
    assert boot_command.ibft_origin(_plan("cmdline"), None) is None
    assert boot_command.ibft_origin(_plan("cmdline", "interfaces"), None) is None
    table = tmp_path / "ibft.bin"
    table.write_bytes(b"")
    assert boot_command.ibft_origin(_plan("ibft"), str(table)) == f"file:{table}"
    assert boot_command.ibft_origin(_plan("ibft"), str(tmp_path)) == f"sysfs:{tmp_path}"

    def broken():
        raise IbftError("ibft", None, "checksum")

    monkeypatch.setattr(ibft_sources, "find_ibft", broken)
    assert boot_command.ibft_origin(_plan("ibft"), None) == "unreadable"


def test_boot_marks_the_ibft_source_before_the_plan(fake_boot, monkeypatch) -> None:
    import boot.commands.plan_args as plan_args
    import boot.orchestrate as orchestrate
    from initiator import ibft_sources
    from initiator.record import replace

    args, _plans, _events, _state_dir = fake_boot
    args.ibft = None
    plan = replace(_plan("ibft"), root="/dev/sda")
    monkeypatch.setattr(plan_args, "plan_from_args", lambda args, before_firmware=None: plan)
    monkeypatch.setattr(ibft_sources, "find_ibft", lambda: _table(ibft_sources.ACPI_TABLE))
    lines: list[str] = []
    before_run: list[str] = []
    fake_run = orchestrate.run_boot
    monkeypatch.setattr(orchestrate, "run_boot", lambda *a, **k: before_run.extend(lines) or fake_run(*a, **k))
    assert boot_command._boot(args, boot_command.Timeline(out=lines.append, kmsg=None, clock=lambda: 3.5)) == 0
    assert before_run == ["PYISCSI-MARK firmware 3.500 ibft=acpi:/sys/firmware/acpi/tables/iBFT"]


# -- a multipath root named by the whole-LUN link: said, not hidden ------------------------------------------------


@pytest.mark.parametrize(("root", "paths", "warned"), [(None, 2, True), (None, 1, False), ("LABEL=root", 2, False)])
def test_the_root_link_over_one_path_of_several_is_a_warning(fake_boot, monkeypatch, root, paths, warned) -> None:
    import boot.commands.plan_args as plan_args
    import boot.orchestrate as orchestrate
    import boot.rootdev as rootdev
    from boot.plan import BootPlan
    from initiator.record import replace

    args, _plans, events, state_dir = fake_boot
    (session,) = orchestrate.run_boot(None, None, None, None)
    rows = [replace(session, device=f"/dev/sd{'ab'[i]}") for i in range(paths)]
    monkeypatch.setattr(orchestrate, "run_boot", lambda plan, steps, timeline, warn: rows)
    monkeypatch.setattr(
        plan_args, "plan_from_args", lambda args, before_firmware=None: BootPlan("iqn.x:y", root=root, agent=False)
    )
    monkeypatch.setattr(rootdev, "link_root", lambda device, link: events.append(f"link {link} {device}"))
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    warnings = [e for e in events if e.startswith("warn: ")]
    if warned:
        assert warnings == [
            "warn: the root LUN has 2 paths (/dev/sda, /dev/sdb); /dev/pyiscsiroot is only the first one's disk: "
            "name the dm-multipath device (or the file system on it) in root= to use them all"
        ]
    else:
        assert warnings == []
    assert (state_dir / "booted").read_text() == "/dev/sda\n"


@pytest.mark.parametrize("outcome", ["booted", "failed"])
def test_the_collector_is_off_on_the_way_to_booted_and_restored_after(monkeypatch, outcome: str) -> None:
    import gc

    seen: list[bool] = []

    def boot(args, timeline):  # type: ignore[no-untyped-def]
        seen.append(gc.isenabled())
        if outcome == "failed":
            raise IscsiError("authentication failed (0x0201)")
        return 0

    monkeypatch.setattr(boot_command, "Timeline", Recorder())
    monkeypatch.setattr(boot_command, "_boot", boot)
    assert gc.isenabled()
    if outcome == "failed":
        with pytest.raises(IscsiError):
            boot_command.run(argparse.Namespace())
    else:
        assert boot_command.run(argparse.Namespace()) == 0
    assert (seen, gc.isenabled()) == ([False], True)


def test_the_agent_is_forked_with_the_collector_on_and_the_boots_objects_frozen(monkeypatch, tmp_path) -> None:
    import gc

    import boot.commands.agent as agent

    seen: dict[str, object] = {}

    def daemonize(owned, pid_file, **options):  # type: ignore[no-untyped-def]
        seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count())

    monkeypatch.setattr(boot_command, "fork_is_safe", lambda: True)
    monkeypatch.setattr(agent, "running_agent", lambda pid_file: None)
    monkeypatch.setattr(agent, "owned_sessions", lambda sessions, plan: [])
    monkeypatch.setattr(agent, "daemonize", daemonize)
    gc.disable()
    try:
        assert boot_command.start_agent(argparse.Namespace(), tmp_path, None, []) == (None, "forked")  # type: ignore[arg-type]
    finally:
        gc.unfreeze()
        gc.enable()
    assert seen["enabled"] is True and int(seen["frozen"]) > 0  # type: ignore[call-overload]


def _links_plan(**links):
    from boot.plan import BondPlan, BootPlan, BridgePlan, InterfacePlan, RenamePlan

    interfaces = tuple(InterfacePlan(name="eth0", vlan=vlan) for vlan in links.pop("vlans", (None,)))
    made = {
        "renames": (RenamePlan(name="lan0", mac="52:54:00:00:00:01"),),
        "bonds": (BondPlan(name="bond0", slaves=("eth0", "eth1")),),
        "bridges": (BridgePlan(name="br0", ports=("eth0",)),),
    }
    return BootPlan(None, interfaces=interfaces, **{key: made[key] for key in links})


@pytest.mark.parametrize(
    ("links", "needed"),
    [
        ({}, False),
        ({"renames": True}, False),  # a rename is a link change boot.net.rtnl makes itself
        ({"vlans": (None, None)}, False),
        ({"vlans": (None, 42)}, True),
        ({"bonds": True}, True),
        ({"bridges": True}, True),
    ],
)
def test_only_a_plan_that_makes_a_virtual_link_imports_pyroute2(links, needed) -> None:
    assert boot_command.needs_pyroute2(_links_plan(**links)) is needed
