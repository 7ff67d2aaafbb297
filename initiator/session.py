"""The full feature phase of one single-connection session, sans-I/O: PDUs to send out, target PDUs in, events out.

Used by the userspace probe and by discovery (text exchanges); the kernel runs the sessions that carry a root
disk. Theory of operation:

- Numbering (RFC 7143 4.2.2): a non-immediate command takes the next CmdSN; an immediate one carries the
  current CmdSN without taking it. A command may go out only while CmdSN <= MaxCmdSN (serial arithmetic);
  `window_open` says so. ExpCmdSN/MaxCmdSN from the target only move forward, and a pair with
  MaxCmdSN < ExpCmdSN - 1 is ignored (RFC 7143 4.2.2.1). ExpStatSN is the StatSN of the last status-bearing PDU
  plus one.
- Tasks: each command gets an Initiator Task Tag no other outstanding task has (0xffffffff is reserved).
  Data-In is reassembled in order (we offer DataPDUInOrder=Yes) into a buffer no larger than the command's
  expected length: a target sending more, out of order or for a tag we do not know is a RemoteProtocolError.
- A target NOP-In ping (TTT != 0xffffffff) is answered with a NOP-Out echoing TTT, LUN and data (`Send` event).
- A discovery session (`discovery=True`) sends Text and Logout Requests only (RFC 7143 4.3; LIO drops the
  connection on anything else): no NOP-Out, not even to a target's ping, no SCSI command; a Text Request
  goes immediate while the CmdSN window is closed, instead of waiting on a ping to open it.
- Async Message "logout requested" (and "renegotiate") surfaces as `LogoutRequested`; the driver logs out.
  "connection/session dropped" raise IscsiError: nothing more will come.
- Any error poisons the session (state FAILED): the connection must be dropped.

Every change of `Session.state` is one line of `TRANSITIONS`, (SessionPhase, SessionEvent) -> SessionPhase; a
pair with no line raises IllegalTransition (a LocalProtocolError) naming the phase and what was asked, except
ANSWER_PING, which is only asked about: without a line the target's ping goes unanswered. Which PDU, task or
sequence number is acceptable is checked in the methods; the table says only when.
"""

from __future__ import annotations

from types import MappingProxyType

from initiator import pdu as P
from initiator.codes import Code
from initiator.errors import IllegalTransition, IscsiError, LocalProtocolError, RemoteProtocolError
from initiator.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Mapping

    from initiator import scsi  # imported where a SCSI result is read: a session that runs no command never loads it

SERIAL_HALF = 1 << 31
MASK32 = 0xFFFFFFFF
DEFAULT_MAX_DATA_IN = 16 * 1024 * 1024  # no probe command needs more


def serial_lt(a: int, b: int) -> bool:
    """RFC 1982 serial number comparison for 32-bit sequence numbers: a < b."""
    return a != b and ((b - a) & MASK32) < SERIAL_HALF


def serial_le(a: int, b: int) -> bool:
    return a == b or serial_lt(a, b)


class SessionPhase(Code):
    FULL_FEATURE = "full feature phase"
    LOGGING_OUT = "logging out"
    LOGGED_OUT = "logged out"
    FAILED = "failed"


class SessionEvent(Code):
    SEND = "send a SCSI command, Text Request or NOP-Out"
    SEND_LOGOUT = "send a Logout Request"
    RECEIVE = "receive a target PDU"
    ANSWER_PING = "answer a target's NOP-In ping"
    LOGOUT_RESPONSE = "the Logout Response"
    TARGET_ERROR = "a target PDU that ends the session"


_S, _E = SessionPhase, SessionEvent

