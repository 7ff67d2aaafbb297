"""`pyiscsi handover --sysroot DIR`: leave the real root what it needs to keep and recover the boot sessions.

Run before switch_root (dracut's pre-pivot hook, or `pyiscsi-handover.service`). Reads what `pyiscsi boot`
recorded under the state directory and reloads the plan (same command line and iBFT) for the CHAP secrets,
which are never stored in /run (boot.handover.node_record takes them from the plan entry of each session).
Writes node records and the initiator name into the new root, and the keep-the-network files into this /run,
which moves into the real root with switch_root.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from boot.console import KMSG_WARNING, to_kmsg
from initiator.errors import BadInputError

if TYPE_CHECKING:
    import argparse

    from boot.plan import BootPlan

KMSG = True
STATE_DIR = "/run/pyiscsi"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from boot.commands.plan_args import add_plan_arguments

    parser.add_argument("--sysroot", required=True, metavar="DIR", help="the real root, mounted (dracut: $NEWROOT)")
    parser.add_argument("--state-dir", default=STATE_DIR, metavar="DIR", help="where `pyiscsi boot` recorded state")
    parser.add_argument("--run-root", default="/", metavar="DIR", help="root under which run/... files go")
    add_plan_arguments(parser)


def _warn(line: str) -> None:
    print(f"pyiscsi handover: warning: {line}", file=sys.stderr, flush=True)
    to_kmsg(f"handover: {line}", KMSG_WARNING)


def run(args: argparse.Namespace) -> int:
    from boot.commands.plan_args import plan_from_args

    sysroot = Path(args.sysroot)
    if not sysroot.is_dir():
        raise BadInputError("--sysroot", args.sysroot, "not a directory (is the real root mounted?)")
    for line in hand_over(sysroot, Path(args.state_dir), Path(args.run_root), lambda: plan_from_args(args), _warn):
        print(line)
    return 0


def hand_over(
    sysroot: Path, state_dir: Path, run_root: Path, plan: Callable[[], BootPlan], warn: Callable[[str], None]
) -> list[str]:
    """Write the real root's files; returns the summary lines (one per session, then the count). The recovery
    agent calls it too, when the step before switch_root asks it (boot.commands.agent), with the plan it holds."""
    from boot.handover import INITIATORNAME, run_files, sysroot_files, warm_caches, write_files
    from boot.net.state import read_state_file
    from boot.sessions import read_sessions

    sessions = read_sessions(state_dir / "sessions.json")
    net_file = state_dir / "net.json"
    interfaces = read_state_file(net_file) if net_file.exists() else ()
    try:
        existing = (sysroot / INITIATORNAME).read_text(errors="replace")[:65536]
    except OSError:
        existing = None
    files, warnings = sysroot_files(sessions, plan(), existing, str(state_dir / "agent.pid"))
    for warning in warnings:
        warn(warning)
    written = write_files(sysroot, files, warn) + write_files(run_root, run_files(interfaces), warn)
    warm_caches(sysroot)
    lines = []
    for row in sessions:
        role = "root" if row.root else "data"
        s = row.session
        lines.append(f"{role} session {s.sid}: {s.target} {s.portal.address}:{s.portal.port} -> {row.device}")
    lines.append(f"{len(written)} file(s) written for the real root")
    return lines
