"""`pyiscsi boot`: the initramfs entry point. Plan, network, login, kernel handover, the root disk, state.

Prints a milestone line per step (`PYISCSI-MARK ...`, see boot.timeline), one line naming the cause on any
failure (console and kernel log), and writes `<state-dir>/booted` (the root disk's path) only when the root
disk is there: dracut's initqueue and the systemd unit wait for that file.

Before `booted`, it starts the recovery agent and waits until it listens: a fork of itself that marks its
argv[0] with '@' (boot.argv0) so that systemd spares it at switch_root, or, when another thread still runs, a
new interpreter (`@pyiscsi-agent ... agent --daemon`). From then until iscsid starts in the real root,
the agent owns recovery (boot.commands.agent). `rd.pyiscsi.agent=0` or `--no-agent` leaves it out; an agent
that does not start is a warning, not a failed boot.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from boot.console import KMSG_WARNING, to_kmsg
from boot.timeline import Timeline, process_start
from initiator.errors import PyiscsiError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from boot.plan import BootPlan
    from boot.sessions import SessionState

KMSG = True
STATE_DIR = "/run/pyiscsi"
# not dracut's /dev/root: util-linux's libmount takes "/dev/root" for the kernel's root= and mount(8) fails on it
ROOT_LINK = "pyiscsiroot"
AGENT_ARGV0 = "@pyiscsi-agent"  # systemd's root-storage-daemon rule: not killed at switch_root
# The frozen wrapper runs `python3 -s -P -S -B` in a cleaned environment (boot.freeze.wrapper_script). The
# interpreter finds its prefix from argv[0], which is `@pyiscsi-agent` here, so the prefix comes from PYTHONHOME
# instead: -I would ignore it, so its parts but -E (-s: no user site, -P: no script directory on sys.path) and an
# environment of our own.
PYTHON_FLAGS = ("-s", "-P", "-S", "-B")
AGENT_START_BOUND = 25.0  # the agent's own READY_TIMEOUT (15 s) plus its start-up


# What add_arguments's parser gives for no options: `pyiscsi boot` alone, as the initramfs runs it, runs with
# these and without argparse (boot.cli). tests/boot/test_cli.py checks that they match.
DEFAULTS = {
    "cmdline": None,
    "cmdline_file": None,
    "ibft": None,
    "state_dir": STATE_DIR,
    "root_link": None,
    "no_agent": False,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from boot.commands.plan_args import add_plan_arguments

    add_plan_arguments(parser)
    parser.add_argument("--state-dir", default=STATE_DIR, metavar="DIR", help=f"where state goes (default {STATE_DIR})")
    parser.add_argument(
        "--root-link",
        metavar="NAME",
        help=f"give the root LUN this /dev name through udev (default: {ROOT_LINK} for root=iscsi:... or no root=)",
    )
    parser.add_argument(
        "--no-agent",
        action="store_true",
        help="do not start the recovery agent (as rd.pyiscsi.agent=0)",
    )


def _warn(line: str) -> None:
    print(f"pyiscsi boot: warning: {line}", file=sys.stderr, flush=True)
    to_kmsg(f"boot: {line}", KMSG_WARNING)


def run(args: argparse.Namespace) -> int:
    timeline = Timeline()
    started = process_start()
    if started is not None:
        timeline.mark("exec", "the process started (the interpreter's start-up follows)", at=started)
    timeline.mark("start")
    # No cyclic garbage collection on the way to `booted`: the boot makes little garbage, and the collector's
    # passes over the hundreds of thousands of objects its imports create are a fifteenth of its CPU, which is
    # the boot's critical path under emulation. The process's entry (boot.cli.entry) has turned it off already;
    # this is for in-process callers. The agent forked from this process turns it back on.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _boot(args, timeline)
    except PyiscsiError as exc:
        # the harness and `make demo` stop on this marker; the cause line itself comes from boot.cli
        timeline.mark("failed", f"exit {int(exc.exit_status)}: {type(exc).__name__}")
        raise
    except Exception as exc:
        timeline.mark("failed", f"internal error: {type(exc).__name__}")
        raise
    finally:
        if collecting:
            gc.enable()


def _boot(args: argparse.Namespace, timeline: Timeline) -> int:
    from boot import deferred, entropy, warmup

    deferred.install()  # pyroute2's traffic-control modules run only if something uses them
    from boot.atomic import write_atomic
    from boot.commands.plan_args import plan_from_args
    from boot.live import LiveSteps
    from boot.orchestrate import run_boot
    from boot.rootdev import link_root
    from boot.sessions import write_sessions

    state_dir = Path(args.state_dir)
    steps = LiveSteps(state_dir=str(state_dir))
    plan = plan_from_args(args, before_firmware=steps.load_modules_for)
    if needs_pyroute2(plan):
        entropy.import_without_waiting()  # pyroute2's multiprocessing, before any thread of the bring-up runs
        import pyroute2.iproute.linux  # noqa: F401
    origin = ibft_origin(plan, getattr(args, "ibft", None))
    if origin:
        timeline.mark("firmware", f"ibft={origin}")
    warmup.arm()  # the waits on the network and on the disk import what the steps after them need
    try:
        sessions = run_boot(plan, steps, timeline, warn=_warn)
    finally:
        warmup.disarm()
        steps.close()
    write_sessions(sessions, state_dir / "sessions.json")
    if plan.agent and not getattr(args, "no_agent", False):
        warning, how = start_agent(args, state_dir, plan, sessions)
        if warning:
            _warn(warning)
        else:
            timeline.mark("agent", f"listening ({how}); it owns recovery until iscsid starts")
    root = sessions[0]
    # root=iscsi:... (or no root= at all: rd.iscsi.firmware) names no device; dracut's hook waits for ROOT_LINK
    link = args.root_link or (ROOT_LINK if not plan.root or plan.root.startswith("iscsi:") else None)
    if link and root.device:
        link_root(root.device, link)
        timeline.mark("root-link", f"/dev/{link} -> {root.device}")
        paths = [s for s in sessions if s.root]
        if len(paths) >= 2:  # dm-multipath cannot take a path that is mounted on its own
            _warn(multipath_link_warning(link, paths))
    write_atomic(state_dir / "booted", f"{root.device}\n")
    timeline.mark("booted", f"{len(sessions)} session(s), root {root.device}, cpu {cpu_seconds():.2f}s")
    return 0


def needs_pyroute2(plan: BootPlan) -> bool:
    """Whether the bring-up makes a virtual link (a VLAN, bond or bridge: boot.net.rtnl hands those to pyroute2's
    IPRoute). Then pyroute2 is imported here, in the main thread, before the interfaces' threads start."""
    return bool(plan.bonds or plan.bridges or any(i.vlan is not None for i in plan.interfaces))


