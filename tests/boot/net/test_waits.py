from __future__ import annotations

from boot.net.waits import InterfaceError, InterfaceWaitTimeout, ran_out
from initiator.deadline import Deadline, FakeClock
from initiator.errors import ExitStatus, NetworkError, WaitTimeout


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
