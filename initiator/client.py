"""Blocking client functions: drive the sans-I/O login, session and discovery objects over a socket.

    discover(portal, initiator, deadline, *, credentials=None, header_digest, data_digest, max_redirects)
        -> list[DiscoveredTarget]
    login(portal, target, initiator, deadline, *, credentials=None, isid=None, initial_cmdsn=1,
          header_digest="None", data_digest="None", max_redirects=3, connect_bound, login_bound)
        -> LoggedInConnection (.result: LoginResult, .tsih, .isid, .statsn, .exp_statsn, .sock, .portal,
           .redirected_from, .detach() for the kernel)
    probe(conn, deadline, lun=None) -> ProbeResult
    logout(conn, deadline)
    (credentials: initiator.credentials.Credentials or None)

Every wait runs under a child of the caller's deadline ('connect', 'login', 'read', 'logout'), so the error
names the wait that ran out, or the caller's overall bound when that is tighter.
"""

from __future__ import annotations

from initiator.chap import DEFAULT_ALGORITHMS, with_md5_fallback
from initiator.credentials import Credentials
from initiator.deadline import Deadline
from initiator.discovery import DiscoveredTarget, SendTargets
from initiator.errors import (
    BadInputError,
    IscsiError,
    LocalProtocolError,
    Md5FallbackAdvised,
    NetworkError,
    PyiscsiError,
    RemoteProtocolError,
    WaitTimeout,
)
from initiator.login import LoggedIn, LoginConfig, LoginResult, LoginStateMachine, Redirect
from initiator.negotiation import Offers, digest_offer
from initiator.pdu import Pdu
from initiator.portal import Portal, parse_portal
from initiator.record import field, record, replace
from initiator.session import (
    CommandDone,
    Event,
    LoggedOut,
    LogoutRequested,
    PingAnswered,
    Send,
    Session,
    SessionPhase,
    TextReply,
)
from initiator.status import LoginRejected
from initiator.transport import PduStream, Transport

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from _socket import socket

    # imported where a SCSI command is built or parsed (probe, read): discovery and login never load it
    from initiator import scsi

CONNECT_BOUND = 10.0
LOGIN_BOUND = 20.0
READ_BOUND = 30.0
LOGOUT_BOUND = 5.0
UNIT_ATTENTION_RETRIES = 4
MAX_PDUS_PER_WAIT = 10_000  # a target that only ever pings us still cannot keep us forever


@record(frozen=False)
class LoggedInConnection:
    """A connection in full feature phase. `result` is the login's LoginResult; `session` numbers what follows."""

    portal: Portal
    target: str | None
    result: LoginResult
    stream: PduStream
    session: Session
    redirected_from: tuple[Portal, ...] = ()

    @property
    def tsih(self) -> int:
        return self.result.tsih

    @property
    def isid(self) -> bytes:
        return self.result.isid

    @property
    def negotiated(self) -> dict[str, str]:
        return self.result.negotiated_text()

    @property
    def statsn(self) -> int:
        """StatSN of the final Login Response (what the kernel's EXP_STATSN follows, before any command)."""
        return self.result.statsn

    @property
    def exp_statsn(self) -> int:
        """The StatSN we expect next, counting the commands this connection ran since login."""
        return self.session.exp_statsn

    @property
    def sock(self) -> socket:
        return self.stream.transport.sock

    def detach(self) -> socket:
        """The socket, for the kernel: refuses when any byte beyond the last PDU arrived."""
        self.stream.assert_drained()
        return self.stream.transport.detach()

    def close(self, abort: bool = False) -> None:
        self.stream.close(abort)


# ---- login -----------------------------------------------------------------------------------------------


def _offers(header_digest: str, data_digest: str) -> Offers:
    return Offers(
        header_digest=digest_offer("HeaderDigest", header_digest),
        data_digest=digest_offer("DataDigest", data_digest),
    )


def _redirect_portal(redirect: Redirect, origin: Portal) -> Portal:
    text = f"[{redirect.address}]" if ":" in redirect.address else redirect.address
    try:
        return parse_portal(f"{text}:{redirect.port}", field="TargetAddress")
    except BadInputError as exc:
        raise RemoteProtocolError(f"portal {origin}: redirect to {redirect.address!r}: {exc.reason}") from None


