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
    err = capsys.readouterr().err
    assert "pyiscsi fake: unrecognized arguments: 1 word(s)" in err and "--no-such-option" not in err
    assert "pyiscsi: argument COMMAND: invalid choice: 'no-such-command'" in err and "pyiscsi pyiscsi" not in err


SECRET = "Sup3r-s3cret"


@pytest.mark.parametrize(
    "argv",
    [
        ["probe", "--portal", "127.0.0.1", "--target", "iqn.2026-11.x:y", f"--pass={SECRET}"],  # an abbreviation
        ["probe", "--portal", "127.0.0.1", "--target", "iqn.2026-11.x:y", "--password", "my", SECRET],  # unquoted
        ["discover", "127.0.0.1", "--username", "u", f"--password={SECRET}", "--timeout", SECRET],
        ["discover", "127.0.0.1", "--header-digest", SECRET],
        ["discover", SECRET, "extra", "--password-file"],
        ["ibft", f"--show-secrets={SECRET}"],
        ["explain", "--cmdline"],
    ],
)
def test_usage_errors_quote_nothing_typed(capsys, argv):
    """A word typed may be a secret: a usage error names options, never what was typed, and says its prefix once."""
    assert cli.main(argv) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert SECRET not in err and err.count("\n") == 1
    assert err.startswith(f"pyiscsi {argv[0]}: ") and not err.startswith(f"pyiscsi {argv[0]}: pyiscsi")


def test_options_are_never_abbreviated(monkeypatch):
    seen = []
    _fake_command(monkeypatch, lambda args: seen.append(args.flag) or 0)
    assert cli.main(["fake", "--fla"]) == ExitStatus.USAGE and seen == []


def test_subcommand_arguments_reach_run(monkeypatch):
    seen = []
    _fake_command(monkeypatch, lambda args: seen.append(args.flag) or 0)
    assert cli.main(["fake", "--flag"]) == 0
    assert seen == [True]


def test_every_contract_command_is_listed():
    assert {"ibft", "explain", "discover", "probe", "net", "boot", "handover"} <= set(cli.COMMANDS)
