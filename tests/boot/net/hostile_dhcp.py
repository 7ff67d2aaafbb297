"""A hostile 'DHCP server' for the tests: answers every DISCOVER/REQUEST on IFNAME with a malformed reply.

Usage (inside the server namespace): hostile_dhcp.py IFNAME MODE SECONDS. It uses a packet socket, so it can
run beside dnsmasq (which holds UDP port 67) and exits by itself after SECONDS.
"""

from __future__ import annotations

import ipaddress
import select
import socket
import struct
import sys
import time

from boot.net.dhcp4 import BOOTREPLY, MessageType, Option, encode_message, frame_udp

ETH_P_IP = 0x0800
SOURCE = ipaddress.IPv4Address("10.9.0.66")


def reply_for(mode: str, xid: int, chaddr: bytes) -> bytes:
    options = [
        (Option.MESSAGE_TYPE, bytes((MessageType.OFFER,))),
        (Option.SERVER_ID, SOURCE.packed),
        (Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
    ]
    good = encode_message(
        op=BOOTREPLY, xid=xid, chaddr=chaddr, options=options, yiaddr=ipaddress.IPv4Address("10.9.0.77")
    )
    if mode == "bad-cookie":
        return good[:236] + b"\xde\xad\xbe\xef" + good[240:]
    if mode == "option-overflow":
        return good[:240] + bytes((Option.MESSAGE_TYPE, 1, MessageType.OFFER, Option.ROUTER, 250, 10, 0))
    raise SystemExit(f"unknown mode {mode}")


def main(ifname: str, mode: str, seconds: float) -> None:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((ifname, ETH_P_IP))
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            continue
        packet = sock.recv(4096)
        if len(packet) < 28 + 240 or packet[9] != 17:
            continue
        ihl = (packet[0] & 0x0F) * 4
        if struct.unpack_from("!H", packet, ihl + 2)[0] != 67:
            continue
        payload = packet[ihl + 8 :]
        xid = struct.unpack_from("!I", payload, 4)[0]
        chaddr = payload[28:34]
        frame = frame_udp(reply_for(mode, xid, chaddr), src=SOURCE, sport=67, dport=68)
        sock.sendto(frame, (ifname, ETH_P_IP, 0, 0, b"\xff" * 6))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
