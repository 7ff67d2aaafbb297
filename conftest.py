"""Suite-wide rule: in CI (`CI=true`) a skip is a failure, unless its cause is one the host cannot have.

`make deps` installs every tool the tests use (tgtd, qemu, dracut, shellcheck, iscsiadm, ...), so in CI a test
that skips for a missing tool means a broken install, and must not turn into a green run. The causes a host
cannot fix by installing a package are listed here, and in the README's "Skips" section.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ("pytester",)  # tests/test_ci_skips.py runs this file's rule in a throw-away suite

# Substrings of skip reasons that name a property of the host's kernel, not a missing package.
HOST_LIMITS: tuple[str, ...] = (
    "(8021q)",  # the host kernel cannot make VLAN links; the lab VM's kernel covers them (vm-tests/test_net_guest.py)
    "this kernel makes VLAN links",  # the other side of the same pair: where the host can, the namespace test runs
    "(bonding)",  # no bonding driver in the host kernel; vm-tests/test_boot_bond.py runs those tests in the lab VM
)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def allowed_skip(reason: str) -> bool:
    return any(limit in reason for limit in HOST_LIMITS)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if in_ci() and report.skipped and not hasattr(report, "wasxfail"):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not allowed_skip(reason):
            report.outcome = "failed"
            report.longrepr = f"CI=true: a skip is a failure here (make deps installs what it needs): {reason}"
    return report
