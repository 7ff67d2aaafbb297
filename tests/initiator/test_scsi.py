"""SCSI CDBs against hand-laid byte images (SPC-4/SBC-3 tables), parsers against hostile data."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import scsi
from initiator.errors import IscsiError, PyiscsiError, RemoteProtocolError


@pytest.mark.parametrize(
    ("command", "cdb", "length"),
    [
        (scsi.test_unit_ready(), "000000000000", 0),
        (scsi.report_luns(4096), "a0 00 00 000000 00001000 0000", 4096),
        (scsi.inquiry(96), "12 00 00 0060 00", 96),
        (scsi.read_capacity_10(), "25 00 00000000 0000 00 00", 8),
        (scsi.read_capacity_16(), "9e 10 0000000000000000 00000020 00 00", 32),
        (scsi.read_10(0x01020304, 2, 512), "28 00 01020304 00 0002 00", 1024),
        (scsi.read_16(0x0102030405060708, 1, 4096), "88 00 0102030405060708 00000001 00 00", 4096),
    ],
)
def test_cdb_bytes(command: scsi.ScsiCommand, cdb: str, length: int) -> None:
    assert command.cdb == bytes.fromhex(cdb.replace(" ", ""))
    assert command.data_in_length == length


@pytest.mark.parametrize(
    ("lba", "blocks", "opcode"),
    [(0, 1, 0x28), (0xFFFFFFFE, 1, 0x28), (0xFFFFFFFF, 1, 0x88), (1 << 40, 1, 0x88), (0, 0x10000, 0x88)],
)
def test_read_picks_10_or_16(lba: int, blocks: int, opcode: int) -> None:
    assert scsi.read(lba, blocks, 512).cdb[0] == opcode


@pytest.mark.parametrize("bad", [lambda: scsi.read_10(1 << 32, 1, 512), lambda: scsi.report_luns(8)])
def test_builders_refuse_out_of_range(bad) -> None:
    with pytest.raises(ValueError):
        bad()


@pytest.mark.parametrize(
    ("lun", "field"),
    [
        (0, "0000000000000000"),
        (1, "0001000000000000"),
        (255, "00ff000000000000"),
        (256, "4100000000000000"),
        (16383, "7fff000000000000"),
    ],
)
def test_lun_encoding_round_trip(lun: int, field: str) -> None:
    assert scsi.encode_lun(lun) == bytes.fromhex(field)
    assert scsi.decode_lun(bytes.fromhex(field)) == lun


def test_decode_lun_other_methods_as_linux_does() -> None:
    # Two-level LUN: second level in bytes 2-3 lands in bits 16..31 as scsilun_to_int puts it.
    assert scsi.decode_lun(bytes.fromhex("0001000200000000")) == 0x0002_0001


def _luns_data(luns: list[int], declared: int | None = None) -> bytes:
    body = b"".join(scsi.encode_lun(n) for n in luns)
    return struct.pack(">I4x", len(body) if declared is None else declared) + body


def test_report_luns_parses_list() -> None:
    parsed = scsi.parse_report_luns(_luns_data([0, 1, 2, 300]))
    assert parsed.luns == (0, 1, 2, 300)
    assert not parsed.truncated


def test_report_luns_truncated_says_how_much_to_ask_for() -> None:
    data = _luns_data([0, 1], declared=8 * 40)
    parsed = scsi.parse_report_luns(data)
    assert parsed.luns == (0, 1)
    assert parsed.truncated
    assert parsed.needed_allocation == 8 + 320


def test_report_luns_ignores_bytes_past_declared_length() -> None:
    assert scsi.parse_report_luns(_luns_data([0, 1], declared=8) + bytes(8)).luns == (0,)


@pytest.mark.parametrize(("data", "match"), [(b"\x00\x00", "header"), (struct.pack(">I4x", 7), "multiple of 8")])
def test_report_luns_hostile(data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        scsi.parse_report_luns(data)


def _inquiry(byte0: int, vendor: bytes = b"IET     ", product: bytes = b"VIRTUAL-DISK    ") -> bytes:
    return bytes([byte0, 0x80, 0x05, 0x02, 31, 0, 0, 0]) + vendor + product + b"0001" + bytes(60)


@pytest.mark.parametrize(
    ("byte0", "ptype", "is_disk"),
    [
        (0x00, scsi.PeripheralType.DISK, True),
        (0x0C, scsi.PeripheralType.STORAGE_ARRAY_CONTROLLER, False),
        (0x20, scsi.PeripheralType.DISK, False),
        (0x7F, scsi.PeripheralType.UNKNOWN, False),
        (0x12, 0x12, False),
    ],
)
def test_inquiry_standard_data(byte0: int, ptype: int, is_disk: bool) -> None:
    parsed = scsi.parse_inquiry(_inquiry(byte0))
    assert parsed.peripheral_type == ptype
    assert parsed.is_disk is is_disk
    assert (parsed.vendor, parsed.product, parsed.revision) == ("IET", "VIRTUAL-DISK", "0001")
    assert parsed.removable and parsed.version == 5


def test_inquiry_hostile_text_is_replaced_not_raised() -> None:
    parsed = scsi.parse_inquiry(_inquiry(0, vendor=b"\xff\x00abc\x00\x00\x00"))
    assert parsed.vendor.startswith("\ufffd")


def test_inquiry_short() -> None:
    with pytest.raises(RemoteProtocolError, match="INQUIRY: standard data needs 36 bytes, the target returned 35"):
        scsi.parse_inquiry(bytes(35))


def test_read_capacity_10() -> None:
    data = struct.pack(">II", 2047, 512)
    assert scsi.parse_read_capacity_10(data) == scsi.Capacity(2048, 512)
    assert scsi.Capacity(2048, 512).size_bytes == 1 << 20
    assert not scsi.needs_read_capacity_16(data)
    assert scsi.needs_read_capacity_16(struct.pack(">II", 0xFFFFFFFF, 512))


def test_read_capacity_16() -> None:
    data = struct.pack(">QI", (1 << 33) - 1, 4096) + bytes(20)
    assert scsi.parse_read_capacity_16(data) == scsi.Capacity(1 << 33, 4096)


@pytest.mark.parametrize(
    ("parse", "data", "match"),
    [
        (scsi.parse_read_capacity_10, bytes(7), "needs 8 bytes"),
        (scsi.parse_read_capacity_10, struct.pack(">II", 1, 0), "LOGICAL BLOCK LENGTH 0"),
        (scsi.parse_read_capacity_16, bytes(11), "needs 12 bytes"),
        (scsi.parse_read_capacity_16, struct.pack(">QI", 1, 1 << 30), "LOGICAL BLOCK LENGTH"),
        (scsi.parse_read_capacity_16, struct.pack(">QI", (1 << 64) - 1, 512), "all ones"),
    ],
)
def test_read_capacity_hostile(parse, data: bytes, match: str) -> None:
    with pytest.raises(RemoteProtocolError, match=match):
        parse(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Fixed: UNIT ATTENTION, POWER ON OCCURRED (29/00).
        ("70 00 06 00000000 0a 00000000 29 00 00 000000", (scsi.SenseKey.UNIT_ATTENTION, 0x29, 0x00, False)),
        # Fixed, deferred (0x71), ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE.
        ("f1 00 05 00000000 0a 00000000 20 00 00 000000", (scsi.SenseKey.ILLEGAL_REQUEST, 0x20, 0, False)),
        # Fixed with an additional length too short to reach ASC: ASC/ASCQ read as 0.
        ("70 00 02 00000000 02 00000000 04 01", (scsi.SenseKey.NOT_READY, 0, 0, False)),
        ("70 00 03", (scsi.SenseKey.MEDIUM_ERROR, 0, 0, False)),
        # Descriptor: MEDIUM ERROR 11/00.
        ("72 03 11 00 000000 00", (scsi.SenseKey.MEDIUM_ERROR, 0x11, 0x00, True)),
        ("73 05 24 00", (scsi.SenseKey.ILLEGAL_REQUEST, 0x24, 0, True)),
    ],
)
def test_parse_sense(data: str, expected: tuple) -> None:
    sense = scsi.parse_sense(bytes.fromhex(data.replace(" ", "")))
    assert (sense.key, sense.asc, sense.ascq, sense.descriptor) == expected


@pytest.mark.parametrize("data", ["", "70 00", "72 05 24", "00 00 00 00", "7f 00 00 00"])
def test_parse_sense_hostile(data: str) -> None:
    with pytest.raises(RemoteProtocolError, match="sense data"):
        scsi.parse_sense(bytes.fromhex(data.replace(" ", "")))


def test_check_names_command_status_and_sense() -> None:
    sense = scsi.Sense(0x70, scsi.SenseKey.ILLEGAL_REQUEST, 0x20, 0, False)
    with pytest.raises(scsi.ScsiCommandError) as info:
        scsi.check(scsi.read_capacity_16(), 0x02, sense)
    text = str(info.value)
    assert "READ CAPACITY(16)" in text and "CHECK_CONDITION (0x02)" in text and "ILLEGAL_REQUEST" in text
    assert "0x20/0x00" in text
    assert isinstance(info.value, IscsiError) and scsi.is_invalid_opcode(info.value)
    assert not scsi.is_unit_attention(info.value)


@pytest.mark.parametrize("status", [0x00, 0x04])
def test_check_passes_good(status: int) -> None:
    scsi.check(scsi.inquiry(), status, None)


def test_check_unknown_status() -> None:
    with pytest.raises(scsi.ScsiCommandError, match="unknown status \\(0x77\\)"):
        scsi.check(scsi.inquiry(), 0x77, None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80))
def test_parsers_raise_only_typed_errors(data: bytes) -> None:
    for parse in (
        scsi.parse_sense,
        scsi.parse_inquiry,
        scsi.parse_report_luns,
        scsi.parse_read_capacity_10,
        scsi.parse_read_capacity_16,
    ):
        with contextlib.suppress(PyiscsiError):
            parse(data)
