"""`pyiscsi`: the command-line entry point.

Only the chosen subcommand's module is imported, so `pyiscsi boot` in the initramfs starts without loading the
code of the other commands. Each command module defines `add_arguments(parser)` and `run(args) -> int`, and
may set `KMSG = True` to copy its failure line to the kernel log. `COMMANDS` is the light registry the top-level
parser is built from. argparse (with re, gettext and locale) is imported only for a command line the lighter
ways do not take: `pyiscsi --version` alone, the start-up every caller pays, prints without it; a command given
without options whose module sets `DEFAULTS` (what its parser gives for no options: `pyiscsi boot`, as the
initramfs runs it) runs with those values; and a well-formed command line of the options people type
(`pyiscsi discover PORTAL --initiator IQN`) is parsed by boot.argv's recorder of the module's add_arguments,
which answers only where argparse would give the same namespace. Everything else (help, usage errors, an unknown
command, an option boot.argv does not know) goes to argparse, which says what it always said.
"""

from __future__ import annotations

import os
import sys

from initiator import __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without importing typing (and re) at every start
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from types import ModuleType, SimpleNamespace
    from typing import NoReturn

COMMANDS: dict[str, tuple[str, str]] = {
    "ibft": ("boot.commands.ibft", "parse an iBFT (file, sysfs directory or /dev/mem)"),
    "discover": ("boot.commands.discover", "SendTargets discovery against a portal"),
    "probe": ("boot.commands.probe", "log in from userspace and describe the target's LUNs"),
    "explain": ("boot.commands.explain", "print the boot plan from the command line and the iBFT"),
    "net": ("boot.commands.net", "bring up only the plan's network and print what each interface got"),
    "boot": ("boot.commands.boot", "the initramfs entry point: network, login, kernel handover"),
    "handover": ("boot.commands.handover", "write what the real root needs to keep the session"),
    "agent": ("boot.commands.agent", "own recovery of the handed-over sessions until told to stop"),
}

INTERNAL_ERROR = 70  # EX_SOFTWARE: a bug in pyiscsi, not in its input


_PARSER_CLASS: type[argparse.ArgumentParser] | None = None


def _parser(typed: Sequence[str], **kwargs: object) -> argparse.ArgumentParser:
    """An argparse parser that exits 1, not 2, on usage errors (our contract). Its messages may quote what the user
    typed, and a word typed may be a secret (an unquoted password with a space in it), so they quote none of it;
    options are never abbreviated (`--pass=SECRET` would be "ambiguous" and echoed). The class is made on first
    use, so that importing this module does not import argparse."""
    global _PARSER_CLASS
    if _PARSER_CLASS is None:
        import argparse

        from initiator.errors import UsageError

        class _Parser(argparse.ArgumentParser):
            def __init__(self, typed: Sequence[str], **kwargs: object) -> None:
                super().__init__(allow_abbrev=False, **kwargs)  # type: ignore[arg-type]
                self.typed = typed

            def error(self, message: str) -> None:  # type: ignore[override]
                raise UsageError(scrub_usage_message(message, self.typed))  # report_failure adds "pyiscsi <command>:"

            def _get_formatter(self) -> argparse.HelpFormatter:
                # argparse's own asks shutil for the width at every add_argument: shutil (with fnmatch, bz2 and
                # lzma) would load on every command line only to size a help text nobody asked for
                return self.formatter_class(prog=self.prog, width=help_width())

        _PARSER_CLASS = _Parser
    return _PARSER_CLASS(typed, **kwargs)  # type: ignore[call-arg]


