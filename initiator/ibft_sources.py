"""Where an iBFT is read from: a raw table file, the `iscsi_ibft` sysfs directory, or a scan of low memory.

Thin readers around `initiator.ibft.parse_ibft`. Without a source, the contract's order is tried:
`/sys/firmware/acpi/tables/iBFT` (UEFI firmware; the whole table, nothing lost), then `/sys/firmware/ibft`
(the iscsi_ibft module; lossy: no OEM ids, LUN bytes printed unpadded), then `/dev/mem` (legacy BIOS, as iPXE in
QEMU writes it: a 16-byte-aligned signature in 0x80000-0xFFFFF, the VGA hole 0xA0000-0xBFFFF skipped).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from pathlib import Path

from initiator.errors import IbftError
from initiator.ibft import (
    MAX_TABLE_LENGTH,
    SIGNATURES,
    ChapType,
    Ibft,
    IbftFlags,
    IbftInitiator,
    IbftNic,
    IbftTarget,
    IPAddress,
    check_prefix,
    lun_from_bytes,
    parse_ibft,
)
from initiator.secret import Secret

ACPI_TABLE = "/sys/firmware/acpi/tables/iBFT"
SYSFS_DIR = "/sys/firmware/ibft"
DEV_MEM = "/dev/mem"
SCAN_START = 0x80000
SCAN_END = 0x100000
VGA_HOLE = (0xA0000, 0xC0000)
MAX_SYSFS_FILE = 4096  # a sysfs attribute is at most one page
MAX_SCANNED_LENGTH = 0x10000  # a candidate claiming more is not taken (real tables are a few hundred bytes)
MAX_CANDIDATES = 64  # signatures whose checksum is tried: bounds the scan of a hostile memory image


# ---- raw table file --------------------------------------------------------------------------------------------


def read_table_file(path: str) -> Ibft:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TABLE_LENGTH + 1)
    except OSError as exc:
        raise IbftError("ibft source", path, f"cannot read: {exc.strerror}") from None
    return parse_ibft(data, source=path)


# ---- /dev/mem ----------------------------------------------------------------------------------------------------


def find_in_memory(image: bytes, base: int = SCAN_START) -> bytes | None:
    """The first table in `image` (memory from `base`) at a 16-byte-aligned address with a valid checksum.

    A signature whose length runs past the window or whose checksum is wrong is skipped, but the first such
    candidate is returned if nothing better turns up, so the parser can say what is wrong with it.
    """
    end = base + len(image)
    candidate: bytes | None = None
    tried = 0
    for signature in SIGNATURES:
        pos = image.find(signature)
        while pos != -1 and tried < MAX_CANDIDATES:
            address = base + pos
            if address % 16 == 0 and not VGA_HOLE[0] <= address < VGA_HOLE[1]:
                length = int.from_bytes(image[pos + 4 : pos + 8], "little") if pos + 8 <= len(image) else 0
                if 48 <= length <= min(end - address, MAX_SCANNED_LENGTH):
                    tried += 1
                    table = image[pos : pos + length]
                    if sum(table) % 256 == 0:
                        return table
                    candidate = candidate or table
            pos = image.find(signature, pos + 1)
    return candidate


def scan_memory(path: str = DEV_MEM, start: int = SCAN_START, end: int = SCAN_END) -> Ibft | None:
    """Read the legacy window from `path` (/dev/mem, or a memory image in tests) and parse the table found."""
    image = bytearray()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise IbftError("ibft source", path, f"cannot open: {exc.strerror}") from None
    try:
        for lo, hi in ((start, min(end, VGA_HOLE[0])), (max(start, VGA_HOLE[1]), end)):
            if lo >= hi:
                continue
            if lo > start + len(image):
                image += bytes(lo - start - len(image))  # the hole reads as zeros
            os.lseek(fd, lo, os.SEEK_SET)
            want = hi - lo
            while want > 0:
                chunk = os.read(fd, min(want, 65536))
                if not chunk:
                    break
                image += chunk
                want -= len(chunk)
    except OSError as exc:
        raise IbftError("ibft source", path, f"cannot read low memory: {exc.strerror}") from None
    finally:
        os.close(fd)
    table = find_in_memory(bytes(image), start)
    return None if table is None else parse_ibft(table, source=path)


# ---- sysfs (iscsi_ibft) ----------------------------------------------------------------------------------------


def _read(directory: Path, name: str) -> str | None:
    path = directory / name
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_SYSFS_FILE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IbftError(str(path), None, f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_SYSFS_FILE:
        raise IbftError(str(path), None, f"longer than {MAX_SYSFS_FILE} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise IbftError(str(path), raw[:64], "not valid UTF-8") from None
    text = text[:-1] if text.endswith("\n") else text
    return text or None


def _int(directory: Path, name: str, default: int | None = None, limit: int = 0xFFFF) -> int:
    text = _read(directory, name)
    if text is None:
        if default is None:
            raise IbftError(str(directory / name), None, "missing")
        return default
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise IbftError(str(directory / name), text, "not a decimal number") from None
    if not 0 <= value <= limit:
        raise IbftError(str(directory / name), value, f"out of range 0..{limit}")
    return value


def _address(directory: Path, name: str) -> IPAddress | None:
    text = _read(directory, name)
    if text is None:
        return None
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise IbftError(str(directory / name), text, "not an IP address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return None if int(address) == 0 else address


def parse_sysfs_lun(text: str, field: str = "lun") -> int:
    """The kernel prints each LUN byte with %x, unpadded: undo that for every LUN that is not ambiguous.

    Eight digits are eight bytes below 16; sixteen are eight padded bytes. Otherwise the common single-level
    forms are recovered: peripheral (first byte 0, printed "0") or flat (first byte 0x40-0x7f, two digits),
    then the second byte, then six zero bytes ("000000").
    """
    text = text.strip().lower()
    if not text or not re.fullmatch(r"[0-9a-f]+", text):
        raise IbftError(field, text, "not hexadecimal digits")
    if len(text) == 8:
        return lun_from_bytes(bytes(int(c, 16) for c in text))
    if len(text) == 16:
        return lun_from_bytes(bytes.fromhex(text))
    if text.endswith("000000"):
        head = text[:-6]
        first_len = 1 if head.startswith("0") else 2
        first, second = head[:first_len], head[first_len:]
        if 1 <= len(second) <= 2 and (first_len == 1 or 0x40 <= int(first, 16) <= 0x7F):
            return lun_from_bytes(bytes([int(first, 16), int(second, 16)]) + bytes(6))
    raise IbftError(field, text, "ambiguous LUN as the kernel prints it; read the ACPI table or /dev/mem instead")


def _mac(directory: Path) -> str:
    text = _read(directory, "mac") or ""
    if not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", text.strip()):
        raise IbftError(str(directory / "mac"), text, "not a MAC address aa:bb:cc:dd:ee:ff")
    return text.strip().lower()


def _prefix(directory: Path, ip: IPAddress | None) -> int | None:
    if ip is None:
        return None
    if (directory / "prefix-len").exists():
        return check_prefix(str(directory / "prefix-len"), ip, _int(directory, "prefix-len", limit=255))
    mask = _read(directory, "subnet-mask")
    if mask is None:
        return None
    try:
        return ipaddress.IPv4Network(f"0.0.0.0/{mask.strip()}").prefixlen
    except ValueError:
        raise IbftError(str(directory / "subnet-mask"), mask, "not a contiguous netmask") from None


def _sorted_dirs(root: Path, prefix: str) -> list[Path]:
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(rf"{prefix}\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[len(prefix) :]))


def _secret(directory: Path, name: str) -> Secret | None:
    text = _read(directory, name)
    return None if text is None else Secret(text)


def read_sysfs(path: str = SYSFS_DIR) -> Ibft:
    """The iscsi_ibft module's view: one directory per structure, one file per present field."""
    root = Path(path)
    if not root.is_dir():
        raise IbftError("ibft source", path, "not a directory")
    initiator = None
    init_dir = root / "initiator"
    if init_dir.is_dir():
        initiator = IbftInitiator(
            index=_int(init_dir, "index", 0, 255),
            flags=IbftFlags(_int(init_dir, "flags", 0, 255)),
            name=_read(init_dir, "initiator-name"),
            isns_server=_address(init_dir, "isns-server"),
            slp_server=_address(init_dir, "slp-server"),
            primary_radius=_address(init_dir, "pri-radius-server"),
            secondary_radius=_address(init_dir, "sec-radius-server"),
        )
    nics = []
    for d in _sorted_dirs(root, "ethernet"):
        ip = _address(d, "ip-addr")
        nics.append(
            IbftNic(
                index=_int(d, "index", int(d.name[len("ethernet") :]), 255),
                flags=IbftFlags(_int(d, "flags", 0, 255)),
                ip=ip,
                prefix=_prefix(d, ip),
                origin=_int(d, "origin", 0, 255),
                gateway=_address(d, "gateway"),
                dns=tuple(a for a in (_address(d, "primary-dns"), _address(d, "secondary-dns")) if a is not None),
                dhcp_server=_address(d, "dhcp"),
                vlan=_int(d, "vlan", 0),
                mac=_mac(d),
                pci_bdf=None,
                hostname=_read(d, "hostname"),
            )
        )
    targets = []
    for d in _sorted_dirs(root, "target"):
        chap_raw = _int(d, "chap-type", 0, 255)
        try:
            chap_type = ChapType(chap_raw)
        except ValueError:
            raise IbftError(str(d / "chap-type"), chap_raw, "must be 0, 1 or 2") from None
        lun_text = _read(d, "lun") or "00000000"
        targets.append(
            IbftTarget(
                index=_int(d, "index", int(d.name[len("target") :]), 255),
                flags=IbftFlags(_int(d, "flags", 0, 255)),
                ip=_address(d, "ip-addr"),
                port=_int(d, "port", 3260),
                lun=parse_sysfs_lun(lun_text, str(d / "lun")),
                name=_read(d, "target-name"),
                nic_index=_int(d, "nic-assoc", 0, 255),
                chap_type=chap_type,
                chap_name=_read(d, "chap-name"),
                chap_secret=_secret(d, "chap-secret"),
                reverse_chap_name=_read(d, "rev-chap-name"),
                reverse_chap_secret=_secret(d, "rev-chap-name-secret"),
            )
        )
    header = root / "acpi_header"
    return Ibft(
        source=path,
        oem_id=(_read(header, "oem_id") or "").strip() if header.is_dir() else "",
        oem_table_id=(_read(header, "oem_table_id") or "").strip() if header.is_dir() else "",
        initiator=initiator,
        nics=tuple(nics),
        targets=tuple(targets),
    )


