from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from initiator import iscsi_if as nl
from initiator.credentials import Chap, Credentials
from initiator.deadline import Deadline, FakeClock
from initiator.errors import LocalProtocolError, NetworkError
from initiator.held_session import HeldSession
from initiator.kernel import KernelError
from initiator.pdu import LoginRequest
from initiator.portal import Portal
from initiator.record import replace
from initiator.recovery import OwnedSession, RecoveryLoop, last_exp_statsn, reconnect
from initiator.recovery_policy import Phase
from initiator.secret import Secret
from initiator.status import AuthenticationFailed
from tests.initiator.fake_kernel import FakeKernel, conn_error
from tests.initiator.test_login import INITIATOR, ISID, TARGET, FakeTarget

SID = 4
SESSION = OwnedSession(
    HeldSession(
        target=TARGET, portal=Portal("10.0.2.2", 3260), tpgt=1, initiator_name=INITIATOR, isid=ISID, tsih=7,
        sid=SID, host_no=2,
    ),
    replacement_timeout=60.0,
    time2wait=2.0,
    root=True,
)  # fmt: skip
CHAP = Credentials(Chap("alice", Secret("alicesecret1")))


def _owned(**changes: object) -> OwnedSession:
    """SESSION with some of its own fields, or of the HeldSession it holds, changed."""
    held = {k: v for k, v in changes.items() if k not in ("replacement_timeout", "time2wait", "root")}
    own = {k: v for k, v in changes.items() if k not in held}
    return replace(SESSION, session=replace(SESSION.session, **held), **own)


@pytest.mark.parametrize("missing", ["sid", "host_no"])
def test_only_a_session_the_kernel_holds_can_be_owned(missing: str) -> None:
    with pytest.raises(LocalProtocolError, match="no kernel session"):
        OwnedSession(replace(SESSION.session, **{missing: None}))
    assert (SESSION.sid, SESSION.cid, SESSION.host_no) == (SID, 0, 2)


# -- one attempt against the fake kernel --------------------------------------------------------------------


@pytest.fixture
def sysfs(tmp_path: Path) -> Path:
    conn = tmp_path / "class/iscsi_connection" / f"connection{SID}:0"
    conn.mkdir(parents=True)
    (conn / "exp_statsn").write_text("1234\n")
    return tmp_path


def _fd_connect(opened: list[int]):
    def connect(portal, deadline) -> int:
        fd = os.open(os.devnull, os.O_RDONLY)
        opened.append(fd)
        return fd

    return connect


