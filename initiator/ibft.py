"""The iSCSI Boot Firmware Table, sans I/O: bytes in, a frozen `Ibft` out (or an `IbftError` naming the field).

Layout (iBFT spec 1.03; all integers little-endian; offsets are from the start of the table):

    header   48 bytes  signature "iBFT" (or the 1.0 "BIFT") @0, length u32 @4, revision u8 @8, checksum u8 @9,
                       OEM id [6] @10, OEM table id [8] @16, reserved [24] @24
    every structure starts with: id u8, version u8, length u16, index u8, flags u8
    control  id 1 @48  extensions u16 @6, then u16 offsets up to its length: initiator, NIC0, target0, NIC1, ...
    initiator id 2, 74 bytes: iSNS @6, SLP @22, primary RADIUS @38, secondary RADIUS @54, name (len, off) @70
    NIC      id 3, 102 bytes: IP @6, prefix u8 @22, origin u8 @23, gateway @24, DNS @40, DNS2 @56, DHCP @72,
                       VLAN u16 @88, MAC [6] @90, PCI bus/dev/fn u16 @96, hostname (len, off) @98
    target   id 4, 54 bytes: IP @6, port u16 @22, LUN [8] @24, CHAP type u8 @32, NIC index u8 @33,
                       then (len, off) pairs: name @34, CHAP name @38, CHAP secret @42, reverse name @46,
                       reverse secret @50

Addresses are 16 bytes, IPv4 as ::ffff:a.b.c.d; all zeros (or ::ffff:0.0.0.0) means absent. Strings are
(length, offset) without the NUL; length 0 means absent. The whole sum of the table's bytes must be 0 mod 256.
Every offset and length is checked against the table's bounds before it is followed, so a hostile table costs
at most its own size and ends in an IbftError, never an IndexError.

Secrets: a string's length or offset may be wrong by a few bytes and so run into its neighbour, which is often a
CHAP secret. So an error never quotes a string's bytes (it gives the field, offset, length and the bad byte's
position), and a non-secret string whose bytes overlap any target's declared secret is refused outright, so a
name can never print a secret's characters.

Inconsistent but readable tables (a target listed twice, a target's NIC index naming no NIC, a structure in a
slot meant for another kind, a second initiator) parse, and `Ibft.warnings` says what is odd, field by field.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from collections.abc import Callable, Sequence
from typing import Any

from initiator.codes import IntCode
from initiator.errors import IbftError
from initiator.record import record
from initiator.secret import REDACTED, Secret

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

SIGNATURES = (b"iBFT", b"BIFT")
HEADER_LENGTH = 48
MAX_TABLE_LENGTH = 0x80000  # the legacy scan window is 512 KiB; nothing real comes near it


class StructureId(IntCode):
    CONTROL = 1
    INITIATOR = 2
    NIC = 3
    TARGET = 4
    EXTENSIONS = 5


STRUCTURE_LENGTH = {StructureId.INITIATOR: 74, StructureId.NIC: 102, StructureId.TARGET: 54}
CONTROL_MIN_LENGTH = 18  # header, extensions, initiator, NIC0, target0, NIC1, target1
MAX_STRUCTURES = 65  # the initiator and 32 NIC/target pairs: far beyond any firmware, and bounds the work


class IbftFlags(enum.IntFlag):  # stdlib: `|` of two flags must give a flag (initiator.codes has no Flag)
    """Structure flags. Some firmware sets only BOOT_SELECTED, so either bit marks a structure in use."""

    VALID = 1
    BOOT_SELECTED = 2


class Origin(IntCode):
    """Where a NIC's address came from (the prefix-origin values the spec borrows from Windows)."""

    OTHER = 0
    MANUAL = 1
    WELL_KNOWN = 2
    DHCP = 3
    ROUTER_ADVERTISEMENT = 4
    UNCHANGED = 15


class ChapType(IntCode):
    NONE = 0
    CHAP = 1
    MUTUAL = 2

    @property
    def label(self) -> str:
        return {ChapType.NONE: "none", ChapType.CHAP: "chap", ChapType.MUTUAL: "mutual"}[self]


