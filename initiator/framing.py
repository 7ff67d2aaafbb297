"""PDUs on a byte stream: cut a TCP stream into whole PDUs, and frame a PDU (with digests) for sending.

`PduReader` is fed bytes and hands out decoded PDUs. It checks a PDU's declared lengths as soon as the BHS is
in, so a hostile DataSegmentLength is refused before a byte of it is buffered, and it says how many bytes
the current PDU still needs (`bytes_needed()`), so a driver can read exactly one PDU and never past it: the
socket may be handed to the kernel right after the last Login Response, with nothing left unread.

Digests (CRC32C) are off during login and switched on with `set_digests` once the login negotiated them.
Any error poisons the reader: the stream position is lost, and the connection must be dropped.

Public API
    PduReader(*, max_data_segment=8192, header_digest=False, data_digest=False, from_target=True)
        .feed(data), .next_pdu() -> Pdu | None, .pdus() -> Iterator[Pdu], .bytes_needed() -> int,
        .set_digests(header=, data=), .max_data_segment (settable), .buffered -> int, .trailing_data -> bytes
    frame(pdu, header_digest=False, data_digest=False, max_data_segment=None) -> bytes
    framed_length(info: BhsInfo, header_digest, data_digest) -> int
    DigestError (a RemoteProtocolError)
"""

from __future__ import annotations

from initiator.crc32c import crc32c, digest_bytes
from initiator.errors import LocalProtocolError, RemoteProtocolError
from initiator.pdu import BHS_LEN, BhsInfo, Pdu, decode_pdu, pad_len, parse_bhs

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator

DIGEST_LEN = 4
LOGIN_MAX_DATA_SEGMENT = 8192  # RFC 7143 6.2: login and text PDUs before negotiation stay within 8192 bytes


class DigestError(RemoteProtocolError):
    """A header or data digest did not match: the bytes were damaged on the way (or the peer is broken)."""


def framed_length(info: BhsInfo, header_digest: bool, data_digest: bool) -> int:
    """Bytes of the whole PDU on the wire: BHS, AHS, header digest, padded data and its digest."""
    total = BHS_LEN + info.total_ahs_len + (DIGEST_LEN if header_digest else 0)
    if info.data_segment_len:
        total += info.data_segment_len + pad_len(info.data_segment_len) + (DIGEST_LEN if data_digest else 0)
    return total


def frame(
    pdu: Pdu, header_digest: bool = False, data_digest: bool = False, max_data_segment: int | None = None
) -> bytes:
    """The bytes to send for one PDU. `max_data_segment` is the peer's MaxRecvDataSegmentLength, if known."""
    if max_data_segment is not None and len(pdu.data) > max_data_segment:
        raise LocalProtocolError(
            f"{pdu.kind}: data segment of {len(pdu.data)} bytes exceeds the peer's "
            f"MaxRecvDataSegmentLength {max_data_segment}"
        )
    header = pdu.encode_header()
    parts = [header]
    if header_digest:
        parts.append(digest_bytes(header))
    if pdu.data:
        body = pdu.data + bytes(pad_len(len(pdu.data)))
        parts.append(body)
        if data_digest:
            parts.append(digest_bytes(body))
    return b"".join(parts)


