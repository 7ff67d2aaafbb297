"""The ARP probe's bytes, and what counts as another host having the address (RFC 5227 section 2.1.1)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot.net import arp

MAC = bytes.fromhex("525400123456")
OTHER = bytes.fromhex("020000000099")
ADDRESS = ipaddress.IPv4Address("10.9.0.77")
ZERO = ipaddress.IPv4Address(0)


def packet(op, sha, spa, tha=bytes(6), tpa=ZERO, htype=1, ptype=0x0800) -> bytes:
    return struct.pack("!HHBBH6s4s6s4s", htype, ptype, 6, 4, op, sha, spa.packed, tha, tpa.packed)


def test_the_probe_asks_for_the_address_from_nowhere():
    assert arp.probe(MAC, ADDRESS) == packet(arp.OP_REQUEST, MAC, ZERO, bytes(6), ADDRESS)
    assert arp.decode(arp.probe(MAC, ADDRESS)) == arp.ArpPacket(1, MAC, ZERO, bytes(6), ADDRESS)


@pytest.mark.parametrize(
    ("payload", "owner"),
    [
        (packet(arp.OP_REPLY, OTHER, ADDRESS, MAC, ZERO), "02:00:00:00:00:99"),  # Linux answers a probe so
        (packet(arp.OP_REPLY, OTHER, ADDRESS, MAC, ADDRESS), "02:00:00:00:00:99"),
        (packet(arp.OP_REQUEST, OTHER, ADDRESS, bytes(6), ipaddress.IPv4Address("10.9.0.1")), "02:00:00:00:00:99"),
        (packet(arp.OP_REQUEST, OTHER, ZERO, bytes(6), ADDRESS), "02:00:00:00:00:99 (probing for it too)"),
        (packet(arp.OP_REQUEST, MAC, ZERO, bytes(6), ADDRESS), None),  # our own probe, looped back
        (packet(arp.OP_REPLY, MAC, ADDRESS, OTHER, ZERO), None),
        (packet(arp.OP_REPLY, OTHER, ipaddress.IPv4Address("10.9.0.78"), MAC, ZERO), None),
        (packet(arp.OP_REQUEST, OTHER, ipaddress.IPv4Address("10.9.0.1"), bytes(6), ADDRESS), None),  # asks for it
        (packet(3, OTHER, ADDRESS), None),  # RARP
        (packet(arp.OP_REPLY, OTHER, ADDRESS, htype=6), None),
        (packet(arp.OP_REPLY, OTHER, ADDRESS)[:20], None),
    ],
    ids=[
        "reply-to-probe",
        "reply",
        "owner-asks",
        "another-prober",
        "our-probe",
        "our-reply",
        "other-address",
        "someone-asks",
        "rarp",
        "not-ethernet",
        "short",
    ],
)
def test_what_is_a_conflict(payload, owner):
    assert arp.conflict(payload, MAC, ADDRESS) == owner


IPS = st.sampled_from([ZERO, ADDRESS, ipaddress.IPv4Address("10.9.0.1"), ipaddress.IPv4Address("10.9.0.78")])


@settings(max_examples=500)
@given(op=st.integers(0, 4), sha=st.sampled_from([MAC, OTHER]), spa=IPS, tha=st.sampled_from([bytes(6), MAC]), tpa=IPS)
def test_a_packet_is_a_conflict_exactly_when_another_host_has_or_probes_for_the_address(op, sha, spa, tha, tpa):
    owner = arp.conflict(packet(op, sha, spa, tha, tpa), MAC, ADDRESS)
    other = sha != MAC and op in (arp.OP_REQUEST, arp.OP_REPLY)
    expected = other and (spa == ADDRESS or (op == arp.OP_REQUEST and spa == ZERO and tpa == ADDRESS))
    assert (owner is not None) is expected


@settings(max_examples=500)
@given(st.binary(max_size=60))
def test_random_bytes_never_raise(data):
    owner = arp.conflict(data, MAC, ADDRESS)
    assert owner is None or owner.isprintable()
