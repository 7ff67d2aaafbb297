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


@pytest.mark.parametrize("with_defaults", [False, True], ids=["parsed", "defaults"])
@pytest.mark.parametrize(
    ("raised", "status", "text"),
    [
        (NetworkError("eth0: no carrier"), ExitStatus.NETWORK, "eth0: no carrier"),
        (RuntimeError("boom"), cli.INTERNAL_ERROR, "internal error: RuntimeError: boom"),
    ],
)
def test_a_command_alone_fails_in_one_line_either_way(monkeypatch, capsys, with_defaults, raised, status, text):
    monkeypatch.delenv("PYISCSI_DEBUG", raising=False)

    def run(args):
        raise raised

    _fake_command(monkeypatch, run)
    if with_defaults:
        monkeypatch.setattr(sys.modules["fake_command"], "DEFAULTS", {"flag": False}, raising=False)
    assert cli.main(["fake"]) == status
    assert capsys.readouterr().err == f"pyiscsi fake: {text}\n"


def test_a_command_alone_runs_with_its_defaults_and_with_options_through_its_parser(monkeypatch):
    seen = []
    _fake_command(monkeypatch, lambda args: seen.append(vars(args)) or 0)
    monkeypatch.setattr(sys.modules["fake_command"], "DEFAULTS", {"flag": "from DEFAULTS"}, raising=False)
    assert cli.main(["fake"]) == 0
    assert cli.main(["fake", "--flag"]) == 0
    assert cli.main(["fake", "--fla"]) == ExitStatus.USAGE
    assert seen == [{"flag": "from DEFAULTS"}, {"flag": True}]


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_a_modules_defaults_are_what_its_parser_gives_for_no_options(command):
    """DEFAULTS stand in for the parser when a command comes alone (`pyiscsi boot` in the initramfs)."""
    import importlib

    module = importlib.import_module(cli.COMMANDS[command][0])
    defaults = getattr(module, "DEFAULTS", None)
    if command == "boot":
        assert defaults is not None  # the initramfs's own start-up
    if defaults is None:
        return
    parser = cli._parser([], prog=f"pyiscsi {command}")
    module.add_arguments(parser)
    assert vars(parser.parse_args([])) == defaults


def test_pyiscsi_boot_alone_neither_imports_argparse_nor_builds_a_parser(tmp_path):
    """What the initramfs runs: boot.commands.boot.run gets DEFAULTS, and argparse is never imported."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        f"import sys; sys.path.insert(0, {str(repo)!r}); import boot.cli as cli, boot.commands.boot as b;"
        "b.run = lambda a: print(sorted(vars(a).items())) or 0;"
        "status = cli.main(['boot']); print(status, 'argparse' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    from boot.commands.boot import DEFAULTS

    assert done.stdout.splitlines() == [str(sorted(DEFAULTS.items())), "0 False"]


def test_a_command_line_people_type_reaches_run_without_argparse(tmp_path):
    """`pyiscsi discover PORTAL --initiator IQN`: boot.argv parses it, argparse is never imported."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    argv = ["discover", "127.0.0.1:3260", "--initiator", "iqn.2026-11.org.x:y", "--timeout=5"]
    code = (
        f"import sys; sys.path.insert(0, {str(repo)!r}); import boot.cli as cli, boot.commands.discover as d;"
        "d.run = lambda a: print(sorted(vars(a).items())) or 0;"
        f"status = cli.main({argv!r}); print(status, 'argparse' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    expected = {"portal": "127.0.0.1:3260", "initiator": "iqn.2026-11.org.x:y", "timeout": 5.0}
    expected |= {"username": None, "password": None, "reverse_username": None, "reverse_password": None}
    expected |= {"password_file": None, "header_digest": "None", "data_digest": "None"}
    assert done.stdout.splitlines() == [str(sorted(expected.items())), "0 False"]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["discover"], "pyiscsi discover: the following arguments are required: PORTAL"),
        (["discover", "p", "--timeout", "x"], "pyiscsi discover: argument --timeout: invalid float value: '***'"),
        (
            ["discover", "p", "--header-digest", "crc32c"],
            "pyiscsi discover: argument --header-digest: invalid choice: '***' (choose from 'None', 'CRC32C')",
        ),
        (
            ["discover", "p", "q"],
            "pyiscsi discover: unrecognized arguments: 1 word(s) (a value with spaces needs quotes)",
        ),
        (["discover", "p", "--initiator"], "pyiscsi discover: argument --initiator: expected one argument"),
        (["probe", "--portal", "p"], "pyiscsi probe: the following arguments are required: --target"),
        (
            ["probe", "--portal", "p", "--target", "t", "--json=1"],
            "pyiscsi probe: argument --json: ignored explicit argument '***'",
        ),
        (
            ["explain", "--cmdline", "a", "--cmdline-file", "b"],
            "pyiscsi explain: argument --cmdline-file: not allowed with argument --cmdline",
        ),
        (["handover"], "pyiscsi handover: the following arguments are required: --sysroot"),
    ],
)
def test_usage_errors_are_still_argparses_one_line(capsys, argv, line):
    assert cli.main(argv) == ExitStatus.USAGE
    assert capsys.readouterr() == ("", line + "\n")


