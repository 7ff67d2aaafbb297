"""bench.storm: back-off, retry bound, percentiles and the table; a tiny real storm against tgtd (no timing asserts)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from bench import procs, storm
from bench.stats import percentile
from initiator.errors import IscsiError
from tests.support.tgtd import LunSpec, Tgtd, unavailable_reason


def test_backoff_is_jittered_capped_and_grows() -> None:
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(storm.BACKOFF_CAP, storm.BACKOFF_BASE * 2 ** (attempt - 1))
        waits = [storm.backoff(attempt, rng) for _ in range(50)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1  # jitter: not one fixed pause


def test_retry_until_success_counts_tries() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def attempt() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise IscsiError("target busy")

    import time

    outcome = storm.with_retry(attempt, time.monotonic(), random.Random(0), sleep=pauses.append)
    assert outcome.seconds is not None and outcome.tries == 3 and len(pauses) == 2


def test_retry_gives_up_after_attempts() -> None:
    import time

    def attempt() -> None:
        raise ConnectionResetError("reset")

    outcome = storm.with_retry(attempt, time.monotonic(), random.Random(0), sleep=lambda s: None)
    assert outcome.seconds is None and outcome.tries == storm.ATTEMPTS and "reset" in outcome.error


def test_retry_never_sleeps_past_the_storm_bound() -> None:
    import time

    def attempt() -> None:
        raise OSError("refused")

    outcome = storm.with_retry(attempt, time.monotonic() - storm.STORM_BOUND, random.Random(0), sleep=lambda s: None)
    assert outcome.seconds is None and outcome.tries == 1


@pytest.mark.parametrize(("q", "expected"), [(50, 50.0), (99, 99.0), (100, 100.0), (1, 1.0)])
def test_percentile_nearest_rank(q: float, expected: float) -> None:
    assert percentile([float(v) for v in range(100, 0, -1)], q) == expected


def test_percentile_small_samples_and_errors() -> None:
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0], 50) == 1.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 0)


def test_report_ratios_against_the_stock_storm_of_the_same_size() -> None:
    ok = storm.Outcome
    results = [
        storm.StormResult("ours: a", 2, (ok(0.010, 1), ok(0.020, 2)), 0.02),
        storm.StormResult("stock: b", 2, (ok(0.100, 1), ok(0.200, 1)), 0.2),
        storm.StormResult("ours: a", 3, (ok(0.010, 1), ok(None, 6, "IscsiError: busy"), ok(0.5, 1)), 0.5),
    ]
    text = storm.report(results)
    lines = text.splitlines()
    assert "0.10x / 0.10x" in lines[2] and "2/2" in lines[2] and lines[2].split()[4] == "1"
    assert "2/3" in lines[4] and "x /" not in lines[4]  # no stock storm of size 3
    assert "gave up: IscsiError: busy" in text


def test_with_several_rounds_each_storm_is_compared_with_its_own_rounds_stock_storm() -> None:
    ok = storm.Outcome

    def result(name: str, seconds: float) -> storm.StormResult:
        return storm.StormResult(name, 1, (ok(seconds, 1),), seconds)

    rounds = [result("ours: a", 0.2), result("stock: b", 0.1), result("ours: a", 0.9), result("stock: b", 0.3)]
    lines = storm.report(rounds).splitlines()
    assert "2.00x / 2.00x" in lines[2] and "3.00x / 3.00x" in lines[4]
    late = storm.report([result("stock: b", 0.1), result("ours: a", 0.5)]).splitlines()
    assert "5.00x / 5.00x" in late[3]  # no stock storm after it: the one before


def test_process_storms_run_the_frozen_runtime_when_there_is_a_tree_then_the_checkout_and_iscsiadm() -> None:
    env = {"PYTHONPYCACHEPREFIX": "/tmp/x"}
    names = [s.name for s in storm.process_storms("127.0.0.1:3260", None, env)]
    assert names == [
        "ours: checkout `python -m boot discover` (processes)",
        "stock: `iscsiadm -m discovery -t st` (processes)",
    ]
    frozen, checkout, stock = storm.process_storms("127.0.0.1:3260", Path("/t"), env)
    assert frozen.argv(7)[:2] == ["chroot", "/t"] and frozen.argv(7)[-4:] == [
        "discover", "127.0.0.1:3260", "--initiator", "iqn.2026-11.org.pyiscsi:storm-0007"
    ]  # fmt: skip
    assert checkout.argv(7)[1:4] == ["-m", "boot", "discover"] and checkout.argv(7)[-1].endswith("storm-0007")
    assert checkout.env is env and frozen.env is None and stock.env is None
    assert "iscsiadm" in " ".join(stock.argv(7)) and stock.argv(7)[-2].endswith("storm-0007")


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_tiny_real_process_storm_of_the_checkout(tmp_path: Path) -> None:
    with Tgtd() as tgt, procs.checkout_env() as env:
        tgt.add_target(storm.TARGET, [LunSpec(1 << 20)])
        _, checkout, _ = storm.process_storms(tgt.portal, tmp_path, env)
        result = checkout.run(2)
    assert result.successes == 2 and result.retries == 0


@pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))
def test_tiny_real_login_storm() -> None:
    with Tgtd() as tgt:
        tgt.add_target(storm.TARGET, [LunSpec(1 << 20)])
        result = storm._login_storm(tgt.portal, 3)
        discovered = storm._discover_storm(tgt.portal, 2)
    assert result.successes == 3 and len(result.times()) == 3
    assert discovered.successes == 2
