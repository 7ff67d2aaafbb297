from __future__ import annotations

import json

import pytest

from boot.sessions import SessionState, read_sessions, write_sessions
from initiator.errors import BadInputError

S = SessionState(
    target="iqn.2026-11.test:root",
    address="fe80::1",
    port=3260,
    tpgt=1,
    lun=1,
    sid=3,
    host_no=2,
    isid="800000000001",
    tsih=7,
    initiator_name="iqn.2026-11.test:init",
    header_digest="CRC32C",
    data_digest="None",
    username="u",
    username_in=None,
    device="/dev/sda",
    root=True,
    seconds=1.5,
)


def test_round_trip(tmp_path):
    path = tmp_path / "run" / "sessions.json"
    write_sessions([S], path)
    assert read_sessions(path) == (S,)
    assert "password" not in path.read_text()


@pytest.mark.parametrize(
    "content, needle",
    [
        (None, "did `pyiscsi boot` run"),
        ("{", "unreadable"),
        ('{"version": 2, "sessions": []}', "version-1"),
        ('{"version": 1, "sessions": [1]}', "object"),
        ('{"version": 1, "sessions": [{"target": "x"}]}', "lacks keys"),
    ],
)
def test_bad_files_are_bad_input(tmp_path, content, needle):
    path = tmp_path / "sessions.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError, match=needle.replace("`", ".").replace("(", r"\(")):
        read_sessions(path)


def test_no_secret_field_exists():
    assert not any("password" in k or "secret" in k for k in json.loads(json.dumps(S.to_json())))
