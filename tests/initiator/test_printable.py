"""initiator.printable: what is escaped and how, as a table, then the promise for any text or bytes."""

from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.printable import printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("iqn.2026-11.test:root", "iqn.2026-11.test:root"),
        ("", ""),
        ("a b", "a b"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),  # OSC: retitles the terminal
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # CSI: clears the screen
        ("\x9b2J", "\\x9b2J"),  # C1 CSI
        ("\x85next", "\\x85next"),  # C1 next line
        ("\x00\x7f", "\\x00\\x7f"),
        ("line\nforged: ok\r", "line\\nforged: ok\\r"),
        ("tab\there", "tab\\there"),
        ("back\\slash", "back\\\\slash"),
        ("\\x1b", "\\\\x1b"),  # the four characters, not ESC: still told apart
        ("caf\u00e9 \u65e5\u672c \u0416", "caf\u00e9 \u65e5\u672c \u0416"),  # printable Unicode is kept
        ("abc\u202edcba", "abc\\u202edcba"),  # bidi override: reorders what the reader sees
        ("a\u2028b", "a\\u2028b"),  # line separator
        ("zero\u200bwidth", "zero\\u200bwidth"),
        ("nb\u00a0sp", "nb\\xa0sp"),
        ("\U000e0041tag", "\\U000e0041tag"),
        ("\udc80", "\\udc80"),  # a lone surrogate in a str (it could not be written to stdout)
    ],
)
def test_text(text, shown):
    assert printable(text) == shown


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (b"iqn.2026-11.test:root", "iqn.2026-11.test:root"),
        (b"QEMU    \x1b[31m", "QEMU    \\x1b[31m"),
        (b"\xff\xfe", "\\xff\\xfe"),  # not UTF-8: the bytes
        (b"caf\xc3\xa9", "caf\u00e9"),
        (b"\xc2\x9b", "\\x9b"),  # C1 written in UTF-8
        (bytearray(b"a\x00"), "a\\x00"),
    ],
)
def test_bytes(raw, shown):
    assert printable(raw) == shown


def _unsafe(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


@settings(max_examples=500)
@given(st.text())
def test_any_text_comes_out_printable_and_reads_back(text):
    shown = printable(text)
    assert not any(_unsafe(c) for c in shown)
    assert shown.isprintable()
    # unambiguous: as a Python string literal the escapes give back exactly the input
    assert ast.literal_eval('"' + shown.replace('"', '\\"') + '"') == text


@settings(max_examples=500)
@given(st.binary())
def test_any_bytes_come_out_printable(raw):
    shown = printable(raw)
    assert not any(_unsafe(c) for c in shown)
    assert shown.isprintable()
    shown.encode("utf-8")  # no lone surrogates left: it can go to any UTF-8 stream


@given(st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs")), max_size=40))
def test_printable_text_without_backslashes_is_unchanged(text):
    text = text.replace("\\", "")
    assert printable(text) == text
