from __future__ import annotations

from pathlib import Path

import pytest

from initiator.errors import BadInputError
from initiator.initiator_name import default_initiator_name, derived_name, read_open_iscsi_name, validate_name

MACHINE_ID = "0123456789abcdef0123456789abcdef\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("## DO NOT EDIT\nInitiatorName=iqn.1993-08.org.debian:01:abcdef\n", "iqn.1993-08.org.debian:01:abcdef"),
        ("InitiatorName = iqn.2004-10.com.ubuntu:01:1\n", "iqn.2004-10.com.ubuntu:01:1"),
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


def test_derived_name_is_stable_and_host_specific(tmp_path: Path) -> None:
    (tmp_path / "m").write_text(MACHINE_ID)
    (tmp_path / "m2").write_text("fedcba9876543210fedcba9876543210\n")
    name = default_initiator_name(tmp_path / "absent", tmp_path / "m")
    assert name == derived_name(tmp_path / "m")
    assert name.startswith("iqn.2026-11.org.pyiscsi:") and len(name) == len("iqn.2026-11.org.pyiscsi:") + 12
    assert "0123456789abcdef" not in name
    assert derived_name(tmp_path / "m2") != name
    validate_name(name)


def test_no_machine_id_falls_back_to_host_name(tmp_path: Path) -> None:
    assert derived_name(tmp_path / "absent") == derived_name(tmp_path / "absent")


def test_corrupt_open_iscsi_name_is_bad_input(tmp_path: Path) -> None:
    (tmp_path / "n").write_text("InitiatorName=not a name\n")
    with pytest.raises(BadInputError, match="InitiatorName"):
        read_open_iscsi_name(tmp_path / "n")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("iqn.2003-01.org.linux-iscsi.host:sn.1234", True),
        ("iqn.2026-11.org.pyiscsi", True),
        ("eui.02004567A425678D", True),
        ("naa.52004567BA64678D", True),
        ("iqn.03-01.org.x:y", False),
        ("iqn.2003-01.Org.x:y", False),
        ("eui.0200", False),
        ("iqn.2003-01.org.x:has space", False),
        ("", False),
        ("iqn.2003-01.org.x:" + "a" * 220, False),
    ],
)
def test_validate_name(name: str, ok: bool) -> None:
    if ok:
        assert validate_name(name) == name
    else:
        with pytest.raises(BadInputError, match=r"^initiator:"):
            validate_name(name)
