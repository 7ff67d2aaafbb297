"""Host and domain names from DHCP: RFC 1035/1123 labels, tables of hostile names, and classes of them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot.net.names import checked_name, name_problem


@pytest.mark.parametrize(
    "name",
    ["boot.test", "node7", "a", "1and1.example", "x-y.z", "boot.test.", "a" * 63 + ".b", ".".join(["a" * 62] * 4)],
)
def test_names_that_are_names(name):
    assert name_problem(name) is None
    assert checked_name(name) == name.rstrip(".")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "empty"),
        (".", "empty"),
        ("a..b", "an empty label"),
        (".boot.test", "an empty label"),
        ("boot.test..", "an empty label"),
        ("a" * 64 + ".test", "a label of 64 characters, more than 63"),
        (".".join(["a" * 63] * 4), "255 characters, more than 253"),
        ("-boot.test", "label '-boot' is not letters, digits and inner hyphens"),
        ("boot-.test", "label 'boot-'"),
        ("under_score.test", "label 'under_score'"),
        ("two words", "label 'two words'"),
        ("esc\x1b[31m.test", "label 'esc\\x1b[31m' is not"),
        ("nul\x00.test", "label 'nul\\x00'"),
        ("b\u00fccher.test", "label 'b\u00fccher'"),
    ],
    ids=repr,
)
def test_names_that_are_not(name, problem):
    assert problem in (name_problem(name) or "")


LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?", fullmatch=True)


@settings(max_examples=300)
@given(st.lists(LABEL, min_size=1, max_size=6))
def test_every_name_of_good_labels_up_to_253_characters_passes(labels):
    name = ".".join(labels)
    assert (name_problem(name) is None) is (len(name) <= 253)


@settings(max_examples=500)
@given(st.text(max_size=300))
def test_no_accepted_name_carries_a_control_space_or_non_ascii_character(text):
    problem = name_problem(text)
    if problem is None:
        assert text.isascii() and text.isprintable() and " " not in text and "_" not in text
        assert all(1 <= len(label) <= 63 for label in checked_name(text).split("."))
    else:
        assert problem.isprintable()
