"""Small socket tools for tests: a port nobody listens on, and a listener that accepts but never answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (bound, then released): connecting to it is refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def silent_listener(host: str = "127.0.0.1") -> Iterator[int]:
    """Yield the port of a listener that accepts TCP connections, holds them open and never sends a byte.

    The peer that stalls after the handshake: only a bounded read on the initiator's side gets it out.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.bind((host, 0))
    server.listen(16)
    server.settimeout(0.2)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)  # a login request fits the socket buffers: no need to read it

    thread = threading.Thread(target=serve, name="silent-listener", daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
        for conn in accepted:
            conn.close()
