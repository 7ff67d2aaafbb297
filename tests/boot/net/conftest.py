"""Fixtures for the namespace tests: a client and a server namespace joined by veth, removed even on failure."""

from __future__ import annotations

import sys
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
