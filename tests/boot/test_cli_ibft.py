"""`pyiscsi ibft` through the real dispatcher: the contract's JSON keys, secrets, exit statuses."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot import cli
from initiator.errors import ExitStatus
from tests.ibft_encoder import encode_ibft, secret_values

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ibft"
CHAP = FIXTURES / "ipxe-chap.bin"

NIC_KEYS = ["index", "flags", "ip", "prefix", "origin", "gateway", "dns", "dhcp_server", "vlan", "mac", "pci_bdf",
            "hostname"]  # fmt: skip
TARGET_KEYS = ["index", "flags", "ip", "port", "lun", "name", "nic_index", "chap_type", "chap_name", "chap_secret",
               "reverse_chap_name", "reverse_chap_secret"]  # fmt: skip


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(["ibft", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def test_json_has_exactly_the_contracts_keys(capsys):
    status, out, err = run(capsys, str(CHAP), "--json")
    assert (status, err) == (0, "")
    doc = json.loads(out)
    assert list(doc) == ["source", "oem_id", "oem_table_id", "initiator", "nics", "targets", "warnings"]
    assert doc["warnings"] == []
    assert doc["source"] == str(CHAP)
    assert doc["initiator"] == {"name": "iqn.2026-11.test:client", "flags": 3}
    assert [list(n) for n in doc["nics"]] == [NIC_KEYS]
    assert [list(t) for t in doc["targets"]] == [TARGET_KEYS]
    assert doc["nics"][0]["ip"] == "10.0.2.15" and doc["nics"][0]["mac"] == "52:54:00:12:34:56"
    assert doc["targets"][0] | {"chap_secret": None} == {
        "index": 0, "flags": 3, "ip": "10.0.2.2", "port": 3260, "lun": 1, "name": "iqn.2026-11.test:chap",
        "nic_index": 0, "chap_type": "chap", "chap_name": "bootuser", "chap_secret": None, "reverse_chap_name": None,
        "reverse_chap_secret": None,
    }  # fmt: skip
    assert doc["targets"][0]["chap_secret"] == "***"
    assert "Secret-12345" not in out


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_show_secrets(capsys, json_flag):
    _, hidden, _ = run(capsys, str(CHAP), *json_flag)
    _, shown, _ = run(capsys, str(CHAP), *json_flag, "--show-secrets")
    assert "Secret-12345" not in hidden and "***" in hidden
    assert "Secret-12345" in shown


def test_text_output(capsys):
    status, out, _ = run(capsys, str(FIXTURES / "ipxe-dhcp.bin"))
    assert status == 0
    assert "initiator: iqn.2026-11.test:client" in out
    assert "nic0: 52:54:00:12:34:56 10.0.2.15/24 origin 3" in out
    assert "target0: iqn.2026-11.test:root at 10.0.2.2:3260 lun 1 nic0 flags 3 chap none" in out


def test_sysfs_directory_source(capsys, tmp_path):
    from initiator.ibft import parse_ibft
    from tests.initiator.test_ibft_sources import write_sysfs

    write_sysfs(parse_ibft(CHAP.read_bytes()), tmp_path / "ibft")
    status, out, _ = run(capsys, str(tmp_path / "ibft"), "--json")
    assert status == 0
    assert json.loads(out)["targets"][0]["chap_name"] == "bootuser"


def test_corrupt_table_exits_2_naming_the_field(capsys, tmp_path):
    bad = bytearray(CHAP.read_bytes())
    bad[0x50 + 2 : 0x50 + 4] = struct.pack("<H", 70)  # the initiator's length
    bad[9] = (bad[9] - (70 - 74)) % 256
    path = tmp_path / "bad.bin"
    path.write_bytes(bytes(bad))
    status, out, err = run(capsys, str(path))
    assert (status, out) == (ExitStatus.BAD_INPUT, "")
    assert err == "pyiscsi ibft: initiator.length: the initiator structure is 74 bytes (got 70)\n"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b"hello"), "header: a table needs at least its 48-byte header (got 5)"),
        (lambda p: p.write_bytes(CHAP.read_bytes()[:-1]), "length: the table says it is longer"),
        (lambda p: None, "ibft source: cannot open: No such file or directory"),
    ],
)
def test_bad_sources_exit_2(capsys, tmp_path, make, message):
    path = tmp_path / "t.bin"
    make(path)
    status, _, err = run(capsys, str(path))
    assert status == ExitStatus.BAD_INPUT
    assert message in err and err.count("\n") == 1


def test_found_without_a_source(capsys, monkeypatch, tmp_path):
    from initiator import ibft_sources

    table = tmp_path / "iBFT"
    shutil.copy(CHAP, table)
    monkeypatch.setattr(ibft_sources, "ACPI_TABLE", str(table))
    monkeypatch.setattr(ibft_sources.load_ibft, "__kwdefaults__", {
        "acpi_path": str(table), "sysfs_path": str(tmp_path / "none"), "mem_path": str(tmp_path / "none"),
    })  # fmt: skip
    status, out, _ = run(capsys, "--json")
    assert status == 0 and json.loads(out)["source"] == str(table)
    table.unlink()
    status, _, err = run(capsys)
    assert status == ExitStatus.BAD_INPUT and "no iBFT found" in err


def test_console_script_runs(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "boot", "ibft", str(CHAP), "--json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["oem_table_id"] == "iPXE"


# ---- hostile tables: warnings, terminal escapes, secrets --------------------------------------------------------


def run_quietly(*argv: str) -> tuple[int, str, str]:
    """The dispatcher with its output captured, for use inside hypothesis tests (no pytest fixtures there)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(["ibft", *argv])
    return status, out.getvalue(), err.getvalue()


