"""bench.stats: the summary numbers and the table layout the benchmarks print."""

from __future__ import annotations

import pytest

from bench.stats import Summary, ratio, table


@pytest.mark.parametrize(
    ("seconds", "median", "p90", "minimum", "maximum"),
    [
        ([0.001], 1.0, 1.0, 1.0, 1.0),
        ([0.002, 0.001], 1.5, 2.0, 1.0, 2.0),
        ([0.001 * n for n in range(1, 11)], 5.5, 9.0, 1.0, 10.0),  # nearest rank: the 9th of 10
        ([0.001 * n for n in range(20, 0, -1)], 10.5, 18.0, 1.0, 20.0),  # order of samples does not matter
        ([0.005] * 3, 5.0, 5.0, 5.0, 5.0),
    ],
)
def test_summary(seconds: list[float], median: float, p90: float, minimum: float, maximum: float) -> None:
    summary = Summary.of_seconds(seconds)
    assert (summary.median, summary.p90, summary.minimum, summary.maximum) == pytest.approx(
        (median, p90, minimum, maximum)
    )
    assert summary.count == len(seconds)


def test_summary_of_nothing() -> None:
    with pytest.raises(ValueError, match="no samples"):
        Summary.of_seconds([])


def test_ratio_and_cells() -> None:
    ours, stock = Summary.of_seconds([0.010]), Summary.of_seconds([0.040])
    assert ratio(ours, stock) == "0.25x"
    assert ratio(ours, Summary(0.0, 0.0, 0.0, 0.0, 1)) == "n/a"
    assert ours.cells() == ("10.0", "10.0", "10.0", "10.0")


def test_table_aligns_text_left_and_numbers_right() -> None:
    text = table(["name", "ms"], [["short", "1.5"], ["a longer name", "123.0"], ["ratio", "0.25x"]])
    assert text.splitlines() == [
        "name           ms",
        "-------------  -----",
        "short            1.5",
        "a longer name  123.0",
        "ratio          0.25x",
    ]
