"""A test-only iBFT writer: the parser's values back to bytes, for variants iPXE does not write (IPv6, VLAN,
several NICs and targets, mutual CHAP, host names). Also used to hand QEMU a table with `-acpitable`."""

from __future__ import annotations

import ipaddress
import struct

from initiator.ibft import IbftInitiator, IbftNic, IbftTarget, lun_to_bytes

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | None


def address_bytes(address: Address) -> bytes:
    if address is None:
        return bytes(16)
    if address.version == 4:
        return bytes(10) + b"\xff\xff" + address.packed
    return address.packed


def pci_bdf_value(text: str | None) -> int:
    if text is None:
        return 0
    bus, rest = text.split(":")
    dev, fn = rest.split(".")
    return (int(bus, 16) << 8) | (int(dev, 16) << 3) | int(fn, 16)


class _Heap:
    """Strings after the structures; returns (length, offset) pairs."""

    def __init__(self, start: int) -> None:
        self.start = start
        self.data = bytearray()

    def put(self, text: str | None) -> tuple[int, int]:
        if text is None:
            return 0, 0
        raw = text.encode()
        offset = self.start + len(self.data)
        self.data += raw + b"\x00"
        return len(raw), offset


def _secret_text(secret: object) -> str | None:
    return None if secret is None else secret.reveal()  # type: ignore[attr-defined]


def encode_ibft(
    initiator: IbftInitiator | None,
    nics: tuple[IbftNic, ...] | list[IbftNic] = (),
    targets: tuple[IbftTarget, ...] | list[IbftTarget] = (),
    *,
    oem_id: str = "PYISCS",
    oem_table_id: str = "TESTS",
    signature: bytes = b"iBFT",
    revision: int = 1,
) -> bytes:
    """Header, control (with as many NIC/target pointer pairs as needed, at least two), structures, strings."""
    pairs = max(2, len(nics), len(targets))
    control_length = 8 + 2 * (1 + 2 * pairs)
    offset = 48 + control_length
    offset += (-offset) % 8
    init_off = offset if initiator is not None else 0
    offset += 80 if initiator is not None else 0
    nic_offs = []
    for _ in nics:
        nic_offs.append(offset)
        offset += 104
    tgt_offs = []
    for _ in targets:
        tgt_offs.append(offset)
        offset += 56
    heap = _Heap(offset)

    body = bytearray(offset)
    pointers = [init_off]
    for i in range(pairs):
        pointers.append(nic_offs[i] if i < len(nics) else 0)
        pointers.append(tgt_offs[i] if i < len(targets) else 0)
    body[48:50] = bytes([1, 1])
    struct.pack_into("<HBBH", body, 50, control_length, 0, 0, 0)
    struct.pack_into(f"<{len(pointers)}H", body, 56, *pointers)

    if initiator is not None:
        o = init_off
        struct.pack_into("<BBHBB", body, o, 2, 1, 74, initiator.index, int(initiator.flags))
        for i, a in enumerate(
            (initiator.isns_server, initiator.slp_server, initiator.primary_radius, initiator.secondary_radius)
        ):
            body[o + 6 + 16 * i : o + 22 + 16 * i] = address_bytes(a)
        struct.pack_into("<HH", body, o + 70, *heap.put(initiator.name))
    for nic, o in zip(nics, nic_offs, strict=True):
        struct.pack_into("<BBHBB", body, o, 3, 1, 102, nic.index, int(nic.flags))
        body[o + 6 : o + 22] = address_bytes(nic.ip)
        body[o + 22] = nic.prefix or 0
        body[o + 23] = nic.origin
        body[o + 24 : o + 40] = address_bytes(nic.gateway)
        dns = [*nic.dns, None, None]
        body[o + 40 : o + 56] = address_bytes(dns[0])
        body[o + 56 : o + 72] = address_bytes(dns[1])
        body[o + 72 : o + 88] = address_bytes(nic.dhcp_server)
        struct.pack_into("<H", body, o + 88, nic.vlan)
        body[o + 90 : o + 96] = bytes.fromhex(nic.mac.replace(":", ""))
        struct.pack_into("<H", body, o + 96, pci_bdf_value(nic.pci_bdf))
        struct.pack_into("<HH", body, o + 98, *heap.put(nic.hostname))
    for target, o in zip(targets, tgt_offs, strict=True):
        struct.pack_into("<BBHBB", body, o, 4, 1, 54, target.index, int(target.flags))
        body[o + 6 : o + 22] = address_bytes(target.ip)
        struct.pack_into("<H", body, o + 22, target.port)
        body[o + 24 : o + 32] = lun_to_bytes(target.lun)
        body[o + 32] = int(target.chap_type)
        body[o + 33] = target.nic_index
        for i, text in enumerate(
            (
                target.name,
                target.chap_name,
                _secret_text(target.chap_secret),
                target.reverse_chap_name,
                _secret_text(target.reverse_chap_secret),
            )
        ):
            struct.pack_into("<HH", body, o + 34 + 4 * i, *heap.put(text))

    table = body + heap.data
    table += bytes((-len(table)) % 16)
    table[0:4] = signature
    struct.pack_into("<I", table, 4, len(table))
    table[8] = revision
    table[10:16] = oem_id.encode().ljust(6, b"\x00")[:6]
    table[16:24] = oem_table_id.encode().ljust(8, b"\x00")[:8]
    return fix_checksum(table)


