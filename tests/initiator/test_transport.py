"""The socket driver against real loopback peers (threads on 127.0.0.1 / ::1), timeouts with real short bounds."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from initiator import pdu as P
from initiator.deadline import Deadline, FakeClock
from initiator.errors import ExitStatus, NetworkError, RemoteProtocolError, WaitTimeout
from initiator.framing import frame
from initiator.portal import Portal
from initiator.transport import PduStream, Transport
from tests.support.sockets import free_port, silent_listener


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@contextlib.contextmanager
def peer(script: Callable[[socket.socket], None], host: str = "127.0.0.1") -> Iterator[Portal]:
    """A one-connection server that runs `script` on the accepted socket."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family)
    server.bind((host, 0))
    server.listen(1)
    server.settimeout(5)
    done = threading.Event()

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            script(conn)
            done.wait(5)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Portal(host, server.getsockname()[1])
    finally:
        done.set()
        thread.join(5)
        server.close()


def _deadline(name: str = "read", bound: float = 5.0) -> Deadline:
    return Deadline(name, bound)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", pytest.param("::1", marks=pytest.mark.skipif(not _has_ipv6(), reason="no ::1"))]
)
def test_exact_reads_leave_the_rest_in_the_kernel(host: str) -> None:
    def script(conn: socket.socket) -> None:
        conn.sendall(b"A" * 30)
        conn.sendall(b"B" * 30)

    with peer(script, host) as portal, Transport.connect(portal, _deadline("connect")) as t:
        assert t.recv_exactly(48, _deadline()) == b"A" * 30 + b"B" * 18
        with pytest.raises(RemoteProtocolError, match="beyond the last PDU"):
            t.assert_drained()
        assert t.recv_exactly(12, _deadline()) == b"B" * 12
        t.assert_drained()


def test_recv_at_most_never_returns_more() -> None:
    with peer(lambda c: c.sendall(b"x" * 100)) as portal, Transport.connect(portal, _deadline("connect")) as t:
        got = t.recv_at_most(10, _deadline())
        assert 1 <= len(got) <= 10


def test_send_reaches_peer() -> None:
    received: list[bytes] = []

    def script(conn: socket.socket) -> None:
        conn.settimeout(5)
        received.append(conn.recv(100))
        conn.sendall(b"ok")

    with peer(script) as portal, Transport.connect(portal, _deadline("connect")) as t:
        t.send(b"hello", _deadline())
        assert t.recv_exactly(2, _deadline()) == b"ok"
    assert received == [b"hello"]


def test_refused_is_a_network_error_naming_the_portal() -> None:
    portal = Portal("127.0.0.1", free_port())
    with pytest.raises(NetworkError, match=f"portal 127.0.0.1:{portal.port}: connect: connection refused") as info:
        Transport.connect(portal, _deadline("connect"))
    assert info.value.exit_status == ExitStatus.NETWORK


def test_unresolvable_name() -> None:
    with pytest.raises(NetworkError, match="cannot resolve"):
        Transport.connect(Portal("no-such-host.invalid", 3260), _deadline("connect"))


def test_expired_connect_deadline_names_connect() -> None:
    clock = FakeClock()
    deadline = Deadline("connect", 10, clock=clock)
    clock.advance(11)
    with pytest.raises(WaitTimeout, match="wait 'connect' ran out after 10s") as info:
        Transport.connect(Portal("127.0.0.1", free_port()), deadline)
    assert info.value.exit_status == ExitStatus.TIMEOUT


def test_read_timeout_names_the_tightest_deadline() -> None:
    with silent_listener() as port, Transport.connect(Portal("127.0.0.1", port), _deadline("connect")) as t:
        with pytest.raises(WaitTimeout, match=r"wait 'read' ran out after 0.2s: reading from 127\.0\.0\.1") as info:
            t.recv_exactly(48, Deadline("read", 0.2))
        assert info.value.wait == "read"
        overall = Deadline("probe", 0.2)
        with pytest.raises(WaitTimeout, match="wait 'probe'"):
            t.recv_exactly(48, overall.child("read", 30))


def test_peer_close_mid_pdu() -> None:
    with (
        peer(lambda c: (c.sendall(b"abc"), c.shutdown(socket.SHUT_WR))) as portal,
        Transport.connect(portal, _deadline("connect")) as t,
        pytest.raises(NetworkError, match="closed the connection"),
    ):
        t.recv_exactly(48, _deadline())


def test_peer_reset() -> None:
    def script(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()

    # The reset may even beat connect() to the finish on loopback: either way a NetworkError naming the portal.
    with (
        peer(script) as portal,
        pytest.raises(NetworkError, match=rf"{re.escape(str(portal))}: .*(reset|closed)"),
        Transport.connect(portal, _deadline("connect")) as t,
    ):
        t.recv_exactly(48, _deadline())


def test_detach_hands_over_a_blocking_socket_and_closes_the_transport() -> None:
    with peer(lambda c: None) as portal:
        t = Transport.connect(portal, _deadline("connect"))
        sock = t.detach()
        try:
            assert sock.gettimeout() is None
            with pytest.raises(NetworkError, match="closed"):
                t.send(b"x", _deadline())
        finally:
            sock.close()
        t.close()


def test_pdu_stream_reads_one_pdu_at_a_time() -> None:
    first = P.NopIn(itt=1, statsn=5, data=b"abcde")  # padded to 8 bytes on the wire
    second = P.NopIn(itt=2, statsn=6)
    wire = frame(first) + frame(second)

    def script(conn: socket.socket) -> None:
        conn.sendall(wire)

    with peer(script) as portal, Transport.connect(portal, _deadline("connect")) as t:
        stream = PduStream(t)
        assert stream.recv(_deadline()) == first
        with pytest.raises(RemoteProtocolError, match="beyond the last PDU"):
            stream.assert_drained()
        assert stream.recv(_deadline()) == second
        stream.assert_drained()


def test_pdu_stream_digests_both_ways() -> None:
    received: list[bytes] = []
    reply = P.NopIn(itt=9, statsn=1, data=b"xyz")

    def script(conn: socket.socket) -> None:
        conn.settimeout(5)
        received.append(conn.recv(1000))
        conn.sendall(frame(reply, True, True))

    with peer(script) as portal, Transport.connect(portal, _deadline("connect")) as t:
        stream = PduStream(t)
        stream.set_digests(header=True, data=True)
        out = P.NopOut(itt=9, data=b"hello")
        stream.send(out, _deadline())
        assert stream.recv(_deadline()) == reply
    assert received == [frame(out, True, True)]


def test_socket_is_blocking_between_operations_so_a_handover_peek_cannot_wait() -> None:
    from initiator.handoff import assert_no_unread_bytes

    with peer(lambda c: c.sendall(b"x" * 48)) as portal, Transport.connect(portal, _deadline("connect")) as t:
        assert t.sock.gettimeout() is None
        t.recv_exactly(48, _deadline())
        assert t.sock.gettimeout() is None
        started = time.monotonic()
        assert_no_unread_bytes(t.sock)  # returns at once: nothing unread, and no timeout to wait out
        assert time.monotonic() - started < 0.5
