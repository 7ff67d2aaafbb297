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
from typing import TYPE_CHECKING

from boot.net import ipv4, ipv6, links, virtual
from boot.net.dhcp4 import Dhcp4Lease
from boot.net.dhcp4_socket import obtain_lease
from boot.net.link_events import link_waits
from boot.net.links import Link, Sleep
from boot.net.names import name_problem
from boot.net.resolv import write_resolv_conf
from boot.net.rtnl import Rtnl
from boot.net.state import InterfaceState, LeaseInfo, write_state_file
from boot.net.waits import InterfaceError, InterfaceWaitTimeout
from boot.plan import BootPlan, InterfacePlan, Method, Timeouts
from initiator.deadline import Deadline
from initiator.errors import PyiscsiError, WaitTimeout
from initiator.record import record, replace

if TYPE_CHECKING:
    from boot.net.dhcp6 import Dhcp6Lease

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
    ipr: Rtnl, link: Link, timeouts: Timeouts, deadline: Deadline, sleep: Sleep
) -> tuple[ipaddress.IPv6Interface, Dhcp6Lease, ipaddress.IPv6Address | None]:
    """A DHCPv6 address as a /128 with DAD done, then the RA that makes it reachable (prefix, router)."""
    from boot.net.dhcp6_socket import obtain_lease6  # IPv6 boots only: an IPv4 boot never imports DHCPv6

    lease = obtain_lease6(ipr, link, _mac_bytes(link), deadline.child("dhcp6", timeouts.dhcp6), sleep=sleep)
    address = ipaddress.IPv6Interface(f"{lease.address}/128")
    ipv6.add_address(ipr, link, address)
    ipv6.wait_dad(ipr, link, (address,), deadline.child("ipv6dad", timeouts.ipv6dad), sleep)
    router = ipv6.wait_router_advertisement(ipr, link, deadline.child("ipv6auto", timeouts.ipv6auto), sleep)
    return address, lease, router


def _dhcp4(ipr: Rtnl, link: Link, plan: InterfacePlan, timeouts: Timeouts, deadline: Deadline) -> Dhcp4Lease:
    """A DHCPv4 lease, ARP-probed, applied to the link (address, routes, MTU unless ip= set one)."""
    lease = obtain_lease(
        link.name,
        _mac_bytes(link),
        deadline.child("dhcp", timeouts.dhcp),
        hostname=plan.hostname,
        max_mtu=link.max_mtu or None,
        probe_seconds=timeouts.arp,
    )
    ipv4.apply_lease(ipr, link, lease, set_mtu=plan.mtu is None)
    return lease


@record
class Auto6:
    """What the IPv6 half of no-ip= got: SLAAC addresses and the router, or a DHCPv6 lease (`leased`)."""

    addresses: tuple[ipaddress.IPv6Interface, ...] = ()
    router: ipaddress.IPv6Address | None = None
    leased: tuple[ipaddress.IPv6Interface, Dhcp6Lease, ipaddress.IPv6Address | None] | None = None


def _auto6(ipr: Rtnl, link: Link, timeouts: Timeouts, deadline: Deadline, sleep: Sleep) -> Auto6:
    """SLAAC; when no router advertisement gives an address within 'ipv6auto', stateful DHCPv6 (either6's order)."""
    try:
        slaac = ipv6.wait_slaac(ipr, link, deadline.child("ipv6auto", timeouts.ipv6auto), sleep)
    except InterfaceWaitTimeout:
        if deadline.expired():
            raise
        return Auto6(leased=_dhcp6(ipr, link, timeouts, deadline, sleep))
    return Auto6(addresses=slaac.addresses, router=slaac.router)


