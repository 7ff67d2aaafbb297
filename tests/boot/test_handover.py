from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boot import atomic
from boot.handover import (
    ISCSID_DROPIN,
    initiator_name_file,
    iscsid_dropin,
    link_index,
    node_record,
    run_files,
    sysroot_files,
    write_files,
)
from boot.net.state import InterfaceState
from boot.plan import BootPlan, TargetPlan, Timeouts
from boot.sessions import SessionState
from initiator.credentials import Chap
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.record import replace
from initiator.secret import Secret

ROOT_T = TargetPlan(
    name="iqn.2026-11.test:root",
    address="10.0.2.2",
    lun=1,
    chap=Chap("alice", Secret("out-secret-1")),
    reverse_chap=Chap("tgt", Secret("in-secret-2")),
)
DISC_T = TargetPlan(name=None, address="10.0.2.2", port=3261, lun=0)
PLAN = BootPlan(initiator_name="iqn.2026-11.test:init", targets=(ROOT_T, DISC_T), timeouts=Timeouts(replacement=300))


def session(target: str, port: int, root: bool) -> SessionState:
    """As `read_sessions` gives it to the handover: without credentials (the file holds none)."""
    held = HeldSession(
        target=target,
        portal=Portal("10.0.2.2", port),
        tpgt=1,
        lun=1,
        sid=1,
        host_no=2,
        isid=bytes.fromhex("800000000001"),
        tsih=3,
        initiator_name="iqn.2026-11.test:init",
        header_digest="CRC32C",
        data_digest="None",
    )
    return SessionState(held, device="/dev/sda", root=root, seconds=1.0)


ROOT_S = session("iqn.2026-11.test:root", 3260, True)
FOUND_S = session("iqn.2026-11.test:found", 3261, False)


def keys(text: str) -> dict[str, str]:
    return dict(line.split(" = ", 1) for line in text.splitlines()[1:-1])


def test_root_record_is_onboot_with_the_plans_chap_and_bounds():
    rec = keys(node_record(ROOT_S, PLAN).render())
    assert rec["node.startup"] == "onboot"
    assert rec["node.session.auth.username"] == "alice"
    assert rec["node.session.auth.password"] == "out-secret-1"
    assert rec["node.session.auth.password_in"] == "in-secret-2"
    assert rec["node.session.timeo.replacement_timeout"] == "300"
    assert rec["node.conn[0].iscsi.HeaderDigest"] == "CRC32C"


def test_discovered_target_matches_its_portal_and_is_automatic():
    rec = keys(node_record(FOUND_S, PLAN).render())
    assert rec["node.startup"] == "automatic" and rec["node.session.auth.authmethod"] == "None"


@pytest.mark.parametrize(
    "existing, written, warned",
    [
        (None, True, False),
        ("## generated\nGenerateName=yes\n", True, False),
        ("InitiatorName=iqn.2026-11.test:init\n", False, False),
        ("# comment\nInitiatorName=iqn.1993-08.org.debian:01:abc\n", False, True),
    ],
)
def test_initiator_name_file(existing, written, warned):
    text, warning = initiator_name_file(existing, "iqn.2026-11.test:init")
    assert (text == "InitiatorName=iqn.2026-11.test:init\n") is written
    assert (warning is not None) is warned


def test_sysroot_files_paths_and_modes():
    files, warnings = sysroot_files([ROOT_S, FOUND_S], PLAN, None)
    assert files["etc/iscsi/nodes/iqn.2026-11.test:root/10.0.2.2,3260,1/default"][1] == 0o600
    assert files["etc/iscsi/nodes/iqn.2026-11.test:found/10.0.2.2,3261,1/default"][1] == 0o600
    assert files["etc/iscsi/initiatorname.iscsi"] == ("InitiatorName=iqn.2026-11.test:init\n", 0o644)
    assert warnings == []


def test_write_files_sets_modes_and_reports_a_read_only_root(tmp_path):
    files, _ = sysroot_files([ROOT_S], PLAN, None)
    written = write_files(tmp_path, files, warn=pytest.fail)
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(os.stat(p).st_mode) for p in written}
    assert modes["etc/iscsi/nodes/iqn.2026-11.test:root/10.0.2.2,3260,1/default"] == 0o600


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES, errno.EPERM])
def test_a_read_only_root_is_reported_not_fatal(tmp_path, monkeypatch, code):
    def refuse(target):
        raise OSError(code, os.strerror(code), str(target))

    monkeypatch.setattr("boot.atomic._create_beside", refuse)
    files, _ = sysroot_files([ROOT_S], PLAN, None)
    warnings: list[str] = []
    assert write_files(tmp_path, files, warn=warnings.append) == []
    assert len(warnings) == len(files) and all("not written" in w for w in warnings)


