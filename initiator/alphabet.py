"""The ASCII character classes of the names and numbers that iSCSI text, portals and iSCSI names carry, checked
without `re`.

Why: each of these checks is one character class with a length, and `re` (which imports enum and functools) was
over a millisecond of every by-hand `pyiscsi discover`'s start-up, for patterns that a set test says as plainly.
Every class here is ASCII only, as the standards that define the names are: `str.isdigit` and `\\d` would take
other scripts' digits, and `re.IGNORECASE` would take the dotless i for an `i`.
"""

from __future__ import annotations

DIGITS = frozenset("0123456789")
HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LETTERS = UPPER | frozenset("abcdefghijklmnopqrstuvwxyz")
ALNUM = LETTERS | DIGITS
LDH = ALNUM | {"-"}  # a DNS label's letters, digits and hyphen (RFC 1123 2.1)
BASE64 = ALNUM | {"+", "/"}  # without the padding '='

MAX_HOST_NAME = 253  # characters, a final dot included
MAX_LABEL = 63


def within(text: str, allowed: frozenset[str]) -> bool:
    """Whether every character of `text` is in `allowed` (an empty text is)."""
    return allowed.issuperset(text)


def is_run_of(text: str, allowed: frozenset[str], shortest: int = 1, longest: int | None = None) -> bool:
    """`[allowed]{shortest,longest}` matched against the whole of `text`."""
    return shortest <= len(text) and (longest is None or len(text) <= longest) and allowed.issuperset(text)


def is_hex_literal(text: str, longest: int | None = None) -> bool:
    """`0x` or `0X` and 1..`longest` hex digits (RFC 7143 5.1's hex-constant)."""
    return text[:2] in ("0x", "0X") and is_run_of(text[2:], HEX_DIGITS, 1, longest)


def is_host_name(text: str) -> bool:
    """A DNS host name: dot-separated labels of letters, digits and inner hyphens, each 1..63 characters,
    1..253 characters in all, an optional final dot included."""
    if not 1 <= len(text) <= MAX_HOST_NAME:
        return False
    labels = (text[:-1] if text.endswith(".") else text).split(".")
    return all(_is_label(label) for label in labels)


def _is_label(label: str) -> bool:
    return is_run_of(label, LDH, 1, MAX_LABEL) and label[0] != "-" and label[-1] != "-"
