"""NETLINK_ISCSI layouts against byte images laid out by hand from include/scsi/iscsi_if.h (x86-64)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator import iscsi_if as nl
from initiator.errors import RemoteProtocolError

HANDLE = 0xFFFF_8880_1234_5678


def _image(ev_type: int, request: bytes = b"", reply: bytes = b"", payload: bytes = b"", seq: int = 7) -> bytes:
    """nlmsghdr + iscsi_uevent laid out with explicit offsets: type@0 iferror@4 handle@8 u@16 r@40, 56 bytes."""
    ev = bytearray(56)
    struct.pack_into("<I", ev, 0, ev_type)
    struct.pack_into("<Q", ev, 8, HANDLE)
    ev[16 : 16 + len(request)] = request
    ev[40 : 40 + len(reply)] = reply
    body = bytes(ev) + payload
    total = 16 + len(body)
    return struct.pack("<IHHII", total, ev_type, 1, seq, 0) + body + b"\0" * ((-total) % 4)


@pytest.mark.parametrize(
    ("request_", "request_bytes", "payload"),
    [
        (nl.create_session(HANDLE, 5, 128, 32), struct.pack("<IHH", 5, 128, 32), b""),
        (nl.create_conn(HANDLE, 3, 0), struct.pack("<II", 3, 0), b""),
        # bind: transport_eph is a u64 at union offset 8, is_leading u32 at 16
        (nl.bind_conn(HANDLE, 3, 0, 9), struct.pack("<IIQI", 3, 0, 9, 1), b""),
        (nl.set_param(HANDLE, 3, 0, nl.IscsiParam.EXP_STATSN, "42"), struct.pack("<IIII", 3, 0, 14, 3), b"42\0"),
        (nl.start_conn(HANDLE, 3, 0), struct.pack("<II", 3, 0), b""),
        (nl.stop_conn(HANDLE, 3, 0, nl.StopFlag.RECOVER), struct.pack("<IIQI", 3, 0, 0, 3), b""),
        (nl.send_pdu(HANDLE, 3, 0, b"H" * 48, b"data"), struct.pack("<IIII", 3, 0, 48, 4), b"H" * 48 + b"data"),
        (nl.destroy_conn(HANDLE, 3, 0), struct.pack("<II", 3, 0), b""),
        (nl.destroy_session(HANDLE, 3), struct.pack("<I", 3), b""),
    ],
)
def test_requests_match_hand_laid_images(request_, request_bytes, payload):
    assert request_.encode(seq=7) == _image(request_.type, request_bytes, payload=payload)


def test_uevent_is_56_bytes_and_unions_fit():
    for fields in nl.REQUEST_LAYOUTS.values():
        assert nl.layout(fields).size <= nl.REQUEST_UNION_SIZE
    for fields in nl.REPLY_LAYOUTS.values():
        assert nl.layout(fields).size <= nl.REPLY_UNION_SIZE
    assert len(nl.create_conn(1, 2, 3).encode()) == 16 + 56


@pytest.mark.parametrize(
    ("ev_type", "reply", "expected"),
    [
        (11, struct.pack("<II", 4, 2), {"sid": 4, "host_no": 2}),
        (13, struct.pack("<II", 4, 0), {"sid": 4, "cid": 0}),
        (15, struct.pack("<i", -22), {"retcode": -22}),
        (102, struct.pack("<III", 4, 0, 1020), {"sid": 4, "cid": 0, "error": 1020}),
        (101, struct.pack("<IIQ", 4, 0, 0xABC), {"sid": 4, "cid": 0, "recv_handle": 0xABC}),
        (104, struct.pack("<II", 2, 4), {"host_no": 2, "sid": 4}),
    ],
)
def test_replies_and_events_decode(ev_type, reply, expected):
    [msg] = nl.decode_messages(_image(ev_type, reply=reply, payload=b"PDU" if ev_type == 101 else b""))
    assert msg.type == ev_type
    assert dict(msg.fields) == expected
    assert msg.transport_handle == HANDLE
    assert msg.payload == (b"PDU" if ev_type == 101 else b"")


def test_several_messages_in_one_datagram():
    data = _image(102, reply=struct.pack("<III", 1, 0, 1011)) + _image(106, reply=struct.pack("<II", 2, 5))
    msgs = nl.decode_messages(data)
    assert [m.type for m in msgs] == [nl.UEvent.CONN_ERROR, nl.UEvent.K_CREATE_SESSION]
    assert nl.IscsiErr(msgs[0].fields["error"]) is nl.IscsiErr.CONN_FAILED


def test_netlink_error_message_carries_errno():
    err = struct.pack("<IHHII", 36, nl.NLMSG_ERROR, 0, 1, 0) + struct.pack("<i", -1) + b"\0" * 16
    [msg] = nl.decode_messages(err)
    assert msg.type == nl.NLMSG_ERROR and msg.retcode == -1


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (struct.pack("<IHHII", 200, 101, 0, 0, 0), "nlmsg_len"),
        (struct.pack("<IHHII", 8, 101, 0, 0, 0), "nlmsg_len"),
        (struct.pack("<IHHII", 24, 101, 0, 0, 0) + b"\0" * 8, "iscsi_uevent"),
    ],
)
def test_malformed_datagrams_name_the_field(data, field):
    with pytest.raises(RemoteProtocolError, match=field):
        nl.decode_messages(data)


def test_param_numbers_follow_the_header_order():
    assert nl.IscsiParam.TARGET_NAME == 15
    assert nl.IscsiParam.INITIATOR_NAME == 34
    assert nl.IscsiParam.DEF_TIME2WAIT == 49
    assert list(nl.IscsiParam) == sorted(nl.IscsiParam)
    assert [p.value for p in nl.IscsiParam] == list(range(len(nl.IscsiParam)))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_datagrams_give_messages_or_a_typed_error(data):
    try:
        msgs = nl.decode_messages(data)
    except RemoteProtocolError:
        return
    assert all(isinstance(m, nl.Message) for m in msgs)
