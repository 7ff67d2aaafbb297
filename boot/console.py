"""One-line reports for the console and the kernel log: a failed boot must say why where a user looks."""

from __future__ import annotations

import os
import sys

KMSG_PATH = "/dev/kmsg"
# syslog priorities as /dev/kmsg takes them in its "<N>" prefix.
KMSG_ERR = 3
KMSG_WARNING = 4
KMSG_INFO = 6


def to_kmsg(line: str, priority: int = KMSG_INFO, path: str = KMSG_PATH) -> bool:
    """Write one line to the kernel log; silently False where there is none (tests, containers)."""
    text = " ".join(line.splitlines())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.write(fd, f"<{priority}>pyiscsi: {text}\n".encode(errors="replace")[:1000])
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def report_failure(command: str, message: str, *, kmsg: bool = False) -> None:
    """`pyiscsi <command>: <message>` on one line (`pyiscsi: ...` before a command is known)."""
    line = f"pyiscsi{' ' if command else ''}{command}: {' '.join(message.splitlines())}"
    print(line, file=sys.stderr, flush=True)
    if kmsg:
        to_kmsg(f"{command}: {message}", KMSG_ERR)
