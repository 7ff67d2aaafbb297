"""iSCSI PDUs (RFC 7143 section 11) as frozen values: bytes of one PDU in, a PDU object out, and back.

Every PDU is a 48-byte Basic Header Segment (BHS), optional Additional Header Segments (AHS, in 4-byte words)
and an optional data segment padded to 4 bytes. Digests and reading from a stream belong to `framing.py`;
this module sees the pieces of exactly one PDU. Each PDU kind declares its BHS layout as a table of fields
(name, offset, size or bit mask), so a reader can check a class against the RFC's figure line by line, and one
generic codec turns the table into bytes.

Public API
    Opcode, Stage, INITIATOR_OPCODES, TARGET_OPCODES, BHS_LEN, MAX_AHS_LEN, MAX_DATA_SEGMENT_LEN, RESERVED_TAG
    Pdu                   base: `encode() -> bytes` (BHS + AHS + padded data, no digests), `encode_bhs() -> bytes`,
                          `encode_header() -> bytes` (BHS + AHS), `kind` (class name, for messages),
                          classmethod `decode(raw) -> Pdu` (whole PDU bytes of exactly this kind),
                          fields `immediate`, `ahs` (raw AHS bytes), `data` (unpadded data segment)
    Initiator PDUs        NopOut, ScsiCommand, TaskMgmtRequest, LoginRequest, TextRequest, DataOut,
                          LogoutRequest, SnackRequest
    Target PDUs           NopIn, ScsiResponse, TaskMgmtResponse, LoginResponse, TextResponse, DataIn,
                          LogoutResponse, R2T, AsyncMessage, Reject
    FrozenFieldError      what assigning to a field of a PDU, Field, BhsInfo or Ahs raises (an AttributeError)
    BhsInfo, parse_bhs(bhs) -> BhsInfo           opcode and lengths, enough for framing to size the PDU
    decode_bytes(raw, *, from_target=True) -> Pdu  one whole PDU without digests (e.g. a kernel recv-PDU event)
    decode_pdu(bhs, ahs=b"", data=b"", *, from_target=True) -> Pdu
                          raises RemoteProtocolError for unknown/reserved opcodes, initiator opcodes from a
                          target (when from_target), or lengths that disagree with the BHS
    Ahs, parse_ahs(raw) -> tuple[Ahs, ...], AhsType
    pad_len(n) -> int, padded(data) -> bytes
    encode_lun(n) -> int, decode_lun(raw) -> int  SAM single-level LUN <-> the 8-byte LUN field (as u64)
    codes (IntCode):  LogoutReason, LogoutResponseCode, TaskFunction, TaskResponse, RejectReason, AsyncEvent,
                      SnackType, TaskAttr, ScsiResponseCode
"""

from __future__ import annotations

from initiator.codes import IntCode
from initiator.errors import LocalProtocolError, RemoteProtocolError
from initiator.record import FrozenFieldError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing at every start
if TYPE_CHECKING:
    from typing import ClassVar

BHS_LEN = 48
MAX_AHS_LEN = 255 * 4  # TotalAHSLength is one byte counting 4-byte words
MAX_DATA_SEGMENT_LEN = (1 << 24) - 1  # DataSegmentLength is 3 bytes
RESERVED_TAG = 0xFFFFFFFF


class Opcode(IntCode):
    # initiator -> target
    NOP_OUT = 0x00
    SCSI_COMMAND = 0x01
    TASK_MGMT_REQUEST = 0x02
    LOGIN_REQUEST = 0x03
    TEXT_REQUEST = 0x04
    DATA_OUT = 0x05
    LOGOUT_REQUEST = 0x06
    SNACK_REQUEST = 0x10
    # target -> initiator
    NOP_IN = 0x20
    SCSI_RESPONSE = 0x21
    TASK_MGMT_RESPONSE = 0x22
    LOGIN_RESPONSE = 0x23
    TEXT_RESPONSE = 0x24
    DATA_IN = 0x25
    LOGOUT_RESPONSE = 0x26
    R2T = 0x31
    ASYNC_MESSAGE = 0x32
    REJECT = 0x3F


INITIATOR_OPCODES = frozenset(op for op in Opcode if op < 0x20)
TARGET_OPCODES = frozenset(op for op in Opcode if op >= 0x20)


class Stage(IntCode):
    """Login stages in CSG/NSG (RFC 7143 11.12.3); 2 is reserved."""

    SECURITY = 0
    OPERATIONAL = 1
    FULL_FEATURE = 3


class LogoutReason(IntCode):
    CLOSE_SESSION = 0
    CLOSE_CONNECTION = 1
    REMOVE_FOR_RECOVERY = 2


