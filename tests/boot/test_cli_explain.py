"""`pyiscsi explain` through the real dispatcher: the contract's plan JSON, secrets, every wait, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from boot import cli, planner
from initiator.errors import ExitStatus

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ibft"
CHAP = str(FIXTURES / "ipxe-chap.bin")
T0 = "iqn.2026-11.test:root"
CONTRACT_KEYS = ["initiator_name", "interfaces", "targets", "timeouts", "root"]
INTERFACE_KEYS = ["name", "mac", "vlan", "mtu", "method", "addresses", "gateway", "gateway6", "dns", "hostname",
                  "source"]  # fmt: skip
TARGET_KEYS = ["name", "address", "port", "lun", "iface", "chap", "reverse_chap", "source"]
WAITS = ["total", "iflink", "udev", "carrier", "dhcp", "ipv6dad", "ipv6auto", "dhcp6", "arp", "connect", "login",
         "disk", "replacement"]  # fmt: skip


@pytest.fixture
def multipathd(tmp_path, monkeypatch):
    """The image carries dm-multipath's daemon (boot.planner looks for it)."""
    daemon = tmp_path / "multipathd"
    daemon.write_text("")
    monkeypatch.setattr(planner, "MULTIPATHD", (str(daemon),))


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["explain", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def explain_json(capsys, cmdline: str, ibft: str = "none", *extra: str) -> dict:
    status, out, err = run(capsys, "--cmdline", cmdline, "--ibft", ibft, "--json", *extra)
    assert (status, err) == (0, "")
    return json.loads(out)


def test_json_shape_with_every_key(capsys):
    doc = explain_json(
        capsys,
        "ip=10.0.2.15::10.0.2.2:24:client:eth0:none:10.0.2.3 rd.iscsi.initiator=iqn.2026-11.test:me "
        f"netroot=iscsi:u:pw:ru:rpw@[fec0::2]::3261:1:{T0} root=LABEL=root rd.pyiscsi.timeout=90",
    )
    assert list(doc)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert doc["initiator_name"] == "iqn.2026-11.test:me"
    assert doc["interfaces"] == [
        {"name": "eth0", "mac": None, "vlan": None, "mtu": None, "method": "static", "addresses": ["10.0.2.15/24"],
         "gateway": "10.0.2.2", "gateway6": None, "dns": ["10.0.2.3"], "hostname": "client", "source": "cmdline"},
    ]  # fmt: skip
    assert doc["targets"] == [
        {"name": T0, "address": "fec0::2", "port": 3261, "lun": 1, "iface": None,
         "chap": {"username": "u", "password": "***"}, "reverse_chap": {"username": "ru", "password": "***"},
         "source": "cmdline"},
    ]  # fmt: skip
    assert list(doc["timeouts"]) == WAITS
    assert doc["timeouts"]["total"] == 90
    assert doc["root"] == "LABEL=root"
    assert "pw" not in json.dumps(doc["targets"]).replace("password", "")


def test_json_absent_values_are_null_not_missing(capsys):
    doc = explain_json(capsys, f"netroot=iscsi:10.0.2.2::::{T0}")
    assert [list(i) for i in doc["interfaces"]] == [INTERFACE_KEYS]
    assert [list(t) for t in doc["targets"]] == [TARGET_KEYS]
    assert doc["targets"][0]["chap"] is None and doc["root"] is None
    assert doc["interfaces"][0]["name"] is None


def test_discovery_target_has_a_null_name(capsys):
    doc = explain_json(capsys, "ip=eth0:dhcp netroot=iscsi:10.0.2.2::::")
    assert doc["targets"][0]["name"] is None


def test_show_secrets(capsys):
    line = f"netroot=iscsi:u:hunter2@10.0.2.2::::{T0} rd.iscsi.in.username=t rd.iscsi.in.password=zz"
    assert "hunter2" not in json.dumps(explain_json(capsys, line))
    doc = explain_json(capsys, line, "none", "--show-secrets")
    assert doc["targets"][0]["chap"] == {"username": "u", "password": "hunter2"}
    status, out, _ = run(capsys, "--cmdline", line, "--ibft", "none")
    assert status == 0 and "hunter2" not in out and "u/***" in out
    _, out, _ = run(capsys, "--cmdline", line, "--ibft", "none", "--show-secrets")
    assert "u/hunter2" in out


def test_firmware_plan(capsys):
    doc = explain_json(capsys, "rd.iscsi.firmware", CHAP)
    assert doc["initiator_name"] == "iqn.2026-11.test:client"
    assert [(i["mac"], i["method"], i["source"]) for i in doc["interfaces"]] == [("52:54:00:12:34:56", "dhcp", "ibft")]
    assert doc["targets"][0] | {"chap": None} == {
        "name": "iqn.2026-11.test:chap", "address": "10.0.2.2", "port": 3260, "lun": 1, "iface": None, "chap": None,
        "reverse_chap": None, "source": "ibft",
    }  # fmt: skip
    assert doc["targets"][0]["chap"] == {"username": "bootuser", "password": "***"}


def test_extra_keys_options_and_notes(capsys):
    doc = explain_json(
        capsys,
        "ip=eth0:dhcp bond=bond0:eth1,eth2 netroot=iscsi:10.0.2.2::::x rd.iscsi.waitnet=0 "
        "rd.iscsi.param=node.session.timeo.replacement_timeout=86400 rd.pyiscsi.loglevel=debug",
    )
    assert doc["options"] == {
        "log_level": "debug", "waitnet": False, "testroute": True,
        "iscsi_params": {"node.session.timeo.replacement_timeout": "86400"}, "login_retry_max": None,
        "agent": True, "header_digest": "None", "data_digest": "None", "dhcp_root": False,
    }  # fmt: skip
    assert doc["timeouts"]["replacement"] == 86400
    assert "bond bond0: balance-rr over eth1, eth2" in doc["notes"]


def test_password_parameters_are_hidden(capsys):
    line = "rd.iscsi.param=node.session.auth.password=zz9 rd.iscsi.param=node.session.auth.username=u"
    doc = explain_json(capsys, line)
    assert doc["options"]["iscsi_params"] == {"node.session.auth.password": "***", "node.session.auth.username": "u"}
    assert (
        explain_json(capsys, line, "none", "--show-secrets")["options"]["iscsi_params"]["node.session.auth.password"]
        == "zz9"
    )
    _, out, _ = run(capsys, "--cmdline", line, "--ibft", "none")
    assert "zz9" not in out


def test_text_output(capsys):
    status, out, _ = run(
        capsys, "--cmdline", f"vlan=eth0.7:eth0 ip=eth0.7:dhcp netroot=iscsi:[fec0::2]::::{T0}", "--ibft", "none"
    )
    assert status == 0
    assert "  eth0 vlan 7 dhcp [cmdline]" in out
    assert f"  {T0} at [fec0::2]:3260 lun 0 [cmdline]" in out
    assert "waits (seconds): total=180 iflink=60" in out


def test_cmdline_file(capsys, tmp_path):
    path = tmp_path / "cmdline"
    path.write_text(f"ip=eth1:auto6\nnetroot=iscsi:10.0.2.2::::{T0}\n")
    status, out, _ = run(capsys, "--cmdline-file", str(path), "--ibft", "none", "--json")
    assert status == 0
    assert json.loads(out)["interfaces"][0]["method"] == "auto6"


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["--cmdline", "ip=dhcp:", "--ibft", "none"], ExitStatus.BAD_INPUT,
         "pyiscsi explain: ip: unexpected trailing colon (got 'ip=dhcp:')\n"),
        (["--cmdline", "rd.iscsi.firmware", "--ibft", "none"], ExitStatus.BAD_INPUT,
         "pyiscsi explain: ibft: rd.iscsi.firmware (or netroot=iscsi) asks for the iBFT but none was found\n"),
        (["--cmdline", "", "--ibft", "/nonexistent"], ExitStatus.BAD_INPUT,
         "pyiscsi explain: ibft source: cannot open: No such file or directory (got '/nonexistent')\n"),
        (["--cmdline-file", "/nonexistent"], ExitStatus.BAD_INPUT,
         "pyiscsi explain: --cmdline-file: cannot read: No such file or directory (got '/nonexistent')\n"),
        (["--cmdline", "x", "--cmdline-file", "y"], ExitStatus.USAGE, None),
    ],
)  # fmt: skip
def test_errors(capsys, argv, status, message):
    got, out, err = run(capsys, *argv)
    assert got == status
    if status == ExitStatus.BAD_INPUT:
        assert out == ""
    if message is not None:
        assert err == message


