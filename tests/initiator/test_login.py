from __future__ import annotations

import hashlib
import itertools
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.chap import MutualAuthenticationFailed
from initiator.credentials import Chap, Credentials
from initiator.errors import ExitStatus, LocalProtocolError, PyiscsiError, RemoteProtocolError, RemoteValueError
from initiator.login import (
    TRANSITIONS,
    LoggedIn,
    LoginConfig,
    LoginState,
    LoginStateMachine,
    Redirect,
    make_isid,
    parse_target_address,
)
from initiator.negotiation import Offers
from initiator.pdu import LoginRequest, LoginResponse, NopIn, Reject, Stage, decode_bytes
from initiator.secret import Secret
from initiator.status import (
    AuthenticationFailed,
    AuthorizationFailed,
    InitiatorError,
    LoginRejected,
    MissingParameter,
    OutOfResources,
    ServiceUnavailable,
    TargetError,
    TargetNotFound,
)
from initiator.text import decode_text, encode_text

INITIATOR = "iqn.2026-11.org.pyiscsi:test"
TARGET = "iqn.2026-11.test:disk1"
ISID = bytes.fromhex("80a1b2c3d4e5")
HASH = {5: hashlib.md5, 6: hashlib.sha1, 7: hashlib.sha256, 8: hashlib.sha3_256}


def _keys(pdu: LoginRequest | LoginResponse) -> dict[str, str]:
    return dict(decode_text(pdu.data))


class FakeTarget:
    """A small target that follows RFC 7143, with knobs to make it picky or misbehave.

    CHAP responses are computed here with hashlib, independently of initiator.chap.
    """

    def __init__(
        self,
        *,
        auth: str = "None",
        algorithms: tuple[int, ...] = (5, 6, 7, 8),
        reject_chap_lists: bool = False,
        user: str = "alice",
        secret: bytes = b"alicesecret1",
        target_user: str = "bob-target",
        target_secret: bytes = b"bobsecret123",
        skip_mutual: bool = False,
        answers: dict[str, str] | None = None,
        declare: dict[str, str] | None = None,
        offers_first: list[tuple[str, str]] | None = None,
        split_op_response: bool = False,
        tsih: int = 0x0123,
        statsn: int = 0x1000,
    ) -> None:
        self.auth = auth
        self.algorithms = algorithms
        self.reject_chap_lists = reject_chap_lists
        self.user, self.secret = user, secret
        self.target_user, self.target_secret = target_user, target_secret
        self.skip_mutual = skip_mutual
        self.answers = answers or {}
        self.declare = {"TargetPortalGroupTag": "1", "MaxRecvDataSegmentLength": "65536"} | (declare or {})
        self.offers_first = list(offers_first or [])
        self.split_op_response = split_op_response
        self.tsih = tsih
        self.statsn = statsn
        self.requests: list[LoginRequest] = []
        self._challenge = b""
        self._identifier = 0
        self._alg = 0
        self._declared = False
        self._pending_tail = b""
        self._offered_keys: set[str] = set()

    def _resp(self, req: LoginRequest, pairs: list[tuple[str, str]], *, status: int = 0, **kw) -> LoginResponse:
        transit = kw.pop("transit", req.transit)
        final = transit and req.nsg == Stage.FULL_FEATURE
        fields = dict(
            transit=transit,
            csg=req.csg,
            nsg=req.nsg if transit else 0,
            isid=req.isid,
            tsih=self.tsih if final else 0,
            itt=req.itt,
            statsn=self.statsn,
            exp_cmdsn=req.cmdsn,
            max_cmdsn=req.cmdsn + 31,
            status_class=status >> 8,
            status_detail=status & 0xFF,
            data=encode_text(pairs),
        )
        fields.update(kw)
        self.statsn += 1
        return LoginResponse(**fields)

    def respond(self, req: LoginRequest) -> LoginResponse:
        self.requests.append(req)
        keys = _keys(req)
        if self._pending_tail:
            tail, self._pending_tail = self._pending_tail, b""
            assert req.data == b""
            return self._last_final.replace(data=tail, cont=False)
        if req.csg == Stage.SECURITY:
            return self._security(req, keys)
        return self._operational(req, keys)

    def _security(self, req: LoginRequest, keys: dict[str, str]) -> LoginResponse:
        if "AuthMethod" in keys:
            offered = keys["AuthMethod"].split(",")
            if self.auth not in offered:
                return self._resp(req, [], status=0x0201, transit=False)
            pairs = [("AuthMethod", self.auth)] + ([] if self._declared else [("TargetPortalGroupTag", "1")])
            self._declared = True
            return self._resp(req, pairs, transit=req.transit and self.auth == "None")
        if "CHAP_A" in keys:
            offered = [int(a) for a in keys["CHAP_A"].split(",")]
            if self.reject_chap_lists and len(offered) > 1:
                return self._resp(req, [("CHAP_A", "Reject")], transit=False)
            chosen = next((a for a in offered if a in self.algorithms), None)
            if chosen is None:
                return self._resp(req, [("CHAP_A", "Reject")], transit=False)
            self._alg, self._identifier, self._challenge = chosen, 77, bytes(range(100, 116))
            pairs = [("CHAP_A", str(chosen)), ("CHAP_I", "77"), ("CHAP_C", "0x" + self._challenge.hex())]
            return self._resp(req, pairs, transit=False)
        if "CHAP_N" in keys:
            want = HASH[self._alg](bytes([self._identifier]) + self.secret + self._challenge).hexdigest()
            if keys["CHAP_N"] != self.user or keys["CHAP_R"].lower() != "0x" + want:
                return self._resp(req, [], status=0x0201, transit=False)
            pairs = []
            if "CHAP_C" in keys and not self.skip_mutual:
                ident = int(keys["CHAP_I"])
                challenge = bytes.fromhex(keys["CHAP_C"][2:])
                r = HASH[self._alg](bytes([ident]) + self.target_secret + challenge).hexdigest()
                pairs = [("CHAP_N", self.target_user), ("CHAP_R", "0x" + r)]
            return self._resp(req, pairs)
        return self._resp(req, [])

    def _operational(self, req: LoginRequest, keys: dict[str, str]) -> LoginResponse:
        pairs = []
        for key, value in keys.items():
            if key == "MaxRecvDataSegmentLength" or key in self._offered_keys:
                continue  # a declaration, or the initiator's answer to our own offer
            answer = self.answers.get(key, value.split(",")[0])
            pairs.append((key, answer))
        for key, value in self.declare.items():
            if not (key == "TargetPortalGroupTag" and self._declared):
                pairs.append((key, value))
        self._declared = True
        self.declare = {}
        if self.offers_first:
            pairs += self.offers_first
            self._offered_keys = {k for k, _ in self.offers_first}
            self.offers_first = []
            return self._resp(req, pairs, transit=False)
        resp = self._resp(req, pairs)
        if self.split_op_response and len(resp.data) > 20:
            self._last_final = resp
            self._pending_tail = resp.data[20:]
            return resp.replace(data=resp.data[:20], cont=True, transit=False, nsg=0, tsih=0)
        return resp