# The full feature phase of one connection, one line per transition (RFC 7143). LOGGED_OUT and FAILED are final.
TRANSITIONS: Mapping[tuple[SessionPhase, SessionEvent], SessionPhase] = MappingProxyType(
    {
        # Commands, text exchanges and our pings go out only in full feature phase (CmdSN window checked apart).
        (_S.FULL_FEATURE, _E.SEND): _S.FULL_FEATURE,
        # The Logout Request is immediate; once it is out no new task may start on the connection.
        (_S.FULL_FEATURE, _E.SEND_LOGOUT): _S.LOGGING_OUT,
        # Responses to tasks still outstanding keep arriving, also while the logout is pending.
        (_S.FULL_FEATURE, _E.RECEIVE): _S.FULL_FEATURE,
        (_S.LOGGING_OUT, _E.RECEIVE): _S.LOGGING_OUT,
        # A NOP-In with a TTT wants a NOP-Out echoing it; not after our Logout Request (nothing more goes out).
        (_S.FULL_FEATURE, _E.ANSWER_PING): _S.FULL_FEATURE,
        # The Logout Response closes the session; the target has ended whatever was still outstanding.
        (_S.LOGGING_OUT, _E.LOGOUT_RESPONSE): _S.LOGGED_OUT,
        # A protocol error, a Reject, a failed command or an Async "dropping": the connection must be dropped
        # (at ERL 0 nothing is recovered in place), so the session is poisoned.
        (_S.FULL_FEATURE, _E.TARGET_ERROR): _S.FAILED,
        (_S.LOGGING_OUT, _E.TARGET_ERROR): _S.FAILED,
    }
)


def next_state(state: SessionPhase, event: SessionEvent, subject: str = "") -> SessionPhase:
    """The state `event` leads to; IllegalTransition naming the state and `subject` (what was asked) if none."""
    after = TRANSITIONS.get((state, event))
    if after is not None:
        return after
    if event in (_E.SEND, _E.SEND_LOGOUT):
        message = f"session: cannot send {subject} while {state.value}"
    elif event is _E.RECEIVE:
        message = f"session: PDU {subject} received while {state.value}"
    else:
        message = None
    raise IllegalTransition("session", state, event, message)


# ---- events ---------------------------------------------------------------------------------------------


@record
class CommandDone:
    """A SCSI command finished. `data` is what Data-In delivered (already trimmed by the residual)."""

    itt: int
    command: scsi.ScsiCommand
    status: int
    data: bytes
    sense: scsi.Sense | None
    residual: int = 0

    def check(self) -> bytes:
        """The data, or ScsiCommandError when the status is not GOOD."""
        from initiator import scsi

        scsi.check(self.command, self.status, self.sense)
        return self.data


@record
class Send:
    """A PDU the session wants sent (the answer to a target's NOP-In ping)."""

    pdu: P.Pdu


@record
class PingAnswered:
    itt: int
    data: bytes


@record
class TextReply:
    """One Text Response of an exchange: `final` False means ask for more with `ttt` (see text_continue)."""

    itt: int
    data: bytes
    final: bool
    cont: bool
    ttt: int


@record
class LogoutRequested:
    """The target asks us to log out within `within` seconds (Async Message event 1, or 4: renegotiate)."""

    within: int
    event: int


@record
class LoggedOut:
    response: int
    time2wait: int
    time2retain: int


@record
class AsyncNotice:
    """An Async Message we need not act on (a SCSI event with its sense data, a vendor event)."""

    event: int
    data: bytes


_REJECT_REASONS = frozenset(int(r) for r in P.RejectReason)

Event = CommandDone | Send | PingAnswered | TextReply | LogoutRequested | LoggedOut | AsyncNotice


# ---- tasks ----------------------------------------------------------------------------------------------


class _Kind(Code):
    SCSI = "SCSI command"
    NOP = "NOP-Out"
    TEXT = "Text Request"
    LOGOUT = "Logout Request"


@record(frozen=False)
class _Task:
    kind: _Kind
    command: scsi.ScsiCommand | None = None
    buffer: bytearray = field(default_factory=bytearray)
    next_datasn: int = 0


