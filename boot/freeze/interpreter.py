"""The interpreter the tree carries: by default the real binary behind this venv, and it must run our bytecode."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from boot.freeze.layout import PYVER
from initiator.errors import BadInputError


def host_interpreter() -> Path:
    """The real binary behind the venv (Debian's /usr/bin/python3 -> python3.11)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return Path(base).resolve()


def check_magic(interpreter: Path) -> None:
    """The bytecode is compiled here and run there: both must agree on the .pyc format."""
    if interpreter == host_interpreter():
        return
    probe = "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"
    try:
        result = subprocess.run([str(interpreter), "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BadInputError("interpreter", str(interpreter), f"does not run: {exc}") from None
    if result.stdout != importlib.util.MAGIC_NUMBER.hex():
        raise BadInputError("interpreter", str(interpreter), f"is not the Python {PYVER} this build compiles for")
