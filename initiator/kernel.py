"""The thin NETLINK_ISCSI driver: sockets around `initiator.iscsi_if`'s messages.

Two sockets, as the kernel facts advise: one for request/reply (unicast to us), one bound to multicast group 1
for events (connection errors, received PDUs, session lifecycle). Replies and events can interleave, so they are
never read from the same socket. Every read is bounded by a Deadline. Needs CAP_SYS_ADMIN in the initial network
namespace and the iscsi_tcp module loaded.

The few sysfs paths both the boot and the recovery read or write are here too: `scan_host` (iscsi_tcp does not
scan by itself), `session_dir` and `connection_dir` under /sys/class.
"""

from __future__ import annotations

import os
import select
import socket
from pathlib import Path

from initiator import iscsi_if as nl
from initiator.deadline import Deadline
from initiator.errors import NetworkError, RemoteProtocolError, WaitTimeout

SYSFS = Path("/sys")
TRANSPORT_HANDLE_PATH = SYSFS / "class" / "iscsi_transport" / "tcp" / "handle"
RECV_BUFFER = 1 << 18  # a received PDU event carries up to MaxRecvDataSegmentLength of data


class KernelError(NetworkError):
    """The kernel refused a NETLINK_ISCSI request (the message names the request and the errno)."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


def transport_handle(path: Path = TRANSPORT_HANDLE_PATH) -> int:
    try:
        return int(path.read_text().strip())
    except FileNotFoundError:
        raise KernelError(f"{path}: no iscsi_tcp transport (is the iscsi_tcp module loaded?)") from None
    except ValueError as exc:
        raise KernelError(f"{path}: not a number: {exc}") from None


def scan_host(host_no: int, sysfs: Path = SYSFS) -> None:
    """iscsi_tcp does not scan by itself: ask for every channel, target and LUN."""
    (sysfs / "class" / "scsi_host" / f"host{host_no}" / "scan").write_text("- - -")


def session_dir(sid: int, sysfs: Path = SYSFS) -> Path:
    """The kernel session's sysfs directory (`state`, `targetname`, ... and `device/` with its SCSI targets)."""
    return sysfs / "class" / "iscsi_session" / f"session{sid}"


def connection_dir(sid: int, cid: int, sysfs: Path = SYSFS) -> Path:
    """The kernel connection's sysfs directory (`exp_statsn`, `persistent_address`, ...)."""
    return sysfs / "class" / "iscsi_connection" / f"connection{sid}:{cid}"


def _errno_text(code: int) -> str:
    return f"{os.strerror(abs(code))} (errno {abs(code)})"


class NetlinkIscsi:
    """Requests with their replies on one socket; events on another, subscribed to group 1."""

    def __init__(self, handle: int | None = None) -> None:
        self.handle = transport_handle() if handle is None else handle
        self._requests = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ISCSI)
        self._requests.bind((0, 0))
        self._events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nl.NETLINK_ISCSI)
        self._events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        self._events.bind((0, 1 << (nl.ISCSI_NL_GRP_ISCSID - 1)))
        self._seq = 0
        self._pending_events: list[nl.Message] = []

    def close(self) -> None:
        self._requests.close()
        self._events.close()

    def __enter__(self) -> NetlinkIscsi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, req: nl.Request, deadline: Deadline) -> nl.Message:
        """Send one request and return its reply; a refusal raises KernelError naming the request."""
        self._seq += 1
        self._requests.send(req.encode(seq=self._seq, pid=0))
        while True:
            for msg in self._read(self._requests, deadline, f"netlink reply to {req.type.name}"):
                if msg.type == nl.UEvent.IF_ERROR or msg.type == nl.NLMSG_ERROR:
                    if msg.type == nl.NLMSG_ERROR and msg.retcode == 0:
                        continue  # a plain ACK
                    code = msg.iferror or msg.retcode
                    raise KernelError(f"kernel refused {req.type.name}: {_errno_text(code)}", abs(code))
                if msg.type == req.type:
                    if req.type in (nl.UEvent.BIND_CONN, nl.UEvent.START_CONN, nl.UEvent.SEND_PDU) and msg.retcode:
                        raise KernelError(f"kernel refused {req.type.name}: retcode {msg.retcode}")
                    if msg.iferror:
                        text = _errno_text(msg.iferror)
                        raise KernelError(f"kernel refused {req.type.name}: {text}", abs(msg.iferror))
                    return msg

    def next_event(self, deadline: Deadline) -> nl.Message:
        """The next multicast event (connection error, received PDU, session created/destroyed...)."""
        while not self._pending_events:
            self._pending_events.extend(self._read(self._events, deadline, "netlink event"))
        return self._pending_events.pop(0)

    def events_fileno(self) -> int:
        return self._events.fileno()

    def _read(self, sock: socket.socket, deadline: Deadline, what: str) -> list[nl.Message]:
        remaining = deadline.remaining()
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            raise WaitTimeout(deadline.tightest().name, deadline.tightest().bound, f"no {what}")
        data = sock.recv(RECV_BUFFER)
        try:
            return nl.decode_messages(data)
        except RemoteProtocolError as exc:
            raise RemoteProtocolError(f"{what}: {exc}") from None
