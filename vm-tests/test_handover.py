"""The kernel handover, proven in the lab VM: userspace login, hand over to iscsi_tcp, the right LUN's disk.

One boot runs every case (`handover_guest.py`): a target with two LUNs of different sizes and CRC32C header and
data digests (we pick LUN 2), a one-way CHAP target and a mutual CHAP target. Each case checks the disk's size
and block 0 against tgtd's backing file, data written through the kernel disk read back by a fresh userspace
session, data the host put in the backing file read through the kernel, and the sysfs attributes the real
root's iscsid rebuilds its record from.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from harness.lab import run_in_lab
from harness.paths import REPO

pytestmark = pytest.mark.vm

LAB_BOUND = 180.0  # TCG on a busy machine: boot, three handovers, three userspace sessions
INITIATOR = "iqn.2026-11.org.pyiscsi:handover-guest"
TWO_LUNS = "iqn.2026-11.org.pyiscsi:two-luns"
ONE_WAY = "iqn.2026-11.org.pyiscsi:chap"
MUTUAL = "iqn.2026-11.org.pyiscsi:mutual"
SECRETS = ("handover-secret-1", "handover-secret-2", "target-secret-3")
WRITE_OFFSET, WRITE_LEN = 1 << 20, 64 << 10
HOST_OFFSET, HOST_LEN = 3 << 20, 16 << 10


def _host_area(path) -> str:
    """Put a pattern in the backing file where the guest will read it through the kernel; its sha256."""
    data = hashlib.sha256(str(path).encode()).digest() * (HOST_LEN // 32)
    with open(path, "r+b") as backing:
        backing.seek(HOST_OFFSET)
        backing.write(data)
    return hashlib.sha256(data).hexdigest()


def _region_sha(path, offset: int, length: int) -> str:
    with open(path, "rb") as backing:
        backing.seek(offset)
        return hashlib.sha256(backing.read(length)).hexdigest()


@pytest.fixture(scope="module")
def handover(pinned_kernel):
    from tests.support.tgtd import LunSpec, Tgtd

    with Tgtd() as tgt:
        two = tgt.add_target(TWO_LUNS, [LunSpec(16 << 20), LunSpec(24 << 20)])
        tgt.set_digests(two, "CRC32C", "CRC32C")
        chap_target = tgt.add_target(ONE_WAY, [LunSpec(8 << 20)])
        tgt.add_chap(chap_target, "alice", SECRETS[0])
        mutual_target = tgt.add_target(MUTUAL, [LunSpec(8 << 20)])
        tgt.add_chap(mutual_target, "carol", SECRETS[1])
        tgt.add_mutual_chap(mutual_target, "bobtarget", SECRETS[2])
        plans = [
            ("digests-lun2", two, 2, None, None, True),
            ("chap", chap_target, 1, {"username": "alice", "password": SECRETS[0]}, None, False),
            (
                "mutual",
                mutual_target,
                1,
                {"username": "carol", "password": SECRETS[1]},
                {"username": "bobtarget", "password": SECRETS[2]},
                False,
            ),
        ]
        cases, expected = [], {}
        for name, target, lun, one_way, reverse, digests in plans:
            backing = target.luns[lun]
            expected[name] = {
                "lun": backing,
                "size": backing.size,
                "block0_sha256": backing.block0_sha256(),
                "host_area_sha256": _host_area(backing.path),
            }
            cases.append(
                {
                    "name": name, "target": target.name, "lun": lun, "chap": one_way, "mutual": reverse,
                    "digests": digests, "write_offset": WRITE_OFFSET, "write_len": WRITE_LEN,
                    "host_offset": HOST_OFFSET, "host_len": HOST_LEN,
                }
            )  # fmt: skip
        config = {"port": tgt.port, "initiator": INITIATOR, "cases": cases, "data": "chap", "root": "digests-lun2"}
        result = run_in_lab(
            [str(REPO / ".venv/bin/python"), str(REPO / "vm-tests/handover_guest.py"), json.dumps(config)],
            bound=LAB_BOUND,
        )
        for name in expected:  # what the guest wrote through the kernel is in tgtd's file
            lun = expected[name]["lun"]
            expected[name]["backing_write_sha256"] = _region_sha(lun.path, WRITE_OFFSET, WRITE_LEN)
        port = tgt.port
    assert result.status is not None, result.console.summary()
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    got = {line.pop("case"): line for line in lines}
    return {"got": got, "expected": expected, "port": port, "result": result}


CASES = ["digests-lun2", "chap", "mutual"]


@pytest.mark.parametrize("case", CASES)
def test_handover_gives_the_disk_of_the_right_lun(handover, case: str) -> None:
    got, want = handover["got"][case], handover["expected"][case]
    assert "error" not in got, got
    assert got["device"].startswith("/dev/sd")
    assert got["size"] == want["size"]  # LUN 2 is 24 MiB, LUN 1 16 MiB: the size tells them apart
    assert got["block0_sha256"] == want["block0_sha256"]


@pytest.mark.parametrize("case", CASES)
def test_data_written_through_the_kernel_reads_back_in_userspace_and_vice_versa(handover, case: str) -> None:
    got, want = handover["got"][case], handover["expected"][case]
    assert "error" not in got, got
    assert got["userspace_read_sha256"] == got["kernel_write_sha256"]
    assert want["backing_write_sha256"] == got["kernel_write_sha256"]
    assert got["host_area_sha256"] == want["host_area_sha256"]


@pytest.mark.parametrize(
    ("case", "target", "username", "username_in", "digest"),
    [
        ("digests-lun2", TWO_LUNS, None, None, "CRC32C"),
        ("chap", ONE_WAY, "alice", None, "None"),
        ("mutual", MUTUAL, "carol", "bobtarget", "None"),
    ],
)
def test_sysfs_holds_what_iscsid_rebuilds_the_session_from(
    handover, case: str, target: str, username: str | None, username_in: str | None, digest: str
) -> None:
    got = handover["got"][case]
    assert "error" not in got, got
    sysfs = got["sysfs"]
    assert sysfs["targetname"] == target
    assert sysfs["tpgt"] == "1"
    assert sysfs["initiatorname"] == INITIATOR
    assert sysfs["ifacename"] == "default"
    assert (sysfs["persistent_address"], sysfs["persistent_port"]) == ("10.0.2.2", str(handover["port"]))
    assert sysfs["username"] == (username or "(null)") or (username is None and sysfs["username"] in ("", None))
    if username_in is not None:
        assert sysfs["username_in"] == username_in
    assert (got["header_digest"], got["data_digest"]) == (digest, digest)
    flag = "1" if digest == "CRC32C" else "0"  # the kernel shows the digest settings as 0/1
    assert (sysfs["header_digest"], sysfs["data_digest"]) == (flag, flag)
    assert got["password_ok"] is (True if username else None)
    assert got["password_in_ok"] is (True if username_in else None)


def test_no_secret_reaches_the_guest_output(handover) -> None:
    result = handover["result"]
    for secret in SECRETS:
        assert secret not in result.stdout + result.stderr
        # the config argument carries them into the guest's command file only, never to its console
        assert secret not in result.console.log()


def test_every_case_ran_in_one_boot(handover) -> None:
    assert set(handover["got"]) == {*CASES, "teardown"}
    assert handover["result"].status == 0, handover["result"].stderr[-2000:]


def test_a_data_session_is_logged_out_and_destroyed_the_root_session_never(handover) -> None:
    got = handover["got"]["teardown"]
    assert "error" not in got, got
    assert got["root_refused"] == f"session {handover['got']['digests-lun2']['sid']} is the root session: " + (
        "pyiscsi never logs it out"
    )
    assert got["root_session_still"] and got["root_device_still"]
    assert got["logout_response"] == 0  # the target answered: success
    assert got["data_session_gone"] and got["data_device_gone"]
    assert got["log"][-1].endswith("connection stopped, connection and session destroyed")
