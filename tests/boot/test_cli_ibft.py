"""`pyiscsi ibft` through the real dispatcher: the contract's JSON keys, secrets, exit statuses."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from boot import cli
from initiator.errors import ExitStatus

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
    assert list(doc) == ["source", "oem_id", "oem_table_id", "initiator", "nics", "targets"]
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
