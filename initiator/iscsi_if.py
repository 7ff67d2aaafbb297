"""NETLINK_ISCSI messages as data (the kernel's include/scsi/iscsi_if.h), sans-I/O.

Each struct is declared once, as a tuple of (field, struct-format) pairs; offsets follow C's natural alignment,
so the declarations read like the header and a test checks them against hand-laid byte images. A message on the
wire is a netlink header (16 bytes) + `struct iscsi_uevent` (56 bytes on x86-64) + an optional payload (a PDU or
a NUL-terminated parameter value). The kernel switches on the netlink message type, which equals the uevent type.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from types import MappingProxyType

from initiator.codes import IntCode
from initiator.errors import RemoteProtocolError
from initiator.record import field, record

NETLINK_ISCSI = 8
ISCSI_NL_GRP_ISCSID = 1
NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLM_F_REQUEST = 0x1
NLMSG_ERROR = 2
UEVENT_SIZE = 56
REQUEST_UNION_OFFSET = 16
REPLY_UNION_OFFSET = 40
REQUEST_UNION_SIZE = 24
REPLY_UNION_SIZE = 16


class UEvent(IntCode):
    CREATE_SESSION = 11
    DESTROY_SESSION = 12
    CREATE_CONN = 13
    DESTROY_CONN = 14
    BIND_CONN = 15
    SET_PARAM = 16
    START_CONN = 17
    STOP_CONN = 18
    SEND_PDU = 19
    GET_STATS = 20
    GET_PARAM = 21
    SET_HOST_PARAM = 26
    UNBIND_SESSION = 27
    DESTROY_SESSION_ASYNC = 43
    # kernel -> user
    RECV_PDU = 101
    CONN_ERROR = 102
    IF_ERROR = 103
    K_DESTROY_SESSION = 104
    K_UNBIND_SESSION = 105
    K_CREATE_SESSION = 106
    PATH_REQ = 107
    IF_DOWN = 108
    CONN_LOGIN_STATE = 109
    HOST_EVENT = 110
    PING_COMP = 111


class StopFlag(IntCode):
    TERM = 1
    SUSPEND = 2
    RECOVER = 3


class IscsiErr(IntCode):
    """enum iscsi_err: why the kernel reports a connection error."""

    OK = 0
    DATASN = 1001
    DATA_OFFSET = 1002
    MAX_CMDSN = 1003
    EXP_CMDSN = 1004
    BAD_OPCODE = 1005
    DATALEN = 1006
    AHSLEN = 1007
    PROTO = 1008
    LUN = 1009
    BAD_ITT = 1010
    CONN_FAILED = 1011
    R2TSN = 1012
    SESSION_FAILED = 1013
    HDR_DGST = 1014
    DATA_DGST = 1015
    PARAM_NOT_FOUND = 1016
    NO_SCSI_CMD = 1017
    INVALID_HOST = 1018
    XMIT_FAILED = 1019
    TCP_CONN_CLOSE = 1020
    SCSI_EH_SESSION_RST = 1021
    NOP_TIMEDOUT = 1022


class IscsiParam(IntCode):
    """enum iscsi_param, in the header's order (the values are positions)."""

    MAX_RECV_DLENGTH = 0
    MAX_XMIT_DLENGTH = 1
    HDRDGST_EN = 2
    DATADGST_EN = 3
    INITIAL_R2T_EN = 4
    MAX_R2T = 5
    IMM_DATA_EN = 6
    FIRST_BURST = 7
    MAX_BURST = 8
    PDU_INORDER_EN = 9
    DATASEQ_INORDER_EN = 10
    ERL = 11
    IFMARKER_EN = 12
    OFMARKER_EN = 13
    EXP_STATSN = 14
    TARGET_NAME = 15
    TPGT = 16
    PERSISTENT_ADDRESS = 17
    PERSISTENT_PORT = 18
    SESS_RECOVERY_TMO = 19
    CONN_PORT = 20
    CONN_ADDRESS = 21
    USERNAME = 22
    USERNAME_IN = 23
    PASSWORD = 24
    PASSWORD_IN = 25
    FAST_ABORT = 26
    ABORT_TMO = 27
    LU_RESET_TMO = 28
    HOST_RESET_TMO = 29
    PING_TMO = 30
    RECV_TMO = 31
    IFACE_NAME = 32
    ISID = 33
    INITIATOR_NAME = 34
    TGT_RESET_TMO = 35
    TARGET_ALIAS = 36
    CHAP_IN_IDX = 37
    CHAP_OUT_IDX = 38
    BOOT_ROOT = 39
    BOOT_NIC = 40
    BOOT_TARGET = 41
    AUTO_SND_TGT_DISABLE = 42
    DISCOVERY_SESS = 43
    PORTAL_TYPE = 44
    CHAP_AUTH_EN = 45
    DISCOVERY_LOGOUT_EN = 46
    BIDI_CHAP_EN = 47
    DISCOVERY_AUTH_OPTIONAL = 48
    DEF_TIME2WAIT = 49
    DEF_TIME2RETAIN = 50
    MAX_SEGMENT_SIZE = 51
    STATSN = 52
    KEEPALIVE_TMO = 53
    LOCAL_PORT = 54
    TSID = 55
    DEF_TASKMGMT_TMO = 56


