"""A scripted DHCPv4 'server' for the tests: well-behaved, refusing, or malformed, as the mode says.

Usage (inside the server namespace): hostile_dhcp.py IFNAME MODE SECONDS [options]. It uses a packet socket, so it
can run beside dnsmasq (which holds UDP port 67) and beside another instance of itself, and exits by itself after
SECONDS. Modes:
  bad-cookie, option-overflow  a malformed OFFER to every DISCOVER and REQUEST
  good        OFFER every DISCOVER, ACK every REQUEST that names this server; a DECLINE moves on to the next of
              the --yiaddr addresses (the next DISCOVER is offered that one)
  offer-only  OFFER every DISCOVER, never answer a REQUEST
  nak         OFFER every DISCOVER, NAK every REQUEST that names this server (with --message)
--log FILE is rewritten after every message with what the server saw: {"DISCOVER": n, "REQUEST": n, ...}, the
REQUESTs that named this server under "REQUEST_FOR_US". --option CODE=HEX adds an option to OFFERs and ACKs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import time
from collections import Counter

from boot.net.dhcp4 import BOOTREPLY, Dhcp4MessageType, Dhcp4Option, decode_message, encode_message
from boot.net.ipudp import frame_udp

ETH_P_IP = 0x0800


def malformed(mode: str, xid: int, chaddr: bytes, source: ipaddress.IPv4Address) -> bytes:
    options = [
        (Dhcp4Option.MESSAGE_TYPE, bytes((Dhcp4MessageType.OFFER,))),
        (Dhcp4Option.SERVER_ID, source.packed),
        (Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
    ]
    good = encode_message(
        op=BOOTREPLY, xid=xid, chaddr=chaddr, options=options, yiaddr=ipaddress.IPv4Address("10.9.0.77")
    )
    if mode == "bad-cookie":
        return good[:236] + b"\xde\xad\xbe\xef" + good[240:]
    if mode == "option-overflow":
        return good[:240] + bytes((Dhcp4Option.MESSAGE_TYPE, 1, Dhcp4MessageType.OFFER, Dhcp4Option.ROUTER, 250, 10, 0))
    raise SystemExit(f"unknown mode {mode}")


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.source = ipaddress.IPv4Address(args.source)
        self.addresses = [ipaddress.IPv4Address(a) for a in args.yiaddr.split(",")]
        self.seen: Counter[str] = Counter()
        self.extra = [(int(code), bytes.fromhex(value)) for code, value in (o.split("=", 1) for o in args.option)]

    def reply(self, kind: Dhcp4MessageType, xid: int, chaddr: bytes) -> bytes:
        options: list[tuple[int, bytes]] = [
            (Dhcp4Option.MESSAGE_TYPE, bytes((kind,))),
            (Dhcp4Option.SERVER_ID, self.source.packed),
        ]
        if kind is Dhcp4MessageType.NAK:
            options.append((Dhcp4Option.MESSAGE, bytes.fromhex(self.args.message)))
            return encode_message(op=BOOTREPLY, xid=xid, chaddr=chaddr, options=options)
        options += [
            (Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
            (Dhcp4Option.LEASE_TIME, (120).to_bytes(4, "big")),
            *self.extra,
        ]
        return encode_message(op=BOOTREPLY, xid=xid, chaddr=chaddr, options=options, yiaddr=self.addresses[0])

    def answer(self, payload: bytes) -> bytes | None:
        mode = self.args.mode
        if mode in ("bad-cookie", "option-overflow"):
            return malformed(mode, struct.unpack_from("!I", payload, 4)[0], payload[28:34], self.source)
        try:
            message = decode_message(payload)
            kind = message.message_type
        except Exception:  # a test server: whatever it cannot read, it does not answer
            return None
        if kind is None:
            return None
        self.seen[kind.name] += 1
        named_us = message.options.get(Dhcp4Option.SERVER_ID) == self.source.packed
        if kind is Dhcp4MessageType.REQUEST and named_us:
            self.seen["REQUEST_FOR_US"] += 1
        if kind is Dhcp4MessageType.DECLINE and named_us and len(self.addresses) > 1:
            self.addresses.pop(0)
        chaddr = message.chaddr[:6]
        if kind is Dhcp4MessageType.DISCOVER:
            return self.reply(Dhcp4MessageType.OFFER, message.xid, chaddr)
        if kind is Dhcp4MessageType.REQUEST and named_us and mode == "good":
            return self.reply(Dhcp4MessageType.ACK, message.xid, chaddr)
        if kind is Dhcp4MessageType.REQUEST and named_us and mode == "nak":
            return self.reply(Dhcp4MessageType.NAK, message.xid, chaddr)
        return None

    def log(self) -> None:
        if self.args.log:
            temporary = f"{self.args.log}.tmp"
            with open(temporary, "w") as out:
                json.dump(dict(self.seen), out)
            os.replace(temporary, self.args.log)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ifname")
    parser.add_argument("mode", choices=["bad-cookie", "option-overflow", "good", "offer-only", "nak"])
    parser.add_argument("seconds", type=float)
    parser.add_argument("--source", default="10.9.0.66")
    parser.add_argument("--yiaddr", default="10.9.0.77")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--message", default="", help="the NAK's message, in hex")
    parser.add_argument("--option", action="append", default=[], help="CODE=HEX, added to OFFERs and ACKs")
    parser.add_argument("--log")
    args = parser.parse_args()
    server = Server(args)
    server.log()
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
    sock.bind((args.ifname, ETH_P_IP))
    end = time.monotonic() + args.seconds
    while (left := end - time.monotonic()) > 0:
        if not select.select([sock], [], [], left)[0]:
            continue
        packet = sock.recv(65535)
        if len(packet) < 28 + 240 or packet[9] != 17:
            continue
        ihl = (packet[0] & 0x0F) * 4
        if struct.unpack_from("!H", packet, ihl + 2)[0] != 67:
            continue
        answer = server.answer(packet[ihl + 8 :])
        server.log()
        if answer is None:
            continue
        if args.delay:
            time.sleep(args.delay)
        frame = frame_udp(answer, src=server.source, sport=67, dport=68)
        sock.sendto(frame, (args.ifname, ETH_P_IP, 0, 0, b"\xff" * 6))


if __name__ == "__main__":
    main()
