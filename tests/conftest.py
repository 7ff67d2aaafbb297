"""Shared fixtures. The repository root goes on sys.path so tests import helpers as `tests.support.*`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.tgtd import Tgtd, unavailable_reason  # noqa: E402


@pytest.fixture
def tgtd() -> Iterator[Tgtd]:
    """A private, running tgtd on 127.0.0.1 (and [::1]) with no targets yet; killed and cleaned up afterwards."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Tgtd(ipv6=_ipv6()) as server:
        yield server


def _ipv6() -> bool:
    from tests.support.tgtd import ipv6_loopback_available

    return ipv6_loopback_available()
