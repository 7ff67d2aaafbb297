"""Runs inside the lab VM: log in from userspace, hand the connection to iscsi_tcp, check the disk it gives.

`test_handover.py` starts a tgtd on the host with a few targets and passes this program one JSON argument: the
portal port, the initiator name and a list of cases (target, LUN, CHAP, digests, the expected size and block-0
sha256 of the LUN, and an area the host pre-wrote in the backing file). For each case, all in one boot:
userspace login (CmdSN = the kernel's initial CmdSN), hand over, SCSI scan, the block device of that LUN found
through sysfs; size and block 0 read through the kernel; a pattern written through the kernel disk (O_DIRECT,
fsync) and read back by a fresh userspace session (initiator.client); the host's area read through the kernel;
the sysfs attributes iscsid reads. It prints one JSON line per case; no secret is ever printed (only whether
the kernel holds the right one). Also importable: `attach()` is the guest-side handover the recovery test uses.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from boot.disk import wait_for_block_device
from boot.live import INITIAL_CMDSN, load_modules
from boot.sessions import SessionState
from initiator.client import login, logout, read_blocks
from initiator.credentials import Chap, Credentials
from initiator.deadline import Deadline
from initiator.handoff import HandoffParams, KernelSession, hand_over
from initiator.held_session import HeldSession
from initiator.kernel import NetlinkIscsi, scan_host
from initiator.portal import Portal
from initiator.secret import Secret

HOST = "10.0.2.2"
BLOCK = 512
SESSION_ATTRS = ("targetname", "tpgt", "initiatorname", "ifacename", "username", "username_in", "recovery_tmo")
CONN_ATTRS = ("persistent_address", "persistent_port", "exp_statsn", "header_digest", "data_digest")


def chap(spec: dict | None) -> Chap | None:
    return None if spec is None else Chap(spec["username"], Secret(spec["password"]))


def attach(
    netlink: NetlinkIscsi,
    target: str,
    lun: int,
    initiator: str,
    port: int,
    deadline: Deadline,
    *,
    one_way: Chap | None = None,
    reverse: Chap | None = None,
    digests: bool = False,
    replacement: int = 120,
) -> tuple[SessionState, KernelSession]:
    """What boot.live.LiveSteps.attach does, with digests selectable: login, hand over, scan, find the disk."""
    load_modules(deadline)
    digest = "CRC32C" if digests else "None"
    credentials = Credentials.of(one_way, reverse)
    conn = login(
        Portal(HOST, port), target, initiator, deadline, credentials=credentials,
        initial_cmdsn=INITIAL_CMDSN, header_digest=digest, data_digest=digest,
    )  # fmt: skip
    session = HeldSession.from_login(conn.result, portal=Portal(HOST, port), lun=lun, credentials=credentials)
    params = HandoffParams.from_login(conn.result, session, recovery_timeout=replacement)
    sock = conn.detach()
    try:
        kernel = hand_over(netlink, sock, params, deadline)
    finally:
        sock.close()
    scan_host(kernel.host_no)
    device = wait_for_block_device(kernel.sid, lun, deadline)
    state = SessionState(replace(session, sid=kernel.sid, host_no=kernel.host_no), device=device)
    return state, kernel


class DirectDisk:
    """O_DIRECT reads and writes of a block device (page-aligned buffers from mmap), so no page cache hides I/O."""

    def __init__(self, device: str) -> None:
        self.fd = os.open(device, os.O_RDWR | os.O_DIRECT)

    def write(self, offset: int, data: bytes) -> None:
        buf = mmap.mmap(-1, len(data))
        buf.write(data)
        if os.pwrite(self.fd, buf, offset) != len(data):
            raise OSError(f"short write at {offset}")
        os.fsync(self.fd)

    def read(self, offset: int, length: int) -> bytes:
        buf = mmap.mmap(-1, length)
        if os.preadv(self.fd, [buf], offset) != length:
            raise OSError(f"short read at {offset}")
        return bytes(buf)

    def close(self) -> None:
        os.close(self.fd)


def sysfs_attrs(sid: int, cid: int = 0) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    base = Path(f"/sys/class/iscsi_session/session{sid}")
    conn = Path(f"/sys/class/iscsi_connection/connection{sid}:{cid}")
    for directory, names in ((base, SESSION_ATTRS), (conn, CONN_ATTRS)):
        for name in names:
            try:
                out[name] = (directory / name).read_text().strip()
            except OSError:
                out[name] = None
    return out


def secret_matches(sid: int, name: str, expected: Chap | None) -> bool | None:
    """Whether the kernel holds the right secret (the value itself never leaves this function)."""
    if expected is None:
        return None
    try:
        return Path(f"/sys/class/iscsi_session/session{sid}/{name}").read_text().strip() == expected.password.reveal()
    except OSError:
        return False


def userspace_read(port: int, case: dict, initiator: str, lba: int, blocks: int) -> bytes:
    deadline = Deadline("userspace read", 30)
    one_way, reverse = chap(case.get("chap")), chap(case.get("mutual"))
    conn = login(Portal(HOST, port), case["target"], initiator, deadline, credentials=Credentials.of(one_way, reverse))
    try:
        return read_blocks(conn, case["lun"], lba, blocks, BLOCK, deadline)
    finally:
        logout(conn, deadline)


def run_case(netlink: NetlinkIscsi, port: int, initiator: str, case: dict) -> dict:
    started = time.monotonic()
    deadline = Deadline(f"case {case['name']}", 60)
    one_way, reverse = chap(case.get("chap")), chap(case.get("mutual"))
    state, _kernel = attach(
        netlink, case["target"], case["lun"], initiator, port, deadline,
        one_way=one_way, reverse=reverse, digests=case.get("digests", False),
    )  # fmt: skip
    device, sid = state.device, state.session.sid
    assert device is not None and sid is not None
    name = os.path.basename(device)
    size = int(Path(f"/sys/block/{name}/size").read_text()) * 512
    disk = DirectDisk(device)
    try:
        block0 = disk.read(0, BLOCK)
        pattern = hashlib.sha256(case["name"].encode()).digest() * (case["write_len"] // 32)
        disk.write(case["write_offset"], pattern)
        host_area = disk.read(case["host_offset"], case["host_len"])
    finally:
        disk.close()
    back = userspace_read(port, case, initiator, case["write_offset"] // BLOCK, case["write_len"] // BLOCK)
    return {
        "case": case["name"],
        "device": device,
        "sid": state.session.sid,
        "size": size,
        "block0_sha256": hashlib.sha256(block0).hexdigest(),
        "kernel_write_sha256": hashlib.sha256(pattern).hexdigest(),
        "userspace_read_sha256": hashlib.sha256(back).hexdigest(),
        "host_area_sha256": hashlib.sha256(host_area).hexdigest(),
        "header_digest": state.session.header_digest,
        "data_digest": state.session.data_digest,
        "sysfs": sysfs_attrs(sid),
        "password_ok": secret_matches(sid, "password", one_way),
        "password_in_ok": secret_matches(sid, "password_in", reverse),
        "seconds": round(time.monotonic() - started, 2),
    }


def teardown(netlink: NetlinkIscsi, data: dict, root: dict) -> dict:
    """End a data session (logout, stop, destroy); refuse to end the root one."""
    from initiator.errors import UsageError
    from initiator.teardown import end_session

    lines: list[str] = []
    try:
        end_session(netlink, root["sid"], Deadline("teardown", 10), root=True, log=lines.append)
        refused = None
    except UsageError as exc:
        refused = str(exc)
    ended = end_session(netlink, data["sid"], Deadline("teardown", 20), root=False, log=lines.append)
    deadline = Deadline("device removal", 10)
    while Path(data["device"]).exists() and not deadline.expired():
        time.sleep(0.1)
    return {
        "case": "teardown",
        "root_refused": refused,
        "root_session_still": Path(f"/sys/class/iscsi_session/session{root['sid']}").exists(),
        "root_device_still": Path(root["device"]).exists(),
        "logout_response": ended.logout_response,
        "data_session_gone": not Path(f"/sys/class/iscsi_session/session{data['sid']}").exists(),
        "data_device_gone": not Path(data["device"]).exists(),
        "log": lines,
    }


def main() -> int:
    config = json.loads(sys.argv[1])
    status = 0
    done: dict[str, dict] = {}
    with NetlinkIscsi() as netlink:
        for case in config["cases"]:
            try:
                line = run_case(netlink, config["port"], config["initiator"], case)
                done[case["name"]] = line
            except Exception as exc:  # one case failing must not hide the others' results
                line = {"case": case["name"], "error": f"{type(exc).__name__}: {exc}"}
                status = 1
            print(json.dumps(line), flush=True)
        if "data" in config and config["data"] in done and config["root"] in done:
            try:
                line = teardown(netlink, done[config["data"]], done[config["root"]])
            except Exception as exc:
                line = {"case": "teardown", "error": f"{type(exc).__name__}: {exc}"}
                status = 1
            print(json.dumps(line), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
