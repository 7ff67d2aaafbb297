"""The thin socket driver: TCP to a portal, every byte moved under a named Deadline.

It knows nothing of iSCSI beyond "read exactly this many bytes": the PDU reader says how many bytes it still
needs and the driver never asks the kernel for more, so after login no byte meant for the kernel's iscsi_tcp
sits in a Python buffer. `assert_drained()` checks that before the fd is handed over.

Errors: refused / reset / unreachable / closed -> NetworkError naming the portal; a bound that runs out ->
WaitTimeout naming the deadline (the caller names them 'connect', 'login', 'read', ...).
"""

from __future__ import annotations

import _socket
import errno
import os

from initiator.deadline import Deadline
from initiator.errors import NetworkError, RemoteProtocolError
from initiator.framing import PduReader, frame
from initiator.pdu import Pdu
from initiator.portal import Portal

# Sockets come from `_socket`, the C module under the stdlib's `socket`: that module wraps its constants in
# IntEnums and imports selectors when it is imported, a millisecond and a half of every by-hand `pyiscsi
# discover` (with enum itself), for names and `with` support this driver never uses. A `_socket.socket` has
# every method used here (and the fileno the kernel takes); what `socket` adds is not relied upon.

_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset by the target",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
    errno.EHOSTDOWN: "host down",
    errno.ENETDOWN: "network down",
    errno.EPIPE: "connection closed by the target",
    errno.ETIMEDOUT: "connection timed out (TCP)",
    errno.EADDRNOTAVAIL: "address not available",
}


def _network_error(portal: Portal, action: str, exc: OSError) -> NetworkError:
    reason = _REASONS.get(exc.errno or 0) or exc.strerror or os.strerror(exc.errno or 0) or str(exc)
    return NetworkError(f"portal {portal}: {action}: {reason}")


def _resolve(portal: Portal) -> list[tuple[int, tuple]]:
    numeric = _is_numeric(portal.address)
    flags = _socket.AI_NUMERICHOST if numeric else 0
    # a numeric address goes as bytes: a str host is run through the IDNA codec, whose import (encodings.idna,
    # stringprep) is a millisecond of every by-hand `pyiscsi discover`
    host: str | bytes = portal.address.encode() if numeric and portal.address.isascii() else portal.address
    try:
        infos = _socket.getaddrinfo(host, portal.port, type=_socket.SOCK_STREAM, flags=flags)
    except _socket.gaierror as exc:
        raise NetworkError(f"portal {portal}: cannot resolve {portal.address!r}: {exc.strerror}") from None
    return [(family, address) for family, _, _, _, address in infos]


def _is_numeric(address: str) -> bool:
    try:
        _socket.inet_pton(_socket.AF_INET6 if ":" in address else _socket.AF_INET, address.partition("%")[0])
    except OSError:
        return False
    return True