class LogoutResponseCode(IntCode):
    SUCCESS = 0
    CID_NOT_FOUND = 1
    RECOVERY_NOT_SUPPORTED = 2
    CLEANUP_FAILED = 3


class TaskFunction(IntCode):
    ABORT_TASK = 1
    ABORT_TASK_SET = 2
    CLEAR_ACA = 3
    CLEAR_TASK_SET = 4
    LOGICAL_UNIT_RESET = 5
    TARGET_WARM_RESET = 6
    TARGET_COLD_RESET = 7
    TASK_REASSIGN = 8


class TaskResponse(IntCode):
    COMPLETE = 0
    NO_SUCH_TASK = 1
    NO_SUCH_LUN = 2
    TASK_STILL_ALLEGIANT = 3
    REASSIGNMENT_NOT_SUPPORTED = 4
    NOT_SUPPORTED = 5
    AUTHORIZATION_FAILED = 6
    REJECTED = 255


class RejectReason(IntCode):
    DATA_DIGEST_ERROR = 0x02
    SNACK_REJECT = 0x03
    PROTOCOL_ERROR = 0x04
    COMMAND_NOT_SUPPORTED = 0x05
    IMMEDIATE_COMMAND_REJECT = 0x06
    TASK_IN_PROGRESS = 0x07
    INVALID_DATA_ACK = 0x08
    INVALID_PDU_FIELD = 0x09
    LONG_OPERATION_REJECT = 0x0A
    DEPRECATED_NEGOTIATION_RESET = 0x0B
    WAITING_FOR_LOGOUT = 0x0C


class AsyncEvent(IntCode):
    SCSI_EVENT = 0
    LOGOUT_REQUESTED = 1
    CONNECTION_DROPPED = 2
    SESSION_DROPPED = 3
    NEGOTIATION_REQUESTED = 4
    TASK_TERMINATION = 5
    VENDOR_SPECIFIC = 255


class SnackType(IntCode):
    DATA_R2T = 0
    STATUS = 1
    DATA_ACK = 2
    R_DATA = 3


class TaskAttr(IntCode):
    UNTAGGED = 0
    SIMPLE = 1
    ORDERED = 2
    HEAD_OF_QUEUE = 3
    ACA = 4


class ScsiResponseCode(IntCode):
    COMMAND_COMPLETED = 0x00
    TARGET_FAILURE = 0x01


class AhsType(IntCode):
    EXTENDED_CDB = 1
    BIDI_READ_LENGTH = 2


def pad_len(n: int) -> int:
    """Bytes of padding after a segment of n bytes (segments end on a 4-byte boundary)."""
    return -n % 4


def padded(data: bytes) -> bytes:
    return data + bytes(pad_len(len(data)))


def encode_lun(n: int) -> int:
    """A LUN number as the 8-byte LUN field (SAM single level: peripheral below 256, flat up to 16383)."""
    if not 0 <= n < 0x4000:
        raise LocalProtocolError(f"LUN {n} out of range 0..16383 for single-level addressing")
    if n < 256:
        return n << 48
    return (0x4000 | n) << 48


def decode_lun(raw: int) -> int:
    """The LUN number of an 8-byte LUN field (the first level; peripheral or flat addressing)."""
    first = (raw >> 48) & 0xFFFF
    method = first >> 14
    if method in (0, 1):  # peripheral (bus 0 in practice) or flat space
        return first & 0x3FFF if method == 1 else first & 0xFF
    return first


class _Frozen:
    """Immutable value: equality, hash and repr over its fields, assignment refused.

    Why not `dataclass(frozen=True)`: it compiles each class's methods with exec() when the module is imported,
    and imports inspect (with ast, dis, tokenize); this module's 21 value classes made it the costliest import
    of every `pyiscsi discover`. The methods here are written once and shared."""

    __slots__ = ()
    _NAMES: ClassVar[tuple[str, ...]] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self._NAMES)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._NAMES)
        return f"{type(self).__qualname__}({inner})"

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenFieldError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenFieldError(f"cannot delete field {name!r}")


class Field(_Frozen):
    """One BHS field: `size` bytes at `offset`, or the bits of `mask` within the byte at `offset`.

    kind is "int" (big-endian unsigned), "bool" (single-bit mask) or "bytes" (a fixed-size byte string).
    """

    __slots__ = ("kind", "mask", "name", "offset", "shift", "size")
    _NAMES = ("name", "offset", "size", "mask", "kind")

    name: str
    offset: int
    size: int
    mask: int
    kind: str
    shift: int  # of the mask's lowest bit

    def __init__(self, name: str, offset: int, size: int = 4, mask: int = 0, kind: str = "int") -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "offset", offset)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "mask", mask)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "shift", (mask & -mask).bit_length() - 1)