def _in_use(flags: IbftFlags) -> bool:
    return bool(flags & (IbftFlags.VALID | IbftFlags.BOOT_SELECTED))


@record
class IbftInitiator:
    index: int
    flags: IbftFlags
    name: str | None
    isns_server: IPAddress | None = None
    slp_server: IPAddress | None = None
    primary_radius: IPAddress | None = None
    secondary_radius: IPAddress | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "flags": int(self.flags)}


@record
class IbftNic:
    index: int
    flags: IbftFlags
    ip: IPAddress | None
    prefix: int | None
    origin: int
    gateway: IPAddress | None
    dns: tuple[IPAddress, ...]
    dhcp_server: IPAddress | None
    vlan: int
    mac: str
    pci_bdf: str | None
    hostname: str | None

    @property
    def in_use(self) -> bool:
        return _in_use(self.flags)

    @property
    def origin_kind(self) -> Origin | None:
        try:
            return Origin(self.origin)
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "flags": int(self.flags),
            "ip": _text(self.ip),
            "prefix": self.prefix,
            "origin": self.origin,
            "gateway": _text(self.gateway),
            "dns": [str(d) for d in self.dns],
            "dhcp_server": _text(self.dhcp_server),
            "vlan": self.vlan,
            "mac": self.mac,
            "pci_bdf": self.pci_bdf,
            "hostname": self.hostname,
        }


@record
class IbftTarget:
    index: int
    flags: IbftFlags
    ip: IPAddress | None
    port: int
    lun: int
    name: str | None
    nic_index: int
    chap_type: ChapType
    chap_name: str | None = None
    chap_secret: Secret | None = None
    reverse_chap_name: str | None = None
    reverse_chap_secret: Secret | None = None
    lun_bytes: bytes = bytes(8)

    @property
    def in_use(self) -> bool:
        return _in_use(self.flags)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "index": self.index,
            "flags": int(self.flags),
            "ip": _text(self.ip),
            "port": self.port,
            "lun": self.lun,
            "name": self.name,
            "nic_index": self.nic_index,
            "chap_type": self.chap_type.label,
            "chap_name": self.chap_name,
            "chap_secret": _secret(self.chap_secret, show_secrets),
            "reverse_chap_name": self.reverse_chap_name,
            "reverse_chap_secret": _secret(self.reverse_chap_secret, show_secrets),
        }


@record
class Ibft:
    source: str
    oem_id: str
    oem_table_id: str
    initiator: IbftInitiator | None
    nics: tuple[IbftNic, ...] = ()
    targets: tuple[IbftTarget, ...] = ()
    revision: int = 1
    warnings: tuple[str, ...] = ()  # what is inconsistent but not fatal, each naming its field; never a secret

    def nic(self, index: int) -> IbftNic | None:
        return next((n for n in self.nics if n.index == index), None)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "source": self.source,
            "oem_id": self.oem_id,
            "oem_table_id": self.oem_table_id,
            "initiator": None if self.initiator is None else self.initiator.to_json(),
            "nics": [n.to_json() for n in self.nics],
            "targets": [t.to_json(show_secrets) for t in self.targets],
            "warnings": list(self.warnings),
        }


def _text(value: object | None) -> str | None:
    return None if value is None else str(value)


def _secret(value: Secret | None, show: bool) -> str | None:
    if value is None:
        return None
    return value.reveal() if show else REDACTED


# ---- field decoders (shared with the sysfs reader) -------------------------------------------------------------


def address_from_bytes(raw: bytes) -> IPAddress | None:
    """16 bytes to an address in its natural family; zero (either way of writing it) is absent."""
    v6 = ipaddress.IPv6Address(raw)
    mapped = v6.ipv4_mapped
    if mapped is not None:
        return None if int(mapped) == 0 else mapped
    return None if int(v6) == 0 else v6


def lun_from_bytes(raw: bytes) -> int:
    """An 8-byte SAM LUN as Linux numbers it (scsilun_to_int): peripheral LUN n in byte 1 is n."""
    value = 0
    for i in range(0, 8, 2):
        value |= ((raw[i] << 8) | raw[i + 1]) << (i * 8)
    return value


