"""The link phase of a bring-up: ifname= renames, then bond= and bridge= devices, before any interface comes up.

dracut renames links (udev rules from ifname=) and makes bonds and bridges (its ifup) before it configures
addresses; so do we, in that order, so that an interface plan naming `bond0`, `br0` or a renamed link finds it,
and everything written afterwards (state file, node records, the real root's network files) carries the names
the user chose. pyroute2's IPRoute makes the bonds and bridges (through boot.net.rtnl, which opens it on first
use); each wait for a link to appear is under the 'iflink' bound.

Nothing is renamed or enslaved before udev has handled the link ('udev' bound, as for the interfaces): udev's
coldplug names the NICs too (ens3 for eth0), and a rename of ours that came first would be undone by udev's
the moment the link is down (as it is while being enslaved), taking the name a bond= lists away from under it.
Once udev has handled a link it renames it no more, so the names are matched after udev's naming, as dracut's
own ifname= rules (udev's) and bond= (after udev) have them. A bond or bridge we make is enslaved to only once udev
has handled it too, and then takes its first member's MAC address: udev gives a new one a "persistent" address
(99-default.link) from a machine-id that an initramfs does not keep, when it sees the link before a slave lends it
one; as a race, that changed the address, and the DHCP lease, from boot to boot.

A bond slave or bridge port whose link has no carrier is enslaved all the same: the bond (or bridge) comes up over
the others, and the interface's own 'carrier' wait is on the master.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from boot.net import links, udev_seen
from boot.net.bond import netlink_options
from boot.net.links import Link, Sleep
from boot.net.rtnl import NetlinkError, Rtnl
from boot.net.waits import InterfaceError, ran_out
from boot.plan import BondPlan, BootPlan, BridgePlan, RenamePlan
from initiator.deadline import Deadline

Settle = Callable[[list[Link]], tuple[list[Link], list[str]]]  # links read again once udev handled them; warnings


def udev_settle(
    ipr: Rtnl,
    udev: Deadline,
    sleep: Sleep = time.sleep,
    *,
    udev_root: Path = udev_seen.UDEV_ROOT,
    proc: Path = udev_seen.PROC,
) -> Settle:
    """links.after_udev over one 'udev' bound for the whole link phase (a late link is warned about once)."""
    warned: set[str] = set()

    def settle(found: list[Link]) -> tuple[list[Link], list[str]]:
        current, warnings = links.after_udev(ipr, found, udev, sleep, udev_root=udev_root, proc=proc)
        fresh = [w for w in warnings if w not in warned]
        warned.update(fresh)
        return current, fresh

    return settle


def _reason(exc: NetlinkError) -> str:
    return str(exc.args[1]) if len(exc.args) > 1 else str(exc)


def _by_name(ipr: Rtnl, name: str) -> Link | None:
    return next((link for link in links.list_links(ipr) if link.name == name), None)


def _set(ipr: Rtnl, link: Link, what: str, **change: object) -> None:
    try:
        ipr.link("set", index=link.index, **change)
    except NetlinkError as exc:
        raise InterfaceError(link.name, f"cannot {what}: {_reason(exc)}") from exc


def rename(
    ipr: Rtnl, wanted: RenamePlan, deadline: Deadline, settle: Settle, sleep: Sleep = time.sleep
) -> tuple[Link, list[str]]:
    """The link with `wanted.mac` under the name `wanted.name` (down, rename, up, as dracut's udev rule does
    before the link is used), once udev has named it; and the warning if udev had not. A name held by another
    link is an error naming both links."""
    found = links.find_link(ipr, name=None, mac=wanted.mac, deadline=deadline, sleep=sleep)
    [link], warnings = settle([found])
    if link.name == wanted.name:
        return link, warnings
    other = _by_name(ipr, wanted.name)
    if other is not None:
        raise InterfaceError(
            wanted.name,
            f"ifname={wanted.name}:{wanted.mac}: cannot rename {link.name} ({wanted.mac}) to {wanted.name}, "
            f"the name is taken by another link ({other.name}, MAC {other.mac or 'none'})",
        )
    if link.up:
        _set(ipr, link, "set it down to rename it", state="down")
    _set(ipr, link, f"rename it to {wanted.name}", ifname=wanted.name)
    renamed = links.get_link(ipr, link.index)
    _set(ipr, renamed, "set it up", state="up")
    return links.get_link(ipr, link.index), warnings


def _members(
    ipr: Rtnl, master: str, names: tuple[str, ...], deadline: Deadline, settle: Settle, sleep: Sleep
) -> tuple[list[Link], list[str]]:
    """The member links by name once udev has handled them, waiting for all of them under `deadline`; when it
    runs out, the ones that appeared are enough (a warning names the others), none at all is the error."""
    warnings: list[str] = []
    while True:
        present = {link.name: link for link in links.list_links(ipr)}
        found = [present[n] for n in names if n in present]
        if found:
            settled, late = settle(found)
            warnings += late
            if any(link.name not in names for link in settled) and not deadline.expired():
                continue  # udev renamed one away from the name asked for: look again
            found = [link for link in settled if link.name in names]
        missing = [n for n in names if n not in {link.name for link in found}]
        if not missing:
            return found, warnings
        if deadline.expired():
            if not found:
                raise ran_out(master, deadline, f"none of its links appeared ({', '.join(names)})")
            return found, [
                *warnings,
                f"{master}: {', '.join(missing)} did not appear; made over {', '.join(f.name for f in found)}",
            ]
        sleep(min(links.POLL, max(0.0, deadline.remaining())))


def _master(ipr: Rtnl, name: str, kind: str, **options: object) -> Link:
    """The bond or bridge `name` with `options`: made, or, when one of that kind is there, given the options.

    One may be there before we ask: loading the bonding driver (which our own request does) makes `bond0`
    unless told max_bonds=0, and a rerun finds the one it made."""
    existing = _by_name(ipr, name)
    if existing is None:
        try:
            ipr.link("add", ifname=name, kind=kind, **options)
        except NetlinkError as exc:
            existing = _by_name(ipr, name)
            if existing is None:
                raise InterfaceError(name, f"cannot create the {kind}: {_reason(exc)}") from exc
        else:
            made = _by_name(ipr, name)
            if made is None:
                raise InterfaceError(name, f"the {kind} was created but is not listed")
            return made
    if existing.kind != kind:
        raise InterfaceError(name, f"a link of that name exists and is not a {kind} ({existing.kind or 'a NIC'})")
    if options:
        if existing.up:  # the kernel changes a bond's mode only while it is down
            _set(ipr, existing, "set it down to change its options", state="down")
        _set(ipr, existing, f"set its {kind} options", kind=kind, **options)
    return links.get_link(ipr, existing.index)


def _first_members_address(ipr: Rtnl, master: Link, members: list[Link]) -> Link:
    """The master with its first member's MAC address, as the kernel gives a new bond whose address nobody set.
    udev may have set one by now (MACAddressPolicy=persistent), derived from the machine-id, which an initramfs
    seldom keeps (a new one every boot): the DHCP lease and the target's view of the initiator would change too."""
    return set_address(ipr, master, members[0].mac) if members else master


