"""The tgtd controller the integration tests stand on: private instances, loopback only, clean stop and restart."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import iscsiadm
from tests.support.sockets import free_port, silent_listener
from tests.support.tgtd import (
    CONTROL_DIR,
    LunSpec,
    Tgtd,
    TgtdError,
    _process_listens,
    ipv6_loopback_available,
    unavailable_reason,
)

pytestmark = pytest.mark.tgt

IQN = "iqn.2026-11.org.pyiscsi.test"


def _connects(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.settimeout(2)
        return probe.connect_ex((host, port)) == 0


def _listening_addresses(pid: int) -> set[tuple[str, int]]:
    """Every (local address hex, port) the process listens on, from /proc (IPv4 and IPv6)."""
    inodes = {p.readlink().name[8:-1] for p in Path(f"/proc/{pid}/fd").iterdir() if "socket" in str(p.readlink())}
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                address, port = fields[1].rsplit(":", 1)
                found.add((address, int(port, 16)))
    return found


def test_fixture_serves_on_loopback_only(tgtd: Tgtd) -> None:
    assert tgtd.running
    assert tgtd.portal == f"127.0.0.1:{tgtd.port}"
    assert _connects("127.0.0.1", tgtd.port)
    loopback4 = "0100007F"
    loopback6 = "00000000000000000000000001000000"
    expected = {(loopback4, tgtd.port)} | ({(loopback6, tgtd.port)} if tgtd.ipv6 else set())
    assert _listening_addresses(tgtd.pid or 0) == expected  # never 0.0.0.0 or [::]


def test_ipv6_portal(tgtd: Tgtd) -> None:
    if not tgtd.ipv6:
        pytest.fail("::1 is not available on this host: the IPv6 tests cannot run")
    assert tgtd.portal6 == f"[::1]:{tgtd.port}"
    assert _connects("::1", tgtd.port)


def test_targets_and_luns_backed_by_sparse_files(tgtd: Tgtd) -> None:
    target = tgtd.add_target(
        f"{IQN}:disks",
        [64 << 20, LunSpec(1 << 30, block0=b"\x55" * 4096, block_size=4096, vendor="PYISCSI", product="BIG")],
    )
    first, second = target.luns[1], target.luns[2]
    assert (first.size, first.block_size, first.blocks) == (64 << 20, 512, (64 << 20) // 512)
    assert (second.size, second.block_size, second.blocks) == (1 << 30, 4096, (1 << 30) // 4096)
    assert first.path.stat().st_size == 64 << 20
    assert second.path.stat().st_blocks * 512 < 1 << 20  # sparse
    assert first.block0().startswith(f"pyiscsi test {IQN}:disks lun 1\n".encode())
    assert len(first.block0()) == 512
    assert second.block0_sha256() == hashlib.sha256(b"\x55" * 4096).hexdigest()
    shown = tgtd.show()
    assert f"Target 1: {IQN}:disks" in shown
    assert f"Backing store path: {first.path}" in shown
    assert f"Backing store path: {second.path}" in shown
    assert "Block size: 4096" in shown
    assert "ALL" in shown  # the default ACL


def test_accounts_acl_digests_redirect_are_accepted(tgtd: Tgtd) -> None:
    target = tgtd.add_target(f"{IQN}:auth", [8 << 20], allow=["127.0.0.1"])
    tgtd.add_chap(target, "alice", "alice-secret-12")
    tgtd.add_mutual_chap(target, "target-bob", "bob-secret-1234")
    tgtd.set_digests(target, "CRC32C", "CRC32C")
    moved = tgtd.add_target(f"{IQN}:moved", [8 << 20])
    tgtd.redirect(moved, "127.0.0.1", 3261)
    shown = tgtd.show()
    assert "alice" in shown
    assert "target-bob (outgoing)" in shown
    assert "127.0.0.1" in shown
    params = tgtd.tgtadm("--mode", "target", "--op", "show", "--tid", str(target.tid))
    assert "HeaderDigest=CRC32C" in params
    assert "DataDigest=CRC32C" in params
    redirect = tgtd.tgtadm("--mode", "target", "--op", "show", "--tid", str(moved.tid))
    assert "RedirectAddress=127.0.0.1" in redirect
    assert "RedirectPort=3261" in redirect
    assert "RedirectReason=Temporary" in redirect
    with pytest.raises(TgtdError, match="exists already"):
        tgtd.add_chap(moved, "alice", "other-secret-12")


def test_bad_configuration_raises(tgtd: Tgtd) -> None:
    target = tgtd.add_target(f"{IQN}:x")
    with pytest.raises(TgtdError, match="LUN 0"):
        tgtd.add_lun(target, 0, LunSpec(1 << 20))
    with pytest.raises(TgtdError, match="failed"):
        tgtd.set_param(target, "NoSuchParameter", "1")


def test_two_instances_at_once() -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    with Tgtd() as one, Tgtd() as two:
        assert one.port != two.port
        assert one.control_port != two.control_port
        one.add_target(f"{IQN}:one")
        two.add_target(f"{IQN}:two")
        assert f"{IQN}:one" in one.show()
        assert f"{IQN}:two" not in one.show()
        assert f"{IQN}:two" in two.show()
        assert _connects("127.0.0.1", one.port)
        assert _connects("127.0.0.1", two.port)


def test_stop_frees_port_and_files_and_close_removes_workdir() -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    server = Tgtd()
    with server:
        server.add_target(f"{IQN}:t", [1 << 20])
        port, control, workdir = server.port, server.control_port, server.workdir
        server.stop()
        assert not server.running
        assert not _connects("127.0.0.1", port)
        with socket.socket() as rebind:
            rebind.bind(("127.0.0.1", port))  # nobody holds it any more
        assert not (CONTROL_DIR / f"socket.{control}").exists()
        assert not (CONTROL_DIR / f"socket.{control}.lock").exists()
    assert not workdir.exists()


def test_cleanup_when_the_body_fails() -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    with pytest.raises(RuntimeError, match="test body failed"), Tgtd() as server:
        pid, workdir = server.pid, server.workdir
        raise RuntimeError("test body failed")
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    assert not workdir.exists()


def test_restart_keeps_port_and_configuration(tgtd: Tgtd) -> None:
    target = tgtd.add_target(f"{IQN}:kept", [4 << 20, 8 << 20])
    tgtd.add_chap(target, "carol", "carol-secret-12")
    port, pid = tgtd.port, tgtd.pid
    tgtd.restart()
    assert tgtd.pid != pid
    assert tgtd.port == port
    assert _process_listens(tgtd.pid or 0, port, socket.AF_INET)
    shown = tgtd.show()
    assert f"{IQN}:kept" in shown
    assert str(target.luns[2].path) in shown
    assert "carol" in shown


def test_start_retries_when_the_port_is_taken() -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    with silent_listener() as taken:
        server = Tgtd()
        server.port = taken  # as if restarting onto a port someone else grabbed meanwhile
        with pytest.raises(TgtdError, match="could not bind"):
            server.start()
        server.close()


def test_socket_helpers() -> None:
    port = free_port()
    assert not _connects("127.0.0.1", port)
    with silent_listener() as quiet, socket.create_connection(("127.0.0.1", quiet), timeout=2) as conn:
        conn.sendall(b"\x43" + bytes(47))
        conn.settimeout(0.3)
        with pytest.raises(TimeoutError):
            conn.recv(1)  # accepted, and never a byte back


def test_stock_iscsiadm_discovers_our_targets(tgtd: Tgtd) -> None:
    """open-iscsi's own SendTargets sees what we configured: the setup is sound independently of pyiscsi."""
    reason = iscsiadm.unavailable_reason()
    if reason:
        pytest.skip(reason)
    tgtd.add_target(f"{IQN}:a", [1 << 20])
    tgtd.add_target(f"{IQN}:b", [1 << 20])
    tgtd.add_target(f"{IQN}:hidden", [1 << 20], allow=["192.0.2.1"])  # ACL hides it from 127.0.0.1
    with iscsiadm.iscsid_stand_in():
        result = iscsiadm.sendtargets(tgtd.portal, f"{IQN}:initiator")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{tgtd.portal},1 {IQN}:a", f"{tgtd.portal},1 {IQN}:b"]
    if tgtd.ipv6:
        with iscsiadm.iscsid_stand_in():
            result6 = iscsiadm.sendtargets(tgtd.portal6, f"{IQN}:initiator")
        assert result6.returncode == 0, result6.stderr
        assert sorted(result6.stdout.splitlines()) == [f"{tgtd.portal6},1 {IQN}:a", f"{tgtd.portal6},1 {IQN}:b"]


