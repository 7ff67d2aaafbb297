"""Shared fixtures. The repository root goes on sys.path so tests import helpers as `tests.support.*`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.tgtd import Tgtd, ipv6_loopback_available, unavailable_reason  # noqa: E402


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell in teardown whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def tgtd(request: pytest.FixtureRequest) -> Iterator[Tgtd]:
    """A private, running tgtd on 127.0.0.1 (and [::1]) with no targets yet; killed and cleaned up afterwards.

    When the test fails, the end of tgtd's log goes to the test's report (captured stderr).
    """
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Tgtd(ipv6=ipv6_loopback_available()) as server:
        yield server
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            print(f"--- tgtd {server.portal} log (tail) ---\n{server.log_tail(40)}", file=sys.stderr)
