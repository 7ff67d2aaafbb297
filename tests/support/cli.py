"""Run the real `pyiscsi` command as a subprocess, the way users and scripts do (black-box contract tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOUND = 60.0  # the test's own limit on one command: a hang fails the test instead of stalling the suite


def pyiscsi(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = BOUND
) -> subprocess.CompletedProcess[str]:
    """`python -m boot ARGS` with a clean PYISCSI_* environment plus `env`; raises TimeoutExpired on a hang."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYISCSI_")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "boot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environ,
        cwd=ROOT,
        check=False,
    )
