"""initiator.client against a real tgtd on 127.0.0.1 (and [::1]): discovery, login, probe, logout, refusals."""

from __future__ import annotations

import hashlib
import time

import pytest

from initiator import client
from initiator.credentials import Chap, Credentials
from initiator.deadline import Deadline
from initiator.errors import IscsiError, NetworkError, WaitTimeout
from initiator.portal import Portal, parse_portal
from initiator.secret import Secret
from tests.support.sockets import free_port, silent_listener
from tests.support.tgtd import LunSpec, Tgtd, ipv6_loopback_available

pytestmark = pytest.mark.tgt

INITIATOR = "iqn.2026-11.org.pyiscsi:test-client"
T1 = "iqn.2026-11.org.example:one"
T2 = "iqn.2026-11.org.example:two"


def _deadline(bound: float = 20) -> Deadline:
    return Deadline("test", bound)


def _portal(tgtd: Tgtd) -> Portal:
    return parse_portal(tgtd.portal)


def test_discover_lists_every_target(tgtd: Tgtd) -> None:
    tgtd.add_target(T1, [LunSpec(1 << 20)])
    tgtd.add_target(T2, [LunSpec(1 << 20)])
    found = client.discover(_portal(tgtd), INITIATOR, _deadline(), credentials=None)
    lines = sorted(line for t in found for line in t.lines())
    assert lines == [f"127.0.0.1:{tgtd.port},1 {T1}", f"127.0.0.1:{tgtd.port},1 {T2}"]


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no ::1")
def test_discover_and_probe_over_ipv6(tgtd: Tgtd) -> None:
    target = tgtd.add_target(T1, [LunSpec(1 << 20)])
    portal = parse_portal(tgtd.portal6)
    found = client.discover(portal, INITIATOR, _deadline())
    assert [t.name for t in found] == [T1]
    conn = client.login(portal, T1, INITIATOR, _deadline())
    try:
        result = client.probe(conn, _deadline())
        client.logout(conn, _deadline())
    finally:
        conn.close()
    assert result.block0_sha256 == target.disk_luns()[0].block0_sha256()


@pytest.mark.parametrize("digest", ["None", "CRC32C"])
def test_probe_several_luns(tgtd: Tgtd, digest: str) -> None:
    target = tgtd.add_target(T1, [LunSpec(1 << 20), LunSpec(4 << 20, block_size=4096), LunSpec(3 << 20)])
    if digest == "CRC32C":
        tgtd.set_digests(target)
    conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline(), header_digest=digest, data_digest=digest)
    try:
        assert conn.tsih != 0
        assert conn.negotiated["HeaderDigest"] == digest and conn.negotiated["DataDigest"] == digest
        result = client.probe(conn, _deadline())
        by_lun = {info.lun: info for info in result.luns}
        assert by_lun[0].capacity is None  # tgt's controller
        for lun in target.disk_luns():
            assert by_lun[lun.lun].capacity is not None
            assert (by_lun[lun.lun].capacity.blocks, by_lun[lun.lun].capacity.block_size) == (
                lun.blocks,
                lun.block_size,
            )
        first = target.disk_luns()[0]
        assert result.chosen_lun == first.lun and result.block0_sha256 == first.block0_sha256()
        second = target.disk_luns()[1]
        chosen = client.probe(conn, _deadline(), lun=second.lun)
        assert chosen.block0_sha256 == second.block0_sha256()
        assert hashlib.sha256(chosen.block0).hexdigest() == chosen.block0_sha256
        client.logout(conn, _deadline())
    finally:
        conn.close()


def test_chap_and_mutual_chap(tgtd: Tgtd) -> None:
    target = tgtd.add_target(T1, [LunSpec(1 << 20)])
    tgtd.add_chap(target, "alice", "alice-secret-12")
    tgtd.add_mutual_chap(target, "target-bob", "bob-secret-1234")
    chap = Chap("alice", Secret("alice-secret-12"))
    reverse = Chap("target-bob", Secret("bob-secret-1234"))
    for rev in (None, reverse):
        conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline(), credentials=Credentials(chap, rev))
        client.logout(conn, _deadline())
    wrong = Credentials(Chap("alice", Secret("wrong-secret-00")))
    with pytest.raises(IscsiError, match=r"authentication failed \(0x0201\)"):
        client.login(_portal(tgtd), T1, INITIATOR, _deadline(), credentials=wrong)
    with pytest.raises(IscsiError):
        client.login(
            _portal(tgtd),
            T1,
            INITIATOR,
            _deadline(),
            credentials=Credentials(chap, Chap("target-bob", Secret("not-it-123456"))),
        )


def test_unknown_target(tgtd: Tgtd) -> None:
    tgtd.add_target(T1, [LunSpec(1 << 20)])
    with pytest.raises(IscsiError, match=r"target not found \(0x0203\)"):
        client.login(_portal(tgtd), "iqn.2026-11.org.example:nobody", INITIATOR, _deadline())


# tgt does not redirect an initiator whose own address is the redirect address, and on loopback our address is
# 127.0.0.1: the target we are sent to listens on 127.0.0.2.


