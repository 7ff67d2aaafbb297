"""Host side of the iBFT capture: finding the table in the low-memory dump, decoding the console blocks."""

from __future__ import annotations

import base64
import gzip
import json
import struct

import pytest

from harness.capture_ibft import FIXTURES, SCENARIOS, find_ibft, lowmem_from_log, sysfs_from_log
from harness.errors import HarnessError


def _table(length: int = 64, fix_checksum: bool = True) -> bytes:
    body = bytearray(b"iBFT" + struct.pack("<I", length) + bytes(length - 8))
    body[9] = 0
    if fix_checksum:
        body[9] = (-sum(body)) & 0xFF
    return bytes(body)


def test_find_ibft_takes_the_aligned_signature_with_a_good_checksum():
    good = _table()
    region = bytearray(0x1000)
    region[0x13 : 0x13 + 4] = b"iBFT"  # unaligned: ignored
    region[0x100 : 0x100 + 64] = _table(fix_checksum=False)
    region[0x100 + 9] ^= 0x55  # bad checksum: ignored
    region[0x400 : 0x400 + len(good)] = good
    assert find_ibft(bytes(region), base=0x80000) == (0x80400, good)


@pytest.mark.parametrize(
    "region",
    [
        bytes(4096),
        b"iBFT" + struct.pack("<I", 10_000) + bytes(200),  # length runs past the region
        b"iBFT" + struct.pack("<I", 8) + bytes(200),  # shorter than a header
    ],
)
def test_find_ibft_without_a_valid_table_is_none(region):
    assert find_ibft(region) is None


def _console(payload: bytes) -> str:
    encoded = base64.encodebytes(gzip.compress(payload)).decode()
    middle = encoded.splitlines()
    middle.insert(1, "[    3.100000] random: crng init done")  # a kernel line in the middle is skipped
    return "\n".join(["junk", "PYISCSI-BEGIN lowmem\r", *middle, "PYISCSI-END lowmem", "after"])


def test_lowmem_block_is_decoded_around_kernel_lines():
    payload = bytes(range(256)) * 64
    assert lowmem_from_log(_console(payload)) == payload


@pytest.mark.parametrize("log", ["no markers at all", "PYISCSI-BEGIN lowmem\nAAAA"])
def test_missing_or_unfinished_lowmem_block_is_none(log):
    assert lowmem_from_log(log) is None


def test_garbled_lowmem_block_is_a_harness_error():
    with pytest.raises(HarnessError, match="undecodable"):
        lowmem_from_log("PYISCSI-BEGIN lowmem\nbm90IGd6aXA=\nPYISCSI-END lowmem\n")


def test_sysfs_lines_become_a_mapping():
    log = "x\nPYISCSI-SYSFS target0/port=3260\r\nPYISCSI-SYSFS target0/target-name=iqn.a:b\nPYISCSI-SYSFS x/empty=\n"
    assert sysfs_from_log(log) == {"target0/port": "3260", "target0/target-name": "iqn.a:b", "x/empty": ""}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_committed_fixtures_agree_with_their_sidecars(name):
    """The captured tables are real: valid header and checksum, and the kernel read back what the script set."""
    table = (FIXTURES / f"{name}.bin").read_bytes()
    side = json.loads((FIXTURES / f"{name}.json").read_text())
    assert find_ibft(table, base=0) == (0, table)
    assert side["table_length"] == len(table)
    sysfs = side["linux_sysfs"]
    assert sysfs["initiator/initiator-name"] == side["initiator"]["name"]
    assert sysfs["ethernet0/ip-addr"] == side["nic"]["ip"]
    assert sysfs["ethernet0/origin"] == ("1" if side["nic"]["origin"] == "static" else "3")
    for index, target in enumerate(side["targets"]):
        assert sysfs[f"target{index}/target-name"] == target["name"]
        assert sysfs[f"target{index}/port"] == str(target["port"])
        assert sysfs[f"target{index}/lun"] == f"{target['lun']:02x}000000"
        assert target["name"].encode() in table
        if target["chap_name"]:
            assert sysfs[f"target{index}/chap-name"] == target["chap_name"]
        if target["reverse_chap_name"]:
            assert sysfs[f"target{index}/rev-chap-name"] == target["reverse_chap_name"]