def _u8(name: str, offset: int) -> Field:
    return Field(name, offset, 1)


def _u16(name: str, offset: int) -> Field:
    return Field(name, offset, 2)


def _u32(name: str, offset: int) -> Field:
    return Field(name, offset, 4)


def _bit(name: str, mask: int, offset: int = 1) -> Field:
    return Field(name, offset, 1, mask, "bool")


def _bits(name: str, mask: int, offset: int = 1) -> Field:
    return Field(name, offset, 1, mask)


def _raw(name: str, offset: int, size: int) -> Field:
    return Field(name, offset, size, kind="bytes")


LUN = Field("lun", 8, 8)
ITT = _u32("itt", 16)


class BhsInfo(_Frozen):
    """What framing needs before it has the rest of a PDU."""

    __slots__ = _NAMES = ("opcode", "immediate", "total_ahs_len", "data_segment_len")

    opcode: int
    immediate: bool
    total_ahs_len: int  # bytes
    data_segment_len: int  # bytes, before padding

    def __init__(self, opcode: int, immediate: bool, total_ahs_len: int, data_segment_len: int) -> None:
        object.__setattr__(self, "opcode", opcode)
        object.__setattr__(self, "immediate", immediate)
        object.__setattr__(self, "total_ahs_len", total_ahs_len)
        object.__setattr__(self, "data_segment_len", data_segment_len)


def parse_bhs(bhs: bytes) -> BhsInfo:
    if len(bhs) != BHS_LEN:
        raise RemoteProtocolError(f"BHS: need {BHS_LEN} bytes, got {len(bhs)}")
    return BhsInfo(
        opcode=bhs[0] & 0x3F,
        immediate=bool(bhs[0] & 0x40),
        total_ahs_len=bhs[4] * 4,
        data_segment_len=int.from_bytes(bhs[5:8], "big"),
    )


class Ahs(_Frozen):
    """One Additional Header Segment: its type and its type-specific bytes (from byte 3, unpadded)."""

    __slots__ = _NAMES = ("type", "specific")

    type: int
    specific: bytes

    def __init__(self, type: int, specific: bytes) -> None:
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "specific", specific)

    def encode(self) -> bytes:
        if len(self.specific) > 0xFFFF:
            raise LocalProtocolError(f"AHS type {self.type}: specific part of {len(self.specific)} bytes too long")
        return padded(len(self.specific).to_bytes(2, "big") + bytes([self.type]) + self.specific)


def parse_ahs(raw: bytes) -> tuple[Ahs, ...]:
    """Split the AHS area into segments; RemoteProtocolError if a length runs past the area."""
    out: list[Ahs] = []
    pos = 0
    while pos < len(raw):
        if len(raw) - pos < 4:
            raise RemoteProtocolError(f"AHS: {len(raw) - pos} trailing bytes at offset {pos}, need at least 4")
        length = int.from_bytes(raw[pos : pos + 2], "big")
        end = pos + 3 + length
        if end > len(raw):
            raise RemoteProtocolError(f"AHS: AHSLength {length} at offset {pos} runs past TotalAHSLength {len(raw)}")
        out.append(Ahs(raw[pos + 2], bytes(raw[pos + 3 : end])))
        pos = end + pad_len(3 + length)
    return tuple(out)