def drive(machine: LoginStateMachine, target: FakeTarget) -> object:
    out: object = machine.start()
    for _ in range(50):
        if not isinstance(out, LoginRequest):
            return out
        # the request survives a trip through bytes, as over the wire
        wire = decode_bytes(out.encode(), from_target=False)
        assert wire == out
        resp = target.respond(out)
        out = machine.receive(decode_bytes(resp.encode()))
    raise AssertionError("login did not end")


def run_login(config: LoginConfig, target: FakeTarget) -> tuple[LoginStateMachine, object]:
    machine = LoginStateMachine(config)
    return machine, drive(machine, target)


def _config(**kw) -> LoginConfig:
    return LoginConfig(INITIATOR, kw.pop("target_name", TARGET), isid=kw.pop("isid", ISID), **kw)


ONE_WAY = Credentials(Chap("alice", Secret("alicesecret1")))
MUTUAL = Credentials(Chap("alice", Secret("alicesecret1")), Chap("bob-target", Secret("bobsecret123")))


def test_login_without_authentication() -> None:
    target = FakeTarget()
    machine, out = run_login(_config(), target)
    assert isinstance(out, LoggedIn)
    assert machine.state is LoginState.LOGGED_IN
    first, second = target.requests
    assert (first.csg, first.nsg, first.transit) == (Stage.SECURITY, Stage.OPERATIONAL, True)
    assert _keys(first) == {
        "InitiatorName": INITIATOR,
        "SessionType": "Normal",
        "TargetName": TARGET,
        "AuthMethod": "None",
    }
    assert (second.csg, second.nsg, second.transit) == (Stage.OPERATIONAL, Stage.FULL_FEATURE, True)
    assert _keys(second)["MaxRecvDataSegmentLength"] == "262144"
    r = out.result
    assert (r.target_name, r.session_type, r.isid, r.tsih, r.cid) == (TARGET, "Normal", ISID, 0x0123, 0)
    assert r.statsn == 0x1001 and r.exp_statsn == 0x1002
    assert (r.exp_cmdsn, r.max_cmdsn) == (1, 32)
    assert (r.max_recv_data_segment_length, r.target_max_recv_data_segment_length) == (262144, 65536)
    assert (r.header_digest, r.data_digest) == ("None", "None")
    assert (r.initial_r2t, r.immediate_data, r.max_burst_length, r.first_burst_length) == (False, True, 262144, 65536)
    assert (r.default_time2wait, r.default_time2retain, r.error_recovery_level) == (2, 0, 0)
    assert (r.max_outstanding_r2t, r.max_connections, r.data_pdu_in_order, r.data_sequence_in_order) == (
        1,
        1,
        True,
        True,
    )
    assert r.target_portal_group_tag == 1
    assert (r.auth_method, r.chap_algorithm) == ("None", None)


