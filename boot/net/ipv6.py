"""IPv6 on a link: static addresses with duplicate address detection finished, SLAAC (router advertisements),
and the static default route. Stateful DHCPv6 (`dhcp6`, and `either6` once SLAAC's 'ipv6auto' bound ran out
without an address, as dracut.cmdline(7) has it) is boot.net.dhcp6."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from boot.net import linkdump
from boot.net.linkdump import DumpCut, DumpError
from boot.net.links import POLL, Link, Sleep
from boot.net.rtnl import NetlinkError, Rtnl
from boot.net.waits import InterfaceError, ran_out
from initiator.deadline import Deadline
from initiator.record import record

IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
RT_SCOPE_UNIVERSE = 0
RT_SCOPE_SITE = 200  # the kernel's scope for site-local fec0::/10, which QEMU's user network hands out
SYSCTL_ROOT = "/proc/sys/net/ipv6/conf"
ALL_ROUTERS = "ff02::2"
T = TypeVar("T")
RS_INTERVAL = 4.0  # RFC 4861 RTR_SOLICITATION_INTERVAL
ICMPV6_ROUTER_SOLICIT = 133


def _reason(exc: NetlinkError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def sysctl(name: str, key: str, value: str, root: str = SYSCTL_ROOT) -> None:
    """Write one per-interface IPv6 setting; a missing IPv6 stack is a network error naming the link."""
    path = Path(root, name, key)
    try:
        path.write_text(value)
    except OSError as exc:
        raise InterfaceError(name, f"cannot set {key}={value} ({path}): {exc.strerror or exc}") from exc


def prepare(name: str, *, slaac: bool, accept_ra: bool = False, root: str = SYSCTL_ROOT) -> None:
    """Before the link goes up: IPv6 on; for SLAAC (or `accept_ra`: routes and on-link prefixes only, as DHCPv6
    wants) accept router advertisements (2 = even if forwarding)."""
    sysctl(name, "disable_ipv6", "0", root)
    if slaac or accept_ra:
        sysctl(name, "accept_ra", "2", root)
    if slaac:
        sysctl(name, "autoconf", "1", root)


@record
class Addr6:
    address: ipaddress.IPv6Interface
    flags: int
    scope: int

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dad_failed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)

    @property
    def routable(self) -> bool:
        """Beyond the link: global, or site-local (fec0::/10 is deprecated but still given out, e.g. by QEMU)."""
        return self.scope in (RT_SCOPE_UNIVERSE, RT_SCOPE_SITE)


def addresses(link: Link, deadline: Deadline) -> list[Addr6]:
    """The link's IPv6 addresses (at most linkdump.MAX_ADDRESSES), read by a dump the kernel filters."""
    return [Addr6(a.address, a.flags, a.scope) for a in linkdump.link_addresses(link.index, deadline)]


def add_address(ipr: Rtnl, link: Link, address: ipaddress.IPv6Interface) -> None:
    try:
        ipr.addr(
            "replace",
            index=link.index,
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
            family=socket.AF_INET6,
        )
    except NetlinkError as exc:
        raise InterfaceError(link.name, f"cannot add address {address}: {_reason(exc)}") from exc


def wait_dad(
    ipr: Rtnl,
    link: Link,
    wanted: tuple[ipaddress.IPv6Interface, ...],
    deadline: Deadline,
    sleep: Sleep = time.sleep,
) -> None:
    """Until no wanted address is tentative. A failed DAD removes the address (so a retry starts clean) and is a
    network error: another host already uses it."""
    current: dict[ipaddress.IPv6Address, Addr6] = {}
    problem = ""
    while True:
        try:
            current = {a.address.ip: a for a in addresses(link, deadline)}
        except DumpCut:
            pass  # at the deadline: the last whole read says what was still pending
        except DumpError as exc:
            current, problem = {}, f"; {exc}"
        else:
            problem = ""
        pending = []
        for want in wanted:
            got = current.get(want.ip)
            if got is not None and got.dad_failed:
                with contextlib.suppress(NetlinkError):
                    ipr.addr("del", index=link.index, address=str(want.ip), prefixlen=want.network.prefixlen, family=10)
                raise InterfaceError(
                    link.name, f"duplicate address detection failed for {want}: another host already uses it"
                )
            if got is None or got.tentative:
                pending.append(str(want))
        if not pending:
            return
        if deadline.expired():
            raise ran_out(link.name, deadline, f"still tentative: {', '.join(pending)}{problem}")
        sleep(min(POLL, deadline.remaining()))


def set_default_route(ipr: Rtnl, link: Link, gateway: ipaddress.IPv6Address) -> None:
    try:
        ipr.route("replace", dst="::", dst_len=0, gateway=str(gateway), oif=link.index, family=socket.AF_INET6)
    except NetlinkError as exc:
        raise InterfaceError(link.name, f"cannot add IPv6 default route via {gateway}: {_reason(exc)}") from exc


