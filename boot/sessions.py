"""The sessions `pyiscsi boot` handed to the kernel, recorded for `pyiscsi handover` and the real root.

No secret is ever stored here (mode 0644): the handover and the agent reload the plan (command line and iBFT)
for CHAP secrets. The record of one session is `initiator.held_session.HeldSession.to_json()` plus what the
boot found (device, root, seconds), and for a path of a multipath LUN the replacement timeout its kernel
session got ("replacement", seconds; absent otherwise, when the plan's applies: boot.paths).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from boot.atomic import write_atomic
from initiator.errors import BadInputError
from initiator.held_session import JSON_KEYS, HeldSession, Secrets
from initiator.record import record

SESSIONS_FILE = "/run/pyiscsi/sessions.json"
BOOTED_FILE = "/run/pyiscsi/booted"  # dracut's initqueue/finished predicate tests for it
VERSION = 1
ROW_KEYS = ("device", "root", "seconds")


@record
class SessionState:
    """One kernel session the boot made, and what the boot found: which disk it gave, whether it is the root's
    (every path of the root LUN is), how long connect to disk present took, and the replacement timeout it was
    given when not the plan's (None)."""

    session: HeldSession
    device: str | None = None
    root: bool = False
    seconds: float = 0.0
    replacement: float | None = None

    def to_json(self) -> dict[str, Any]:
        row = {**self.session.to_json(), "device": self.device, "root": self.root, "seconds": self.seconds}
        if self.replacement is not None:  # only then: a one-path boot writes the file it always wrote
            row["replacement"] = self.replacement
        return row

    @classmethod
    def from_json(cls, data: Any, secrets: Secrets | None = None) -> SessionState:
        """The record back; `secrets` puts the CHAP credentials back (HeldSession.from_json)."""
        check_record(data)
        session = HeldSession.from_json(data, secrets)
        return cls(session, data["device"], data["root"], data["seconds"], data.get("replacement"))

    def replacement_timeout(self, planned: float) -> float:
        """The session's replacement timeout: its own, else the plan's."""
        return planned if self.replacement is None else self.replacement


def check_record(data: Any) -> None:
    if not isinstance(data, dict):
        raise BadInputError("sessions", type(data).__name__, "each session must be an object")
    missing = {*JSON_KEYS, *ROW_KEYS} - data.keys()
    if missing:
        raise BadInputError("sessions", sorted(missing), "session record lacks keys")
    replacement = data.get("replacement")
    if replacement is not None and (
        isinstance(replacement, bool) or not isinstance(replacement, int | float) or not 0 <= replacement < 1e9
    ):
        raise BadInputError("sessions", replacement, "replacement must be a number of seconds")


def write_sessions(sessions: list[SessionState] | tuple[SessionState, ...], path: str | os.PathLike[str]) -> None:
    doc = {"version": VERSION, "sessions": [s.to_json() for s in sessions]}
    write_atomic(path, json.dumps(doc, indent=2, sort_keys=True) + "\n", mode=0o644)


def read_sessions(
    path: str | os.PathLike[str] = SESSIONS_FILE, secrets: Secrets | None = None
) -> tuple[SessionState, ...]:
    """The recorded sessions. No secret is stored: `secrets` (see HeldSession.from_json) gives each session its
    CHAP credentials back, and is asked only once every record has been checked; without it they have none."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BadInputError(str(path), None, "no sessions recorded (did `pyiscsi boot` run?)") from None
    except (OSError, ValueError) as exc:
        raise BadInputError(str(path), None, f"unreadable sessions file: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("sessions"), list):
        raise BadInputError(str(path), None, f"not a version-{VERSION} sessions file")
    for entry in doc["sessions"]:
        check_record(entry)
    return tuple(SessionState.from_json(entry, secrets) for entry in doc["sessions"])
