from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.crc32c import digest_bytes
from initiator.errors import LocalProtocolError, PyiscsiError, RemoteProtocolError
from initiator.framing import DigestError, PduReader, frame, framed_length
from initiator.pdu import (
    BHS_LEN,
    DataIn,
    LoginResponse,
    NopIn,
    NopOut,
    Pdu,
    ScsiResponse,
    TextResponse,
    parse_bhs,
)

LOGIN = LoginResponse(transit=True, csg=1, nsg=3, tsih=3, itt=1, statsn=4, data=b"MaxBurstLength=262144\0")
NOP = NopIn(ttt=9, statsn=5)
DATA = DataIn(final=True, has_status=True, itt=2, datasn=0, data=bytes(range(256)) * 4 + b"xyz")
SENSE = ScsiResponse(status=2, itt=3, data=b"\x00\x12" + bytes(18))
PDUS = [LOGIN, NOP, DATA, SENSE]

DIGESTS = [(False, False), (True, False), (False, True), (True, True)]


@pytest.mark.parametrize(("hd", "dd"), DIGESTS)
@pytest.mark.parametrize("pdu", PDUS, ids=lambda p: p.kind)
def test_frame_then_read_back(pdu: Pdu, hd: bool, dd: bool) -> None:
    wire = frame(pdu, hd, dd)
    assert len(wire) == framed_length(parse_bhs(wire[:BHS_LEN]), hd, dd)
    reader = PduReader(max_data_segment=65536, header_digest=hd, data_digest=dd)
    reader.feed(wire)
    assert reader.next_pdu() == pdu
    assert reader.next_pdu() is None
    assert reader.trailing_data == b""


@pytest.mark.parametrize(("hd", "dd"), DIGESTS)
def test_reading_exactly_bytes_needed_never_passes_a_pdu(hd: bool, dd: bool) -> None:
    """A driver that reads only what bytes_needed() asks for ends each PDU exactly at its boundary."""
    stream = b"".join(frame(p, hd, dd) for p in PDUS)
    reader = PduReader(max_data_segment=65536, header_digest=hd, data_digest=dd)
    pos = 0
    got = []
    while pos < len(stream):
        need = reader.bytes_needed()
        assert need > 0
        reader.feed(stream[pos : pos + need])
        pos += need
        if reader.bytes_needed() == 0:
            got.append(reader.next_pdu())
            assert reader.buffered == 0  # nothing of the next PDU was read
    assert got == PDUS


def test_byte_at_a_time() -> None:
    stream = b"".join(frame(p, True, True) for p in PDUS)
    reader = PduReader(max_data_segment=65536, header_digest=True, data_digest=True)
    got = []
    for i in range(len(stream)):
        reader.feed(stream[i : i + 1])
        got.extend(reader.pdus())
    assert got == PDUS


def test_several_pdus_in_one_feed_and_trailing_bytes() -> None:
    stream = frame(NOP) + frame(LOGIN) + frame(NOP)[:10]
    reader = PduReader()
    reader.feed(stream)
    assert list(reader.pdus()) == [NOP, LOGIN]
    assert reader.trailing_data == frame(NOP)[:10]
    assert reader.bytes_needed() == BHS_LEN - 10


def test_bytes_needed_for_empty_reader_is_one_bhs() -> None:
    assert PduReader().bytes_needed() == BHS_LEN


def test_bytes_needed_counts_padding_and_digests() -> None:
    pdu = TextResponse(data=b"abcde")  # 5 data bytes, 3 of padding
    reader = PduReader(header_digest=True, data_digest=True)
    reader.feed(frame(pdu, True, True)[:BHS_LEN])
    assert reader.bytes_needed() == 4  # the header digest first
    reader.feed(frame(pdu, True, True)[BHS_LEN : BHS_LEN + 4])
    assert reader.bytes_needed() == 8 + 4


def _bhs_declaring(data_len: int) -> bytes:
    bhs = bytearray(NopIn().encode_bhs())
    bhs[5:8] = data_len.to_bytes(3, "big")
    return bytes(bhs)


@pytest.mark.parametrize(("limit", "declared"), [(8192, 8193), (8192, 0xFFFFFF), (0, 1), (262144, 262148)])
def test_data_segment_over_limit_refused_from_the_bhs_alone(limit: int, declared: int) -> None:
    reader = PduReader(max_data_segment=limit)
    with pytest.raises(RemoteProtocolError, match=f"DataSegmentLength {declared} exceeds our MaxRecv"):
        reader.feed(_bhs_declaring(declared))  # no data byte was sent: refused before buffering any


