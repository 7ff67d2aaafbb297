"""pyiscsi(8) against the code: every subcommand and option, every kernel command line key, every exit status and
the files the handover writes must be in the man page source (packaging/pyiscsi.8), and it must render cleanly."""

from __future__ import annotations

import argparse
import importlib
import itertools
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from boot import cli, cmdline, handover, sessions
from initiator import __version__
from initiator.errors import CmdlineError, ExitStatus

REPO = Path(__file__).resolve().parents[2]
MANPAGE = REPO / "packaging" / "pyiscsi.8"

# roff escapes that only change fonts, spacing or break points; what is left is the text a reader sees
_DROP = re.compile(r"\\f[BIRP]|\\&|\\:|\\%")
_CHARS = {r"\-": "-", r"\(dq": '"', r"\(aq": "'", r"\e": "\\"}
_ALTERNATING = {"BI", "BR", "IB", "IR", "RB", "RI"}
_ARG = re.compile(r'"((?:[^"]|"")*)"|(\S+)')


def unescape(text: str) -> str:
    text = _DROP.sub("", text)
    for escape, char in _CHARS.items():
        text = text.replace(escape, char)
    return text


def roff_text(source: str) -> list[str]:
    """The page's lines as text: alternating-font macros joined without spaces, as roff prints them."""
    lines = []
    for line in source.splitlines():
        if line.startswith('.\\"'):
            continue
        match = re.match(r"\.([A-Z]{1,2})\b\s*(.*)", line)
        if match is None:
            lines.append(unescape(line))
            continue
        macro, rest = match.groups()
        args = [m[1].replace('""', '"') if m[1] is not None else m[2] for m in _ARG.finditer(rest)]
        if macro in _ALTERNATING:
            lines.append(unescape("".join(args)))
        elif macro in {"SH", "SS"}:  # headings keep their macro: section() and the subcommand test look for them
            lines.append(f".{macro} " + unescape(" ".join(args)))
        elif macro in {"B", "I", "TP", "TQ"}:
            lines.append(unescape(" ".join(args)))
    return lines


def tags(source: str) -> set[str]:
    """The first word of every .TP/.TQ tag: the terms the page describes one by one."""
    lines = source.splitlines()
    out = set()
    for before, tag in itertools.pairwise(lines):
        if before.split()[:1] in ([".TP"], [".TQ"]) and tag.strip():
            out.add(roff_text(tag)[0].split()[0].rstrip(","))
    return out


SOURCE = MANPAGE.read_text()
LINES = roff_text(SOURCE)
TAGS = tags(SOURCE)


def section(title: str) -> str:
    """The text of one .SH section."""
    start = LINES.index(f".SH {title}")
    end = next((i for i in range(start + 1, len(LINES)) if LINES[i].startswith(".SH ")), len(LINES))
    return "\n".join(LINES[start + 1 : end])


def subcommand_parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(cli.COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"pyiscsi {name}")
    module.add_arguments(parser)
    return parser


def test_the_text_reader_joins_alternating_fonts_and_drops_escapes() -> None:
    source = '.BI ip= "client\\-IP" :[ peer ]\n.B \\-\\-json\n.SS "pyiscsi net [\\-\\-json]"\nplain \\fBbold\\fR\n'
    assert roff_text(source) == ["ip=client-IP:[peer]", "--json", ".SS pyiscsi net [--json]", "plain bold"]
    assert tags('.TP\n.BI \\-\\-cmdline " STR"\nText.\n.TQ\n.BR \\-h ", " \\-\\-help\n') == {"--cmdline", "-h"}


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_registered_subcommand_has_its_own_heading(name: str) -> None:
    headings = [line for line in LINES if line.startswith(".SS ")]
    assert [h for h in headings if h.split()[1:3] == ["pyiscsi", name]], f"no '.SS pyiscsi {name} ...' heading"


# options that a subcommand's heading names by a placeholder, described once under CHAP AND DIGESTS
PLACEHOLDERS = {
    "[CHAP]": {"--username", "--password", "--reverse-username", "--reverse-password", "--password-file"},
    "[digests]": {"--header-digest", "--data-digest"},
}


