"""Logout and destruction of a kernel session we created, for data sessions only: never the root one.

    end_session(channel, sid, deadline, *, root, cid=0, log=None) -> Ended

The order is open-iscsi's: a Logout Request through the kernel (which fills CmdSN and ExpStatSN and stops
queueing commands), its response (or the target hanging up: the session is over either way), STOP_CONN with
*term*, DESTROY_CONN, DESTROY_SESSION (the kernel removes the SCSI devices with it). The root session is
refused before anything is sent: logging it out would pull the root file system from under the system, and at
shutdown it is the real root's (iscsiadm --logoutall skips firmware and onboot sessions for the same reason).

Call it as the owner of the session's recovery (or after taking the session away from that owner), since the
target closing the connection after the logout may report a connection error that an owner would "recover".
"""

from __future__ import annotations

from collections.abc import Callable

from initiator import iscsi_if as nl
from initiator.deadline import Deadline
from initiator.errors import NetworkError, UsageError, WaitTimeout
from initiator.kernel_login import Channel, logout_through_kernel
from initiator.record import record


@record
class Ended:
    sid: int
    logout_response: int | None  # the target's Logout Response code; None when it hung up instead


def end_session(
    channel: Channel,
    sid: int,
    deadline: Deadline,
    *,
    root: bool,
    cid: int = 0,
    log: Callable[[str], None] | None = None,
    deferred: list[nl.Message] | None = None,
) -> Ended:
    if root:
        raise UsageError(f"session {sid} is the root session: pyiscsi never logs it out")
    say = log or (lambda line: None)
    response: int | None = None
    try:
        answer = logout_through_kernel(channel, sid, cid, deadline, deferred)
        response = None if answer is None else answer.response
        say(f"session {sid}: logged out" + ("" if answer else " (the target hung up instead of answering)"))
    except (NetworkError, WaitTimeout) as exc:  # the session ends anyway: stop and destroy it below
        say(f"session {sid}: logout not answered ({exc}); ending the session anyway")
    h = channel.handle
    channel.request(nl.stop_conn(h, sid, cid, nl.StopFlag.TERM), deadline)
    channel.request(nl.destroy_conn(h, sid, cid), deadline)
    channel.request(nl.destroy_session(h, sid), deadline)
    say(f"session {sid}: connection stopped, connection and session destroyed")
    return Ended(sid, response)