def cpu_seconds() -> float:
    """The CPU this process and the children it waited for have used, user and system: under emulation the boot
    is bound by the one vCPU, and `make bench boot` reports this share of it beside the whole machine's."""
    used = os.times()
    return used.user + used.system + used.children_user + used.children_system


def multipath_link_warning(link: str, paths: list[SessionState]) -> str:
    """What to say when the root LUN has several paths but the root is named by the whole-LUN link."""
    disks = ", ".join(str(s.device) for s in paths)
    return (
        f"the root LUN has {len(paths)} paths ({disks}); /dev/{link} is only the first one's disk: name the "
        "dm-multipath device (or the file system on it) in root= to use them all"
    )


def ibft_origin(plan: BootPlan, given: str | None) -> str | None:
    """`kind:path` of the iBFT the plan took interfaces or targets from (None: it took none): acpi (UEFI), sysfs
    (iscsi_ibft), mem (the legacy BIOS scan) or file. `--ibft` names it; else it is the table the same lookup
    finds again (the planner keeps only what it took from it)."""
    from boot.plan import Source
    from initiator import ibft_sources

    if not any(p.source is Source.IBFT for p in (*plan.interfaces, *plan.targets)):
        return None
    path = given
    if path is None:
        try:
            table = ibft_sources.find_ibft()
        except PyiscsiError:
            return "unreadable"
        path = table.source if table is not None else None
    if not path:
        return "unknown"
    known = {ibft_sources.ACPI_TABLE: "acpi", ibft_sources.SYSFS_DIR: "sysfs", ibft_sources.DEV_MEM: "mem"}
    kind = known.get(path) or ("sysfs" if os.path.isdir(path) else "file")
    return f"{kind}:{path}"