def test_every_request_carries_the_same_cmdsn_itt_isid_and_tracks_statsn() -> None:
    target = FakeTarget(auth="CHAP")
    run_login(_config(chap=MUTUAL, initial_cmdsn=7, itt=0x55, cid=3, exp_statsn=0), target)
    reqs = target.requests
    assert len(reqs) == 4
    assert {(r.cmdsn, r.itt, r.isid, r.cid, r.tsih, r.immediate) for r in reqs} == {(7, 0x55, ISID, 3, 0, True)}
    assert [r.exp_statsn for r in reqs] == [0, 0x1001, 0x1002, 0x1003]


def test_negotiated_text_in_rfc_spelling() -> None:
    _, out = run_login(
        _config(offers=Offers(header_digest=("CRC32C", "None"))), FakeTarget(declare={"TargetAlias": "d1"})
    )
    text = out.result.negotiated_text()
    assert text["HeaderDigest"] == "CRC32C"
    assert text["MaxRecvDataSegmentLength"] == "262144"
    assert text["TargetPortalGroupTag"] == "1"
    assert text["TargetAlias"] == "d1"
    assert out.result.header_digest_enabled and not out.result.data_digest_enabled
    assert all(isinstance(v, str) for v in text.values())


def test_discovery_session() -> None:
    target = FakeTarget()
    _, out = run_login(LoginConfig(INITIATOR, discovery=True, isid=ISID), target)
    assert _keys(target.requests[0]) == {"InitiatorName": INITIATOR, "SessionType": "Discovery", "AuthMethod": "None"}
    assert set(_keys(target.requests[1])) == {
        "HeaderDigest",
        "DataDigest",
        "MaxRecvDataSegmentLength",
        "DefaultTime2Wait",
        "DefaultTime2Retain",
        "ErrorRecoveryLevel",
    }
    assert out.result.session_type == "Discovery"
    assert out.result.target_name is None


@pytest.mark.parametrize(
    ("target_algs", "chosen"),
    [((5, 6, 7, 8), 7), ((8, 5), 8), ((6, 5), 6), ((5,), 5)],
)
def test_one_way_chap(target_algs: tuple[int, ...], chosen: int) -> None:
    target = FakeTarget(auth="CHAP", algorithms=target_algs)
    _, out = run_login(_config(chap=ONE_WAY), target)
    assert isinstance(out, LoggedIn)
    assert out.result.chap_algorithm == chosen
    assert out.result.auth_method == "CHAP"
    first, chap_a, chap_r, op = target.requests
    assert _keys(first)["AuthMethod"] == "CHAP,None" and not first.transit
    assert _keys(chap_a) == {"CHAP_A": "7,8,6,5"}
    assert set(_keys(chap_r)) == {"CHAP_N", "CHAP_R"} and chap_r.transit and chap_r.nsg == Stage.OPERATIONAL
    assert op.csg == Stage.OPERATIONAL