def test_data_segment_at_limit_is_accepted() -> None:
    reader = PduReader(max_data_segment=8)
    reader.feed(frame(NopIn(data=b"12345678")))
    assert reader.next_pdu() == NopIn(data=b"12345678")


def test_limit_can_be_raised_after_login() -> None:
    reader = PduReader()
    reader.max_data_segment = 262144
    reader.feed(frame(NopIn(data=bytes(100_000))))
    assert len(reader.next_pdu().data) == 100_000


def _corrupt(wire: bytes, index: int) -> bytes:
    b = bytearray(wire)
    b[index] ^= 0x01
    return bytes(b)


def test_bad_header_digest_found_before_waiting_for_data() -> None:
    wire = frame(DATA, True, True)
    reader = PduReader(max_data_segment=65536, header_digest=True, data_digest=True)
    with pytest.raises(DigestError, match="header digest of opcode 0x25"):
        reader.feed(_corrupt(wire, 20)[: BHS_LEN + 4])


def test_bad_data_digest() -> None:
    wire = frame(DATA, True, True)
    reader = PduReader(max_data_segment=65536, header_digest=True, data_digest=True)
    reader.feed(_corrupt(wire, BHS_LEN + 4 + 10))
    with pytest.raises(DigestError, match="data digest of opcode 0x25"):
        reader.next_pdu()


def test_corrupt_padding_fails_data_digest() -> None:
    wire = frame(TextResponse(data=b"abcde"), False, True)
    reader = PduReader(data_digest=True)
    reader.feed(_corrupt(wire, BHS_LEN + 6))  # a padding byte: covered by the digest
    with pytest.raises(DigestError):
        reader.next_pdu()


def test_no_data_digest_without_data() -> None:
    wire = frame(NOP, True, True)
    assert len(wire) == BHS_LEN + 4
    assert wire[BHS_LEN:] == digest_bytes(wire[:BHS_LEN])


def test_error_poisons_the_reader() -> None:
    reader = PduReader(max_data_segment=10)
    with pytest.raises(RemoteProtocolError):
        reader.feed(_bhs_declaring(11))
    for call in (reader.bytes_needed, reader.next_pdu, lambda: reader.feed(frame(NOP))):
        with pytest.raises(RemoteProtocolError, match="unusable after an earlier error"):
            call()


def test_initiator_opcode_from_target_refused() -> None:
    reader = PduReader()
    reader.feed(frame(NopOut()))
    with pytest.raises(RemoteProtocolError, match="not one a target may send"):
        reader.next_pdu()


def test_digests_switch_only_at_a_boundary() -> None:
    reader = PduReader()
    reader.feed(frame(NOP)[:5])
    with pytest.raises(LocalProtocolError, match="5 bytes of a PDU buffered"):
        reader.set_digests(header=True, data=True)


def test_digests_switched_on_after_login() -> None:
    reader = PduReader()
    reader.feed(frame(LOGIN))
    assert reader.next_pdu() == LOGIN
    reader.set_digests(header=True, data=True)
    reader.feed(frame(NOP, True, True))
    assert reader.next_pdu() == NOP


def test_frame_refuses_data_over_peer_limit() -> None:
    with pytest.raises(LocalProtocolError, match="exceeds the peer's MaxRecvDataSegmentLength 8"):
        frame(NopOut(data=bytes(9)), max_data_segment=8)
    assert frame(NopOut(data=bytes(8)), max_data_segment=8) == NopOut(data=bytes(8)).encode()


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.booleans(), st.booleans(), st.integers(1, 64))
def test_random_bytes_give_typed_errors_only(stream: bytes, hd: bool, dd: bool, chunk: int) -> None:
    reader = PduReader(max_data_segment=256, header_digest=hd, data_digest=dd)
    try:
        for i in range(0, len(stream), chunk):
            reader.feed(stream[i : i + chunk])
            assert reader.bytes_needed() >= 0
            for _ in reader.pdus():
                pass
    except PyiscsiError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(PDUS), max_size=5), st.integers(0, 2000), st.integers(0, 7))
def test_random_single_bit_flip_is_typed_or_detected(pdus: list[Pdu], pos: int, bit: int) -> None:
    stream = bytearray(b"".join(frame(p, True, True) for p in pdus))
    if stream:
        stream[pos % len(stream)] ^= 1 << bit
    reader = PduReader(max_data_segment=65536, header_digest=True, data_digest=True)
    try:
        reader.feed(bytes(stream))
        got = list(reader.pdus())
    except PyiscsiError:
        return
    assert got != pdus or not stream  # with both digests on, a flipped bit never goes unnoticed
