"""The thin driver of Dhcp4Client: a packet socket on one interface, every wait under the caller's Deadline.

A packet socket, because until the lease is applied the interface has no address and the kernel's UDP would
neither send from 0.0.0.0 on the right link nor hand us a unicast reply to an address we do not have yet.
A classic BPF filter keeps everything but UDP to port 68 out of the socket. Before the lease is used, a second
packet socket sends ARP probes for its address and listens for an owner (RFC 5227; boot.net.arp decides).
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import select
import socket
import struct
import time

from boot import warmup
from boot.net import arp
from boot.net.dhcp4 import CLIENT_PORT, Dhcp4Client, Dhcp4Lease
from boot.net.exchange import CheckAddress, Event, run_exchange
from boot.net.ipudp import frame_udp, unframe_udp
from boot.net.waits import InterfaceError
from initiator.deadline import Deadline

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
BROADCAST_MAC = b"\xff" * 6
RECV_SIZE = 65535  # the largest IPv4 packet: a reply longer than we asked for is read whole, not cut
# Listening for an owner of the leased address. RFC 5227 waits ~7 s; a boot is waiting, and an owner on the link
# answers a probe within milliseconds: 0.3 s is two orders of magnitude above that (rd.pyiscsi.timeout.arp).
ARP_PROBE_SECONDS = 0.3
ARP_PROBES = 2  # probes sent, spread over the first half of that time
DRAIN_MAX = 64  # packets read after the probe's end (all that came during an import, within reason)

# On a SOCK_DGRAM packet socket, offsets start at the IPv4 header.
# ldb [9]; jeq #17 ? next : drop; ldh [6]; jset #0x1fff ? drop : next; ldxb 4*([0]&0xf); ldh [x+2];
# jeq #68 ? accept : drop; ret #RECV_SIZE; ret #0
_FILTER = (
    (0x30, 0, 0, 9),
    (0x15, 0, 6, 17),
    (0x28, 0, 0, 6),
    (0x45, 4, 0, 0x1FFF),
    (0xB1, 0, 0, 0),
    (0x48, 0, 0, 2),
    (0x15, 0, 1, CLIENT_PORT),
    (0x06, 0, 0, RECV_SIZE),
    (0x06, 0, 0, 0),
)


def _attach_filter(sock: socket.socket) -> None:
    code = b"".join(struct.pack("HBBI", *insn) for insn in _FILTER)
    buf = ctypes.create_string_buffer(code)
    fprog = struct.pack("HL", len(_FILTER), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


def open_socket(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    try:
        _attach_filter(sock)
        sock.bind((ifname, ETH_P_IP))
        # Drop whatever arrived between socket() and the filter taking effect.
        sock.setblocking(False)
        while True:
            try:
                sock.recv(RECV_SIZE)
            except BlockingIOError:
                break
    except BaseException:
        sock.close()
        raise
    return sock


def probe_address(
    ifname: str, mac: bytes, address: ipaddress.IPv4Address, deadline: Deadline, seconds: float = ARP_PROBE_SECONDS
) -> str | None:
    """Who else has `address` on the link ("aa:bb:cc:dd:ee:ff"), or None if no host answered ARP probes for it
    within `seconds` (cut short by `deadline`). Probes go out at once and then spread over the first half.

    The wait is one of the few where the boot idles: where more than warmup.GAP is left before the next probe or the
    end, it makes one of the boot's later imports instead (boot.warmup; nothing when unarmed) and then reads
    what came meanwhile. Every packet that came before the end is read, so an import cannot hide an answer."""
    clock = deadline.clock
    if seconds <= 0:
        return None
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(arp.ETH_P_ARP))
    except OSError as exc:
        raise InterfaceError(ifname, f"cannot open a packet socket for ARP: {exc.strerror or exc}") from exc
    with sock:
        try:
            sock.bind((ifname, arp.ETH_P_ARP))
        except OSError as exc:
            raise InterfaceError(ifname, f"cannot bind the ARP socket: {exc.strerror or exc}") from exc
        start = clock()
        end = min(start + seconds, deadline.expires_at)
        due = [start + i * seconds / (2 * ARP_PROBES) for i in range(ARP_PROBES)]
        frame = arp.probe(mac, address)
        while (now := clock()) < end:
            while due and due[0] <= now:
                due.pop(0)
                with contextlib.suppress(OSError):  # best effort: the lease's own errors come later
                    sock.sendto(frame, (ifname, arp.ETH_P_ARP, 0, 0, BROADCAST_MAC))
            wake = min(due[0] if due else end, end)
            worked = wake - now > warmup.GAP and warmup.step()
            readable, _, _ = select.select([sock], [], [], 0.0 if worked else max(0.0, wake - now))
            if readable and (owner := _owner(sock, mac, address)) is not None:
                return owner
        for _ in range(DRAIN_MAX):  # what came during the last import, before the end
            readable, _, _ = select.select([sock], [], [], 0.0)
            if not readable:
                break
            if (owner := _owner(sock, mac, address)) is not None:
                return owner
    return None


def _owner(sock: socket.socket, mac: bytes, address: ipaddress.IPv4Address) -> str | None:
    """Read one ARP packet: the MAC of another host that has `address`, if it says so."""
    payload, source = sock.recvfrom(RECV_SIZE)
    if source[2] == PACKET_OUTGOING:
        return None
    return arp.conflict(payload, mac, address)


def obtain_lease(
    ifname: str,
    mac: bytes,
    deadline: Deadline,
    *,
    hostname: str | None = None,
    client: Dhcp4Client | None = None,
    max_mtu: int | None = None,
    probe_seconds: float = ARP_PROBE_SECONDS,
) -> Dhcp4Lease:
    """DISCOVER until a lease is bound or `deadline` runs out (InterfaceWaitTimeout naming the tighter bound).
    Each ACKed address is ARP-probed for `probe_seconds` first (0: not at all); one in use is DECLINEd."""
    client = client or Dhcp4Client(mac, hostname=hostname, max_mtu=max_mtu)
    try:
        sock = open_socket(ifname)
    except OSError as exc:
        raise InterfaceError(ifname, f"cannot open a packet socket for DHCP: {exc.strerror or exc}") from exc

    def check(event: CheckAddress) -> Event:
        owner = probe_address(ifname, mac, event.address, deadline, probe_seconds)
        return client.address_checked(owner, deadline.clock())

    with sock:
        lease = run_exchange(
            ifname,
            client,
            sock,
            send=lambda payload: sock.sendto(frame_udp(payload), (ifname, ETH_P_IP, 0, 0, BROADCAST_MAC)),
            read=lambda: unframe_udp(sock.recv(RECV_SIZE)),
            deadline=deadline,
            receive=lambda payload, now: client.receive(payload, now, wall=time.time()),
            check=check,
        )
    assert isinstance(lease, Dhcp4Lease)
    return lease