@pytest.mark.parametrize("alg", [5, 6, 7, 8])
def test_mutual_chap(alg: int) -> None:
    target = FakeTarget(auth="CHAP", algorithms=(alg,))
    _, out = run_login(_config(chap=MUTUAL), target)
    assert isinstance(out, LoggedIn)
    assert _keys(target.requests[0])["AuthMethod"] == "CHAP"  # None would let the target skip its proof
    assert set(_keys(target.requests[2])) == {"CHAP_N", "CHAP_R", "CHAP_I", "CHAP_C"}


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (FakeTarget(auth="CHAP", target_secret=b"wrongsecret!"), MutualAuthenticationFailed, "wrong CHAP_R"),
        (FakeTarget(auth="CHAP", target_user="eve"), MutualAuthenticationFailed, "as 'eve', expected 'bob-target'"),
        (FakeTarget(auth="CHAP", skip_mutual=True), MutualAuthenticationFailed, "skipped the mutual"),
        (FakeTarget(auth="CHAP", secret=b"otherpass123"), AuthenticationFailed, r"authentication failed \(0x0201\)"),
        (FakeTarget(auth="CHAP", user="carol"), AuthenticationFailed, "0x0201"),
    ],
)
def test_chap_failures(target: FakeTarget, error: type[Exception], message: str) -> None:
    machine = LoginStateMachine(_config(chap=MUTUAL))
    with pytest.raises(error, match=message):
        drive(machine, target)
    assert machine.state is LoginState.FAILED


def test_mutual_refuses_a_target_choosing_no_authentication() -> None:
    machine = LoginStateMachine(_config(chap=MUTUAL))
    req = machine.start()
    resp = LoginResponse(isid=ISID, itt=req.itt, data=b"AuthMethod=None\0")
    with pytest.raises(MutualAuthenticationFailed, match="skipped"):
        machine.receive(resp)
    assert machine.state is LoginState.FAILED


def test_one_way_accepts_a_target_without_authentication() -> None:
    _, out = run_login(_config(chap=ONE_WAY), FakeTarget(auth="None"))
    assert isinstance(out, LoggedIn)
    assert out.result.auth_method == "None"


def test_chap_list_rejected_falls_back_to_md5() -> None:
    target = FakeTarget(auth="CHAP", reject_chap_lists=True)
    _, out = run_login(_config(chap=ONE_WAY), target)
    assert out.result.chap_algorithm == 5
    assert [_keys(r).get("CHAP_A") for r in target.requests[1:3]] == ["7,8,6,5", "5"]


def test_chap_rejected_even_md5() -> None:
    target = FakeTarget(auth="CHAP", algorithms=(99,))
    with pytest.raises(RemoteProtocolError, match="CHAP_A: target answered Reject to every list"):
        run_login(_config(chap=ONE_WAY), target)


def test_refusal_during_chap_a_hints_md5_retry() -> None:
    machine = LoginStateMachine(_config(chap=ONE_WAY))
    req = machine.start()
    req = machine.receive(LoginResponse(isid=ISID, itt=req.itt, data=b"AuthMethod=CHAP\0"))
    with pytest.raises(AuthenticationFailed):
        machine.receive(LoginResponse(isid=ISID, itt=req.itt, status_class=2, status_detail=1))
    assert machine.md5_fallback_advised is True


@pytest.mark.parametrize(
    ("algorithms", "target_algs", "hint"),
    [((7, 8, 6, 5), (7,), True), ((7, 8, 6, 5), (5,), False), ((5,), (5,), False), ((7, 6), (7,), False)],
)
def test_refusal_after_a_non_md5_answer_hints_md5_retry(
    algorithms: tuple[int, ...], target_algs: tuple[int, ...], hint: bool
) -> None:
    # A tgt-1.0.x-like target: it picks an algorithm, then refuses the answer (here: a different secret).
    target = FakeTarget(auth="CHAP", algorithms=target_algs, secret=b"not-what-we-use")
    machine = LoginStateMachine(_config(chap=ONE_WAY, chap_algorithms=algorithms))
    with pytest.raises(AuthenticationFailed):
        drive(machine, target)
    assert machine.md5_fallback_advised is hint


