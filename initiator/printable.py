r"""Text from the network or firmware, made safe for a terminal: `printable(text)` before printing it.

Use it for every string a target or the firmware chose (iBFT names, target names from SendTargets, INQUIRY
vendor/product strings, sysfs attributes) before it reaches a terminal or a log line. Such a string must never
go out raw: ESC starts CSI/OSC sequences that move the cursor, clear the screen, retitle the window or rewrite
what the user reads; C1 bytes (0x80-0x9f) do the same on some terminals; newlines forge whole output lines and
bidi overrides reorder what is shown. Error *values* need nothing more: `BadInputError` shows them with repr(),
which escapes the same characters. JSON needs nothing more either when written with ensure_ascii=True (the
default), which turns every non-ASCII or control character into \uXXXX.

The rule, Python's own definition of printable (no Unicode tables needed, so nothing more to install):
- each character for which `str.isprintable()` is false is escaped: C0 (0x00-0x1f, ESC among them), DEL, C1,
  line and paragraph separators, format characters (bidi overrides, zero-width), surrogates, private-use and
  unassigned code points, and every space but the ASCII one;
- a backslash is doubled, so the result is unambiguous: "\x1b" in the output can only come from ESC, never from
  the four characters a hostile string might spell;
- everything else is kept, printable Unicode included ("café", "日本").

Escapes are written as Python writes them: \n \t \r \x1b \x85 \u202e \U000e0041, so the result read as a
Python string literal gives back the input. Bytes are decoded as UTF-8; an undecodable byte shows as \xNN of that
byte. The result is one line of printable characters, safe to encode as UTF-8.

    >>> printable("iqn.2026-11.test:\x1b]0;owned\x07")
    'iqn.2026-11.test:\\x1b]0;owned\\x07'
"""

from __future__ import annotations

_SURROGATE_ESCAPE = range(0xDC80, 0xDD00)  # what "surrogateescape" makes of an undecodable byte
_SHORT = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str, from_bytes: bool) -> str:
    code = ord(char)
    if char in _SHORT:
        return _SHORT[char]
    if from_bytes and code in _SURROGATE_ESCAPE:
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: str | bytes) -> str:
    """`text` with every non-printable character (and the backslash) escaped; see the module's docstring."""
    from_bytes = isinstance(text, bytes | bytearray)
    if from_bytes:
        text = bytes(text).decode("utf-8", "surrogateescape")
    assert isinstance(text, str)
    if text.isprintable() and "\\" not in text:
        return text  # the common case costs one C-level scan
    return "".join(c if c.isprintable() and c != "\\" else _escape(c, from_bytes) for c in text)
