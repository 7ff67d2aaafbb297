"""Errors of the bring-up that name the interface as well as the wait: `eth0: wait 'dhcp' ran out after 30s`.

The interface's name is escaped (initiator.printable): the kernel takes a link name with control characters
(anything but '/', ':' and blanks), and udev rules or a VLAN name made from one would pass them to the console.
The detail and reason are the caller's, already escaped where they quote the network (a DHCP server's text)."""

from __future__ import annotations

from initiator.deadline import Deadline
from initiator.errors import NetworkError, WaitTimeout
from initiator.printable import printable


class InterfaceWaitTimeout(WaitTimeout):
    """A bounded wait on one interface ran out (exit 5). `elapsed`: how long that wait really took, by its own
    clock (None when not measured), so a test or a log can tell a wait that overran its bound."""

    def __init__(self, iface: str, wait: str, bound: float, detail: str = "", elapsed: float | None = None) -> None:
        super().__init__(wait, bound, detail)
        self.iface = iface
        self.elapsed = elapsed
        self.args = (f"{printable(iface)}: {self.args[0]}",)


class InterfaceError(NetworkError):
    """The network refused an interface: no such link, DAD conflict, a kernel error (exit 3)."""

    def __init__(self, iface: str, reason: str) -> None:
        self.iface = iface
        self.reason = reason
        super().__init__(f"{printable(iface)}: {reason}")


def ran_out(iface: str, deadline: Deadline, detail: str = "") -> InterfaceWaitTimeout:
    """The error for `deadline` having expired on `iface`, naming whichever bound was the tighter one."""
    which = deadline.tightest()
    return InterfaceWaitTimeout(iface, which.name, which.bound, detail, elapsed=which.elapsed())