def test_target_chap_without_credentials() -> None:
    with pytest.raises(AuthenticationFailed):
        run_login(_config(), FakeTarget(auth="CHAP"))


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (0x0200, InitiatorError),
        (0x0201, AuthenticationFailed),
        (0x0202, AuthorizationFailed),
        (0x0203, TargetNotFound),
        (0x0207, MissingParameter),
        (0x02EE, InitiatorError),
        (0x0300, TargetError),
        (0x0301, ServiceUnavailable),
        (0x0302, OutOfResources),
        (0x0103, LoginRejected),  # class 1 but not a redirect we know
    ],
)
@pytest.mark.parametrize("at_round", [0, 1])
def test_every_status_class_refuses(code: int, error: type[LoginRejected], at_round: int) -> None:
    machine = LoginStateMachine(_config())
    req = machine.start()
    if at_round:
        req = machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, itt=req.itt, data=b"AuthMethod=None\0"))
    bad = LoginResponse(isid=bytes(6), itt=0xDEAD, csg=3, status_class=code >> 8, status_detail=code & 0xFF)
    with pytest.raises(error, match=f"0x{code:04x}") as info:
        machine.receive(bad)
    assert type(info.value) is error
    assert TARGET in str(info.value)
    assert machine.state is LoginState.FAILED
    with pytest.raises(LocalProtocolError):
        machine.receive(bad)


@pytest.mark.parametrize(
    ("detail", "address", "redirect"),
    [
        (1, "10.0.0.2:3261,2", Redirect("10.0.0.2", 3261, False, 2)),
        (2, "10.0.0.2", Redirect("10.0.0.2", 3260, True, None)),
        (1, "[fe80::1%eth0]:3262,1", Redirect("fe80::1%eth0", 3262, False, 1)),
        (2, "[2001:db8::7]", Redirect("2001:db8::7", 3260, True, None)),
        (1, "storage.example.com:860", Redirect("storage.example.com", 860, False, None)),
    ],
)
def test_redirect(detail: int, address: str, redirect: Redirect) -> None:
    machine = LoginStateMachine(_config())
    machine.start()
    resp = LoginResponse(status_class=1, status_detail=detail, data=encode_text([("TargetAddress", address)]))
    assert machine.receive(resp) == redirect
    assert machine.state is LoginState.REDIRECTED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "target moved temporarily \\(0x0101\\) without a TargetAddress"),
        (b"TargetAddress=10.0.0.1:99999\0", "TargetAddress: '10.0.0.1:99999' is not host"),
        (b"TargetAddress=[::1\0", "is not host"),
        (b"TargetAddress=:3260\0", "is not host"),
        (b"TargetAddress=a:b\0", "is not host"),
        (b"TargetAddress=a,x\0", "is not host"),
        (b"TargetAddress=a\0TargetAddress=b\0", "given twice"),
    ],
)
def test_bad_redirects(data: bytes, message: str) -> None:
    machine = LoginStateMachine(_config())
    machine.start()
    with pytest.raises(RemoteProtocolError, match=message):
        machine.receive(LoginResponse(status_class=1, status_detail=1, data=data))


def test_parse_target_address_bare_ipv6() -> None:
    assert parse_target_address("2001:db8::1,3") == ("2001:db8::1", 3260, 3)


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1:3²60", "10.0.0.1:٣٢٦٠", "10.0.0.1:3260,²", "10.0.0.1,٣", "[::1]:3260,+1", "10.0.0.1:0x10", "h:", "h,"],
)
def test_redirect_numbers_are_ascii_digits(address: str) -> None:
    with pytest.raises(RemoteValueError) as info:
        parse_target_address(address)
    assert info.value.field == "key TargetAddress" and repr(address) in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.builds(
        lambda digit, tail, in_port: f"10.0.0.1:{digit}{tail},1" if in_port else f"10.0.0.1:3260,{digit}{tail}",
        st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii()),
        st.text(alphabet="0123456789", max_size=3),
        st.booleans(),
    )
)
def test_any_non_ascii_digit_in_a_redirect_is_refused_naming_the_key(address: str) -> None:
    machine = LoginStateMachine(_config())
    machine.start()
    with pytest.raises(RemoteValueError, match=r"^key TargetAddress: "):
        machine.receive(LoginResponse(status_class=1, status_detail=1, data=encode_text([("TargetAddress", address)])))


