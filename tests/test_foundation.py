"""Deadlines and secrets: the two primitives every other module leans on."""

from __future__ import annotations

import pytest

from initiator.deadline import Deadline, FakeClock
from initiator.errors import WaitTimeout
from initiator.secret import Secret


def test_deadline_counts_down_on_its_clock():
    clock = FakeClock()
    d = Deadline("login", 10, clock=clock)
    clock.advance(4)
    assert d.remaining() == pytest.approx(6)
    assert not d.expired()
    clock.advance(6)
    assert d.expired()
    with pytest.raises(WaitTimeout, match=r"wait 'login' ran out after 10s"):
        d.check()


@pytest.mark.parametrize(
    ("parent_bound", "child_bound", "named"),
    [(5, 30, "total"), (60, 3, "carrier")],
)
def test_child_deadline_names_the_tighter_bound(parent_bound, child_bound, named):
    clock = FakeClock()
    total = Deadline("total", parent_bound, clock=clock)
    child = total.child("carrier", child_bound)
    assert child.remaining() == min(parent_bound, child_bound)
    clock.advance(max(parent_bound, child_bound))
    err = child.timeout()
    assert err.wait == named


def test_secret_never_shows_its_value():
    s = Secret("hunter2hunter2")
    in_a_dict = {"p": s}
    assert "hunter2" not in f"{s} {s!r} {[s]} {in_a_dict}"
    assert s.reveal() == "hunter2hunter2"
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    with pytest.raises(AttributeError):
        s._value = "x"
