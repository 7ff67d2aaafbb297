"""`pyiscsi ibft [SOURCE] [--json] [--show-secrets]`: parse and print an iBFT.

SOURCE is a raw table file, a directory shaped like /sys/firmware/ibft, or /dev/mem; without it the contract's
order is tried. A corrupt table exits 2 with the field named. Secrets print as *** unless --show-secrets.
An inconsistent table (a target listed twice, a NIC index naming no NIC, ...) prints with one
`pyiscsi ibft: warning: ...` line per problem on stderr, and the same lines under "warnings" in --json.

Every string in the table came from the firmware, so none reaches the terminal raw:
- the text output passes each through `initiator.printable.printable` (ESC shows as \\x1b, a backslash as \\\\);
- --json carries the exact strings, escaped by JSON itself: with ensure_ascii every character outside
  printable ASCII (C0, DEL, C1, ESC, all non-ASCII) is written as \\uXXXX, so the document is printable ASCII
  on the terminal and decodes to the table's real values.
"""

from __future__ import annotations

import json
import sys

from initiator.ibft import Ibft, IbftNic, IbftTarget
from initiator.ibft_sources import load_ibft
from initiator.printable import printable
from initiator.secret import REDACTED

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="?", metavar="SOURCE", help="table file, sysfs directory or /dev/mem")
    parser.add_argument("--json", action="store_true", help="print the contract's JSON shape")
    parser.add_argument("--show-secrets", action="store_true", help="print CHAP secrets instead of ***")


def _show(value: object) -> str:
    return printable(str(value))


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
        parts.append(f"hostname {_show(n.hostname)}")
    return " ".join(parts)


def _target_line(t: IbftTarget, show_secrets: bool) -> str:
    ip = "no address" if t.ip is None else (f"[{t.ip}]" if t.ip.version == 6 else str(t.ip))
    parts = [f"  target{t.index}: {_show(t.name)} at {ip}:{t.port} lun {t.lun} nic{t.nic_index} flags {int(t.flags)}"]
    parts.append(f"chap {t.chap_type.label}")
    for label, name, secret in (
        ("", t.chap_name, t.chap_secret),
        ("reverse ", t.reverse_chap_name, t.reverse_chap_secret),
    ):
        if name or secret:
            shown = _show(secret.reveal()) if (secret and show_secrets) else (REDACTED if secret else "-")
            parts.append(f"{label}{_show(name) if name else '-'}/{shown}")
    return " ".join(parts)


def format_ibft(table: Ibft, show_secrets: bool = False) -> str:
    """The text output; every string from the table escaped by `printable`."""
    lines = [f"source: {_show(table.source)}", f"oem: {_show(table.oem_id)} {_show(table.oem_table_id)}".rstrip()]
    if table.initiator is None:
        lines.append("initiator: (none)")
    else:
        lines.append(f"initiator: {_show(table.initiator.name)} flags {int(table.initiator.flags)}")
    lines += [_nic_line(n) for n in table.nics]
    lines += [_target_line(t, show_secrets) for t in table.targets]
    return "\n".join(lines)


def format_json(table: Ibft, show_secrets: bool = False) -> str:
    """The contract's JSON; ensure_ascii keeps it printable ASCII whatever the strings hold."""
    return json.dumps(table.to_json(show_secrets), indent=2, ensure_ascii=True)


def run(args: argparse.Namespace) -> int:
    table = load_ibft(args.source)
    for warning in table.warnings:
        print(f"pyiscsi ibft: warning: {printable(warning)}", file=sys.stderr)
    print(format_json(table, args.show_secrets) if args.json else format_ibft(table, args.show_secrets))
    return 0