def test_other_write_errors_are_raised_after_the_rest_is_written(tmp_path, monkeypatch):
    real = atomic._write_all

    def full(fd, raw):
        if raw == b"b":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, raw)

    monkeypatch.setattr(atomic, "_write_all", full)
    with pytest.raises(OSError, match="No space"):
        write_files(tmp_path, {"a": ("a", 0o644), "b": ("b", 0o644), "c": ("c", 0o600)}, warn=pytest.fail)
    assert sorted(os.listdir(tmp_path)) == ["a", "c"]


def test_the_files_are_flushed_together_before_any_is_renamed(tmp_path, monkeypatch):
    """One sync for the whole set (the handover's cost was two journal commits per file), and no name replaced
    before its data is on disk."""
    events: list[str] = []
    monkeypatch.setattr(atomic, "_make_durable", lambda fds: events.append(f"sync {len(fds)}"))
    real_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: (events.append("rename"), real_replace(a, b)))
    files, _ = sysroot_files([ROOT_S, FOUND_S], PLAN, None)
    assert len(write_files(tmp_path, files, warn=pytest.fail)) == len(files)
    assert events == [f"sync {len(files)}"] + ["rename"] * len(files)


def test_run_files_keep_the_boot_interface():
    iface = InterfaceState(
        name="eth0", mac="52:54:00:12:34:56", method="dhcp", addresses=("10.0.2.15/24",), gateway="10.0.2.2"
    )
    files = run_files([iface], index_of={"eth0": 2}.get)
    assert "run/systemd/network/10-pyiscsi-eth0.network" in files
    assert files["run/initramfs/open-iscsi.interface"][0] == "eth0\n"
    assert "run/NetworkManager/devices/2" in files  # by the link's index, which switch_root keeps


def test_run_files_without_a_readable_index_leave_nm_its_profile_only():
    iface = InterfaceState(name="eth0", mac=None, method="dhcp", addresses=("10.0.2.15/24",))
    files = run_files([iface], index_of=lambda name: None)
    assert not any(p.startswith("run/NetworkManager/devices/") for p in files)
    assert "run/NetworkManager/system-connections/pyiscsi-eth0.nmconnection" in files


@pytest.mark.parametrize(
    ("content", "index"),
    [("2\n", 2), ("17", 17), ("", None), ("x\n", None), ("٣\n", None), ("99999999999\n", None), (None, None)],
)
def test_link_index_reads_sysfs_or_says_none(tmp_path: Path, content: str | None, index: int | None) -> None:
    if content is not None:
        (tmp_path / "eth0").mkdir()
        (tmp_path / "eth0" / "ifindex").write_text(content, encoding="utf-8")
    assert link_index("eth0", str(tmp_path)) == index


def test_secrets_never_in_reprs():
    assert "out-secret-1" not in repr(PLAN) and "out-secret-1" not in repr(replace(ROOT_S))


def test_warm_caches_looks_up_what_iscsid_reads_mid_recovery(tmp_path: Path) -> None:
    """iscsid's CHAP digest made OpenSSL read /usr/lib/ssl/openssl.cnf while the root's I/O was stopped: the
    lookup waited on the disk being recovered until replacement_timeout. The handover looks it up beforehand."""
    from boot.handover import WARM_PATHS, warm_caches

    assert "usr/lib/ssl/openssl.cnf" in WARM_PATHS
    (tmp_path / "usr/lib/ssl").mkdir(parents=True)
    (tmp_path / "usr/lib/ssl/openssl.cnf").write_text("# openssl\n")
    (tmp_path / "etc/iscsi").mkdir(parents=True)
    (tmp_path / "etc/iscsi/iscsid.conf").write_text("node.startup = manual\n")
    assert warm_caches(tmp_path) == ["usr/lib/ssl/openssl.cnf", "etc/iscsi/iscsid.conf"]
    assert warm_caches(tmp_path / "missing") == []


# -- passing ownership to iscsid: the drop-in and its shell snippet -----------------------------------------


def test_the_iscsid_drop_in_stops_the_agent_first_within_the_replacement_bound():
    files, _ = sysroot_files([ROOT_S], PLAN, None, "/run/pyiscsi/agent.pid")
    text, mode = files[ISCSID_DROPIN]
    assert ISCSID_DROPIN == "etc/systemd/system/iscsid.service.d/50-pyiscsi.conf" and mode == 0o644
    lines = text.splitlines()
    assert "[Service]" in lines
    (pre,) = [line for line in lines if line.startswith("ExecStartPre=")]
    assert pre.startswith("ExecStartPre=-/bin/sh -c '")  # '-': a failure never keeps iscsid from starting
    assert "TimeoutStartSec=360" in lines  # the snippet's bound (300 + 30) plus slack: systemd never cuts it short
    script = _unescape(pre)
    assert '"/run/pyiscsi/agent.pid"' in script and "within 330s" in script
    assert "$" not in pre.replace("$$", "") and "%" not in pre.replace("%%", "")  # nothing systemd would expand
    assert sysroot_files([], PLAN, None)[0] == {}