class Pdu(_Frozen):
    """Base of every PDU. Subclasses declare OPCODE, FIELDS (their BHS layout) and FIXED bits always set.

    A PDU's fields are its annotated class attributes with their defaults (a subclass may change a default);
    it is built by keyword only, compares, hashes and prints like a frozen dataclass, and `replace(**changes)`
    (also `copy.replace` on Python 3.13) gives a changed copy."""

    __slots__ = ("__dict__",)
    OPCODE: ClassVar[Opcode]
    FIELDS: ClassVar[tuple[Field, ...]] = ()
    FIXED: ClassVar[tuple[tuple[int, int], ...]] = ()  # (offset, bits) set on every PDU of this kind
    DATA_ALLOWED: ClassVar[bool] = True
    _DEFAULTS: ClassVar[dict[str, object]] = {}

    immediate: bool = False
    ahs: bytes = b""
    data: bytes = b""

    def __init_subclass__(cls, **kwargs: object) -> None:
        """The field table, once per class: every annotation that is not a ClassVar, in the order of the bases
        first, each with the default the most derived class gives it."""
        super().__init_subclass__(**kwargs)
        defaults: dict[str, object] = {}
        for klass in reversed(cls.__mro__):
            for name, annotation in vars(klass).get("__annotations__", {}).items():
                if not str(annotation).startswith("ClassVar") and not name.startswith("_"):
                    defaults[name] = None
        for name in defaults:
            defaults[name] = getattr(cls, name)
        cls._DEFAULTS = defaults
        cls._NAMES = tuple(defaults)

    def __init__(self, **values: object) -> None:
        for name, default in self._DEFAULTS.items():
            object.__setattr__(self, name, values.pop(name, default))
        if values:
            raise TypeError(f"{type(self).__name__}: no field {next(iter(values))!r}")

    def replace(self, **changes: object) -> Pdu:
        """This PDU with some fields changed (dataclasses.replace's job)."""
        return type(self)(**{name: changes.pop(name, getattr(self, name)) for name in self._NAMES}, **changes)

    __replace__ = replace

    # -- encoding -------------------------------------------------------------------------------------------
    def _ahs_bytes(self) -> bytes:
        return self.ahs

    def _field_value(self, f: Field) -> object:
        return getattr(self, f.name)

    def encode_bhs(self) -> bytes:
        """The 48-byte BHS, with TotalAHSLength and DataSegmentLength filled from `ahs` and `data`."""
        name = type(self).__name__
        ahs = self._ahs_bytes()
        if len(ahs) % 4 or len(ahs) > MAX_AHS_LEN:
            raise LocalProtocolError(f"{name}: AHS of {len(ahs)} bytes is not a multiple of 4 up to {MAX_AHS_LEN}")
        if len(self.data) > MAX_DATA_SEGMENT_LEN:
            raise LocalProtocolError(f"{name}: data segment of {len(self.data)} bytes exceeds {MAX_DATA_SEGMENT_LEN}")
        bhs = bytearray(BHS_LEN)
        bhs[0] = self.OPCODE | (0x40 if self.immediate else 0)
        for offset, bits in self.FIXED:
            bhs[offset] |= bits
        for f in self.FIELDS:
            value = self._field_value(f)
            if f.mask:
                number = int(value)  # bools and enums become their number
                if number < 0 or (number << f.shift) & ~f.mask:
                    raise LocalProtocolError(f"{name}: field {f.name} value {value!r} does not fit mask {f.mask:#x}")
                bhs[f.offset] |= number << f.shift
            elif f.kind == "bytes":
                if not isinstance(value, bytes | bytearray) or len(value) != f.size:
                    raise LocalProtocolError(f"{name}: field {f.name} must be {f.size} bytes, got {value!r}")
                bhs[f.offset : f.offset + f.size] = value
            else:
                number = int(value)  # type: ignore[call-overload]
                if not 0 <= number < 1 << (8 * f.size):
                    raise LocalProtocolError(f"{name}: field {f.name} value {value!r} out of range for {f.size} bytes")
                bhs[f.offset : f.offset + f.size] = number.to_bytes(f.size, "big")
        bhs[4] = len(ahs) // 4
        bhs[5:8] = len(self.data).to_bytes(3, "big")
        return bytes(bhs)

    def encode_header(self) -> bytes:
        """BHS + AHS: what a header digest covers."""
        return self.encode_bhs() + self._ahs_bytes()

    def encode(self) -> bytes:
        """BHS + AHS + data segment + padding, without digests (see framing.frame for those)."""
        return self.encode_header() + padded(self.data)

    # -- decoding -------------------------------------------------------------------------------------------
    @classmethod
    def _decode(cls, bhs: bytes, ahs: bytes, data: bytes) -> Pdu:
        values: dict[str, object] = {}
        for f in cls.FIELDS:
            if f.mask:
                number = (bhs[f.offset] & f.mask) >> f.shift
                values[f.name] = bool(number) if f.kind == "bool" else number
            elif f.kind == "bytes":
                values[f.name] = bytes(bhs[f.offset : f.offset + f.size])
            else:
                values[f.name] = int.from_bytes(bhs[f.offset : f.offset + f.size], "big")
        if not cls.DATA_ALLOWED and data:
            raise RemoteProtocolError(f"{cls.__name__}: carries no data segment, got DataSegmentLength {len(data)}")
        return cls._build(values, immediate=bool(bhs[0] & 0x40), ahs=bytes(ahs), data=bytes(data))

    @classmethod
    def _build(cls, values: dict[str, object], *, immediate: bool, ahs: bytes, data: bytes) -> Pdu:
        return cls(immediate=immediate, ahs=ahs, data=data, **values)  # type: ignore[arg-type]

    @classmethod
    def decode(cls, raw: bytes) -> Pdu:
        """One whole PDU of this kind from its bytes (no digests); RemoteProtocolError if it is another kind."""
        pdu = decode_bytes(raw, from_target=False)
        if not isinstance(pdu, cls):
            raise RemoteProtocolError(f"{cls.__name__}: got a {pdu.kind} (opcode {pdu.OPCODE:#04x})")
        return pdu

    @property
    def kind(self) -> str:
        return type(self).__name__


