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


def test_a_refused_login_marks_failed_with_the_exit_status(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(boot_command, "Timeline", recorder)

    def refuse(args, timeline):
        raise IscsiError("authentication failed (0x0201)")

    monkeypatch.setattr(boot_command, "_boot", refuse)
    with pytest.raises(IscsiError):
        boot_command.run(argparse.Namespace())
    assert recorder.lines == ["PYISCSI-MARK start 12.500", "PYISCSI-MARK failed 12.500 exit 4: IscsiError"]


def test_a_bug_marks_failed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    monkeypatch.setattr(boot_command, "Timeline", recorder)

    def bug(args, timeline):
        raise LookupError("unknown encoding: idna")

    monkeypatch.setattr(boot_command, "_boot", bug)
    with pytest.raises(LookupError):
        boot_command.run(argparse.Namespace())
    assert recorder.lines[-1] == "PYISCSI-MARK failed 12.500 internal error: LookupError"
