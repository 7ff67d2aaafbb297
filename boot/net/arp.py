"""ARP probes for an address a DHCP server gave us (RFC 5227 section 2.1), before the address is used.

No socket here: boot.net.dhcp4_socket sends `probe()` and hands every ARP packet it hears to `conflict()`. A probe
asks for the address from 0.0.0.0, so no host puts our MAC in its cache for an address we may yet decline; any
host that owns the address answers it. What counts as a conflict is RFC 5227's rule: any ARP packet, request or
reply, whose sender is the address, or another host's probe for the same address (it is choosing it too).
"""

from __future__ import annotations

import ipaddress
import struct

from initiator.record import record

ETH_P_ARP = 0x0806
HTYPE_ETHER = 1
PTYPE_IPV4 = 0x0800
OP_REQUEST = 1
OP_REPLY = 2
_ARP = struct.Struct("!HHBBH6s4s6s4s")
_ZERO = ipaddress.IPv4Address(0)


@record
class ArpPacket:
    op: int
    sender_mac: bytes
    sender_ip: ipaddress.IPv4Address
    target_mac: bytes
    target_ip: ipaddress.IPv4Address


def probe(mac: bytes, address: ipaddress.IPv4Address) -> bytes:
    """The ARP payload of a probe for `address` from `mac` (sender IP 0.0.0.0, target MAC zero)."""
    if len(mac) != 6:
        raise ValueError(f"mac: want 6 bytes, got {len(mac)}")
    return _ARP.pack(HTYPE_ETHER, PTYPE_IPV4, 6, 4, OP_REQUEST, mac, _ZERO.packed, bytes(6), address.packed)


def decode(payload: bytes) -> ArpPacket | None:
    """An Ethernet/IPv4 ARP packet, or None for anything else (short, another hardware or protocol type)."""
    if len(payload) < _ARP.size:
        return None
    htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(payload)
    if (htype, ptype, hlen, plen) != (HTYPE_ETHER, PTYPE_IPV4, 6, 4):
        return None
    return ArpPacket(op, sha, ipaddress.IPv4Address(spa), tha, ipaddress.IPv4Address(tpa))


def conflict(payload: bytes, mac: bytes, address: ipaddress.IPv4Address) -> str | None:
    """Who else uses `address` according to this ARP packet ("aa:bb:..."), or None if it says nothing of that."""
    packet = decode(payload)
    if packet is None or packet.op not in (OP_REQUEST, OP_REPLY) or packet.sender_mac == mac:
        return None
    if packet.sender_ip == address:
        return packet.sender_mac.hex(":")
    if packet.op == OP_REQUEST and packet.sender_ip == _ZERO and packet.target_ip == address:
        return f"{packet.sender_mac.hex(':')} (probing for it too)"
    return None
