"""The guest's serial console, read line by line under a deadline, turned into a frozen result.

Guests announce progress with lines `PYISCSI-MARK <name> <uptime> [detail]` (uptime from /proc/uptime);
the kernel's own lines carry `[ seconds.micro]` stamps. Parsing is pure (`ConsoleParser.feed(line)`), so the
unit tests need no QEMU; `read_console` is the thin driver over a pipe.
"""

from __future__ import annotations

import enum
import io
import os
import re
import select
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from initiator.deadline import Deadline

MARK_RE = re.compile(r"PYISCSI-MARK (?P<name>[\w.:-]+) (?P<uptime>\d+\.\d+)(?: (?P<detail>.*))?$")
KERNEL_STAMP_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\]")
PANIC_RE = re.compile(r"Kernel panic - not syncing")
NO_BOOT_RE = re.compile(r"No bootable device")  # SeaBIOS gave up: nothing more will come
MAX_LINE = 64 * 1024  # a guest that never sends a newline must not make us hold unbounded memory


class ExitReason(enum.Enum):
    POWEROFF = "poweroff"  # QEMU exited by itself (guest poweroff or, with -no-reboot, reboot)
    PANIC = "panic"  # the kernel panicked, then QEMU exited
    TIMEOUT = "timeout"  # the deadline ran out first; QEMU was killed
    QEMU_FAILED = "qemu-failed"  # QEMU exited non-zero (bad option, missing file)
    STOPPED = "stopped"  # the marker the caller waited for arrived; the host stopped QEMU
    NO_BOOT = "no-boot"  # the firmware found nothing to boot; the host stopped QEMU


class ReadEnd(enum.Enum):
    EOF = "eof"
    DEADLINE = "deadline"
    MARKER = "marker"
    NO_BOOT = "no-boot"


@dataclass(frozen=True)
class Marker:
    name: str
    uptime: float
    detail: str = ""


@dataclass(frozen=True)
class ConsoleResult:
    """What a boot showed: markers in order, last kernel timestamp, why it ended, where the full log is."""

    reason: ExitReason
    markers: tuple[Marker, ...]
    log_path: Path
    last_lines: tuple[str, ...]
    kernel_uptime: float | None
    wall_seconds: float
    returncode: int | None = None

    def marker(self, name: str) -> Marker | None:
        """The first marker with this name."""
        return next((m for m in self.markers if m.name == name), None)

    def has(self, name: str) -> bool:
        return self.marker(name) is not None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def summary(self) -> str:
        tail = "\n  ".join(self.last_lines[-15:])
        return (
            f"{self.reason.value} after {self.wall_seconds:.1f}s wall; markers "
            f"{[m.name for m in self.markers]}; log {self.log_path}; last lines:\n  {tail}"
        )


@dataclass
class ConsoleParser:
    """Sans-I/O: feed it decoded lines, read markers and stamps off it."""

    keep: int = 40
    markers: list[Marker] = field(default_factory=list)
    kernel_uptime: float | None = None
    panicked: bool = False
    no_boot: bool = False
    last_lines: deque[str] = field(default_factory=deque)

    def feed(self, line: str) -> Marker | None:
        line = line.rstrip("\r\n").replace("\r", "")
        self.last_lines.append(line)
        while len(self.last_lines) > self.keep:
            self.last_lines.popleft()
        stamp = KERNEL_STAMP_RE.match(line)
        if stamp:
            self.kernel_uptime = float(stamp.group("secs"))
        if PANIC_RE.search(line):
            self.panicked = True
        if NO_BOOT_RE.search(line):
            self.no_boot = True
        found = MARK_RE.search(line)
        if not found:
            return None
        marker = Marker(found.group("name"), float(found.group("uptime")), (found.group("detail") or "").strip())
        self.markers.append(marker)
        return marker


def split_lines(pending: bytearray, chunk: bytes) -> list[str]:
    """Append `chunk`, return the complete lines and keep the rest; an over-long line is cut at MAX_LINE."""
    pending.extend(chunk)
    lines: list[str] = []
    while True:
        cut = pending.find(b"\n")
        if cut < 0 and len(pending) >= MAX_LINE:
            cut = MAX_LINE - 1
        if cut < 0:
            return lines
        lines.append(bytes(pending[: cut + 1]).decode("utf-8", errors="replace"))
        del pending[: cut + 1]


def read_console(
    stream: BinaryIO,
    log_path: Path,
    deadline: Deadline,
    stop_on: str | None = None,
    parser: ConsoleParser | None = None,
) -> tuple[ConsoleParser, ReadEnd]:
    """Copy `stream` to `log_path` until EOF, the deadline, or the marker `stop_on`, and say which."""
    parser = parser or ConsoleParser()
    try:
        fd: int | None = stream.fileno()
    except (OSError, io.UnsupportedOperation):  # an in-memory stream (tests): never blocks, no select needed
        fd = None
    pending = bytearray()
    with log_path.open("wb") as log:
        while True:
            left = deadline.remaining()
            if left <= 0:
                return parser, ReadEnd.DEADLINE
            if fd is not None:
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
            chunk = os.read(fd, 65536) if fd is not None else stream.read(65536)
            if not chunk:
                if pending:
                    parser.feed(bytes(pending).decode("utf-8", errors="replace"))
                return parser, ReadEnd.EOF
            log.write(chunk)
            log.flush()
            for line in split_lines(pending, chunk):
                marker = parser.feed(line)
                if stop_on is not None and marker is not None and marker.name == stop_on:
                    return parser, ReadEnd.MARKER
                if parser.no_boot:
                    return parser, ReadEnd.NO_BOOT


def finish(
    parser: ConsoleParser, log_path: Path, started: float, end: ReadEnd, returncode: int | None
) -> ConsoleResult:
    """Decide why the run ended from what the parser saw and how QEMU exited."""
    if end is ReadEnd.DEADLINE:
        reason = ExitReason.TIMEOUT
    elif end is ReadEnd.MARKER:
        reason = ExitReason.STOPPED
    elif end is ReadEnd.NO_BOOT:
        reason = ExitReason.NO_BOOT
    elif parser.panicked:
        reason = ExitReason.PANIC
    elif returncode not in (0, None):
        reason = ExitReason.QEMU_FAILED
    else:
        reason = ExitReason.POWEROFF
    return ConsoleResult(
        reason=reason,
        markers=tuple(parser.markers),
        log_path=log_path,
        last_lines=tuple(parser.last_lines),
        kernel_uptime=parser.kernel_uptime,
        wall_seconds=time.monotonic() - started,
        returncode=returncode,
    )
