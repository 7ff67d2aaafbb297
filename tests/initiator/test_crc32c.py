from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.crc32c import crc32c, digest_bytes

# RFC 3720 appendix B.4 (kept in RFC 7143's references): the digest bytes as they appear on the wire.
READ_COMMAND_PDU = bytes.fromhex(
    "01c00000" "00000000" "00000000" "00000000" "14000000" "00000400"
    "00000014" "00000018" "28000000" "00000000" "02000000" "00000000"
)  # fmt: skip


@pytest.mark.parametrize(
    ("data", "wire"),
    [
        (bytes(32), "aa36918a"),
        (b"\xff" * 32, "43aba862"),
        (bytes(range(32)), "4e79dd46"),
        (bytes(range(31, -1, -1)), "5cdb3f11"),
        (READ_COMMAND_PDU, "563a96d9"),
    ],
)
def test_rfc3720_vectors(data: bytes, wire: str) -> None:
    assert digest_bytes(data).hex() == wire
    assert crc32c(data) == int.from_bytes(bytes.fromhex(wire), "little")


@pytest.mark.parametrize(("data", "value"), [(b"", 0), (b"123456789", 0xE3069283), (b"a", 0xC1D04330)])
def test_known_values(data: bytes, value: int) -> None:
    assert crc32c(data) == value


def _bitwise(data: bytes) -> int:
    """An independent bit-at-a-time reference with the Castagnoli polynomial."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 200))
def test_matches_bitwise_reference_and_continues(data: bytes, cut: int) -> None:
    assert crc32c(data) == _bitwise(data)
    cut = min(cut, len(data))
    assert crc32c(data[cut:], crc32c(data[:cut])) == crc32c(data)


def test_differs_from_plain_crc32() -> None:
    assert crc32c(b"123456789") != zlib.crc32(b"123456789")


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_accepts_buffers(kind: type) -> None:
    assert crc32c(kind(b"123456789")) == 0xE3069283
