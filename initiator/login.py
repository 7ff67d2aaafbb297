"""The login phase as a sans-I/O state machine (RFC 7143 sections 6 and 11.12/11.13), h11 style.

Theory of operation. `LoginStateMachine.start()` gives the first Login Request; each Login Response the driver
receives goes to `receive()`, which returns exactly one of: the next LoginRequest to send, a `Redirect` (the
driver reconnects elsewhere and starts a new machine), or `LoggedIn(result)`. Everything else raises a typed
error (a refusing status, a misbehaving target, a wait on a target that never finishes) and poisons the machine.
No socket here: the same machine runs over a TCP socket (framing.py) or the kernel's NETLINK_ISCSI PDU channel.

The stages follow the RFC: security negotiation (CSG 0: AuthMethod, then CHAP), then operational negotiation
(CSG 1), then full feature phase (NSG 3). The transitions are the table `TRANSITIONS`, one line per
(state, event) -> state, where an event is what a whole Login Response means in that state (T bit, AuthMethod,
CHAP keys). A response with the C bit is only part of the text: we answer it with an empty request and wait
for the rest (`TextAssembler`), without changing state. Every Login Request of one login carries the same ITT
and CmdSN (= initial CmdSN, which the kernel will continue from), the ISID, the TSIH and the CID we were given.

Rules checked on each response: it is a Login Response; ISID echoes ours; ITT echoes ours (unless
strict_itt=False: the kernel rewrites ITTs); CSG is our current stage; T only when we asked, NSG the stage we
asked for, never T and C together; version 0; a non-zero final TSIH; a key not negotiated twice.

Public API
    LoginConfig(initiator_name, target_name=None, *, discovery=False, isid=None, tsih=0, cid=0, itt=0,
                initial_cmdsn=1, exp_statsn=0, chap=None, chap_algorithms=DEFAULT_ALGORITHMS, offers=Offers(),
                initiator_alias=None, strict_itt=True, max_rounds=32)
    LoginStateMachine(config, random_bytes=os.urandom, isid_bytes=unique_bytes): .start() -> LoginRequest,
        .receive(pdu) -> LoginRequest | Redirect | LoggedIn, .receive_bytes(raw) (the same from one PDU's bytes,
        e.g. a NETLINK_ISCSI recv-PDU event), .state, .isid
    Redirect(address, port, permanent, tpgt)   (status 0x0101 / 0x0102)
    LoggedIn(result)
    LoginResult (frozen): every negotiated key, ISID, TSIH, CID, StatSN/ExpStatSN, ExpCmdSN/MaxCmdSN, ...
        .negotiated_text() -> dict[str, str]
    LoginState, LoginEvent, TRANSITIONS, make_isid(random_bytes) -> bytes, parse_target_address(text)
    After a LoginRejected, `.md5_fallback_advised` says whether one more login offering MD5 alone may succeed:
    some targets refuse a CHAP_A list that is not `5` alone, and tgt 1.0.x takes CHAP_A=7 as SHA-1 and then
    fails our SHA-256 answer with 0x0200. The drivers raise errors.Md5FallbackAdvised for it, and
    chap.with_md5_fallback logs in once more with chap_algorithms=(5,).
"""

from __future__ import annotations

import os
from types import MappingProxyType

from initiator.chap import (
    DEFAULT_ALGORITHMS,
    ChapAlgorithm,
    ChapExchange,
    MutualAuthenticationFailed,
)
from initiator.codes import Code
from initiator.credentials import Credentials
from initiator.errors import LocalProtocolError, PyiscsiError, RemoteProtocolError, RemoteValueError
from initiator.framing import LOGIN_MAX_DATA_SEGMENT
from initiator.negotiation import (
    IDENTITY_KEYS,
    KEYS,
    SECURITY_KEYS,
    SPECIAL_ANSWERS,
    Negotiator,
    Offers,
)
from initiator.numbers import decimal
from initiator.pdu import LoginRequest, LoginResponse, Pdu, Reject, Stage, decode_bytes
from initiator.record import field, record
from initiator.status import InitiatorError, describe, login_error
from initiator.text import TextAssembler, as_dict, decode_text, encode_text
from initiator.unique import unique_bytes

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEFAULT_PORT = 3260