def test_redirect_is_followed(tgtd: Tgtd) -> None:
    with Tgtd(host="127.0.0.2") as other:
        real = other.add_target(T1, [LunSpec(1 << 20)])
        front = tgtd.add_target(T1, [LunSpec(1 << 20)])
        tgtd.redirect(front, "127.0.0.2", other.port)
        conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline())
        try:
            assert conn.portal == Portal("127.0.0.2", other.port)
            assert conn.redirected_from == (_portal(tgtd),)
            assert client.probe(conn, _deadline()).block0_sha256 == real.disk_luns()[0].block0_sha256()
            client.logout(conn, _deadline())
        finally:
            conn.close()


def test_redirect_loop_is_bounded(tgtd: Tgtd) -> None:  # the fixture skips where tgtd cannot run
    with Tgtd(host="127.0.0.2") as looping:
        target = looping.add_target(T1, [LunSpec(1 << 20)])
        looping.redirect(target, "127.0.0.2", looping.port)
        with pytest.raises(IscsiError, match=r"more than 2 redirects \(127\.0\.0\.2:\d+ -> "):
            client.login(parse_portal(looping.portal), T1, INITIATOR, _deadline(), max_redirects=2)


def test_refused_and_silent() -> None:
    port = free_port()
    with pytest.raises(NetworkError, match=f"127.0.0.1:{port}.*refused"):
        client.login(Portal("127.0.0.1", port), T1, INITIATOR, _deadline())
    with silent_listener() as port, pytest.raises(WaitTimeout, match=r"wait 'login' ran out after 0\.5s"):
        client.login(Portal("127.0.0.1", port), T1, INITIATOR, _deadline(), login_bound=0.5)


def test_socket_can_be_detached_with_nothing_unread(tgtd: Tgtd) -> None:
    tgtd.add_target(T1, [LunSpec(1 << 20)])
    conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline(), isid=bytes.fromhex("80aabbccddee"), initial_cmdsn=7)
    assert conn.isid == bytes.fromhex("80aabbccddee") and conn.result.initial_cmdsn == 7
    assert conn.exp_statsn == (conn.statsn + 1) & 0xFFFFFFFF
    assert conn.session.cmdsn == 7
    sock = conn.detach()
    try:
        # connected to the portal, in blocking mode: what the kernel's iscsi_tcp takes
        assert sock.getpeername() == ("127.0.0.1", _portal(tgtd).port) and sock.gettimeout() is None
        assert sock.fileno() >= 0
    finally:
        sock.close()


@pytest.mark.parametrize("digest", ["None", "CRC32C"])
def test_large_read_reassembles_many_data_in_pdus(tgtd: Tgtd, digest: str) -> None:
    payload = bytes(range(256)) * 1024  # 256 KiB with a pattern, so a misplaced Data-In shows
    target = tgtd.add_target(T1, [LunSpec(4 << 20, block0=payload)])
    if digest == "CRC32C":
        tgtd.set_digests(target)
    lun = target.disk_luns()[0]
    conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline(), header_digest=digest, data_digest=digest)
    try:
        data = client.read_blocks(conn, lun.lun, 0, len(payload) // 512, 512, _deadline())
        client.logout(conn, _deadline())
    finally:
        conn.close()
    assert data == lun.path.read_bytes()[: len(payload)] == payload


def test_target_nop_in_pings_are_answered(tgtd: Tgtd) -> None:
    """tgt pings every second (nop_interval) and drops a session after nop_count unanswered pings: 6 s of pauses
    outlast 4 unanswered pings, so only answering them between commands keeps the session (2 s of margin for a
    busy machine at each pause)."""
    target = tgtd.add_target(T1, [LunSpec(1 << 20)])
    tgtd.set_param(target, "nop_interval", "1")
    tgtd.set_param(target, "nop_count", "4")
    conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline())
    try:
        for _ in range(3):
            time.sleep(2.0)  # pings pile up unread; the next command's loop answers each
            assert client.probe(conn, _deadline()).block0_sha256 == target.disk_luns()[0].block0_sha256()
        client.logout(conn, _deadline())
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("offer", "target_takes", "settled"),
    [("CRC32C,None", "None", "None"), ("CRC32C,None", "CRC32C", "CRC32C"), ("None,CRC32C", "CRC32C", "CRC32C")],
)
def test_a_digest_preference_list_settles_on_what_the_target_takes(
    tgtd: Tgtd, offer: str, target_takes: str, settled: str
) -> None:
    """rd.iscsi.param=node.conn[0].iscsi.HeaderDigest=CRC32C,None as iscsiadm means it: our first choice the
    target accepts."""
    target = tgtd.add_target(T1, [LunSpec(1 << 20)])
    tgtd.set_digests(target, header=target_takes, data=target_takes)
    conn = client.login(_portal(tgtd), T1, INITIATOR, _deadline(), header_digest=offer, data_digest=offer)
    try:
        assert conn.negotiated["HeaderDigest"] == settled and conn.negotiated["DataDigest"] == settled
        assert client.probe(conn, _deadline()).block0_sha256 == target.disk_luns()[0].block0_sha256()
        client.logout(conn, _deadline())
    finally:
        conn.close()
