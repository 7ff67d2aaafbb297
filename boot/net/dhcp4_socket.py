"""The thin driver of Dhcp4Client: a packet socket on one interface, every wait under the caller's Deadline.

A packet socket, because until the lease is applied the interface has no address and the kernel's UDP would
neither send from 0.0.0.0 on the right link nor hand us a unicast reply to an address we do not have yet.
A classic BPF filter keeps everything but UDP to port 68 out of the socket.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import time

from boot.net.dhcp4 import CLIENT_PORT, Dhcp4Client, Lease, frame_udp, unframe_udp
from boot.net.exchange import run_exchange
from boot.net.waits import InterfaceError
from initiator.deadline import Deadline

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
BROADCAST_MAC = b"\xff" * 6
RECV_SIZE = 4096  # more than any DHCP reply we announce we take (1472); longer datagrams are cut, not kept

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


def obtain_lease(
    ifname: str, mac: bytes, deadline: Deadline, *, hostname: str | None = None, client: Dhcp4Client | None = None
) -> Lease:
    """DISCOVER until a lease is bound or `deadline` runs out (InterfaceWaitTimeout naming the tighter bound)."""
    client = client or Dhcp4Client(mac, hostname=hostname)
    try:
        sock = open_socket(ifname)
    except OSError as exc:
        raise InterfaceError(ifname, f"cannot open a packet socket for DHCP: {exc.strerror or exc}") from exc
    with sock:
        lease = run_exchange(
            ifname,
            client,
            sock,
            send=lambda payload: sock.sendto(frame_udp(payload), (ifname, ETH_P_IP, 0, 0, BROADCAST_MAC)),
            read=lambda: unframe_udp(sock.recv(RECV_SIZE)),
            deadline=deadline,
            receive=lambda payload, now: client.receive(payload, now, wall=time.time()),
        )
    assert isinstance(lease, Lease)
    return lease
