"""Summaries of timing samples and the plain-text tables the benchmarks print."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    """Milliseconds: the median, the 90th percentile, the extremes, and how many samples made them."""

    median: float
    p90: float
    minimum: float
    maximum: float
    count: int

    @classmethod
    def of_seconds(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            raise ValueError("no samples to summarise")
        ms = sorted(s * 1000.0 for s in samples)
        # Nearest-rank percentile: with few runs it reports a sample that happened, not an interpolation.
        rank = max(1, -(-9 * len(ms) // 10))
        return cls(statistics.median(ms), ms[rank - 1], ms[0], ms[-1], len(ms))

    def cells(self) -> tuple[str, str, str, str]:
        return tuple(f"{v:.1f}" for v in (self.median, self.p90, self.minimum, self.maximum))  # type: ignore[return-value]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; numbers right-aligned, text left-aligned."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        cells = []
        for cell, width in zip(row, widths, strict=True):
            numeric = cell.replace(".", "", 1).replace("x", "", 1).isdigit()
            cells.append(cell.rjust(width) if numeric else cell.ljust(width))
        return "  ".join(cells).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def ratio(ours: Summary, stock: Summary) -> str:
    """ours/stock of the medians: below 1 means pyiscsi is faster."""
    return f"{ours.median / stock.median:.2f}x" if stock.median > 0 else "n/a"


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile `q` (0 < q <= 100) of the samples, in their own unit: always a sample that happened."""
    if not samples:
        raise ValueError("no samples")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} outside (0, 100]")
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered) / 100 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]
