"""Fixtures for the namespace tests: a client and a server namespace joined by veth, removed even on failure."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import netns

_REASON = None


def _skip_reason() -> str | None:
    global _REASON
    if _REASON is None:
        _REASON = netns.can_make_namespaces() or ""
    return _REASON or None


@pytest.fixture
def ns_pair() -> Iterator[tuple[netns.Namespace, netns.Namespace]]:
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    with netns.namespace("pyic") as client, netns.namespace("pyis") as server:
        yield client, server


@pytest.fixture
def workdir() -> Iterator[str]:
    """Scratch space for the servers a test starts in its namespaces (configs, leases, pid files)."""
    with tempfile.TemporaryDirectory(prefix="pyiscsi-net-") as d:
        yield d


@pytest.fixture
def linked(ns_pair: tuple[netns.Namespace, netns.Namespace]) -> tuple[netns.Namespace, netns.Namespace]:
    """Client c0 <-> server s0 (up, 10.9.0.1/24 and 2001:db8:9::1/64)."""
    client, server = ns_pair
    netns.veth(client, "c0", server, "s0")
    server.ip("addr", "add", "10.9.0.1/24", "dev", "s0")
    server.ip("-6", "addr", "add", "2001:db8:9::1/64", "dev", "s0", "nodad")
    return client, server
