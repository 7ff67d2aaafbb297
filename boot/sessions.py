"""The sessions `pyiscsi boot` handed to the kernel, recorded for `pyiscsi handover` and the real root.

No secret is ever stored here: the handover reloads the plan (command line and iBFT) for CHAP secrets.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from boot.atomic import write_atomic
from initiator.errors import BadInputError

SESSIONS_FILE = "/run/pyiscsi/sessions.json"
BOOTED_FILE = "/run/pyiscsi/booted"  # dracut's initqueue/finished predicate tests for it
VERSION = 1


@dataclass(frozen=True)
class SessionState:
    """One kernel session: who it talks to, what the kernel calls it, and which disk it gave."""

    target: str
    address: str
    port: int
    tpgt: int
    lun: int
    sid: int
    host_no: int
    isid: str  # 12 hex digits
    tsih: int
    initiator_name: str
    header_digest: str
    data_digest: str
    username: str | None
    username_in: str | None
    device: str | None
    root: bool
    seconds: float  # connect to disk present

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> SessionState:
        if not isinstance(data, dict):
            raise BadInputError("sessions", type(data).__name__, "each session must be an object")
        names = {f.name for f in fields(cls)}
        missing = names - data.keys()
        if missing:
            raise BadInputError("sessions", sorted(missing), "session record lacks keys")
        try:
            return cls(**{k: data[k] for k in names})
        except TypeError as exc:
            raise BadInputError("sessions", None, str(exc)) from None


def write_sessions(sessions: list[SessionState] | tuple[SessionState, ...], path: str | os.PathLike[str]) -> None:
    doc = {"version": VERSION, "sessions": [s.to_json() for s in sessions]}
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", mode=0o644)


def read_sessions(path: str | os.PathLike[str] = SESSIONS_FILE) -> tuple[SessionState, ...]:
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(str(path), None, "no sessions recorded (did `pyiscsi boot` run?)") from None
    except (OSError, ValueError) as exc:
        raise BadInputError(str(path), None, f"unreadable sessions file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("sessions"), list):
        raise BadInputError(str(path), None, f"not a version-{VERSION} sessions file")
    return tuple(SessionState.from_json(s) for s in doc["sessions"])
