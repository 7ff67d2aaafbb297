from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.alphabet import DIGITS, HEX_DIGITS, LDH, is_host_name, is_run_of, within

# the pattern portal.py checked host names with before it had is_host_name: the two must agree
HOST_NAME_PATTERN = (
    r"(?=.{1,253}\Z)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?"
)
NEAR_HOST_NAMES = st.text(st.sampled_from("aZ09-._\n \u0131\u00e9\u0660"), max_size=70) | st.lists(
    st.text(st.sampled_from("ab-9"), min_size=0, max_size=66), min_size=1, max_size=6
).map(".".join)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a", True),
        ("target-1.example.org", True),
        ("example.org.", True),
        ("a" * 63 + ".b", True),
        ("a" * 64, False),
        ("-a", False),
        ("a-", False),
        ("a..b", False),
        (".", False),
        ("", False),
        ("a_b", False),
        ("\u00e9t\u00e9.fr", False),
        (("a" * 62 + ".") * 4 + "a", True),  # 253 characters
        (("a" * 62 + ".") * 4 + "ab", False),  # 254
    ],
)
def test_host_names(text: str, expected: bool) -> None:
    assert is_host_name(text) is expected


@settings(max_examples=3000)
@given(NEAR_HOST_NAMES)
def test_host_names_are_what_the_old_pattern_took(text: str) -> None:
    assert is_host_name(text) == (re.fullmatch(HOST_NAME_PATTERN, text) is not None)


@pytest.mark.parametrize(
    ("text", "allowed", "shortest", "longest", "expected"),
    [
        ("", DIGITS, 1, None, False),
        ("", DIGITS, 0, None, True),
        ("0123", DIGITS, 4, 4, True),
        ("01234", DIGITS, 4, 4, False),
        ("\u0660", DIGITS, 1, None, False),  # an Arabic-Indic digit: str.isdigit() says yes
        ("\uff11", DIGITS, 1, None, False),  # a full-width one
        ("aF09", HEX_DIGITS, 1, None, True),
        ("g", HEX_DIGITS, 1, None, False),
        ("a-b", LDH, 1, 3, True),
    ],
)
def test_runs(text: str, allowed: frozenset[str], shortest: int, longest: int | None, expected: bool) -> None:
    assert is_run_of(text, allowed, shortest, longest) is expected
    if shortest == 0 and longest is None:
        assert within(text, allowed) is expected


@given(st.text(max_size=20))
def test_digits_are_the_ascii_class(text: str) -> None:
    assert within(text, DIGITS) == (re.fullmatch(r"[0-9]*", text) is not None)
    assert within(text, HEX_DIGITS) == (re.fullmatch(r"[0-9a-fA-F]*", text) is not None)