def dual_stack(
    link: Link, plan: InterfacePlan, timeouts: Timeouts, deadline: Deadline, sleep: Sleep
) -> tuple[Dhcp4Lease | None, Auto6 | None, list[str]]:
    """No ip=: DHCPv4 and IPv6 (SLAAC, else DHCPv6) at once, each in its own thread with its own netlink socket.

    Returns as soon as the family the root target needs (`plan.family`; None: either) is up, leaving the other
    to finish in the background; a family that failed by then is a warning (third item). The needed family
    failing, or both, raises that family's error (IPv4's when either would do), naming the interface and wait."""
    results: dict[int, object] = {}
    errors: dict[int, BaseException] = {}
    changed = threading.Condition()
    jobs: dict[int, Callable[[Rtnl], object]] = {
        4: lambda ipr: _dhcp4(ipr, link, plan, timeouts, deadline),
        6: lambda ipr: _auto6(ipr, link, timeouts, deadline, sleep),
    }

    def run(family: int) -> None:
        try:
            with Rtnl() as ipr:
                value = jobs[family](ipr)
        except BaseException as exc:  # handed to the interface's thread below
            with changed:
                errors[family] = exc
                changed.notify_all()
        else:
            with changed:
                results[family] = value
                changed.notify_all()

    for family in jobs:
        threading.Thread(target=run, args=(family,), name=f"net-{link.name}-ipv{family}", daemon=True).start()
    wanted = (plan.family,) if plan.family in jobs else tuple(jobs)
    with changed:
        while not any(f in results for f in wanted):
            failed = [f for f in wanted if f in errors]
            if len(failed) == len(wanted):
                raise errors[failed[0]]
            if deadline.remaining() <= -JOIN_GRACE:
                raise WaitTimeout(deadline.name, deadline.bound, f"{link.name}: still busy")
            changed.wait(min(1.0, max(0.01, deadline.remaining() + JOIN_GRACE)))
        warnings = [f"IPv{f} left out: {errors[f]}" for f in sorted(errors)]
        return results.get(4), results.get(6), warnings  # type: ignore[return-value]


