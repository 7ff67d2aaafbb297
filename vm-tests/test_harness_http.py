"""The static HTTP server: loopback only, serves the directory, records what was asked for, stops cleanly."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from harness.http import StaticServer


def test_serves_files_on_loopback_and_records_requests(tmp_path):
    (tmp_path / "vmlinuz").write_bytes(b"kernel-bytes")
    with StaticServer(tmp_path) as http:
        assert http.guest_url("vmlinuz") == f"http://10.0.2.2:{http.port}/vmlinuz"
        with urllib.request.urlopen(f"http://127.0.0.1:{http.port}/vmlinuz", timeout=5) as reply:
            assert reply.read() == b"kernel-bytes"
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{http.port}/missing", timeout=5)
        assert http.requests[0] == "/vmlinuz" and "/missing" in http.requests
        port = http.port
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/vmlinuz", timeout=2)


@pytest.mark.parametrize("host", ["0.0.0.0", "", "::"])
def test_refuses_wildcard_addresses(tmp_path, host):
    with pytest.raises(ValueError, match="wildcard"):
        StaticServer(tmp_path, host=host)
