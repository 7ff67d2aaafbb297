"""CRC32C (Castagnoli), the iSCSI header and data digest (RFC 7143 section 13.1, test vectors in RFC 3720 B.4).

Pure Python and table-driven, because the initramfs carries no compiler and no extension modules. The
digest travels least-significant byte first: `digest_bytes` gives the four bytes as they appear on the wire.
"""

from __future__ import annotations

POLY_REFLECTED = 0x82F63B78  # 0x1EDC6F41 bit-reversed


def _make_tables() -> tuple[tuple[int, ...], ...]:
    """Four 256-entry tables for slicing-by-4: 4 bytes per step, about 3x faster than one byte per step."""
    t0 = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ POLY_REFLECTED if crc & 1 else crc >> 1
        t0.append(crc)
    tables = [t0]
    for _ in range(3):
        prev = tables[-1]
        tables.append([(prev[n] >> 8) ^ t0[prev[n] & 0xFF] for n in range(256)])
    return tuple(tuple(t) for t in tables)


_tables: tuple[tuple[int, ...], ...] = ()  # made on the first digest: a session without digests never pays for it


def _get_tables() -> tuple[tuple[int, ...], ...]:
    global _tables
    if not _tables:
        _tables = _make_tables()  # two threads at once both make the same tables; either result serves
    return _tables


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """The CRC32C of data; pass a previous result as `crc` to continue over several pieces."""
    t0, t1, t2, t3 = _tables or _get_tables()
    crc ^= 0xFFFFFFFF
    view = memoryview(data).cast("B")
    n = len(view)
    whole = n - n % 4
    if whole:
        for word in memoryview(bytes(view[:whole])).cast("I") if _LITTLE else _words(view[:whole]):
            crc ^= word
            crc = t3[crc & 0xFF] ^ t2[(crc >> 8) & 0xFF] ^ t1[(crc >> 16) & 0xFF] ^ t0[crc >> 24]
    for byte in view[whole:]:
        crc = t0[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _words(view: memoryview) -> list[int]:
    raw = bytes(view)
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]


_LITTLE = memoryview(b"\x01\x00\x00\x00").cast("I")[0] == 1


def digest_bytes(data: bytes | bytearray | memoryview) -> bytes:
    """The 4-byte digest as sent on the wire after a header or a padded data segment."""
    return crc32c(data).to_bytes(4, "little")
