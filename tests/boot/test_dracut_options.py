"""The table of dracut options: every key the parser reads has a row, the README shows the same table, `explain`
says the status of what it sees, and a refused option fails with exactly the table's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot import cmdline as cmdline_module
from boot import dracut_options
from boot.cli import main
from boot.dracut_options import OPTIONS, Status, render_markdown, row_for, seen
from boot.planner import load_plan
from initiator.errors import CmdlineError

README = Path(__file__).resolve().parents[2] / "dracut/95pyiscsi/README.md"
IQN = "iqn.2026-11.test:root"


def parser_keys() -> list[str]:
    """Every key boot.cmdline acts on: its handler table, the old spellings, and the two families by prefix."""
    keys = [*cmdline_module.HANDLERS, *cmdline_module.ALIASES]
    keys += [f"rd.net.timeout.{name}" for name in cmdline_module.NET_TIMEOUTS]
    keys += ["rd.pyiscsi.timeout", "rd.pyiscsi.loglevel", "rd.pyiscsi.log", "rd.pyiscsi.agent"]
    keys += [f"rd.pyiscsi.timeout.{w}" for w in cmdline_module.PYISCSI_WAITS if w != "total"]
    return keys


@pytest.mark.parametrize("key", parser_keys())
def test_every_key_the_parser_reads_has_a_row(key):
    row = row_for(key, "x")
    assert row is not None, f"{key}= is parsed but boot/dracut_options.py has no row for it"
    assert row.detail and row.status in Status


def test_rows_are_unique_and_every_refusal_is_one_line():
    forms = [row.form for row in OPTIONS]
    assert len(forms) == len(set(forms))
    for row in OPTIONS:
        assert "\n" not in row.detail and row.detail == row.detail.strip()
        if row.status is Status.REFUSED:
            assert ": not supported" in row.detail or "only" in row.detail


def test_the_readme_shows_exactly_the_table():
    text = README.read_text()
    start, end = "<!-- dracut-options:start -->\n", "\n<!-- dracut-options:end -->"
    assert start in text and end in text
    shown = text.split(start, 1)[1].split(end, 1)[0].splitlines()
    assert shown == render_markdown()


@pytest.mark.parametrize(
    ("word", "form", "status"),
    [
        ("ip=dhcp", "ip=<method>", Status.DIFFERENT),
        ("ip=eth0:dhcp:9000:52:54:00:12:34:56", "ip=<interface>:<method>[:<mtu>[:<macaddr>]]", Status.SUPPORTED),
        ("ip=eth0:auto6", "ip=<interface>:<method>[:<mtu>[:<macaddr>]]", Status.SUPPORTED),
        ("ip=10.0.0.5::10.0.0.1:24:node:eth0:none", dracut_options.IP_LONG, Status.DIFFERENT),
        ("ip=[fd00::5]::[fd00::1]:64::eth0:none", dracut_options.IP_LONG, Status.DIFFERENT),
        (f"root=iscsi:10.0.0.1::::{IQN}", "root=iscsi:...", Status.SUPPORTED),
        (f"netroot=iscsi:u:pw@10.0.0.1::::{IQN}", dracut_options.NETROOT_ISCSI, Status.SUPPORTED),
        ("netroot=iscsi", "netroot=iscsi", Status.SUPPORTED),
        ("netroot=dhcp", "netroot=dhcp", Status.SUPPORTED),
        ("root=dhcp", "root=dhcp", Status.SUPPORTED),
        ("netroot=dhcp6", "netroot=dhcp6", Status.REFUSED),
        ("root=dhcp6", "root=dhcp6", Status.REFUSED),
        ("netroot=nfs:10.0.0.1:/srv", "netroot=<other>:...", Status.DIFFERENT),
        ("root=UUID=0a1b", "root=<device>", Status.SUPPORTED),
        ("team=team0:eth0,eth1", "team=<teammaster>:<teamslaves>", Status.REFUSED),
        ("bond=bond0:eth0,eth1:mode=active-backup", "bond=<bondname>[:<slaves>[:<options>[:<mtu>]]]", Status.SUPPORTED),
        ("iscsi_firmware", "rd.iscsi.firmware[=0|1]", Status.SUPPORTED),
        ("rd.iscsi.waitnet=0", "rd.iscsi.waitnet=0|1", Status.DIFFERENT),
        ("rd.net.timeout.ifup=5", "rd.net.timeout.ifup=<s>", Status.DIFFERENT),
        ("rd.route=10.1.0.0/16:10.0.0.1", "rd.route=<net>/<netmask>:<gateway>[:<interface>]", Status.DIFFERENT),
        ("rd.peerdns=0", "rd.peerdns=0", Status.DIFFERENT),
        ("biosdevname=0", "biosdevname=0|1", Status.DIFFERENT),
        ("rd.bootif=0", "rd.bootif=0", Status.DIFFERENT),
        ("rd.pyiscsi.timeout.login=5", "rd.pyiscsi.timeout.<wait>=<s>", Status.SUPPORTED),
        ("quiet", None, None),
        ("console=ttyS0", None, None),
    ],
)  # fmt: skip
def test_each_word_finds_its_row(word, form, status):
    rows = seen(word)
    if form is None:
        assert rows == []
    else:
        assert [(r.form, r.status) for r in rows] == [(form, status)]


@pytest.mark.parametrize(
    ("line", "forms"),
    [
        (
            "ip=dhcp netroot=dhcp rd.iscsi.username=u rd.iscsi.password=pw-77 quiet rd.iscsi.password=pw-78 rd.route=1",
            ["ip=<method>", "netroot=dhcp", "rd.iscsi.username=<user>", "rd.iscsi.password=<secret>",
             "rd.route=<net>/<netmask>:<gateway>[:<interface>]"],
        ),
        (
            f"rd.iscsi.firmware=0 root=UUID=1 rd.iscsi.param=node.session.timeo.replacement_timeout=30 "
            f"root=iscsi:1.2.3.4::::{IQN}",
            ["rd.iscsi.firmware[=0|1]", "root=<device>", "rd.iscsi.param=<param>=<value>", "root=iscsi:..."],
        ),
    ],
)  # fmt: skip
def test_explain_says_the_status_of_each_option_it_sees(capsys, line, forms):
    assert main(["explain", "--ibft", "none", "--json", "--cmdline", line]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [o["option"] for o in doc["options_seen"]] == forms
    assert all(set(o) == {"option", "status", "detail"} for o in doc["options_seen"])
    assert main(["explain", "--ibft", "none", "--cmdline", line]) == 0
    text = capsys.readouterr().out
    for form in forms:
        row = next(r for r in OPTIONS if r.form == form)
        assert f"option {form}: {row.status.value}: {row.detail}" in text.splitlines()
    assert "pw-7" not in text


def test_netroot_dhcp6_fails_with_the_tables_message():
    for line in ("netroot=dhcp6 ip=dhcp6", "root=dhcp6"):
        with pytest.raises(CmdlineError) as info:
            load_plan(line, "none")
        assert str(info.value) == dracut_options.DHCP6_ROOT_REFUSED
        assert str(info.value) == row_for("netroot", "dhcp6").detail


def test_team_fails_with_the_tables_message():
    with pytest.raises(CmdlineError) as info:
        load_plan("team=team0:eth0,eth1 ip=team0:dhcp netroot=iscsi:10.0.0.1::::" + IQN, "none")
    assert str(info.value) == dracut_options.TEAM_REFUSED == row_for("team", "x").detail


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_any_command_line_gives_rows_and_never_a_value(text):
    rows = seen(text)
    assert all(r in OPTIONS for r in rows) and len(rows) == len(set(rows))