class LoginState(Code):
    IDLE = "idle"
    AWAIT_AUTH_METHOD = "await AuthMethod"
    AWAIT_CHAP_CHALLENGE = "await CHAP challenge"
    AWAIT_CHAP_RESULT = "await CHAP result"
    AWAIT_SECURITY_TRANSIT = "await end of security stage"
    AWAIT_OPERATIONAL = "await end of operational stage"
    LOGGED_IN = "logged in"
    REDIRECTED = "redirected"
    FAILED = "failed"


class LoginEvent(Code):
    AUTH_CHAP = "target chose AuthMethod=CHAP"
    AUTH_NONE = "target chose AuthMethod=None, T=0"
    CHAP_A_REJECTED = "target rejected our CHAP_A list"
    CHAP_CHALLENGE = "target sent CHAP_A, CHAP_I, CHAP_C"
    STAY = "response with T=0"
    TRANSIT = "response with T=1"


S, E = LoginState, LoginEvent

# The whole login, one line per transition (RFC 7143 6.3, 12.1.3). Anything not listed is a protocol error.
TRANSITIONS: Mapping[tuple[LoginState, LoginEvent], LoginState] = MappingProxyType(
    {
        (S.AWAIT_AUTH_METHOD, E.AUTH_CHAP): S.AWAIT_CHAP_CHALLENGE,  # we send CHAP_A=7,8,6,5
        (S.AWAIT_AUTH_METHOD, E.AUTH_NONE): S.AWAIT_SECURITY_TRANSIT,  # we ask to move on (T=1, NSG=1)
        (S.AWAIT_AUTH_METHOD, E.TRANSIT): S.AWAIT_OPERATIONAL,  # AuthMethod=None and T=1: we send our offers
        (S.AWAIT_CHAP_CHALLENGE, E.CHAP_A_REJECTED): S.AWAIT_CHAP_CHALLENGE,  # we send CHAP_A=5 (once)
        (S.AWAIT_CHAP_CHALLENGE, E.CHAP_CHALLENGE): S.AWAIT_CHAP_RESULT,  # we send CHAP_N, CHAP_R [+I, C], T=1
        (S.AWAIT_CHAP_RESULT, E.TRANSIT): S.AWAIT_OPERATIONAL,  # (mutual: target's CHAP_R checked first)
        (S.AWAIT_CHAP_RESULT, E.STAY): S.AWAIT_SECURITY_TRANSIT,  # (mutual: checked too) we ask again, T=1
        (S.AWAIT_SECURITY_TRANSIT, E.STAY): S.AWAIT_SECURITY_TRANSIT,  # answers, T=1 again
        (S.AWAIT_SECURITY_TRANSIT, E.TRANSIT): S.AWAIT_OPERATIONAL,
        (S.AWAIT_OPERATIONAL, E.STAY): S.AWAIT_OPERATIONAL,  # answers to target offers, T=1 NSG=3 again
        (S.AWAIT_OPERATIONAL, E.TRANSIT): S.LOGGED_IN,
    }
)

_STAGE_OF = {
    S.AWAIT_AUTH_METHOD: Stage.SECURITY,
    S.AWAIT_CHAP_CHALLENGE: Stage.SECURITY,
    S.AWAIT_CHAP_RESULT: Stage.SECURITY,
    S.AWAIT_SECURITY_TRANSIT: Stage.SECURITY,
    S.AWAIT_OPERATIONAL: Stage.OPERATIONAL,
}
_TERMINAL = frozenset({S.LOGGED_IN, S.REDIRECTED, S.FAILED})


