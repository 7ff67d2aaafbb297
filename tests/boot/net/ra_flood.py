"""A flood of router advertisements for the tests: each one carries many on-link prefixes nobody asked for.

Usage (inside the server namespace): ra_flood.py IFNAME SOURCE SECONDS [RATE [PREFIXES]]. SOURCE is a link-local
address already on IFNAME, so the flood's router is not the real one: its router lifetime is 0 (no default route)
and its prefixes are on-link only (no SLAAC address), each a fresh random /64 of 2001:db8:8000::/33, so every
advertisement adds PREFIXES routes to the client's table. RATE advertisements a second; exits after SECONDS.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import socket
import struct
import sys
import time

ND_ROUTER_ADVERT = 134
ND_OPT_PREFIX_INFORMATION = 3
ON_LINK = 0x80
ALL_NODES = "ff02::1"


def advertisement(rng: random.Random, prefixes: int) -> bytes:
    """An RA (the kernel fills the checksum) with `prefixes` Prefix Information options, router lifetime 0."""
    head = struct.pack("!BBHBBHII", ND_ROUTER_ADVERT, 0, 0, 64, 0, 0, 0, 0)
    options = b""
    for _ in range(prefixes):
        prefix = ipaddress.IPv6Address((0x20010DB8_8000_0000 | rng.getrandbits(31)) << 64)
        options += struct.pack("!BBBBIII", ND_OPT_PREFIX_INFORMATION, 4, 64, ON_LINK, 600, 300, 0) + prefix.packed
    return head + options


def main(ifname: str, source: str, seconds: float, rate: float = 500.0, prefixes: int = 40) -> None:
    index = socket.if_nametoindex(ifname)
    rng = random.Random(4861)
    with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.bind((source, 0, 0, index))
        start = time.monotonic()
        sent = 0
        while (now := time.monotonic()) < start + seconds:
            due = int((now - start) * rate) + 1
            while sent < due:
                with contextlib.suppress(OSError):  # ENOBUFS when the link is busier than we are: flood on
                    sock.sendto(advertisement(rng, prefixes), (ALL_NODES, 0, 0, index))
                sent += 1
            time.sleep(0.005)


if __name__ == "__main__":
    main(
        sys.argv[1],
        sys.argv[2],
        float(sys.argv[3]),
        *(float(a) for a in sys.argv[4:5]),
        *(int(a) for a in sys.argv[5:6]),
    )
