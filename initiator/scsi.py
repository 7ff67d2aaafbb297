"""SCSI commands the userspace probe needs: CDB builders and parsers of what the target returns (SPC-4, SBC-3).

Only what `pyiscsi probe` sends: TEST UNIT READY, REPORT LUNS, INQUIRY (standard data), READ CAPACITY(10)/(16),
READ(10)/(16). Every parser takes bytes from the peer and raises RemoteProtocolError naming the command and the
field when they are short or inconsistent; a command that ends in CHECK CONDITION becomes ScsiCommandError
naming the command, the status and the sense key.
"""

from __future__ import annotations

import struct

from initiator.codes import IntCode
from initiator.errors import IscsiError, RemoteProtocolError
from initiator.record import record


class ScsiStatus(IntCode):
    """SAM status codes carried in the SCSI Response PDU."""

    GOOD = 0x00
    CHECK_CONDITION = 0x02
    CONDITION_MET = 0x04
    BUSY = 0x08
    RESERVATION_CONFLICT = 0x18
    TASK_SET_FULL = 0x28
    ACA_ACTIVE = 0x30
    TASK_ABORTED = 0x40

    @classmethod
    def of(cls, value: int) -> ScsiStatus | int:
        try:
            return cls(value)
        except ValueError:
            return value


class SenseKey(IntCode):
    NO_SENSE = 0x0
    RECOVERED_ERROR = 0x1
    NOT_READY = 0x2
    MEDIUM_ERROR = 0x3
    HARDWARE_ERROR = 0x4
    ILLEGAL_REQUEST = 0x5
    UNIT_ATTENTION = 0x6
    DATA_PROTECT = 0x7
    BLANK_CHECK = 0x8
    VENDOR_SPECIFIC = 0x9
    COPY_ABORTED = 0xA
    ABORTED_COMMAND = 0xB
    RESERVED_C = 0xC
    VOLUME_OVERFLOW = 0xD
    MISCOMPARE = 0xE
    COMPLETED = 0xF


class PeripheralType(IntCode):
    """The peripheral device types a probe is likely to meet (byte 0 of INQUIRY data, low five bits)."""

    DISK = 0x00
    TAPE = 0x01
    PROCESSOR = 0x03
    CDROM = 0x05
    MEDIUM_CHANGER = 0x08
    STORAGE_ARRAY_CONTROLLER = 0x0C
    ENCLOSURE = 0x0D
    WELL_KNOWN_LUN = 0x1E
    UNKNOWN = 0x1F


@record
class Sense:
    """The parts of sense data a message needs. `descriptor` tells which of the two formats carried it."""

    response_code: int
    key: SenseKey
    asc: int
    ascq: int
    descriptor: bool

    def __str__(self) -> str:
        return f"sense key {self.key.name} (0x{self.key:x}), ASC/ASCQ 0x{self.asc:02x}/0x{self.ascq:02x}"


class ScsiCommandError(IscsiError):
    """A SCSI command finished with a status other than GOOD. Names the command, the status and the sense."""

    def __init__(self, command: str, status: int, sense: Sense | None = None) -> None:
        self.command = command
        self.status = status
        self.sense = sense
        status_name = ScsiStatus.of(status)
        name = status_name.name if isinstance(status_name, ScsiStatus) else "unknown status"
        text = f"SCSI {command} failed: {name} (0x{status:02x})"
        super().__init__(f"{text}, {sense}" if sense is not None else text)


@record
class ScsiCommand:
    """One command to send: a name for messages, the CDB, and how many Data-In bytes we allow it to return."""

    name: str
    cdb: bytes
    data_in_length: int


# ---- LUNs (SAM-5 single level LUN structure) -------------------------------------------------------------


def encode_lun(lun: int) -> bytes:
    """The 8-byte LUN field for a LUN number: peripheral addressing below 256, flat space addressing above."""
    if not 0 <= lun < 1 << 14:
        raise ValueError(f"lun {lun} out of range (0..16383)")
    if lun < 256:
        return bytes([0, lun, 0, 0, 0, 0, 0, 0])
    return bytes([0x40 | (lun >> 8), lun & 0xFF, 0, 0, 0, 0, 0, 0])


def decode_lun(field: bytes) -> int:
    """A LUN number from an 8-byte LUN field; single level peripheral and flat addressing read as their number,
    anything else (extended, logical unit addressing, second levels) as Linux numbers it (scsilun_to_int)."""
    if len(field) != 8:
        raise RemoteProtocolError(f"LUN field must be 8 bytes, got {len(field)}")
    method = field[0] >> 6
    if field[2:] == bytes(6):
        if method == 0 and field[0] == 0:
            return field[1]
        if method == 1:
            return ((field[0] & 0x3F) << 8) | field[1]
    value = 0
    for i in range(0, 8, 2):
        value |= ((field[i] << 8) | field[i + 1]) << (i * 8)
    return value


