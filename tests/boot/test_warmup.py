"""boot.warmup: one module per step, one thread at a time, and the list covers what the boot's steps after the
address import."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from boot import warmup


@pytest.fixture(autouse=True)
def _disarmed():
    yield
    warmup.disarm()


def test_one_module_per_step_in_order_skipping_what_is_imported_and_what_fails() -> None:
    seen: list[str] = []

    def importer(name: str) -> None:
        seen.append(name)
        if name == "broken":
            raise ImportError("no module named broken")

    warm = warmup.Warmup(["first", "sys", "broken", "last"], importer=importer)
    assert [warm.step() for _ in range(4)] == [True, True, True, False]  # sys is imported: no step of its own
    assert seen == ["first", "broken", "last"]


def test_one_thread_imports_at_a_time_and_any_thread_may_step() -> None:
    """The ARP probe steps from the bring-up's thread: allowed, but never while another step is importing."""
    importing, release = threading.Event(), threading.Event()
    seen: list[tuple[str, str]] = []

    def importer(name: str) -> None:
        seen.append((name, threading.current_thread().name))
        if name == "slow":
            importing.set()
            assert release.wait(10)

    warmup._armed = warmup.Warmup(["slow", "next", "last"], importer=importer)
    first: list[bool] = []
    other = threading.Thread(target=lambda: first.append(warmup.step()), name="net-c0")
    other.start()
    assert importing.wait(10)
    assert warmup.step() is False  # the other thread is importing: this one sleeps instead, and imports nothing
    release.set()
    other.join(10)
    assert first == [True]
    assert warmup.step() is True
    later: list[bool] = []
    again = threading.Thread(target=lambda: later.append(warmup.step()), name="net-c1")
    again.start()
    again.join(10)
    assert later == [True] and warmup.step() is False
    assert seen == [("slow", "net-c0"), ("next", "MainThread"), ("last", "net-c1")]


def test_unarmed_and_disarmed_steps_do_nothing() -> None:
    assert warmup.step() is False
    warmup.arm(["not.a.module.anywhere"])
    warmup.disarm()
    assert warmup.step() is False


STEPS_AFTER_ADDRESS = """
import sys
sys.path.insert(0, {repo!r})
import boot.commands.boot, boot.commands.plan_args, boot.live, boot.orchestrate, boot.net.bringup, boot.timeline
before = set(sys.modules)
from boot import warmup
warmup.arm()
while warmup.step():
    pass
warmed = set(sys.modules)
# what LiveSteps.discover/attach/wait_disk, boot's sessions and root link and the forked agent import
from initiator.client import discover, login
from initiator.handoff import HandoffParams, hand_over
from initiator.held_session import HeldSession
from initiator.kernel import NetlinkIscsi, scan_host
from boot.disk import wait_for_block_device
import pyudev
from boot.sessions import write_sessions
from boot.rootdev import link_root
from boot.atomic import write_atomic
from boot.commands.agent import daemonize, owned_sessions, running_agent
from boot.argv0 import mark_storage_daemon
from initiator.recovery import RecoveryLoop
print(len(warmed - before), sorted(set(sys.modules) - warmed))
"""


def test_after_the_warm_up_the_steps_after_the_address_import_nothing_new() -> None:
    repo = str(Path(__file__).resolve().parents[2])
    code = STEPS_AFTER_ADDRESS.format(repo=repo)
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, rest = done.stdout.split(" ", 1)
    assert int(count) > 20 and rest.strip() == "[]"


def test_every_module_named_exists() -> None:
    import importlib.util

    assert [name for name in warmup.AFTER_ADDRESS if importlib.util.find_spec(name) is None] == []