def test_text_root_line(capsys):
    _, out, _ = run(capsys, "--cmdline", "root=LABEL=r", "--ibft", "none")
    assert "root: LABEL=r" in out
    _, out, _ = run(capsys, "--cmdline", f"root=iscsi:10.0.2.2::::{T0}", "--ibft", "none")
    assert "root: (the first target LUN)" in out


CMDLINE_WORDS = st.sampled_from([
    "ip=dhcp", "ip=eth0:dhcp", "ip=ibft", "rd.iscsi.firmware", "rd.iscsi.mp", f"netroot=iscsi:10.0.2.2::::{T0}",
    "netroot=iscsi:[fec0::2]::::", "vlan=eth0.5:eth0", "bond", "rd.pyiscsi.timeout=5", "ip=10.0.2.15:::24::eth0:none",
    "rd.iscsi.username=u", "rd.iscsi.password=p", "nameserver=10.0.2.3", "ip=", "netroot=iscsi:", "rd.timeout=x",
])  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    words=st.lists(st.one_of(CMDLINE_WORDS, st.text(max_size=30)), max_size=6),
    table=st.one_of(st.just(None), st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"iBFT" + b)),
)
def test_random_command_lines_and_tables_exit_0_or_2_with_one_line(capsys, tmp_path, words, table):
    source = "none"
    if table is not None:
        path = tmp_path / "table.bin"
        path.write_bytes(table)
        source = str(path)
    status = cli.main(["explain", "--cmdline=" + " ".join(words), "--ibft", source])
    out, err = capsys.readouterr()
    assert status in (ExitStatus.OK, ExitStatus.BAD_INPUT), err
    if status == ExitStatus.BAD_INPUT:
        assert out == "" and err.startswith("pyiscsi explain: ") and err.count("\n") == 1
        assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("cmdline", "method", "target_line"),
    [
        ("netroot=iscsi:[fd00::2]::3260:1:iqn.2026-11.test:r", "dhcp+auto6", "iqn.2026-11.test:r at [fd00::2]:3260"),
        ("netroot=dhcp", "dhcp", "(from DHCP option 17, the lease's root path, at boot)"),
        ("ip=eth0:auto6 netroot=iscsi:[fd00::2]::3260:1:iqn.2026-11.test:r", "auto6", "at [fd00::2]:3260"),
    ],
)
def test_no_ip_and_dhcp_root_plans(capsys, cmdline, method, target_line):
    doc = explain_json(capsys, cmdline)
    (iface,) = doc["interfaces"]
    assert iface["method"] == method and set(iface) >= {"name", "mac", "addresses", "gateway6", "source"}
    assert doc["options"]["dhcp_root"] is (cmdline == "netroot=dhcp")
    status, out, _err = run(capsys, "--ibft", "none", "--cmdline", cmdline)
    assert status == 0 and target_line in out and f" {method} " in out