# ---- CDB builders ----------------------------------------------------------------------------------------

REPORT_LUNS_HEADER = 8
REPORT_LUNS_MAX = 64 * 1024  # 8191 LUNs: far more than any target a boot disk sits on


def test_unit_ready() -> ScsiCommand:
    return ScsiCommand("TEST UNIT READY", bytes(6), 0)


def report_luns(allocation: int = REPORT_LUNS_HEADER + 8 * 256) -> ScsiCommand:
    if not 16 <= allocation <= REPORT_LUNS_MAX:
        raise ValueError(f"REPORT LUNS allocation {allocation} out of range")
    return ScsiCommand("REPORT LUNS", struct.pack(">BxBxxxIxx", 0xA0, 0x00, allocation), allocation)


def inquiry(allocation: int = 96) -> ScsiCommand:
    if not 36 <= allocation <= 0xFFFF:
        raise ValueError(f"INQUIRY allocation {allocation} out of range")
    return ScsiCommand("INQUIRY", struct.pack(">BBBHx", 0x12, 0, 0, allocation), allocation)


def read_capacity_10() -> ScsiCommand:
    return ScsiCommand("READ CAPACITY(10)", bytes([0x25]) + bytes(9), 8)


def read_capacity_16(allocation: int = 32) -> ScsiCommand:
    return ScsiCommand("READ CAPACITY(16)", struct.pack(">BB8xIxx", 0x9E, 0x10, allocation), allocation)


def read_10(lba: int, blocks: int, block_size: int) -> ScsiCommand:
    if not (0 <= lba <= 0xFFFFFFFF and 0 <= blocks <= 0xFFFF):
        raise ValueError(f"READ(10) cannot address lba {lba} count {blocks}")
    return ScsiCommand("READ(10)", struct.pack(">BxIxHx", 0x28, lba, blocks), blocks * block_size)


def read_16(lba: int, blocks: int, block_size: int) -> ScsiCommand:
    if not (0 <= lba < 1 << 64 and 0 <= blocks <= 0xFFFFFFFF):
        raise ValueError(f"READ(16) cannot address lba {lba} count {blocks}")
    return ScsiCommand("READ(16)", struct.pack(">BxQIxx", 0x88, lba, blocks), blocks * block_size)


def read(lba: int, blocks: int, block_size: int) -> ScsiCommand:
    """READ(10) where it can address the blocks, READ(16) beyond 2 TiB-ish LBAs."""
    if lba + blocks <= 0xFFFFFFFF and blocks <= 0xFFFF:
        return read_10(lba, blocks, block_size)
    return read_16(lba, blocks, block_size)


# ---- parsers ---------------------------------------------------------------------------------------------


def _short(command: str, what: str, need: int, got: int) -> RemoteProtocolError:
    return RemoteProtocolError(f"SCSI {command}: {what} needs {need} bytes, the target returned {got}")


@record
class LunList:
    """REPORT LUNS data. `list_length` is what the target says the whole list takes; when it exceeds what
    came back, `truncated` is set and the caller may ask again with a larger allocation."""

    luns: tuple[int, ...]
    list_length: int

    @property
    def truncated(self) -> bool:
        return self.list_length > 8 * len(self.luns)

    @property
    def needed_allocation(self) -> int:
        return REPORT_LUNS_HEADER + self.list_length


def parse_report_luns(data: bytes) -> LunList:
    if len(data) < REPORT_LUNS_HEADER:
        raise _short("REPORT LUNS", "the header", REPORT_LUNS_HEADER, len(data))
    (list_length,) = struct.unpack_from(">I", data, 0)
    if list_length % 8:
        raise RemoteProtocolError(f"SCSI REPORT LUNS: LUN LIST LENGTH {list_length} is not a multiple of 8")
    present = min(list_length, len(data) - REPORT_LUNS_HEADER) // 8
    luns = tuple(decode_lun(data[8 + 8 * i : 16 + 8 * i]) for i in range(present))
    return LunList(luns, list_length)


@record
class Inquiry:
    """Standard INQUIRY data. `peripheral_type` is an int when it is not one of PeripheralType's members."""

    qualifier: int
    peripheral_type: PeripheralType | int
    removable: bool
    version: int
    vendor: str
    product: str
    revision: str

    @property
    def is_disk(self) -> bool:
        """A direct-access block device that is connected (qualifier 0): what a probe can read block 0 of."""
        return self.qualifier == 0 and self.peripheral_type == PeripheralType.DISK

    @property
    def connected(self) -> bool:
        return self.qualifier == 0


INQUIRY_STANDARD_LENGTH = 36


def _ascii(field: bytes) -> str:
    return field.decode("ascii", errors="replace").replace("\x00", " ").strip()


