"""Bring up every interface of a plan at once, each wait under its own named bound and all under one deadline.

One thread per interface (multipath, several iBFT NICs): a slow DHCP server on one link does not delay the
others. Each thread's waits are children of the caller's Deadline, so the overall bound ('total') always wins
when it is the tighter one, and an error names the interface and the wait: `eth0: wait 'dhcp' ran out after 30s`.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pyroute2.iproute.linux import IPRoute

from boot.net import ipv4, ipv6, links
from boot.net.dhcp4_socket import obtain_lease
from boot.net.dhcp6 import Dhcp6Lease
from boot.net.dhcp6_socket import obtain_lease6
from boot.net.links import Link, Sleep
from boot.net.names import name_problem
from boot.net.resolv import write_resolv_conf
from boot.net.state import InterfaceState, LeaseInfo, write_state_file
from boot.net.waits import InterfaceError, InterfaceWaitTimeout
from boot.plan import BootPlan, InterfacePlan, Method, Timeouts
from initiator.deadline import Deadline
from initiator.errors import PyiscsiError, WaitTimeout

SLAAC_METHODS = (Method.AUTO6, Method.EITHER6)
HOSTNAME_PATH = "/proc/sys/kernel/hostname"
JOIN_GRACE = 2.0  # seconds past the overall deadline for a thread to finish its last netlink call


def label(plan: InterfacePlan) -> str:
    """How errors name an interface before its link is found."""
    return plan.name or plan.mac or "any"


def _mac_bytes(link: Link) -> bytes:
    raw = bytes.fromhex(link.mac.replace(":", ""))
    if len(raw) != 6:
        raise InterfaceError(link.name, f"DHCP needs an Ethernet address, the link has {link.mac or 'none'}")
    return raw


def _dhcp6(
    ipr: IPRoute, link: Link, timeouts: Timeouts, deadline: Deadline, sleep: Sleep
) -> tuple[ipaddress.IPv6Interface, Dhcp6Lease, ipaddress.IPv6Address | None]:
    """A DHCPv6 address as a /128 with DAD done, then the RA that makes it reachable (prefix, router)."""
    lease = obtain_lease6(ipr, link, _mac_bytes(link), deadline.child("dhcp6", timeouts.dhcp6), sleep=sleep)
    address = ipaddress.IPv6Interface(f"{lease.address}/128")
    ipv6.add_address(ipr, link, address)
    ipv6.wait_dad(ipr, link, (address,), deadline.child("ipv6dad", timeouts.ipv6dad), sleep)
    router = ipv6.wait_router_advertisement(ipr, link, deadline.child("ipv6auto", timeouts.ipv6auto), sleep)
    return address, lease, router


def bring_up_one(
    plan: InterfacePlan,
    timeouts: Timeouts,
    deadline: Deadline,
    *,
    sysctl_root: str = ipv6.SYSCTL_ROOT,
    sleep: Sleep = time.sleep,
) -> tuple[InterfaceState, Link]:
    """One interface, start to finish: link, VLAN, MTU, up, carrier, addresses, routes."""
    started = deadline.clock()
    with IPRoute() as ipr:
        if plan.name is None and plan.mac is None:
            link = links.first_with_carrier(ipr, deadline.child("carrier", timeouts.carrier), sleep)
        else:
            link = links.find_link(
                ipr, name=plan.name, mac=plan.mac, deadline=deadline.child("iflink", timeouts.iflink), sleep=sleep
            )
        parent: Link | None = None
        if plan.vlan is not None:
            parent_mtu = plan.mtu if plan.mtu is not None and plan.mtu > link.mtu else None
            parent = links.set_up(ipr, link, parent_mtu)
            link = links.ensure_vlan(ipr, parent, plan.vlan, plan.mtu)
        v6_static = tuple(a for a in plan.addresses if isinstance(a, ipaddress.IPv6Interface))
        v4_static = tuple(a for a in plan.addresses if isinstance(a, ipaddress.IPv4Interface))
        dhcp6 = plan.method is Method.DHCP6
        if plan.method in SLAAC_METHODS or dhcp6 or v6_static or plan.gateway6 is not None:
            # DHCPv6 gives no prefix or route: router advertisements (accept_ra) bring the on-link prefix and router
            ipv6.prepare(link.name, slaac=plan.method in SLAAC_METHODS, accept_ra=dhcp6, root=sysctl_root)
        link = links.set_up(ipr, link, plan.mtu)
        link = links.wait_carrier(ipr, link, deadline.child("carrier", timeouts.carrier), sleep)

        configured: list[str] = []
        gateway = plan.gateway
        gateway6 = plan.gateway6
        dns = [str(d) for d in plan.dns]
        hostname = plan.hostname
        domain = None
        lease_info = None
        warnings: list[str] = []
        for address in v4_static:
            ipv4.add_address(ipr, link, address)
            configured.append(str(address))
        for address in v6_static:
            ipv6.add_address(ipr, link, address)
            configured.append(str(address))
        if v6_static:
            ipv6.wait_dad(ipr, link, v6_static, deadline.child("ipv6dad", timeouts.ipv6dad), sleep)
        if plan.method is Method.DHCP:
            lease = obtain_lease(
                link.name,
                _mac_bytes(link),
                deadline.child("dhcp", timeouts.dhcp),
                hostname=plan.hostname,
                max_mtu=link.max_mtu or None,
                probe_seconds=timeouts.arp,
            )
            warnings += lease.warnings
            ipv4.apply_lease(ipr, link, lease, set_mtu=plan.mtu is None)
            configured.append(str(lease.address))
            gateway = gateway or (lease.routers[0] if lease.routers else None)
            dns += [str(d) for d in lease.dns if str(d) not in dns]
            hostname = hostname or lease.hostname
            domain = lease.domain
            lease_info = LeaseInfo(
                server=str(lease.server),
                lease_time=lease.lease_time,
                obtained_at=lease.obtained_at,
                renewal_time=lease.renewal_time,
                rebinding_time=lease.rebinding_time,
            )
        ra_router = None
        leased6 = None
        if dhcp6:
            leased6 = _dhcp6(ipr, link, timeouts, deadline, sleep)
        if plan.method is not Method.DHCP and gateway is not None:
            ipv4.set_default_route(ipr, link, gateway, v4_static)
        if plan.method in SLAAC_METHODS:
            try:
                slaac = ipv6.wait_slaac(ipr, link, deadline.child("ipv6auto", timeouts.ipv6auto), sleep)
            except InterfaceWaitTimeout:
                if plan.method is not Method.EITHER6 or deadline.expired():
                    raise
                leased6 = _dhcp6(ipr, link, timeouts, deadline, sleep)  # either6: SLAAC, else stateful DHCPv6
            else:
                configured += [str(a) for a in slaac.addresses if str(a) not in configured]
                gateway6 = gateway6 or slaac.router
        if leased6 is not None:
            address6, lease6, ra_router = leased6
            configured.append(str(address6))
            dns += [str(d) for d in lease6.dns if str(d) not in dns]
            domain = domain or (lease6.domains[0] if lease6.domains else None)
            warnings += lease6.warnings
            lease_info = LeaseInfo(
                server=f"duid:{lease6.server_id.hex()}",
                lease_time=None if lease6.valid_lifetime == 0xFFFFFFFF else lease6.valid_lifetime,
                obtained_at=time.time(),
                renewal_time=lease6.t1 or None,
                rebinding_time=lease6.t2 or None,
            )
        if gateway6 is not None and plan.method not in SLAAC_METHODS:
            ipv6.set_default_route(ipr, link, gateway6)
        gateway6 = gateway6 or ra_router
        link = links.get_link(ipr, link.index)
    state = InterfaceState(
        name=link.name,
        mac=link.mac,
        method=plan.method.value,
        addresses=tuple(configured),
        gateway=None if gateway is None else str(gateway),
        gateway6=None if gateway6 is None else str(gateway6),
        dns=tuple(dns),
        seconds=deadline.clock() - started,
        mtu=link.mtu,
        vlan=plan.vlan,
        parent=None if parent is None else parent.name,
        hostname=hostname,
        domain=domain,
        warnings=tuple(warnings),
        lease=lease_info,
    )
    return state, link


def bring_up(
    plan: BootPlan,
    deadline: Deadline,
    *,
    resolv_conf: str | os.PathLike[str] | None = None,
    state_file: str | os.PathLike[str] | None = None,
    set_hostname: bool = False,
    require_all: bool = True,
    sysctl_root: str = ipv6.SYSCTL_ROOT,
    sleep: Sleep = time.sleep,
    on_error: Callable[[PyiscsiError], None] | None = None,
) -> tuple[InterfaceState, ...]:
    """Every interface of `plan`, concurrently. Returns their states in plan order.

    A failure raises the first failing interface's error (in plan order): NetworkError (exit 3) or WaitTimeout
    (exit 5), both naming the interface. With `require_all=False` failed interfaces are left out (and passed to
    `on_error`) and only all of them failing raises. `resolv_conf` and `state_file`, when given, are written
    atomically once all are up; `set_hostname` applies the plan's or lease's host name (initramfs only).
    """
    if not plan.interfaces:
        return ()
    results: list[InterfaceState | None] = [None] * len(plan.interfaces)
    errors: list[BaseException | None] = [None] * len(plan.interfaces)

    def work(i: int, iplan: InterfacePlan) -> None:
        try:
            results[i] = bring_up_one(iplan, plan.timeouts, deadline, sysctl_root=sysctl_root, sleep=sleep)[0]
        except BaseException as exc:  # handed to the caller's thread below
            errors[i] = exc

    threads = [
        threading.Thread(target=work, args=(i, p), name=f"net-{label(p)}", daemon=True)
        for i, p in enumerate(plan.interfaces)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline.remaining()) + JOIN_GRACE)
    for i, thread in enumerate(threads):
        if thread.is_alive():
            errors[i] = WaitTimeout(deadline.name, deadline.bound, f"{label(plan.interfaces[i])}: still busy")
    failures = [e for e in errors if e is not None]
    for exc in failures:
        if not isinstance(exc, PyiscsiError):
            raise exc
        if on_error is not None:
            on_error(exc)
    if failures and (require_all or len(failures) == len(errors)):
        raise failures[0]
    states = tuple(r for r in results if r is not None)
    if set_hostname:
        name = next((s.hostname for s in states if s.hostname), None)
        if name:
            Path(HOSTNAME_PATH).write_text(name)
    if resolv_conf is not None:
        servers = [d for s in states for d in s.dns]
        # the DHCP clients dropped bad names already; a search domain never fails a boot that has its address
        domains = [s.domain for s in states if s.domain and name_problem(s.domain) is None]
        if servers:
            write_resolv_conf(servers, domains, resolv_conf)
    if state_file is not None:
        write_state_file(states, state_file)
    return states