class Session:
    """One connection's full feature phase. Feed every target PDU to `receive`; send what the methods return."""

    def __init__(
        self,
        *,
        cmdsn: int,
        exp_statsn: int,
        max_cmdsn: int | None = None,
        max_send_data_segment: int = 8192,
        max_data_in: int = DEFAULT_MAX_DATA_IN,
        first_itt: int = 1,
        discovery: bool = False,
    ) -> None:
        self.cmdsn = cmdsn & MASK32
        self.exp_cmdsn = self.cmdsn
        self.max_cmdsn = self.cmdsn if max_cmdsn is None else max_cmdsn & MASK32
        self.exp_statsn = exp_statsn & MASK32
        self.max_send_data_segment = max_send_data_segment
        self.max_data_in = max_data_in
        self.state = SessionPhase.FULL_FEATURE
        self._next_itt = first_itt & MASK32
        self._tasks: dict[int, _Task] = {}
        self.discovery = discovery  # RFC 7143 4.3: a discovery session carries only Text and Logout Requests

    # ---- what we may send ----------------------------------------------------------------------------

    @property
    def window_open(self) -> bool:
        return serial_le(self.cmdsn, self.max_cmdsn)

    @property
    def outstanding(self) -> int:
        return len(self._tasks)

    def _require_ready(self, what: str, *, immediate: bool, event: SessionEvent = _E.SEND) -> SessionPhase:
        """The state sending `what` leads to; raises if the state or (non-immediate) the CmdSN window forbid it."""
        after = next_state(self.state, event, what)
        if not immediate and not self.window_open:
            raise LocalProtocolError(
                f"session: cannot send {what}: CmdSN {self.cmdsn} is beyond the target's MaxCmdSN {self.max_cmdsn}"
            )
        return after

    def _new_itt(self, task: _Task) -> int:
        for _ in range(len(self._tasks) + 2):
            itt = self._next_itt
            self._next_itt = (self._next_itt + 1) & MASK32
            if itt != P.RESERVED_TAG and itt not in self._tasks:
                self._tasks[itt] = task
                return itt
        raise LocalProtocolError("session: no free initiator task tag")  # pragma: no cover - 2**32 tasks

    def _take_cmdsn(self, immediate: bool) -> int:
        cmdsn = self.cmdsn
        if not immediate:
            self.cmdsn = (self.cmdsn + 1) & MASK32
        return cmdsn

    def scsi_command(self, lun: int, command: scsi.ScsiCommand) -> tuple[int, P.ScsiCommand]:
        """A read-type (or no-data) SCSI command: its tag and the PDU to send."""
        self._refuse_in_discovery(f"SCSI {command.name}")
        self._require_ready(f"SCSI {command.name}", immediate=False)
        if command.data_in_length > self.max_data_in:
            raise LocalProtocolError(
                f"session: {command.name} would read {command.data_in_length} bytes, over the bound {self.max_data_in}"
            )
        itt = self._new_itt(_Task(_Kind.SCSI, command))
        return itt, P.ScsiCommand(
            final=True,
            read=command.data_in_length > 0,
            attr=P.TaskAttr.SIMPLE,
            lun=P.encode_lun(lun),
            itt=itt,
            expected_length=command.data_in_length,
            cmdsn=self._take_cmdsn(False),
            exp_statsn=self.exp_statsn,
            cdb=command.cdb,
        )

    def ping(self, data: bytes = b"") -> tuple[int, P.NopOut]:
        """Our own NOP-Out (immediate): the target answers with a NOP-In carrying fresh ExpCmdSN/MaxCmdSN."""
        self._refuse_in_discovery("NOP-Out")
        self._require_ready("NOP-Out", immediate=True)
        itt = self._new_itt(_Task(_Kind.NOP))
        return itt, P.NopOut(
            immediate=True, itt=itt, ttt=P.RESERVED_TAG, cmdsn=self.cmdsn, exp_statsn=self.exp_statsn, data=data
        )

    def text(self, data: bytes) -> tuple[int, P.TextRequest]:
        """Start a text exchange (e.g. SendTargets=All) with the key=value bytes of its first request."""
        immediate = self._text_immediate()
        self._require_ready("Text Request", immediate=immediate)
        itt = self._new_itt(_Task(_Kind.TEXT))
        return itt, self._text_pdu(itt, P.RESERVED_TAG, data, immediate)

    def text_continue(self, itt: int, ttt: int) -> P.TextRequest:
        """The empty Text Request that asks for the next part of a response the target continued."""
        task = self._tasks.get(itt)
        if task is None or task.kind is not _Kind.TEXT:
            raise LocalProtocolError(f"session: no text exchange with ITT 0x{itt:08x}")
        immediate = self._text_immediate()
        self._require_ready("Text Request", immediate=immediate)
        return self._text_pdu(itt, ttt, b"", immediate)

    def _refuse_in_discovery(self, what: str) -> None:
        if self.discovery:
            raise LocalProtocolError(f"session: a discovery session sends only Text and Logout Requests, not {what}")

    def _text_immediate(self) -> bool:
        """Whether the next Text Request goes immediate: in a discovery session with the CmdSN window closed (a
        target may leave MaxCmdSN behind during a continued answer), where no NOP-Out may ask for it to open."""
        return self.discovery and not self.window_open

    def _text_pdu(self, itt: int, ttt: int, data: bytes, immediate: bool) -> P.TextRequest:
        return P.TextRequest(
            immediate=immediate,
            final=True,
            itt=itt,
            ttt=ttt,
            cmdsn=self._take_cmdsn(immediate),
            exp_statsn=self.exp_statsn,
            data=data,
        )

    def logout(self, reason: P.LogoutReason = P.LogoutReason.CLOSE_SESSION) -> P.LogoutRequest:
        """The Logout Request (immediate). After this no new command may start."""
        after = self._require_ready("Logout Request", immediate=True, event=_E.SEND_LOGOUT)
        itt = self._new_itt(_Task(_Kind.LOGOUT))
        self.state = after
        return P.LogoutRequest(
            immediate=True, reason=reason, itt=itt, cid=0, cmdsn=self.cmdsn, exp_statsn=self.exp_statsn
        )

    # ---- what the target sends -----------------------------------------------------------------------

    def receive(self, pdu: P.Pdu) -> list[Event]:
        """Take one target PDU; the events it causes. Errors poison the session."""
        self.state = next_state(self.state, _E.RECEIVE, pdu.kind)
        try:
            return self._receive(pdu)
        except (RemoteProtocolError, IscsiError):
            self.state = next_state(self.state, _E.TARGET_ERROR)
            raise

    def _update_sn(self, pdu: P.Pdu, *, status: bool) -> None:
        exp_cmdsn = getattr(pdu, "exp_cmdsn", None)
        max_cmdsn = getattr(pdu, "max_cmdsn", None)
        if exp_cmdsn is not None and max_cmdsn is not None and not serial_lt(max_cmdsn, (exp_cmdsn - 1) & MASK32):
            if serial_lt(self.exp_cmdsn, exp_cmdsn):
                self.exp_cmdsn = exp_cmdsn
            if serial_lt(self.max_cmdsn, max_cmdsn):
                self.max_cmdsn = max_cmdsn
        if status:
            statsn = pdu.statsn  # type: ignore[attr-defined]
            nxt = (statsn + 1) & MASK32
            if serial_lt(self.exp_statsn, nxt):
                self.exp_statsn = nxt

    def _task(self, itt: int, kind: _Kind, what: str) -> _Task:
        task = self._tasks.get(itt)
        if task is None or task.kind is not kind:
            raise RemoteProtocolError(f"{what}: ITT 0x{itt:08x} names no outstanding {kind.value}")
        return task

    def _receive(self, pdu: P.Pdu) -> list[Event]:
        match pdu:
            case P.DataIn():
                return self._data_in(pdu)
            case P.ScsiResponse():
                self._update_sn(pdu, status=True)
                return [self._scsi_response(pdu)]
            case P.NopIn():
                return self._nop_in(pdu)
            case P.TextResponse():
                self._update_sn(pdu, status=True)
                self._task(pdu.itt, _Kind.TEXT, "Text Response")
                if pdu.final and pdu.cont:
                    raise RemoteProtocolError("Text Response: both F and C bits set")
                if pdu.final:
                    del self._tasks[pdu.itt]
                return [TextReply(pdu.itt, pdu.data, pdu.final, pdu.cont, pdu.ttt)]
            case P.LogoutResponse():
                self._update_sn(pdu, status=True)
                self._task(pdu.itt, _Kind.LOGOUT, "Logout Response")
                self._tasks.clear()
                self.state = next_state(self.state, _E.LOGOUT_RESPONSE)
                return [LoggedOut(pdu.response, pdu.time2wait, pdu.time2retain)]
            case P.AsyncMessage():
                self._update_sn(pdu, status=True)
                return self._async(pdu)
            case P.Reject():
                self._update_sn(pdu, status=True)
                reason = P.RejectReason(pdu.reason).name if pdu.reason in _REJECT_REASONS else "unknown"
                rejected = pdu.rejected_bhs
                what = f"opcode 0x{rejected[0] & 0x3F:02x}" if rejected else "a PDU"
                raise IscsiError(f"the target rejected {what}: reason {reason} (0x{pdu.reason:02x})")
            case _:
                raise RemoteProtocolError(f"full feature phase: unexpected {pdu.kind} from the target")

    def _data_in(self, pdu: P.DataIn) -> list[Event]:
        self._update_sn(pdu, status=pdu.has_status)
        task = self._task(pdu.itt, _Kind.SCSI, "Data-In")
        assert task.command is not None
        name = f"Data-In for {task.command.name}"
        if pdu.datasn != task.next_datasn:
            raise RemoteProtocolError(f"{name}: DataSN {pdu.datasn}, expected {task.next_datasn}")
        if pdu.buffer_offset != len(task.buffer):
            raise RemoteProtocolError(f"{name}: BufferOffset {pdu.buffer_offset}, expected {len(task.buffer)}")
        if len(task.buffer) + len(pdu.data) > task.command.data_in_length:
            raise RemoteProtocolError(
                f"{name}: {len(task.buffer) + len(pdu.data)} bytes, more than the {task.command.data_in_length} asked"
            )
        task.buffer += pdu.data
        task.next_datasn += 1
        if not pdu.has_status:
            return []
        if not pdu.final:
            raise RemoteProtocolError(f"{name}: S bit without F bit")
        del self._tasks[pdu.itt]
        return [CommandDone(pdu.itt, task.command, pdu.status, bytes(task.buffer), None, pdu.residual)]

    def _scsi_response(self, pdu: P.ScsiResponse) -> CommandDone:
        task = self._task(pdu.itt, _Kind.SCSI, "SCSI Response")
        assert task.command is not None
        del self._tasks[pdu.itt]
        if pdu.response != P.ScsiResponseCode.COMMAND_COMPLETED:
            raise IscsiError(f"SCSI {task.command.name}: the target failed the command (response 0x{pdu.response:02x})")
        raw_sense = pdu.sense
        from initiator import scsi

        sense = scsi.parse_sense(raw_sense) if raw_sense else None
        return CommandDone(pdu.itt, task.command, pdu.status, bytes(task.buffer), sense, pdu.residual)

    def _nop_in(self, pdu: P.NopIn) -> list[Event]:
        if pdu.itt != P.RESERVED_TAG:
            self._update_sn(pdu, status=True)
            self._task(pdu.itt, _Kind.NOP, "NOP-In")
            del self._tasks[pdu.itt]
            return [PingAnswered(pdu.itt, pdu.data)]
        self._update_sn(pdu, status=False)  # a target ping does not advance StatSN
        if pdu.ttt == P.RESERVED_TAG:
            return []  # a bare update of ExpCmdSN/MaxCmdSN, no answer wanted
        if self.discovery or (self.state, _E.ANSWER_PING) not in TRANSITIONS:
            return []  # logging out, or a discovery session (no NOP-Out may go there): no answer
        answer = P.NopOut(
            immediate=True,
            lun=pdu.lun,
            itt=P.RESERVED_TAG,
            ttt=pdu.ttt,
            cmdsn=self.cmdsn,
            exp_statsn=self.exp_statsn,
            data=pdu.data[: self.max_send_data_segment],
        )
        return [Send(answer)]

    def _async(self, pdu: P.AsyncMessage) -> list[Event]:
        if pdu.event in (P.AsyncEvent.LOGOUT_REQUESTED, P.AsyncEvent.NEGOTIATION_REQUESTED):
            return [LogoutRequested(pdu.parameter3, pdu.event)]
        if pdu.event == P.AsyncEvent.CONNECTION_DROPPED:
            raise IscsiError(f"the target is dropping the connection (Async Message, Time2Wait {pdu.parameter2}s)")
        if pdu.event == P.AsyncEvent.SESSION_DROPPED:
            raise IscsiError(f"the target is dropping the session (Async Message, Time2Wait {pdu.parameter2}s)")
        return [AsyncNotice(pdu.event, pdu.data)]
