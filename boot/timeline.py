"""Boot milestones with the guest's uptime, on the console and in the kernel log.

Each milestone is one line `PYISCSI-MARK <name> <uptime> [detail]`: people read it on the console, the VM
harness and `make bench` parse it from the serial log. Uptime (not wall time) because that is what a boot is
measured in and what the kernel log's timestamps use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from boot.console import to_kmsg

MARK = "PYISCSI-MARK"
UPTIME_PATH = Path("/proc/uptime")
STAT_PATH = Path("/proc/self/stat")


def uptime(path: Path = UPTIME_PATH) -> float | None:
    try:
        return float(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_start(stat: Path = STAT_PATH, ticks_per_second: int | None = None) -> float | None:
    """Uptime at which this process was started (field 22 of /proc/self/stat), before the interpreter ran.

    With the first mark it splits "/init to pyiscsi" into the init system's part and Python's start-up.
    """
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime: field 22 overall, the 20th after the command's closing parenthesis
        per_second = os.sysconf("SC_CLK_TCK") if ticks_per_second is None else ticks_per_second
    except (OSError, ValueError, IndexError):
        return None
    return ticks / per_second if per_second > 0 else None


def format_mark(name: str, seconds: float | None, detail: str = "") -> str:
    if not name or any(c.isspace() for c in name):
        raise ValueError(f"milestone name must be one word, got {name!r}")
    when = "-" if seconds is None else f"{seconds:.3f}"
    text = " ".join(detail.split())
    return f"{MARK} {name} {when} {text}".rstrip()


def parse_mark(line: str) -> tuple[str, float | None, str] | None:
    """The (name, uptime, detail) of a milestone line, wherever it sits in a console line; None otherwise."""
    at = line.find(MARK + " ")
    if at < 0:
        return None
    parts = line[at + len(MARK) + 1 :].strip().split(" ", 2)
    if len(parts) < 2:
        return None
    try:
        when = None if parts[1] == "-" else float(parts[1])
    except ValueError:
        return None
    return parts[0], when, parts[2] if len(parts) > 2 else ""


class Timeline:
    """Writes milestones; `out` and `kmsg` are injectable so tests see exactly what a boot prints."""

    def __init__(
        self,
        out: Callable[[str], None] | None = None,
        kmsg: Callable[[str], object] | None = to_kmsg,
        clock: Callable[[], float | None] = uptime,
    ) -> None:
        self._out = out or (lambda line: print(line, file=sys.stderr, flush=True))
        self._kmsg = kmsg
        self._clock = clock
        self.marks: list[tuple[str, float | None, str]] = []

    def mark(self, name: str, detail: str = "", at: float | None = None) -> None:
        """Write milestone `name`, stamped now or, with `at`, at that earlier uptime."""
        when = self._clock() if at is None else at
        line = format_mark(name, when, detail)
        self.marks.append((name, when, " ".join(detail.split())))
        self._out(line)
        if self._kmsg is not None:
            self._kmsg(line)