@pytest.mark.parametrize("name", sorted(cli.COMMANDS))
def test_every_option_of_every_subcommand_is_in_its_synopsis_and_described(name: str) -> None:
    """In the subcommand's heading, and a term of its own somewhere (shared ones once, under explain or CHAP)."""
    options = {o for action in subcommand_parser(name)._actions for o in action.option_strings} - {"-h", "--help"}
    assert options, f"pyiscsi {name} has no options to check: the parser was not built"
    heading = next(h for h in LINES if h.split()[1:3] == ["pyiscsi", name])
    named = set(re.findall(r"--[a-z][a-z-]*", heading))
    named |= {o for placeholder, group in PLACEHOLDERS.items() if placeholder in heading for o in group}
    assert (sorted(options - named), sorted(named - options)) == ([], []), f"pyiscsi {name}: heading vs parser"
    assert sorted(options - TAGS) == [], f"pyiscsi {name}: options described nowhere"


@pytest.mark.parametrize("key", sorted({*cmdline.HANDLERS, *cmdline.ALIASES}))
def test_every_kernel_command_line_key_is_described(key: str) -> None:
    body = section("KERNEL COMMAND LINE")
    assert re.search(rf"(?<![\w.]){re.escape(key)}(?=[=\[,\s]|$)", body, re.MULTILINE), key


@pytest.mark.parametrize("wait", cmdline.PYISCSI_WAITS)
def test_every_bounded_wait_is_named_under_rd_pyiscsi_timeout(wait: str) -> None:
    body = section("KERNEL COMMAND LINE")
    paragraph = body[body.index("rd.pyiscsi.timeout.wait=seconds") :].split("rd.pyiscsi.loglevel")[0]
    assert re.search(rf"\b{wait}\b", paragraph)


def test_the_rd_pyiscsi_keys_described_are_the_ones_the_parser_takes() -> None:
    """The parser's rd.pyiscsi.* set is closed (an unknown key is an error), so the page must list exactly it."""
    described = set(re.findall(r"^(rd\.pyiscsi(?:\.[a-z]+)*)(?=[=\[])", section("KERNEL COMMAND LINE"), re.M))
    assert described == {
        "rd.pyiscsi",  # read by the module's cmdline hook and generator (dracut/95pyiscsi/pyiscsi-lib.sh)
        "rd.pyiscsi.timeout",
        "rd.pyiscsi.timeout.wait",  # `wait` stands for each name of the test above
        "rd.pyiscsi.loglevel",
        "rd.pyiscsi.agent",
    }
    parsed = cmdline.parse_cmdline(
        "rd.pyiscsi.timeout=7 rd.pyiscsi.timeout.login=3 rd.pyiscsi.loglevel=debug rd.pyiscsi.agent=0"
    )
    assert (parsed.pyiscsi_timeouts, parsed.log_level, parsed.agent) == (
        (("total", 7.0), ("login", 3.0)),
        "debug",
        False,
    )
    with pytest.raises(CmdlineError):
        cmdline.parse_cmdline("rd.pyiscsi.nonesuch=1")


def test_every_exit_status_is_listed() -> None:
    body = section("EXIT STATUS").splitlines()
    statuses = {int(line) for line in body if line.isdigit()}
    assert {int(s) for s in ExitStatus} | {cli.INTERNAL_ERROR} <= statuses


def test_the_files_pyiscsi_writes_are_listed() -> None:
    body = section("FILES")
    for path in (handover.ISCSID_DROPIN, handover.INITIATORNAME):
        assert f"/{path}" in body
    assert f"/{handover.NODES_DIR}/" in body
    for path in (sessions.SESSIONS_FILE, sessions.BOOTED_FILE, handover.AGENT_PID_FILE):
        assert Path(path).name in body and str(Path(path).parent) in body


def test_the_version_is_the_packages() -> None:
    title = next(line for line in MANPAGE.read_text().splitlines() if line.startswith(".TH "))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert f'"pyiscsi {__version__}"' in title
    assert pyproject["project"]["version"] == __version__
    changelog = (REPO / "debian" / "changelog").read_text().splitlines()[0]
    assert changelog.startswith(f"pyiscsi ({__version__}) ")


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (Debian package groff-base)")
def test_the_page_renders_without_warnings() -> None:
    result = subprocess.run(
        ["groff", "-man", "-ww", "-z", str(MANPAGE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stderr) == (0, "")
