"""`pyiscsi net`: bring up only the plan's network and print what each interface got, and how long it took.

The quickest way to try an `ip=` line: `pyiscsi net --cmdline 'ip=eth0:dhcp'`. Exit 3 when the network refuses
(no such link after its bound is a timeout: 5), 5 when a bound ran out; the message names interface and wait.
"""

from __future__ import annotations

import json
import os
import sys

from boot.net.state import STATE_FILE, InterfaceState, net_json
from initiator.deadline import Deadline

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse

INITRD_RELEASE = "/etc/initrd-release"  # present in a dracut initramfs: only there is the host name ours to set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from boot.commands.plan_args import add_plan_arguments

    add_plan_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the contract's JSON shape")
    parser.add_argument(
        "--resolv-conf", metavar="FILE", help="write the name servers there (in the initramfs: /etc/resolv.conf)"
    )
    parser.add_argument(
        "--state-file", metavar="FILE", help=f"record the interfaces for the handover (boot uses {STATE_FILE})"
    )


def format_line(state: InterfaceState) -> str:
    parts = [state.name, state.method, " ".join(state.addresses) or "(no address)"]
    if state.gateway:
        parts.append(f"gw {state.gateway}")
    if state.gateway6:
        parts.append(f"gw6 {state.gateway6}")
    if state.dns:
        parts.append("dns " + ",".join(state.dns))
    if state.mtu:
        parts.append(f"mtu {state.mtu}")
    parts.append(f"({state.seconds:.2f}s)")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    from boot.commands.plan_args import plan_from_args
    from boot.net.bringup import bring_up

    plan = plan_from_args(args)
    deadline = Deadline("total", plan.timeouts.total)
    states = bring_up(
        plan,
        deadline,
        resolv_conf=args.resolv_conf,
        state_file=args.state_file,
        set_hostname=os.path.exists(INITRD_RELEASE),
    )
    for state in states:  # what the bring-up left out (a bad DHCP option), one escaped line each
        for dropped in state.warnings:
            print(f"pyiscsi net: warning: {state.name}: {dropped}", file=sys.stderr)
    if args.json:
        print(json.dumps(net_json(states), indent=2))
    elif not states:
        print("no interface in the plan (no ip=, ifname= or iBFT NIC)")
    else:
        for state in states:
            print(format_line(state))
    return 0