def _enslave(ipr: Rtnl, master: Link, member: Link) -> None:
    """`member` under `master` (down first: the kernel enslaves only a link that is down), then up."""
    current = ipr.get_links(member.index)[0].get_attr("IFLA_MASTER")
    if current != master.index:
        if member.up:
            _set(ipr, member, "set it down to enslave it", state="down")
        _set(ipr, member, f"enslave it to {master.name}", master=master.index)
    _set(ipr, member, "set it up", state="up")


def make_bond(ipr: Rtnl, bond: BondPlan, deadline: Deadline, settle: Settle, sleep: Sleep = time.sleep) -> list[str]:
    """bond=: the bond with its options, its slaves enslaved, its MTU, up. Returns warnings (a missing slave)."""
    slaves, warnings = _members(ipr, bond.name, bond.slaves, deadline, settle, sleep)
    index = {link.name: link.index for link in slaves}

    def index_of(name: str) -> int:
        if name not in index:
            raise InterfaceError(bond.name, f"bond option primary={name}: that slave did not appear")
        return index[name]

    options = netlink_options(bond.options, bond.slaves, index_of)
    existing = _by_name(ipr, bond.name)
    if existing is not None and any(slave.master == existing.index for slave in slaves):
        options = {}  # a rerun: made and enslaved already (the kernel changes no mode under slaves)
    [master], late = settle([_master(ipr, bond.name, "bond", **options)])
    warnings += late
    master = _first_members_address(ipr, master, slaves)
    for slave in slaves:
        _enslave(ipr, master, slave)
    master = links.set_up(ipr, master, bond.mtu)
    return warnings


def make_bridge(
    ipr: Rtnl, bridge: BridgePlan, deadline: Deadline, settle: Settle, sleep: Sleep = time.sleep
) -> list[str]:
    """bridge=: the bridge (no STP: ports forward at once), its ports added, up. Returns warnings."""
    ports, warnings = _members(ipr, bridge.name, bridge.ports, deadline, settle, sleep)
    [master], late = settle([_master(ipr, bridge.name, "bridge", br_stp_state=0)])
    warnings += late
    master = _first_members_address(ipr, master, ports)
    for port in ports:
        _enslave(ipr, master, port)
    links.set_up(ipr, master)
    return warnings


def make_links(plan: BootPlan, deadline: Deadline, sleep: Sleep = time.sleep) -> list[str]:
    """Renames, bonds, bridges of `plan`, in that order; warnings for what was left out. Nothing to do: no
    netlink socket is opened."""
    if not (plan.renames or plan.bonds or plan.bridges):
        return []
    warnings: list[str] = []
    with Rtnl() as ipr:
        settle = udev_settle(ipr, deadline.child("udev", plan.timeouts.udev), sleep)
        for wanted in plan.renames:
            warnings += rename(ipr, wanted, deadline.child("iflink", plan.timeouts.iflink), settle, sleep)[1]
        for bond in plan.bonds:
            warnings += make_bond(ipr, bond, deadline.child("iflink", plan.timeouts.iflink), settle, sleep)
        for bridge in plan.bridges:
            warnings += make_bridge(ipr, bridge, deadline.child("iflink", plan.timeouts.iflink), settle, sleep)
    return warnings


def set_address(ipr: Rtnl, link: Link, mac: str) -> Link:
    """ip=...:<macaddr>: give the link that MAC address (down first: not every driver changes it while up)."""
    if link.mac == mac:
        return link
    if link.up:
        _set(ipr, link, "set it down to change its MAC address", state="down")
    try:
        _set(ipr, link, f"set MAC address {mac}", address=mac)
    except InterfaceError:
        if link.up:
            with contextlib.suppress(NetlinkError):
                ipr.link("set", index=link.index, state="up")
        raise
    return links.get_link(ipr, link.index)


__all__ = ["make_bond", "make_bridge", "make_links", "rename", "set_address"]
