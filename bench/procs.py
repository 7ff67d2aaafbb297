"""The `pyiscsi` processes the benches start, each run as its users run it.

- The frozen runtime (`frozen_tree`, `frozen_argv`): the tree `boot.freeze` builds for the initramfs, run in a
  chroot of it with the interpreter command its wrapper ends in. This is what each machine of a boot storm runs.
- The checkout (`checkout_argv`, `checkout_env`): the venv's `python -m boot`, with its bytecode cached. Python
  writes `.pyc` files unless PYTHONDONTWRITEBYTECODE (or -B) says not to, and some CI and sandbox environments set
  it. Then every process compiled each of our modules from source, and the checkout rows measured the compiler
  (a `pyiscsi discover` took 104 ms instead of 43 ms on one machine). Installed Python code has its bytecode
  (Debian's py3compile, the frozen tree's .pyc files), so the benches' processes write theirs under a private
  pycache prefix, one per bench run, which a warm-up run fills.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from boot import freeze

FROZEN_FLAGS = ("-I", "-S", "-B")  # what the wrapper's interpreter command passes (-s -P -S -B, with -I's effect)


@contextlib.contextmanager
def frozen_tree() -> Iterator[freeze.FrozenTree]:
    """A frozen tree built for this run (with the /dev/null a chroot needs), removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="pyiscsi-bench-frozen-") as tmp:
        built = freeze.build(freeze.FreezeOptions(out=Path(tmp) / "tree", skip_missing=True))
        dev = built.root / "dev"
        dev.mkdir(exist_ok=True)
        if not (dev / "null").exists():
            os.mknod(dev / "null", 0o666 | 0o020000, os.makedev(1, 3))
        yield built


def frozen_argv(tree: Path, *args: str) -> list[str]:
    """`pyiscsi ARGS` in a chroot of the frozen tree (needs root), as the initramfs's wrapper runs it."""
    python = str(freeze.PREFIX / "bin" / "python3")
    return ["chroot", str(tree), python, *FROZEN_FLAGS, "-c", freeze.WRAPPER_CODE, *args]


@contextlib.contextmanager
def checkout_env() -> Iterator[dict[str, str]]:
    """The environment for checkout processes: bytecode written and read under a private prefix for this run."""
    with tempfile.TemporaryDirectory(prefix="pyiscsi-bench-pycache-") as tmp:
        env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = tmp
        yield env


def checkout_argv(*args: str) -> list[str]:
    """`pyiscsi ARGS` from the checkout: the venv's `python -m boot` (run it with checkout_env())."""
    return [sys.executable, "-m", "boot", *args]
