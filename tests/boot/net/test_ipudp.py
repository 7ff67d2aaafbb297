"""IPv4/UDP framing for the DHCPv4 packet socket: headers, checksums, and what unframing skips or refuses."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boot.net.dhcp4 import CLIENT_PORT, SERVER_PORT, DhcpPacketError
from boot.net.ipudp import checksum, frame_udp, unframe_udp


def test_udp_framing_round_trip_and_checksums():
    framed = frame_udp(b"hello")
    assert len(framed) == 20 + 8 + 5
    assert framed[9] == 17 and framed[16:20] == b"\xff\xff\xff\xff"
    assert struct.unpack("!HH", framed[20:24]) == (68, 67)
    # a reply is the same frame with the ports swapped
    swapped = framed[:20] + framed[22:24] + framed[20:22] + framed[24:]
    assert unframe_udp(swapped) == b"hello"
    assert unframe_udp(framed) is None  # to port 67: not for a client


def fix_ipchecksum(packet: bytes) -> bytes:
    header = packet[:10] + b"\0\0" + packet[12:20]
    return header[:10] + struct.pack("!H", checksum(header)) + packet[12:]


@pytest.mark.parametrize(
    ("mutate", "outcome"),
    [
        (lambda p: p[:9] + b"\x06" + p[10:], None),  # TCP
        (lambda p: b"\x60" + p[1:], None),  # IPv6
        (lambda p: fix_ipchecksum(p[:22] + b"\x00\x43" + p[24:]), None),  # to port 67
        (lambda p: p[:10] + b"\x00\x00" + p[12:], "IPv4 header checksum"),
        (lambda p: p[:2] + b"\x00\x10" + p[4:], "IPv4 header"),
        (lambda p: p[:24] + b"\xff\xff" + p[26:], "UDP length"),
    ],
    ids=["not-udp", "not-ipv4", "not-port-68", "bad-header-checksum", "short-total-length", "udp-length-too-long"],
)
def test_unframe_rejects_or_skips(mutate, outcome):
    packet = mutate(frame_udp(b"x" * 20, sport=67, dport=68))
    if outcome is None:
        assert unframe_udp(packet) is None
    else:
        with pytest.raises(DhcpPacketError, match=outcome):
            unframe_udp(packet)


def test_checksum_of_a_known_header():
    # RFC 1071's worked example: the words 0001 f203 f4f5 f6f7 sum to ddf2 (ones' complement), so 220d
    assert checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D
    assert checksum(b"\x01") == ~0x0100 & 0xFFFF  # an odd length is padded with a zero byte


addresses = st.integers(min_value=0, max_value=0xFFFFFFFF).map(ipaddress.IPv4Address)


@given(payload=st.binary(max_size=1472), src=addresses, dst=addresses)
def test_every_frame_carries_valid_checksums_and_unframes_to_its_payload(payload, src, dst):
    framed = frame_udp(payload, src=src, dst=dst, sport=SERVER_PORT, dport=CLIENT_PORT)
    assert checksum(framed[:20]) == 0
    pseudo = src.packed + dst.packed + struct.pack("!BBH", 0, 17, 8 + len(payload))
    assert checksum(pseudo + framed[20:]) in (0, 0xFFFF)
    assert unframe_udp(framed) == payload


@given(payload=st.binary(min_size=1, max_size=64), position=st.integers(min_value=0), value=st.integers(0, 255))
def test_a_mutated_frame_gives_a_payload_none_or_the_typed_error(payload, position, value):
    packet = bytearray(frame_udp(payload, sport=SERVER_PORT, dport=CLIENT_PORT))
    packet[position % len(packet)] = value
    try:
        result = unframe_udp(bytes(packet))
    except DhcpPacketError as exc:
        assert exc.field in ("IPv4 header", "IPv4 header checksum", "UDP length")
        return
    assert result is None or isinstance(result, bytes)
