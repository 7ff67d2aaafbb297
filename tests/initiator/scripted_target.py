"""A small scripted iSCSI target in the full feature phase, on one end of a socketpair, for client tests.

It emulates just enough SCSI (REPORT LUNS, INQUIRY, READ CAPACITY, READ) over LUNs described in a table, checks
the initiator's numbering (CmdSN, ExpStatSN) and can misbehave on request: a UNIT ATTENTION first, READ
CAPACITY(16) unknown, pings before every answer, Data-In cut in pieces, an Async logout request.

With `Script.send_targets` set it is a discovery portal instead, shaped after Linux's LIO: a login without
authentication, a CmdSN window of one command that grows by one per answered Text Request (optionally not for
a continuation, as older LIO), the answer cut into Text Responses of `text_piece` bytes, and any PDU but a
Login, Text or Logout Request refused by hanging up (LIO: "Received illegal iSCSI Opcode ... while in
Discovery Session"). `scripted_portal()` serves one connection of it on 127.0.0.1 for the whole client.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

from initiator import pdu as P
from initiator import scsi
from initiator.framing import PduReader, frame
from initiator.portal import Portal
from initiator.session import serial_lt


@dataclass
class Lun:
    ptype: int = 0
    blocks: int = 2048
    block_size: int = 512
    vendor: bytes = b"PYISCSI "
    product: bytes = b"SCRIPTED DISK   "

    def block(self, lba: int) -> bytes:
        pattern = f"block {lba} ".encode()
        return (pattern * (self.block_size // len(pattern) + 1))[: self.block_size]


@dataclass
class Script:
    luns: dict[int, Lun] = field(default_factory=lambda: {0: Lun(ptype=0x0C), 1: Lun()})
    unit_attention_first: bool = False
    no_read_capacity_16: bool = False
    ping_before_answer: bool = False
    data_in_piece: int = 0  # >0: split Data-In into pieces of this size
    async_logout_after: int = 0  # >0: after this many commands, ask for a logout
    luns_list_extra: int = 0  # claim this many more LUN entries than returned (a truncated list)
    no_report_luns: bool = False  # an SPC-2 device: REPORT LUNS is an invalid opcode
    logout_response: int | None = 0  # None: hang up instead of answering the Logout Request
    # Discovery portal (see the module docstring): the SendTargets answer, and how the target hands it out.
    send_targets: bytes | None = None
    text_piece: int = 0  # >0: Text Responses of at most this many bytes (F=0 and a TTT until the last)
    window_grows_on_continue: bool = True  # False: MaxCmdSN stays put for a continuation request (older LIO)
    login_window: int = 1  # commands the final Login Response allows (MaxCmdSN = ExpCmdSN + this - 1)

    @property
    def discovery(self) -> bool:
        return self.send_targets is not None


def _sense(key: int, asc: int, ascq: int = 0) -> bytes:
    sense = bytes([0x70, 0, key, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, ascq, 0, 0, 0, 0])
    return struct.pack(">H", len(sense)) + sense


class ScriptedTarget:
    def __init__(self, sock: socket.socket, script: Script, statsn: int = 50, cmdsn: int = 1) -> None:
        self.sock = sock
        self.script = script
        self.statsn = statsn
        self.exp_cmdsn = cmdsn
        self.commands: list[bytes] = []
        self.errors: list[str] = []
        self.received: list[str] = []  # every PDU's kind, in order
        self.max_cmdsn = cmdsn + script.login_window - 1
        self._answer_left = b""
        self.logged_out = False
        self._ua_pending = script.unit_attention_first
        self._ping_ttt = 0x1000
        self._pings_out: set[int] = set()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _sn(self) -> dict:
        if self.script.discovery:
            return {"exp_cmdsn": self.exp_cmdsn, "max_cmdsn": self.max_cmdsn}
        return {"exp_cmdsn": self.exp_cmdsn, "max_cmdsn": self.exp_cmdsn + 8}

    def _status_sn(self) -> dict:
        sn = {"statsn": self.statsn} | self._sn()
        self.statsn += 1
        return sn

    def _send(self, pdu: P.Pdu) -> None:
        self.sock.sendall(frame(pdu))

    def _serve(self) -> None:
        reader = PduReader(from_target=False, max_data_segment=65536)
        self.sock.settimeout(10)
        try:
            while not self.logged_out:
                data = self.sock.recv(65536)
                if not data:
                    return
                reader.feed(data)
                for pdu in reader.pdus():
                    self._handle(pdu)
        except Exception as exc:  # recorded for the test to assert on
            self.errors.append(f"{type(exc).__name__}: {exc}")

    def _check_numbers(self, pdu: P.Pdu) -> None:
        cmdsn = pdu.cmdsn  # type: ignore[attr-defined]
        if cmdsn != self.exp_cmdsn:
            self.errors.append(f"{pdu.kind}: CmdSN {cmdsn}, expected {self.exp_cmdsn}")
        if not pdu.immediate:
            self.exp_cmdsn += 1
        exp_statsn = pdu.exp_statsn  # type: ignore[attr-defined]
        if exp_statsn != self.statsn:
            self.errors.append(f"{pdu.kind}: ExpStatSN {exp_statsn}, expected {self.statsn}")

    def _handle(self, pdu: P.Pdu) -> None:
        self.received.append(pdu.kind)
        if self.script.discovery:
            self._discovery(pdu)
            return
        if isinstance(pdu, P.NopOut):
            if pdu.itt == P.RESERVED_TAG:  # the answer to our ping
                if pdu.ttt not in self._pings_out:
                    self.errors.append(f"NOP-Out answers unknown TTT {pdu.ttt:#x}")
                self._pings_out.discard(pdu.ttt)
                return
            self._check_numbers(pdu)
            self._send(P.NopIn(itt=pdu.itt, ttt=P.RESERVED_TAG, data=pdu.data, **self._status_sn()))
            return
        if isinstance(pdu, P.LogoutRequest):
            self._check_numbers(pdu)
            self.logged_out = True
            if self.script.logout_response is None:
                self.sock.shutdown(socket.SHUT_RDWR)
                return
            self._send(
                P.LogoutResponse(
                    itt=pdu.itt, response=self.script.logout_response, time2wait=0, time2retain=0, **self._status_sn()
                )
            )
            return
        if not isinstance(pdu, P.ScsiCommand):
            self.errors.append(f"unexpected {pdu.kind}")
            return
        self._check_numbers(pdu)
        self.commands.append(pdu.cdb)
        if self.script.ping_before_answer:
            self._ping_ttt += 1
            self._pings_out.add(self._ping_ttt)
            self._send(
                P.NopIn(itt=P.RESERVED_TAG, ttt=self._ping_ttt, statsn=self.statsn, data=b"are you there", **self._sn())
            )
        if self.script.async_logout_after and len(self.commands) > self.script.async_logout_after:
            self._send(P.AsyncMessage(event=P.AsyncEvent.LOGOUT_REQUESTED, parameter3=5, **self._status_sn()))
            return
        self._scsi(pdu)

    def _respond(self, cmd: P.ScsiCommand, status: int, data: bytes = b"", sense: bytes = b"") -> None:
        data = data[: cmd.expected_length]
        piece = self.script.data_in_piece or max(1, len(data))
        for n, offset in enumerate(range(0, len(data), piece)):
            self._send(
                P.DataIn(
                    itt=cmd.itt,
                    datasn=n,
                    buffer_offset=offset,
                    data=data[offset : offset + piece],
                    final=offset + piece >= len(data),
                    **self._sn(),
                )
            )
        residual = cmd.expected_length - len(data)
        self._send(
            P.ScsiResponse(
                itt=cmd.itt, status=status, data=sense, underflow=residual > 0, residual=residual, **self._status_sn()
            )
        )

    def _scsi(self, cmd: P.ScsiCommand) -> None:
        lun_number = P.decode_lun(cmd.lun)
        op = cmd.cdb[0]
        if self._ua_pending:
            self._ua_pending = False
            self._respond(cmd, scsi.ScsiStatus.CHECK_CONDITION, sense=_sense(scsi.SenseKey.UNIT_ATTENTION, 0x29))
            return
        if op == 0xA0 and self.script.no_report_luns:
            self._respond(cmd, 2, sense=_sense(scsi.SenseKey.ILLEGAL_REQUEST, 0x20))
            return
        if op == 0xA0:
            body = b"".join(scsi.encode_lun(n) for n in sorted(self.script.luns))
            header = struct.pack(">I4x", len(body) + 8 * self.script.luns_list_extra)
            self._respond(cmd, 0, header + body)
            return
        lun = self.script.luns.get(lun_number)
        if lun is None:
            self._respond(cmd, 2, sense=_sense(scsi.SenseKey.ILLEGAL_REQUEST, 0x25))
            return
        if op == 0x12:
            self._respond(cmd, 0, bytes([lun.ptype, 0, 5, 2, 31, 0, 0, 0]) + lun.vendor + lun.product + b"0001")
        elif op == 0x9E:
            if self.script.no_read_capacity_16:
                self._respond(cmd, 2, sense=_sense(scsi.SenseKey.ILLEGAL_REQUEST, 0x20))
            else:
                self._respond(cmd, 0, struct.pack(">QI", lun.blocks - 1, lun.block_size) + bytes(20))
        elif op == 0x25:
            self._respond(cmd, 0, struct.pack(">II", lun.blocks - 1, lun.block_size))
        elif op == 0x28:
            lba, count = struct.unpack_from(">I", cmd.cdb, 2)[0], struct.unpack_from(">H", cmd.cdb, 7)[0]
            self._respond(cmd, 0, b"".join(lun.block(lba + i) for i in range(count)))
        else:
            self._respond(cmd, 2, sense=_sense(scsi.SenseKey.ILLEGAL_REQUEST, 0x20))

    # ---- discovery portal --------------------------------------------------------------------------------

    def _discovery(self, pdu: P.Pdu) -> None:
        if isinstance(pdu, P.LoginRequest):
            self._login(pdu)
        elif isinstance(pdu, P.TextRequest):
            self._text(pdu)
        elif isinstance(pdu, P.LogoutRequest):
            self._check_numbers(pdu)
            self.logged_out = True
            self._send(P.LogoutResponse(itt=pdu.itt, response=0, time2wait=0, time2retain=0, **self._status_sn()))
        else:  # what LIO does: log "illegal iSCSI Opcode ... while in Discovery Session" and drop the connection
            self.errors.append(f"{pdu.kind} (opcode 0x{pdu.OPCODE:02x}) in a discovery session")
            self.logged_out = True
            self.sock.shutdown(socket.SHUT_RDWR)

    def _login(self, pdu: P.LoginRequest) -> None:
        """No authentication: the security stage answers AuthMethod=None, the operational stage ends the login
        (our offers unanswered keep their defaults)."""
        if pdu.cmdsn != self.exp_cmdsn:
            self.errors.append(f"Login Request: CmdSN {pdu.cmdsn}, expected {self.exp_cmdsn}")
        final = pdu.transit and pdu.nsg == P.Stage.FULL_FEATURE
        data = b"AuthMethod=None\x00" if pdu.csg == P.Stage.SECURITY else b""
        self._send(
            P.LoginResponse(
                transit=pdu.transit,
                csg=pdu.csg,
                nsg=pdu.nsg if pdu.transit else 0,
                isid=pdu.isid,
                tsih=0x1234 if final else 0,
                itt=pdu.itt,
                data=data,
                **self._status_sn(),
            )
        )

    def _text(self, pdu: P.TextRequest) -> None:
        if not pdu.immediate and serial_lt(self.max_cmdsn, pdu.cmdsn):
            self.errors.append(f"Text Request: CmdSN {pdu.cmdsn} beyond MaxCmdSN {self.max_cmdsn}")
        self._check_numbers(pdu)
        continuing = pdu.ttt != P.RESERVED_TAG
        if not continuing:
            if pdu.data != b"SendTargets=All\x00":
                self.errors.append(f"Text Request: {pdu.data!r}, expected SendTargets=All")
            self._answer_left = self.script.send_targets or b""
        if not pdu.immediate and (not continuing or self.script.window_grows_on_continue):
            self.max_cmdsn += 1  # the slot of the answered command comes back
        piece = self.script.text_piece or max(1, len(self._answer_left))
        chunk, self._answer_left = self._answer_left[:piece], self._answer_left[piece:]
        final = not self._answer_left
        if self.script.ping_before_answer:  # not allowed in discovery: the initiator must not answer it
            self._ping_ttt += 1
            self._send(P.NopIn(itt=P.RESERVED_TAG, ttt=self._ping_ttt, statsn=self.statsn, **self._sn()))
        self._send(
            P.TextResponse(
                itt=pdu.itt,
                final=final,
                cont=not final,
                ttt=P.RESERVED_TAG if final else 0x7700 + len(self.received),
                data=chunk,
                **self._status_sn(),
            )
        )


@contextlib.contextmanager
def scripted_portal(
    script: Script, *, statsn: int = 50, cmdsn: int = 1
) -> Iterator[tuple[Portal, list[ScriptedTarget]]]:
    """A listener on 127.0.0.1 that serves one connection with a ScriptedTarget (in the list once accepted)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(10)
    targets: list[ScriptedTarget] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            sock, _ = server.accept()
            targets.append(ScriptedTarget(sock, script, statsn=statsn, cmdsn=cmdsn))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield Portal("127.0.0.1", server.getsockname()[1]), targets
    finally:
        server.close()
        thread.join(5)
        for target in targets:
            target.thread.join(5)
            target.sock.close()
