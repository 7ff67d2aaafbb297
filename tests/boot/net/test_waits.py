from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boot.net.waits import InterfaceError, InterfaceWaitTimeout, ran_out
from initiator.deadline import Deadline, FakeClock
from initiator.errors import ExitStatus, NetworkError, WaitTimeout
from initiator.printable import printable


def test_timeout_names_interface_wait_and_bound():
    exc = InterfaceWaitTimeout("eth0", "dhcp", 30, "no offer")
    assert str(exc) == "eth0: wait 'dhcp' ran out after 30s: no offer"
    assert isinstance(exc, WaitTimeout) and exc.exit_status is ExitStatus.TIMEOUT
    assert (exc.iface, exc.wait, exc.bound) == ("eth0", "dhcp", 30)


def test_ran_out_names_the_tighter_bound():
    clock = FakeClock()
    total = Deadline("total", 5, clock=clock)
    dhcp = total.child("dhcp", 30)
    clock.advance(6)
    assert str(ran_out("eth0", dhcp)) == "eth0: wait 'total' ran out after 5s"
    carrier = Deadline("total", 60, clock=clock).child("carrier", 2)
    clock.advance(3)
    assert str(ran_out("eth1", carrier, "no carrier")) == "eth1: wait 'carrier' ran out after 2s: no carrier"


def test_ran_out_reports_how_long_the_named_wait_really_took():
    clock = FakeClock()
    total = Deadline("total", 60, clock=clock)
    clock.advance(10)
    auto = total.child("ipv6auto", 5)
    clock.advance(7.5)  # a poll that overran the bound by 2.5s
    exc = ran_out("eth0", auto)
    assert (exc.wait, exc.elapsed) == ("ipv6auto", 7.5)
    assert ran_out("eth0", total).elapsed == 17.5
    assert InterfaceWaitTimeout("eth0", "dhcp", 30).elapsed is None


def test_interface_error_is_a_network_error():
    exc = InterfaceError("eth0", "duplicate address")
    assert isinstance(exc, NetworkError) and exc.exit_status is ExitStatus.NETWORK
    assert str(exc) == "eth0: duplicate address"


# A link name is anything the kernel takes: up to 15 bytes, no '/', ':' or blank; control characters pass.
LINK_NAMES = st.text(
    alphabet=st.characters(blacklist_characters="/: \t\n\v\f\r", blacklist_categories=("Cs",)), min_size=1, max_size=15
)


@given(name=LINK_NAMES, reason=st.text(max_size=40).map(printable))  # a reason comes escaped by its caller
def test_an_interface_error_is_one_escaped_line_whatever_the_link_is_named(name: str, reason: str) -> None:
    for exc in (InterfaceError(name, reason), InterfaceWaitTimeout(name, "carrier", 2, reason)):
        line = str(exc)
        assert line.isprintable() and "\n" not in line
        assert line.startswith(printable(name) + ": ") and line.endswith(reason)  # the reason is not escaped twice
        assert exc.iface == name  # the field keeps the kernel's name for the code that acts on it


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("eth0", "eth0"),
        ("e\x1b[2Jx", "e\\x1b[2Jx"),  # ESC: a terminal would clear the screen
        ("a\u202eb", "a\\u202eb"),  # a bidi override would reorder the line
        ("bad\\x1b", "bad\\\\x1b"),  # a backslash is doubled: the escape is unambiguous
    ],
)
def test_a_link_name_with_control_characters_is_escaped_in_the_line(name: str, shown: str) -> None:
    assert str(InterfaceError(name, "cannot set up: Operation not permitted")) == (
        f"{shown}: cannot set up: Operation not permitted"
    )
    assert str(InterfaceWaitTimeout(name, "carrier", 2, "no carrier")) == (
        f"{shown}: wait 'carrier' ran out after 2s: no carrier"
    )
