"""boot.commands.boot: the `failed` milestone a harness (and a person at the console) can wait for."""

from __future__ import annotations

import argparse

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

    def fail(args, timeline):
        raise error

    monkeypatch.setattr(boot_command, "_boot", fail)
    with pytest.raises(type(error)):
        boot_command.run(argparse.Namespace())
    assert recorder.lines == ["PYISCSI-MARK start 12.500", last_line]


# -- the recovery agent: started before `booted`, switchable, a failure only warns -----------------------------


class FakeSteps:
    def __init__(self, state_dir: str) -> None:
        self.state_dir = state_dir

    def close(self) -> None:
        pass


@pytest.fixture
def fake_boot(tmp_path, monkeypatch: pytest.MonkeyPatch):
    import boot.commands.plan_args as plan_args
    import boot.live as live
    import boot.orchestrate as orchestrate
    from boot.plan import BootPlan
    from boot.sessions import SessionState

    session = SessionState(
        target="iqn.2026-11.test:root", address="10.0.2.2", port=3260, tpgt=1, lun=1, sid=3, host_no=2,
        isid="800000000001", tsih=7, initiator_name="iqn.2026-11.test:init", header_digest="None",
        data_digest="None", username=None, username_in=None, device="/dev/sda", root=True, seconds=1.5,
    )  # fmt: skip
    events: list[str] = []
    plans = {"agent": True}
    monkeypatch.setattr(
        plan_args, "plan_from_args", lambda args: BootPlan("iqn.x:y", root="/dev/sda", agent=plans["agent"])
    )
    monkeypatch.setattr(live, "LiveSteps", FakeSteps)
    monkeypatch.setattr(orchestrate, "run_boot", lambda plan, steps, timeline, warn: [session])

    def start_agent(args, state_dir):
        events.append(
            "agent" if (state_dir / "sessions.json").exists() and not (state_dir / "booted").exists() else "?"
        )
        return plans.get("warning")

    monkeypatch.setattr(boot_command, "start_agent", start_agent)
    monkeypatch.setattr(boot_command, "_warn", lambda line: events.append(f"warn: {line}"))
    args = argparse.Namespace(state_dir=str(tmp_path), root_link=None, no_agent=False)
    return args, plans, events, tmp_path


def test_boot_starts_the_agent_after_the_sessions_file_and_before_booted(fake_boot) -> None:
    args, _plans, events, state_dir = fake_boot
    assert boot_command._boot(args, boot_command.Timeline(out=lambda line: None, kmsg=None)) == 0
    assert events == ["agent"] and (state_dir / "booted").read_text() == "/dev/sda\n"


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
