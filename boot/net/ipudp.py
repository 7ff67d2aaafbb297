"""The IPv4 and UDP headers around a DHCPv4 payload, for the packet socket of boot.net.dhcp4_socket.

That driver sends and receives whole IPv4 packets (it says why); this module puts the two headers on and takes
them off. No socket here, and nothing of DHCP beyond its ports and its error type.
"""

from __future__ import annotations

import ipaddress
import struct

from boot.net.dhcp4 import BROADCAST4, CLIENT_PORT, SERVER_PORT, ZERO4, DhcpPacketError

IPPROTO_UDP = 17


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit words."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame_udp(
    payload: bytes,
    src: ipaddress.IPv4Address = ZERO4,
    dst: ipaddress.IPv4Address = BROADCAST4,
    sport: int = CLIENT_PORT,
    dport: int = SERVER_PORT,
) -> bytes:
    """An IPv4 header + UDP header + payload, checksums filled in."""
    udp_len = 8 + len(payload)
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, IPPROTO_UDP, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    udp_sum = checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", udp_sum) + udp[8:]
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + udp_len, 0, 0, 64, IPPROTO_UDP, 0, src.packed, dst.packed)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + udp


def unframe_udp(packet: bytes, dport: int = CLIENT_PORT) -> bytes | None:
    """The UDP payload of an IPv4 packet to `dport`, or None if it is something else. Malformed: DhcpPacketError.

    The UDP checksum is not checked: on veth and with checksum offload, a packet socket sees packets whose
    checksum the sender left for hardware that never ran. The IP header checksum is always computed in software.
    """
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    total = int.from_bytes(packet[2:4], "big")
    if ihl < 20 or total < ihl + 8 or len(packet) < total:
        raise DhcpPacketError("IPv4 header", packet[:4].hex(), f"bad lengths (ihl {ihl}, total {total})")
    if packet[9] != IPPROTO_UDP:
        return None
    if int.from_bytes(packet[6:8], "big") & 0x3FFF:
        return None  # a fragment: DHCP replies are never fragmented in practice
    if checksum(packet[:ihl]) != 0:
        raise DhcpPacketError("IPv4 header checksum", packet[10:12].hex(), "does not match")
    sport, port, length = struct.unpack_from("!HHH", packet, ihl)
    if port != dport:
        return None
    if length < 8 or ihl + length > total:
        raise DhcpPacketError("UDP length", length, f"outside the IPv4 packet ({total - ihl} bytes)")
    if sport != SERVER_PORT:
        return None
    return packet[ihl + 8 : ihl + length]