def test_the_drop_in_passes_systemd_analyze(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze")
    unit = tmp_path / "iscsid.service"
    unit.write_text("[Service]\nExecStart=/bin/true\n" + iscsid_dropin().split("[Service]\n", 1)[1])
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert str(unit) not in done.stderr, done.stderr  # a line naming the file is a parse complaint


def _unescape(exec_line: str) -> str:
    """What systemd hands /bin/sh -c: the single-quoted word, `$$` and `%%` undoubled."""
    body = exec_line.split("-c '", 1)[1]
    assert body.endswith("'")
    return body[:-1].replace("$$", "$").replace("%%", "%")


def _snippet(pid_file: Path, bound: int) -> list[str]:
    (line,) = [x for x in iscsid_dropin(str(pid_file), bound).splitlines() if x.startswith("ExecStartPre=")]
    return ["/bin/sh", "-c", _unescape(line)]


AGENT_LIKE = """
import os, signal, sys, time
pid_file = sys.argv[1]
def stop(*_):
    time.sleep(0.5)  # a recovery under way is finished first
    os.unlink(pid_file)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop if sys.argv[2] == "polite" else signal.SIG_IGN)
open(pid_file + ".tmp", "w").write(f"{os.getpid()}\\n"); os.rename(pid_file + ".tmp", pid_file)
time.sleep(60)
"""


def _agent_like(tmp_path: Path, how: str):  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "agent.pid"
    proc = subprocess.Popen([sys.executable, "-c", AGENT_LIKE, str(pid_file), how])
    end = time.monotonic() + 20
    while not pid_file.exists():
        assert time.monotonic() < end and proc.poll() is None
        time.sleep(0.05)
    return proc, pid_file


def test_the_snippet_stops_the_agent_and_waits_until_its_pid_file_is_gone(tmp_path: Path):
    proc, pid_file = _agent_like(tmp_path, "polite")
    try:
        started = time.monotonic()
        done = subprocess.run(_snippet(pid_file, 20), capture_output=True, text=True, timeout=40)
        took = time.monotonic() - started
        assert done.returncode == 0, done.stderr
        assert not pid_file.exists() and took >= 0.5  # it waited for the agent, which took 0.5 s
        assert proc.wait(timeout=10) == 0
        assert done.stdout.strip() == f"pyiscsi agent pid {proc.pid} stopped: iscsid owns recovery now"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_snippet_is_bounded_when_the_agent_does_not_stop(tmp_path: Path):
    proc, pid_file = _agent_like(tmp_path, "stubborn")
    try:
        started = time.monotonic()
        done = subprocess.run(_snippet(pid_file, 2), capture_output=True, text=True, timeout=40)
        assert done.returncode == 1 and 1.0 <= time.monotonic() - started < 10
        assert done.stderr.strip() == f"pyiscsi agent pid {proc.pid} did not stop within 2s"
        assert proc.poll() is None and pid_file.exists()  # nobody else's business to kill it
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("content", [None, "", "junk\n", "dead", "0\n", "-1\n", "007\n"])
def test_the_snippet_without_a_live_agent_returns_at_once(tmp_path: Path, content: str | None):
    pid_file = tmp_path / "agent.pid"
    if content == "dead":
        gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        content = gone.stdout
    if content is not None:
        pid_file.write_text(content)
    done = subprocess.run(_snippet(pid_file, 20), capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert not pid_file.exists()  # a stale file from a dead agent is cleared


# ---- paths of one LUN ------------------------------------------------------------------------------------------

ROOT_T2 = replace(ROOT_T, address="10.0.3.2", chap=Chap("bob", Secret("path-2-secret")))
ROOT_S2 = replace(ROOT_S, session=replace(ROOT_S.session, portal=Portal("10.0.3.2", 3260), sid=2), device="/dev/sdb")


def test_every_path_of_the_root_lun_gets_an_onboot_record_with_its_replacement_timeout():
    plan = replace(PLAN, targets=(ROOT_T, ROOT_T2))
    paths = [replace(ROOT_S, replacement=5.0), replace(ROOT_S2, replacement=5.0)]
    files, _ = sysroot_files(paths, plan, None)
    first = keys(files["etc/iscsi/nodes/iqn.2026-11.test:root/10.0.2.2,3260,1/default"][0])
    second = keys(files["etc/iscsi/nodes/iqn.2026-11.test:root/10.0.3.2,3260,1/default"][0])
    assert first["node.startup"] == second["node.startup"] == "onboot"
    assert first["node.session.timeo.replacement_timeout"] == second["node.session.timeo.replacement_timeout"] == "5"
    # each path's CHAP from the plan entry at its own portal
    assert (first["node.session.auth.username"], second["node.session.auth.username"]) == ("alice", "bob")
    assert "TimeoutStartSec=" in files[ISCSID_DROPIN][0]


def test_a_session_without_its_own_replacement_timeout_takes_the_plans():
    assert keys(node_record(ROOT_S, PLAN).render())["node.session.timeo.replacement_timeout"] == "300"
