"""Links: find the one a plan names (by name, by MAC, or the first with carrier), make its VLAN, set MTU, set it
up and wait for carrier. Every wait looks at the links under a named Deadline, between sleeps that the kernel's
link messages end early (boot.net.link_events); boot.net.rtnl does the netlink work (pyroute2's IPRoute
makes the VLAN).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from boot.net import udev_seen
from boot.net.rtnl import NetlinkError, Rtnl
from boot.net.waits import InterfaceError, ran_out
from initiator.deadline import Deadline
from initiator.printable import printable
from initiator.record import record

POLL = 0.05  # seconds between looks with a plain sleep (tests' fake clocks); link_events.PERIOD with link messages
ARPHRD_ETHER = 1
IFNAMSIZ = 15  # usable characters of a Linux interface name
STACKED_KINDS = frozenset({"vlan", "macvlan", "macvtap", "ipvlan", "bridge", "bond", "team", "vxlan"})

Sleep = Callable[[float], None]


@record
class Link:
    """A link as the bring-up needs it."""

    index: int
    name: str
    mac: str
    kind: str | None
    mtu: int
    carrier: bool
    up: bool
    max_mtu: int = 0  # IFLA_MAX_MTU: the largest MTU the driver takes (0: it does not say)
    master: int = 0  # IFLA_MASTER: the bond or bridge it is enslaved to (0: none)


def _link(msg: object) -> Link:
    # get_attr(), not get(): pyroute2 0.7 (Debian 12) reads a str key given to get() as a path of one-letter names
    info = msg.get_attr("IFLA_LINKINFO")  # type: ignore[attr-defined]
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    return Link(
        index=msg["index"],  # type: ignore[index]
        name=msg.get_attr("IFLA_IFNAME"),  # type: ignore[attr-defined]
        mac=(msg.get_attr("IFLA_ADDRESS") or "").lower(),  # type: ignore[attr-defined]
        kind=kind,
        mtu=msg.get_attr("IFLA_MTU") or 0,  # type: ignore[attr-defined]
        carrier=bool(msg.get_attr("IFLA_CARRIER")),  # type: ignore[attr-defined]
        up=bool(msg["flags"] & 1),  # type: ignore[index]
        max_mtu=msg.get_attr("IFLA_MAX_MTU") or 0,  # type: ignore[attr-defined]
        master=msg.get_attr("IFLA_MASTER") or 0,  # type: ignore[attr-defined]
    )


def list_links(ipr: Rtnl) -> list[Link]:
    return [_link(m) for m in ipr.get_links()]


def get_link(ipr: Rtnl, index: int) -> Link:
    return _link(ipr.get_links(index)[0])


def candidates(ipr: Rtnl) -> list[Link]:
    """Ethernet links a plan without name or MAC may take: not loopback, not a VLAN or bridge we or others made,
    not a bond slave or bridge port (its master carries the address)."""
    out = []
    for msg in ipr.get_links():
        if msg["ifi_type"] != ARPHRD_ETHER:
            continue
        link = _link(msg)
        if link.kind not in STACKED_KINDS and not link.master:
            out.append(link)
    return sorted(out, key=lambda link: link.index)


def _poll(deadline: Deadline, sleep: Sleep) -> None:
    """Sleep until the next look: POLL, or the sleep's own `period` when it wakes on link messages itself
    (boot.net.link_events); never past the deadline."""
    sleep(min(getattr(sleep, "period", POLL), max(0.0, deadline.remaining())))


def find_link(ipr: Rtnl, *, name: str | None, mac: str | None, deadline: Deadline, sleep: Sleep = time.sleep) -> Link:
    """The link named `name` or carrying `mac` (both given: both must match), waiting for it to appear."""
    label = name or mac or "?"
    while True:
        for link in list_links(ipr):
            if name is not None and link.name != name:
                continue
            if mac is not None and (link.mac != mac.lower() or link.kind in STACKED_KINDS):
                continue
            return link
        if deadline.expired():
            what = f"no link named {printable(name)}" if name else f"no link with MAC {printable(str(mac))}"
            if name and mac:
                what = f"no link named {printable(name)} with MAC {printable(mac)}"
            raise ran_out(label, deadline, what)
        _poll(deadline, sleep)


def after_udev(
    ipr: Rtnl,
    found: list[Link],
    deadline: Deadline,
    sleep: Sleep = time.sleep,
    *,
    udev_root: Path = udev_seen.UDEV_ROOT,
    proc: Path = udev_seen.PROC,
    sys_net: Path = udev_seen.SYS_NET,
) -> tuple[list[Link], list[str]]:
    """`found` read again once udev has handled each (it may have renamed it), before anything sets it up; the
    warnings name each link udev had not handled when `deadline` ('udev') ran out: it is used as it is."""
    late = udev_seen.wait_handled(
        [link.index for link in found], deadline, root=udev_root, proc=proc, sleep=sleep, sys_net=sys_net
    )
    current = [get_link(ipr, link.index) for link in found]
    which = deadline.tightest()
    warnings = [
        f"wait '{which.name}' ran out after {which.bound:g}s: udev had not handled {printable(link.name)} "
        f"(index {link.index}); "
        "set up without it (udev can no longer rename it)"
        for link in current
        if link.index in late
    ]
    return current, warnings


def candidates_after_udev(
    ipr: Rtnl,
    iflink: Deadline,
    udev: Deadline,
    sleep: Sleep = time.sleep,
    *,
    udev_root: Path = udev_seen.UDEV_ROOT,
    proc: Path = udev_seen.PROC,
) -> list[str]:
    """An 'any' plan, before a candidate is set up: wait (under `iflink`) for one to exist, then (under `udev`)
    for udev to have handled each, again for those that appeared meanwhile (a second NIC of the same driver).
    Returns the warnings of `after_udev`; the caller reads the candidates again, under their new names. Where
    udev does not handle our links (another network namespace, no udevd), nothing is waited for."""
    if not udev_seen.udev_handles_links(udev_root, proc):
        return []
    found = wait_candidates(ipr, iflink, sleep)
    seen: set[int] = set()
    warnings: list[str] = []
    while True:
        new = [link for link in found if link.index not in seen]
        if not new:
            return warnings
        warnings += after_udev(ipr, new, udev, sleep, udev_root=udev_root, proc=proc)[1]
        seen.update(link.index for link in new)
        if udev.expired():
            return warnings
        found = candidates(ipr)


def wait_candidates(ipr: Rtnl, deadline: Deadline, sleep: Sleep = time.sleep) -> list[Link]:
    """The candidates once there is at least one (udev may still be loading the NIC's driver); none when
    `deadline` runs out (the caller's error says so)."""
    while True:
        found = candidates(ipr)
        if found or deadline.expired():
            return found
        _poll(deadline, sleep)


def set_up(ipr: Rtnl, link: Link, mtu: int | None = None) -> Link:
    """Set the MTU (if asked and different) and the up flag."""
    try:
        if mtu is not None and mtu != link.mtu:
            ipr.link("set", index=link.index, mtu=mtu)
        if not link.up:
            ipr.link("set", index=link.index, state="up")
    except NetlinkError as exc:
        what = f"mtu {mtu}" if mtu is not None else "up"
        raise InterfaceError(link.name, f"cannot set {what}: {exc.args[1] if len(exc.args) > 1 else exc}") from exc
    return get_link(ipr, link.index)


def vlan_name(parent: str, vlan_id: int) -> str:
    """`eth0.100` as dracut names it, or `vlan0100` when the parent's name leaves no room."""
    name = f"{parent}.{vlan_id}"
    return name if len(name) <= IFNAMSIZ else f"vlan{vlan_id:04d}"


def ensure_vlan(ipr: Rtnl, parent: Link, vlan_id: int, mtu: int | None = None) -> Link:
    """The VLAN link `vlan_id` on `parent`, made if missing (an existing one with that id is reused)."""
    if not 1 <= vlan_id <= 4094:
        raise InterfaceError(parent.name, f"VLAN id {vlan_id} outside 1-4094")
    for msg in ipr.get_links():
        info = msg.get_attr("IFLA_LINKINFO")
        if not info or info.get_attr("IFLA_INFO_KIND") != "vlan" or msg.get_attr("IFLA_LINK") != parent.index:
            continue
        data = info.get_attr("IFLA_INFO_DATA")
        if data and data.get_attr("IFLA_VLAN_ID") == vlan_id:
            return _link(msg)
    name = vlan_name(parent.name, vlan_id)
    try:
        ipr.link("add", ifname=name, kind="vlan", link=parent.index, vlan_id=vlan_id, **({"mtu": mtu} if mtu else {}))
    except NetlinkError as exc:
        raise InterfaceError(parent.name, f"cannot create VLAN {vlan_id} as {printable(name)}: {exc}") from exc
    return _link(ipr.get_links(ipr.link_lookup(ifname=name)[0])[0])


def members_state(ipr: Rtnl, master: Link) -> str:
    """What a bond's slaves or a bridge's ports show when the master has no carrier, for its one-line failure:
    `nic0 up, no carrier; nic1 down`, or that it has none."""
    states = [
        f"{printable(link.name)} {'up' if link.up else 'down'}{'' if link.carrier else ', no carrier'}"
        for link in list_links(ipr)
        if link.master == master.index
    ]
    return "; ".join(states) if states else "none"


def wait_carrier(ipr: Rtnl, link: Link, deadline: Deadline, sleep: Sleep = time.sleep) -> Link:
    while True:
        current = get_link(ipr, link.index)
        if current.carrier:
            return current
        if deadline.expired():
            reason = "no carrier (cable, switch port or peer down)"
            if current.kind in ("bond", "bridge"):
                reason = (
                    f"no carrier; its {'slaves' if current.kind == 'bond' else 'ports'}: {members_state(ipr, current)}"
                )
            raise ran_out(link.name, deadline, reason)
        _poll(deadline, sleep)


def first_with_carrier(ipr: Rtnl, deadline: Deadline, sleep: Sleep = time.sleep) -> Link:
    """Any plan: set every candidate up, take the first with carrier, and set the others we raised back down."""
    if not candidates(ipr):
        raise InterfaceError("any", "no Ethernet link to bring up")
    raised = [set_up(ipr, link) for link in candidates(ipr) if not link.up]
    chosen: Link | None = None
    try:
        while chosen is None:
            chosen = next((link for link in candidates(ipr) if link.carrier and link.up), None)
            if chosen is None:
                if deadline.expired():
                    names = ", ".join(printable(link.name) for link in candidates(ipr))
                    raise ran_out("any", deadline, f"no carrier on any of {names}")
                _poll(deadline, sleep)
    finally:
        for link in raised:
            if chosen is None or link.index != chosen.index:
                with contextlib.suppress(NetlinkError):
                    ipr.link("set", index=link.index, state="down")
    return chosen