def make_isid(random_bytes: Callable[[int], bytes] = unique_bytes) -> bytes:
    """A "random" type ISID (RFC 7143 11.12.5): T=10b (0x80), A reserved 0, B/C random, D random qualifier."""
    rest = random_bytes(5)
    if len(rest) != 5:
        raise LocalProtocolError(f"ISID: random source gave {len(rest)} bytes, need 5")
    return b"\x80" + rest


@record
class LoginConfig:
    initiator_name: str
    target_name: str | None = None
    discovery: bool = False
    isid: bytes | None = None
    tsih: int = 0
    cid: int = 0
    itt: int = 0
    initial_cmdsn: int = 1
    exp_statsn: int = 0
    chap: Credentials | None = None
    chap_algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS
    offers: Offers = field(default_factory=Offers)
    initiator_alias: str | None = None
    strict_itt: bool = True
    max_rounds: int = 32

    def __post_init__(self) -> None:
        if not self.initiator_name:
            raise LocalProtocolError("login: initiator name is empty")
        if self.discovery == (self.target_name is not None):
            raise LocalProtocolError("login: a normal session needs a target name, a discovery session none")
        if self.isid is not None and len(self.isid) != 6:
            raise LocalProtocolError(f"login: ISID must be 6 bytes, got {self.isid!r}")
        if not 0 <= self.tsih <= 0xFFFF or not 0 <= self.cid <= 0xFFFF:
            raise LocalProtocolError(f"login: TSIH {self.tsih} / CID {self.cid} out of 0..65535")
        if not 0 <= self.itt < 0xFFFFFFFF:
            raise LocalProtocolError(f"login: ITT {self.itt:#x} is reserved or out of range")
        if self.max_rounds < 1:
            raise LocalProtocolError(f"login: max_rounds {self.max_rounds} must be positive")


@record
class Redirect:
    """The target sent us elsewhere (status 0x0101 temporarily, 0x0102 permanently)."""

    address: str
    port: int
    permanent: bool
    tpgt: int | None = None


@record
class LoginResult:
    """What a finished login settled: what the kernel, the session and `probe --json` need."""

    target_name: str | None
    session_type: str
    initiator_name: str
    isid: bytes
    tsih: int
    cid: int
    initial_cmdsn: int
    statsn: int  # of the final Login Response
    exp_cmdsn: int
    max_cmdsn: int
    header_digest: str
    data_digest: str
    max_recv_data_segment_length: int  # ours, as declared: the most the target may send us in one PDU
    target_max_recv_data_segment_length: int  # the target's: the most we may send it in one PDU
    max_burst_length: int
    first_burst_length: int
    immediate_data: bool
    initial_r2t: bool
    default_time2wait: int
    default_time2retain: int
    max_outstanding_r2t: int
    error_recovery_level: int
    data_pdu_in_order: bool
    data_sequence_in_order: bool
    max_connections: int
    target_portal_group_tag: int | None
    target_alias: str | None
    auth_method: str
    chap_algorithm: int | None
    negotiated: Mapping[str, str] = field(repr=False)
    target_declared: Mapping[str, str] = field(repr=False)

    @property
    def exp_statsn(self) -> int:
        """The next StatSN we expect: what the kernel's EXP_STATSN must be after a hand-over."""
        return (self.statsn + 1) & 0xFFFFFFFF

    @property
    def header_digest_enabled(self) -> bool:
        return self.header_digest == "CRC32C"

    @property
    def data_digest_enabled(self) -> bool:
        return self.data_digest == "CRC32C"

    def negotiated_text(self) -> dict[str, str]:
        """Every negotiated key in RFC spelling, plus what the target declared (TPGT, alias)."""
        out = dict(self.negotiated)
        for key in ("TargetPortalGroupTag", "TargetAlias"):
            if key in self.target_declared:
                out[key] = self.target_declared[key]
        return out


@record
class LoggedIn:
    result: LoginResult


