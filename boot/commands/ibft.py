"""`pyiscsi ibft [SOURCE] [--json] [--show-secrets]`: parse and print an iBFT.

SOURCE is a raw table file, a directory shaped like /sys/firmware/ibft, or /dev/mem; without it the contract's
order is tried. A corrupt table exits 2 with the field named. Secrets print as *** unless --show-secrets.
"""

from __future__ import annotations

import argparse
import json

from initiator.ibft import Ibft, IbftNic, IbftTarget
from initiator.ibft_sources import load_ibft
from initiator.secret import REDACTED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", metavar="SOURCE", help="table file, sysfs directory or /dev/mem")
    parser.add_argument("--json", action="store_true", help="print the contract's JSON shape")
    parser.add_argument("--show-secrets", action="store_true", help="print CHAP secrets instead of ***")


def _nic_line(n: IbftNic) -> str:
    address = "no address" if n.ip is None else f"{n.ip}/{n.prefix}"
    parts = [f"  nic{n.index}: {n.mac} {address} origin {n.origin} flags {int(n.flags)}"]
    if n.gateway:
        parts.append(f"gw {n.gateway}")
    if n.dns:
        parts.append("dns " + ",".join(str(d) for d in n.dns))
    if n.dhcp_server:
        parts.append(f"dhcp {n.dhcp_server}")
    if n.vlan:
        parts.append(f"vlan {n.vlan}")
    if n.pci_bdf:
        parts.append(f"pci {n.pci_bdf}")
    if n.hostname:
        parts.append(f"hostname {n.hostname}")
    return " ".join(parts)


def _target_line(t: IbftTarget, show_secrets: bool) -> str:
    ip = "no address" if t.ip is None else (f"[{t.ip}]" if t.ip.version == 6 else str(t.ip))
    parts = [f"  target{t.index}: {t.name} at {ip}:{t.port} lun {t.lun} nic{t.nic_index} flags {int(t.flags)}"]
    parts.append(f"chap {t.chap_type.label}")
    for label, name, secret in (
        ("", t.chap_name, t.chap_secret),
        ("reverse ", t.reverse_chap_name, t.reverse_chap_secret),
    ):
        if name or secret:
            shown = secret.reveal() if (secret and show_secrets) else (REDACTED if secret else "-")
            parts.append(f"{label}{name or '-'}/{shown}")
    return " ".join(parts)


def format_ibft(table: Ibft, show_secrets: bool = False) -> str:
    lines = [f"source: {table.source}", f"oem: {table.oem_id} {table.oem_table_id}".rstrip()]
    if table.initiator is None:
        lines.append("initiator: (none)")
    else:
        lines.append(f"initiator: {table.initiator.name} flags {int(table.initiator.flags)}")
    lines += [_nic_line(n) for n in table.nics]
    lines += [_target_line(t, show_secrets) for t in table.targets]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    table = load_ibft(args.source)
    if args.json:
        print(json.dumps(table.to_json(args.show_secrets), indent=2))
    else:
        print(format_ibft(table, args.show_secrets))
    return 0
