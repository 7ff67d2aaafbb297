"""The login state machine over the kernel's PDU channel (NETLINK_ISCSI SEND_PDU requests, RECV_PDU events).

Why: the kernel rewrites the CmdSN (and ITT) of every PDU it sends with its own session counter, which userspace
can neither read nor set. A re-login of a session the kernel owns (recovery after a connection failure) must
therefore go through the kernel, as open-iscsi does, or the kernel's next SCSI command falls outside the
target's window (kernel-facts.md). Logout of a session the kernel owns goes the same way.

    login_through_kernel(channel, sid, cid, config, deadline, deferred=None) -> LoggedIn | Redirect
    logout_through_kernel(channel, sid, cid, deadline, deferred=None) -> LogoutResponse | None

`channel` is anything with `.handle`, `.request(req, deadline)` and `.next_event(deadline)` (initiator.kernel's
NetlinkIscsi, or a fake in tests). The connection must be bound (BIND_CONN) and not started. Events that are
not for (sid, cid) are appended to `deferred` (the recovery loop handles them afterwards), never dropped; a
connection error on (sid, cid) while we wait fails the login with NetworkError naming the kernel's reason.
"""

from __future__ import annotations

import time
from typing import Protocol

from initiator import iscsi_if as nl
from initiator.deadline import Deadline
from initiator.errors import Md5FallbackAdvised, NetworkError, RemoteProtocolError, WaitTimeout
from initiator.login import LoggedIn, LoginConfig, LoginStateMachine, Redirect
from initiator.pdu import LogoutReason, LogoutRequest, LogoutResponse, Reject, decode_bytes
from initiator.record import replace
from initiator.status import LoginRejected

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from initiator.deadline import Clock

LOGIN_BOUND = 20.0
LOGOUT_BOUND = 5.0


class Channel(Protocol):
    handle: int

    def request(self, req: nl.Request, deadline: Deadline) -> nl.Message: ...

    def next_event(self, deadline: Deadline) -> nl.Message: ...


def error_name(code: int) -> str:
    """The kernel's enum iscsi_err value as a word (`TCP_CONN_CLOSE (1020)`)."""
    try:
        return f"{nl.IscsiErr(code).name} ({code})"
    except ValueError:
        return f"error {code}"


def _is_for(msg: nl.Message, sid: int, cid: int) -> bool:
    return msg.fields.get("sid") == sid and msg.fields.get("cid", cid) == cid


def next_pdu(channel: Channel, sid: int, cid: int, deadline: Deadline, deferred: list[nl.Message] | None) -> bytes:
    """The next PDU the kernel passes up for (sid, cid): BHS + data, digests already checked and stripped."""
    while True:
        msg = channel.next_event(deadline)
        if msg.type == nl.UEvent.RECV_PDU and _is_for(msg, sid, cid):
            return msg.payload
        if msg.type == nl.UEvent.CONN_ERROR and _is_for(msg, sid, cid):
            raise NetworkError(f"session {sid} connection {cid}: kernel reports {error_name(msg.fields['error'])}")
        if msg.type == nl.UEvent.K_DESTROY_SESSION and msg.fields.get("sid") == sid:
            raise NetworkError(f"session {sid}: destroyed by someone else while we waited for the target")
        if deferred is not None:
            deferred.append(msg)


def drop_stale_errors(
    channel: Channel, sid: int, cid: int, deferred: list[nl.Message] | None, clock: Clock = time.monotonic
) -> int:
    """After STOP_CONN: connection errors already queued for (sid, cid) belong to the socket just released (a
    target closing after refusing a login, say); drop them before the next login reads its events. Others are
    deferred. Returns how many were dropped."""
    dropped = 0
    while True:
        try:
            msg = channel.next_event(Deadline("queued events", 0.0, clock=clock))
        except WaitTimeout:
            return dropped
        if msg.type == nl.UEvent.CONN_ERROR and _is_for(msg, sid, cid):
            dropped += 1
        elif deferred is not None:
            deferred.append(msg)


def send(channel: Channel, sid: int, cid: int, header: bytes, data: bytes, deadline: Deadline) -> None:
    channel.request(nl.send_pdu(channel.handle, sid, cid, header, data), deadline)


def login_through_kernel(
    channel: Channel,
    sid: int,
    cid: int,
    config: LoginConfig,
    deadline: Deadline,
    deferred: list[nl.Message] | None = None,
) -> LoggedIn | Redirect:
    """Run one login of a bound connection through the kernel. The kernel numbers the PDUs (CmdSN, ITT), so
    the machine does not insist that responses echo our ITT. Refusals raise the status's typed error, or
    Md5FallbackAdvised around it when a login offering MD5 alone may succeed."""
    machine = LoginStateMachine(replace(config, strict_itt=False, cid=cid))
    bound = deadline.child("kernel login", LOGIN_BOUND)
    request = machine.start()
    while True:
        send(channel, sid, cid, request.encode_bhs(), request.data, bound)
        raw = next_pdu(channel, sid, cid, bound, deferred)
        try:
            outcome = machine.receive_bytes(raw)
        except LoginRejected as exc:
            if machine.md5_fallback_advised:  # chap.with_md5_fallback logs in once more, MD5 alone
                raise Md5FallbackAdvised(exc) from exc
            raise
        if isinstance(outcome, LoggedIn | Redirect):
            return outcome
        request = outcome


def logout_through_kernel(
    channel: Channel,
    sid: int,
    cid: int,
    deadline: Deadline,
    deferred: list[nl.Message] | None = None,
) -> LogoutResponse | None:
    """Close the session with a Logout Request sent through the kernel (it fills CmdSN/ExpStatSN/ITT and stops
    queueing commands). The response, or None when the target hung up instead (the session ends either way)."""
    bound = deadline.child("kernel logout", LOGOUT_BOUND)
    request = LogoutRequest(reason=LogoutReason.CLOSE_SESSION, cid=cid)
    send(channel, sid, cid, request.encode_bhs(), b"", bound)
    while True:
        try:
            raw = next_pdu(channel, sid, cid, bound, deferred)
        except NetworkError:
            return None
        pdu = decode_bytes(raw)
        if isinstance(pdu, LogoutResponse):
            return pdu
        if isinstance(pdu, Reject):
            raise RemoteProtocolError(f"session {sid}: target rejected our Logout (reason {pdu.reason:#04x})")
        # anything else (a NOP-In the kernel passed up, an async message) is not the answer: keep waiting
