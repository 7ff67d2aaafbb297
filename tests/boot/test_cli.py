"""The dispatcher: exit statuses of the contract, one-line failures, lazy command modules."""

from __future__ import annotations

import sys
import types

import pytest

from boot import cli
from initiator.errors import ExitStatus, NetworkError, WaitTimeout


def _fake_command(monkeypatch: pytest.MonkeyPatch, run) -> None:
    module = types.ModuleType("fake_command")
    module.add_arguments = lambda parser: parser.add_argument("--flag", action="store_true")
    module.run = run
    monkeypatch.setitem(sys.modules, "fake_command", module)
    monkeypatch.setitem(cli.COMMANDS, "fake", ("fake_command", "a fake command"))


@pytest.mark.parametrize(
    ("raised", "status", "text"),
    [
        (NetworkError("eth0: no carrier"), ExitStatus.NETWORK, "eth0: no carrier"),
        (WaitTimeout("dhcp", 30), ExitStatus.TIMEOUT, "wait 'dhcp' ran out after 30s"),
        (RuntimeError("boom"), cli.INTERNAL_ERROR, "internal error: RuntimeError: boom"),
    ],
)
def test_errors_become_one_line_and_exit_status(monkeypatch, capsys, raised, status, text):
    monkeypatch.delenv("PYISCSI_DEBUG", raising=False)

    def run(args):
        raise raised

    _fake_command(monkeypatch, run)
    assert cli.main(["fake"]) == status
    err = capsys.readouterr().err
    assert err == f"pyiscsi fake: {text}\n"


def test_usage_errors_exit_1(monkeypatch, capsys):
    _fake_command(monkeypatch, lambda args: 0)
    assert cli.main(["fake", "--no-such-option"]) == ExitStatus.USAGE
    assert cli.main(["no-such-command"]) == ExitStatus.USAGE
    assert cli.main([]) == ExitStatus.USAGE
    assert "unrecognized arguments: --no-such-option" in capsys.readouterr().err


def test_subcommand_arguments_reach_run(monkeypatch):
    seen = []
    _fake_command(monkeypatch, lambda args: seen.append(args.flag) or 0)
    assert cli.main(["fake", "--flag"]) == 0
    assert seen == [True]


def test_every_contract_command_is_listed():
    assert {"ibft", "explain", "discover", "probe", "net", "boot", "handover"} <= set(cli.COMMANDS)