class PduReader:
    """Sans-I/O reader: bytes in, whole PDUs out, lengths checked before buffering."""

    def __init__(
        self,
        *,
        max_data_segment: int = LOGIN_MAX_DATA_SEGMENT,
        header_digest: bool = False,
        data_digest: bool = False,
        from_target: bool = True,
    ) -> None:
        self.max_data_segment = max_data_segment
        self.header_digest = header_digest
        self.data_digest = data_digest
        self.from_target = from_target
        self._buf = bytearray()
        self._info: BhsInfo | None = None  # the current PDU's BHS, once its lengths are checked
        self._header_checked = False  # header digest verified (or digests off)
        self._error: RemoteProtocolError | None = None

    def set_digests(self, *, header: bool, data: bool) -> None:
        """Switch digests on or off for the next PDU (call at a PDU boundary, e.g. right after login)."""
        if self._buf:
            raise LocalProtocolError(f"PduReader: digests changed with {len(self._buf)} bytes of a PDU buffered")
        self.header_digest = header
        self.data_digest = data

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def trailing_data(self) -> bytes:
        """Bytes received but not yet part of a returned PDU (must be empty before a socket goes to the kernel)."""
        return bytes(self._buf)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        self._raise_if_poisoned()
        self._buf += data
        self._advance()

    def bytes_needed(self) -> int:
        """Bytes still missing for the current PDU: 0 if a whole PDU is buffered, else at least 1.

        With header digests on, this first asks only for the header and its digest, so corrupt lengths are
        caught before the reader waits for a data segment that may never come.
        """
        self._raise_if_poisoned()
        self._advance()
        if self._info is None:
            return BHS_LEN - len(self._buf)
        if not self._header_checked:
            return self._header_len(self._info) + DIGEST_LEN - len(self._buf)
        return max(0, framed_length(self._info, self.header_digest, self.data_digest) - len(self._buf))

    def next_pdu(self) -> Pdu | None:
        """The next whole PDU, or None if more bytes are needed."""
        if self.bytes_needed():
            return None
        info = self._info
        assert info is not None
        total = framed_length(info, self.header_digest, self.data_digest)
        raw = bytes(self._buf[:total])
        del self._buf[:total]
        self._info = None
        self._header_checked = False
        try:
            pdu = self._decode(info, raw)
        except RemoteProtocolError as exc:
            self._error = exc
            raise
        self._advance()
        return pdu

    def pdus(self) -> Iterator[Pdu]:
        """Every whole PDU buffered now."""
        while (pdu := self.next_pdu()) is not None:
            yield pdu

    def _raise_if_poisoned(self) -> None:
        if self._error is not None:
            raise RemoteProtocolError(f"PduReader: stream unusable after an earlier error: {self._error}")

    @staticmethod
    def _header_len(info: BhsInfo) -> int:
        return BHS_LEN + info.total_ahs_len

    def _advance(self) -> None:
        """Check what the buffer now allows: the BHS's lengths first, then the header digest."""
        try:
            if self._info is None and len(self._buf) >= BHS_LEN:
                info = parse_bhs(bytes(self._buf[:BHS_LEN]))
                if info.data_segment_len > self.max_data_segment:
                    raise RemoteProtocolError(
                        f"BHS opcode {info.opcode:#04x}: DataSegmentLength {info.data_segment_len} exceeds our "
                        f"MaxRecvDataSegmentLength {self.max_data_segment}"
                    )
                self._info = info
                self._header_checked = not self.header_digest
            if self._info is not None and not self._header_checked:
                end = self._header_len(self._info)
                if len(self._buf) >= end + DIGEST_LEN:
                    got = bytes(self._buf[end : end + DIGEST_LEN])
                    computed = digest_bytes(self._buf[:end])
                    if got != computed:
                        raise DigestError(
                            f"header digest of opcode {self._info.opcode:#04x}: got {got.hex()}, "
                            f"computed {computed.hex()}"
                        )
                    self._header_checked = True
        except RemoteProtocolError as exc:
            self._error = exc
            raise

    def _decode(self, info: BhsInfo, raw: bytes) -> Pdu:
        """Strip digests (the header one is already checked) and padding, check the data digest, decode."""
        pos = self._header_len(info)
        header = raw[:pos]
        if self.header_digest:
            pos += DIGEST_LEN
        data = b""
        if info.data_segment_len:
            body_len = info.data_segment_len + pad_len(info.data_segment_len)
            body = raw[pos : pos + body_len]
            if self.data_digest:
                got = raw[pos + body_len : pos + body_len + DIGEST_LEN]
                computed = crc32c(body).to_bytes(4, "little")
                if got != computed:
                    raise DigestError(
                        f"data digest of opcode {info.opcode:#04x}: got {got.hex()}, computed {computed.hex()}"
                    )
            data = body[: info.data_segment_len]
        return decode_pdu(header[:BHS_LEN], header[BHS_LEN:], data, from_target=self.from_target)