def _closed(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return True
    return False


def _kernel(target: FakeTarget) -> FakeKernel:
    return FakeKernel(lambda pdu: target.respond(pdu) if isinstance(pdu, LoginRequest) else None)


def test_one_attempt_stops_binds_logs_in_sets_starts_and_rescans(sysfs: Path) -> None:
    target = FakeTarget(statsn=500, tsih=0x77)
    kernel = _kernel(target)
    opened: list[int] = []
    scanned: list[int] = []
    lines: list[str] = []
    tsih = reconnect(
        kernel, SESSION, 1, Deadline("attempt", 30, clock=FakeClock()), lines.append,
        connect=_fd_connect(opened), scan=scanned.append, sysfs=sysfs,
    )  # fmt: skip
    assert tsih == 0x77
    types = kernel.types()
    assert types[0] == nl.UEvent.STOP_CONN and kernel.requests[0].fields["flag"] == nl.StopFlag.RECOVER
    assert types[1] == nl.UEvent.BIND_CONN and kernel.requests[1].fields["transport_eph"] == opened[0]
    assert kernel.requests[1].fields["sid"] == SID and kernel.requests[1].fields["cid"] == 0
    first_param = types.index(nl.UEvent.SET_PARAM)
    assert set(types[2:first_param]) == {nl.UEvent.SEND_PDU}  # the login, before any parameter
    assert types[-1] == nl.UEvent.START_CONN
    assert _closed(opened[0])  # the kernel holds its own reference
    assert scanned == [2]
    first = kernel.sent[0]
    assert (first.isid, first.tsih, first.exp_statsn) == (ISID, 0, 1234)  # ExpStatSN: the kernel's last + 1
    params = kernel.params()
    assert params[nl.IscsiParam.EXP_STATSN] == str(target.statsn)  # final response's StatSN + 1
    assert params[nl.IscsiParam.TARGET_NAME] == TARGET
    assert params[nl.IscsiParam.PERSISTENT_ADDRESS] == "10.0.2.2"
    assert params[nl.IscsiParam.SESS_RECOVERY_TMO] == "60"
    assert nl.IscsiParam.PASSWORD not in params
    assert lines[0].endswith("attempt 1: connecting to 10.0.2.2:3260")
    assert "new TSIH 119" in lines[-1] and "connection started, host2 rescanned" in lines[-1]


def test_chap_secrets_go_to_the_kernel_and_never_into_a_log_line(sysfs: Path) -> None:
    kernel = _kernel(FakeTarget(auth="CHAP"))
    session = _owned(credentials=CHAP)
    lines: list[str] = []
    reconnect(
        kernel, session, 1, Deadline("a", 30, clock=FakeClock()), lines.append,
        connect=_fd_connect([]), scan=lambda host: None, sysfs=sysfs,
    )  # fmt: skip
    assert kernel.params()[nl.IscsiParam.PASSWORD] == "alicesecret1"
    assert kernel.params()[nl.IscsiParam.USERNAME] == "alice"
    assert not any("alicesecret1" in line for line in lines)


def test_a_refused_strong_hash_is_tried_again_with_md5_on_a_new_connection(sysfs: Path) -> None:
    kernel = _kernel(FakeTarget(auth="CHAP", secret=b"the-target-wants-another"))
    session = _owned(credentials=CHAP)
    lines: list[str] = []
    opened: list[int] = []
    with pytest.raises(AuthenticationFailed):
        reconnect(
            kernel, session, 1, Deadline("a", 30, clock=FakeClock()), lines.append,
            connect=_fd_connect(opened), scan=lambda host: None, sysfs=sysfs,
        )  # fmt: skip
    assert len(opened) == 2 and kernel.types().count(nl.UEvent.BIND_CONN) == 2
    assert kernel.types().count(nl.UEvent.STOP_CONN) == 2  # the first socket released before the second bind
    assert any("again with MD5 alone" in line for line in lines)
    offers = [p for p in kernel.sent if b"CHAP_A=" in p.data]
    assert [o.data.split(b"CHAP_A=")[1].split(b"\0")[0] for o in offers] == [b"7,8,6,5", b"5"]


def test_a_session_that_needed_md5_offers_it_alone_next_time(sysfs: Path) -> None:
    # tgt 1.0.x: it takes CHAP_A=7 for SHA-1 and fails our SHA-256 answer; MD5 alone succeeds
    class Tgt10(FakeTarget):
        def _security(self, req, keys):
            if "CHAP_R" in keys and self._alg != 5:
                return self._resp(req, [], status=0x0200, transit=False)
            return super()._security(req, keys)

    session = _owned(credentials=CHAP)
    learned: set[int] = set()
    for attempt in (1, 2):
        target = Tgt10(auth="CHAP")
        kernel = _kernel(target)
        reconnect(
            kernel, session, attempt, Deadline("a", 30, clock=FakeClock()), lambda line: None,
            connect=_fd_connect([]), scan=lambda host: None, sysfs=sysfs, md5_learned=learned,
        )  # fmt: skip
        offers = [p.data.split(b"CHAP_A=")[1].split(b"\0")[0] for p in kernel.sent if b"CHAP_A=" in p.data]
        assert offers == ([b"7,8,6,5", b"5"] if attempt == 1 else [b"5"])
        assert learned == {SID}


@pytest.mark.parametrize(
    ("refuse", "message"),
    [
        ({nl.IscsiParam.ISID: errno.ENOSYS}, None),  # optional on 6.1: skipped
        ({nl.IscsiParam.TARGET_NAME: errno.ENOSYS}, "parameter TARGET_NAME"),
        ({nl.IscsiParam.EXP_STATSN: errno.EINVAL}, "parameter EXP_STATSN"),
    ],
)
def test_parameter_refusals(sysfs: Path, refuse, message: str | None) -> None:
    kernel = _kernel(FakeTarget())
    kernel.refuse_param.update(refuse)
    run = lambda: reconnect(  # noqa: E731
        kernel, SESSION, 1, Deadline("a", 30, clock=FakeClock()), lambda line: None,
        connect=_fd_connect([]), scan=lambda host: None, sysfs=sysfs,
    )  # fmt: skip
    if message is None:
        run()
        assert kernel.types()[-1] == nl.UEvent.START_CONN
    else:
        with pytest.raises(KernelError, match=message):
            run()
        assert nl.UEvent.START_CONN not in kernel.types()


def test_a_failed_bind_closes_our_socket(sysfs: Path) -> None:
    kernel = _kernel(FakeTarget())
    kernel.refuse[nl.UEvent.BIND_CONN] = errno.EBADF
    opened: list[int] = []
    with pytest.raises(KernelError, match="BIND_CONN"):
        reconnect(
            kernel, SESSION, 1, Deadline("a", 30, clock=FakeClock()), lambda line: None,
            connect=_fd_connect(opened), scan=lambda host: None, sysfs=sysfs,
        )  # fmt: skip
    assert _closed(opened[0])


@pytest.mark.parametrize(("text", "value"), [("1234\n", 1234), ("oops", 0), (None, 0)])
def test_last_exp_statsn_from_sysfs(tmp_path: Path, text: str | None, value: int) -> None:
    if text is not None:
        conn = tmp_path / "class/iscsi_connection/connection4:0"
        conn.mkdir(parents=True)
        (conn / "exp_statsn").write_text(text)
    assert last_exp_statsn(4, 0, tmp_path) == value


# -- the driver loop --------------------------------------------------------------------------------------------


def test_the_loop_recovers_after_a_failed_attempt_and_logs_every_step() -> None:
    clock = FakeClock()
    kernel = FakeKernel()
    lines: list[str] = []
    calls: list[int] = []

    def fake_reconnect(channel, session, attempt, deadline, log, **kwargs) -> int:
        calls.append(attempt)
        if attempt == 1:
            raise NetworkError("connection refused")
        return 9

    loop = RecoveryLoop(kernel, [SESSION], lines.append, clock=clock, reconnect_fn=fake_reconnect)
    kernel.push(conn_error(SID))
    assert loop.step(0.0) is True
    assert kernel.types() == [nl.UEvent.STOP_CONN]
    clock.advance(2.0)
    loop.step(0.0)
    assert calls == [1]
    clock.advance(1.0)
    loop.step(0.0)
    assert calls == [1, 2] and loop.recovered == 1
    assert not loop.policy.busy()
    joined = "\n".join(lines)
    for step in ("connection failed", "waiting DefaultTime2Wait", "attempt 1 failed: connection refused", "recovered"):
        assert step in joined


def test_the_loop_stops_when_its_stop_descriptor_is_readable() -> None:
    kernel = FakeKernel()
    loop = RecoveryLoop(kernel, [SESSION], lambda line: None, clock=FakeClock())
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        loop.run(r, tick=0.01)  # returns: nothing under way
    finally:
        os.close(r)
        os.close(w)


def test_a_failing_stop_is_logged_and_recovery_goes_on() -> None:
    clock = FakeClock()
    kernel = FakeKernel()
    kernel.refuse[nl.UEvent.STOP_CONN] = errno.EINVAL
    lines: list[str] = []
    loop = RecoveryLoop(kernel, [SESSION], lines.append, clock=clock, reconnect_fn=lambda *a, **k: 1)
    loop.execute(loop.policy.on_event(conn_error(SID)))
    assert any("stop for recovery failed" in line for line in lines)
    clock.advance(2.0)
    loop.execute(loop.policy.due())
    assert loop.recovered == 1


def test_deferred_events_are_handled_on_the_next_step() -> None:
    kernel = FakeKernel()
    other = _owned(sid=8)
    loop = RecoveryLoop(kernel, [SESSION, other], lambda line: None, clock=FakeClock())
    loop.deferred.append(conn_error(8))
    loop.step(0.0)
    assert loop.policy.phase(8) is Phase.WAITING


def test_told_to_stop_during_a_recovery_the_loop_finishes_it_first() -> None:
    kernel = FakeKernel()
    quick = _owned(time2wait=0.05)
    lines: list[str] = []
    loop = RecoveryLoop(kernel, [quick], lines.append, reconnect_fn=lambda *a, **k: 1)  # the real clock
    r, w = os.pipe()
    try:
        kernel.push(conn_error(SID))  # the error and the stop arrive together: the error is still ours
        os.write(w, b"x")
        loop.run(r, tick=0.01)
    finally:
        os.close(r)
        os.close(w)
    assert loop.recovered == 1 and not loop.policy.busy()
    assert "recovered after" in lines[-1]


def test_lost_events_are_made_up_for_from_sysfs(tmp_path: Path) -> None:
    class Overflowing(FakeKernel):
        def next_event(self, deadline):
            os.read(self._r, 1)
            raise OSError(errno.ENOBUFS, "No buffer space available")

    kernel = Overflowing()
    for sid, state in ((SID, "FAILED"), (8, "LOGGED_IN")):
        path = tmp_path / "class/iscsi_session" / f"session{sid}"
        path.mkdir(parents=True)
        (path / "state").write_text(state + "\n")
    other = _owned(sid=8)
    lines: list[str] = []
    loop = RecoveryLoop(kernel, [SESSION, other], lines.append, clock=FakeClock(), sysfs=tmp_path)
    kernel.push(conn_error(SID))  # makes the descriptor readable; the read itself fails
    assert loop.step(0.0) is True
    assert "No buffer space available; looking in sysfs for failed sessions instead" in lines[0]
    assert loop.policy.phase(SID) is Phase.WAITING and loop.policy.phase(8) is Phase.WATCHING
    assert kernel.types() == [nl.UEvent.STOP_CONN]


def test_a_session_that_failed_before_the_loop_listened_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "class/iscsi_session" / f"session{SID}"
    path.mkdir(parents=True)
    (path / "state").write_text("FAILED\n")
    quick = _owned(time2wait=0.0)
    lines: list[str] = []
    loop = RecoveryLoop(FakeKernel(), [quick], lines.append, reconnect_fn=lambda *a, **k: 1, sysfs=tmp_path)
    r, w = os.pipe()
    try:
        os.write(w, b"x")
        loop.run(r, tick=0.01)
    finally:
        os.close(r)
        os.close(w)
    assert loop.recovered == 1
    assert "connection failed: CONN_FAILED (1011)" in lines[0]
