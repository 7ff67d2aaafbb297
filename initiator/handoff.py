"""Hand a logged-in TCP connection to the kernel's iscsi_tcp over NETLINK_ISCSI.

The mapping from negotiated login keys to kernel parameters is pure (`kernel_params`), so tests check it
without a kernel; `hand_over` is the thin driver: create session and connection, bind the socket's fd, set
every parameter, start. The kernel numbers commands from `initial_cmdsn`, which must equal the CmdSN every
Login Request of this login carried, and the socket must hold no unread byte when it is bound.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING

from initiator import iscsi_if as nl
from initiator.deadline import Deadline
from initiator.errors import NetworkError, RemoteProtocolError
from initiator.held_session import HeldSession
from initiator.kernel import KernelError, NetlinkIscsi
from initiator.record import record

if TYPE_CHECKING:
    from initiator.login import LoginResult


@record
class HandoffParams:
    """What the kernel (and, through sysfs, the real root's iscsid) must know about one logged-in connection: the
    session, and what its login settled beyond it."""

    session: HeldSession
    initial_cmdsn: int
    exp_statsn: int
    negotiated: Mapping[str, str]  # RFC 7143 key -> value, as the login settled them
    target_max_recv: int  # the target's declared MaxRecvDataSegmentLength: our transmit limit
    recovery_timeout: int = 120
    noop_interval: int = 5
    noop_timeout: int = 5

    @classmethod
    def from_login(cls, result: LoginResult, session: HeldSession, *, recovery_timeout: float) -> HandoffParams:
        """The parameters of `session` after `result`, the login that opened (or re-opened) it: the first login
        and every re-login through the kernel build them here."""
        return cls(
            session=session,
            initial_cmdsn=result.initial_cmdsn,
            exp_statsn=result.exp_statsn,
            negotiated=result.negotiated_text(),
            target_max_recv=result.target_max_recv_data_segment_length,
            recovery_timeout=int(recovery_timeout),
        )


@record
class KernelSession:
    sid: int
    cid: int
    host_no: int
    unsupported: tuple[str, ...] = ()  # optional parameters this kernel does not take (ENOSYS)


# Parameters a kernel may not implement (libiscsi answers ENOSYS): markers are gone from newer kernels, and
# 6.1's libiscsi keeps ISID and the Time2Wait/Retain values to itself. Any other refusal fails the handover.
OPTIONAL_PARAMS = frozenset(
    {
        nl.IscsiParam.IFMARKER_EN,
        nl.IscsiParam.OFMARKER_EN,
        nl.IscsiParam.DEF_TIME2WAIT,
        nl.IscsiParam.DEF_TIME2RETAIN,
        nl.IscsiParam.ISID,
    }
)


def _flag(value: str) -> str:
    return "1" if value.strip().lower() in ("yes", "crc32c") else "0"


def kernel_params(p: HandoffParams) -> list[tuple[nl.IscsiParam, str]]:
    """Every SET_PARAM for one connection. Values of `nl.SECRET_PARAMS` are revealed here: never log them."""
    n, s = p.negotiated, p.session
    P = nl.IscsiParam
    params: list[tuple[nl.IscsiParam, str]] = [
        (P.MAX_RECV_DLENGTH, n.get("MaxRecvDataSegmentLength", "8192")),
        (P.MAX_XMIT_DLENGTH, str(p.target_max_recv)),
        (P.HDRDGST_EN, _flag(n.get("HeaderDigest", "None"))),
        (P.DATADGST_EN, _flag(n.get("DataDigest", "None"))),
        (P.INITIAL_R2T_EN, _flag(n.get("InitialR2T", "Yes"))),
        (P.MAX_R2T, n.get("MaxOutstandingR2T", "1")),
        (P.IMM_DATA_EN, _flag(n.get("ImmediateData", "Yes"))),
        (P.FIRST_BURST, n.get("FirstBurstLength", "65536")),
        (P.MAX_BURST, n.get("MaxBurstLength", "262144")),
        (P.PDU_INORDER_EN, _flag(n.get("DataPDUInOrder", "Yes"))),
        (P.DATASEQ_INORDER_EN, _flag(n.get("DataSequenceInOrder", "Yes"))),
        (P.ERL, n.get("ErrorRecoveryLevel", "0")),
        (P.IFMARKER_EN, "0"),
        (P.OFMARKER_EN, "0"),
        (P.EXP_STATSN, str(p.exp_statsn)),
        (P.TARGET_NAME, s.target),
        (P.TPGT, str(s.tpgt)),
        (P.PERSISTENT_ADDRESS, s.portal.address),
        (P.PERSISTENT_PORT, str(s.portal.port)),
        (P.SESS_RECOVERY_TMO, str(p.recovery_timeout)),
        (P.DEF_TIME2WAIT, n.get("DefaultTime2Wait", "2")),
        (P.DEF_TIME2RETAIN, n.get("DefaultTime2Retain", "0")),
        (P.PING_TMO, str(p.noop_timeout)),
        (P.RECV_TMO, str(p.noop_interval)),
        (P.IFACE_NAME, s.iface),
        (P.INITIATOR_NAME, s.initiator_name),
        (P.ISID, s.isid.hex()),
    ]
    if n.get("TargetAlias"):
        params.append((P.TARGET_ALIAS, n["TargetAlias"]))
    creds = s.credentials
    if creds is not None:
        params += [(P.USERNAME, creds.chap.username), (P.PASSWORD, creds.chap.password.reveal())]
        if creds.reverse is not None:
            params += [(P.USERNAME_IN, creds.reverse.username), (P.PASSWORD_IN, creds.reverse.password.reveal())]
    return params


def assert_no_unread_bytes(sock: socket.socket) -> None:
    """A byte left unread would be lost to the kernel's receive path: refuse to bind then."""
    try:
        pending = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return
    if pending == b"":
        raise NetworkError("the target closed the connection before the handover")
    raise RemoteProtocolError("the target sent bytes after the final Login Response; the socket cannot be handed over")


def hand_over(netlink: NetlinkIscsi, sock: socket.socket, p: HandoffParams, deadline: Deadline) -> KernelSession:
    """Create the kernel session around the logged-in socket and start it. The socket's fd is the kernel's after
    this returns (iscsi_tcp holds its own reference); the caller may close its copy."""
    assert_no_unread_bytes(sock)
    h = netlink.handle
    created = netlink.request(nl.create_session(h, p.initial_cmdsn), deadline)
    sid, host_no = created.fields["sid"], created.fields["host_no"]
    conn = netlink.request(nl.create_conn(h, sid, 0), deadline)
    cid = conn.fields["cid"]
    netlink.request(nl.bind_conn(h, sid, cid, sock.fileno()), deadline)
    unsupported: list[str] = []
    for param, value in kernel_params(p):
        try:
            netlink.request(nl.set_param(h, sid, cid, param, value), deadline)
        except KernelError as exc:
            if exc.errno == errno.ENOSYS and param in OPTIONAL_PARAMS:
                unsupported.append(param.name)
                continue
            raise KernelError(f"{exc} (parameter {param.name})", exc.errno) from None
    netlink.request(nl.start_conn(h, sid, cid), deadline)
    return KernelSession(sid=sid, cid=cid, host_no=host_no, unsupported=tuple(unsupported))
