"""Where an iBFT is read from: a raw table file, the `iscsi_ibft` sysfs directory, or a scan of low memory.

Thin readers around `initiator.ibft.parse_ibft`. Without a source, the contract's order is tried:
`/sys/firmware/acpi/tables/iBFT` (UEFI firmware; the whole table, nothing lost), then `/sys/firmware/ibft`
(the iscsi_ibft module; lossy: no OEM ids, LUN bytes printed unpadded), then `/dev/mem` (legacy BIOS, as iPXE in
QEMU writes it: a 16-byte-aligned signature in 0x80000-0xFFFFF, the VGA hole 0xA0000-0xBFFFF skipped).

The sysfs strings get the same checks as the table's (no control characters; a secret's bytes never in an
error), and the same consistency warnings.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from itertools import accumulate
from pathlib import Path

from initiator.errors import IbftError
from initiator.ibft import (
    CONTROL_MIN_LENGTH,
    HEADER_LENGTH,
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
    consistency_warnings,
    first_control,
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
MAX_PARSED_CANDIDATES = 256  # checksum-valid candidates fully parsed before giving up (each costs its length)


# ---- raw table file --------------------------------------------------------------------------------------------


def read_table_file(path: str) -> Ibft:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TABLE_LENGTH + 1)
    except OSError as exc:
        raise IbftError("ibft source", path, f"cannot read: {exc.strerror}") from None
    return parse_ibft(data, source=path)


# ---- /dev/mem ----------------------------------------------------------------------------------------------------


def memory_candidates(image: bytes, base: int = SCAN_START) -> list[tuple[int, int, bool]]:
    """Every plausible table in `image` (memory from `base`), in address order: (address, length, checksum ok).

    Plausible: a signature on a 16-byte boundary outside the VGA hole, and a length that covers the header and
    control structure and stays inside the window. The whole window is looked at, however many bogus signatures
    come first, and no byte is summed or copied twice: a candidate's checksum is the difference of two running
    sums over 16-byte blocks (taken once, when a first candidate turns up) plus its last few bytes, so the work
    is linear in the window's size.
    """
    first = (-base) % 16  # the first 16-byte-aligned address
    running: list[int] = []

    def checksum(pos: int, length: int) -> int:
        if not running:
            running.extend(accumulate((sum(image[i : i + 16]) for i in range(first, len(image), 16)), initial=0))
        block, whole = (pos - first) // 16, length // 16
        tail = sum(image[pos + 16 * whole : pos + length])
        return (running[block + whole] - running[block] + tail) % 256

    end = base + len(image)
    out = []
    for pos in range(first, len(image) - 8, 16):
        address = base + pos
        if VGA_HOLE[0] <= address < VGA_HOLE[1] or image[pos : pos + 4] not in SIGNATURES:
            continue
        length = int.from_bytes(image[pos + 4 : pos + 8], "little")
        if HEADER_LENGTH + CONTROL_MIN_LENGTH <= length <= min(end - address, MAX_SCANNED_LENGTH):
            out.append((address, length, checksum(pos, length) == 0))
    return out


def find_in_memory(image: bytes, base: int = SCAN_START, source: str = "") -> Ibft | None:
    """The first candidate with a valid checksum that parses; None when there is no candidate at all.

    When candidates exist but none is good, the error of the first checksum-valid one (else the first one's,
    a checksum error) is raised, so the user learns what is wrong with the table that is there. At most
    MAX_PARSED_CANDIDATES are parsed: only a crafted image has that many bogus tables with right checksums.
    """
    candidates = memory_candidates(image, base)
    first_error: IbftError | None = None
    good = [(address, length) for address, length, checksum_ok in candidates if checksum_ok]
    for address, length in good[:MAX_PARSED_CANDIDATES]:
        try:
            return parse_ibft(image[address - base : address - base + length], source=source)
        except IbftError as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    if candidates:
        address, length, _ = candidates[0]
        return parse_ibft(image[address - base : address - base + length], source=source)  # a checksum error
    return None


def scan_memory(path: str = DEV_MEM, start: int = SCAN_START, end: int = SCAN_END) -> Ibft | None:
    """Read the legacy window from `path` (/dev/mem, or a memory image in tests) once, and find the table in it."""
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
    return find_in_memory(bytes(image), start, source=path)


# ---- sysfs (iscsi_ibft) ----------------------------------------------------------------------------------------


def _read(directory: Path, name: str, secret: bool = False) -> str | None:
    """One attribute, without the kernel's newline. A secret's bytes never go into an error."""
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
    except UnicodeDecodeError as exc:
        raise IbftError(str(path), None, "not valid UTF-8" + ("" if secret else f" (byte {exc.start})")) from None
    text = text[:-1] if text.endswith("\n") else text
    return text or None


def _string(directory: Path, name: str, secret: bool = False) -> str | None:
    """A string attribute (a name, a host name, a secret): the table's rule, no control characters."""
    text = _read(directory, name, secret)
    bad = None if text is None else first_control(text)
    if text is not None and bad is not None:
        which = "" if secret else f" ({ord(text[bad]):#04x} at character {bad})"
        raise IbftError(str(directory / name), None, f"holds a control character{which}")
    return text


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
    text = _string(directory, name, secret=True)
    return None if text is None else Secret(text)


SYSFS_ATTRIBUTES = {"index": "index", "nic_index": "nic-assoc"}  # our field names -> the kernel's file names


def _sysfs_field(directory: str, attribute: str) -> str:
    return f"{directory}/{SYSFS_ATTRIBUTES.get(attribute, attribute)}"


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
            name=_string(init_dir, "initiator-name"),
            isns_server=_address(init_dir, "isns-server"),
            slp_server=_address(init_dir, "slp-server"),
            primary_radius=_address(init_dir, "pri-radius-server"),
            secondary_radius=_address(init_dir, "sec-radius-server"),
        )
    nics = []
    nic_dirs = _sorted_dirs(root, "ethernet")
    for d in nic_dirs:
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
                hostname=_string(d, "hostname"),
            )
        )
    targets = []
    target_dirs = _sorted_dirs(root, "target")
    for d in target_dirs:
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
                name=_string(d, "target-name"),
                nic_index=_int(d, "nic-assoc", 0, 255),
                chap_type=chap_type,
                chap_name=_string(d, "chap-name"),
                chap_secret=_secret(d, "chap-secret"),
                reverse_chap_name=_string(d, "rev-chap-name"),
                reverse_chap_secret=_secret(d, "rev-chap-name-secret"),
            )
        )
    header = root / "acpi_header"
    warnings = consistency_warnings(
        [(str(d), n) for d, n in zip(nic_dirs, nics, strict=True)],
        [(str(d), t) for d, t in zip(target_dirs, targets, strict=True)],
        _sysfs_field,
    )
    return Ibft(
        source=path,
        oem_id=(_string(header, "oem_id") or "").strip() if header.is_dir() else "",
        oem_table_id=(_string(header, "oem_table_id") or "").strip() if header.is_dir() else "",
        initiator=initiator,
        nics=tuple(nics),
        targets=tuple(targets),
        warnings=tuple(warnings),
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
