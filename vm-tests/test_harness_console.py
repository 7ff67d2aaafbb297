"""Console parsing: markers, kernel stamps, panics, over-long lines, the deadline, and why a run ended."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from harness.console import (
    MAX_LINE,
    ConsoleParser,
    ExitReason,
    Marker,
    ReadEnd,
    finish,
    read_console,
    split_lines,
)
from initiator.deadline import Deadline


@pytest.mark.parametrize(
    ("line", "marker"),
    [
        ("PYISCSI-MARK init 1.72\n", Marker("init", 1.72)),
        ("PYISCSI-MARK exit 2.86 3\r\n", Marker("exit", 2.86, "3")),
        ("[    2.1] junk PYISCSI-MARK ibft 12.00 target0 iqn.x:y\n", Marker("ibft", 12.0, "target0 iqn.x:y")),
        ("PYISCSI-MARK init\n", None),  # no uptime: not a marker
        ("PYISCSI-MARK init abc\n", None),
        ("echo PYISCSI-MARK\n", None),
    ],
)
def test_parser_finds_markers_with_uptime_and_detail(line, marker):
    parser = ConsoleParser()
    assert parser.feed(line) == marker
    assert parser.markers == ([marker] if marker else [])


def test_parser_tracks_kernel_stamps_panics_and_keeps_a_bounded_tail():
    parser = ConsoleParser(keep=3)
    lines = ["[    0.000000] Linux version", "[   12.500001] x", "plain", "[   13.0] Kernel panic - not syncing: y"]
    for line in lines:
        parser.feed(line)
    assert parser.kernel_uptime == pytest.approx(13.0)
    assert parser.panicked
    assert list(parser.last_lines) == ["[   12.500001] x", "plain", "[   13.0] Kernel panic - not syncing: y"]


def test_split_lines_keeps_partial_lines_and_cuts_endless_ones():
    pending = bytearray()
    assert split_lines(pending, b"ab") == []
    assert split_lines(pending, b"c\nde") == ["abc\n"]
    assert bytes(pending) == b"de"
    pending.clear()
    lines = split_lines(pending, b"x" * (MAX_LINE * 2 + 5))
    assert [len(x) for x in lines] == [MAX_LINE, MAX_LINE]
    assert len(pending) == 5


@pytest.mark.parametrize(
    ("end", "panicked", "returncode", "reason"),
    [
        (ReadEnd.EOF, False, 0, ExitReason.POWEROFF),
        (ReadEnd.EOF, True, 0, ExitReason.PANIC),
        (ReadEnd.EOF, False, 1, ExitReason.QEMU_FAILED),
        (ReadEnd.DEADLINE, False, -15, ExitReason.TIMEOUT),
        (ReadEnd.MARKER, False, -15, ExitReason.STOPPED),
        (ReadEnd.NO_BOOT, False, -15, ExitReason.NO_BOOT),
    ],
)
def test_finish_names_why_the_run_ended(tmp_path, end, panicked, returncode, reason):
    parser = ConsoleParser(panicked=panicked)
    assert finish(parser, tmp_path / "log", time.monotonic(), end, returncode).reason is reason


def _pipe_with_writer(chunks: list[bytes], then_close: bool):
    rfd, wfd = os.pipe()

    def writer():
        for chunk in chunks:
            os.write(wfd, chunk)
            time.sleep(0.01)
        if then_close:
            os.close(wfd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return os.fdopen(rfd, "rb", buffering=0), wfd, thread


def test_read_console_copies_to_the_log_until_eof(tmp_path: Path):
    stream, _, thread = _pipe_with_writer([b"PYISCSI-MARK a 1.00\nPYIS", b"CSI-MARK b 2.00\nlast"], then_close=True)
    parser, end = read_console(stream, tmp_path / "log", Deadline("boot", 5))
    thread.join()
    assert end is ReadEnd.EOF
    assert [m.name for m in parser.markers] == ["a", "b"]
    assert list(parser.last_lines)[-1] == "last"
    assert (tmp_path / "log").read_bytes().endswith(b"last")


def test_read_console_gives_up_at_the_deadline_when_the_guest_goes_quiet(tmp_path: Path):
    stream, wfd, _thread = _pipe_with_writer([b"Booting from ROM...\n"], then_close=False)
    started = time.monotonic()
    parser, end = read_console(stream, tmp_path / "log", Deadline("boot", 0.3))
    assert end is ReadEnd.DEADLINE
    assert time.monotonic() - started < 2
    assert list(parser.last_lines) == ["Booting from ROM..."]
    os.close(wfd)


def test_read_console_stops_at_the_awaited_marker(tmp_path: Path):
    stream, wfd, _ = _pipe_with_writer([b"PYISCSI-MARK a 1.00\n", b"PYISCSI-MARK ready 2.00\n"], then_close=False)
    parser, end = read_console(stream, tmp_path / "log", Deadline("boot", 5), stop_on="ready")
    assert end is ReadEnd.MARKER
    assert parser.markers[-1].name == "ready"
    os.close(wfd)


def test_read_console_stops_when_the_firmware_finds_nothing_to_boot(tmp_path: Path):
    chunks = [b"Booting from Hard Disk...\n", b"No bootable device.\n"]
    stream, wfd, _ = _pipe_with_writer(chunks, then_close=False)
    parser, end = read_console(stream, tmp_path / "log", Deadline("boot", 5))
    assert end is ReadEnd.NO_BOOT
    assert parser.no_boot
    os.close(wfd)
