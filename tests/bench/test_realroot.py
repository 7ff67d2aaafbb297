"""bench.realroot: reading a real root's console (marks, kernel stamps) and the table (pure: no QEMU, no timing
asserts)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench import realroot
from bench.realroot import Figures

GOOD = """\
[    1.000000] Linux version 6.1.0
PYISCSI-MARK realroot 60.50 variant=networkd
PYISCSI-MARK multiuser 71.25 state=running target=active
PYISCSI-MARK failed 71.30 units=none
  check: PYISCSI-MARK multiuser 99.00 state=degraded
PYISCSI-MARK shutdown 80.00 action=poweroff
[   85.123456] systemd-shutdown[1]: Syncing filesystems and block devices.
PYISCSI-MARK final 86.50 action=poweroff sessions=LOGGED_IN addr=ens2=192.168.77.100/24 root=ro ioerr=0 connerr=1
[   87.500000] reboot: Power down
"""


def test_a_whole_boot_gives_every_figure() -> None:
    figures = realroot.measure(GOOD)
    assert figures.multiuser == 71.25 and figures.state == "running" and figures.failed_units == "none"
    assert figures.shutdown == 80.0 and figures.final == 86.5 and figures.last_stamp == 87.5
    assert figures.poweroff == pytest.approx(7.5)


@pytest.mark.parametrize(
    ("log", "multiuser", "state", "poweroff"),
    [
        ("", None, "none", None),
        ("PYISCSI-MARK multiuser 90.00 state=degraded target=active\n", 90.0, "degraded", None),
        # no systemd-shutdown hook: the power-off never reached the point where the root was read-only
        ("PYISCSI-MARK shutdown 10.00 action=poweroff\n[   70.000000] x\n", None, "none", None),
        ("PYISCSI-MARK multiuser 1.00 state=timeout target=inactive\n", 1.0, "timeout", None),
        # carriage returns of a serial console do not hide a stamp
        ("PYISCSI-MARK shutdown 10.00 a\r\nPYISCSI-MARK final 11.00 b\r\n[   12.500000] reboot: Power down\r\n", None,
         "none", 2.5),
    ],
)  # fmt: skip
def test_partial_boots(log: str, multiuser: float | None, state: str, poweroff: float | None) -> None:
    figures = realroot.measure(log)
    assert figures.multiuser == multiuser and figures.state == state
    assert figures.poweroff == (pytest.approx(poweroff) if poweroff is not None else None)


def test_the_first_mark_counts_and_check_lines_are_not_marks() -> None:
    log = "  check: PYISCSI-MARK multiuser 5.00 state=x\nPYISCSI-MARK multiuser 7.00 state=running\n"
    log += "PYISCSI-MARK multiuser 9.00 state=degraded\n"
    assert realroot.measure(log).multiuser == 7.0 and realroot.measure(log).state == "running"


@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400))
def test_any_console_text_measures_without_error(text: str) -> None:
    figures = realroot.measure(text)
    assert figures.state  # always a word, "none" when the mark is missing


def test_report_has_ratios_states_and_the_sample_count() -> None:
    ours = Figures(70.0, "running", 80.0, 85.0, 86.0)
    stock = Figures(100.0, "degraded", 110.0, 120.0, 130.0, failed_units="systemd-network-generator.service")
    text = realroot.report({"ours": [ours], "stock": [stock]})
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "figure", "ours", "stock", "ours/stock"]
    multi = next(line for line in lines if "multi-user" in line)
    assert multi.split()[-3:] == ["70.0", "100.0", "0.70x"]
    power = next(line for line in lines if "power-off" in line)
    assert power.split()[-3:] == ["6.0", "20.0", "0.30x"]
    state = next(line for line in lines if "system state" in line)
    assert "(n=1/1)" in state and state.split()[-2:] == ["running", "degraded"]
    failed = next(line for line in lines if "failed units" in line)
    assert failed.split()[-2:] == ["none", "systemd-network-generator.service"]


def test_report_without_a_figure_shows_a_dash_and_no_ratio() -> None:
    hung = Figures(None, "none", None, None, None)
    text = realroot.report({"ours": [Figures(70.0, "running", 80.0, 85.0, 86.0)], "stock": [hung]})
    multi = next(line for line in text.splitlines() if "multi-user" in line)
    assert multi.split()[-3:] == ["70.0", "-", "-"]


def test_the_benchmark_is_registered() -> None:
    from bench.__main__ import BENCHMARKS

    assert BENCHMARKS["realroot"][0] == "bench.realroot"
    assert realroot.RUNS >= 1 and set(realroot.VARIANTS) <= {"networkd", "networkmanager", "ifupdown"}


@pytest.mark.parametrize(
    ("figures", "reason", "fatal", "said"),
    [
        (Figures(70.0, "running", 80.0, 85.0, 86.0), "poweroff", None, "ok"),
        (Figures(None, "none", None, None, 130.5), "marker",
         "[  126.872521]  connection1:0: ping timeout of 5 secs expired, recv timeout 5",
         "root disk lost at 126.9s (ping timeout)"),
        (Figures(None, "none", None, None, 99.0), "poweroff", None, "poweroff at 99.0s"),
        (Figures(None, "none", None, None, None), "timeout", None, "timeout at -s"),
        (Figures(None, "none", None, None, None), "marker", "sd 2:0:0:0: rejecting I/O to offline device",
         "root disk lost at -s (conn error)"),
    ],
)  # fmt: skip
def test_how_a_boot_ended(figures: Figures, reason: str, fatal: str | None, said: str) -> None:
    assert realroot.ending(figures, reason, fatal) == said
