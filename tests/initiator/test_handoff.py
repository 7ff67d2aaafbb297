from __future__ import annotations

import socket

import pytest

from initiator import iscsi_if as nl
from initiator.credentials import Chap, Credentials
from initiator.errors import NetworkError, RemoteProtocolError
from initiator.handoff import HandoffParams, assert_no_unread_bytes, kernel_params
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.record import replace
from initiator.secret import Secret

BASE = HandoffParams(
    HeldSession(
        target="iqn.2026-11.test:root",
        portal=Portal("10.0.2.2", 3260),
        tpgt=1,
        initiator_name="iqn.2026-11.test:client",
        isid=bytes.fromhex("400001370000"),
        tsih=5,
    ),
    initial_cmdsn=1,
    exp_statsn=8,
    negotiated={
        "MaxRecvDataSegmentLength": "262144",
        "HeaderDigest": "CRC32C",
        "DataDigest": "None",
        "InitialR2T": "No",
        "ImmediateData": "Yes",
        "FirstBurstLength": "65536",
        "MaxBurstLength": "262144",
        "DefaultTime2Wait": "2",
    },
    target_max_recv=8192,
)


def test_negotiated_keys_become_kernel_params():
    params = dict(kernel_params(BASE))
    P = nl.IscsiParam
    assert params[P.MAX_RECV_DLENGTH] == "262144"
    assert params[P.MAX_XMIT_DLENGTH] == "8192"
    assert (params[P.HDRDGST_EN], params[P.DATADGST_EN]) == ("1", "0")
    assert (params[P.INITIAL_R2T_EN], params[P.IMM_DATA_EN]) == ("0", "1")
    assert params[P.EXP_STATSN] == "8"
    assert params[P.ISID] == "400001370000"
    assert params[P.IFACE_NAME] == "default"
    assert (params[P.TARGET_NAME], params[P.TPGT]) == ("iqn.2026-11.test:root", "1")
    assert (params[P.PERSISTENT_ADDRESS], params[P.PERSISTENT_PORT]) == ("10.0.2.2", "3260")
    assert params[P.INITIATOR_NAME] == "iqn.2026-11.test:client"
    assert P.USERNAME not in params and P.PASSWORD not in params


U, T = Chap("u", Secret("p")), Chap("t", Secret("q"))
P = nl.IscsiParam


@pytest.mark.parametrize(
    ("credentials", "present", "absent"),
    [
        (Credentials(U), {P.USERNAME: "u", P.PASSWORD: "p"}, {P.USERNAME_IN, P.PASSWORD_IN}),
        (Credentials(U, T), {P.USERNAME: "u", P.PASSWORD: "p", P.USERNAME_IN: "t", P.PASSWORD_IN: "q"}, set()),
    ],
)
def test_chap_params(credentials, present, absent):
    params = dict(kernel_params(replace(BASE, session=replace(BASE.session, credentials=credentials))))
    for key, value in present.items():
        assert params[key] == value
    assert not absent & params.keys()


def test_unread_bytes_block_the_handover():
    a, b = socket.socketpair()
    with a, b:
        assert_no_unread_bytes(a)
        b.send(b"x")
        with pytest.raises(RemoteProtocolError, match="after the final Login Response"):
            assert_no_unread_bytes(a)
        a.recv(1)
        b.close()
        with pytest.raises(NetworkError, match="closed"):
            assert_no_unread_bytes(a)
