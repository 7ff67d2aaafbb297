from __future__ import annotations

import json
import os
import stat

import pytest

from boot.sessions import SessionState, read_sessions, write_sessions
from initiator.credentials import Chap, Credentials
from initiator.errors import BadInputError
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.secret import Secret

CREDENTIALS = Credentials(Chap("u", Secret("out-secret-1")))
S = SessionState(
    HeldSession(
        target="iqn.2026-11.test:root",
        portal=Portal("fe80::1", 3260),
        tpgt=1,
        lun=1,
        sid=3,
        host_no=2,
        isid=bytes.fromhex("800000000001"),
        tsih=7,
        initiator_name="iqn.2026-11.test:init",
        header_digest="CRC32C",
        data_digest="None",
        credentials=CREDENTIALS,
    ),
    device="/dev/sda",
    root=True,
    seconds=1.5,
)

# The file as `pyiscsi boot` has always written it: handover, the agent and the VM tests read exactly this.
FILE = """{
  "sessions": [
    {
      "address": "fe80::1",
      "data_digest": "None",
      "device": "/dev/sda",
      "header_digest": "CRC32C",
      "host_no": 2,
      "initiator_name": "iqn.2026-11.test:init",
      "isid": "800000000001",
      "lun": 1,
      "port": 3260,
      "root": true,
      "seconds": 1.5,
      "sid": 3,
      "target": "iqn.2026-11.test:root",
      "tpgt": 1,
      "tsih": 7,
      "username": "u",
      "username_in": null
    }
  ],
  "version": 1
}
"""


def test_the_file_is_byte_for_byte_what_it_was(tmp_path):
    path = tmp_path / "run" / "sessions.json"
    write_sessions([S], path)
    assert path.read_text() == FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # no secret in it


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "sessions.json"
    write_sessions([S], path)
    asked: list[tuple[str | None, str | None]] = []

    def secrets(session, username, username_in):
        asked.append((username, username_in))
        return CREDENTIALS

    assert read_sessions(path, secrets) == (S,)
    assert asked == [("u", None)]
    assert "password" not in path.read_text() and "out-secret" not in path.read_text()


def test_without_secrets_the_sessions_hold_no_credentials(tmp_path):
    path = tmp_path / "sessions.json"
    write_sessions([S], path)
    (back,) = read_sessions(path)
    assert back.session.credentials is None
    assert back.session == HeldSession(**{**S.session.__dict__, "credentials": None})


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "did `pyiscsi boot` run"),
        ("{", "unreadable"),
        ('{"version": 2, "sessions": []}', "version-1"),
        ('{"version": 1, "sessions": [1]}', "object"),
        ('{"version": 1, "sessions": [{"target": "x"}]}', "lacks keys"),
        (FILE.replace('"800000000001"', '"80zz"'), "session record"),
    ],
)
def test_bad_files_are_bad_input(tmp_path, content, needle):
    path = tmp_path / "sessions.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError, match=needle.replace("`", ".").replace("(", r"\(")):
        read_sessions(path)


def test_every_record_is_checked_before_a_secret_is_asked_for(tmp_path):
    path = tmp_path / "sessions.json"
    doc = json.loads(FILE)
    doc["sessions"].append({"target": "x"})
    path.write_text(json.dumps(doc))
    with pytest.raises(BadInputError, match="lacks keys"):
        read_sessions(path, lambda *args: pytest.fail("asked for a secret"))


def test_no_secret_field_exists():
    assert not any("password" in k or "secret" in k for k in json.loads(json.dumps(S.to_json())))


def test_a_path_of_a_multipath_lun_records_its_replacement_timeout(tmp_path):
    path = tmp_path / "sessions.json"
    paths = [S, SessionState(S.session, "/dev/sdb", True, 1.0, replacement=5.0)]
    write_sessions(paths, path)
    doc = json.loads(path.read_text())
    assert "replacement" not in doc["sessions"][0] and doc["sessions"][1]["replacement"] == 5.0
    back = read_sessions(path)
    assert [r.replacement for r in back] == [None, 5.0]
    assert [r.replacement_timeout(120.0) for r in back] == [120.0, 5.0]


@pytest.mark.parametrize("value", ["5", True, -1, float("nan"), [5], 1e12])
def test_a_bad_replacement_timeout_is_bad_input(tmp_path, value):
    path = tmp_path / "sessions.json"
    doc = json.loads(FILE)
    doc["sessions"][0]["replacement"] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(BadInputError, match="replacement must be a number of seconds"):
        read_sessions(path, lambda *args: pytest.fail("asked for a secret"))
