"""A lab's private directory in the cache, named after the process that made it.

The real-root and multipath labs copy a Debian root (about 1.3 GB) into a directory of their own and remove it
when they close. A run that is killed (a CI time limit, a test run stopped by hand) never closes, and the cache
outlives the checkout, so each kill used to leave a root behind for good. The directory's name carries its
maker's pid: the next lab of the same kind removes those whose maker is gone, as netlab does for its namespaces.
A directory without a pid in its name (made before this) is never touched: nothing says whether it is in use.
The Debian root builds' stages follow the same rule, removed their own way (never through a mount point).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from boot.commands.agent import alive as process_alive  # whether the pid exists (another user's counts)
from harness.errors import HarnessError


def owner(name: str, prefix: str) -> int | None:
    """The pid in a private directory's name (`<prefix>-<pid>-<random>`), None for any other name."""
    match = re.fullmatch(re.escape(prefix) + r"-(\d+)-[A-Za-z0-9_]+", name)
    return int(match.group(1)) if match else None


def stale(names: Iterable[str], prefix: str, alive: Callable[[int], bool]) -> list[str]:
    """The names of `prefix`'s directories whose maker is gone. Pure: `alive(pid)` is asked, nothing touched."""
    return [name for name in names if (pid := owner(name, prefix)) is not None and not alive(pid)]


def make_private_dir(
    parent: Path,
    prefix: str,
    alive: Callable[[int], bool] = process_alive,
    mode: int = 0o755,
    remove: Callable[[Path], None] = shutil.rmtree,
) -> Path:
    """A new directory `<parent>/<prefix>-<our pid>-<random>` (`mode`: 0755 lets tgtd and QEMU in), after
    removing with `remove` the ones of `prefix` that killed runs left; one that cannot be removed stays."""
    parent.mkdir(parents=True, exist_ok=True)
    for name in stale((entry.name for entry in parent.iterdir()), prefix, alive):
        with contextlib.suppress(OSError, HarnessError):
            remove(parent / name)
    made = Path(tempfile.mkdtemp(dir=parent, prefix=f"{prefix}-{os.getpid()}-"))
    made.chmod(mode)
    return made