# ---- choosing -------------------------------------------------------------------------------------------------


def read_source(source: str) -> Ibft | None:
    """One named source: a directory is sysfs, a character device is memory to scan, anything else a table."""
    try:
        mode = os.stat(source).st_mode
    except OSError as exc:
        raise IbftError("ibft source", source, f"cannot open: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        return read_sysfs(source)
    if stat.S_ISCHR(mode) or source == DEV_MEM:
        return scan_memory(source)
    return read_table_file(source)


def find_ibft(acpi_path: str = ACPI_TABLE, sysfs_path: str = SYSFS_DIR, mem_path: str = DEV_MEM) -> Ibft | None:
    """The firmware's table, trying the contract's order; None when this machine has none."""
    if os.path.exists(acpi_path) and os.access(acpi_path, os.R_OK):
        return read_table_file(acpi_path)
    if os.path.isdir(sysfs_path) and any(Path(sysfs_path).iterdir()):
        return read_sysfs(sysfs_path)
    if os.path.exists(mem_path) and os.access(mem_path, os.R_OK):
        return scan_memory(mem_path)
    return None


def load_ibft(
    source: str | None = None, *, acpi_path: str = ACPI_TABLE, sysfs_path: str = SYSFS_DIR, mem_path: str = DEV_MEM
) -> Ibft:
    """The table from `source`, or found in the contract's order; IbftError (exit 2) when there is none."""
    if source is not None:
        found = read_source(source)
        if found is None:
            raise IbftError("ibft source", source, f"no iBFT signature in {SCAN_START:#x}-{SCAN_END - 1:#x}")
        return found
    found = find_ibft(acpi_path, sysfs_path, mem_path)
    if found is None:
        raise IbftError("ibft", None, f"no iBFT found (tried {acpi_path}, {sysfs_path}, {mem_path})")
    return found