# Parameters whose values must never reach a log line.
SECRET_PARAMS = frozenset({IscsiParam.PASSWORD, IscsiParam.PASSWORD_IN})

Fields = tuple[tuple[str, str], ...]

# The request union (u), one layout per request type.
REQUEST_LAYOUTS: Mapping[UEvent, Fields] = MappingProxyType(
    {
        UEvent.CREATE_SESSION: (("initial_cmdsn", "I"), ("cmds_max", "H"), ("queue_depth", "H")),
        UEvent.DESTROY_SESSION: (("sid", "I"),),
        UEvent.CREATE_CONN: (("sid", "I"), ("cid", "I")),
        UEvent.DESTROY_CONN: (("sid", "I"), ("cid", "I")),
        UEvent.BIND_CONN: (("sid", "I"), ("cid", "I"), ("transport_eph", "Q"), ("is_leading", "I")),
        UEvent.SET_PARAM: (("sid", "I"), ("cid", "I"), ("param", "I"), ("len", "I")),
        UEvent.START_CONN: (("sid", "I"), ("cid", "I")),
        UEvent.STOP_CONN: (("sid", "I"), ("cid", "I"), ("conn_handle", "Q"), ("flag", "I")),
        UEvent.SEND_PDU: (("sid", "I"), ("cid", "I"), ("hdr_size", "I"), ("data_size", "I")),
        UEvent.GET_STATS: (("sid", "I"), ("cid", "I")),
        UEvent.SET_HOST_PARAM: (("host_no", "I"), ("param", "I"), ("len", "I")),
        UEvent.UNBIND_SESSION: (("sid", "I"),),
        UEvent.DESTROY_SESSION_ASYNC: (("sid", "I"),),
    }
)

# The reply/event union (r), one layout per message type the kernel sends; others carry `retcode`.
REPLY_LAYOUTS: Mapping[UEvent, Fields] = MappingProxyType(
    {
        UEvent.CREATE_SESSION: (("sid", "I"), ("host_no", "I")),
        UEvent.CREATE_CONN: (("sid", "I"), ("cid", "I")),
        UEvent.RECV_PDU: (("sid", "I"), ("cid", "I"), ("recv_handle", "Q")),
        UEvent.CONN_ERROR: (("sid", "I"), ("cid", "I"), ("error", "I")),
        UEvent.K_DESTROY_SESSION: (("host_no", "I"), ("sid", "I")),
        UEvent.K_UNBIND_SESSION: (("sid", "I"), ("host_no", "I")),
        UEvent.K_CREATE_SESSION: (("sid", "I"), ("host_no", "I")),
        UEvent.CONN_LOGIN_STATE: (("sid", "I"), ("cid", "I"), ("state", "I")),
    }
)
RETCODE_LAYOUT: Fields = (("retcode", "i"),)


def layout(fields: Fields) -> struct.Struct:
    """A little-endian struct with C's natural alignment of each field (x86-64), padded to 8."""
    parts: list[str] = []
    offset = 0
    for _, fmt in fields:
        size = struct.calcsize("<" + fmt)
        pad = (-offset) % size
        parts.append("x" * pad + fmt)
        offset += pad + size
    parts.append("x" * ((-offset) % 8))
    return struct.Struct("<" + "".join(parts))


def _pack_union(fields: Fields, values: Mapping[str, int], size: int) -> bytes:
    unknown = set(values) - {name for name, _ in fields}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)} for layout {[n for n, _ in fields]}")
    raw = layout(fields).pack(*(int(values.get(name, 0)) for name, _ in fields))
    if len(raw) > size:
        raise ValueError(f"layout of {len(raw)} bytes does not fit a union of {size}")
    return raw.ljust(size, b"\0")


def _unpack_union(fields: Fields, raw: bytes) -> dict[str, int]:
    s = layout(fields)
    return dict(zip((name for name, _ in fields), s.unpack_from(raw), strict=True))


