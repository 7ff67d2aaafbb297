"""The thin driver of Dhcp6Client: a UDP socket on one link, every wait under the caller's Deadline.

DHCPv6 runs over plain UDP from the link-local address, so the link needs one that finished duplicate address
detection before the first Solicit (a tentative address cannot be bound); that wait is part of the 'dhcp6' bound.
"""

from __future__ import annotations

import ipaddress
import socket
import time

from boot.net import ipv6
from boot.net.dhcp6 import ALL_SERVERS, CLIENT_PORT, SERVER_PORT, Dhcp6Client, Dhcp6Lease
from boot.net.exchange import run_exchange
from boot.net.linkdump import DumpCut, DumpError
from boot.net.links import POLL, Link, Sleep
from boot.net.rtnl import Rtnl
from boot.net.waits import InterfaceError, ran_out
from initiator.deadline import Deadline

RT_SCOPE_LINK = 253
RECV_SIZE = 65535  # the largest UDP payload: a longer Reply must be read whole, not cut and blamed on the server


def wait_link_local(ipr: Rtnl, link: Link, deadline: Deadline, sleep: Sleep = time.sleep) -> ipaddress.IPv6Address:
    """The link's fe80:: address once it is no longer tentative."""
    problem = ""
    while True:
        try:
            for addr in ipv6.addresses(link, deadline):
                if addr.scope == RT_SCOPE_LINK and not addr.tentative and not addr.dad_failed:
                    return addr.address.ip
        except DumpCut:
            pass  # at the deadline
        except DumpError as exc:
            problem = f"; {exc}"
        else:
            problem = ""
        if deadline.expired():
            raise ran_out(
                link.name, deadline, f"no link-local IPv6 address finished duplicate address detection{problem}"
            )
        sleep(min(POLL, deadline.remaining()))


def open_socket(link: Link, source: ipaddress.IPv6Address) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.name.encode())
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, link.index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
        sock.bind((str(source), CLIENT_PORT, 0, link.index))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def obtain_lease6(
    ipr: Rtnl,
    link: Link,
    mac: bytes,
    deadline: Deadline,
    *,
    client: Dhcp6Client | None = None,
    sleep: Sleep = time.sleep,
) -> Dhcp6Lease:
    """SOLICIT until an address is bound or `deadline` runs out (InterfaceWaitTimeout naming the bound)."""
    source = wait_link_local(ipr, link, deadline, sleep)
    client = client or Dhcp6Client(mac)
    try:
        sock = open_socket(link, source)
    except OSError as exc:
        raise InterfaceError(link.name, f"cannot open the DHCPv6 client socket: {exc.strerror or exc}") from exc
    with sock:
        lease = run_exchange(
            link.name,
            client,
            sock,
            send=lambda payload: sock.sendto(payload, (ALL_SERVERS, SERVER_PORT, 0, link.index)),
            read=lambda: sock.recv(RECV_SIZE),
            deadline=deadline,
        )
    assert isinstance(lease, Dhcp6Lease)
    return lease
