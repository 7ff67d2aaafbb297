"""A tiny threaded static HTTP server on 127.0.0.1 and a free port (the guest reaches it as 10.0.2.2:PORT)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GUEST_HOST = "10.0.2.2"  # the host's loopback as QEMU user networking shows it to the guest


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]


class StaticServer:
    """Serve one directory read-only; a context manager, so the thread and socket always go."""

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        if host in ("0.0.0.0", "", "::"):
            raise ValueError(f"StaticServer: refusing to bind a wildcard address ({host!r})")
        handler = functools.partial(_QuietHandler, directory=str(root))
        self._server = ThreadingHTTPServer((host, 0), handler)
        self._server.daemon_threads = True
        self._server.requests = []  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, name="harness-http", daemon=True)
        self.root = root

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def requests(self) -> list[str]:
        """Paths asked for so far (for tests: did the guest fetch the kernel?)."""
        return list(self._server.requests)  # type: ignore[attr-defined]

    def guest_url(self, name: str) -> str:
        return f"http://{GUEST_HOST}:{self.port}/{name}"

    def __enter__(self) -> StaticServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
