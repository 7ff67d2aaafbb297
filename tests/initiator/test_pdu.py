from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import LocalProtocolError, PyiscsiError, RemoteProtocolError
from initiator.pdu import (
    BHS_LEN,
    PDU_CLASSES,
    R2T,
    RESERVED_TAG,
    Ahs,
    AsyncMessage,
    BhsInfo,
    DataIn,
    DataOut,
    Field,
    FrozenFieldError,
    LoginRequest,
    LoginResponse,
    LogoutRequest,
    LogoutResponse,
    NopIn,
    NopOut,
    Opcode,
    Pdu,
    Reject,
    ScsiCommand,
    ScsiResponse,
    SnackRequest,
    Stage,
    TaskMgmtRequest,
    TaskMgmtResponse,
    TextRequest,
    TextResponse,
    decode_bytes,
    decode_lun,
    decode_pdu,
    encode_lun,
    pad_len,
    parse_ahs,
    parse_bhs,
)

# The READ command of RFC 3720 B.4 (its CRC example), decoded field by field.
READ_COMMAND_PDU = bytes.fromhex(
    "01c00000" "00000000" "00000000" "00000000" "14000000" "00000400"
    "00000014" "00000018" "28000000" "00000000" "02000000" "00000000"
)  # fmt: skip


def test_rfc3720_read_command_decodes() -> None:
    pdu = decode_pdu(READ_COMMAND_PDU, from_target=False)
    assert isinstance(pdu, ScsiCommand)
    assert (pdu.final, pdu.read, pdu.write, pdu.immediate) == (True, True, False, False)
    assert pdu.itt == 0x14000000
    assert pdu.expected_length == 0x400
    assert (pdu.cmdsn, pdu.exp_statsn) == (0x14, 0x18)
    assert pdu.cdb == bytes.fromhex("28000000000000000200000000000000")
    assert pdu.attr == 0
    assert pdu.encode() == READ_COMMAND_PDU


def _hand_login_request() -> bytes:
    """A Login Request laid out by hand from RFC 7143 figure 11.12."""
    bhs = bytearray(48)
    bhs[0] = 0x40 | 0x03  # I, opcode
    bhs[1] = 0x80 | (1 << 2) | 3  # T, CSG=1, NSG=3
    bhs[2], bhs[3] = 0, 0  # versions
    bhs[5:8] = (12).to_bytes(3, "big")
    bhs[8:14] = bytes.fromhex("80123456789a")
    bhs[14:16] = (0).to_bytes(2, "big")
    bhs[16:20] = (7).to_bytes(4, "big")
    bhs[20:22] = (2).to_bytes(2, "big")
    bhs[24:28] = (1).to_bytes(4, "big")
    bhs[28:32] = (9).to_bytes(4, "big")
    return bytes(bhs) + b"HeaderDigest"


def test_login_request_byte_layout() -> None:
    pdu = LoginRequest(
        transit=True,
        csg=Stage.OPERATIONAL,
        nsg=Stage.FULL_FEATURE,
        isid=bytes.fromhex("80123456789a"),
        itt=7,
        cid=2,
        cmdsn=1,
        exp_statsn=9,
        data=b"HeaderDigest",
    )
    assert pdu.encode() == _hand_login_request()
    assert decode_bytes(_hand_login_request(), from_target=False) == pdu


def test_login_response_status_bytes() -> None:
    raw = bytearray(LoginResponse(status_class=2, status_detail=1, statsn=5, exp_cmdsn=2, max_cmdsn=9).encode())
    assert raw[0] == 0x23
    assert (raw[36], raw[37]) == (2, 1)
    assert raw[24:36] == bytes.fromhex("00000005" "00000002" "00000009")  # fmt: skip