LINK_LINE = ("ifname=lan0:52:54:00:00:00:01 ifname=lan1:52:54:00:00:00:02 "
             "bond=bond0:lan0,lan1:mode=active-backup,miimon=100:9000 bridge=br0:bond0 "
             "ip=br0:dhcp:9000:02:00:00:00:00:07 netroot=iscsi:10.0.2.2::::" + T0)  # fmt: skip


def test_explain_shows_the_link_phase(capsys):
    """The renames, bond, bridge and MAC address the bring-up will make, in its order, text and JSON."""
    status, out, err = run(capsys, "--cmdline", LINK_LINE, "--ibft", "none")
    assert (status, err) == (0, "")
    lines = out.splitlines()
    start = lines.index("links (made before the interfaces come up):")
    assert lines[start + 1 : start + 6] == [
        "  rename the link with MAC 52:54:00:00:00:01 to lan0",
        "  rename the link with MAC 52:54:00:00:00:02 to lan1",
        "  bond bond0 over lan0, lan1: mode=active-backup,miimon=100 mtu 9000",
        "  bridge br0 over bond0",
        "  set MAC 02:00:00:00:00:07 on br0",
    ]
    doc = explain_json(capsys, LINK_LINE)
    assert list(doc)[:5] == CONTRACT_KEYS and [list(i) for i in doc["interfaces"]] == [INTERFACE_KEYS]
    assert doc["links"] == {
        "renames": [{"name": "lan0", "mac": "52:54:00:00:00:01"}, {"name": "lan1", "mac": "52:54:00:00:00:02"}],
        "bonds": [{"name": "bond0", "slaves": ["lan0", "lan1"], "options": {"mode": "active-backup", "miimon": "100"},
                   "mtu": 9000}],
        "bridges": [{"name": "br0", "ports": ["bond0"]}],
        "set_macs": [{"interface": "br0", "mac": "02:00:00:00:00:07"}],
    }  # fmt: skip


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("team=team0:eth0,eth1 ip=team0:dhcp",
         "team=: not supported: team devices need teamd, which pyiscsi does not carry; use bond= instead"),
        ("bond=bond0:eth0,eth1:mode=active-backup,frobnicate=1 ip=bond0:dhcp", "unknown bond option 'frobnicate'"),
    ],
)  # fmt: skip
def test_refused_link_forms_exit_2_with_one_line(capsys, line, message):
    status, out, err = run(capsys, "--cmdline", line, "--ibft", "none")
    assert status == ExitStatus.BAD_INPUT and out == ""
    assert err.count("\n") == 1 and message in err


