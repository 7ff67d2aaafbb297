"""A fake NETLINK_ISCSI kernel for tests of the kernel-channel login, recovery and teardown.

It records every request, answers SEND_PDU the way iscsi_tcp does (rewrites CmdSN with its own counter and
the ITT with its own tag, hands the PDU to a target; the target's answer comes back as a RECV_PDU event) and
keeps an event queue tests can fill. `refuse[type]` makes a request fail with that errno, `refuse_param[p]`
one SET_PARAM. `events_fileno()` is a pipe that is readable while events are queued, so select() works.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable

from initiator import iscsi_if as nl
from initiator.deadline import Deadline
from initiator.errors import WaitTimeout
from initiator.kernel import KernelError
from initiator.pdu import LoginRequest, LogoutRequest, LogoutResponse, Pdu, decode_bytes

HANDLE = 0x5EED
KERNEL_ITT = 0x0A000017


def event(kind: nl.UEvent, **fields: int) -> nl.Message:
    return nl.Message(kind, 0, HANDLE, fields, b"")


def conn_error(sid: int, cid: int = 0, error: nl.IscsiErr = nl.IscsiErr.TCP_CONN_CLOSE) -> nl.Message:
    return event(nl.UEvent.CONN_ERROR, sid=sid, cid=cid, error=int(error))


def recv_pdu(sid: int, pdu: Pdu, cid: int = 0) -> nl.Message:
    return nl.Message(nl.UEvent.RECV_PDU, 0, HANDLE, {"sid": sid, "cid": cid}, pdu.encode_bhs() + pdu.data)


class FakeKernel:
    def __init__(self, target: Callable[[Pdu], Pdu | None] | None = None, cmdsn: int = 1000) -> None:
        self.handle = HANDLE
        self.target = target  # gets each PDU as the kernel sent it; its answer becomes a RECV_PDU event
        self.cmdsn = cmdsn
        self.requests: list[nl.Request] = []
        self.sent: list[Pdu] = []  # PDUs as they left "the kernel"
        self.events: deque[nl.Message] = deque()
        self.refuse: dict[nl.UEvent, int] = {}
        self.refuse_param: dict[nl.IscsiParam, int] = {}
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)

    # -- events ------------------------------------------------------------------------------------------
    def push(self, *messages: nl.Message) -> None:
        for msg in messages:
            self.events.append(msg)
            os.write(self._w, b"e")

    def next_event(self, deadline: Deadline) -> nl.Message:
        if not self.events:
            raise WaitTimeout(deadline.tightest().name, deadline.tightest().bound, "no netlink event")
        os.read(self._r, 1)
        return self.events.popleft()

    def events_fileno(self) -> int:
        return self._r

    # -- requests ----------------------------------------------------------------------------------------
    def types(self) -> list[nl.UEvent]:
        return [r.type for r in self.requests]

    def params(self) -> dict[nl.IscsiParam, str]:
        return {
            nl.IscsiParam(r.fields["param"]): r.payload[:-1].decode()
            for r in self.requests
            if r.type == nl.UEvent.SET_PARAM
        }

    def request(self, req: nl.Request, deadline: Deadline) -> nl.Message:
        self.requests.append(req)
        if req.type in self.refuse:
            raise KernelError(f"kernel refused {req.type.name}: errno {self.refuse[req.type]}", self.refuse[req.type])
        if req.type == nl.UEvent.SET_PARAM:
            param = nl.IscsiParam(req.fields["param"])
            if param in self.refuse_param:
                code = self.refuse_param[param]
                raise KernelError(f"kernel refused SET_PARAM: errno {code}", code)
        if req.type == nl.UEvent.SEND_PDU:
            self._send(req)
        return nl.Message(req.type, 0, HANDLE, {"retcode": 0}, b"")

    def _send(self, req: nl.Request) -> None:
        size = req.fields["hdr_size"]
        pdu = decode_bytes(req.payload[:size] + req.payload[size:], from_target=False)
        if isinstance(pdu, LoginRequest | LogoutRequest):  # what libiscsi's iscsi_prep_mgmt_task does
            pdu = pdu.replace(cmdsn=self.cmdsn, itt=KERNEL_ITT)
        self.sent.append(pdu)
        answer = None if self.target is None else self.target(pdu)
        if answer is not None:
            self.push(recv_pdu(req.fields["sid"], answer, req.fields["cid"]))


def logout_target(response: int = 0) -> Callable[[Pdu], Pdu | None]:
    def answer(pdu: Pdu) -> Pdu | None:
        assert isinstance(pdu, LogoutRequest)
        return LogoutResponse(response=response, itt=pdu.itt, statsn=77, exp_cmdsn=pdu.cmdsn, max_cmdsn=pdu.cmdsn)

    return answer