@record
class Request:
    """A user->kernel message: the uevent, its request fields and a payload."""

    type: UEvent
    transport_handle: int
    fields: Mapping[str, int] = field(default_factory=dict)
    payload: bytes = b""

    def encode(self, seq: int = 0, pid: int = 0) -> bytes:
        head = struct.pack("<IiQ", self.type, 0, self.transport_handle)
        body = head + _pack_union(REQUEST_LAYOUTS[self.type], self.fields, REQUEST_UNION_SIZE)
        body += b"\0" * REPLY_UNION_SIZE
        assert len(body) == UEVENT_SIZE
        msg = body + self.payload
        total = NLMSG_HDR.size + len(msg)
        return NLMSG_HDR.pack(total, int(self.type), NLM_F_REQUEST, seq, pid) + msg + b"\0" * ((-total) % 4)


@record
class Message:
    """A kernel->user message: a reply to a request, or an event on the multicast group."""

    type: UEvent | int
    iferror: int
    transport_handle: int
    fields: Mapping[str, int]
    payload: bytes
    seq: int = 0

    @property
    def retcode(self) -> int:
        return self.fields.get("retcode", 0)


def decode_messages(data: bytes) -> list[Message]:
    """Split one datagram into messages; anything malformed raises RemoteProtocolError naming the field."""
    out: list[Message] = []
    offset = 0
    while offset + NLMSG_HDR.size <= len(data):
        length, nl_type, _flags, seq, _pid = NLMSG_HDR.unpack_from(data, offset)
        if length < NLMSG_HDR.size or offset + length > len(data):
            raise RemoteProtocolError(f"netlink nlmsg_len: {length} does not fit the {len(data) - offset} bytes left")
        body = data[offset + NLMSG_HDR.size : offset + length]
        if nl_type == NLMSG_ERROR:
            errno = -struct.unpack_from("<i", body)[0] if len(body) >= 4 else 0
            out.append(Message(NLMSG_ERROR, -errno, 0, {"retcode": -errno}, b"", seq))
        else:
            if len(body) < UEVENT_SIZE:
                raise RemoteProtocolError(f"iscsi_uevent: {len(body)} bytes, need {UEVENT_SIZE}")
            ev_type, iferror, handle = struct.unpack_from("<IiQ", body)
            try:
                kind: UEvent | int = UEvent(ev_type)
            except ValueError:
                kind = ev_type
            fields_layout = REPLY_LAYOUTS.get(kind, RETCODE_LAYOUT) if isinstance(kind, UEvent) else RETCODE_LAYOUT
            fields = _unpack_union(fields_layout, body[REPLY_UNION_OFFSET:UEVENT_SIZE])
            out.append(Message(kind, iferror, handle, MappingProxyType(fields), bytes(body[UEVENT_SIZE:]), seq))
        offset += (length + 3) & ~3
    return out


# Builders: one per request, named like the header's messages.


def create_session(handle: int, initial_cmdsn: int, cmds_max: int = 128, queue_depth: int = 32) -> Request:
    return Request(
        UEvent.CREATE_SESSION,
        handle,
        {"initial_cmdsn": initial_cmdsn, "cmds_max": cmds_max, "queue_depth": queue_depth},
    )


def create_conn(handle: int, sid: int, cid: int) -> Request:
    return Request(UEvent.CREATE_CONN, handle, {"sid": sid, "cid": cid})


def bind_conn(handle: int, sid: int, cid: int, socket_fd: int, is_leading: bool = True) -> Request:
    return Request(
        UEvent.BIND_CONN,
        handle,
        {"sid": sid, "cid": cid, "transport_eph": socket_fd, "is_leading": int(is_leading)},
    )


def set_param(handle: int, sid: int, cid: int, param: IscsiParam, value: str) -> Request:
    raw = value.encode() + b"\0"
    return Request(
        UEvent.SET_PARAM, handle, {"sid": sid, "cid": cid, "param": int(param), "len": len(raw)}, payload=raw
    )


def start_conn(handle: int, sid: int, cid: int) -> Request:
    return Request(UEvent.START_CONN, handle, {"sid": sid, "cid": cid})


def stop_conn(handle: int, sid: int, cid: int, flag: StopFlag, conn_handle: int = 0) -> Request:
    return Request(UEvent.STOP_CONN, handle, {"sid": sid, "cid": cid, "conn_handle": conn_handle, "flag": int(flag)})


def send_pdu(handle: int, sid: int, cid: int, header: bytes, data: bytes = b"") -> Request:
    return Request(
        UEvent.SEND_PDU,
        handle,
        {"sid": sid, "cid": cid, "hdr_size": len(header), "data_size": len(data)},
        payload=header + data,
    )


def destroy_conn(handle: int, sid: int, cid: int) -> Request:
    return Request(UEvent.DESTROY_CONN, handle, {"sid": sid, "cid": cid})


def destroy_session(handle: int, sid: int) -> Request:
    return Request(UEvent.DESTROY_SESSION, handle, {"sid": sid})
