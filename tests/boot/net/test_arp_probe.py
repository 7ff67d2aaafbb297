"""boot.net.dhcp4_socket.probe_address with the boot's warm-up in its wait, over a stand-in packet socket (a
datagram socketpair): what the peer queues while a module is imported is all read, in order, even after the end."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import types

import pytest

from boot import warmup
from boot.net import arp, dhcp4_socket
from initiator.deadline import Deadline

OURS = bytes.fromhex("525400000001")
OWNER = bytes.fromhex("525400000002")
OTHER = bytes.fromhex("525400000003")
ADDRESS = ipaddress.IPv4Address("10.9.0.77")


def _arp(op: int, sender_mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    return arp._ARP.pack(
        arp.HTYPE_ETHER, arp.PTYPE_IPV4, 6, 4, op, sender_mac, ipaddress.IPv4Address(sender_ip).packed,
        bytes(6), ipaddress.IPv4Address(target_ip).packed,
    )  # fmt: skip


UNRELATED = _arp(arp.OP_REQUEST, OTHER, "10.9.0.1", "10.9.0.5")
ANSWER = _arp(arp.OP_REPLY, OWNER, str(ADDRESS), "0.0.0.0")


class PacketSocket:
    """Reads what the peer end of a socketpair was given, as a packet socket's (payload, address) pairs."""

    def __init__(self, end: socket.socket) -> None:
        self.end = end
        self.sent: list[bytes] = []

    def fileno(self) -> int:
        return self.end.fileno()

    def bind(self, address: object) -> None:
        pass

    def sendto(self, frame: bytes, address: object) -> int:
        self.sent.append(frame)
        return len(frame)

    def recvfrom(self, size: int) -> tuple[bytes, tuple[str, int, int, int, bytes]]:
        return self.end.recv(size), ("c0", arp.ETH_P_ARP, 0, 1, OWNER)

    def __enter__(self) -> PacketSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end.close()


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch):
    ours, peer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    packet_socket = PacketSocket(ours)
    fake = types.SimpleNamespace(socket=lambda *args: packet_socket, AF_PACKET=0, SOCK_DGRAM=0, htons=socket.htons)
    monkeypatch.setattr(dhcp4_socket, "socket", fake)
    yield packet_socket, peer
    peer.close()
    warmup.disarm()


# (what the peer sends during the first import, how long each import takes, the owner found)
CASES = [
    pytest.param([ANSWER], 0.05, "52:54:00:00:00:02", id="answer-read-after-an-import"),
    pytest.param([UNRELATED, ANSWER], 0.6, "52:54:00:00:00:02", id="answer-behind-another-packet-past-the-end"),
    pytest.param([UNRELATED] * 3, 0.6, None, id="only-unrelated-packets"),
    pytest.param([], 0.05, None, id="nothing-came"),
]


@pytest.mark.parametrize(("during", "step_seconds", "owner"), CASES)
def test_packets_queued_during_an_import_are_all_read(wire, during, step_seconds, owner) -> None:
    packet_socket, peer = wire
    imported: list[str] = []

    def importer(name: str) -> None:
        if not imported:
            for packet in during:
                peer.send(packet)
        imported.append(name)
        time.sleep(step_seconds)

    warmup._armed = warmup.Warmup([f"later.step{i}" for i in range(20)], importer=importer)
    found = dhcp4_socket.probe_address("c0", OURS, ADDRESS, Deadline("dhcp", 10), seconds=0.5)
    assert found == owner
    assert imported and packet_socket.sent[0] == arp.probe(OURS, ADDRESS)


def test_unarmed_the_probe_only_waits(wire) -> None:
    _packet_socket, peer = wire
    peer.send(ANSWER)
    assert dhcp4_socket.probe_address("c0", OURS, ADDRESS, Deadline("dhcp", 10), seconds=0.3) == "52:54:00:00:00:02"
    assert warmup.step() is False


def test_the_probe_imports_from_the_bring_up_thread_while_the_boot_waits_for_it(wire) -> None:
    """bring_up runs each interface in a thread of its own, and the boot's main thread only joins it: the probe
    there spends its wait on the warm-up too."""
    threads: list[str] = []
    warmup.arm(["later.one", "later.two"])
    warmup._armed._importer = lambda name: threads.append(threading.current_thread().name)  # type: ignore[union-attr]
    found: list[str | None] = []
    probe = threading.Thread(
        target=lambda: found.append(dhcp4_socket.probe_address("c0", OURS, ADDRESS, Deadline("dhcp", 10), seconds=0.4)),
        name="net-c0",
    )
    probe.start()
    probe.join(10)
    assert found == [None]
    assert threads == ["net-c0", "net-c0"]
