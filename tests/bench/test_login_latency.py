"""bench.login_latency and `python -m bench`: the benchmark runs end to end and prints every row (no timing asserts)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench import __main__ as bench_main
from bench import login_latency
from bench.stats import Summary
from tests.support import iscsiadm
from tests.support.cli import ROOT
from tests.support.tgtd import unavailable_reason


def test_registry_names_modules_with_run_and_runs() -> None:
    import importlib

    assert set(bench_main.BENCHMARKS) >= {"login", "net"}
    for module_name, summary in bench_main.BENCHMARKS.values():
        module = importlib.import_module(module_name)
        assert callable(module.run)
        assert isinstance(module.RUNS, int)
        assert summary


@pytest.mark.parametrize(("argv", "message"), [(["nosuch"], "unknown benchmark nosuch"), (["--runs", "0"], "--runs")])
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        bench_main.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_report_rows_and_ratios() -> None:
    results = {
        "ours: a": Summary(5.0, 6.0, 4.0, 7.0, 3),
        "stock: b": Summary(20.0, 21.0, 19.0, 22.0, 3),
        "baseline c": Summary(1.0, 1.0, 1.0, 1.0, 3),
    }
    lines = login_latency.report(results).splitlines()
    assert lines[0].split() == ["measurement", "(ms)", "median", "p90", "min", "max", "ours/stock"]
    assert lines[2].split() == ["ours:", "a", "5.0", "6.0", "4.0", "7.0", "0.25x"]
    assert lines[3].split() == ["stock:", "b", "20.0", "21.0", "19.0", "22.0"]
    assert lines[4].split() == ["baseline", "c", "1.0", "1.0", "1.0", "1.0"]
    assert "3 samples each" in lines[-1]


@pytest.mark.tgt
def test_make_bench_login_runs_end_to_end() -> None:
    for reason in (unavailable_reason(), iscsiadm.unavailable_reason()):
        if reason:
            pytest.skip(reason)
    result = subprocess.run(
        [sys.executable, "-m", "bench", "login", "--runs", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for row in (
        "ours: client.login",
        "ours: client.discover",
        "ours: `pyiscsi discover`",
        "stock: `iscsiadm -m discovery -t st`",
        "stock wrapper alone",
        "python start-up alone",
    ):
        assert row in result.stdout
    assert "1 sample each" in result.stdout
    assert "x\n" in result.stdout  # a ratio was printed