# One instance of every PDU kind with non-default values in every field, for round trips.
SAMPLES: list[Pdu] = [
    NopOut(immediate=True, lun=encode_lun(3), itt=5, ttt=RESERVED_TAG, cmdsn=10, exp_statsn=11, data=b"ping"),
    ScsiCommand(read=True, attr=1, lun=encode_lun(1), itt=2, expected_length=512, cmdsn=3, exp_statsn=4,
                cdb=bytes.fromhex("9e10") + bytes(14)),
    ScsiCommand(write=True, itt=9, cdb=bytes(range(1, 33)), data=b"x" * 5),
    TaskMgmtRequest(immediate=True, function=5, lun=encode_lun(2), itt=4, cmdsn=8, exp_statsn=1, ref_cmdsn=7),
    LoginRequest(transit=True, cont=False, csg=0, nsg=1, isid=b"\x80\x01\x02\x03\x04\x05", tsih=0, itt=1, cid=0,
                 cmdsn=1, exp_statsn=0, data=b"InitiatorName=iqn.x\0"),
    TextRequest(final=False, cont=True, itt=3, ttt=0x1234, cmdsn=2, exp_statsn=3, data=b"SendTargets=All\0"),
    DataOut(final=True, lun=1 << 48, itt=6, ttt=77, exp_statsn=5, datasn=2, buffer_offset=8192, data=b"d" * 7),
    LogoutRequest(reason=1, itt=8, cid=3, cmdsn=9, exp_statsn=10),
    SnackRequest(type=1, itt=RESERVED_TAG, ttt=0, exp_statsn=4, beg_run=3, run_length=2),
    NopIn(itt=RESERVED_TAG, ttt=0x55, statsn=1, exp_cmdsn=2, max_cmdsn=33),
    ScsiResponse(underflow=True, response=0, status=2, itt=7, statsn=11, exp_cmdsn=12, max_cmdsn=40, exp_datasn=1,
                 residual=100, data=b"\x00\x03abcRESP"),
    TaskMgmtResponse(response=1, itt=4, statsn=1, exp_cmdsn=2, max_cmdsn=3),
    LoginResponse(transit=True, csg=1, nsg=3, version_active=0, isid=b"\x80\x01\x02\x03\x04\x05", tsih=0x1234,
                  itt=1, statsn=0x7F000001, exp_cmdsn=1, max_cmdsn=1, status_class=0, status_detail=0,
                  data=b"TargetPortalGroupTag=1\0"),
    TextResponse(final=False, cont=True, itt=3, ttt=0x99, statsn=2, exp_cmdsn=3, max_cmdsn=4, data=b"TargetName="),
    DataIn(final=True, has_status=True, underflow=True, status=0, itt=2, statsn=5, exp_cmdsn=6, max_cmdsn=7,
           datasn=3, buffer_offset=1024, residual=512, data=b"\x01" * 13),
    LogoutResponse(response=0, itt=8, statsn=1, exp_cmdsn=2, max_cmdsn=3, time2wait=2, time2retain=20),
    R2T(lun=encode_lun(1), itt=2, ttt=3, statsn=4, exp_cmdsn=5, max_cmdsn=6, r2tsn=1, buffer_offset=65536,
        desired_length=4096),
    AsyncMessage(event=1, statsn=3, exp_cmdsn=4, max_cmdsn=5, parameter3=10, data=b"\x00\x00"),
    Reject(reason=9, statsn=3, exp_cmdsn=4, max_cmdsn=5, data=READ_COMMAND_PDU),
]  # fmt: skip


@pytest.mark.parametrize("pdu", SAMPLES, ids=lambda p: p.kind)
def test_round_trip(pdu: Pdu) -> None:
    raw = pdu.encode()
    assert len(raw) % 4 == 0
    info = parse_bhs(raw[:BHS_LEN])
    assert info.opcode == pdu.OPCODE
    assert info.data_segment_len == len(pdu.data)
    assert decode_bytes(raw, from_target=False) == pdu


@pytest.mark.parametrize("pdu", [p for p in SAMPLES if p.OPCODE >= 0x20], ids=lambda p: p.kind)
def test_target_pdus_decode_from_target(pdu: Pdu) -> None:
    assert decode_bytes(pdu.encode()) == pdu


@pytest.mark.parametrize("pdu", [p for p in SAMPLES if p.OPCODE < 0x20], ids=lambda p: p.kind)
def test_initiator_opcode_from_target_is_refused(pdu: Pdu) -> None:
    with pytest.raises(RemoteProtocolError, match="not one a target may send"):
        decode_bytes(pdu.encode())


def test_every_opcode_has_a_class() -> None:
    assert set(PDU_CLASSES) == set(Opcode)
    assert all(op == cls.OPCODE for op, cls in PDU_CLASSES.items())


@pytest.mark.parametrize("opcode", sorted(set(range(64)) - set(Opcode)))
def test_unknown_opcode_is_refused(opcode: int) -> None:
    bhs = bytes([opcode]) + bytes(47)
    with pytest.raises(RemoteProtocolError, match=f"opcode {opcode:#04x} is unknown"):
        decode_pdu(bhs)