def test_a_parser_method_boot_argv_lacks_sends_the_command_line_to_argparse(monkeypatch):
    seen = []
    _fake_command(monkeypatch, lambda args: seen.append(vars(args)) or 0)

    def add_arguments(parser):
        parser.set_defaults(extra=1)
        parser.add_argument("--flag", action="store_true")

    monkeypatch.setattr(sys.modules["fake_command"], "add_arguments", add_arguments)
    assert cli.main(["fake", "--flag"]) == 0
    assert seen == [{"extra": 1, "flag": True}]


# (what the process does before exit_with(3), its stdout, whether an atexit handler ran)
EXITS = [
    pytest.param("sys.stdout.write('partial')", "partial", False, id="buffered-output-flushed-no-shutdown"),
    pytest.param("print('line'); sys.stderr.write('err')", "line\n", False, id="stdout-and-stderr"),
    pytest.param(
        "threading.Thread(target=lambda: (time.sleep(0.3), print('thread done')), daemon=False).start()",
        "thread done\n",
        True,
        id="a-running-thread-gets-the-usual-exit",
    ),
    pytest.param(
        "threading.Thread(target=time.sleep, args=(30,), daemon=True).start()",
        "",
        False,
        id="daemon-threads-do-not-hold-it",
    ),
]


@pytest.mark.parametrize(("before", "stdout", "shut_down"), EXITS)
def test_exit_with_flushes_and_leaves_without_the_shutdown_unless_a_thread_runs(before, stdout, shut_down):
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        f"import sys, atexit, threading, time; sys.path.insert(0, {str(repo)!r}); from boot.cli import exit_with;"
        "atexit.register(lambda: sys.stderr.write('[atexit]'));"
        f"{before}; exit_with(3)"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, "[atexit]" in done.stderr) == (3, stdout, shut_down)
    assert "Traceback" not in done.stderr


def test_exit_with_a_reader_gone_still_exits_with_the_status():
    """`pyiscsi discover ... | head -0`: the flush fails on a closed pipe; the status stands, nothing is printed."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        f"import os, sys; sys.path.insert(0, {str(repo)!r}); from boot.cli import exit_with;"
        "r, w = os.pipe(); os.close(r); sys.stdout = open(w, 'w'); sys.stdout.write('unread'); exit_with(5)"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (5, "")


def test_the_process_entry_runs_main_without_the_cyclic_collector_and_exits_with_its_status():
    """boot.cli.entry (the frozen wrapper's code and `python -m boot`): the collector is off while the command
    runs; main() called in-process leaves it as it was."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = (
        f"import gc, sys; sys.path.insert(0, {str(repo)!r}); import boot.cli as cli;"
        "cli.main = lambda: print('collector', 'on' if gc.isenabled() else 'off') or 4; cli.entry()"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (4, "collector off\n", "")
    import gc

    assert gc.isenabled() and cli.main(["--version"]) == 0 and gc.isenabled()


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
@pytest.mark.parametrize("rest", [[], ["--help"], ["--version"], ["x", "--initiator", "iqn.x"]])
def test_a_known_command_word_is_what_the_top_level_parser_would_give(command: str, rest: list[str]) -> None:
    """_run takes a known command word as it is, without building the top-level parser: the same command."""
    assert cli._top_level_command([command, *rest]) == command
