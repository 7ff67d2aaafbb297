"""Paths of a LUN: targets with the same name and LUN (two netroot= entries, two iBFT targets, or what discovery
found at two portals) are two paths to one LUN, which dm-multipath in the real root joins into one device.

One place for this because three parts must agree on it: the boot (which logins are the root's, whose failure
is only a warning), the kernel handover and the node records (a path's replacement timeout), and `explain`.

A path's replacement timeout: while a connection is down the kernel queues that session's I/O for the
replacement timeout, and dm-multipath sends it to another path only once the kernel fails it. A LUN with two or
more paths therefore gets a short one (MULTIPATH_REPLACEMENT) when dm-multipath joins them (BootPlan.dm_multipath:
multipathd in the image, rd.multipath not 0), unless the command line sets it
(rd.iscsi.param=node.session.timeo.replacement_timeout= or rd.pyiscsi.timeout.replacement=). A LUN with one path,
or paths without dm-multipath (the root is then one path's disk), keeps the plan's: that disk must ride out a
target restart.
"""

from __future__ import annotations

from collections.abc import Iterable

from boot.plan import BootPlan, TargetPlan
from initiator.printable import printable
from initiator.record import record

MULTIPATH_REPLACEMENT = 5.0  # seconds a path's I/O waits for its own recovery before dm-multipath moves it


def portal_text(t: TargetPlan) -> str:
    """address:port, an IPv6 address in brackets."""
    host = f"[{t.address}]" if ":" in t.address else t.address
    return f"{host}:{t.port}"


def lun_key(t: TargetPlan) -> tuple[str | None, int, str, int]:
    """What makes two targets paths of one LUN: the name and the LUN. A discovery entry (no name yet) is a LUN of
    its own until discovery names it, so its portal is part of its key."""
    if t.name is None:
        return (None, t.lun, t.address, t.port)
    return (t.name, t.lun, "", 0)


@record
class Lun:
    """One LUN and its paths, in the order the plan (or discovery) gave them."""

    name: str | None
    lun: int
    paths: tuple[TargetPlan, ...]

    @property
    def multipath(self) -> bool:
        return len(self.paths) >= 2

    def portals(self) -> tuple[str, ...]:
        return tuple(portal_text(p) for p in self.paths)


def group_paths(targets: Iterable[TargetPlan]) -> tuple[Lun, ...]:
    """The LUNs in order of their first path; a target listed twice at one portal is one path."""
    groups: dict[tuple[str | None, int, str, int], list[TargetPlan]] = {}
    for target in targets:
        paths = groups.setdefault(lun_key(target), [])
        if all((p.address, p.port) != (target.address, target.port) for p in paths):
            paths.append(target)
    return tuple(Lun(key[0], key[1], tuple(paths)) for key, paths in groups.items())


def replacement_for(plan: BootPlan, paths: int) -> float:
    """The replacement timeout of each session of a LUN with `paths` paths."""
    if paths >= 2 and plan.dm_multipath and not plan.replacement_given:
        return MULTIPATH_REPLACEMENT
    return plan.timeouts.replacement


def plan_notes(plan: BootPlan) -> list[str]:
    """What `explain` says about the paths of each multipath LUN of the plan (discovery ones are known at boot)."""
    notes = []
    for lun in group_paths(plan.targets):
        if not lun.multipath:
            continue
        replacement = replacement_for(plan, len(lun.paths))
        if plan.replacement_given:
            why = "as set on the command line"
        elif plan.dm_multipath:
            why = "so dm-multipath fails I/O over quickly"
        else:
            why = "no dm-multipath in this image (or rd.multipath=0): the root is one path's disk"
        portals = ", ".join(lun.portals())
        notes.append(
            f"target {printable(str(lun.name))} lun {lun.lun}: {len(lun.paths)} paths ({portals}), logged in at once; "
            f"each session's replacement timeout is {replacement:g}s ({why})"
        )
    return notes