def help_width() -> int:
    """The help text's width as argparse computes it (COLUMNS, else the terminal's, else 80; less 2), without
    importing shutil."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns if sys.__stdout__ else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns or 80) - 2


_QUOTED = r"'((?:[^'\\]|\\.)*)'"


def scrub_usage_message(message: str, typed: Sequence[str]) -> str:
    """argparse's message with every word the user typed (or value after '=') replaced by ***; the option names
    and choices it lists stay."""
    import re

    head, sep, rest = message.partition("unrecognized arguments:")
    if sep:
        return f"{head}unrecognized arguments: {len(rest.split())} word(s) (a value with spaces needs quotes)"
    words = {part for word in typed for part in (word, word.partition("=")[2]) if part}
    return re.sub(_QUOTED, lambda m: "'***'" if m.group(1) in words else m.group(0), message)


def _top_help() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "commands:\n" + "\n".join(lines)


class _Chosen:
    """The command being run, as far as it is known yet: what a failure line names, and whether it goes to the
    kernel log too."""

    command = ""  # not known yet: failures then read `pyiscsi: ...`
    kmsg = False


def exit_with(status: int) -> NoReturn:
    """End the process with `status` as soon as its output is flushed.

    The interpreter's orderly shutdown (atexit, clearing every module, collecting every object) is a sixth of a
    by-hand command's time and holds up the boot's unit; nothing of ours waits for it: files are written whole
    and closed where they are made. A non-daemon thread still running gets the usual exit, which waits for it."""
    for stream in (sys.stdout, sys.stderr):
        try:  # noqa: SIM105  (contextlib is not imported by every start)
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a reader gone, a stream closed or none: nothing to say
            pass
    threading = sys.modules.get("threading")
    main_thread = threading.main_thread() if threading else None
    if threading is None or all(t.daemon or t is main_thread for t in threading.enumerate()):
        os._exit(status)
    sys.exit(status)


def entry() -> NoReturn:
    """The `pyiscsi` process (the frozen wrapper's code, `python -m boot`): main() with the cyclic garbage
    collector off, then exit_with().

    A command's imports make tens of thousands of objects and no garbage; the collector's passes over them were
    a fifteenth of a by-hand `pyiscsi discover`'s time. Reference counting still frees what the commands drop,
    and they end within their bounds. What runs for long turns the collector on again: the recovery agent when it
    starts to serve (boot.commands.agent.resume_collection), and so the fork `pyiscsi boot` leaves. In-process
    callers of main() (the tests) keep their collector as it is."""
    import gc  # built in: no file to read

    gc.disable()
    exit_with(main())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # what argparse's version action prints, without importing argparse
        sys.stdout.write(f"pyiscsi {__version__}\n")
        sys.stdout.flush()
        return 0
    from boot.console import report_failure
    from initiator.errors import ExitStatus, PyiscsiError

    chosen = _Chosen()
    try:
        return _run(args, chosen)
    except PyiscsiError as exc:
        report_failure(chosen.command, str(exc), kmsg=chosen.kmsg)
        return int(exc.exit_status)
    except KeyboardInterrupt:
        report_failure(chosen.command, "interrupted")
        return 130
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except Exception as exc:  # a bug: one line on the console, the traceback only when asked for
        if os.environ.get("PYISCSI_DEBUG"):
            raise
        report_failure(chosen.command, f"internal error: {type(exc).__name__}: {exc}", kmsg=chosen.kmsg)
        return INTERNAL_ERROR


def _command_module(command: str, chosen: _Chosen):  # type: ignore[no-untyped-def]
    chosen.command = command
    name = COMMANDS[command][0]
    __import__(name)  # importlib.import_module's work, without importing importlib (and warnings) at every start
    module = sys.modules[name]
    chosen.kmsg = bool(getattr(module, "KMSG", False))
    return module


def _top_level_command(args: list[str]) -> str:
    """The command `pyiscsi ARGS` names, from the top-level parser: it prints the help or the version and exits,
    or refuses a missing or unknown command in one line."""
    import argparse

    top = _parser(
        args[1:],  # the command word itself is no secret: "invalid choice" may show it
        prog="pyiscsi",
        description="iSCSI boot initiator for the initramfs",
        epilog=_top_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    top.add_argument("--version", action="version", version=f"pyiscsi {__version__}")
    top.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    top.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return str(top.parse_args(args[:1] if args and not args[0].startswith("-") else args).command)


def _run(args: list[str], chosen: _Chosen) -> int:
    if len(args) == 1 and args[0] in COMMANDS:  # no options: the module's DEFAULTS, when it has them
        module = _command_module(args[0], chosen)
        defaults = getattr(module, "DEFAULTS", None)
        if defaults is not None:
            from types import SimpleNamespace

            return int(module.run(SimpleNamespace(**defaults)))
    # a known command word first: the top-level parser would only hand it on (it parses that word alone)
    command = args[0] if args and args[0] in COMMANDS else _top_level_command(args)
    module = _command_module(command, chosen)
    parsed = _parsed_without_argparse(module, args[1:])
    if parsed is not None:
        return int(module.run(parsed))
    sub = _parser(args, prog=f"pyiscsi {command}", description=COMMANDS[command][1])
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(args[1:])))


def _parsed_without_argparse(module: ModuleType, words: list[str]) -> SimpleNamespace | None:
    """The command's options from boot.argv, or None for argparse to parse them: what boot.argv does not know
    (an add_arguments that asks a parser for more than it records included) and every usage error."""
    from boot.argv import Recorder

    recorder = Recorder()
    try:
        module.add_arguments(recorder)
    except Exception:  # argparse's parser then gets the same calls: the same error, or the parse
        return None
    return recorder.parse(words)
