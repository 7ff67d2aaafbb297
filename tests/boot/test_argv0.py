from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from boot.argv0 import area_text, arg_area, mark_storage_daemon

REPO = Path(__file__).resolve().parents[2]
# proc(5): pid (comm) state, then fields 4..; arg_start and arg_end are fields 48 and 49
TAIL = " ".join(str(n) for n in range(4, 48))


@pytest.mark.parametrize(
    "comm",
    ["python3", "a b", "x) (y", "(", ")", "@pyiscsi-agent"],
)
def test_the_arg_area_is_found_whatever_the_command_name_holds(comm: str) -> None:
    assert arg_area(f"123 ({comm}) S {TAIL} 140737 140799 140800 140900 0") == (140737, 140799)


@pytest.mark.parametrize(
    ("name", "size", "text"),
    [
        (b"@pyiscsi-agent", 40, b"@pyiscsi-agent" + b"\0" * 26),
        (b"@pyiscsi-agent", 15, b"@pyiscsi-agent\0"),
        (b"@pyiscsi-agent", 14, b"@"),  # no room for the name and its NUL: the '@' alone still spares it
        (b"@pyiscsi-agent", 1, b"@"),
    ],
)
def test_the_area_gets_the_name_and_nuls_or_the_mark_alone(name: bytes, size: int, text: bytes) -> None:
    assert area_text(name, size) == text


MARKER = """
import sys
sys.path[:0] = [{repo!r}]
from pathlib import Path
from boot.argv0 import mark_storage_daemon
before = Path("/proc/self/cmdline").read_bytes()
ok = mark_storage_daemon()
after = Path("/proc/self/cmdline").read_bytes()
print(ok, before[:1] != b"@", after.rstrip(b"\\0") == b"@pyiscsi-agent", len(after) == len(before))
"""


def test_a_process_renames_itself_and_proc_shows_the_name_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", MARKER.format(repo=str(REPO))], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True"] * 4


def test_a_name_without_the_at_is_refused() -> None:
    with pytest.raises(ValueError, match="starts with '@'"):
        mark_storage_daemon("pyiscsi-agent")
