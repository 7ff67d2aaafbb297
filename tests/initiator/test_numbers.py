from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import BadInputError, ExitStatus, RemoteValueError
from initiator.numbers import MAX_DIGITS, ascii_int, decimal

# Every character Python calls a digit or a number that is not 0-9: superscripts int() refuses, Arabic-Indic,
# Devanagari and fullwidth digits int() takes, circled numbers, Roman numerals.
NON_ASCII_DIGIT = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii())
WITH_NON_ASCII_DIGIT = st.builds(
    lambda before, digit, after: before + digit + after,
    st.text(alphabet="0123456789", max_size=4) | st.text(max_size=4),
    NON_ASCII_DIGIT,
    st.text(alphabet="0123456789", max_size=4) | st.text(max_size=4),
)


@pytest.mark.parametrize(
    ("text", "lo", "hi", "expected"),
    [
        ("0", 0, 9, 0),
        ("3260", 1, 65535, 3260),
        ("0003260", 1, 65535, 3260),  # leading zeros are still ASCII digits
        ("65535", 0, 65535, 65535),
        ("65536", 0, 65535, None),
        ("0", 1, 65535, None),
        ("", 0, 9, None),
        ("²", 0, 9, None),  # isdigit() is true, int() raises
        ("3²60", 0, 65535, None),
        ("٣٢٦٠", 0, 65535, None),  # Arabic-Indic: int() would say 3260
        ("\uff13\uff12\uff16\uff10", 0, 65535, None),  # fullwidth 3260: likewise
        ("१", 0, 9, None),  # Devanagari one
        ("+1", 0, 9, None),
        ("-1", -5, 9, None),
        (" 1", 0, 9, None),
        ("1 ", 0, 9, None),
        ("1\n", 0, 9, None),
        ("1_000", 0, 10_000, None),
        ("0x10", 0, 100, None),
        ("1" * MAX_DIGITS, 0, 10**MAX_DIGITS, int("1" * MAX_DIGITS)),
        ("1" * (MAX_DIGITS + 1), 0, 10**30, None),
        ("9" * 5000, 0, 10**30, None),  # refused by its length before int() (which raises past 4300 digits)
    ],
)
def test_decimal(text: str, lo: int, hi: int, expected: int | None) -> None:
    assert decimal(text, lo, hi) == expected


def test_ascii_int_errors_name_the_field_and_quote_the_token() -> None:
    with pytest.raises(BadInputError) as info:
        ascii_int("3²60", "portal", 1, 65535, whole="10.0.0.1:3²60", what="port")
    assert info.value.field == "portal" and info.value.exit_status is ExitStatus.BAD_INPUT
    assert (
        str(info.value)
        == "portal: port '3²60' is not a number in 1..65535 (ASCII digits 0-9 only) (got '10.0.0.1:3²60')"
    )
    with pytest.raises(RemoteValueError) as remote:
        ascii_int("٣", "TargetAddress", 0, 65535, peer=True)
    assert remote.value.field == "TargetAddress" and remote.value.exit_status is ExitStatus.ISCSI_REFUSED
    assert str(remote.value) == "TargetAddress: '٣' is not a number in 0..65535 (ASCII digits 0-9 only)"


def test_a_hostile_value_is_quoted_short() -> None:
    with pytest.raises(RemoteValueError) as info:
        ascii_int("x" * 5000, "key", 0, 1, peer=True, whole="y" * 5000)
    assert len(str(info.value)) < 200


@settings(max_examples=300, deadline=None)
@given(WITH_NON_ASCII_DIGIT, st.booleans())
def test_any_text_with_a_non_ascii_digit_is_refused_naming_the_field(text: str, peer: bool) -> None:
    assert decimal(text, 0, 10**30) is None
    error = RemoteValueError if peer else BadInputError
    with pytest.raises(error) as info:
        ascii_int(text, "SomeField", 0, 10**30, peer=peer)
    assert info.value.field == "SomeField" and str(info.value).startswith("SomeField: ")


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**MAX_DIGITS - 1), st.integers(0, 3))
def test_ascii_digits_round_trip(number: int, zeros: int) -> None:
    text = "0" * zeros + str(number)
    expected = number if len(text) <= MAX_DIGITS else None
    assert decimal(text, 0, 10**MAX_DIGITS) == expected
