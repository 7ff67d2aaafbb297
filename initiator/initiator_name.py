"""Our iSCSI initiator name, and the one check of an iSCSI name (ours, or a target's).

When the user gives none, `pyiscsi probe`/`discover` and the boot plan (`boot`, `explain`) take the same one:
the host's open-iscsi name if it has one, so a target's ACLs written for this host keep working, else one
generated from /etc/machine-id (stable across boots, without publishing the machine id itself). The boot plan
first looks at rd.iscsi.initiator and the iBFT (boot.planner).

iSCSI names are case-insensitive (RFC 7143 4.2.7: stringprep folds them to lower case before any comparison),
so `eui.` hex and iqn names are accepted in either case.
"""

from __future__ import annotations

import os

from initiator.alphabet import DIGITS, HEX_DIGITS, is_run_of
from initiator.errors import BadInputError

OPEN_ISCSI_NAME_FILE = "/etc/iscsi/initiatorname.iscsi"  # plain paths: pathlib is no import of the discover path
MACHINE_ID_FILE = "/etc/machine-id"
PREFIX = "iqn.2026-11.org.pyiscsi:"
MAX_NAME = 223  # RFC 7143 4.2.7.1: an iSCSI name is at most 223 bytes

EUI_DIGITS = 16  # RFC 7143 4.2.7.3: an EUI-64 in hex
NAA_DIGITS = (16, 32)  # RFC 7143 4.2.7.4: a 64- or 128-bit NAA identifier in hex


def is_iscsi_name(name: str) -> bool:
    """The shape of RFC 7143 4.2.7's three formats, in either case: `iqn.yyyy-mm.` and a name part without white
    space or control characters; `eui.` and 16 hex digits; `naa.` and 16 or 32. Type and naming authority are
    ASCII only (no dotless i for the i of `iqn`, no other script's digits in the date)."""
    kind, rest = name[:4], name[4:]
    if not kind.isascii():
        return False
    kind = kind.lower()
    if kind == "iqn.":
        date, dot, part = rest[:7], rest[7:8], rest[8:]
        return (
            is_run_of(date[:4], DIGITS, 4, 4)
            and date[4:5] == "-"
            and is_run_of(date[5:], DIGITS, 2, 2)
            and dot == "."
            and part != ""
            and not any(char.isspace() or char < "\x20" or "\x7f" <= char <= "\x9f" for char in part)
        )
    if kind == "eui.":
        return is_run_of(rest, HEX_DIGITS, EUI_DIGITS, EUI_DIGITS)
    if kind == "naa.":
        return len(rest) in NAA_DIGITS and is_run_of(rest, HEX_DIGITS)
    return False


def validate_name(name: str, field: str = "initiator") -> str:
    """An iqn./eui./naa. name as RFC 7143 4.2.7 shapes it; BadInputError naming `field` otherwise."""
    if not name or len(name.encode()) > MAX_NAME:
        raise BadInputError(field, name, f"an iSCSI name has 1..{MAX_NAME} bytes")
    if not is_iscsi_name(name):
        raise BadInputError(field, name, "not an iSCSI name (iqn.yyyy-mm.reversed.domain[:...], eui. or naa.)")
    return name


def read_open_iscsi_name(path: str | os.PathLike[str] = OPEN_ISCSI_NAME_FILE) -> str | None:
    """`InitiatorName=` from open-iscsi's file (comments and blank lines skipped); None when the file or the line
    is absent. A name that is not one is BadInputError naming the file."""
    try:
        with open(path, errors="replace") as file:
            text = file.read(65536)
    except OSError:
        return None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("InitiatorName="):
            name = line.split("=", 1)[1].strip()
            if name:
                return validate_name(name, field=str(path))
    return None


def generated_name(machine_id_path: str | os.PathLike[str] = MACHINE_ID_FILE) -> str:
    """`iqn.2026-11.org.pyiscsi:` + 12 hex digits of a hash of the machine id: the same on every boot of this
    host (so `explain` shows what `boot` will use). Without a machine id: random ones."""
    try:
        with open(machine_id_path, errors="replace") as file:
            seed = file.read().strip()
    except OSError:
        seed = ""
    import hashlib  # only when no name is configured: hashlib loads OpenSSL

    from initiator.unique import unique_bytes  # a name must differ, not stay secret: never wait for entropy

    tail = hashlib.sha256(seed.encode()).hexdigest()[:12] if seed else unique_bytes(6).hex()
    return PREFIX + tail


def default_name(
    open_iscsi_file: str | os.PathLike[str] = OPEN_ISCSI_NAME_FILE,
    machine_id_file: str | os.PathLike[str] = MACHINE_ID_FILE,
) -> tuple[str, str | None]:
    """(name, the file it came from): the host's open-iscsi name, else (the generated name, None)."""
    from_file = read_open_iscsi_name(open_iscsi_file)
    if from_file:
        return from_file, str(open_iscsi_file)
    return generated_name(machine_id_file), None


def default_initiator_name(
    open_iscsi_file: str | os.PathLike[str] = OPEN_ISCSI_NAME_FILE,
    machine_id_file: str | os.PathLike[str] = MACHINE_ID_FILE,
) -> str:
    return default_name(open_iscsi_file, machine_id_file)[0]