def test_extended_cdb_goes_into_an_ahs() -> None:
    cdb = bytes(range(1, 33))
    raw = ScsiCommand(cdb=cdb).encode()
    info = parse_bhs(raw[:48])
    assert info.total_ahs_len == 20  # 2+1+1 reserved + 16 CDB bytes
    (seg,) = parse_ahs(raw[48 : 48 + info.total_ahs_len])
    assert seg.type == 1
    assert len(seg.specific) == 32 - 15  # AHSLength = CDB length - 15 (RFC 7143 11.2.2.3)
    assert decode_bytes(raw, from_target=False).cdb == cdb


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        (LoginRequest(csg=4), "csg"),
        (LoginRequest(isid=b"\x80"), "isid must be 6 bytes"),
        (NopOut(itt=1 << 32), "itt"),
        (LogoutRequest(reason=0x80), "reason"),
        (TextRequest(ahs=b"abc"), "AHS of 3 bytes"),
        (LoginRequest(tsih=-1), "tsih"),
    ],
)
def test_encode_refuses_values_that_do_not_fit(pdu: Pdu, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        pdu.encode()


def _with_lengths(pdu: Pdu, data_len: int) -> bytes:
    bhs = bytearray(pdu.encode_bhs())
    bhs[5:8] = data_len.to_bytes(3, "big")
    return bytes(bhs)


@pytest.mark.parametrize(
    ("bhs", "ahs", "data", "message"),
    [
        (bytes(47), b"", b"", "need 48 bytes"),
        (NopIn().encode_bhs(), b"", b"x", "DataSegmentLength 0 but 1 data bytes"),
        (_with_lengths(NopIn(), 4), b"", b"", "DataSegmentLength 4 but 0"),
        (R2T(data=b"abcd").encode_bhs(), b"", b"abcd", "R2T: carries no data segment"),
        (LogoutResponse(data=b"x").encode_bhs(), b"", b"x", "LogoutResponse: carries no data"),
        (TaskMgmtResponse(data=b"x").encode_bhs(), b"", b"x", "TaskMgmtResponse: carries no data"),
        (NopIn(ahs=b"\0" * 4).encode_bhs(), b"", b"", "TotalAHSLength 4 but 0 AHS bytes"),
    ],
)
def test_decode_refuses_inconsistent_pieces(bhs: bytes, ahs: bytes, data: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_pdu(bhs, ahs, data)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"\x00\x10\x01", "3 trailing bytes"),
        (b"\x00\x10\x01\x00", "AHSLength 16 at offset 0 runs past"),
        (Ahs(1, b"abc").encode() + b"\x00\x09\x02\x00", "AHSLength 9 at offset 8"),
    ],
)
def test_parse_ahs_refuses_bad_lengths(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        parse_ahs(raw)


def test_parse_ahs_several_segments() -> None:
    raw = Ahs(1, b"\0abcde").encode() + Ahs(2, b"\0\0\0\x10\0").encode()
    assert parse_ahs(raw) == (Ahs(1, b"\0abcde"), Ahs(2, b"\0\0\0\x10\0"))


def test_truncated_whole_pdu() -> None:
    raw = TextResponse(data=b"TargetName=iqn.x").encode()
    with pytest.raises(RemoteProtocolError, match="declares 0 AHS and 16 data bytes"):
        decode_bytes(raw[:60])
    with pytest.raises(RemoteProtocolError, match="shorter than a 48-byte BHS"):
        decode_bytes(raw[:20])


@pytest.mark.parametrize(
    ("data", "sense", "response_data"),
    [
        (b"", b"", b""),
        (b"\x00\x00", b"", b""),
        (b"\x00\x03abc", b"abc", b""),
        (b"\x00\x02abXY", b"ab", b"XY"),
    ],
)
def test_scsi_response_sense(data: bytes, sense: bytes, response_data: bytes) -> None:
    pdu = ScsiResponse(data=data)
    assert (pdu.sense, pdu.response_data) == (sense, response_data)


@pytest.mark.parametrize(("data", "message"), [(b"\x00", "has no SenseLength"), (b"\x00\x09ab", "SenseLength 9")])
def test_scsi_response_bad_sense_length(data: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        _ = ScsiResponse(data=data).sense


def test_reject_carries_the_rejected_header() -> None:
    assert Reject(data=READ_COMMAND_PDU).rejected_bhs == READ_COMMAND_PDU
    assert Reject(data=b"short").rejected_bhs is None


@pytest.mark.parametrize(("n", "field"), [(0, 0), (1, 1 << 48), (255, 255 << 48), (256, 0x4100 << 48)])
def test_lun_encoding(n: int, field: int) -> None:
    assert encode_lun(n) == field
    assert decode_lun(field) == n


@pytest.mark.parametrize("n", [-1, 0x4000])
def test_lun_out_of_range(n: int) -> None:
    with pytest.raises(LocalProtocolError, match="LUN"):
        encode_lun(n)


@pytest.mark.parametrize(("n", "pad"), [(0, 0), (1, 3), (2, 2), (3, 1), (4, 0), (5, 3)])
def test_pad_len(n: int, pad: int) -> None:
    assert pad_len(n) == pad


def test_padding_is_zero_bytes() -> None:
    raw = NopOut(data=b"abcde").encode()
    assert raw[48:] == b"abcde\0\0\0"


def test_reserved_bits_ignored_on_receive() -> None:
    raw = bytearray(NopIn(ttt=5).encode())
    raw[40:48] = b"\xff" * 8  # reserved bytes of a NOP-In
    assert decode_bytes(bytes(raw)) == NopIn(ttt=5)


def _field_strategy(pdu_cls: type[Pdu]) -> st.SearchStrategy[Pdu]:
    kwargs = {}
    for f in pdu_cls.FIELDS:
        if f.kind == "bool":
            kwargs[f.name] = st.booleans()
        elif f.kind == "bytes":
            kwargs[f.name] = st.binary(min_size=f.size, max_size=f.size)
        elif f.mask:
            kwargs[f.name] = st.integers(0, f.mask >> f.shift)
        else:
            kwargs[f.name] = st.integers(0, (1 << (8 * f.size)) - 1)
    data = st.just(b"") if not pdu_cls.DATA_ALLOWED else st.binary(max_size=40)
    return st.builds(pdu_cls, data=data, **kwargs)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(PDU_CLASSES.values(), key=lambda c: c.OPCODE)).flatmap(_field_strategy))
