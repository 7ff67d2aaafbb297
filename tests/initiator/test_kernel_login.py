from __future__ import annotations

import pytest

from initiator import iscsi_if as nl
from initiator.credentials import Chap, Credentials
from initiator.deadline import Deadline, FakeClock
from initiator.errors import Md5FallbackAdvised, NetworkError, RemoteProtocolError, WaitTimeout
from initiator.kernel_login import (
    drop_stale_errors,
    error_name,
    login_through_kernel,
    logout_through_kernel,
)
from initiator.login import LoggedIn, LoginConfig
from initiator.pdu import LoginRequest, LogoutRequest, Reject
from initiator.secret import Secret
from initiator.status import AuthenticationFailed
from tests.initiator.fake_kernel import KERNEL_ITT, FakeKernel, conn_error, event, logout_target, recv_pdu
from tests.initiator.test_login import INITIATOR, ISID, TARGET, FakeTarget

SID, CID = 3, 0


def _config(**kw) -> LoginConfig:
    return LoginConfig(INITIATOR, TARGET, isid=ISID, tsih=0, exp_statsn=kw.pop("exp_statsn", 41), **kw)


def _kernel(target: FakeTarget) -> FakeKernel:
    return FakeKernel(lambda pdu: target.respond(pdu) if isinstance(pdu, LoginRequest) else None)


def _deadline() -> Deadline:
    return Deadline("test", 5, clock=FakeClock())


@pytest.mark.parametrize(
    ("target", "chap"),
    [
        (FakeTarget(), None),
        (FakeTarget(auth="CHAP"), Credentials(Chap("alice", Secret("alicesecret1")))),
        (
            FakeTarget(auth="CHAP"),
            Credentials(Chap("alice", Secret("alicesecret1")), Chap("bob-target", Secret("bobsecret123"))),
        ),
    ],
    ids=["none", "chap", "mutual"],
)
def test_a_login_through_the_kernel_reaches_full_feature_phase(target: FakeTarget, chap) -> None:
    kernel = _kernel(target)
    outcome = login_through_kernel(kernel, SID, CID, _config(chap=chap), _deadline())
    assert isinstance(outcome, LoggedIn)
    assert outcome.result.tsih == target.tsih
    assert {r.type for r in kernel.requests} == {nl.UEvent.SEND_PDU}
    assert all((r.fields["sid"], r.fields["cid"]) == (SID, CID) for r in kernel.requests)
    # the kernel numbered every request (its CmdSN, its ITT) and the machine accepted responses with its ITT
    assert all(p.cmdsn == kernel.cmdsn and p.itt == KERNEL_ITT for p in kernel.sent)
    first = kernel.sent[0]
    assert isinstance(first, LoginRequest)
    assert (first.isid, first.tsih, first.exp_statsn) == (ISID, 0, 41)  # reinstatement: same ISID, TSIH 0


def test_header_and_payload_are_split_as_send_pdu_wants() -> None:
    kernel = _kernel(FakeTarget())
    login_through_kernel(kernel, SID, CID, _config(), _deadline())
    first = kernel.requests[0]
    assert first.fields["hdr_size"] == 48
    assert first.fields["data_size"] == len(first.payload) - 48 > 0


def test_events_for_other_sessions_are_deferred_never_dropped() -> None:
    target = FakeTarget()
    others = [conn_error(9), event(nl.UEvent.K_CREATE_SESSION, sid=10, host_no=4)]
    kernel = FakeKernel()

    def answer(pdu):
        kernel.push(*others)  # they arrive before our answer
        return target.respond(pdu)

    kernel.target = answer
    deferred: list[nl.Message] = []
    assert isinstance(login_through_kernel(kernel, SID, CID, _config(), _deadline(), deferred), LoggedIn)
    assert deferred[:2] == others


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (conn_error(SID), "session 3 connection 0: kernel reports TCP_CONN_CLOSE (1020)"),
        (conn_error(SID, error=nl.IscsiErr.NOP_TIMEDOUT), "kernel reports NOP_TIMEDOUT (1022)"),
        (event(nl.UEvent.K_DESTROY_SESSION, host_no=1, sid=SID), "session 3: destroyed by someone else"),
    ],
)
def test_the_connection_failing_during_the_login_fails_it(message: nl.Message, error: str) -> None:
    kernel = FakeKernel(lambda pdu: None)
    kernel.push(message)
    with pytest.raises(NetworkError, match=error.replace("(", r"\(").replace(")", r"\)")):
        login_through_kernel(kernel, SID, CID, _config(), _deadline())