# ---------------------------------------------------------------------------------------------------------------
# Initiator PDUs
# ---------------------------------------------------------------------------------------------------------------


class NopOut(Pdu):
    """11.18. ITT 0xffffffff with TTT from a NOP-In answers a target ping; otherwise it is our own ping."""

    OPCODE = Opcode.NOP_OUT
    FIXED = ((1, 0x80),)
    FIELDS = (LUN, ITT, _u32("ttt", 20), _u32("cmdsn", 24), _u32("exp_statsn", 28))

    lun: int = 0
    itt: int = RESERVED_TAG
    ttt: int = RESERVED_TAG
    cmdsn: int = 0
    exp_statsn: int = 0


class ScsiCommand(Pdu):
    """11.3. A CDB longer than 16 bytes continues in an Extended-CDB AHS, which encode/decode handle."""

    OPCODE = Opcode.SCSI_COMMAND
    FIELDS = (
        _bit("final", 0x80),
        _bit("read", 0x40),
        _bit("write", 0x20),
        _bits("attr", 0x07),
        LUN,
        ITT,
        _u32("expected_length", 20),
        _u32("cmdsn", 24),
        _u32("exp_statsn", 28),
        _raw("cdb", 32, 16),
    )

    final: bool = True
    read: bool = False
    write: bool = False
    attr: int = TaskAttr.SIMPLE
    lun: int = 0
    itt: int = 0
    expected_length: int = 0
    cmdsn: int = 0
    exp_statsn: int = 0
    cdb: bytes = bytes(16)

    def _field_value(self, f: Field) -> object:
        if f.name == "cdb":
            return self.cdb[:16].ljust(16, b"\0")
        return super()._field_value(f)

    def _ahs_bytes(self) -> bytes:
        if len(self.cdb) <= 16:
            return self.ahs
        return Ahs(AhsType.EXTENDED_CDB, b"\0" + self.cdb[16:]).encode() + self.ahs

    @classmethod
    def _build(cls, values: dict[str, object], *, immediate: bool, ahs: bytes, data: bytes) -> Pdu:
        rest = b""
        others = []
        for seg in parse_ahs(ahs):
            if seg.type == AhsType.EXTENDED_CDB and not rest:
                if len(seg.specific) < 2:
                    raise RemoteProtocolError(f"ScsiCommand: Extended CDB AHS of {len(seg.specific)} bytes")
                rest = seg.specific[1:]
            else:
                others.append(seg.encode())
        if rest:
            values["cdb"] = bytes(values["cdb"]) + rest  # type: ignore[arg-type]
        return super()._build(values, immediate=immediate, ahs=b"".join(others), data=data)


class TaskMgmtRequest(Pdu):
    """11.5."""

    OPCODE = Opcode.TASK_MGMT_REQUEST
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (
        _bits("function", 0x7F),
        LUN,
        ITT,
        _u32("referenced_tag", 20),
        _u32("cmdsn", 24),
        _u32("exp_statsn", 28),
        _u32("ref_cmdsn", 32),
        _u32("exp_datasn", 36),
    )

    function: int = TaskFunction.ABORT_TASK
    lun: int = 0
    itt: int = 0
    referenced_tag: int = RESERVED_TAG
    cmdsn: int = 0
    exp_statsn: int = 0
    ref_cmdsn: int = 0
    exp_datasn: int = 0


_LOGIN_FIELDS = (
    _bit("transit", 0x80),
    _bit("cont", 0x40),
    _bits("csg", 0x0C),
    _bits("nsg", 0x03),
    _u8("version_max", 2),
    _raw("isid", 8, 6),
    _u16("tsih", 14),
    ITT,
)


class LoginRequest(Pdu):
    """11.12. Always immediate. CSG/NSG are Stage numbers; NSG counts only with transit (T) set."""

    OPCODE = Opcode.LOGIN_REQUEST
    FIELDS = (
        *_LOGIN_FIELDS,
        _u8("version_min", 3),
        _u16("cid", 20),
        _u32("cmdsn", 24),
        _u32("exp_statsn", 28),
    )

    immediate: bool = True
    transit: bool = False
    cont: bool = False
    csg: int = Stage.SECURITY
    nsg: int = Stage.SECURITY
    version_max: int = 0
    version_min: int = 0
    isid: bytes = bytes(6)
    tsih: int = 0
    itt: int = 0
    cid: int = 0
    cmdsn: int = 0
    exp_statsn: int = 0


