from __future__ import annotations

import pytest

from boot.timeline import Timeline, format_mark, parse_mark, process_start, uptime


@pytest.mark.parametrize(
    "line, parsed",
    [
        ("PYISCSI-MARK login 3.250 iqn.x:y 10.0.2.2:3260", ("login", 3.25, "iqn.x:y 10.0.2.2:3260")),
        ("[    3.1] pyiscsi: PYISCSI-MARK disk 4.000 /dev/sda", ("disk", 4.0, "/dev/sda")),
        ("PYISCSI-MARK plan -", ("plan", None, "")),
        ("PYISCSI-MARK plan x", None),
        ("PYISCSI-MARK", None),
        ("nothing here", None),
    ],
)
def test_parse_mark(line, parsed):
    assert parse_mark(line) == parsed


def test_format_then_parse_round_trips_and_flattens_detail():
    line = format_mark("address", 1.23456, "eth0  10.0.2.15/24\n(0.5s)")
    assert line == "PYISCSI-MARK address 1.235 eth0 10.0.2.15/24 (0.5s)"
    assert parse_mark(line) == ("address", 1.235, "eth0 10.0.2.15/24 (0.5s)")


@pytest.mark.parametrize("name", ["", "two words", "tab\tname"])
def test_names_are_one_word(name):
    with pytest.raises(ValueError):
        format_mark(name, 1.0)


def test_timeline_writes_console_and_kmsg(tmp_path):
    out, kmsg = [], []
    t = Timeline(out=out.append, kmsg=kmsg.append, clock=lambda: 2.5)
    t.mark("login", "iqn.x:y")
    assert out == kmsg == ["PYISCSI-MARK login 2.500 iqn.x:y"]
    assert t.marks == [("login", 2.5, "iqn.x:y")]


def test_uptime_reads_first_field_and_tolerates_absence(tmp_path):
    f = tmp_path / "uptime"
    f.write_text("12.34 56.78\n")
    assert uptime(f) == 12.34
    assert uptime(tmp_path / "missing") is None


# /proc/self/stat: the command may hold spaces and parentheses; starttime is the 22nd field overall
STAT_LINE = "184 (py (thon) x) S 1 184 184 0 -1 4194560 900 0 0 0 12 3 0 0 20 0 1 0 {ticks} 30000000 2000\n"


@pytest.mark.parametrize(
    ("text", "per_second", "expected"),
    [
        (STAT_LINE.format(ticks=561), 100, 5.61),
        (STAT_LINE.format(ticks=2244), 250, 8.976),
        (STAT_LINE.format(ticks="x"), 100, None),
        ("184 (pyiscsi) S 1 184\n", 100, None),
        ("", 100, None),
        (STAT_LINE.format(ticks=561), 0, None),
    ],
)  # fmt: skip
def test_process_start_reads_starttime_after_the_command(tmp_path, text, per_second, expected):
    stat = tmp_path / "stat"
    stat.write_text(text)
    found = process_start(stat, ticks_per_second=per_second)
    assert found == (None if expected is None else pytest.approx(expected))


def test_process_start_of_this_process_is_before_now():
    started = process_start()
    assert started is not None and 0 < started <= uptime()


def test_a_mark_at_an_earlier_uptime_keeps_that_uptime():
    out = []
    t = Timeline(out=out.append, kmsg=None, clock=lambda: 9.0)
    t.mark("exec", "started", at=5.25)
    t.mark("start")
    assert out == ["PYISCSI-MARK exec 5.250 started", "PYISCSI-MARK start 9.000"]
