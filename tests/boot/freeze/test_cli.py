"""boot.freeze.cli: `python -m boot.freeze`, as dracut's module-setup.sh runs it: options, exit status, one line."""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
from pathlib import Path

import pytest

from boot import freeze
from boot.freeze.cli import _parser
from tests.boot.freeze.frozen import ENTRIES


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "boot.freeze", *argv], capture_output=True, text=True, timeout=300, check=False
    )


def test_the_options_module_setup_and_users_rely_on() -> None:
    options = sorted(option for action in _parser()._actions for option in action.option_strings)
    assert options == sorted(
        [
            "-h",
            "--help",
            "--out",
            "--entry",
            "--extra",
            "--package",
            "--exclude",
            "--path",
            "--prefix",
            "--skip-missing",
            "--no-libs",
            "--line-numbers",
            "--verify",
            "--report",
        ]
    )


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--entry", "initiator.nonesuch"], "entry", "no such module on the search path"),
        (["--extra", "nonesuch_module"], "extra", "no such module on the search path"),
        (["--package", "boot.nonesuch"], "package", "no such package on the search path"),
    ],
)
def test_command_line_exit_status_and_message(tmp_path: Path, argv: list[str], field: str, value: str) -> None:
    result = run("--out", str(tmp_path), *argv)
    assert result.returncode == 2
    assert f"{field}: {value}" in result.stderr and argv[1] in result.stderr
    assert result.stderr.startswith("boot.freeze: ") and result.stderr.count("\n") == 1


def test_help_names_the_tool_and_its_job() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m boot.freeze")
    words = " ".join(result.stdout.split())  # argparse wraps the description to the terminal's width
    assert "Build the minimal Python runtime the initramfs carries, and prove it runs on its own." in words


def test_skip_missing_warns_and_report_prints_json(tmp_path: Path) -> None:
    entries = [f"--entry={name}" for name in (*ENTRIES, "boot.nonesuch")]
    result = run("--out", str(tmp_path / "root"), "--skip-missing", "--report", *entries)  # verifies too
    assert result.stderr == "boot.freeze: warning: entry module 'boot.nonesuch' does not exist; skipped\n"
    data = json.loads(result.stdout)
    assert data["entries"] == list(ENTRIES) and data["missing_entries"] == ["boot.nonesuch"]
    assert data["loaded_modules"] > 100 and data["startup_version_ms"] > 0


def test_a_tree_that_cannot_boot_is_one_line_and_status_2(tmp_path: Path) -> None:
    result = run("--out", str(tmp_path / "root"), "--no-libs", "--exclude", "argparse")
    assert result.returncode == 2
    assert result.stderr == (
        "boot.freeze: frozen tree: boot.cli runs it at boot; in the tree it fails: ModuleNotFoundError: "
        "No module named 'argparse' (a module missing from the closure: add it with --extra) (got 'import argparse')\n"
    )
    written = tmp_path / "root" / freeze.rel(freeze.PREFIX / "lib" / freeze.BYTECODE_DIR / "boot" / "cli.pyc")
    assert written.is_file()  # written, refused


@pytest.mark.parametrize(("flags", "lines_in_main"), [((), 1), (("--line-numbers",), 10)])
def test_line_numbers_keeps_each_instructions_line(tmp_path: Path, flags: tuple[str, ...], lines_in_main: int) -> None:
    """By default every function's code sits on its first line (a traceback names the function); a debugging
    build asks for each instruction's own line."""
    result = run("--out", str(tmp_path), "--no-libs", *flags)
    assert result.returncode == 0, result.stderr
    pyc = next(tmp_path.rglob("boot/cli.pyc"))
    module = marshal.loads(pyc.read_bytes()[16:])
    main = next(c for c in module.co_consts if getattr(c, "co_name", "") == "main")
    lines = {line for _, _, line in main.co_lines() if line is not None}
    assert len(lines) >= lines_in_main if flags else lines == {main.co_firstlineno}