def agent_command(args: argparse.Namespace, state_dir: Path, cmdline_file: Path | None) -> list[str]:
    """argv of `pyiscsi agent --daemon` for this boot's sessions and plan (argv[0] is the name, not the path)."""
    argv = [AGENT_ARGV0, *PYTHON_FLAGS, "-m", "boot", "agent", "--daemon"]
    argv += ["--sessions", str(state_dir / "sessions.json"), "--pid-file", str(state_dir / "agent.pid")]
    if cmdline_file is not None:
        argv += ["--cmdline-file", str(cmdline_file)]
    elif getattr(args, "cmdline_file", None):
        argv += ["--cmdline-file", str(args.cmdline_file)]
    if getattr(args, "ibft", None):
        argv += ["--ibft", str(args.ibft)]
    return argv


def agent_environment() -> dict[str, str]:
    """The agent's whole environment: where its interpreter's prefix is, PATH, and a hash seed that does not wait
    for the kernel's entropy (as the frozen wrapper's, boot.freeze.wrapper_script)."""
    from initiator.unique import unique_bytes

    home = sys.base_prefix if sys.base_prefix == sys.base_exec_prefix else f"{sys.base_prefix}:{sys.base_exec_prefix}"
    return {
        "PYTHONHOME": home,
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "PYTHONHASHSEED": str(int.from_bytes(unique_bytes(4), "big")),
    }


def start_agent(
    args: argparse.Namespace, state_dir: Path, plan: BootPlan, sessions: Sequence[SessionState]
) -> tuple[str | None, str]:
    """Start the agent and wait until it listens: (None or a warning, how it was started). A fork of this process
    when it is safe (no other thread: a fork copies only the calling one), so the agent needs no interpreter,
    imports or plan of its own; else a new interpreter (`spawn_agent`).

    The collector, off during the boot, is on again in the agent; what the boot made is frozen first (never
    scanned again, and the agent's collections do not write to the pages it shares with this process)."""
    from boot.commands.agent import resume_collection  # imported already: the warm-up's last module

    resume_collection()
    if fork_is_safe():
        from boot.commands.agent import daemonize, owned_sessions, running_agent

        pid_file = state_dir / "agent.pid"
        other = running_agent(pid_file)
        if other is not None:
            return f"agent pid {other} already owns recovery ({pid_file})", "forked"
        try:
            owned = owned_sessions(sessions, plan)
            # the dracut step before switch_root asks this agent for the handover (pyiscsi-lib.sh)
            daemonize(owned, pid_file, storage_daemon=True, plan=lambda: plan, handover_first=True)
        except PyiscsiError as exc:
            return f"recovery agent not started: {exc}; nobody owns recovery until iscsid", "forked"
        except OSError as exc:
            return f"recovery agent not started ({exc.strerror}); nobody owns recovery until iscsid", "forked"
        return None, "forked"
    return spawn_agent(args, state_dir), "started"


def fork_is_safe() -> bool:
    """Only this thread runs (a family's bring-up left running in the background rules a fork out)."""
    import threading

    return hasattr(os, "fork") and threading.active_count() == 1


def spawn_agent(args: argparse.Namespace, state_dir: Path, bound: float = AGENT_START_BOUND) -> str | None:
    """Start `@pyiscsi-agent ... agent --daemon` and wait until it listens (it exits 0 only then): None, or a
    warning."""
    import subprocess  # only when the agent cannot be forked (a bring-up thread still runs)

    from boot.atomic import write_atomic

    # a --cmdline text may hold CHAP secrets: never into an argv (ps shows it), a 0600 file read at start instead
    cmdline_file = None
    if getattr(args, "cmdline", None) is not None:
        cmdline_file = write_atomic(state_dir / ".agent-cmdline", f"{args.cmdline}\n", mode=0o600)
    try:
        try:
            agent = subprocess.Popen(
                agent_command(args, state_dir, cmdline_file),
                executable=sys.executable,
                env=agent_environment(),
                stdin=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                cwd="/",
            )
        except OSError as exc:
            return f"recovery agent not started ({exc.strerror}); nobody recovers a failed connection until iscsid"
        try:
            _out, err = agent.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
            return f"recovery agent did not report listening within {bound:g}s; nobody owns recovery until iscsid"
        if agent.returncode != 0:
            cause = " ".join((err or "").split()) or f"exit status {agent.returncode}"
            return f"recovery agent not started: {cause[:300]}; nobody owns recovery until iscsid"
        return None
    finally:
        if cmdline_file is not None:
            with contextlib.suppress(OSError):
                cmdline_file.unlink()