def _login_once(
    portal: Portal, config: LoginConfig, deadline: Deadline, connect_bound: float, login_bound: float
) -> tuple[PduStream, LoggedIn | Redirect]:
    """Connect and run one login machine to its end; the stream stays open only when logged in. A refusal that
    a login offering MD5 alone may turn round raises Md5FallbackAdvised around the target's typed error."""
    transport = Transport.connect(portal, deadline.child("connect", connect_bound))
    stream = PduStream(transport)
    stream.activity = "login"
    bound = deadline.child("login", login_bound)
    machine = LoginStateMachine(config)
    try:
        request = machine.start()
        while True:
            stream.send(request, bound)
            try:
                outcome = machine.receive(stream.recv(bound))
            except LoginRejected as exc:
                if machine.md5_fallback_advised:  # with_md5_fallback logs in once more, MD5 alone
                    raise Md5FallbackAdvised(exc) from exc
                raise
            if isinstance(outcome, LoggedIn):
                return stream, outcome
            if isinstance(outcome, Redirect):
                stream.close()
                return stream, outcome
            request = outcome
    except BaseException:
        stream.close(abort=True)
        raise


def _connection(portal: Portal, target: str | None, stream: PduStream, result: LoginResult) -> LoggedInConnection:
    """Switch the stream to what the login settled (digests, segment sizes) and start numbering commands."""
    stream.set_digests(header=result.header_digest_enabled, data=result.data_digest_enabled)
    stream.reader.max_data_segment = result.max_recv_data_segment_length
    stream.max_send_data_segment = result.target_max_recv_data_segment_length
    stream.activity = "full feature phase"
    session = Session(
        cmdsn=result.initial_cmdsn,
        exp_statsn=result.exp_statsn,
        max_cmdsn=result.max_cmdsn,
        max_send_data_segment=result.target_max_recv_data_segment_length,
        first_itt=1,
        discovery=result.session_type == "Discovery",
    )
    return LoggedInConnection(portal, target, result, stream, session)


def login(
    portal: Portal,
    target: str | None,
    initiator: str,
    deadline: Deadline,
    *,
    credentials: Credentials | None = None,
    isid: bytes | None = None,
    initial_cmdsn: int = 1,
    header_digest: str = "None",
    data_digest: str = "None",
    max_redirects: int = 3,
    connect_bound: float = CONNECT_BOUND,
    login_bound: float = LOGIN_BOUND,
) -> LoggedInConnection:
    """Log in to `target` (None: a discovery session) at `portal`, following up to `max_redirects` redirects.

    Every Login Request carries CmdSN = `initial_cmdsn` (what the kernel continues from after a hand-over).
    Refusals raise the status's typed IscsiError (`authentication failed (0x0201)`); a refusal after a CHAP
    response computed with a stronger hash than MD5 is retried once with MD5 alone, on a new connection
    (targets that pick SHA-256 and then fail it exist: tgt 1.0.x).
    """
    if not isinstance(deadline, Deadline):
        raise LocalProtocolError("client: every login needs a deadline")
    if credentials is not None and not isinstance(credentials, Credentials):
        raise LocalProtocolError(f"client: CHAP must be Credentials or None, got {type(credentials).__name__}")
    config = LoginConfig(
        initiator_name=initiator,
        target_name=target,
        discovery=target is None,
        isid=isid,
        initial_cmdsn=initial_cmdsn,
        chap=credentials,
        offers=_offers(header_digest, data_digest),
    )

    def once(at: Portal, offer: tuple[int, ...]) -> tuple[PduStream, LoggedIn | Redirect]:
        return _login_once(at, replace(config, chap_algorithms=offer), deadline, connect_bound, login_bound)

    here = portal
    visited: list[Portal] = []
    algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS  # MD5 alone from the first refusal that advised it on
    while True:
        (stream, outcome), algorithms = with_md5_fallback(lambda offer, at=here: once(at, offer), algorithms)
        if isinstance(outcome, LoggedIn):
            conn = _connection(here, target, stream, outcome.result)
            conn.redirected_from = tuple(visited)
            return conn
        visited.append(here)
        if len(visited) > max_redirects:
            trail = " -> ".join(str(p) for p in [*visited, _redirect_portal(outcome, here)])
            raise IscsiError(f"login to {target or 'discovery'}: more than {max_redirects} redirects ({trail})")
        here = _redirect_portal(outcome, here)


