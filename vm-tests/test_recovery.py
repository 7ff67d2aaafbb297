"""Recovery, proven in the lab VM: tgtd restarted during I/O, `pyiscsi agent` recovers the session.

The guest (`recovery_guest.py`) hands over a CHAP session with CRC32C digests, starts the agent with the boot
command line it reloads the CHAP secret from, and writes through the kernel disk; the host restarts tgtd while
those writes run (sequenced through progress files in a shared directory, every wait bounded), and later
freezes it for 15 s (SIGSTOP: the connection stays open but silent, so the kernel's NOP-Out times out). The
session must come back on the same kernel session and disk, every write must complete, what the guest reads back and
what tgtd's backing file holds must both equal what was written, and the agent must log each step and stop
when told, leaving no pid file. A second boot passes ownership on as documented in boot.commands.agent:
`pyiscsi handover` writes the node records, `pyiscsi agent --stop`, then iscsid starts, adopts the session
(its own re-login on the same kernel session) and recovers it from a tgtd restart during writes.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from harness.lab import run_in_lab
from harness.paths import REPO

pytestmark = pytest.mark.vm

LAB_BOUND = 240.0
START_BOUND = 150.0  # until the guest's first write: boot, handover, agent start
INITIATOR = "iqn.2026-11.org.pyiscsi:recovery-guest"
TARGET = "iqn.2026-11.org.pyiscsi:recovery"
SECRET = "recovery-secret-1"
REPLACEMENT = 60
PHASES = ("restart", "pause")
PAUSE_SECONDS = 15.0  # past the kernel's NOP-Out interval + timeout (5 + 5 s), so the connection is declared dead
PHASE_BOUND = 90.0


def run_outages(share, phases: tuple[str, ...], owner: str = "agent") -> dict:
    """Boot the guest, act on tgtd at each phase the guest reaches, and collect what both sides saw."""
    from tests.support.tgtd import LunSpec, Tgtd

    with Tgtd() as tgt:
        target = tgt.add_target(TARGET, [LunSpec(16 << 20)])
        tgt.add_chap(target, "alice", SECRET)
        tgt.set_digests(target, "CRC32C", "CRC32C")
        cmdline = (
            f"netroot=iscsi:alice:{SECRET}@10.0.2.2::{tgt.port}:1:{TARGET} rd.iscsi.initiator={INITIATOR} ip=none "
            f"rd.iscsi.param=node.session.timeo.replacement_timeout={REPLACEMENT}"
        )
        config = {
            "port": tgt.port, "target": TARGET, "lun": 1, "initiator": INITIATOR, "share": str(share),
            "chap": {"username": "alice", "password": SECRET}, "cmdline": cmdline, "replacement": REPLACEMENT,
            "phases": list(phases), "owner": owner,
        }  # fmt: skip
        box: dict = {}

        def guest() -> None:
            box["result"] = run_in_lab(
                [str(REPO / ".venv/bin/python"), str(REPO / "vm-tests/recovery_guest.py"), json.dumps(config)],
                bound=LAB_BOUND,
                shares=[share],
            )

        thread = threading.Thread(target=guest, daemon=True)
        thread.start()
        acted = []
        for k, action in enumerate(phases):
            end = time.monotonic() + (START_BOUND if k == 0 else PHASE_BOUND)
            while not (share / f"ready-{k}").exists() and thread.is_alive() and time.monotonic() < end:
                time.sleep(0.2)
            if not (share / f"ready-{k}").exists():
                break
            time.sleep(0.5)  # a few writes in flight
            if action == "restart":
                tgt.restart()  # SIGKILL, then the same port, targets, accounts and digests again
            else:
                tgt.pause()  # frozen: the connection stays open, nothing answers; the kernel's NOP-Out times out
                try:
                    time.sleep(PAUSE_SECONDS)
                finally:
                    tgt.resume()
            (share / f"done-{k}").write_text("1")
            acted.append(action)
        thread.join(LAB_BOUND + 30)
        with open(target.luns[1].path, "rb") as f:
            backing = f.read()
    result = box.get("result")
    assert acted == list(phases), f"the guest reached only {acted}" + (
        "" if result is None else result.console.summary()
    )
    assert result is not None and result.status == 0, result and (result.stderr + result.console.summary())
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout + result.stderr
    got = lines[-1]
    offset, length = got["region"]
    got["backing_sha256"] = hashlib.sha256(backing[offset : offset + length]).hexdigest()
    got["agent_log"] = (share / "agent.log").read_text(errors="replace")
    got["console"] = result.console.log()
    iscsid_log = share / "iscsid.log"
    got["iscsid_log"] = iscsid_log.read_text(errors="replace") if iscsid_log.exists() else ""
    return got


@pytest.fixture(scope="module")
def recovery(pinned_kernel, tmp_path_factory):
    share = tmp_path_factory.mktemp("recovery-share")
    share.chmod(0o777)
    return run_outages(share, PHASES)


def test_every_write_completes_across_the_outages_and_nothing_is_lost(recovery) -> None:
    assert recovery["agent_started"] == 0, recovery["agent_log"]
    assert [p["action"] for p in recovery["phases"]] == list(PHASES)
    assert all(p["writes_after"] >= 32 for p in recovery["phases"]), recovery["phases"]
    assert recovery["read_back_sha256"] == recovery["expected_sha256"]
    assert recovery["backing_sha256"] == recovery["expected_sha256"]  # it reached tgtd's file, too


@pytest.mark.parametrize(("phase", "stall"), [(0, 1.0), (1, 8.0)])
def test_a_write_did_wait_out_each_outage(recovery, phase: int, stall: float) -> None:
    # restart: DefaultTime2Wait 2 s before the reconnect; pause: the frozen target, then the NOP-Out timeout
    assert recovery["phases"][phase]["longest_write_seconds"] >= stall, recovery["phases"]


def test_the_same_kernel_session_and_disk_come_back(recovery) -> None:
    assert recovery["session_state"] == "LOGGED_IN"
    assert recovery["device_still"] is True


@pytest.mark.parametrize(
    "step",
    [
        "listening for connection errors; owning recovery of session(s)",
        "connection failed: TCP_CONN_CLOSE (1020)",  # the restart
        "connection failed: NOP_TIMEDOUT (1022)",  # the frozen target
        "stopping it for recovery",
        "waiting DefaultTime2Wait 2s, then reconnecting (replacement timeout 60s)",
        "attempt 1: connecting to 10.0.2.2:",
        "logged in through the kernel (ISID ",
        "connection started, host",
        "recovered after ",
        "stopped listening: recovery is now the next owner's",
    ],
)
def test_the_agent_logs_each_step(recovery, step: str) -> None:
    assert step in recovery["agent_log"], recovery["agent_log"]


def test_the_md5_fallback_tgt_needs_is_learned_once(recovery) -> None:
    # tgt 1.0.x fails a SHA-256 CHAP answer: the first recovery falls back to MD5, the second offers it at once
    assert recovery["agent_log"].count("again with MD5 alone") == 1, recovery["agent_log"]


def test_recovery_steps_reach_the_kernel_log(recovery) -> None:
    kmsg = "\n".join(recovery["kmsg_agent"])
    for step in ("connection failed: ", "logged in through the kernel", "recovered after ", "stopped listening"):
        assert step in kmsg, kmsg
    assert SECRET not in kmsg


def test_the_agent_hands_ownership_back_when_told(recovery) -> None:
    assert recovery["agent_stopped"] == 0, recovery["agent_log"]
    assert recovery["pid_file_left"] is False


def test_the_chap_secret_is_never_logged(recovery) -> None:
    assert SECRET not in recovery["agent_log"]
    assert SECRET not in recovery["console"]


# -- passing ownership on: the agent stops, the real root's iscsid adopts the session and recovers it ----------


@pytest.fixture(scope="module")
def adopted(pinned_kernel, tmp_path_factory):
    share = tmp_path_factory.mktemp("adoption-share")
    share.chmod(0o777)
    return run_outages(share, ("restart",), owner="iscsid")


def test_the_agent_lets_go_and_iscsid_adopts_the_session(adopted) -> None:
    info = adopted["iscsid"]
    assert (info["handover"], info["agent_stopped"]) == (0, 0), adopted["agent_log"]
    assert info["adopted"], (info, adopted["iscsid_log"][-2000:])  # iscsid logged in again on the same session
    agent_log = adopted["agent_log"]
    assert "stopped listening: recovery is now the next owner's" in agent_log
    assert "connection failed" not in agent_log  # the outage below was never the agent's


def test_iscsid_recovers_the_adopted_session_and_nothing_is_lost(adopted) -> None:
    (phase,) = adopted["phases"]
    assert phase["writes_after"] >= 32, adopted["phases"]
    assert adopted["read_back_sha256"] == adopted["expected_sha256"]
    assert adopted["backing_sha256"] == adopted["expected_sha256"]
    assert adopted["session_state"] == "LOGGED_IN"
    assert "is operational after recovery" in adopted["iscsid_log"], adopted["iscsid_log"]
    assert SECRET not in adopted["agent_log"] + adopted["console"] + adopted["iscsid_log"]


def test_iscsid_reads_the_node_record_pyiscsi_handover_wrote(adopted) -> None:
    assert "Could not read data from db" not in adopted["iscsid_log"], adopted["iscsid_log"]