# ---- LUNs and their paths (boot.paths) ---------------------------------------------------------------------------

D0 = "iqn.2026-11.test:data"


@pytest.mark.parametrize(
    ("cmdline", "lines"),
    [
        (
            f"netroot=iscsi:10.0.2.2::::{T0}",
            [f"  {T0} lun 0: the root uses 10.0.2.2:3260 (replacement timeout 120s)"],
        ),
        (
            f"netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:[fec0::2]::3261::{T0} netroot=iscsi:10.0.2.2:::2:{D0}",
            [
                f"  {T0} lun 0: the root LUN has 2 paths: 10.0.2.2:3260 [fec0::2]:3261, the root is the dm-multipath "
                "device over them (replacement timeout 5s)",
                f"  {D0} lun 2: 1 path: 10.0.2.2:3260 (replacement timeout 120s)",
            ],
        ),
        (
            f"netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:10.0.3.2::::{T0} rd.pyiscsi.timeout.replacement=60",
            [
                f"  {T0} lun 0: the root LUN has 2 paths: 10.0.2.2:3260 10.0.3.2:3260, the root is the dm-multipath "
                "device over them (replacement timeout 60s)",
            ],
        ),
        (
            "netroot=iscsi:10.0.2.2::::",
            [
                "  (SendTargets discovery at 10.0.2.2:3260, known at boot) lun 0: the root uses 10.0.2.2:3260 "
                "(replacement timeout 120s)"
            ],
        ),
    ],
)
def test_text_shows_each_lun_with_its_paths_and_what_the_root_uses(capsys, multipathd, cmdline, lines):
    status, out, _ = run(capsys, "--cmdline", f"ip=dhcp {cmdline}", "--ibft", "none")
    text = out.splitlines()
    at = text.index("luns (the paths to each):")
    assert status == 0 and text[at + 1 : at + 1 + len(lines)] == lines


def test_without_multipathd_the_root_is_one_paths_disk(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(planner, "MULTIPATHD", (str(tmp_path / "absent"),))
    cmdline = f"ip=dhcp netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:10.0.3.2::::{T0}"
    status, out, _ = run(capsys, "--cmdline", cmdline, "--ibft", "none")
    text = out.splitlines()
    assert status == 0 and text[text.index("luns (the paths to each):") + 1] == (
        f"  {T0} lun 0: the root LUN has 2 paths: 10.0.2.2:3260 10.0.3.2:3260, no dm-multipath in this image (or "
        "rd.multipath=0): the root uses one path's disk (replacement timeout 120s)"
    )


def test_json_shows_each_lun_with_its_paths(capsys, multipathd):
    doc = explain_json(
        capsys,
        f"ip=dhcp netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:[fec0::2]::3261::{T0} netroot=iscsi:10.0.2.2:::2:{D0}",
    )
    assert doc["luns"] == [
        {"name": T0, "lun": 0, "portals": ["10.0.2.2:3260", "[fec0::2]:3261"], "root": True, "multipath": True,
         "dm_multipath": True, "replacement": 5.0},
        {"name": D0, "lun": 2, "portals": ["10.0.2.2:3260"], "root": False, "multipath": False,
         "dm_multipath": False, "replacement": 120.0},
    ]  # fmt: skip
    assert any(n.startswith(f"target {T0} lun 0: 2 paths") for n in doc["notes"])


def test_a_target_name_with_control_characters_is_escaped_in_the_lun_lines(capsys, monkeypatch):
    from boot.commands import explain
    from boot.plan import BootPlan, TargetPlan

    name = "iqn.2026-11.x:a\x1b[2Jb"
    plan = BootPlan("iqn.2026-11.x:i", targets=(TargetPlan(name, "10.0.2.2"), TargetPlan(name, "10.0.3.2")))
    monkeypatch.setattr(explain, "plan_from_args", lambda args: plan)
    status, out, _ = run(capsys, "--cmdline", "", "--ibft", "none")
    assert status == 0 and "\x1b" not in out
    assert "  iqn.2026-11.x:a\\x1b[2Jb lun 0: the root LUN has 2 paths: 10.0.2.2:3260 10.0.3.2:3260" in out
