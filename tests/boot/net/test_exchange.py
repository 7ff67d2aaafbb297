"""The driver loop shared by DHCPv4 and DHCPv6, over a socket pair: truthful counts when sends fail, retransmissions
that a busy socket cannot starve, and the address check between an ACK and the lease."""

from __future__ import annotations

import errno
import ipaddress
import random
import socket

import pytest

from boot.net.dhcp4 import BOOTREPLY, Dhcp4Client, Dhcp4MessageType, Dhcp4Option, decode_message, encode_message
from boot.net.exchange import CheckAddress, run_exchange
from boot.net.waits import InterfaceWaitTimeout
from initiator.deadline import Deadline

MAC = bytes.fromhex("525400123456")


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ours.setblocking(False)
    with ours, theirs:
        yield ours, theirs


def test_messages_that_could_not_be_sent_are_not_counted(pair):
    ours, _theirs = pair
    client = Dhcp4Client(MAC, rng=random.Random(1), backoff=(0.05,), jitter=0.0)

    def send(payload: bytes) -> None:
        raise OSError(errno.ENETDOWN, "Network is down")

    with pytest.raises(InterfaceWaitTimeout) as caught:
        run_exchange("eth0", client, ours, send, lambda: ours.recv(2000), Deadline("dhcp", 0.3))
    assert str(caught.value).startswith("eth0: wait 'dhcp' ran out after 0.3s: selecting, 0 DISCOVER and 0 REQUEST")
    assert str(caught.value).endswith("; send failed: Network is down")


def test_a_busy_socket_does_not_starve_the_retransmissions(pair):
    ours, theirs = pair
    client = Dhcp4Client(MAC, rng=random.Random(1), backoff=(0.05,), jitter=0.0)
    sent: list[bytes] = []

    def read() -> bytes | None:
        theirs.send(b"noise")  # there is always another packet waiting
        ours.recv(100)
        return None

    theirs.send(b"noise")
    with pytest.raises(InterfaceWaitTimeout):
        run_exchange("eth0", client, ours, sent.append, read, Deadline("dhcp", 0.5))
    assert len(sent) >= 5 and client.discovers_sent == len(sent)


def test_an_ack_is_checked_before_it_is_a_lease(pair):
    ours, theirs = pair
    client = Dhcp4Client(MAC, rng=random.Random(1))
    checked: list[CheckAddress] = []

    def send(payload: bytes) -> None:
        message = decode_message(payload)
        kind = {Dhcp4MessageType.DISCOVER: Dhcp4MessageType.OFFER, Dhcp4MessageType.REQUEST: Dhcp4MessageType.ACK}
        options = [
            (Dhcp4Option.MESSAGE_TYPE, bytes((kind[message.message_type],))),
            (Dhcp4Option.SERVER_ID, bytes((10, 0, 0, 1))),
            (Dhcp4Option.SUBNET_MASK, bytes((255, 255, 255, 0))),
        ]
        yiaddr = ipaddress.IPv4Address("10.0.0.9")
        theirs.send(encode_message(op=BOOTREPLY, xid=message.xid, chaddr=MAC, options=options, yiaddr=yiaddr))

    def check(event: CheckAddress):
        checked.append(event)
        return client.address_checked(None, 0.0)

    lease = run_exchange("eth0", client, ours, send, lambda: ours.recv(2000), Deadline("dhcp", 5), check=check)
    assert [str(c.address) for c in checked] == ["10.0.0.9"] and str(lease.address) == "10.0.0.9/24"