class TextRequest(Pdu):
    """11.10. F final, C continue; TTT 0xffffffff starts a new exchange, else echoes the target's TTT."""

    OPCODE = Opcode.TEXT_REQUEST
    FIELDS = (
        _bit("final", 0x80),
        _bit("cont", 0x40),
        LUN,
        ITT,
        _u32("ttt", 20),
        _u32("cmdsn", 24),
        _u32("exp_statsn", 28),
    )

    immediate: bool = True
    final: bool = True
    cont: bool = False
    lun: int = 0
    itt: int = 0
    ttt: int = RESERVED_TAG
    cmdsn: int = 0
    exp_statsn: int = 0


class DataOut(Pdu):
    """11.7.1."""

    OPCODE = Opcode.DATA_OUT
    FIELDS = (
        _bit("final", 0x80),
        LUN,
        ITT,
        _u32("ttt", 20),
        _u32("exp_statsn", 28),
        _u32("datasn", 36),
        _u32("buffer_offset", 40),
    )

    final: bool = False
    lun: int = 0
    itt: int = 0
    ttt: int = RESERVED_TAG
    exp_statsn: int = 0
    datasn: int = 0
    buffer_offset: int = 0


class LogoutRequest(Pdu):
    """11.14. Usually immediate; reason 0 closes the session."""

    OPCODE = Opcode.LOGOUT_REQUEST
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (_bits("reason", 0x7F), ITT, _u16("cid", 20), _u32("cmdsn", 24), _u32("exp_statsn", 28))

    immediate: bool = True
    reason: int = LogoutReason.CLOSE_SESSION
    itt: int = 0
    cid: int = 0
    cmdsn: int = 0
    exp_statsn: int = 0


class SnackRequest(Pdu):
    """11.16."""

    OPCODE = Opcode.SNACK_REQUEST
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (
        _bits("type", 0x0F),
        LUN,
        ITT,
        _u32("ttt", 20),
        _u32("exp_statsn", 28),
        _u32("beg_run", 40),
        _u32("run_length", 44),
    )

    type: int = SnackType.DATA_R2T
    lun: int = 0
    itt: int = RESERVED_TAG
    ttt: int = RESERVED_TAG
    exp_statsn: int = 0
    beg_run: int = 0
    run_length: int = 0


# ---------------------------------------------------------------------------------------------------------------
# Target PDUs. Every one that carries StatSN also carries ExpCmdSN and MaxCmdSN at 28 and 32.
# ---------------------------------------------------------------------------------------------------------------

_SN_FIELDS = (_u32("statsn", 24), _u32("exp_cmdsn", 28), _u32("max_cmdsn", 32))


class NopIn(Pdu):
    """11.19. TTT other than 0xffffffff is the target's ping and wants a NOP-Out echoing it."""

    OPCODE = Opcode.NOP_IN
    FIXED = ((1, 0x80),)
    FIELDS = (LUN, ITT, _u32("ttt", 20), *_SN_FIELDS)

    lun: int = 0
    itt: int = RESERVED_TAG
    ttt: int = RESERVED_TAG
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0


class ScsiResponse(Pdu):
    """11.4. Data segment: SenseLength (2 bytes), sense data, response data; see `sense`."""

    OPCODE = Opcode.SCSI_RESPONSE
    FIXED = ((1, 0x80),)
    FIELDS = (
        _bit("bidi_overflow", 0x10),
        _bit("bidi_underflow", 0x08),
        _bit("overflow", 0x04),
        _bit("underflow", 0x02),
        _u8("response", 2),
        _u8("status", 3),
        ITT,
        _u32("snack_tag", 20),
        *_SN_FIELDS,
        _u32("exp_datasn", 36),
        _u32("bidi_residual", 40),
        _u32("residual", 44),
    )

    bidi_overflow: bool = False
    bidi_underflow: bool = False
    overflow: bool = False
    underflow: bool = False
    response: int = ScsiResponseCode.COMMAND_COMPLETED
    status: int = 0
    itt: int = 0
    snack_tag: int = 0
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    exp_datasn: int = 0
    bidi_residual: int = 0
    residual: int = 0

    @property
    def sense(self) -> bytes:
        """The sense data (empty without any); RemoteProtocolError if SenseLength runs past the segment."""
        if not self.data:
            return b""
        if len(self.data) < 2:
            raise RemoteProtocolError(f"ScsiResponse: data segment of {len(self.data)} byte has no SenseLength")
        length = int.from_bytes(self.data[:2], "big")
        if 2 + length > len(self.data):
            raise RemoteProtocolError(
                f"ScsiResponse: SenseLength {length} runs past the data segment of {len(self.data)} bytes"
            )
        return self.data[2 : 2 + length]

    @property
    def response_data(self) -> bytes:
        return self.data[2 + len(self.sense) :] if self.data else b""


