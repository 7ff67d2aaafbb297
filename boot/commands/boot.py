"""`pyiscsi boot`: the initramfs entry point. Plan, network, login, kernel handover, the root disk, state.

Prints a milestone line per step (`PYISCSI-MARK ...`, see boot.timeline), one line naming the cause on any
failure (console and kernel log), and writes `<state-dir>/booted` (the root disk's path) only when the root
disk is there: dracut's initqueue and the systemd unit wait for that file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from boot.timeline import Timeline
from initiator.console import KMSG_WARNING, to_kmsg
from initiator.errors import PyiscsiError

KMSG = True
STATE_DIR = "/run/pyiscsi"
# not dracut's /dev/root: util-linux's libmount takes "/dev/root" for the kernel's root= and mount(8) fails on it
ROOT_LINK = "pyiscsiroot"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from boot.commands.plan_args import add_plan_arguments

    add_plan_arguments(parser)
    parser.add_argument("--state-dir", default=STATE_DIR, metavar="DIR", help=f"where state goes (default {STATE_DIR})")
    parser.add_argument(
        "--root-link",
        metavar="NAME",
        help=f"give the root LUN this /dev name through udev (default: {ROOT_LINK} for root=iscsi:... or no root=)",
    )


def _warn(line: str) -> None:
    print(f"pyiscsi boot: warning: {line}", file=sys.stderr, flush=True)
    to_kmsg(f"boot: {line}", KMSG_WARNING)


def run(args: argparse.Namespace) -> int:
    timeline = Timeline()
    timeline.mark("start")
    try:
        return _boot(args, timeline)
    except PyiscsiError as exc:
        # the harness and `make demo` stop on this marker; the cause line itself comes from initiator.cli
        timeline.mark("failed", f"exit {int(exc.exit_status)}: {type(exc).__name__}")
        raise
    except Exception as exc:
        timeline.mark("failed", f"internal error: {type(exc).__name__}")
        raise


def _boot(args: argparse.Namespace, timeline: Timeline) -> int:
    from boot.atomic import write_atomic
    from boot.commands.plan_args import plan_from_args
    from boot.live import LiveSteps
    from boot.orchestrate import run_boot
    from boot.rootdev import link_root
    from boot.sessions import write_sessions

    plan = plan_from_args(args)
    state_dir = Path(args.state_dir)
    steps = LiveSteps(state_dir=str(state_dir))
    try:
        sessions = run_boot(plan, steps, timeline, warn=_warn)
    finally:
        steps.close()
    write_sessions(sessions, state_dir / "sessions.json")
    root = sessions[0]
    # root=iscsi:... (or no root= at all: rd.iscsi.firmware) names no device; dracut's hook waits for ROOT_LINK
    link = args.root_link or (ROOT_LINK if not plan.root or plan.root.startswith("iscsi:") else None)
    if link and root.device:
        link_root(root.device, link)
        timeline.mark("root-link", f"/dev/{link} -> {root.device}")
    write_atomic(state_dir / "booted", f"{root.device}\n")
    timeline.mark("booted", f"{len(sessions)} session(s), root {root.device}")
    return 0
