"""Our iSCSI initiator name when the user gives none: the host's open-iscsi name if it has one, so a target's
ACLs written for this host keep working, else a stable name derived from /etc/machine-id."""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path

from initiator.errors import BadInputError

OPEN_ISCSI_NAME_FILE = Path("/etc/iscsi/initiatorname.iscsi")
MACHINE_ID_FILE = Path("/etc/machine-id")
PREFIX = "iqn.2026-11.org.pyiscsi:"
MAX_NAME = 223  # RFC 7143 6.1: an iSCSI name is at most 223 bytes

_IQN = re.compile(r"^iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[^\s]*)?$")
_EUI = re.compile(r"^eui\.[0-9A-F]{16}$")
_NAA = re.compile(r"^naa\.[0-9A-F]{16}([0-9A-F]{16})?$")


def validate_name(name: str, field: str = "initiator") -> str:
    """An iqn./eui./naa. name as RFC 7143 3.2.6.3 shapes it (iqn names compared case-insensitively, so lower-case
    is required of the naming authority part); BadInputError naming `field` otherwise."""
    if not name or len(name.encode()) > MAX_NAME:
        raise BadInputError(field, name, f"an iSCSI name has 1..{MAX_NAME} bytes")
    if not (_IQN.match(name) or _EUI.match(name) or _NAA.match(name)):
        raise BadInputError(field, name, "not an iSCSI name (iqn.YYYY-MM.reversed.domain[:id], eui.<16 hex>, naa.)")
    return name


def read_open_iscsi_name(path: Path = OPEN_ISCSI_NAME_FILE) -> str | None:
    """`InitiatorName=` from open-iscsi's file; None when the file or the line is absent."""
    try:
        text = path.read_text(errors="replace")[:65536]
    except OSError:
        return None
    for line in text.splitlines():
        key, eq, value = line.strip().partition("=")
        if eq and key.strip() == "InitiatorName" and value.strip():
            return validate_name(value.strip(), field=f"{path}: InitiatorName")
    return None


def derived_name(machine_id_path: Path = MACHINE_ID_FILE) -> str:
    """`iqn.2026-11.org.pyiscsi:` + 12 hex digits of a hash of the machine id (the host name if there is none),
    so the name is the same on every boot of this host without publishing the machine id itself."""
    try:
        seed = machine_id_path.read_text(errors="replace")[:256].strip()
    except OSError:
        seed = ""
    if not seed:
        seed = "hostname:" + socket.gethostname()
    return PREFIX + hashlib.sha256(b"pyiscsi initiator name\0" + seed.encode()).hexdigest()[:12]


def default_initiator_name(
    open_iscsi_file: Path = OPEN_ISCSI_NAME_FILE, machine_id_file: Path = MACHINE_ID_FILE
) -> str:
    return read_open_iscsi_name(open_iscsi_file) or derived_name(machine_id_file)