def default_router(link: Link, deadline: Deadline) -> ipaddress.IPv6Address | None:
    """The gateway of a default route a router advertisement gave `link` (main table), if any. Only routes of
    protocol 'ra' are asked for: a flood of on-link prefixes (protocol 'kernel') never reaches us."""
    with contextlib.closing(linkdump.link_routes(link.index, deadline, protocol=linkdump.RTPROT_RA)) as routes:
        for route in routes:
            if route.dst.prefixlen != 0:
                continue
            for gateway, hop in route.gateways:
                if hop in (None, link.index):
                    return gateway
    return None


def solicit_router(ifname: str) -> bool:
    """One Router Solicitation to ff02::2 out of `ifname`; the kernel fills the ICMPv6 checksum. False when the
    kernel refuses it (EADDRNOTAVAIL while the link-local address is still tentative), so the caller tries again at
    its next poll instead of an RS_INTERVAL later."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            s.sendto(
                bytes((ICMPV6_ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0)),
                (ALL_ROUTERS, 0, 0, socket.if_nametoindex(ifname)),
            )
    except OSError:  # EADDRNOTAVAIL until the link-local address has passed DAD
        return False
    return True


@record
class Slaac:
    addresses: tuple[ipaddress.IPv6Interface, ...]
    router: ipaddress.IPv6Address


def _soliciting(link: Link, deadline: Deadline, sleep: Sleep, probe: Callable[[], tuple[T | None, str]]) -> T:
    """Poll `probe` (its result, or None and why not yet) until it answers, soliciting a router every 4s (the first
    as soon as the kernel sends one); the timeout says why. Between polls it sleeps at least as long as the last
    poll took: a kernel busy with a flood of router advertisements gets at most half of our time."""
    clock = deadline.clock
    next_rs = clock()
    why = "no poll finished"
    while True:
        if clock() >= next_rs and solicit_router(link.name):
            next_rs = clock() + RS_INTERVAL
        started = clock()
        try:
            result, why = probe()
        except DumpCut:
            result = None  # at the deadline: the last whole poll says why
        except DumpError as exc:
            result, why = None, str(exc)
        if result is not None:
            return result
        if deadline.expired():
            raise ran_out(link.name, deadline, why)
        sleep(min(max(POLL, clock() - started), deadline.remaining()))


def wait_slaac(ipr: Rtnl, link: Link, deadline: Deadline, sleep: Sleep = time.sleep) -> Slaac:
    """Until the link has a global, non-tentative address and a default route. `ipr` is unused: the reads are
    bounded dumps of boot.net.linkdump (kept for the callers' symmetry with the other waits)."""

    # The kernel keeps a SLAAC address whose DAD failed only for a moment (it deletes addresses that are not
    # permanent): one seen tentative and then gone is taken for a failed DAD, the one thing that removes it then.
    tentative: dict[ipaddress.IPv6Address, ipaddress.IPv6Interface] = {}

    def probe() -> tuple[Slaac | None, str]:
        current = [a for a in addresses(link, deadline) if a.routable]
        found = tuple(a.address for a in current if not a.tentative and not a.dad_failed)
        router = default_router(link, deadline)
        if found and router is not None:
            return Slaac(found, router), ""
        present = {a.address.ip for a in current if not a.dad_failed}
        failed = [a.address for a in current if a.dad_failed]
        failed += [address for ip, address in tentative.items() if ip not in present and address not in failed]
        for a in current:
            if a.tentative and not a.dad_failed and len(tentative) < linkdump.MAX_ADDRESSES:
                tentative[a.address.ip] = a.address
        return None, slaac_missing(found, failed, router)

    return _soliciting(link, deadline, sleep, probe)


def slaac_missing(
    found: tuple[ipaddress.IPv6Interface, ...],
    dad_failed: list[ipaddress.IPv6Interface],
    router: ipaddress.IPv6Address | None,
) -> str:
    """Why SLAAC is not done yet: an address that failed duplicate address detection is named, not taken for an
    advertisement that never came."""
    parts = []
    missing = []
    if not found:
        if dad_failed:
            names = ", ".join(str(a) for a in dad_failed[:4])
            parts.append(f"duplicate address detection failed for {names}: another host already uses it")
        else:
            missing.append("a global address")
    if router is None:
        missing.append("a default route")
    if missing:
        parts.append(f"no router advertisement gave {' or '.join(missing)}")
    return "; ".join(parts)


def ra_route(link: Link, deadline: Deadline) -> ipaddress.IPv6Network | None:
    """A route out of `link` that only a router advertisement (or an administrator) gives: not fe80::/64 and not
    the host route of one of our own addresses. The first found ends the (bounded) dump."""
    with contextlib.closing(linkdump.link_routes(link.index, deadline)) as routes:
        for route in routes:
            if route.dst.prefixlen != 128 and not route.dst.is_link_local:
                return route.dst
    return None


def wait_router_advertisement(
    ipr: Rtnl, link: Link, deadline: Deadline, sleep: Sleep = time.sleep
) -> ipaddress.IPv6Address | None:
    """Until an RA gave `link` an on-link prefix or a default route (DHCPv6 gives neither); returns the router."""

    def probe() -> tuple[tuple[ipaddress.IPv6Address | None] | None, str]:
        if ra_route(link, deadline) is not None:
            return (default_router(link, deadline),), ""
        return None, "no router advertisement gave an on-link prefix or a default route"

    (router,) = _soliciting(link, deadline, sleep, probe)
    return router
