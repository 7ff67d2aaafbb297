"""`pyiscsi explain`: print the boot plan `boot` would carry out, touching nothing.

`--json` prints the contract's shape plus three keys of our own, "options" (rd.iscsi.waitnet/testroute/param,
log level), "notes" (what the planner decided or ignored) and "options_seen" (each dracut option on the command
line with its status in boot.dracut_options: supported, supported with a difference, refused), and "links" (the
link phase: ifname= renames, bond= and bridge= devices, ip= MAC addresses to set), and "luns" (the targets
grouped into LUNs with their paths, boot.paths: which is the root's, and each path's replacement timeout).
Secrets print as *** unless --show-secrets.
"""

from __future__ import annotations

import json

from boot import dracut_options, paths
from boot.commands.plan_args import add_plan_arguments, plan_from_args
from boot.plan import BootPlan, InterfacePlan, TargetPlan
from initiator.printable import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the contract's JSON shape")
    parser.add_argument("--show-secrets", action="store_true", help="print CHAP secrets instead of ***")


def explain_json(plan: BootPlan, show_secrets: bool = False, cmdline: str | None = None) -> dict:
    out = plan.to_json(show_secrets)
    out["options"] = plan.options_json(show_secrets)
    out["notes"] = list(plan.notes)
    out["options_seen"] = [row.to_json() for row in dracut_options.seen(cmdline or "")]
    out["links"] = plan.links_json()
    out["luns"] = luns_json(plan)
    return out


def luns_json(plan: BootPlan) -> list[dict]:
    """Each LUN of the plan with its paths; the first is the root's. A discovery entry's LUN is known at boot."""
    return [
        {
            "name": lun.name,
            "lun": lun.lun,
            "portals": list(lun.portals()),
            "root": index == 0,
            "multipath": lun.multipath,
            "dm_multipath": lun.multipath and plan.dm_multipath,
            "replacement": paths.replacement_for(plan, len(lun.paths)),
        }
        for index, lun in enumerate(paths.group_paths(plan.targets))
    ]


def lun_lines(plan: BootPlan) -> list[str]:
    """Each LUN with its paths, and how the root reaches its LUN."""
    lines = []
    for index, lun in enumerate(paths.group_paths(plan.targets)):
        name = lun.name or f"(SendTargets discovery at {lun.portals()[0]}, known at boot)"
        portals = " ".join(lun.portals())
        if index == 0 and lun.multipath and plan.dm_multipath:
            where = f"the root LUN has {len(lun.paths)} paths: {portals}, the root is the dm-multipath device over them"
        elif index == 0 and lun.multipath:
            where = (
                f"the root LUN has {len(lun.paths)} paths: {portals}, no dm-multipath in this image (or "
                "rd.multipath=0): the root uses one path's disk"
            )
        elif index == 0:
            where = f"the root uses {portals}"
        else:
            where = f"{len(lun.paths)} path{'s' if lun.multipath else ''}: {portals}"
        replacement = paths.replacement_for(plan, len(lun.paths))
        lines.append(f"  {name} lun {lun.lun}: {where} (replacement timeout {replacement:g}s)")
    return lines


def _cmdline_text(args: argparse.Namespace) -> str:
    """The command line the plan came from, for the option table (the planner read the same)."""
    from boot.commands.plan_args import cmdline_from_args
    from boot.planner import read_cmdline

    text = cmdline_from_args(args)
    return read_cmdline() if text is None else text


def _interface_line(i: InterfacePlan) -> str:
    link = i.name or i.mac or "first link with carrier"
    parts = [f"  {link}"]
    if i.name and i.mac:
        parts.append(f"(mac {i.mac})")
    if i.vlan is not None:
        parts.append(f"vlan {i.vlan}")
    parts.append(i.method.value)
    parts += [str(a) for a in i.addresses]
    if i.gateway:
        parts.append(f"gw {i.gateway}")
    if i.gateway6:
        parts.append(f"gw6 {i.gateway6}")
    if i.mtu:
        parts.append(f"mtu {i.mtu}")
    if i.dns:
        parts.append("dns " + ",".join(str(d) for d in i.dns))
    if i.hostname:
        parts.append(f"hostname {i.hostname}")
    parts.append(f"[{i.source.value}]")
    return " ".join(parts)


def link_lines(plan: BootPlan) -> list[str]:
    """The link phase, in the order the bring-up does it."""
    lines = [f"  rename the link with MAC {r.mac} to {r.name}" for r in plan.renames]
    for bond in plan.bonds:
        options = ",".join(f"{k}={v}" for k, v in bond.options)
        mtu = f" mtu {bond.mtu}" if bond.mtu else ""
        lines.append(f"  bond {bond.name} over {', '.join(bond.slaves)}: {options}{mtu}")
    lines += [f"  bridge {b.name} over {', '.join(b.ports)}" for b in plan.bridges]
    lines += [f"  set MAC {i.set_mac} on {i.name or 'the chosen link'}" for i in plan.interfaces if i.set_mac]
    return lines


def _portal(t: TargetPlan) -> str:
    address = f"[{t.address}]" if ":" in t.address else t.address
    return f"{address}:{t.port}"


def _target_line(t: TargetPlan, show_secrets: bool) -> str:
    parts = [f"  {t.name or '(SendTargets discovery)'} at {_portal(t)} lun {t.lun}"]
    if t.iface:
        parts.append(f"via {t.iface}")
    for label, chap in (("chap", t.chap), ("reverse chap", t.reverse_chap)):
        if chap is not None:
            secret = chap.password.reveal() if show_secrets else "***"
            parts.append(f"{label} {chap.username}/{secret}")
    parts.append(f"[{t.source.value}]")
    return " ".join(parts)


def format_plan(plan: BootPlan, show_secrets: bool = False, cmdline: str | None = None) -> str:
    lines = [f"initiator: {plan.initiator_name}", "interfaces:"]
    lines += [_interface_line(i) for i in plan.interfaces] or ["  (none)"]
    links = link_lines(plan)
    if links:
        lines += ["links (made before the interfaces come up):", *links]
    lines.append("targets:")
    lines += [_target_line(t, show_secrets) for t in plan.targets] or [
        "  (from DHCP option 17, the lease's root path, at boot)" if plan.dhcp_root is not None else "  (none)"
    ]
    luns = lun_lines(plan)
    if luns:
        lines += ["luns (the paths to each):", *luns]
    lines.append("waits (seconds): " + " ".join(f"{k}={v:g}" for k, v in plan.timeouts.to_json().items()))
    whole_lun = plan.targets or plan.dhcp_root is not None
    lines.append(f"root: {plan.root or ('(the first target LUN)' if whole_lun else '-')}")
    options = plan.options_json(show_secrets)
    params = " ".join(f"{k}={v}" for k, v in options.pop("iscsi_params").items())
    lines.append(
        "options: " + " ".join(f"{k}={v}" for k, v in options.items()) + (f" params: {params}" if params else "")
    )
    lines += [f"note: {n}" for n in plan.notes]
    for row in dracut_options.seen(cmdline or ""):  # forms only, never a value: no secret reaches these lines
        lines.append(f"option {row.form}: {row.status.value}: {row.detail}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    text = _cmdline_text(args)
    if args.json:
        print(json.dumps(explain_json(plan, args.show_secrets, text), indent=2))
    else:  # names from the iBFT or the command line may hold control characters: one escaped line each
        print("\n".join(printable(line) for line in format_plan(plan, args.show_secrets, text).splitlines()))
    return 0