def test_second_portal_serves_the_same_target_and_survives_restart(tgtd: Tgtd) -> None:
    """Two paths to one LUN: the target answers SendTargets at the second port too (tgt names the portal asked)."""
    tgtd.add_target(f"{IQN}:two", [1 << 20])
    second = tgtd.add_portal()
    assert second != tgtd.port and tgtd.extra_ports == [second]
    loopback4 = "0100007F"
    assert {(loopback4, tgtd.port), (loopback4, second)} <= _listening_addresses(tgtd.pid or 0)
    tgtd.restart()
    assert _process_listens(tgtd.pid or 0, second, socket.AF_INET)
    if iscsiadm.unavailable_reason() is None:
        with iscsiadm.iscsid_stand_in():
            result = iscsiadm.sendtargets(f"127.0.0.1:{second}", f"{IQN}:initiator")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"127.0.0.1:{second},1 {IQN}:two"]


def test_pause_holds_connections_silent_and_resume_answers_again(tgtd: Tgtd) -> None:
    tgtd.add_target(f"{IQN}:p", [1 << 20])
    tgtd.pause()
    try:
        with socket.create_connection(("127.0.0.1", tgtd.port), timeout=2) as conn:
            conn.sendall(b"\x43" + bytes(47))  # the kernel completes the handshake; tgtd reads nothing
            conn.settimeout(0.3)
            with pytest.raises(TimeoutError):
                conn.recv(1)
    finally:
        tgtd.resume()
    assert f"{IQN}:p" in tgtd.show()