class TaskMgmtResponse(Pdu):
    """11.6."""

    OPCODE = Opcode.TASK_MGMT_RESPONSE
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (_u8("response", 2), ITT, *_SN_FIELDS)

    response: int = TaskResponse.COMPLETE
    itt: int = 0
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0


class LoginResponse(Pdu):
    """11.13. status_class/status_detail: 0 success, 1 redirect, 2 initiator error, 3 target error."""

    OPCODE = Opcode.LOGIN_RESPONSE
    FIELDS = (
        *_LOGIN_FIELDS,
        _u8("version_active", 3),
        *_SN_FIELDS,
        _u8("status_class", 36),
        _u8("status_detail", 37),
    )

    transit: bool = False
    cont: bool = False
    csg: int = Stage.SECURITY
    nsg: int = Stage.SECURITY
    version_max: int = 0
    version_active: int = 0
    isid: bytes = bytes(6)
    tsih: int = 0
    itt: int = 0
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    status_class: int = 0
    status_detail: int = 0


class TextResponse(Pdu):
    """11.11. TTT other than 0xffffffff means more is to come (or the target expects our continuation)."""

    OPCODE = Opcode.TEXT_RESPONSE
    FIELDS = (_bit("final", 0x80), _bit("cont", 0x40), LUN, ITT, _u32("ttt", 20), *_SN_FIELDS)

    final: bool = True
    cont: bool = False
    lun: int = 0
    itt: int = 0
    ttt: int = RESERVED_TAG
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0


class DataIn(Pdu):
    """11.7.4. With S (has_status) set, status, StatSN and the residual are valid and no SCSI Response follows."""

    OPCODE = Opcode.DATA_IN
    FIELDS = (
        _bit("final", 0x80),
        _bit("ack", 0x40),
        _bit("overflow", 0x04),
        _bit("underflow", 0x02),
        _bit("has_status", 0x01),
        _u8("status", 3),
        LUN,
        ITT,
        _u32("ttt", 20),
        *_SN_FIELDS,
        _u32("datasn", 36),
        _u32("buffer_offset", 40),
        _u32("residual", 44),
    )

    final: bool = False
    ack: bool = False
    overflow: bool = False
    underflow: bool = False
    has_status: bool = False
    status: int = 0
    lun: int = 0
    itt: int = 0
    ttt: int = RESERVED_TAG
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    datasn: int = 0
    buffer_offset: int = 0
    residual: int = 0


class LogoutResponse(Pdu):
    """11.15."""

    OPCODE = Opcode.LOGOUT_RESPONSE
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (_u8("response", 2), ITT, *_SN_FIELDS, _u16("time2wait", 40), _u16("time2retain", 42))

    response: int = LogoutResponseCode.SUCCESS
    itt: int = 0
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    time2wait: int = 0
    time2retain: int = 0


class R2T(Pdu):
    """11.8."""

    OPCODE = Opcode.R2T
    FIXED = ((1, 0x80),)
    DATA_ALLOWED = False
    FIELDS = (
        LUN,
        ITT,
        _u32("ttt", 20),
        *_SN_FIELDS,
        _u32("r2tsn", 36),
        _u32("buffer_offset", 40),
        _u32("desired_length", 44),
    )

    lun: int = 0
    itt: int = 0
    ttt: int = 0
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    r2tsn: int = 0
    buffer_offset: int = 0
    desired_length: int = 0


class AsyncMessage(Pdu):
    """11.9. Event 1 asks us to log out within parameter3 seconds."""

    OPCODE = Opcode.ASYNC_MESSAGE
    FIXED = ((1, 0x80),)
    FIELDS = (
        LUN,
        ITT,
        *_SN_FIELDS,
        _u8("event", 36),
        _u8("vcode", 37),
        _u16("parameter1", 38),
        _u16("parameter2", 40),
        _u16("parameter3", 42),
    )

    lun: int = 0
    itt: int = RESERVED_TAG
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    event: int = AsyncEvent.SCSI_EVENT
    vcode: int = 0
    parameter1: int = 0
    parameter2: int = 0
    parameter3: int = 0


