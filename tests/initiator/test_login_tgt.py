"""The login core (login, chap, negotiation, framing) against a real tgtd, over a plain socket, without client.py.

This pins down what tgt (Debian 12's 1.0.85) does with each part of our login, including its quirk: it takes
CHAP_A=7 to mean SHA-1 (RFC 7143's registry says SHA-256), so the first login with our default list fails
with 0x0200 and advises an MD5 retry, and MD5 alone then works.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from initiator.chap import MutualAuthenticationFailed
from initiator.credentials import Chap, Credentials
from initiator.framing import PduReader, frame
from initiator.login import LoggedIn, LoginConfig, LoginRequest, LoginStateMachine, Redirect
from initiator.negotiation import Offers
from initiator.pdu import LogoutRequest, LogoutResponse, NopIn, NopOut, Pdu
from initiator.secret import Secret
from initiator.status import AuthenticationFailed, InitiatorError, TargetNotFound
from tests.support.tgtd import LunSpec, Tgtd, unavailable_reason

pytestmark = pytest.mark.tgt

INITIATOR = "iqn.2026-11.org.pyiscsi:login-core"
PLAIN = "iqn.2026-11.test:login-plain"
DIGESTS = "iqn.2026-11.test:login-digests"
CHAP = "iqn.2026-11.test:login-chap"
MUTUAL = "iqn.2026-11.test:login-mutual"
MOVED = "iqn.2026-11.test:login-moved"
ONE_WAY = Credentials(Chap("dave", Secret("davesecret12")))
BOTH_WAYS = Credentials(Chap("erin", Secret("erinsecret12")), Chap("tgt-frank", Secret("franksecret1")))
MD5 = (5,)


@pytest.fixture(scope="module")
def server() -> Iterator[Tgtd]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Tgtd() as tgt:
        tgt.add_target(PLAIN, [LunSpec(1 << 20)])
        tgt.set_digests(tgt.add_target(DIGESTS, [LunSpec(1 << 20)]))
        chap = tgt.add_target(CHAP, [LunSpec(1 << 20)])
        tgt.add_chap(chap, ONE_WAY.chap.username, ONE_WAY.chap.password.reveal())
        mutual = tgt.add_target(MUTUAL, [LunSpec(1 << 20)])
        tgt.add_chap(mutual, BOTH_WAYS.chap.username, BOTH_WAYS.chap.password.reveal())
        tgt.add_mutual_chap(mutual, "tgt-frank", "franksecret1")
        # tgt does not redirect a login that came in on the redirect address itself: send it elsewhere
        tgt.redirect(tgt.add_target(MOVED, [LunSpec(1 << 20)]), "127.0.0.2", 3999, permanent=True)
        yield tgt


def _read(sock: socket.socket, reader: PduReader) -> Pdu:
    while need := reader.bytes_needed():
        chunk = sock.recv(need)
        assert chunk, "tgtd closed the connection"
        reader.feed(chunk)
    pdu = reader.next_pdu()
    assert pdu is not None
    return pdu


def login(server: Tgtd, config: LoginConfig, machine: LoginStateMachine | None = None) -> tuple[object, dict]:
    """Log in; when logged in, ping with a NOP-Out and log out with the negotiated digests."""
    host, port = server.portal.rsplit(":", 1)
    machine = machine or LoginStateMachine(config)
    reader = PduReader()
    extra: dict = {}
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        out: object = machine.start()
        while isinstance(out, LoginRequest):
            sock.sendall(frame(out))
            out = machine.receive(_read(sock, reader))
        if isinstance(out, LoggedIn) and not config.discovery:
            r = out.result
            hd, dd = r.header_digest_enabled, r.data_digest_enabled
            extra["leftover"] = reader.buffered
            reader.set_digests(header=hd, data=dd)
            reader.max_data_segment = r.max_recv_data_segment_length
            sock.sendall(frame(NopOut(immediate=True, itt=1, cmdsn=1, exp_statsn=r.exp_statsn, data=b"hi"), hd, dd))
            pong = _read(sock, reader)
            extra["ping"] = isinstance(pong, NopIn) and pong.data == b"hi"
            sock.sendall(frame(LogoutRequest(itt=2, cmdsn=1, exp_statsn=(pong.statsn + 1) & 0xFFFFFFFF), hd, dd))
            done = _read(sock, reader)
            extra["logout"] = isinstance(done, LogoutResponse) and done.response == 0
    return out, extra


@pytest.mark.parametrize(
    ("target", "offers", "digest"),
    [
        (PLAIN, Offers(), "None"),
        (PLAIN, Offers(header_digest=("CRC32C", "None"), data_digest=("CRC32C", "None")), "None"),  # tgt's choice
        (DIGESTS, Offers(header_digest=("None", "CRC32C"), data_digest=("None", "CRC32C")), "CRC32C"),
        (DIGESTS, Offers(), "None"),
        (DIGESTS, Offers(header_digest=("CRC32C", "None"), data_digest=("CRC32C", "None")), "CRC32C"),
    ],
)
def test_login_and_full_feature_phase(server: Tgtd, target: str, offers: Offers, digest: str) -> None:
    out, extra = login(server, LoginConfig(INITIATOR, target, offers=offers, initial_cmdsn=1))
    assert isinstance(out, LoggedIn)
    r = out.result
    assert (r.header_digest, r.data_digest) == (digest, digest)
    assert r.tsih and r.target_portal_group_tag == 1
    assert r.target_max_recv_data_segment_length == 8192  # tgt declares none: the RFC default
    assert extra == {"leftover": 0, "ping": True, "logout": True}


def test_discovery_login(server: Tgtd) -> None:
    out, _ = login(server, LoginConfig(INITIATOR, discovery=True))
    assert isinstance(out, LoggedIn)
    assert out.result.session_type == "Discovery"


@pytest.mark.parametrize(("target", "chap"), [(CHAP, ONE_WAY), (MUTUAL, BOTH_WAYS)])
def test_tgt_takes_chap_a_7_as_sha1_and_md5_alone_works(server: Tgtd, target: str, chap: Credentials) -> None:
    machine = LoginStateMachine(LoginConfig(INITIATOR, target, chap=chap))
    with pytest.raises(InitiatorError, match="0x0200"):
        login(server, machine.config, machine)
    assert machine.md5_fallback_advised is True
    out, extra = login(server, LoginConfig(INITIATOR, target, chap=chap, chap_algorithms=MD5))
    assert isinstance(out, LoggedIn)
    assert (out.result.auth_method, out.result.chap_algorithm) == ("CHAP", 5)
    assert extra["ping"] and extra["logout"]


@pytest.mark.parametrize(
    ("target", "chap", "error", "message"),
    [
        (CHAP, Credentials(Chap("dave", Secret("not-his-pass"))), AuthenticationFailed, r"\(0x0201\)"),
        (CHAP, None, AuthenticationFailed, r"\(0x0201\)"),
        (
            MUTUAL,
            Credentials(Chap("erin", Secret("erinsecret12")), Chap("tgt-frank", Secret("other-secret"))),
            MutualAuthenticationFailed,
            "wrong CHAP_R",
        ),
        (
            MUTUAL,
            Credentials(Chap("erin", Secret("erinsecret12")), Chap("someone-else", Secret("franksecret1"))),
            MutualAuthenticationFailed,
            "expected 'someone-else'",
        ),
        ("iqn.2026-11.test:nobody-home", None, TargetNotFound, r"target not found \(0x0203\)"),
    ],
)
def test_refusals(server: Tgtd, target: str, chap: Credentials | None, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        login(server, LoginConfig(INITIATOR, target, chap=chap, chap_algorithms=MD5))


def test_redirect(server: Tgtd) -> None:
    out, _ = login(server, LoginConfig(INITIATOR, MOVED))
    assert out == Redirect("127.0.0.2", 3999, permanent=True, tpgt=None)