def parse_inquiry(data: bytes) -> Inquiry:
    if len(data) < INQUIRY_STANDARD_LENGTH:
        raise _short("INQUIRY", "standard data", INQUIRY_STANDARD_LENGTH, len(data))
    qualifier, ptype = data[0] >> 5, data[0] & 0x1F
    try:
        peripheral: PeripheralType | int = PeripheralType(ptype)
    except ValueError:
        peripheral = ptype
    return Inquiry(
        qualifier=qualifier,
        peripheral_type=peripheral,
        removable=bool(data[1] & 0x80),
        version=data[2],
        vendor=_ascii(data[8:16]),
        product=_ascii(data[16:32]),
        revision=_ascii(data[32:36]),
    )


@record
class Capacity:
    """How big a LUN is: `blocks` is the count (last LBA + 1), not the last LBA."""

    blocks: int
    block_size: int

    @property
    def size_bytes(self) -> int:
        return self.blocks * self.block_size


MAX_BLOCK_SIZE = 1 << 20  # SBC allows any 32-bit value; nothing real is above 64 KiB


def _capacity(command: str, last_lba: int, block_size: int) -> Capacity:
    if not 1 <= block_size <= MAX_BLOCK_SIZE:
        raise RemoteProtocolError(f"SCSI {command}: LOGICAL BLOCK LENGTH {block_size} is not a usable block size")
    return Capacity(last_lba + 1, block_size)


READ_CAPACITY_10_OVERFLOW = 0xFFFFFFFF


def parse_read_capacity_10(data: bytes) -> Capacity:
    """Capacity from READ CAPACITY(10); an LBA of 0xFFFFFFFF means the disk needs (16), which the caller checks
    with `needs_read_capacity_16`."""
    if len(data) < 8:
        raise _short("READ CAPACITY(10)", "parameter data", 8, len(data))
    last_lba, block_size = struct.unpack_from(">II", data, 0)
    return _capacity("READ CAPACITY(10)", last_lba, block_size)


def needs_read_capacity_16(data: bytes) -> bool:
    return len(data) >= 4 and struct.unpack_from(">I", data, 0)[0] == READ_CAPACITY_10_OVERFLOW


def parse_read_capacity_16(data: bytes) -> Capacity:
    if len(data) < 12:
        raise _short("READ CAPACITY(16)", "parameter data", 12, len(data))
    last_lba, block_size = struct.unpack_from(">QI", data, 0)
    if last_lba == (1 << 64) - 1:
        raise RemoteProtocolError("SCSI READ CAPACITY(16): RETURNED LOGICAL BLOCK ADDRESS is all ones")
    return _capacity("READ CAPACITY(16)", last_lba, block_size)


# ---- sense data (SPC-4 4.5) --------------------------------------------------------------------------------

SENSE_FIXED = (0x70, 0x71)
SENSE_DESCRIPTOR = (0x72, 0x73)


def parse_sense(data: bytes) -> Sense:
    """Fixed (0x70/0x71) or descriptor (0x72/0x73) format sense data; anything else is a protocol error."""
    if not data:
        raise RemoteProtocolError("sense data: empty")
    code = data[0] & 0x7F
    if code in SENSE_FIXED:
        # Key in byte 2; ASC/ASCQ in 12/13, present only when the additional length (byte 7) reaches them.
        if len(data) < 3:
            raise RemoteProtocolError(f"sense data: fixed format needs at least 3 bytes, got {len(data)}")
        extra = data[7] if len(data) > 7 else 0
        available = min(len(data), 8 + extra)
        asc = data[12] if available > 12 else 0
        ascq = data[13] if available > 13 else 0
        return Sense(code, SenseKey(data[2] & 0x0F), asc, ascq, descriptor=False)
    if code in SENSE_DESCRIPTOR:
        if len(data) < 4:
            raise RemoteProtocolError(f"sense data: descriptor format needs at least 4 bytes, got {len(data)}")
        return Sense(code, SenseKey(data[1] & 0x0F), data[2], data[3], descriptor=True)
    raise RemoteProtocolError(f"sense data: unknown response code 0x{code:02x}")


def check(command: ScsiCommand, status: int, sense: Sense | None) -> None:
    """Raise ScsiCommandError unless the command completed GOOD (or CONDITION MET, which carries data)."""
    if status not in (ScsiStatus.GOOD, ScsiStatus.CONDITION_MET):
        raise ScsiCommandError(command.name, status, sense)


def is_unit_attention(exc: ScsiCommandError) -> bool:
    """The first command after login often reports a UNIT ATTENTION (power on, LUNs changed): worth a retry."""
    return exc.sense is not None and exc.sense.key == SenseKey.UNIT_ATTENTION


def is_invalid_opcode(exc: ScsiCommandError) -> bool:
    """ILLEGAL REQUEST / INVALID COMMAND OPERATION CODE (0x20) or INVALID FIELD IN CDB (0x24): the LUN does not
    implement this command (e.g. READ CAPACITY(16) on an old device)."""
    return exc.sense is not None and exc.sense.key == SenseKey.ILLEGAL_REQUEST and exc.sense.asc in (0x20, 0x24)