def test_tgtd_dies_with_the_process_that_started_it() -> None:
    """A test process killed outright (a CI timeout) leaves no tgtd behind holding a port."""
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from tests.support.tgtd import Tgtd\n"
        "t = Tgtd().start()\n"
        "print(t.pid, t.port, t.workdir, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pid_text, port_text, workdir = parent.stdout.readline().split()
        pid, port = int(pid_text), int(port_text)
        assert _connects("127.0.0.1", port)
    finally:
        parent.kill()
        parent.wait(timeout=10)
        parent.stdout.close()
    shutil.rmtree(workdir, ignore_errors=True)  # the one thing a killed owner cannot clean up
    for _ in range(100):
        if not Path(f"/proc/{pid}").exists() or "Z (zombie)" in Path(f"/proc/{pid}/status").read_text():
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"tgtd {pid} outlived the process that started it")
    assert not _connects("127.0.0.1", port)


def test_ipv6_only_instance() -> None:
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    if not ipv6_loopback_available():
        pytest.fail("::1 is not available on this host")
    with Tgtd(host="::1") as server:
        assert server.portal == f"[::1]:{server.port}"
        assert _connects("::1", server.port)
        assert not _connects("127.0.0.1", server.port)


def test_control_port_collision_leaves_the_other_instance_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two of us pick the same control port: the second moves on, and never removes the first one's socket."""
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    from tests.support import tgtd as module

    with Tgtd() as first:
        first.add_target(f"{IQN}:first")
        picks = iter([first.control_port])
        original = module._free_control_port
        monkeypatch.setattr(module, "_free_control_port", lambda: next(picks, None) or original())
        with Tgtd() as second:
            assert second.control_port != first.control_port
        assert (CONTROL_DIR / f"socket.{first.control_port}").exists()
        assert f"{IQN}:first" in first.show()