def test_a_target_that_never_answers_runs_out_the_bound() -> None:
    kernel = FakeKernel(lambda pdu: None)
    with pytest.raises(WaitTimeout):
        login_through_kernel(kernel, SID, CID, _config(), _deadline())


def test_a_refusal_after_a_non_md5_answer_hints_an_md5_retry() -> None:
    target = FakeTarget(auth="CHAP", secret=b"not-what-we-have")
    kernel = _kernel(target)
    with pytest.raises(Md5FallbackAdvised) as caught:
        login_through_kernel(
            kernel, SID, CID, _config(chap=Credentials(Chap("alice", Secret("alicesecret1")))), _deadline()
        )
    assert isinstance(caught.value.refusal, AuthenticationFailed)
    assert "alicesecret1" not in str(caught.value)


def test_a_send_pdu_refusal_is_the_kernels_error() -> None:
    kernel = _kernel(FakeTarget())
    kernel.refuse[nl.UEvent.SEND_PDU] = 107
    with pytest.raises(NetworkError, match="SEND_PDU"):
        login_through_kernel(kernel, SID, CID, _config(), _deadline())


@pytest.mark.parametrize(
    ("code", "name"), [(1020, "TCP_CONN_CLOSE (1020)"), (1011, "CONN_FAILED (1011)"), (7, "error 7")]
)
def test_error_names(code: int, name: str) -> None:
    assert error_name(code) == name


# -- logout ----------------------------------------------------------------------------------------------------


def test_logout_goes_through_the_kernel_and_returns_the_response() -> None:
    kernel = FakeKernel(logout_target(0))
    answer = logout_through_kernel(kernel, SID, CID, _deadline())
    assert answer is not None and answer.response == 0
    (sent,) = kernel.sent
    assert isinstance(sent, LogoutRequest) and sent.reason == 0 and sent.immediate


def test_logout_answered_by_a_hang_up_is_none() -> None:
    kernel = FakeKernel(lambda pdu: None)
    kernel.push(conn_error(SID))
    assert logout_through_kernel(kernel, SID, CID, _deadline()) is None


def test_logout_rejected_is_a_protocol_error() -> None:
    kernel = FakeKernel(lambda pdu: Reject(reason=4, data=pdu.encode_bhs()))
    with pytest.raises(RemoteProtocolError, match="rejected our Logout"):
        logout_through_kernel(kernel, SID, CID, _deadline())


# -- stale errors ---------------------------------------------------------------------------------------------


def test_stale_errors_of_the_released_socket_are_dropped_others_deferred() -> None:
    kernel = FakeKernel()
    other = conn_error(SID + 1)
    kernel.push(conn_error(SID), other, conn_error(SID, error=nl.IscsiErr.CONN_FAILED))
    deferred: list[nl.Message] = []
    assert drop_stale_errors(kernel, SID, CID, deferred, FakeClock()) == 2
    assert deferred == [other]
    assert not kernel.events


def test_recv_pdu_for_another_connection_is_not_ours() -> None:
    target = FakeTarget()
    kernel = FakeKernel()
    stray = recv_pdu(SID, Reject(reason=4), cid=1)

    def answer(pdu):
        kernel.push(stray)
        return target.respond(pdu)

    kernel.target = answer
    deferred: list[nl.Message] = []
    assert isinstance(login_through_kernel(kernel, SID, CID, _config(), _deadline(), deferred), LoggedIn)
    assert stray in deferred
