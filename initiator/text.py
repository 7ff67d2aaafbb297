"""key=value text of Login and Text PDUs (RFC 7143 6.1): NUL-terminated pairs, split over PDUs with the C bit.

The bytes of one logical text segment may span several PDUs (C=1 on all but the last); `TextAssembler`
joins them under a size bound, and `decode_text` refuses anything malformed with an error naming the key.
Limits: key names 1..63 bytes of the standard-label alphabet (vendor keys may use `X-`/`X#`), values up to
255 bytes, except the CHAP challenge and response whose encoded form may take up to 8192.

Public API
    encode_text(pairs) -> bytes                       LocalProtocolError for keys or values we may not send
    decode_text(data) -> list[tuple[str, str]]        RemoteProtocolError naming the key or the offset
    as_dict(pairs, *, repeatable=frozenset()) -> dict  refuses a key given twice (unless repeatable)
    split_text(data, max_segment) -> list[bytes]      chunks for C-bit continuation (all but the last get C=1)
    TextAssembler(max_total=65536).add(data, cont) -> bytes | None
    MAX_KEY_LEN, MAX_VALUE_LEN, MAX_LARGE_VALUE_LEN, LARGE_VALUE_KEYS
"""

from __future__ import annotations

from initiator.alphabet import ALNUM, UPPER, within
from initiator.errors import LocalProtocolError, RemoteProtocolError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable

MAX_KEY_LEN = 63
MAX_VALUE_LEN = 255
MAX_LARGE_VALUE_LEN = 8192
LARGE_VALUE_KEYS = frozenset({"CHAP_C", "CHAP_R"})
DEFAULT_MAX_TOTAL = 65536

_KEY_CHARS = ALNUM | frozenset(".-+@_")  # RFC 7143 6.1's standard-label, after its first letter
VENDOR_PREFIX = "X#"  # an IANA-registered key: any key characters after it


def is_key_name(key: str) -> bool:
    """A standard-label (an upper-case letter, then letters, digits and `.-+@_`) or `X#` and one or more of
    those characters."""
    if key.startswith(VENDOR_PREFIX):
        return len(key) > len(VENDOR_PREFIX) and within(key[len(VENDOR_PREFIX) :], _KEY_CHARS)
    return key[:1] in UPPER and within(key[1:], _KEY_CHARS)


def _value_limit(key: str) -> int:
    return MAX_LARGE_VALUE_LEN if key in LARGE_VALUE_KEYS else MAX_VALUE_LEN


def _key_problem(key: str) -> str | None:
    if not key:
        return "empty key name"
    if len(key.encode()) > MAX_KEY_LEN:
        return f"key name longer than {MAX_KEY_LEN} bytes"
    if not is_key_name(key):
        return "key name outside the standard-label alphabet"
    return None


def encode_text(pairs: Iterable[tuple[str, str]]) -> bytes:
    out = bytearray()
    for key, value in pairs:
        problem = _key_problem(key)
        if problem:
            raise LocalProtocolError(f"text key {key!r}: {problem}")
        raw = value.encode()
        if b"\0" in raw:
            raise LocalProtocolError(f"text key {key}: value contains a NUL")
        if len(raw) > _value_limit(key):
            raise LocalProtocolError(f"text key {key}: value of {len(raw)} bytes exceeds {_value_limit(key)}")
        out += key.encode() + b"=" + raw + b"\0"
    return bytes(out)


def decode_text(data: bytes) -> list[tuple[str, str]]:
    """Every pair of one whole logical text segment, in order (repeats kept; see `as_dict`)."""
    if not data:
        return []
    if not data.endswith(b"\0"):
        tail = data[data.rfind(b"\0") + 1 :][:40]
        raise RemoteProtocolError(f"text: last pair is not NUL-terminated (ends with {tail!r})")
    pairs: list[tuple[str, str]] = []
    offset = 0
    for item in data[:-1].split(b"\0"):
        here = offset
        offset += len(item) + 1
        if not item:
            continue  # a stray extra NUL: harmless, and some targets send one
        raw_key, eq, raw_value = item.partition(b"=")
        try:
            key = raw_key.decode("ascii")
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"text: key at offset {here} is not ASCII ({raw_key[:40]!r})") from None
        if not eq:
            raise RemoteProtocolError(f"text: pair at offset {here} has no '=' ({item[:40]!r})")
        problem = _key_problem(key)
        if problem:
            raise RemoteProtocolError(f"text key {key[:70]!r}: {problem}")
        if len(raw_value) > _value_limit(key):
            raise RemoteProtocolError(f"text key {key}: value of {len(raw_value)} bytes exceeds {_value_limit(key)}")
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            raise RemoteProtocolError(f"text key {key}: value is not UTF-8 ({raw_value[:40]!r})") from None
        pairs.append((key, value))
    return pairs


def as_dict(pairs: Iterable[tuple[str, str]], *, repeatable: frozenset[str] = frozenset()) -> dict[str, str]:
    """Pairs as a dict; a key given twice is a protocol error (RFC 7143 6.2) unless listed as repeatable."""
    out: dict[str, str] = {}
    for key, value in pairs:
        if key in out and key not in repeatable:
            raise RemoteProtocolError(f"text key {key}: given twice ({out[key]!r}, then {value!r})")
        out[key] = value
    return out


def split_text(data: bytes, max_segment: int) -> list[bytes]:
    """Cut text into data segments of at most max_segment bytes (at least one, possibly empty)."""
    if max_segment < 1:
        raise LocalProtocolError(f"text: segment limit {max_segment} must be positive")
    return [data[i : i + max_segment] for i in range(0, len(data), max_segment)] or [b""]


class TextAssembler:
    """Joins the data segments of C=1 PDUs until the C=0 one, refusing more than max_total bytes in all."""

    def __init__(self, max_total: int = DEFAULT_MAX_TOTAL) -> None:
        self.max_total = max_total
        self._parts: list[bytes] = []
        self._size = 0

    @property
    def pending(self) -> bool:
        return bool(self._parts)

    def add(self, data: bytes, cont: bool) -> bytes | None:
        """Take one PDU's data segment; return the whole text once a PDU without C arrives."""
        self._size += len(data)
        if self._size > self.max_total:
            size = self._size
            self._parts, self._size = [], 0
            raise RemoteProtocolError(f"text: continued text of {size} bytes exceeds the bound of {self.max_total}")
        self._parts.append(data)
        if cont:
            return None
        whole = b"".join(self._parts)
        self._parts, self._size = [], 0
        return whole