def terminal_safe(text: str) -> bool:
    """No C0 but the newline, no DEL or C1, nothing else a terminal might act on or a reader be fooled by."""
    return all(line.isprintable() for line in text.split("\n"))


def _write(tmp: str, raw: bytes) -> str:
    path = os.path.join(tmp, "t.bin")
    with open(path, "wb") as f:
        f.write(raw)
    return path


def test_warnings_go_to_stderr_one_line_each_and_into_json(tmp_path):
    from tests.initiator.test_ibft import INITIATOR, _nic, _target

    raw = encode_ibft(INITIATOR, [_nic(0)], [_target(0, nic_index=2), _target(1, name="iqn.2026-11.test:t0")])
    path = _write(str(tmp_path), raw)
    expected = [
        "target0.nic_index: 2 names no NIC in the table (its NIC indexes: 0)",
        "target1: the same target (name, address, port and LUN) as target0",
    ]
    for flags in ([], ["--json"]):
        status, out, err = run_quietly(path, *flags)
        assert status == 0
        assert err.splitlines() == [f"pyiscsi ibft: warning: {w}" for w in expected]
    assert json.loads(out)["warnings"] == expected


def test_terminal_escapes_from_the_table_are_shown_escaped(tmp_path):
    from tests.initiator.test_ibft import INITIATOR, _nic, _target

    hostname = "host\u202eevil\u2028forged"  # bidi override and a line separator: printable to the parser
    name = "iqn.2026-11.test:\u200bzero"
    path = _write(str(tmp_path), encode_ibft(INITIATOR, [_nic(0, hostname=hostname)], [_target(0, name=name)]))
    status, out, err = run_quietly(path)
    assert (status, err) == (0, "")
    assert "hostname host\\u202eevil\\u2028forged" in out and "target0: iqn.2026-11.test:\\u200bzero at" in out
    assert terminal_safe(out)
    status, out, _ = run_quietly(path, "--json")
    assert all(0x20 <= ord(c) < 0x7F or c == "\n" for c in out)  # ensure_ascii: printable ASCII only
    doc = json.loads(out)
    assert (doc["nics"][0]["hostname"], doc["targets"][0]["name"]) == (hostname, name)  # the exact values