class Transport:
    """A connected TCP socket to one portal. Not thread-safe; one PDU exchange at a time."""

    def __init__(self, sock: _socket.socket, portal: Portal) -> None:
        self._sock: _socket.socket | None = sock
        self.portal = portal

    @classmethod
    def connect(cls, portal: Portal, deadline: Deadline) -> Transport:
        """Connect to the first of the portal's addresses that answers within `deadline`."""
        last: OSError | None = None
        for family, address in _resolve(portal):
            remaining = deadline.remaining()
            if remaining <= 0:
                raise deadline.timeout(f"connecting to {portal}")
            sock = _socket.socket(family, _socket.SOCK_STREAM)
            try:
                sock.settimeout(remaining)
                sock.connect(address)
            except TimeoutError:
                sock.close()
                raise deadline.timeout(f"connecting to {portal}") from None
            except OSError as exc:
                sock.close()
                last = exc
                continue
            sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
            sock.settimeout(None)
            return cls(sock, portal)
        if last is None:
            raise NetworkError(f"portal {portal}: no address to connect to")
        raise _network_error(portal, "connect", last)

    @property
    def sock(self) -> _socket.socket:
        if self._sock is None:
            raise NetworkError(f"portal {self.portal}: the connection is closed")
        return self._sock

    def _arm(self, deadline: Deadline, detail: str) -> None:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise deadline.timeout(detail)
        self.sock.settimeout(remaining)

    def _disarm(self) -> None:
        # Between operations the socket stays in blocking mode, as the kernel (and a MSG_DONTWAIT peek) expects it.
        if self._sock is not None:
            try:  # noqa: SIM105  (contextlib is no import of a by-hand discover)
                self._sock.settimeout(None)
            except OSError:
                pass  # closed under us: the next operation says so

    def send(self, data: bytes, deadline: Deadline) -> None:
        detail = f"sending to {self.portal}"
        self._arm(deadline, detail)
        try:
            self.sock.sendall(data)
        except TimeoutError:
            raise deadline.timeout(detail) from None
        except OSError as exc:
            raise _network_error(self.portal, "send", exc) from None
        finally:
            self._disarm()

    def recv_at_most(self, count: int, deadline: Deadline, what: str = "reading") -> bytes:
        """Between 1 and `count` bytes; never more than asked for. `what` goes into a timeout's message."""
        if count <= 0:
            raise ValueError(f"recv_at_most({count})")
        detail = f"{what} from {self.portal}"
        self._arm(deadline, detail)
        try:
            data = self.sock.recv(count)
        except TimeoutError:
            raise deadline.timeout(detail) from None
        except OSError as exc:
            raise _network_error(self.portal, "receive", exc) from None
        finally:
            self._disarm()
        if not data:
            raise NetworkError(f"portal {self.portal}: the target closed the connection")
        return data

    def recv_exactly(self, count: int, deadline: Deadline, what: str = "reading") -> bytes:
        parts: list[bytes] = []
        got = 0
        while got < count:
            part = self.recv_at_most(count - got, deadline, what)
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def assert_drained(self) -> None:
        """Refuse to go on when the target sent more than we read: those bytes would be lost at a handover."""
        sock = self.sock
        timeout = sock.gettimeout()
        # With a Python timeout set, recv() would wait for readability despite MSG_DONTWAIT: peek non-blocking.
        sock.settimeout(0.0)
        try:
            pending = sock.recv(1, _socket.MSG_PEEK | _socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError as exc:
            raise _network_error(self.portal, "receive", exc) from None
        finally:
            sock.settimeout(timeout)
        if not pending:
            raise NetworkError(f"portal {self.portal}: the target closed the connection")
        raise RemoteProtocolError(f"portal {self.portal}: the target sent bytes beyond the last PDU")

    def detach(self) -> _socket.socket:
        """Give up the socket (blocking mode again, as the kernel expects) to a new owner; this Transport is done."""
        sock = self.sock
        self.assert_drained()
        sock.settimeout(None)
        self._sock = None
        return sock

    def close(self, abort: bool = False) -> None:
        """Close; `abort` resets the connection (linger 0) instead of a graceful FIN, as recovery wants."""
        sock, self._sock = self._sock, None
        if sock is None:
            return
        if abort:
            import struct  # recovery's abort only: no import of a by-hand discover

            try:  # noqa: SIM105  (contextlib is no import of a by-hand discover)
                sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # already reset or closed by the peer: closing is all that is left
        sock.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PduStream:
    """PDUs over a Transport: frames what we send (digests once negotiated) and reads exactly one PDU at a time,
    asking the socket only for the bytes the reader says the current PDU still needs."""

    def __init__(self, transport: Transport, reader: PduReader | None = None) -> None:
        self.transport = transport
        self.reader = reader if reader is not None else PduReader()
        self.header_digest = False
        self.data_digest = False
        self.max_send_data_segment: int | None = None
        self.activity = "waiting"  # what the caller is doing, for a timeout's message ("login", "SendTargets")

    @property
    def portal(self) -> Portal:
        return self.transport.portal

    def set_digests(self, *, header: bool, data: bool) -> None:
        self.header_digest = header
        self.data_digest = data
        self.reader.set_digests(header=header, data=data)

    def send(self, pdu: Pdu, deadline: Deadline) -> None:
        data = frame(pdu, self.header_digest, self.data_digest, self.max_send_data_segment)
        self.transport.send(data, deadline)

    def recv(self, deadline: Deadline) -> Pdu:
        while (need := self.reader.bytes_needed()) > 0:
            self.reader.feed(self.transport.recv_at_most(need, deadline, f"{self.activity}: waiting for a PDU"))
        pdu = self.reader.next_pdu()
        assert pdu is not None  # bytes_needed() was 0: a whole PDU is buffered
        return pdu

    def assert_drained(self) -> None:
        if self.reader.buffered:
            raise RemoteProtocolError(
                f"portal {self.portal}: {self.reader.buffered} bytes buffered beyond the last PDU"
            )
        self.transport.assert_drained()

    def close(self, abort: bool = False) -> None:
        self.transport.close(abort)
