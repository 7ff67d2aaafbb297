"""Runs inside the lab VM: hand a session over, start `pyiscsi agent`, keep writing while the host kills tgtd.

`test_recovery.py` passes one JSON argument: the portal port, target, LUN, CHAP, the boot command line the
agent reloads its plan (and so the CHAP secret) from, and a share directory. The program hands the session
over (digests on, as `handover_guest.attach`), records it in a sessions file, starts `pyiscsi agent --daemon`
(which returns once it listens), then writes a pattern through the kernel disk with O_DIRECT + fsync, chunk
after chunk, round a region. After its first write it leaves `io-started` in the share; the host then restarts
tgtd and leaves `restarted`. The writes go on until a good number have completed after that (they stall
while the session is down and complete once the agent has recovered it), then the region is read back. Finally
`pyiscsi agent --stop`. It prints one JSON line: checksums, the longest stall, the session's state, statuses.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from handover_guest import DirectDisk, attach, chap

from boot.sessions import write_sessions
from initiator.deadline import Deadline
from initiator.kernel import NetlinkIscsi

CHUNK = 64 << 10
REGION_OFFSET, REGION_LEN = 4 << 20, 2 << 20
WRITES_AFTER_OUTAGE = 32
IO_BOUND = 170.0  # the whole write loop, outages included
AGENT_BOUND = 30.0
ADOPT_BOUND = 40.0


def pattern(i: int) -> bytes:
    return hashlib.sha256(f"chunk {i}".encode()).digest() * (CHUNK // 32)


def agent(args: list[str], log: Path, timeout: float) -> int:
    with log.open("a") as out:
        command = [sys.executable, "-m", "boot", "agent", *args]
        return subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout).returncode


def local_port(sid: int) -> str | None:
    try:
        return Path(f"/sys/class/iscsi_connection/connection{sid}:0/local_port").read_text().strip()
    except OSError:
        return None


def hand_to_iscsid(cfg: dict, sid: int, share: Path, state_dir: Path, log: Path) -> tuple[subprocess.Popen, dict]:
    """The documented hand-over: `pyiscsi handover` writes the node records, `pyiscsi agent --stop` returns once
    the agent no longer listens, then iscsid starts and adopts the session (stop with recover, its own login:
    the connection's local port changes)."""
    Path("/etc/iscsi/initiatorname.iscsi").write_text(f"InitiatorName={cfg['initiator']}\n")  # the guest's overlay
    with log.open("a") as out:
        handover = subprocess.run(
            [sys.executable, "-m", "boot", "handover", "--sysroot", "/", "--state-dir", str(state_dir),
             "--cmdline", cfg["cmdline"], "--ibft", "none"],
            stdout=out, stderr=subprocess.STDOUT, timeout=AGENT_BOUND,
        ).returncode  # fmt: skip
    before = local_port(sid)
    stopped = agent(["--stop", "--pid-file", str(state_dir / "agent.pid"), "--timeout", "60"], log, 90)
    Path("/run/lock/iscsi").mkdir(parents=True, exist_ok=True)  # iscsid's record lock (the real root has it)
    daemon = subprocess.Popen(  # its own session: iscsid signals its process group when it shuts down
        ["iscsid", "-f"], stdout=(share / "iscsid.log").open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    began = time.monotonic()
    while local_port(sid) in (before, None) and time.monotonic() - began < ADOPT_BOUND:
        time.sleep(0.2)
    after = local_port(sid)
    adopted = after not in (before, None)
    return daemon, {
        "handover": handover, "agent_stopped": stopped, "adopted": adopted,
        "seconds": round(time.monotonic() - began, 2), "port_before": before, "port_after": after,
    }  # fmt: skip


def main() -> int:
    cfg = json.loads(sys.argv[1])
    share = Path(cfg["share"])
    state_dir = Path("/run/pyiscsi")
    state_dir.mkdir(parents=True, exist_ok=True)
    deadline = Deadline("guest handover", 60)
    with NetlinkIscsi() as netlink:  # our listener until the agent has its own
        state, _ = attach(
            netlink, cfg["target"], cfg["lun"], cfg["initiator"], cfg["port"], deadline,
            one_way=chap(cfg.get("chap")), digests=True, replacement=int(cfg["replacement"]),
        )  # fmt: skip
        state = dataclasses.replace(state, root=True)
        write_sessions([state], state_dir / "sessions.json")
        log = share / "agent.log"
        started = agent(
            ["--daemon", "--sessions", str(state_dir / "sessions.json"), "--pid-file", str(state_dir / "agent.pid"),
             "--cmdline", cfg["cmdline"], "--ibft", "none"],
            log, AGENT_BOUND,
        )  # fmt: skip
    out: dict = {"agent_started": started, "sid": state.session.sid, "device": state.device}
    if started != 0:
        print(json.dumps(out), flush=True)
        return 1
    assert state.device is not None
    iscsid = None
    if cfg.get("owner") == "iscsid":
        iscsid, out["iscsid"] = hand_to_iscsid(cfg, state.session.sid, share, state_dir, log)
        if not out["iscsid"]["adopted"]:
            iscsid.terminate()
            print(json.dumps(out), flush=True)
            return 1
    disk = DirectDisk(state.device)
    chunks = REGION_LEN // CHUNK
    expected = bytearray(REGION_LEN)
    writes = 0
    phases: list[dict] = []
    began = time.monotonic()
    try:
        for k, action in enumerate(cfg["phases"]):
            phase = {"action": action, "writes_after": -1, "longest_write_seconds": 0.0}
            phases.append(phase)
            first = True
            while phase["writes_after"] < WRITES_AFTER_OUTAGE and time.monotonic() - began < IO_BOUND:
                data = pattern(writes)
                offset = (writes % chunks) * CHUNK
                t0 = time.monotonic()
                disk.write(REGION_OFFSET + offset, data)
                phase["longest_write_seconds"] = round(max(phase["longest_write_seconds"], time.monotonic() - t0), 2)
                expected[offset : offset + CHUNK] = data
                writes += 1
                if first:  # writes are running: the host may act now
                    (share / f"ready-{k}").write_text("1")
                    first = False
                if phase["writes_after"] >= 0:
                    phase["writes_after"] += 1
                elif (share / f"done-{k}").exists():
                    phase["writes_after"] = 0
        back = disk.read(REGION_OFFSET, REGION_LEN)
    finally:
        disk.close()
    session = Path(f"/sys/class/iscsi_session/session{state.session.sid}")
    out.update(
        writes=writes,
        phases=phases,
        expected_sha256=hashlib.sha256(expected).hexdigest(),
        read_back_sha256=hashlib.sha256(back).hexdigest(),
        session_state=(session / "state").read_text().strip() if (session / "state").exists() else None,
        device_still=Path(state.device).exists(),
        region=[REGION_OFFSET, REGION_LEN],
    )
    if iscsid is not None:
        iscsid.terminate()
        out["iscsid_exit"] = iscsid.wait(10)
    out["agent_stopped"] = agent(["--stop", "--pid-file", str(state_dir / "agent.pid"), "--timeout", "60"], log, 90)
    out["pid_file_left"] = (state_dir / "agent.pid").exists()
    dmesg = subprocess.run(["dmesg"], capture_output=True, text=True, timeout=10).stdout
    out["kmsg_agent"] = [line.split("pyiscsi: ", 1)[1] for line in dmesg.splitlines() if "pyiscsi: agent: " in line]
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