def discover(
    portal: Portal,
    initiator: str,
    deadline: Deadline,
    *,
    credentials: Credentials | None = None,
    header_digest: str = "None",
    data_digest: str = "None",
    max_redirects: int = 3,
) -> list[DiscoveredTarget]:
    """SendTargets=All in a discovery session. A logout the target fumbles after a whole answer is forgiven."""
    conn = login(
        portal,
        None,
        initiator,
        deadline,
        credentials=credentials,
        header_digest=header_digest,
        data_digest=data_digest,
        max_redirects=max_redirects,
    )
    try:
        conn.stream.activity = "SendTargets"
        targets = send_targets(conn, deadline)
        try:  # noqa: SIM105  (contextlib is no import of a by-hand discover)
            _logout_now(conn, deadline)
        except (NetworkError, WaitTimeout, IscsiError):
            pass  # the answer is whole; a fumbled logout changes nothing of it
        return targets
    finally:
        conn.close()


# ---- the PDU loop ---------------------------------------------------------------------------------------


def _read_deadline(deadline: Deadline) -> Deadline:
    return deadline.child("read", READ_BOUND)


def _pump(conn: LoggedInConnection, deadline: Deadline, want: type, itt: int | None = None) -> Event:
    """Read target PDUs, answering pings, until the event `want` (for task `itt`) arrives."""
    for _ in range(MAX_PDUS_PER_WAIT):
        pdu: Pdu = conn.stream.recv(_read_deadline(deadline))
        for event in conn.session.receive(pdu):
            if isinstance(event, Send):
                conn.stream.send(event.pdu, deadline)
            elif isinstance(event, LogoutRequested):
                if want is LoggedOut:
                    continue
                _logout_now(conn, deadline)
                raise IscsiError(f"portal {conn.portal}: the target asked us to log out (async event {event.event})")
            elif isinstance(event, want) and (itt is None or getattr(event, "itt", None) == itt):
                return event
    raise RemoteProtocolError(f"portal {conn.portal}: {MAX_PDUS_PER_WAIT} PDUs without the awaited answer")


def _open_window(conn: LoggedInConnection, deadline: Deadline) -> None:
    """With CmdSN beyond MaxCmdSN, ping (immediate PDUs ignore the window) until the target opens it."""
    for _ in range(16):
        if conn.session.window_open:
            return
        itt, nop = conn.session.ping()
        conn.stream.send(nop, deadline)
        _pump(conn, deadline, PingAnswered, itt)
    if not conn.session.window_open:
        raise RemoteProtocolError(f"portal {conn.portal}: the target keeps its command window closed")


def command(conn: LoggedInConnection, lun: int, cmd: scsi.ScsiCommand, deadline: Deadline) -> bytes:
    """Run one SCSI command; its Data-In. UNIT ATTENTION is retried a few times (it reports, it does not fail)."""
    from initiator import scsi

    for attempt in range(UNIT_ATTENTION_RETRIES + 1):
        _open_window(conn, deadline)
        itt, pdu = conn.session.scsi_command(lun, cmd)
        conn.stream.send(pdu, deadline)
        done = _pump(conn, deadline, CommandDone, itt)
        assert isinstance(done, CommandDone)
        try:
            return done.check()
        except scsi.ScsiCommandError as exc:
            if scsi.is_unit_attention(exc) and attempt < UNIT_ATTENTION_RETRIES:
                continue
            raise
    raise AssertionError("unreachable")  # pragma: no cover


# ---- logout -----------------------------------------------------------------------------------------------


def _logout_now(conn: LoggedInConnection, deadline: Deadline) -> None:
    if conn.session.state is not SessionPhase.FULL_FEATURE:
        return
    bound = deadline.child("logout", LOGOUT_BOUND)
    request = conn.session.logout()
    conn.stream.activity = "logout"
    conn.stream.send(request, bound)
    try:
        done = _pump(conn, bound, LoggedOut)
    except NetworkError:
        return  # the target hung up instead of answering: the session is gone all the same
    assert isinstance(done, LoggedOut)
    if done.response != 0:
        raise IscsiError(f"portal {conn.portal}: logout refused (response {done.response})")


def logout(conn: LoggedInConnection, deadline: Deadline) -> None:
    """Log out (close the session) and close the socket, whatever the target answers."""
    try:
        _logout_now(conn, deadline)
    finally:
        conn.close()


# ---- probe -----------------------------------------------------------------------------------------------


@record
class LunInfo:
    lun: int
    inquiry: scsi.Inquiry
    capacity: scsi.Capacity | None  # None for LUNs that are not disks (tgt's controller at LUN 0)

    def to_json(self) -> dict[str, object]:
        cap = self.capacity
        return {
            "lun": self.lun,
            "vendor": self.inquiry.vendor,
            "product": self.inquiry.product,
            "block_size": None if cap is None else cap.block_size,
            "blocks": None if cap is None else cap.blocks,
            "size_bytes": None if cap is None else cap.size_bytes,
        }


