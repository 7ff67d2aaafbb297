"""IPv4 on a link: static addresses, the default route, and a DHCPv4 lease applied (address, MTU, router)."""

from __future__ import annotations

import ipaddress
import socket

from boot.net.dhcp4 import Dhcp4Lease
from boot.net.links import Link
from boot.net.rtnl import NetlinkError, Rtnl
from boot.net.waits import InterfaceError


def _netlink_reason(exc: NetlinkError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def add_address(
    ipr: Rtnl, link: Link, address: ipaddress.IPv4Interface, broadcast: ipaddress.IPv4Address | None = None
) -> None:
    """Add (or refresh) `address` on `link`, with the subnet's broadcast unless told otherwise. No lifetime: the
    address must outlive us (the root disk rides on it); whoever renews the lease after switch_root owns it."""
    if broadcast is None and address.network.prefixlen < 31:
        broadcast = address.network.broadcast_address
    extra = {"broadcast": str(broadcast)} if broadcast is not None else {}
    try:
        ipr.addr(
            "replace",
            index=link.index,
            address=str(address.ip),
            prefixlen=address.network.prefixlen,
            family=socket.AF_INET,
            **extra,
        )
    except NetlinkError as exc:
        raise InterfaceError(link.name, f"cannot add address {address}: {_netlink_reason(exc)}") from exc


def set_default_route(
    ipr: Rtnl, link: Link, gateway: ipaddress.IPv4Address, addresses: tuple[ipaddress.IPv4Interface, ...] = ()
) -> None:
    """Default route via `gateway` on `link`; a gateway outside every subnet of the link gets a host route first
    (DHCP servers hand out /32 leases with an off-subnet router)."""
    try:
        if addresses and not any(gateway in a.network for a in addresses):
            ipr.route("replace", dst=str(gateway), dst_len=32, oif=link.index, scope=253, family=socket.AF_INET)
        ipr.route("replace", dst="0.0.0.0", dst_len=0, gateway=str(gateway), oif=link.index, family=socket.AF_INET)
    except NetlinkError as exc:
        raise InterfaceError(link.name, f"cannot add default route via {gateway}: {_netlink_reason(exc)}") from exc


def apply_lease(ipr: Rtnl, link: Link, lease: Dhcp4Lease, *, set_mtu: bool = True) -> None:
    """The lease's MTU (unless the plan fixed one), address and first router."""
    if set_mtu and lease.mtu is not None and lease.mtu != link.mtu:
        try:
            ipr.link("set", index=link.index, mtu=lease.mtu)
        except NetlinkError as exc:
            raise InterfaceError(link.name, f"cannot set the lease's MTU {lease.mtu}: {_netlink_reason(exc)}") from exc
    add_address(ipr, link, lease.address, lease.broadcast)
    if lease.routers:
        set_default_route(ipr, link, lease.routers[0], (lease.address,))
