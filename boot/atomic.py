"""Files written whole or not at all: a crash or a full disk mid-write never leaves half a file behind."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from initiator.unique import unique_bytes

_TRIES = 100  # names taken by someone else before one is free: that many means something else is wrong


def write_atomic(path: str | os.PathLike[str], data: str | bytes, mode: int = 0o644) -> Path:
    """Write to a temporary file beside `path` with `mode` from the start, fsync it, then rename over `path`.

    The mode is set before any byte is written, so a secret never sits in a world-readable file, not even
    for a moment.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = _create_beside(target)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def _create_beside(target: Path) -> tuple[int, Path]:
    """A new file `.<name>.<random>` beside `target`, open for writing, only its owner may read it (what
    tempfile.mkstemp does, without importing tempfile, shutil and random on the boot's path)."""
    for _ in range(_TRIES):
        tmp = target.parent / f".{target.name}.{unique_bytes(6).hex()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {target} after {_TRIES} tries")