@record
class ProbeResult:
    luns: tuple[LunInfo, ...]
    chosen_lun: int | None
    block0_sha256: str | None
    block0: bytes = field(default=b"", repr=False)


def report_luns(conn: LoggedInConnection, deadline: Deadline) -> tuple[int, ...]:
    from initiator import scsi

    allocation = scsi.REPORT_LUNS_HEADER + 8 * 256
    for _ in range(2):
        try:
            listed = scsi.parse_report_luns(command(conn, 0, scsi.report_luns(allocation), deadline))
        except scsi.ScsiCommandError as exc:
            if scsi.is_invalid_opcode(exc):
                return (0,)  # a target without REPORT LUNS (SPC-2 and older): LUN 0 alone
            raise
        if not listed.truncated or listed.needed_allocation > scsi.REPORT_LUNS_MAX:
            return listed.luns
        allocation = listed.needed_allocation
    return listed.luns


def read_capacity(conn: LoggedInConnection, lun: int, deadline: Deadline) -> scsi.Capacity:
    """READ CAPACITY(16), falling back to (10) where the LUN does not know (16)."""
    from initiator import scsi

    try:
        return scsi.parse_read_capacity_16(command(conn, lun, scsi.read_capacity_16(), deadline))
    except scsi.ScsiCommandError as exc:
        if not scsi.is_invalid_opcode(exc):
            raise
    data = command(conn, lun, scsi.read_capacity_10(), deadline)
    if scsi.needs_read_capacity_16(data):
        raise RemoteProtocolError(f"SCSI READ CAPACITY(10) on LUN {lun}: disk too large, and (16) was refused")
    return scsi.parse_read_capacity_10(data)


def read_blocks(conn: LoggedInConnection, lun: int, lba: int, count: int, block_size: int, deadline: Deadline) -> bytes:
    from initiator import scsi

    cmd = scsi.read(lba, count, block_size)
    data = command(conn, lun, cmd, deadline)
    if len(data) != cmd.data_in_length:
        raise RemoteProtocolError(
            f"SCSI {cmd.name} on LUN {lun}: the target returned {len(data)} bytes of {cmd.data_in_length}"
        )
    return data


def probe(conn: LoggedInConnection, deadline: Deadline, lun: int | None = None) -> ProbeResult:
    """REPORT LUNS, INQUIRY and capacity of each LUN, block 0 of `lun` (default: the first disk)."""
    from initiator import scsi

    found: list[LunInfo] = []
    for number in report_luns(conn, deadline):
        inquiry = scsi.parse_inquiry(command(conn, number, scsi.inquiry(), deadline))
        capacity = read_capacity(conn, number, deadline) if inquiry.is_disk else None
        found.append(LunInfo(number, inquiry, capacity))
    if lun is None:
        chosen = next((info for info in found if info.capacity is not None), None)
    else:
        chosen = next((info for info in found if info.lun == lun), None)
        if chosen is None:
            listed = ", ".join(str(info.lun) for info in found) or "none"
            raise BadInputError("--lun", lun, f"the target reports no such LUN (it has: {listed})")
    if chosen is None or chosen.capacity is None or chosen.capacity.blocks == 0:
        return ProbeResult(tuple(found), None if chosen is None else chosen.lun, None)
    block0 = read_blocks(conn, chosen.lun, 0, 1, chosen.capacity.block_size, deadline)
    import hashlib  # here, not at the top: discovery and login never need it (it loads OpenSSL)

    return ProbeResult(tuple(found), chosen.lun, hashlib.sha256(block0).hexdigest(), block0)


# ---- discovery ---------------------------------------------------------------------------------------------


def send_targets(conn: LoggedInConnection, deadline: Deadline) -> list[DiscoveredTarget]:
    exchange = SendTargets(conn.session, conn.portal)
    request = exchange.start()
    while request is not None:  # no _open_window: the request already holds its CmdSN, and no NOP in discovery
        conn.stream.send(request, deadline)
        reply = _pump(conn, deadline, TextReply, request.itt)
        assert isinstance(reply, TextReply)
        request = exchange.receive(reply)
    return exchange.targets(deadline)


__all__ = [
    "CONNECT_BOUND",
    "LOGIN_BOUND",
    "LocalProtocolError",
    "LoggedInConnection",
    "LunInfo",
    "ProbeResult",
    "PyiscsiError",
    "command",
    "discover",
    "login",
    "logout",
    "probe",
    "read_capacity",
    "report_luns",
    "send_targets",
]
