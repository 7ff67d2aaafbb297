"""The suite-wide CI rule (conftest.py at the repository root): a skip fails under CI=true unless it is a host limit."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT_CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

SUITE = """
import pytest

def test_missing_tool():
    pytest.skip("tgtd is not installed (Debian: tgt)")

def test_host_kernel():
    pytest.skip("this kernel cannot make VLAN links (8021q): Error: Unknown device type.")

@pytest.mark.skipif(True, reason="no ::1")
def test_marked():
    pass

def test_runs():
    assert True
"""


@pytest.mark.parametrize(
    ("ci", "outcomes"),
    [
        ("true", {"passed": 1, "failed": 1, "errors": 1, "skipped": 1}),  # a skipif mark fails in setup
        ("", {"passed": 1, "failed": 0, "errors": 0, "skipped": 3}),
        ("false", {"passed": 1, "failed": 0, "errors": 0, "skipped": 3}),
    ],
)
def test_skips_fail_in_ci_unless_a_host_limit(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcomes: dict[str, int]
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makeconftest(ROOT_CONFTEST.read_text())
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(**outcomes)
    if outcomes["failed"]:
        result.stdout.fnmatch_lines(["*CI=true: a skip is a failure here*tgtd is not installed*"])
