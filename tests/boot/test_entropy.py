"""boot.entropy: the modules that draw secrets as they are imported, imported at boot without waiting."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# counts os.urandom's calls (the function that waits for the kernel's pool at boot), then imports multiprocessing
PROBE = """
import os, sys
calls = []
counting = lambda n, urandom=os.urandom: calls.append(n) or urandom(n)
os.urandom = counting
if sys.argv[1] == "boot":
    from boot import entropy
    entropy.import_without_waiting()
import multiprocessing, multiprocessing.process
key = multiprocessing.process.current_process().authkey
print(calls, len(key), os.urandom is counting)
"""


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ("plain", "[32] 32 True"),  # what pyroute2's import of multiprocessing does by itself: os.urandom(32)
        ("boot", "[] 32 True"),  # through boot.entropy: a key all the same, os.urandom untouched and back in place
    ],
)
def test_multiprocessing_is_imported_without_os_urandom(how: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, how], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, expected, "")


def test_nothing_to_import_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from boot import entropy

    before = os.urandom
    entropy.import_without_waiting(("os",))  # already imported
    assert os.urandom is before