def lun_to_bytes(lun: int) -> bytes:
    """The inverse of `lun_from_bytes` (used by the tests' encoder and by the sysfs reader's checks)."""
    out = bytearray(8)
    for i in range(0, 8, 2):
        level = (lun >> (i * 8)) & 0xFFFF
        out[i] = level >> 8
        out[i + 1] = level & 0xFF
    return bytes(out)


def format_mac(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def format_pci_bdf(value: int) -> str | None:
    """Bus (8 bits), device (5) and function (3) as lspci writes them; 0 (the host bridge) means not given."""
    if value == 0:
        return None
    return f"{value >> 8:02x}:{(value >> 3) & 0x1F:02x}.{value & 0x7}"


def is_control(char: str) -> bool:
    """C0 (ESC included), DEL and C1: never legitimate in an iBFT string, and unsafe on a terminal."""
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def first_control(text: str) -> int | None:
    """The position of the first control character in `text`, or None."""
    return next((i for i, c in enumerate(text) if is_control(c)), None)


def check_prefix(field: str, ip: IPAddress | None, prefix: int) -> int | None:
    if ip is None:
        return None
    limit = 32 if ip.version == 4 else 128
    if prefix > limit:
        raise IbftError(field, prefix, f"prefix longer than {limit} bits for {ip}")
    return prefix


# ---- consistency (shared with the sysfs reader) ----------------------------------------------------------------

FieldName = Callable[[str, str], str]


def _dotted(label: str, attribute: str) -> str:
    return f"{label}.{attribute}"


def consistency_warnings(
    nics: Sequence[tuple[str, IbftNic]], targets: Sequence[tuple[str, IbftTarget]], field: FieldName = _dotted
) -> list[str]:
    """What a table says twice or points at nothing, among the structures in use. Names fields, quotes no string.

    `nics` and `targets` pair each structure with its label ("nic0", or a sysfs directory); `field(label,
    attribute)` names one of its fields the way the source does.
    """
    out: list[str] = []
    nics_in_use = [(label, n) for label, n in nics if n.in_use]
    first_nic: dict[int, str] = {}
    for label, nic in nics_in_use:
        if nic.index in first_nic:
            out.append(
                f"{field(label, 'index')}: {nic.index}, the same as {first_nic[nic.index]}'s; "
                f"a target's NIC index {nic.index} means {first_nic[nic.index]}"
            )
        else:
            first_nic[nic.index] = label
    unused = {n.index for _, n in nics if not n.in_use} - set(first_nic)
    seen_target: dict[tuple[object, ...], str] = {}
    seen_index: dict[int, str] = {}
    for label, target in targets:
        if not target.in_use:
            continue
        if target.nic_index not in first_nic:
            if target.nic_index in unused:
                why = "a NIC not marked valid or boot-selected"
            elif first_nic:
                why = f"no NIC in the table (its NIC indexes: {', '.join(str(i) for i in sorted(first_nic))})"
            else:
                why = "no NIC: the table has none in use"
            out.append(f"{field(label, 'nic_index')}: {target.nic_index} names {why}")
        key = (target.ip, target.port, target.name, target.lun)
        if key in seen_target:
            out.append(f"{label}: the same target (name, address, port and LUN) as {seen_target[key]}")
        else:
            seen_target[key] = label
        if target.index in seen_index:
            out.append(f"{field(label, 'index')}: {target.index}, the same as {seen_index[target.index]}'s")
        else:
            seen_index[target.index] = label
    return out


# ---- the parser ------------------------------------------------------------------------------------------------


@record
class _Extent:
    """Where a secret's bytes are, as its (length, offset) pair says. Errors give its offset, never its length."""

    field: str
    offset: int
    length: int

    def overlaps(self, offset: int, length: int) -> bool:
        return offset < self.offset + self.length and self.offset < offset + length


class _Table:
    """The table's bytes with bounds-checked readers; every error names the field it was reading."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.secrets: tuple[_Extent, ...] = ()

    def need(self, field: str, offset: int, length: int) -> None:
        if offset < 0 or offset + length > len(self.data):
            raise IbftError(
                field, offset, f"{length} bytes at this offset run past the table's end ({len(self.data)} bytes)"
            )

    def u8(self, field: str, offset: int) -> int:
        self.need(field, offset, 1)
        return self.data[offset]

    def u16(self, field: str, offset: int) -> int:
        self.need(field, offset, 2)
        return int(struct.unpack_from("<H", self.data, offset)[0])

    def raw(self, field: str, offset: int, length: int) -> bytes:
        self.need(field, offset, length)
        return self.data[offset : offset + length]

    def address(self, field: str, offset: int) -> IPAddress | None:
        return address_from_bytes(self.raw(field, offset, 16))

    def string(self, field: str, offset: int, secret: bool = False) -> str | None:
        """The (length u16, offset u16) pair at `offset`, followed.

        Errors give the field, offset, length and the bad byte's position, never the bytes: a wrong length can
        run into the next string, and that is often a secret. A non-secret string over a secret is refused.
        """
        length = self.u16(f"{field}_length", offset)
        where = self.u16(f"{field}_offset", offset + 2)
        if length == 0:
            return None
        if where < HEADER_LENGTH:
            raise IbftError(f"{field}_offset", where, "string points into the table header")
        raw = self.raw(f"{field}_offset", where, length)
        # a secret's length, and which of its bytes is bad, are facts about the secret: left out
        span = f"the string at offset {where:#x}" if secret else f"the {length} bytes at offset {where:#x}"
        holds, is_ = ("holds", "is") if secret else ("hold", "are")
        if not secret:
            for extent in self.secrets:
                if extent.overlaps(where, length):
                    raise IbftError(
                        field,
                        None,
                        f"{span} overlap {extent.field} (at {extent.offset:#x}); "
                        f"check {field}_length and {field}_offset",
                    )
        raw = raw.rstrip(b"\x00")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            where_bad = "" if secret else f" (byte {exc.start})"
            raise IbftError(field, None, f"{span} {is_} not valid UTF-8{where_bad}") from None
        bad = first_control(text)
        if bad is not None:
            which = "" if secret else f" ({ord(text[bad]):#04x} at byte {len(text[:bad].encode())})"
            raise IbftError(field, None, f"{span} {holds} a control character{which}")
        return text or None


def _structure_header(table: _Table, name: str, offset: int, kind: StructureId) -> tuple[int, IbftFlags]:
    length = table.u16(f"{name}.length", offset + 2)
    if length != STRUCTURE_LENGTH[kind]:
        raise IbftError(
            f"{name}.length", length, f"the {kind.name.lower()} structure is {STRUCTURE_LENGTH[kind]} bytes"
        )
    table.need(f"{name}.length", offset, length)
    return table.u8(f"{name}.index", offset + 4), IbftFlags(table.u8(f"{name}.flags", offset + 5))


def _initiator(table: _Table, offset: int) -> IbftInitiator:
    index, flags = _structure_header(table, "initiator", offset, StructureId.INITIATOR)
    return IbftInitiator(
        index=index,
        flags=flags,
        name=table.string("initiator.name", offset + 70),
        isns_server=table.address("initiator.isns_server", offset + 6),
        slp_server=table.address("initiator.slp_server", offset + 22),
        primary_radius=table.address("initiator.primary_radius", offset + 38),
        secondary_radius=table.address("initiator.secondary_radius", offset + 54),
    )


def _nic(table: _Table, offset: int, slot: int) -> IbftNic:
    name = f"nic{slot}"
    index, flags = _structure_header(table, name, offset, StructureId.NIC)
    ip = table.address(f"{name}.ip", offset + 6)
    dns = tuple(
        a
        for a in (
            table.address(f"{name}.primary_dns", offset + 40),
            table.address(f"{name}.secondary_dns", offset + 56),
        )
        if a is not None
    )
    return IbftNic(
        index=index,
        flags=flags,
        ip=ip,
        prefix=check_prefix(f"{name}.prefix", ip, table.u8(f"{name}.prefix", offset + 22)),
        origin=table.u8(f"{name}.origin", offset + 23),
        gateway=table.address(f"{name}.gateway", offset + 24),
        dns=dns,
        dhcp_server=table.address(f"{name}.dhcp_server", offset + 72),
        vlan=table.u16(f"{name}.vlan", offset + 88),
        mac=format_mac(table.raw(f"{name}.mac", offset + 90, 6)),
        pci_bdf=format_pci_bdf(table.u16(f"{name}.pci_bdf", offset + 96)),
        hostname=table.string(f"{name}.hostname", offset + 98),
    )


def _secret_string(table: _Table, field: str, offset: int) -> Secret | None:
    text = table.string(field, offset, secret=True)
    return None if text is None else Secret(text)


def _target(table: _Table, offset: int, slot: int) -> IbftTarget:
    name = f"target{slot}"
    index, flags = _structure_header(table, name, offset, StructureId.TARGET)
    chap_raw = table.u8(f"{name}.chap_type", offset + 32)
    try:
        chap_type = ChapType(chap_raw)
    except ValueError:
        raise IbftError(f"{name}.chap_type", chap_raw, "must be 0 (none), 1 (CHAP) or 2 (mutual CHAP)") from None
    lun_raw = table.raw(f"{name}.lun", offset + 24, 8)
    return IbftTarget(
        index=index,
        flags=flags,
        ip=table.address(f"{name}.ip", offset + 6),
        port=table.u16(f"{name}.port", offset + 22),
        lun=lun_from_bytes(lun_raw),
        lun_bytes=lun_raw,
        chap_type=chap_type,
        nic_index=table.u8(f"{name}.nic_index", offset + 33),
        name=table.string(f"{name}.name", offset + 34),
        chap_name=table.string(f"{name}.chap_name", offset + 38),
        chap_secret=_secret_string(table, f"{name}.chap_secret", offset + 42),
        reverse_chap_name=table.string(f"{name}.reverse_chap_name", offset + 46),
        reverse_chap_secret=_secret_string(table, f"{name}.reverse_chap_secret", offset + 50),
    )


_KIND_NAMES = {StructureId.INITIATOR: "an initiator", StructureId.NIC: "a NIC", StructureId.TARGET: "a target"}
_SECRET_PAIRS = (("chap_secret", 42), ("reverse_chap_secret", 50))


def _slot_kind(slot: int) -> StructureId:
    """The control structure lists the initiator, then NIC0, target0, NIC1, target1, ..."""
    if slot == 0:
        return StructureId.INITIATOR
    return StructureId.NIC if slot % 2 else StructureId.TARGET


def _secret_extents(table: _Table, target_offsets: list[int]) -> tuple[_Extent, ...]:
    """Every target's secrets, found before any string is read so no string can print one. Best effort: a pair
    that is out of bounds is skipped here and reported when its target is parsed."""
    out = []
    for n, offset in enumerate(target_offsets):
        for name, at in _SECRET_PAIRS:
            if offset + at + 4 > len(table.data):
                continue
            length, where = struct.unpack_from("<HH", table.data, offset + at)
            if length and where >= HEADER_LENGTH:
                out.append(_Extent(f"target{n}.{name}", where, length))
    return tuple(out)


def _ascii_field(table: _Table, field: str, offset: int, length: int) -> str:
    raw = table.raw(field, offset, length).rstrip(b"\x00 ")
    if any(b < 0x20 or b > 0x7E for b in raw):
        raise IbftError(field, raw, "not printable ASCII")
    return raw.decode("ascii")


def parse_ibft(data: bytes, source: str = "") -> Ibft:
    """Parse a raw table (trailing bytes past its length field are ignored). Raises IbftError naming the field."""
    if len(data) < HEADER_LENGTH:
        raise IbftError("header", len(data), f"a table needs at least its {HEADER_LENGTH}-byte header")
    signature = bytes(data[:4])
    if signature not in SIGNATURES:
        raise IbftError("signature", signature, "not an iBFT (expected b'iBFT')")
    length = int(struct.unpack_from("<I", data, 4)[0])
    if length < HEADER_LENGTH + CONTROL_MIN_LENGTH:
        raise IbftError("length", length, f"shorter than the header and control structure ({HEADER_LENGTH + 18})")
    if length > len(data):
        raise IbftError("length", length, f"the table says it is longer than the {len(data)} bytes available")
    if length > MAX_TABLE_LENGTH:
        raise IbftError("length", length, f"larger than {MAX_TABLE_LENGTH} bytes")
    table = _Table(bytes(data[:length]))
    if sum(table.data) % 256:
        raise IbftError("checksum", table.data[9], f"bytes sum to {sum(table.data) % 256:#04x} mod 256, not 0")
    oem_id = _ascii_field(table, "oem_id", 10, 6)
    oem_table_id = _ascii_field(table, "oem_table_id", 16, 8)

    control = HEADER_LENGTH
    if table.u8("control.id", control) != StructureId.CONTROL:
        raise IbftError("control.id", table.data[control], "the structure after the header must be the control (1)")
    control_length = table.u16("control.length", control + 2)
    if control_length < CONTROL_MIN_LENGTH or control_length % 2:
        raise IbftError("control.length", control_length, f"must be even and at least {CONTROL_MIN_LENGTH}")
    table.need("control.length", control, control_length)
    offsets = [table.u16(f"control.offset{i}", control + 8 + 2 * i) for i in range((control_length - 8) // 2)]

    used = sum(1 for o in offsets if o)
    if used > MAX_STRUCTURES:
        raise IbftError("control.length", control_length, f"{used} structures listed, at most {MAX_STRUCTURES}")
    listed: list[tuple[int, str, int, int]] = []  # (slot, its field, offset, structure id)
    for slot, offset in enumerate(offsets):
        if offset == 0:
            continue
        field = "control.initiator_offset" if slot == 0 else f"control.offset{slot}"
        if offset < control + control_length:
            raise IbftError(field, offset, "points into the header or the control structure")
        table.need(field, offset, 6)  # the common structure header
        kind_raw = table.u8(field, offset)
        if kind_raw not in (StructureId.INITIATOR, StructureId.NIC, StructureId.TARGET, StructureId.EXTENSIONS):
            raise IbftError(f"{field} -> id", kind_raw, "expected an initiator (2), NIC (3) or target (4)")
        listed.append((slot, field, offset, kind_raw))
    table.secrets = _secret_extents(table, [offset for _, _, offset, kind in listed if kind == StructureId.TARGET])

    warnings: list[str] = []
    initiator: IbftInitiator | None = None
    initiator_field = ""
    nics: list[IbftNic] = []
    targets: list[IbftTarget] = []
    for slot, field, offset, kind in listed:
        if kind == StructureId.EXTENSIONS:
            continue
        expected = _slot_kind(slot)
        if kind == StructureId.INITIATOR and initiator is not None:
            warnings.append(f"{field}: a second initiator structure (the first is at {initiator_field}); ignored")
            continue
        if kind != expected:
            warnings.append(
                f"{field}: points to {_KIND_NAMES[kind]} structure in a slot meant for {_KIND_NAMES[expected]}; "
                f"read as {_KIND_NAMES[kind]}"
            )
        if kind == StructureId.INITIATOR:
            initiator, initiator_field = _initiator(table, offset), field
        elif kind == StructureId.NIC:
            nics.append(_nic(table, offset, len(nics)))
        else:
            targets.append(_target(table, offset, len(targets)))
    warnings += consistency_warnings(
        [(f"nic{i}", n) for i, n in enumerate(nics)], [(f"target{i}", t) for i, t in enumerate(targets)]
    )
    return Ibft(
        source=source,
        oem_id=oem_id,
        oem_table_id=oem_table_id,
        initiator=initiator,
        nics=tuple(nics),
        targets=tuple(targets),
        revision=table.data[8],
        warnings=tuple(warnings),
    )