@pytest.mark.parametrize("count", [10, 120])
def test_unknown_target_keys_get_not_understood(count: int) -> None:
    unknown = [(f"X-vendor.key{n}", "1") for n in range(count)]
    target = FakeTarget(offers_first=unknown)
    _, outcome = run_login(_config(), target)
    assert isinstance(outcome, LoggedIn)
    answered = _keys(target.requests[-1])
    assert all(answered[k] == "NotUnderstood" for k, _ in unknown)


@pytest.mark.parametrize("count", [300, 3000])
def test_a_target_flooding_unknown_keys_fails_the_login_as_its_fault(count: int) -> None:
    """Once our NotUnderstood answers outgrew a Login PDU and failed as our bad input (exit 2); it is the target's
    doing (exit 4), and the message says what it did."""
    target = FakeTarget(offers_first=[(f"X-vendor.key{n}", "1") for n in range(count)])
    with pytest.raises(RemoteProtocolError, match=f"the target sent {count} keys we do not understand") as info:
        run_login(_config(), target)
    assert info.value.exit_status is ExitStatus.ISCSI_REFUSED


def test_target_that_never_sets_t_is_bounded() -> None:
    machine = LoginStateMachine(_config(max_rounds=5))
    req = machine.start()
    req = machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, data=b"AuthMethod=None\0"))
    with pytest.raises(RemoteProtocolError, match="did not finish negotiation within 5 responses"):
        for _ in range(10):
            req = machine.receive(LoginResponse(csg=1, isid=ISID, itt=req.itt))
    assert machine.state is LoginState.FAILED


def test_target_offers_in_operational_stage_get_answers() -> None:
    target = FakeTarget(offers_first=[("MaxOutstandingR2T", "4")], answers={"MaxOutstandingR2T": "1"})
    # the target brings up MaxOutstandingR2T itself after we offered it: a repeat, refused
    with pytest.raises(RemoteProtocolError, match="MaxOutstandingR2T: given twice"):
        run_login(_config(), target)
    target = FakeTarget(offers_first=[("X-com.example.Cache", "on"), ("IFMarkInt", "2048")])
    _, out = run_login(_config(), target)
    reply = _keys(target.requests[2])
    assert reply == {"X-com.example.Cache": "NotUnderstood", "IFMarkInt": "Irrelevant"}
    assert target.requests[2].transit and target.requests[2].nsg == Stage.FULL_FEATURE
    assert isinstance(out, LoggedIn)


def test_operational_answers_are_checked() -> None:
    target = FakeTarget(answers={"MaxBurstLength": "1048576"})
    with pytest.raises(RemoteProtocolError, match="MaxBurstLength: answer 1048576 exceeds our offer 262144"):
        run_login(_config(), target)


def test_negotiated_smaller_values_are_kept() -> None:
    target = FakeTarget(answers={"MaxBurstLength": "65536", "FirstBurstLength": "8192", "InitialR2T": "Yes"})
    _, out = run_login(_config(), target)
    r = out.result
    assert (r.max_burst_length, r.first_burst_length, r.initial_r2t) == (65536, 8192, True)


def test_response_text_continued_with_c_bit() -> None:
    target = FakeTarget(split_op_response=True)
    _, out = run_login(_config(), target)
    assert isinstance(out, LoggedIn)
    empty = target.requests[2]
    assert (empty.data, empty.transit, empty.nsg, empty.csg) == (b"", True, Stage.FULL_FEATURE, Stage.OPERATIONAL)
    assert out.result.target_max_recv_data_segment_length == 65536


def test_kernel_channel_tolerates_rewritten_itt() -> None:
    machine = LoginStateMachine(_config(strict_itt=False, itt=5))
    machine.start()
    out = machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, itt=0x4000_0001, data=b"AuthMethod=None\0"))
    assert isinstance(out, LoginRequest)


def _after_start(**kw) -> tuple[LoginStateMachine, LoginRequest]:
    machine = LoginStateMachine(_config(**kw))
    return machine, machine.start()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"isid": bytes(6)}, "ISID 000000000000 is not ours 80a1b2c3d4e5"),
        ({"itt": 9}, "ITT 0x9 is not ours 0x0"),
        ({"version_active": 1}, "version-active 1"),
        ({"csg": 1}, "CSG 1 but our request was in stage 0"),
        ({"transit": True, "cont": True}, "both T and C set"),
        ({"transit": True, "nsg": 3}, "NSG 3 but we asked for 1"),
    ],
)
def test_response_fields_are_checked(overrides: dict, message: str) -> None:
    machine, req = _after_start()
    resp = LoginResponse(**({"isid": ISID, "itt": req.itt, "data": b"AuthMethod=None\0"} | overrides))
    with pytest.raises(RemoteProtocolError, match=message):
        machine.receive(resp)