def test_control_characters_in_a_table_exit_2_with_a_clean_line(tmp_path):
    from tests.initiator.test_ibft import INITIATOR, _nic, _target

    path = _write(str(tmp_path), encode_ibft(INITIATOR, [_nic(0)], [_target(0, name="iqn.x\x1b]0;owned\x07")]))
    status, out, err = run_quietly(path)
    assert (status, out) == (ExitStatus.BAD_INPUT, "")
    assert err.startswith("pyiscsi ibft: target0.name: the 15 bytes at offset ") and err.count("\n") == 1
    assert "hold a control character (0x1b at byte 5)" in err and "owned" not in err and terminal_safe(err)


def test_sysfs_strings_are_shown_escaped(tmp_path):
    from initiator.ibft import parse_ibft
    from tests.initiator.test_ibft_sources import write_sysfs

    write_sysfs(parse_ibft(CHAP.read_bytes()), tmp_path / "ibft")
    (tmp_path / "ibft" / "target0" / "target-name").write_text("iqn.2026-11.test:\u202echap\\x1b\n")
    status, out, _ = run_quietly(str(tmp_path / "ibft"))
    assert status == 0
    assert "target0: iqn.2026-11.test:\\u202echap\\\\x1b at 10.0.2.2:3260" in out and terminal_safe(out)
    (tmp_path / "ibft" / "target0" / "target-name").write_text("iqn\x1b[2J\n")
    status, out, err = run_quietly(str(tmp_path / "ibft"))
    assert (status, out) == (ExitStatus.BAD_INPUT, "") and terminal_safe(err) and "[2J" not in err


any_text = st.text(max_size=30).filter(lambda t: "\x00" not in t)  # a NUL ends a string by the spec's rule


@settings(max_examples=120, deadline=None)
@given(st.one_of(st.none(), any_text), st.one_of(st.none(), any_text), any_text, st.booleans())
def test_any_strings_in_a_table_reach_the_terminal_safely(initiator_name, hostname, target_name, as_json):
    """Any Unicode in the table's strings: exit 0 with terminal-safe output (and JSON that decodes to the exact
    values), or exit 2 with one terminal-safe line naming the field. Never a traceback."""
    from initiator.ibft import IbftInitiator
    from tests.initiator.test_ibft import BOTH, _nic, _target

    raw = encode_ibft(
        IbftInitiator(0, BOTH, initiator_name), [_nic(0, hostname=hostname)], [_target(0, name=target_name or None)]
    )
    with tempfile.TemporaryDirectory() as tmp:
        status, out, err = run_quietly(_write(tmp, raw), *(["--json"] if as_json else []))
    assert terminal_safe(out) and terminal_safe(err)
    if status == ExitStatus.BAD_INPUT:
        assert out == "" and err.count("\n") == 1 and "control character" in err, err
        return
    assert status == 0, err
    if as_json:
        doc = json.loads(out)
        assert doc["targets"][0]["name"] == (target_name or None)
        assert doc["nics"][0]["hostname"] == (hostname or None)


@pytest.mark.parametrize("mode", ["names", "one"])
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_pyiscsi_ibft_never_prints_a_secret_of_a_corrupted_table(mode, data):
    """The reported defect's class through the real command: random CHAP tables (and the captured ones, their
    secrets swapped for marker letters), length/offset fields moved; neither the text nor the JSON output nor
    the error line shows a secret or any 4 characters of one."""
    from tests.initiator.test_ibft import leaked, mutated_tables

    original, raw = data.draw(mutated_tables(mode))
    secrets = secret_values(original)
    with tempfile.TemporaryDirectory() as tmp:
        path = _write(tmp, raw)
        for flags in ([], ["--json"]):
            status, out, err = run_quietly(path, *flags)
            assert status in (0, ExitStatus.BAD_INPUT), err
            assert leaked(out + err, secrets) is None, (out, err)
            assert terminal_safe(out) and terminal_safe(err)
