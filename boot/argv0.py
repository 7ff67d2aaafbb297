"""Name this process as a root-storage daemon (argv[0] beginning with '@') without a new interpreter.

systemd spares such processes when it kills what is left at switch_root and at shutdown (its "root storage
daemon" rule reads the first byte of /proc/<pid>/cmdline). The recovery agent forked from `pyiscsi boot` keeps
the boot's argv (the interpreter's path and its flags), so it rewrites its argument area in place: the name, then
NUL bytes to the end, so /proc and ps show the agent's name alone. The area's address is in /proc/self/stat
(fields 48 and 49, arg_start and arg_end, proc(5)). CPython copied argv at start-up, so nothing in the interpreter
reads that memory again.
"""

from __future__ import annotations

from pathlib import Path

MARK = b"@"
ARG_START_FIELD = 48  # proc(5) numbering, from 1; the fields after the command name start at field 3


def arg_area(stat: str) -> tuple[int, int]:
    """arg_start and arg_end from a /proc/<pid>/stat line (the command name may hold blanks and parentheses)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    first = ARG_START_FIELD - 3
    return int(fields[first]), int(fields[first + 1])


def area_text(name: bytes, size: int) -> bytes:
    """What goes into an argument area of `size` bytes: the name and NULs; '@' alone where the name does not fit."""
    if len(name) < size:
        return name.ljust(size, b"\0")
    return MARK


def mark_storage_daemon(name: str = "@pyiscsi-agent", proc: Path = Path("/proc/self")) -> bool:
    """Make `name` (it starts with '@') this process's argv; True when /proc then shows the '@'."""
    if not name.startswith("@"):
        raise ValueError(f"a root-storage daemon's name starts with '@', not {name!r}")
    import ctypes

    start, end = arg_area((proc / "stat").read_text())
    if start and end > start:
        text = area_text(name.encode(), end - start)
        ctypes.memmove(start, text, len(text))
    return (proc / "cmdline").read_bytes().startswith(MARK)
