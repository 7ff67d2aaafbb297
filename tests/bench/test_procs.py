"""bench.procs: the benches' `pyiscsi` processes run as users run them (bytecode cached, the frozen tree chrooted)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from bench import procs


def test_checkout_processes_write_and_reuse_bytecode_under_a_private_prefix(monkeypatch) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as some CI and sandbox environments set it
    with procs.checkout_env() as env:
        prefix = Path(env["PYTHONPYCACHEPREFIX"])
        assert "PYTHONDONTWRITEBYTECODE" not in env and prefix.is_dir() and not any(prefix.iterdir())
        result = subprocess.run(procs.checkout_argv("--version"), env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.startswith("pyiscsi ")
        written = {path.name.split(".")[0] for path in prefix.rglob("*.pyc")}
        assert {"cli", "__main__"} <= written  # boot's own modules: read from here by the next process
    assert not prefix.exists()  # one prefix per bench run, removed after it
    assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"  # the bench's own environment is left as it was


def test_frozen_argv_is_the_wrappers_interpreter_command_in_a_chroot() -> None:
    argv = procs.frozen_argv(Path("/tree"), "discover", "p")
    assert argv[:3] == ["chroot", "/tree", "/usr/lib/pyiscsi/bin/python3"]
    assert argv[-4:] == ["-c", "from boot.cli import entry; entry()", "discover", "p"]
