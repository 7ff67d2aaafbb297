"""Netlink messages and route attributes as bytes, for the tests of the netlink parsers (linkdump, rtnl)."""

from __future__ import annotations

import struct

NLM_F_MULTI = 0x2


def rta(kind: int, value: bytes) -> bytes:
    """One route attribute, padded to 4 bytes."""
    return struct.pack("=HH", 4 + len(value), kind) + value + b"\0" * (-len(value) % 4)


def nlmsg(kind: int, body: bytes, sequence: int = 1, *, flags: int = NLM_F_MULTI) -> bytes:
    """One netlink message (a dump's part unless `flags` says otherwise), padded to 4 bytes."""
    return struct.pack("=IHHII", 16 + len(body), kind, flags, sequence, 0) + body + b"\0" * (-len(body) % 4)
