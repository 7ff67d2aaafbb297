"""`pyiscsi explain`: print the boot plan `boot` would carry out, touching nothing.

`--json` prints the contract's shape plus two keys of our own, "options" (rd.iscsi.waitnet/testroute/param,
log level) and "notes" (what the planner decided or ignored). Secrets print as *** unless --show-secrets.
"""

from __future__ import annotations

import argparse
import json

from boot.commands.plan_args import add_plan_arguments, plan_from_args
from boot.plan import BootPlan, InterfacePlan, TargetPlan
from initiator.printable import printable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the contract's JSON shape")
    parser.add_argument("--show-secrets", action="store_true", help="print CHAP secrets instead of ***")


def explain_json(plan: BootPlan, show_secrets: bool = False) -> dict:
    out = plan.to_json(show_secrets)
    out["options"] = plan.options_json(show_secrets)
    out["notes"] = list(plan.notes)
    return out


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


def format_plan(plan: BootPlan, show_secrets: bool = False) -> str:
    lines = [f"initiator: {plan.initiator_name}", "interfaces:"]
    lines += [_interface_line(i) for i in plan.interfaces] or ["  (none)"]
    lines.append("targets:")
    lines += [_target_line(t, show_secrets) for t in plan.targets] or ["  (none)"]
    lines.append("waits (seconds): " + " ".join(f"{k}={v:g}" for k, v in plan.timeouts.to_json().items()))
    lines.append(f"root: {plan.root or ('(the first target LUN)' if plan.targets else '-')}")
    options = plan.options_json(show_secrets)
    params = " ".join(f"{k}={v}" for k, v in options.pop("iscsi_params").items())
    lines.append(
        "options: " + " ".join(f"{k}={v}" for k, v in options.items()) + (f" params: {params}" if params else "")
    )
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    plan = plan_from_args(args)
    if args.json:
        print(json.dumps(explain_json(plan, args.show_secrets), indent=2))
    else:  # names from the iBFT or the command line may hold control characters: one escaped line each
        print("\n".join(printable(line) for line in format_plan(plan, args.show_secrets).splitlines()))
    return 0