class Reject(Pdu):
    """11.17. The data segment is the header of the PDU the target rejected."""

    OPCODE = Opcode.REJECT
    FIXED = ((1, 0x80),)
    FIELDS = (_u8("reason", 2), ITT, *_SN_FIELDS, _u32("datasn", 36))

    reason: int = RejectReason.PROTOCOL_ERROR
    itt: int = RESERVED_TAG
    statsn: int = 0
    exp_cmdsn: int = 0
    max_cmdsn: int = 0
    datasn: int = 0

    @property
    def rejected_bhs(self) -> bytes | None:
        return self.data[:BHS_LEN] if len(self.data) >= BHS_LEN else None


PDU_CLASSES: dict[int, type[Pdu]] = {
    cls.OPCODE: cls
    for cls in (
        NopOut,
        ScsiCommand,
        TaskMgmtRequest,
        LoginRequest,
        TextRequest,
        DataOut,
        LogoutRequest,
        SnackRequest,
        NopIn,
        ScsiResponse,
        TaskMgmtResponse,
        LoginResponse,
        TextResponse,
        DataIn,
        LogoutResponse,
        R2T,
        AsyncMessage,
        Reject,
    )
}


def decode_pdu(bhs: bytes, ahs: bytes = b"", data: bytes = b"", *, from_target: bool = True) -> Pdu:
    """One PDU from its BHS, AHS and unpadded data segment (digests already checked and stripped).

    `from_target` (the default: we are the initiator) refuses initiator opcodes as well as unknown ones.
    """
    info = parse_bhs(bhs)
    cls = PDU_CLASSES.get(info.opcode)
    if cls is None:
        raise RemoteProtocolError(f"BHS: opcode {info.opcode:#04x} is unknown or reserved")
    if from_target and info.opcode not in TARGET_OPCODES:
        raise RemoteProtocolError(f"BHS: opcode {info.opcode:#04x} ({cls.__name__}) is not one a target may send")
    if len(ahs) != info.total_ahs_len:
        raise RemoteProtocolError(f"{cls.__name__}: TotalAHSLength {info.total_ahs_len} but {len(ahs)} AHS bytes")
    if len(data) != info.data_segment_len:
        raise RemoteProtocolError(
            f"{cls.__name__}: DataSegmentLength {info.data_segment_len} but {len(data)} data bytes"
        )
    return cls._decode(bytes(bhs), bytes(ahs), bytes(data))


def decode_bytes(raw: bytes, *, from_target: bool = True) -> Pdu:
    """One whole PDU without digests (BHS + AHS + padded data), e.g. from the kernel's recv-PDU event."""
    if len(raw) < BHS_LEN:
        raise RemoteProtocolError(f"PDU: {len(raw)} bytes is shorter than a {BHS_LEN}-byte BHS")
    info = parse_bhs(raw[:BHS_LEN])
    end_ahs = BHS_LEN + info.total_ahs_len
    end_data = end_ahs + info.data_segment_len
    if len(raw) < end_data:
        raise RemoteProtocolError(
            f"PDU: {len(raw)} bytes, but its BHS declares {info.total_ahs_len} AHS and "
            f"{info.data_segment_len} data bytes"
        )
    return decode_pdu(raw[:BHS_LEN], raw[BHS_LEN:end_ahs], raw[end_ahs:end_data], from_target=from_target)


__all__ = [
    "BHS_LEN",
    "INITIATOR_OPCODES",
    "MAX_AHS_LEN",
    "MAX_DATA_SEGMENT_LEN",
    "PDU_CLASSES",
    "R2T",
    "RESERVED_TAG",
    "TARGET_OPCODES",
    "Ahs",
    "AhsType",
    "AsyncEvent",
    "AsyncMessage",
    "BhsInfo",
    "DataIn",
    "DataOut",
    "Field",
    "FrozenFieldError",
    "LoginRequest",
    "LoginResponse",
    "LogoutReason",
    "LogoutRequest",
    "LogoutResponse",
    "LogoutResponseCode",
    "NopIn",
    "NopOut",
    "Opcode",
    "Pdu",
    "Reject",
    "RejectReason",
    "ScsiCommand",
    "ScsiResponse",
    "ScsiResponseCode",
    "SnackRequest",
    "SnackType",
    "Stage",
    "TaskAttr",
    "TaskFunction",
    "TaskMgmtRequest",
    "TaskMgmtResponse",
    "TaskResponse",
    "TextRequest",
    "TextResponse",
    "decode_bytes",
    "decode_lun",
    "decode_pdu",
    "encode_lun",
    "pad_len",
    "padded",
    "parse_ahs",
    "parse_bhs",
]
