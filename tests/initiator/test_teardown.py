from __future__ import annotations

import errno

import pytest

from initiator import iscsi_if as nl
from initiator.deadline import Deadline, FakeClock
from initiator.errors import UsageError
from initiator.kernel import KernelError
from initiator.teardown import Ended, end_session
from tests.initiator.fake_kernel import FakeKernel, conn_error, logout_target

SID = 6
END = [nl.UEvent.STOP_CONN, nl.UEvent.DESTROY_CONN, nl.UEvent.DESTROY_SESSION]


def _deadline() -> Deadline:
    return Deadline("teardown", 10, clock=FakeClock())


def test_the_root_session_is_refused_before_anything_is_sent() -> None:
    kernel = FakeKernel(logout_target())
    with pytest.raises(UsageError, match="session 6 is the root session: pyiscsi never logs it out"):
        end_session(kernel, SID, _deadline(), root=True)
    assert kernel.requests == []


@pytest.mark.parametrize(
    ("make_kernel", "response", "said"),
    [
        (lambda: FakeKernel(logout_target(0)), 0, "session 6: logged out"),
        (lambda: FakeKernel(logout_target(3)), 3, "session 6: logged out"),
        (lambda: _hung_up(), None, "the target hung up instead of answering"),
        (lambda: FakeKernel(lambda pdu: None), None, "logout not answered"),
    ],
    ids=["success", "cleanup-failed", "hang-up", "silence"],
)
def test_a_data_session_is_logged_out_stopped_and_destroyed(make_kernel, response, said: str) -> None:
    kernel = make_kernel()
    lines: list[str] = []
    assert end_session(kernel, SID, _deadline(), root=False, log=lines.append) == Ended(SID, response)
    types = kernel.types()
    assert types[0] == nl.UEvent.SEND_PDU and types[1:] == END
    assert kernel.requests[1].fields["flag"] == nl.StopFlag.TERM
    assert all(r.fields["sid"] == SID for r in kernel.requests)
    assert said in lines[0]
    assert lines[-1] == "session 6: connection stopped, connection and session destroyed"


def _hung_up() -> FakeKernel:
    kernel = FakeKernel(lambda pdu: None)
    kernel.push(conn_error(SID))
    return kernel


def test_a_kernel_refusal_to_destroy_names_the_request() -> None:
    kernel = FakeKernel(logout_target())
    kernel.refuse[nl.UEvent.DESTROY_SESSION] = errno.EBUSY
    with pytest.raises(KernelError, match="DESTROY_SESSION"):
        end_session(kernel, SID, _deadline(), root=False)