def fix_checksum(table: bytes | bytearray) -> bytes:
    out = bytearray(table)
    out[9] = 0
    out[9] = (-sum(out)) % 256
    return bytes(out)


# ---- finding fields in an encoded (or captured) table, for tests that corrupt them ----------------------------

CONTROL = 48
STRING_PAIRS = {
    2: (("name", 70),),
    3: (("hostname", 98),),
    4: (("name", 34), ("chap_name", 38), ("chap_secret", 42), ("reverse_chap_name", 46), ("reverse_chap_secret", 50)),
}
SECRET_FIELDS = ("chap_secret", "reverse_chap_secret")


def control_slots(table: bytes) -> list[int]:
    """The control structure's offsets, slot by slot (0 = initiator, then NIC0, target0, NIC1, ...)."""
    length = struct.unpack_from("<H", table, CONTROL + 2)[0]
    return [struct.unpack_from("<H", table, CONTROL + 8 + 2 * i)[0] for i in range((length - 8) // 2)]


def string_pairs(table: bytes) -> dict[str, int]:
    """Every string's (length, offset) pair position, by the parser's field name ("target0.chap_secret")."""
    out: dict[str, int] = {}
    seen = {2: 0, 3: 0, 4: 0}
    for offset in control_slots(table):
        kind = table[offset] if offset else 0
        if kind not in STRING_PAIRS:
            continue
        label = {2: "initiator", 3: f"nic{seen[3]}", 4: f"target{seen[4]}"}[kind]
        seen[kind] += 1
        for name, at in STRING_PAIRS[kind]:
            out[f"{label}.{name}"] = offset + at
    return out


def secret_values(table: bytes) -> list[bytes]:
    """The bytes every secret pair points at (trailing NULs dropped)."""
    out = []
    for field, at in string_pairs(table).items():
        if field.endswith(SECRET_FIELDS):
            length, offset = struct.unpack_from("<HH", table, at)
            if length:
                out.append(table[offset : offset + length].rstrip(b"\x00"))
    return out


def with_marker_secrets(table: bytes, alphabet: str = "JKQVWXZ") -> bytes:
    """The same table with every secret's bytes replaced by letters of `alphabet` (same length, checksum fixed),
    so a test can look for them in any output without matching text that is there for other reasons."""
    out = bytearray(table)
    for field, at in string_pairs(table).items():
        if field.endswith(SECRET_FIELDS):
            length, offset = struct.unpack_from("<HH", table, at)
            text = table[offset : offset + length].rstrip(b"\x00")
            out[offset : offset + len(text)] = bytes(ord(alphabet[i % len(alphabet)]) for i in range(len(text)))
    return fix_checksum(out)


def set_slot(table: bytes, slot: int, offset: int) -> bytes:
    """Point control slot `slot` at `offset` (0 empties it), checksum fixed."""
    out = bytearray(table)
    struct.pack_into("<H", out, CONTROL + 8 + 2 * slot, offset)
    return fix_checksum(out)