def parse_target_address(text: str) -> tuple[str, int, int | None]:
    """`host[:port][,tpgt]`, IPv6 in brackets: (address, port, tpgt). RemoteValueError naming the key otherwise.

    Port and tag are decimal numbers of ASCII digits (numbers.decimal): `3²60` or Arabic-Indic digits are
    refused here rather than failing (or passing) inside int()."""
    where, comma, tag = text.partition(",")
    host, port_text, ok = "", "", True
    if where.startswith("["):
        host, bracket, rest = where[1:].partition("]")
        ok = bool(bracket) and (not rest or rest.startswith(":"))
        port_text = rest[1:] if rest else ""
        ok = ok and (not rest or bool(port_text))
    elif where.count(":") == 1:
        host, _, port_text = where.partition(":")
        ok = bool(port_text)
    else:
        host = where  # a bare IPv6 address (not RFC form, but unambiguous without a port)
    port = decimal(port_text, 1, 0xFFFF) if port_text else DEFAULT_PORT
    tpgt = decimal(tag, 0, 0xFFFF) if comma else None
    if not ok or not host or port is None or (comma and tpgt is None):
        raise RemoteValueError(
            "key TargetAddress", None, f"{text[:100]!r} is not host[:port][,tpgt] (port 1..65535, tag 0..65535)"
        )
    return host, port, tpgt


