"""The client's full-feature-phase loop against a scripted target on a socketpair (login is tested against tgtd
in test_client_tgt.py)."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from initiator import client, scsi
from initiator import pdu as P
from initiator.credentials import Chap
from initiator.deadline import Deadline
from initiator.errors import (
    BadInputError,
    IscsiError,
    LocalProtocolError,
    NetworkError,
    RemoteProtocolError,
)
from initiator.framing import PduReader, frame
from initiator.portal import Portal
from initiator.secret import Secret
from initiator.session import Session
from initiator.transport import PduStream, Transport
from tests.initiator.scripted_target import Lun, Script, ScriptedTarget


@dataclass(frozen=True)
class _Result:
    tsih: int = 7
    isid: bytes = b"\x80\x00\x00\x00\x00\x01"

    def negotiated_text(self) -> dict[str, str]:
        return {"HeaderDigest": "None"}


@pytest.fixture
def connect() -> Iterator:
    made: list[tuple[client.LoggedInConnection, ScriptedTarget]] = []

    def make(script: Script) -> tuple[client.LoggedInConnection, ScriptedTarget]:
        ours, theirs = socket.socketpair()
        target = ScriptedTarget(theirs, script, statsn=50, cmdsn=1)
        portal = Portal("192.0.2.1", 3260)
        conn = client.LoggedInConnection(
            portal,
            "iqn.2026-11.org.example:t",
            _Result(),
            PduStream(Transport(ours, portal)),
            Session(cmdsn=1, exp_statsn=50, max_cmdsn=8),
        )
        made.append((conn, target))
        return conn, target

    yield make
    for conn, target in made:
        conn.close()
        target.sock.close()
        target.thread.join(5)


def _deadline() -> Deadline:
    return Deadline("test", 10)


def _sha(lun: Lun) -> str:
    return hashlib.sha256(lun.block(0)).hexdigest()


@pytest.mark.parametrize(
    "script",
    [
        Script(),
        Script(unit_attention_first=True),
        Script(ping_before_answer=True),
        Script(data_in_piece=100),
        Script(no_read_capacity_16=True),
    ],
    ids=["plain", "unit-attention", "target-pings", "data-in-pieces", "no-rc16"],
)
def test_probe(connect, script: Script) -> None:
    conn, target = connect(script)
    result = client.probe(conn, _deadline())
    assert [info.lun for info in result.luns] == [0, 1]
    controller, disk = result.luns
    assert (
        controller.capacity is None
        and controller.inquiry.peripheral_type == scsi.PeripheralType.STORAGE_ARRAY_CONTROLLER
    )
    assert disk.capacity == scsi.Capacity(2048, 512)
    assert (disk.inquiry.vendor, disk.inquiry.product) == ("PYISCSI", "SCRIPTED DISK")
    assert result.chosen_lun == 1
    assert result.block0_sha256 == _sha(script.luns[1])
    assert disk.to_json() == {
        "lun": 1,
        "vendor": "PYISCSI",
        "product": "SCRIPTED DISK",
        "block_size": 512,
        "blocks": 2048,
        "size_bytes": 1 << 20,
    }
    assert controller.to_json()["blocks"] is None
    client.logout(conn, _deadline())
    target.thread.join(5)
    assert target.logged_out
    assert target.errors == []
    if script.no_read_capacity_16:
        assert bytes([0x25]) + bytes(15) in target.commands


def test_probe_chosen_lun_and_big_blocks(connect) -> None:
    luns = {0: Lun(ptype=0x0C), 1: Lun(), 5: Lun(blocks=100, block_size=4096)}
    conn, target = connect(Script(luns=luns))
    result = client.probe(conn, _deadline(), lun=5)
    assert result.chosen_lun == 5
    assert result.block0_sha256 == _sha(luns[5]) and len(result.block0) == 4096
    assert target.errors == []


def test_probe_lun_not_reported(connect) -> None:
    conn, _ = connect(Script())
    with pytest.raises(BadInputError, match=r"--lun: the target reports no such LUN \(it has: 0, 1\)"):
        client.probe(conn, _deadline(), lun=3)


def test_probe_without_disks(connect) -> None:
    conn, _ = connect(Script(luns={0: Lun(ptype=0x0C)}))
    result = client.probe(conn, _deadline())
    assert result.chosen_lun is None and result.block0_sha256 is None


def test_truncated_lun_list_asks_again_then_stops(connect) -> None:
    conn, target = connect(Script(luns_list_extra=300))
    assert client.report_luns(conn, _deadline()) == (0, 1)
    assert len([c for c in target.commands if c[0] == 0xA0]) == 2  # asked again, once, with the larger allocation


def test_async_logout_request_logs_out_and_fails_the_probe(connect) -> None:
    conn, target = connect(Script(async_logout_after=1))
    with pytest.raises(IscsiError, match="asked us to log out"):
        client.probe(conn, _deadline())
    target.thread.join(5)
    assert target.logged_out and target.errors == []


def test_no_report_luns_means_lun_0_alone(connect) -> None:
    conn, target = connect(Script(luns={0: Lun()}, no_report_luns=True))
    result = client.probe(conn, _deadline())
    assert [info.lun for info in result.luns] == [0] and result.chosen_lun == 0
    assert target.errors == []


def test_scsi_error_other_than_unit_attention_is_raised_with_its_sense(connect) -> None:
    conn, _ = connect(Script())
    with pytest.raises(scsi.ScsiCommandError, match=r"READ\(10\) failed: CHECK_CONDITION.*ILLEGAL_REQUEST.*0x25"):
        client.command(conn, 7, scsi.read_10(0, 1, 512), _deadline())
    assert client.probe(conn, _deadline()).chosen_lun == 1  # the session is still usable


def _login_peer(answer) -> tuple[Portal, threading.Thread, socket.socket]:
    """A listener that reads one Login Request and sends what `answer(request)` gives (bytes, then holds on;
    None: hangs up)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            reader = PduReader(from_target=False)
            while (pdu := reader.next_pdu()) is None:
                reader.feed(conn.recv(reader.bytes_needed()))
            reply = answer(pdu)
            if reply is None:  # hang up
                return
            conn.sendall(reply)
            with contextlib.suppress(OSError):
                conn.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return Portal("127.0.0.1", server.getsockname()[1]), thread, server


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (
            lambda req: frame(P.LoginResponse(status_class=1, status_detail=1, data=b"TargetAddress=[::1:3260,1\x00")),
            RemoteProtocolError,
            "TargetAddress",
        ),
        (
            lambda req: frame(P.LoginResponse(status_class=1, status_detail=1, data=b"TargetAddress=bad_host!,1\x00")),
            RemoteProtocolError,
            "redirect to 'bad_host!'",
        ),
        (lambda req: None, NetworkError, "closed the connection"),
        (lambda req: frame(P.NopIn(itt=req.itt)), RemoteProtocolError, "expected a Login Response"),
        (
            lambda req: frame(P.LoginResponse(itt=req.itt, isid=req.isid, status_class=2, status_detail=3)),
            IscsiError,
            r"target not found \(0x0203\)",
        ),
    ],
    ids=["bad-redirect-address", "bad-redirect-host", "closed", "not-a-login-response", "refused"],
)
def test_hostile_login_peers(answer, error: type, match: str) -> None:
    portal, thread, server = _login_peer(answer)
    try:
        with pytest.raises(error, match=match):
            client.login(portal, "iqn.2026-11.org.example:t", "iqn.2026-11.org.example:i", _deadline())
    finally:
        thread.join(5)
        server.close()


@pytest.mark.parametrize(
    ("deadline", "credentials"),
    [
        (None, None),
        ("30", None),
        (_deadline, Chap("u", Secret("s" * 12))),  # one identity is not yet a login's credentials
        (_deadline, ("u", Secret("s" * 12))),
    ],
)
def test_login_refuses_what_is_not_a_deadline_or_credentials(deadline, credentials) -> None:
    portal = Portal("127.0.0.1", 9)  # never reached: the arguments are refused first
    with pytest.raises(LocalProtocolError):
        client.login(
            portal, "iqn.2026-11.org.example:t", "iqn.2026-11.org.example:i",
            deadline() if callable(deadline) else deadline, credentials=credentials,
        )  # fmt: skip


@pytest.mark.parametrize(("response", "error"), [(None, None), (0, None), (1, "logout refused \\(response 1\\)")])
def test_logout_answers(connect, response: int | None, error: str | None) -> None:
    conn, target = connect(Script(logout_response=response))
    if error is None:
        client.logout(conn, _deadline())
    else:
        with pytest.raises(IscsiError, match=error):
            client.logout(conn, _deadline())
    target.thread.join(5)
    assert target.logged_out and target.errors == []