def test_round_trip_any_field_values(pdu: Pdu) -> None:
    decoded = decode_bytes(pdu.encode(), from_target=False)
    if isinstance(pdu, ScsiCommand):
        # A 16-byte CDB ending in zeros cannot be told from a shorter one: compare the wire images instead.
        assert decoded.encode() == pdu.encode()
    else:
        assert decoded == pdu


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=48, max_size=48), st.binary(max_size=64), st.binary(max_size=64))
def test_random_pieces_give_typed_errors_only(bhs: bytes, ahs: bytes, data: bytes) -> None:
    # Make the lengths agree most of the time, so the field decoders are reached, not only the length checks.
    ahs = ahs[: len(ahs) // 4 * 4]
    patched = bytearray(bhs)
    if bhs[1] & 1:
        patched[4] = len(ahs) // 4
        patched[5:8] = len(data).to_bytes(3, "big")
    try:
        pdu = decode_pdu(bytes(patched), ahs, data, from_target=bool(bhs[2] & 1))
    except PyiscsiError:
        return
    if isinstance(pdu, ScsiResponse):
        with contextlib.suppress(PyiscsiError):
            _ = pdu.sense, pdu.response_data


def test_frozen() -> None:
    with pytest.raises(FrozenFieldError, match="'itt'"):
        NopOut().itt = 3  # type: ignore[misc]
    with pytest.raises(FrozenFieldError):
        del NopOut().data
    with pytest.raises(FrozenFieldError):
        Field("x", 0).size = 2  # type: ignore[misc]
    assert isinstance(FrozenFieldError("x"), AttributeError)


@pytest.mark.parametrize(
    ("make", "changes"),
    [
        (lambda: NopOut(itt=1, data=b"ab"), {"itt": 2}),
        (lambda: LoginRequest(transit=True, isid=b"\x80" + bytes(5)), {"cont": True, "data": b"k=v\0"}),
        (lambda: ScsiCommand(cdb=bytes(20)), {"lun": 3}),
    ],
)
def test_replace_like_a_frozen_dataclass(make: Callable[[], Pdu], changes: dict[str, object]) -> None:
    pdu = make()
    changed = pdu.replace(**changes)
    assert type(changed) is type(pdu) and changed != pdu and pdu == make()
    assert all(getattr(changed, name) == value for name, value in changes.items())
    assert changed.replace(**{name: getattr(pdu, name) for name in changes}) == pdu
    assert hash(changed.replace(**{name: getattr(pdu, name) for name in changes})) == hash(pdu)
    assert repr(pdu).startswith(f"{type(pdu).__name__}(immediate=")
    with pytest.raises(TypeError, match="no field 'nope'"):
        pdu.replace(nope=1)


def test_values_of_other_kinds_are_unequal() -> None:
    assert NopOut() != NopIn() and NopOut() != object() and Ahs(1, b"") != BhsInfo(1, False, 0, 0)
    assert Field("a", 1) == Field("a", 1, 4, 0, "int") and Field("a", 1, 1, 0x0C).shift == 2


def test_class_decode() -> None:
    raw = NopIn(ttt=3).encode()
    assert NopIn.decode(raw) == NopIn(ttt=3)
    assert Pdu.decode(raw) == NopIn(ttt=3)
    with pytest.raises(RemoteProtocolError, match="LoginResponse: got a NopIn"):
        LoginResponse.decode(raw)