class LoginStateMachine:
    """One login of one connection. Drive it with start() and receive(); see the module docstring."""

    def __init__(
        self,
        config: LoginConfig,
        random_bytes: Callable[[int], bytes] = os.urandom,
        isid_bytes: Callable[[int], bytes] = unique_bytes,
    ) -> None:
        """`random_bytes` makes CHAP challenges (secret), `isid_bytes` the ISID (unique; never waits at boot)."""
        self.config = config
        self.isid = config.isid if config.isid is not None else make_isid(isid_bytes)
        self.state = LoginState.IDLE
        self.negotiator = Negotiator(config.offers, discovery=config.discovery, leading=config.tsih == 0)
        self.chap = ChapExchange(config.chap, config.chap_algorithms, random_bytes) if config.chap else None
        self._assembler = TextAssembler()
        self._exp_statsn = config.exp_statsn
        self._rounds = 0
        self._last: LoginRequest | None = None
        self._auth_method = "None"
        self._auth_offer: tuple[str, ...] = ()
        self.md5_fallback_advised = False

    # -- requests -------------------------------------------------------------------------------------------
    def _request(self, pairs: list[tuple[str, str]], *, transit: bool, csg: Stage, nsg: Stage) -> LoginRequest:
        data = encode_text(pairs)
        if len(data) > LOGIN_MAX_DATA_SEGMENT:
            raise LocalProtocolError(f"login: request text of {len(data)} bytes exceeds {LOGIN_MAX_DATA_SEGMENT}")
        c = self.config
        self._last = LoginRequest(
            transit=transit,
            csg=csg,
            nsg=nsg if transit else Stage.SECURITY,
            isid=self.isid,
            tsih=c.tsih,
            itt=c.itt,
            cid=c.cid,
            cmdsn=c.initial_cmdsn,
            exp_statsn=self._exp_statsn,
            data=data,
        )
        return self._last

    def start(self) -> LoginRequest:
        """The first Login Request: who we are, whom we want, and how we will authenticate."""
        if self.state is not LoginState.IDLE:
            raise LocalProtocolError(f"login: start() in state {self.state.value}")
        c = self.config
        pairs = [("InitiatorName", c.initiator_name)]
        if c.initiator_alias:
            pairs.append(("InitiatorAlias", c.initiator_alias))
        if c.discovery:
            pairs.append(("SessionType", "Discovery"))
        else:
            pairs += [("SessionType", "Normal"), ("TargetName", c.target_name or "")]
        if self.chap is None:
            self._auth_offer = ("None",)
        elif self.chap.credentials.mutual:
            self._auth_offer = ("CHAP",)  # None would skip the target's proof we asked for
        else:
            self._auth_offer = ("CHAP", "None")
        pairs.append(("AuthMethod", ",".join(self._auth_offer)))
        self.state = LoginState.AWAIT_AUTH_METHOD
        # Without CHAP there is nothing to wait for in the security stage: ask to move on at once.
        transit = self.chap is None
        return self._request(pairs, transit=transit, csg=Stage.SECURITY, nsg=Stage.OPERATIONAL)

    # -- responses ------------------------------------------------------------------------------------------
    def receive(self, pdu: Pdu) -> LoginRequest | Redirect | LoggedIn:
        if self.state in _TERMINAL or self.state is LoginState.IDLE:
            raise LocalProtocolError(f"login: receive() in state {self.state.value}")
        try:
            return self._receive(pdu)
        except PyiscsiError:
            self.state = LoginState.FAILED
            raise

    def receive_bytes(self, raw: bytes) -> LoginRequest | Redirect | LoggedIn:
        """One whole Login Response as bytes without digests (BHS + data), as the kernel's recv-PDU event gives it.

        To send through the kernel, pass a request's `encode_bhs()` as the header and its `data` as the payload.
        """
        if self.state in _TERMINAL or self.state is LoginState.IDLE:
            raise LocalProtocolError(f"login: receive() in state {self.state.value}")
        try:
            pdu = decode_bytes(raw)
        except PyiscsiError:
            self.state = LoginState.FAILED
            raise
        return self.receive(pdu)

    def _receive(self, pdu: Pdu) -> LoginRequest | Redirect | LoggedIn:
        resp = self._check(pdu)
        self._rounds += 1
        if self._rounds > self.config.max_rounds:
            raise RemoteProtocolError(
                f"login: target did not finish negotiation within {self.config.max_rounds} responses "
                f"(state {self.state.value})"
            )
        code = (resp.status_class << 8) | resp.status_detail
        if resp.status_class == 1 and resp.status_detail in (1, 2):
            return self._redirect(resp)
        if code:
            err = login_error(code, self.config.target_name)
            # Some targets refuse a CHAP_A list that is not 5 alone; others (tgt 1.0.x) take CHAP_A=7 meaning
            # SHA-1 and then fail our SHA-256 answer (or refuse later, after our SHA-256 CHAP). Either way one more
            # login offering MD5 alone may succeed.
            self.md5_fallback_advised = (
                self.chap is not None
                and self.chap.can_fall_back
                and self.chap.algorithm is not ChapAlgorithm.MD5
                and (
                    self.state in (LoginState.AWAIT_CHAP_CHALLENGE, LoginState.AWAIT_CHAP_RESULT)
                    or (isinstance(err, InitiatorError) and self.chap.algorithm is not None)
                )
            )
            raise err
        self._exp_statsn = (resp.statsn + 1) & 0xFFFFFFFF
        text = self._assembler.add(resp.data, resp.cont)
        if text is None:  # partial text: an empty request fetches the rest (RFC 7143 6.1); T and NSG as before,
            last = self._last  # since we still want to move on and the target may set T only if we ask
            assert last is not None
            return self._request([], transit=last.transit, csg=Stage(last.csg), nsg=Stage(last.nsg))
        keys = as_dict(decode_text(text))
        return self._step(resp, keys)

    def _check(self, pdu: Pdu) -> LoginResponse:
        last = self._last
        assert last is not None
        if isinstance(pdu, Reject):
            raise RemoteProtocolError(f"login: target sent Reject (reason {pdu.reason:#04x}) instead of a response")
        if not isinstance(pdu, LoginResponse):
            raise RemoteProtocolError(f"login: expected a Login Response, got {pdu.kind} (opcode {pdu.OPCODE:#04x})")
        if pdu.status_class != 0:
            return pdu  # refusals and redirects carry no reliable stage fields
        problems = []
        if pdu.isid != self.isid:
            problems.append(f"ISID {pdu.isid.hex()} is not ours {self.isid.hex()}")
        if self.config.strict_itt and pdu.itt != last.itt:
            problems.append(f"ITT {pdu.itt:#x} is not ours {last.itt:#x}")
        if pdu.version_active != 0:
            problems.append(f"version-active {pdu.version_active} (we speak 0)")
        if pdu.csg != last.csg:
            problems.append(f"CSG {pdu.csg} but our request was in stage {last.csg}")
        if pdu.transit and pdu.cont:
            problems.append("both T and C set")
        if pdu.transit and not last.transit:
            problems.append("T set although we did not ask to move on")
        if pdu.transit and pdu.nsg != last.nsg:
            problems.append(f"NSG {pdu.nsg} but we asked for {last.nsg}")
        if problems:
            raise RemoteProtocolError("Login Response: " + "; ".join(problems))
        return pdu

    def _redirect(self, resp: LoginResponse) -> Redirect:
        text = self._assembler.add(resp.data, False)
        keys = as_dict(decode_text(text or b""))
        if "TargetAddress" not in keys:
            code = (resp.status_class << 8) | resp.status_detail
            raise RemoteProtocolError(f"login: {describe(code)} without a TargetAddress")
        address, port, tpgt = parse_target_address(keys["TargetAddress"])
        self.state = LoginState.REDIRECTED
        return Redirect(address, port, permanent=resp.status_detail == 2, tpgt=tpgt)

    # -- one whole response ---------------------------------------------------------------------------------
    def _classify(self, resp: LoginResponse, security: dict[str, str]) -> LoginEvent:
        if self.state is LoginState.AWAIT_AUTH_METHOD:
            method = security.get("AuthMethod")
            if method is None and self._auth_offer == ("None",) and resp.transit:
                method = "None"  # some targets do not answer AuthMethod=None; T=1 says enough
            if method == "None" and self.chap is not None and self.chap.credentials.mutual:
                raise MutualAuthenticationFailed("target skipped the mutual CHAP authentication we asked for")
            if method is None or method in SPECIAL_ANSWERS or method not in self._auth_offer:
                offer = ",".join(self._auth_offer)
                raise RemoteProtocolError(f"key AuthMethod: answer {method!r} is not one of our offer {offer!r}")
            self._auth_method = method
            if method == "CHAP":
                if resp.transit:
                    raise RemoteProtocolError("key AuthMethod: CHAP chosen but T set")
                return LoginEvent.AUTH_CHAP
            return LoginEvent.TRANSIT if resp.transit else LoginEvent.AUTH_NONE
        if self.state is LoginState.AWAIT_CHAP_CHALLENGE:
            if security.get("CHAP_A") in SPECIAL_ANSWERS:
                return LoginEvent.CHAP_A_REJECTED
            return LoginEvent.CHAP_CHALLENGE
        return LoginEvent.TRANSIT if resp.transit else LoginEvent.STAY

    _SECURITY_KEYS_BY_STATE: Mapping[LoginState, frozenset[str]] = MappingProxyType(
        {
            LoginState.AWAIT_AUTH_METHOD: frozenset({"AuthMethod"}),
            LoginState.AWAIT_CHAP_CHALLENGE: frozenset({"CHAP_A", "CHAP_I", "CHAP_C"}),
            LoginState.AWAIT_CHAP_RESULT: frozenset({"CHAP_N", "CHAP_R"}),
        }
    )

    def _step(self, resp: LoginResponse, keys: dict[str, str]) -> LoginRequest | LoggedIn:
        security = {k: v for k, v in keys.items() if k in SECURITY_KEYS}
        allowed = self._SECURITY_KEYS_BY_STATE.get(self.state, frozenset())
        for key in security:
            if key not in allowed:
                raise RemoteProtocolError(f"key {key}: unexpected while {self.state.value}")
        for key in keys.keys() & IDENTITY_KEYS:
            raise RemoteProtocolError(f"key {key}: only the initiator sends it")
        replies = self.negotiator.receive([(k, v) for k, v in keys.items() if k not in SECURITY_KEYS])

        event = self._classify(resp, security)
        before = self.state
        after = TRANSITIONS.get((before, event))
        if after is None:
            raise RemoteProtocolError(f"login: {event.value} is not allowed while {before.value}")
        self.state = after

        if before is LoginState.AWAIT_CHAP_RESULT and self.chap is not None:
            self.chap.verify_target(security)
        if after is LoginState.LOGGED_IN:
            if replies:
                raise RemoteProtocolError(f"key {replies[0][0]}: offered by the target in its final Login Response")
            return LoggedIn(self._result(resp))

        if event is LoginEvent.AUTH_CHAP:
            assert self.chap is not None
            pairs = replies + self.chap.algorithm_offer()
            return self._request(pairs, transit=False, csg=Stage.SECURITY, nsg=Stage.SECURITY)
        if event is LoginEvent.CHAP_A_REJECTED:
            assert self.chap is not None
            fallback = self.chap.fallback_offer()
            if fallback is None:
                raise RemoteProtocolError(f"key CHAP_A: target answered {security['CHAP_A']} to every list we offer")
            return self._request(replies + fallback, transit=False, csg=Stage.SECURITY, nsg=Stage.SECURITY)
        if event is LoginEvent.CHAP_CHALLENGE:
            assert self.chap is not None
            pairs = replies + self.chap.answer_challenge(security)
            return self._request(pairs, transit=True, csg=Stage.SECURITY, nsg=Stage.OPERATIONAL)
        if after is LoginState.AWAIT_SECURITY_TRANSIT:
            return self._request(replies, transit=True, csg=Stage.SECURITY, nsg=Stage.OPERATIONAL)
        if before is not LoginState.AWAIT_OPERATIONAL:  # just entered the operational stage: our offers
            replies = replies + self.negotiator.offers()
        return self._request(replies, transit=True, csg=Stage.OPERATIONAL, nsg=Stage.FULL_FEATURE)

    def _result(self, resp: LoginResponse) -> LoginResult:
        if resp.tsih == 0:
            raise RemoteProtocolError("Login Response: final response with TSIH 0")
        if self.config.tsih and resp.tsih != self.config.tsih:
            raise RemoteProtocolError(f"Login Response: TSIH {resp.tsih} is not the session's {self.config.tsih}")
        neg = self.negotiator.finish()
        v = neg.values

        def num(key: str) -> int:
            return int(v.get(key, KEYS[key].default or "0"))

        def flag(key: str) -> bool:
            return v.get(key, KEYS[key].default) == "Yes"

        declared = neg.target_declared
        tpgt = declared.get("TargetPortalGroupTag")
        return LoginResult(
            target_name=self.config.target_name,
            session_type="Discovery" if self.config.discovery else "Normal",
            initiator_name=self.config.initiator_name,
            isid=self.isid,
            tsih=resp.tsih,
            cid=self.config.cid,
            initial_cmdsn=self.config.initial_cmdsn,
            statsn=resp.statsn,
            exp_cmdsn=resp.exp_cmdsn,
            max_cmdsn=resp.max_cmdsn,
            header_digest=v["HeaderDigest"],
            data_digest=v["DataDigest"],
            max_recv_data_segment_length=num("MaxRecvDataSegmentLength"),
            target_max_recv_data_segment_length=neg.target_max_recv_data_segment_length,
            max_burst_length=num("MaxBurstLength"),
            first_burst_length=num("FirstBurstLength"),
            immediate_data=flag("ImmediateData"),
            initial_r2t=flag("InitialR2T"),
            default_time2wait=num("DefaultTime2Wait"),
            default_time2retain=num("DefaultTime2Retain"),
            max_outstanding_r2t=num("MaxOutstandingR2T"),
            error_recovery_level=num("ErrorRecoveryLevel"),
            data_pdu_in_order=flag("DataPDUInOrder"),
            data_sequence_in_order=flag("DataSequenceInOrder"),
            max_connections=num("MaxConnections"),
            target_portal_group_tag=int(tpgt) if tpgt is not None else None,
            target_alias=declared.get("TargetAlias"),
            auth_method=self._auth_method,
            chap_algorithm=int(self.chap.algorithm) if self.chap and self.chap.algorithm else None,
            negotiated=v,
            target_declared=declared,
        )