def test_t_without_our_t_is_refused() -> None:
    machine, _req = _after_start(chap=ONE_WAY)
    with pytest.raises(RemoteProtocolError, match="T set although we did not ask"):
        machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, data=b"AuthMethod=None\0"))


def test_final_response_needs_a_tsih() -> None:
    with pytest.raises(RemoteProtocolError, match="final response with TSIH 0"):
        run_login(_config(), FakeTarget(tsih=0))


def test_relogin_with_a_tsih_is_non_leading_and_checks_it() -> None:
    target = FakeTarget(tsih=0x0123)
    _, out = run_login(_config(tsih=0x0123), target)
    assert out.result.tsih == 0x0123
    assert "MaxBurstLength" not in _keys(target.requests[1])  # leading-only keys are not offered
    with pytest.raises(RemoteProtocolError, match="TSIH 291 is not the session's 5"):
        run_login(_config(tsih=5), FakeTarget(tsih=0x0123))


@pytest.mark.parametrize(
    ("pdu", "message"),
    [
        (NopIn(), "expected a Login Response, got NopIn"),
        (Reject(reason=4, data=bytes(48)), "Reject \\(reason 0x04\\)"),
    ],
)
def test_wrong_pdu_mid_login(pdu: object, message: str) -> None:
    machine, _ = _after_start()
    with pytest.raises(RemoteProtocolError, match=message):
        machine.receive(pdu)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"AuthMethod=CHAP\0", "AuthMethod: answer 'CHAP' is not one of our offer 'None'"),
        (b"AuthMethod=Reject\0", "AuthMethod: answer 'Reject'"),
        (b"AuthMethod=None\0AuthMethod=None\0", "given twice"),
        (b"AuthMethod=None\0CHAP_A=5\0", "CHAP_A: unexpected while await AuthMethod"),
        (b"AuthMethod=None\0SessionType=Normal\0", "SessionType: only the initiator sends it"),
        (b"AuthMethod=None\0TargetAlias=" + b"a" * 256 + b"\0", "exceeds 255"),
        (b"AuthMethod=None", "not NUL-terminated"),
    ],
)
def test_hostile_security_text(data: bytes, message: str) -> None:
    machine, req = _after_start()
    with pytest.raises(RemoteProtocolError, match=message):
        machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, itt=req.itt, data=data))


def test_authmethod_omitted_with_t_is_accepted_when_we_offered_none() -> None:
    machine, req = _after_start()
    out = machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, itt=req.itt))
    assert isinstance(out, LoginRequest) and out.csg == Stage.OPERATIONAL


def test_chap_keys_in_the_operational_stage_are_refused() -> None:
    machine, _req = _after_start()
    machine.receive(LoginResponse(transit=True, nsg=1, isid=ISID, data=b"AuthMethod=None\0"))
    with pytest.raises(RemoteProtocolError, match="CHAP_R: unexpected"):
        machine.receive(LoginResponse(csg=1, isid=ISID, data=b"CHAP_R=0x00\0"))