def _effective_method(method: Method, leased4: bool, auto6: Auto6 | None) -> str:
    """What the state file and the handover (boot.keepnet) call a no-ip= interface: what it really got, so the
    real root's network manager keeps renewing a DHCPv4 lease (or follows the RA / the DHCPv6 lease)."""
    if method is not Method.AUTO:
        return method.value
    if leased4:
        return Method.DHCP.value
    if auto6 is not None and auto6.leased is not None:
        return Method.DHCP6.value
    return Method.AUTO6.value


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
    with Rtnl() as ipr, link_waits(sleep) as link_sleep:
        # nothing is set up before udev has handled (renamed) it: udev's coldplug may still be running. The link
        # waits sleep on link messages (link_sleep), not on a 50 ms poll that takes the CPU from udev
        udev_warnings: list[str] = []
        if plan.name is None and plan.mac is None:
            udev_warnings = links.candidates_after_udev(
                ipr, deadline.child("iflink", timeouts.iflink), deadline.child("udev", timeouts.udev), link_sleep
            )
            link = links.first_with_carrier(ipr, deadline.child("carrier", timeouts.carrier), link_sleep)
        else:
            link = links.find_link(
                ipr, name=plan.name, mac=plan.mac, deadline=deadline.child("iflink", timeouts.iflink), sleep=link_sleep
            )
            [link], udev_warnings = links.after_udev(ipr, [link], deadline.child("udev", timeouts.udev), link_sleep)
        parent: Link | None = None
        if plan.vlan is not None:
            parent_mtu = plan.mtu if plan.mtu is not None and plan.mtu > link.mtu else None
            parent = links.set_up(ipr, link, parent_mtu)
            link = links.ensure_vlan(ipr, parent, plan.vlan, plan.mtu)
        if plan.set_mac is not None:  # ip=...:<macaddr>: on the link this ip= configures (the VLAN, if any)
            link = virtual.set_address(ipr, link, plan.set_mac)
        v6_static = tuple(a for a in plan.addresses if isinstance(a, ipaddress.IPv6Interface))
        v4_static = tuple(a for a in plan.addresses if isinstance(a, ipaddress.IPv4Interface))
        dhcp6 = plan.method is Method.DHCP6
        dual = plan.method is Method.AUTO
        if plan.method in SLAAC_METHODS or dual or dhcp6 or v6_static or plan.gateway6 is not None:
            # DHCPv6 gives no prefix or route: router advertisements (accept_ra) bring the on-link prefix and router
            ipv6.prepare(link.name, slaac=plan.method in SLAAC_METHODS or dual, accept_ra=dhcp6, root=sysctl_root)
        link = links.set_up(ipr, link, plan.mtu)
        link = links.wait_carrier(ipr, link, deadline.child("carrier", timeouts.carrier), link_sleep)

        configured: list[str] = []
        gateway = plan.gateway
        gateway6 = plan.gateway6
        dns = [str(d) for d in plan.dns]
        hostname = plan.hostname
        domain = None
        lease_info = None
        root_path = None
        warnings: list[str] = list(udev_warnings)
        for address in v4_static:
            ipv4.add_address(ipr, link, address)
            configured.append(str(address))
        for address in v6_static:
            ipv6.add_address(ipr, link, address)
            configured.append(str(address))
        if v6_static:
            ipv6.wait_dad(ipr, link, v6_static, deadline.child("ipv6dad", timeouts.ipv6dad), sleep)
        lease = None
        auto6 = None
        if dual:
            lease, auto6, left_out = dual_stack(link, plan, timeouts, deadline, sleep)
            warnings += left_out
        elif plan.method is Method.DHCP:
            lease = _dhcp4(ipr, link, plan, timeouts, deadline)
        if lease is not None:
            warnings += lease.warnings
            configured.append(str(lease.address))
            gateway = gateway or (lease.routers[0] if lease.routers else None)
            dns += [str(d) for d in lease.dns if str(d) not in dns]
            hostname = hostname or lease.hostname
            domain = lease.domain
            root_path = lease.root_path
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
        if auto6 is not None:
            configured += [str(a) for a in auto6.addresses if str(a) not in configured]
            gateway6 = gateway6 or auto6.router
            leased6 = auto6.leased
        if plan.method not in (Method.DHCP, Method.AUTO) and gateway is not None:
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
        if gateway6 is not None and plan.method not in (*SLAAC_METHODS, Method.AUTO):
            ipv6.set_default_route(ipr, link, gateway6)
        gateway6 = gateway6 or ra_router
        link = links.get_link(ipr, link.index)
    state = InterfaceState(
        name=link.name,
        mac=link.mac,
        method=_effective_method(plan.method, lease is not None, auto6),
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
        root_path=root_path,
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
    enough: Callable[[tuple[InterfaceState, ...]], bool] | None = None,
) -> tuple[InterfaceState, ...]:
    """Every interface of `plan`, concurrently. Returns their states in plan order.

    A failure raises the first failing interface's error (in plan order): NetworkError (exit 3) or WaitTimeout
    (exit 5), both naming the interface. With `require_all=False` failed interfaces are left out (and passed to
    `on_error`) and only all of them failing raises. `resolv_conf` and `state_file`, when given, are written
    atomically once all are up; `set_hostname` applies the plan's or lease's host name (initramfs only).
    `enough` (rd.iscsi.waitnet=0): return as soon as it holds for the interfaces up so far; the others go on in
    the background, and the files name only those up by then.
    """
    if not plan.interfaces:
        return ()
    # the link phase (ifname= renames, bond=, bridge=) before any interface: they name what it makes
    link_warnings = tuple(virtual.make_links(plan, deadline, sleep))
    results: list[InterfaceState | None] = [None] * len(plan.interfaces)
    errors: list[BaseException | None] = [None] * len(plan.interfaces)

    finished = threading.Condition()

    def work(i: int, iplan: InterfacePlan) -> None:
        try:
            results[i] = bring_up_one(iplan, plan.timeouts, deadline, sysctl_root=sysctl_root, sleep=sleep)[0]
        except BaseException as exc:  # handed to the caller's thread below
            errors[i] = exc
        finally:
            with finished:
                finished.notify_all()

    threads = [
        threading.Thread(target=work, args=(i, p), name=f"net-{label(p)}", daemon=True)
        for i, p in enumerate(plan.interfaces)
    ]
    for thread in threads:
        thread.start()
    early = False
    if enough is not None:
        with finished:
            while any(t.is_alive() for t in threads) and deadline.remaining() > 0:
                ready = tuple(r for r in results if r is not None)
                if ready and enough(ready):
                    early = True
                    break
                finished.wait(min(1.0, max(0.01, deadline.remaining())))
    for thread in threads:
        thread.join(0.0 if early else max(0.0, deadline.remaining()) + JOIN_GRACE)
    for i, thread in enumerate(threads):
        if thread.is_alive() and early:
            continue  # rd.iscsi.waitnet=0: still coming up, not a failure
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
    if link_warnings and states:  # a bond slave or bridge port that never appeared: said on the first interface
        states = (replace(states[0], warnings=states[0].warnings + link_warnings), *states[1:])
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
