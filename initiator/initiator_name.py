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
import re

from initiator.errors import BadInputError

OPEN_ISCSI_NAME_FILE = "/etc/iscsi/initiatorname.iscsi"  # plain paths: pathlib is no import of the discover path
MACHINE_ID_FILE = "/etc/machine-id"
PREFIX = "iqn.2026-11.org.pyiscsi:"
MAX_NAME = 223  # RFC 7143 4.2.7.1: an iSCSI name is at most 223 bytes

# ASCII digits only (\d takes Arabic-Indic ones), and no white space or control character in an iqn's name part
_NAME = re.compile(
    r"iqn\.[0-9]{4}-[0-9]{2}\.[^\s\x00-\x1f\x7f-\x9f]+|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16}([0-9a-f]{16})?",
    re.IGNORECASE,
)


def validate_name(name: str, field: str = "initiator") -> str:
    """An iqn./eui./naa. name as RFC 7143 4.2.7 shapes it; BadInputError naming `field` otherwise."""
    if not name or len(name.encode()) > MAX_NAME:
        raise BadInputError(field, name, f"an iSCSI name has 1..{MAX_NAME} bytes")
    if not _NAME.fullmatch(name):
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