def test_state_misuse() -> None:
    machine = LoginStateMachine(_config())
    with pytest.raises(LocalProtocolError):
        machine.receive(LoginResponse())
    machine.start()
    with pytest.raises(LocalProtocolError):
        machine.start()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_name": None}, "needs a target name"),
        ({"isid": b"\x80"}, "ISID must be 6 bytes"),
        ({"tsih": 70000}, "TSIH"),
        ({"itt": 0xFFFFFFFF}, "ITT"),
        ({"max_rounds": 0}, "max_rounds"),
    ],
)
def test_bad_config(kwargs: dict, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        _config(**kwargs)


def test_the_isid_is_unique_bytes_and_the_mutual_challenge_is_from_the_secret_source() -> None:
    """The ISID need only differ (it never waits for the kernel's pool); the challenge we send must stay secret."""
    asked: list[tuple[str, int]] = []

    def source(name: str):  # type: ignore[no-untyped-def]
        def draw(count: int) -> bytes:
            asked.append((name, count))
            return os.urandom(count)

        return draw

    machine = LoginStateMachine(LoginConfig(INITIATOR, TARGET, chap=MUTUAL), source("secret"), source("unique"))
    assert isinstance(drive(machine, FakeTarget(auth="CHAP")), LoggedIn)
    assert asked[0] == ("unique", 5)  # the ISID's B, C and D fields
    assert {name for name, _ in asked[1:]} == {"secret"} and len(asked) >= 2  # CHAP_I and CHAP_C


def test_isid_is_random_type_unless_given() -> None:
    counter = itertools.count(1)
    machine = LoginStateMachine(
        LoginConfig(INITIATOR, TARGET), isid_bytes=lambda n: bytes(next(counter) for _ in range(n))
    )
    assert machine.isid == bytes.fromhex("800102030405")
    assert machine.start().isid == machine.isid
    assert make_isid()[0] == 0x80
    assert LoginStateMachine(_config()).isid == ISID


def test_transition_table_is_closed() -> None:
    for (before, _event), after in TRANSITIONS.items():
        assert before not in (LoginState.LOGGED_IN, LoginState.REDIRECTED, LoginState.FAILED, LoginState.IDLE)
        assert after is not LoginState.IDLE


def test_secrets_not_in_requests_or_result_repr() -> None:
    target = FakeTarget(auth="CHAP")
    _, out = run_login(_config(chap=MUTUAL), target)
    blob = b"".join(r.data for r in target.requests)
    assert b"alicesecret1" not in blob and b"bobsecret123" not in blob
    assert "secret" not in repr(out.result)


_RESPONSES = st.builds(
    LoginResponse,
    transit=st.booleans(),
    cont=st.booleans(),
    csg=st.integers(0, 3),
    nsg=st.integers(0, 3),
    isid=st.sampled_from([ISID, bytes(6)]),
    tsih=st.integers(0, 3),
    itt=st.sampled_from([0, 1]),
    statsn=st.integers(0, 0xFFFFFFFF),
    status_class=st.sampled_from([0, 0, 0, 1, 2, 3]),
    status_detail=st.integers(0, 3),
    data=st.one_of(
        st.binary(max_size=40),
        st.lists(
            st.sampled_from(
                [
                    b"AuthMethod=None\0",
                    b"AuthMethod=CHAP\0",
                    b"CHAP_A=5\0CHAP_I=1\0CHAP_C=0x0102\0",
                    b"CHAP_A=Reject\0",
                    b"CHAP_N=bob-target\0CHAP_R=0x00\0",
                    b"MaxBurstLength=512\0",
                    b"TargetAddress=10.0.0.1:3260,1\0",
                    b"HeaderDigest=CRC32C\0",
                    b"X-y=1\0",
                ]
            ),
            max_size=3,
        ).map(b"".join),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([None, ONE_WAY, MUTUAL]), st.lists(_RESPONSES, max_size=8))
def test_random_responses_give_typed_results_or_errors(chap: Credentials | None, responses: list) -> None:
    machine = LoginStateMachine(_config(chap=chap, max_rounds=6))
    machine.start()
    try:
        for resp in responses:
            out = machine.receive(resp)
            assert isinstance(out, LoginRequest | Redirect | LoggedIn)
            if not isinstance(out, LoginRequest):
                break
    except PyiscsiError:
        assert machine.state is LoginState.FAILED


def test_kernel_channel_bytes_without_padding() -> None:
    """The kernel hands over BHS + data without padding or digests, and may have rewritten our ITT."""
    target = FakeTarget()
    machine = LoginStateMachine(_config(strict_itt=False, itt=3))
    out = machine.start()
    while isinstance(out, LoginRequest):
        resp = target.respond(out).replace(itt=0x1234)
        out = machine.receive_bytes(resp.encode_bhs() + resp.data)
    assert isinstance(out, LoggedIn)


@pytest.mark.parametrize("raw", [b"", bytes(47), NopIn().encode(), LoginResponse(data=b"abc").encode_bhs()])
def test_receive_bytes_refuses_what_is_not_one_login_response(raw: bytes) -> None:
    machine, _ = _after_start()
    with pytest.raises(RemoteProtocolError):
        machine.receive_bytes(raw)
    assert machine.state is LoginState.FAILED
