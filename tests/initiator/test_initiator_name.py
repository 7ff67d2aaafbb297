from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import BadInputError
from initiator.initiator_name import (
    PREFIX,
    default_initiator_name,
    default_name,
    generated_name,
    is_iscsi_name,
    read_open_iscsi_name,
    validate_name,
)

MACHINE_ID = "0123456789abcdef0123456789abcdef\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:abcdef\n", "iqn.1993-08.org.debian:01:abcdef"),
        ("  InitiatorName=iqn.2004-10.com.ubuntu:01:1  \n", "iqn.2004-10.com.ubuntu:01:1"),
        # open-iscsi's key is `InitiatorName=`: a line spelt otherwise names nothing (as the boot always read it)
        ("InitiatorName = iqn.2004-10.com.ubuntu:01:1\n", None),
        ("#InitiatorName=iqn.2000-01.com.x:y\n", None),
        ("InitiatorName=\n", None),
        ("", None),
    ],
)
def test_read_open_iscsi_name(tmp_path: Path, text: str, expected: str | None) -> None:
    f = tmp_path / "initiatorname.iscsi"
    f.write_text(text)
    assert read_open_iscsi_name(f) == expected


def test_open_iscsi_name_preferred(tmp_path: Path) -> None:
    (tmp_path / "n").write_text("InitiatorName=iqn.1993-08.org.debian:01:x\n")
    (tmp_path / "m").write_text(MACHINE_ID)
    assert default_initiator_name(tmp_path / "n", tmp_path / "m") == "iqn.1993-08.org.debian:01:x"
    assert default_name(tmp_path / "n", tmp_path / "m") == ("iqn.1993-08.org.debian:01:x", str(tmp_path / "n"))


def test_generated_name_is_stable_and_host_specific(tmp_path: Path) -> None:
    (tmp_path / "m").write_text(MACHINE_ID)
    (tmp_path / "m2").write_text("fedcba9876543210fedcba9876543210\n")
    name = default_initiator_name(tmp_path / "absent", tmp_path / "m")
    assert name == generated_name(tmp_path / "m") == generated_name(str(tmp_path / "m"))
    assert default_name(tmp_path / "absent", tmp_path / "m") == (name, None)
    # what booted systems' target ACLs have seen: the first 12 hex digits of the machine id's SHA-256
    assert name == PREFIX + hashlib.sha256(MACHINE_ID.strip().encode()).hexdigest()[:12]
    assert "0123456789abcdef" not in name
    assert generated_name(tmp_path / "m2") != name
    validate_name(name)


def test_without_machine_id_the_name_is_random_but_valid(tmp_path: Path) -> None:
    names = {generated_name(tmp_path / "absent") for _ in range(4)}
    assert len(names) == 4
    for name in names:
        assert validate_name(name) == name and name.startswith(PREFIX)


def test_corrupt_open_iscsi_name_is_bad_input_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "n").write_text("InitiatorName=not a name\n")
    with pytest.raises(BadInputError, match="^" + re.escape(f"{tmp_path / 'n'}: not an iSCSI name")):
        read_open_iscsi_name(tmp_path / "n")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("iqn.2003-01.org.linux-iscsi.host:sn.1234", True),
        ("iqn.2026-11.org.pyiscsi", True),
        # iSCSI names are case-insensitive (RFC 7143 4.2.7): either case, eui. hex included
        ("iqn.2003-01.Org.x:Y", True),
        ("IQN.1991-05.COM.MICROSOFT:HOST", True),
        ("eui.02004567A425678D", True),
        ("eui.02004567a425678d", True),
        ("naa.52004567BA64678D", True),
        ("naa.52004567ba64678d52004567ba64678d", True),
        ("iqn.03-01.org.x:y", False),
        ("eui.0200", False),
        ("eui.02004567A425678G", False),
        ("naa.52004567BA64678D0", False),
        ("iqn.2003-01.org.x:has space", False),
        ("iqn.2003-01.", False),
        ("", False),
        ("iqn.2003-01.org.x:" + "a" * 220, False),
        # ASCII only where the formats are: no dotless or dotted i for the i of iqn, no other script's digits
        ("\u0131qn.2003-01.org.x:y", False),
        ("\u0130QN.2003-01.org.x:y", False),
        ("iqn.\u0662\u0660\u0660\u0663-01.org.x:y", False),
        ("iqn.2003-01.org.x:y\u0085", False),  # NEL: white space to str.isspace
        ("iqn.2003-01.org.x:\u00e9t\u00e9", True),  # the name part is UTF-8 text (RFC 7143 4.2.7.2)
    ],
)
def test_validate_name(name: str, ok: bool) -> None:
    if ok:
        assert validate_name(name) == name
    else:
        with pytest.raises(BadInputError, match=r"^initiator:"):
            validate_name(name)


@given(st.text(alphabet="0123456789abcdefABCDEF", min_size=16, max_size=16))
def test_every_eui_name_in_either_case(digits: str) -> None:
    for name in (f"eui.{digits}", f"eui.{digits.upper()}", f"eui.{digits.lower()}"):
        assert validate_name(name) == name


# the pattern validate_name used before is_iscsi_name (with re.IGNORECASE): the two agree on everything but the
# non-ASCII letters that the pattern's case folding took for i (cases above)
NAME_PATTERN = r"iqn\.[0-9]{4}-[0-9]{2}\.[^\s\x00-\x1f\x7f-\x9f]+|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16}([0-9a-f]{16})?"
NEAR_NAMES = st.sampled_from(["iqn.", "IQN.", "eui.", "Naa.", "iqn.2003-01.", "iqn", ""]).flatmap(
    lambda head: st.text(st.sampled_from("0123456789aAfFgG.-:x \t\x00\x1f\x7f\x9f\xa0\u2028\u00e9"), max_size=34).map(
        lambda tail: head + tail
    )
)


@settings(max_examples=3000)
@given(NEAR_NAMES)
def test_names_are_what_the_old_pattern_took(name: str) -> None:
    assert is_iscsi_name(name) == (re.fullmatch(NAME_PATTERN, name, re.IGNORECASE) is not None)


def test_the_name_part_refuses_exactly_white_space_and_control_characters() -> None:
    """Over every code point, as the old pattern's class `[^\\s\\x00-\\x1f\\x7f-\\x9f]` did."""
    refused = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")
    for point in range(0x110000):
        char = chr(point)
        assert is_iscsi_name("iqn.2003-01.a" + char) == (refused.match(char) is None), hex(point)
