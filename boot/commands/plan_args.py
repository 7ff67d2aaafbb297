"""The options that choose a boot plan's inputs, shared by `explain`, `net` and `boot`.

`--cmdline STR | --cmdline-file FILE` (default /proc/cmdline plus /etc/cmdline.d/*.conf) and `--ibft SOURCE`
(a table file, a sysfs directory, /dev/mem, or `none`; default: look where the contract says).
"""

from __future__ import annotations

from collections.abc import Callable

from boot.cmdline import Cmdline
from boot.plan import BootPlan
from boot.planner import NO_IBFT, load_plan
from initiator.errors import CmdlineError

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only when a command line has options to parse
    import argparse

MAX_CMDLINE_FILE = 1 << 20

__all__ = ["NO_IBFT", "add_plan_arguments", "load_plan", "plan_from_args"]


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cmdline", metavar="STR", help="a kernel command line (default: /proc/cmdline)")
    group.add_argument("--cmdline-file", metavar="FILE", help="read the kernel command line from FILE")
    parser.add_argument(
        "--ibft",
        metavar="SOURCE",
        help="iBFT table file, sysfs directory or /dev/mem; 'none' to ignore firmware (default: find it)",
    )


def cmdline_from_args(args: argparse.Namespace) -> str | None:
    """The command-line text the options name, or None for the machine's own."""
    if getattr(args, "cmdline", None) is not None:
        return str(args.cmdline)
    path = getattr(args, "cmdline_file", None)
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CMDLINE_FILE + 1)
    except OSError as exc:
        raise CmdlineError("--cmdline-file", path, f"cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CMDLINE_FILE:
        raise CmdlineError("--cmdline-file", path, f"larger than {MAX_CMDLINE_FILE} bytes")
    return " ".join(raw.decode("utf-8", errors="replace").splitlines())


def plan_from_args(args: argparse.Namespace, before_firmware: Callable[[Cmdline], None] | None = None) -> BootPlan:
    return load_plan(cmdline_from_args(args), getattr(args, "ibft", None), before_firmware=before_firmware)
