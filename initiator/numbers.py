"""Decimal numbers in text from users and targets: ASCII digits 0-9 and nothing else.

`str.isdigit()` is true for `²` and `①`, which `int()` refuses (a ValueError nobody expects), and for
Arabic-Indic or fullwidth digits, which `int()` quietly accepts; `int()` also takes signs, spaces and `_`.
No RFC 7143 number and no command-line number is written that way, so every parser in `initiator/` reads its
decimal numbers here. The length is bounded before `int()` so a hostile value costs nothing.

Public API
    decimal(text, lo, hi) -> int | None                  the number, or None for anything else
    ascii_int(text, field, lo, hi, *, peer=False, whole=None, what="") -> int
        BadInputError (peer=False: the user's input) or RemoteValueError (peer=True: the target's) naming
        `field`, quoting `whole` (the token the number came from) when given, else the text itself
    MAX_DIGITS
"""

from __future__ import annotations

from initiator.errors import BadInputError, RemoteValueError

MAX_DIGITS = 20  # 2**64 - 1 has 20 digits; more is never a number we take (and int() stays cheap)
_SHOWN = 40  # characters of a hostile value quoted in a message


def decimal(text: str, lo: int, hi: int) -> int | None:
    """`text` as a number in lo..hi when it is 1..MAX_DIGITS ASCII digits; None otherwise."""
    if not 0 < len(text) <= MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if lo <= number <= hi else None


def _clip(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


def ascii_int(
    text: str, field: str, lo: int, hi: int, *, peer: bool = False, whole: str | None = None, what: str = ""
) -> int:
    """`text` as a number in lo..hi, or an error naming `field` (`what` names the part, e.g. "port")."""
    number = decimal(text, lo, hi)
    if number is not None:
        return number
    part = f"{what} {_clip(text)!r}" if what else repr(_clip(text))
    reason = f"{part} is not a number in {lo}..{hi} (ASCII digits 0-9 only)"
    error = RemoteValueError if peer else BadInputError
    raise error(field, None if whole is None else _clip(whole), reason)
