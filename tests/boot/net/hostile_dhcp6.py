"""A scripted DHCPv6 'server' for the tests: binding, or refusing everything, as the mode says.

Usage (inside the server namespace): hostile_dhcp6.py IFNAME MODE SECONDS [options]; exits by itself after SECONDS.
Modes:
  good         Advertise --address to every Solicit, bind it in the Reply to every Request (--pad N adds an
               N-byte option the client does not know to the Reply, to make it long)
  unspec-fail  Advertise --address, answer every Request with a Reply of status UnspecFail (with --message)
  no-addrs     answer every Solicit with a Rapid Commit Reply whose IA_NA has status NoAddrsAvail
--log FILE is rewritten after every message with what the server saw: {"SOLICIT": n, "REQUEST": n}.
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
from pathlib import Path

from boot.net.dhcp6 import (
    ALL_SERVERS,
    SERVER_PORT,
    Dhcp6MessageType,
    Dhcp6Option,
    Dhcp6Status,
    decode_message,
    encode_message,
    encode_options,
)

SERVER_DUID = bytes.fromhex("00030001020000000547")
UNKNOWN_OPTION = 65001


def status(code: int, text: bytes = b"") -> tuple[int, bytes]:
    return (Dhcp6Option.STATUS_CODE, struct.pack("!H", code) + text)


class Server:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.address = ipaddress.IPv6Address(args.address)
        self.seen: Counter[str] = Counter()

    def ia_na(self, iaid: int, *inner: tuple[int, bytes]) -> tuple[int, bytes]:
        return (Dhcp6Option.IA_NA, struct.pack("!III", iaid, self.args.t1, self.args.t2) + encode_options(list(inner)))

    def iaaddr(self) -> tuple[int, bytes]:
        return (Dhcp6Option.IAADDR, self.address.packed + struct.pack("!II", 300, 600))

    def answer(self, payload: bytes) -> bytes | None:
        try:
            message = decode_message(payload)
            kind = Dhcp6MessageType(message.type)
        except Exception:  # a test server: whatever it cannot read, it does not answer
            return None
        self.seen[kind.name] += 1
        client_id = message.option(Dhcp6Option.CLIENTID) or b""
        ia = message.option(Dhcp6Option.IA_NA) or bytes(12)
        iaid = struct.unpack_from("!I", ia)[0]
        head = [(Dhcp6Option.CLIENTID, client_id), (Dhcp6Option.SERVERID, SERVER_DUID)]
        mode = self.args.mode
        if kind is Dhcp6MessageType.SOLICIT and mode == "no-addrs":
            refusal = self.ia_na(iaid, status(Dhcp6Status.NO_ADDRS_AVAIL, b"none left"))
            return encode_message(
                Dhcp6MessageType.REPLY, message.xid, [*head, (Dhcp6Option.RAPID_COMMIT, b""), refusal]
            )
        if kind is Dhcp6MessageType.SOLICIT:
            return encode_message(Dhcp6MessageType.ADVERTISE, message.xid, [*head, self.ia_na(iaid, self.iaaddr())])
        if kind is not Dhcp6MessageType.REQUEST:
            return None
        if mode == "unspec-fail":
            text = bytes.fromhex(self.args.message)
            return encode_message(Dhcp6MessageType.REPLY, message.xid, [*head, status(Dhcp6Status.UNSPEC_FAIL, text)])
        options = [*head, self.ia_na(iaid, self.iaaddr())]
        if self.args.pad:
            options.append((UNKNOWN_OPTION, b"\xa5" * self.args.pad))
        return encode_message(Dhcp6MessageType.REPLY, message.xid, options)

    def log(self) -> None:
        if self.args.log:
            temporary = f"{self.args.log}.tmp"
            with open(temporary, "w") as out:
                json.dump(dict(self.seen), out)
            os.replace(temporary, self.args.log)


def link_local(ifname: str) -> str:
    """The interface's fe80:: address, from /proc/net/if_inet6 (this network namespace's)."""
    for line in Path("/proc/net/if_inet6").read_text().splitlines():
        hexaddr, _index, _plen, scope, _flags, name = line.split()
        if name == ifname and scope == "20":
            return str(ipaddress.IPv6Address(bytes.fromhex(hexaddr)))
    raise SystemExit(f"{ifname}: no link-local address yet")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ifname")
    parser.add_argument("mode", choices=["good", "unspec-fail", "no-addrs"])
    parser.add_argument("seconds", type=float)
    parser.add_argument("--address", default="2001:db8:9::77")
    parser.add_argument("--t1", type=int, default=100)
    parser.add_argument("--t2", type=int, default=200)
    parser.add_argument("--pad", type=int, default=0)
    parser.add_argument("--message", default="", help="UnspecFail's message, in hex")
    parser.add_argument("--log")
    args = parser.parse_args()
    server = Server(args)
    server.log()
    index = socket.if_nametoindex(args.ifname)
    # Two sockets, neither on the wildcard address: one bound to the All_DHCP_Relay_Agents_and_Servers group on
    # this link (clients send everything there), one to the link's own link-local address for the answers.
    listen = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    listen.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listen.setsockopt(
        socket.IPPROTO_IPV6,
        socket.IPV6_JOIN_GROUP,
        socket.inet_pton(socket.AF_INET6, ALL_SERVERS) + struct.pack("@I", index),
    )
    listen.bind((ALL_SERVERS, SERVER_PORT, 0, index))
    reply = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    reply.bind((link_local(args.ifname), SERVER_PORT, 0, index))
    end = time.monotonic() + args.seconds
    while (left := end - time.monotonic()) > 0:
        if not select.select([listen], [], [], left)[0]:
            continue
        payload, peer = listen.recvfrom(65535)
        answer = server.answer(payload)
        server.log()
        if answer is not None:
            reply.sendto(answer, peer)


if __name__ == "__main__":
    main()
