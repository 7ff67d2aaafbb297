"""initiator.held_session: the one description of a session, and its conversions (login result, sessions file)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from initiator.credentials import Chap, Credentials
from initiator.errors import BadInputError, LocalProtocolError
from initiator.held_session import JSON_KEYS, HeldSession
from initiator.login import LoggedIn, LoginConfig, LoginStateMachine
from initiator.portal import Portal
from initiator.record import replace
from initiator.secret import Secret
from tests.initiator.test_login import INITIATOR, ISID, TARGET, FakeTarget, drive

ONE_WAY = Credentials(Chap("alice", Secret("alicesecret1")))
MUTUAL = Credentials(Chap("alice", Secret("alicesecret1")), Chap("bob-target", Secret("bobsecret123")))
PORTAL = Portal("10.0.2.2", 3260)
HELD = HeldSession(
    target=TARGET, portal=PORTAL, tpgt=1, initiator_name=INITIATOR, isid=ISID, tsih=7, lun=1, sid=3, host_no=2
)


def _login(target: FakeTarget, credentials: Credentials | None = None):  # type: ignore[no-untyped-def]
    machine = LoginStateMachine(LoginConfig(INITIATOR, TARGET, isid=ISID, chap=credentials))
    out = drive(machine, target)
    assert isinstance(out, LoggedIn)
    return out.result


def test_from_login_takes_what_the_login_settled() -> None:
    result = _login(FakeTarget(auth="CHAP", tsih=0x42), ONE_WAY)
    held = HeldSession.from_login(result, portal=PORTAL, lun=4, credentials=ONE_WAY)
    assert held == HeldSession(
        target=TARGET,
        portal=PORTAL,
        tpgt=result.target_portal_group_tag if result.target_portal_group_tag is not None else 1,
        initiator_name=INITIATOR,
        isid=ISID,
        tsih=0x42,
        lun=4,
        header_digest=result.header_digest,
        data_digest=result.data_digest,
        credentials=ONE_WAY,
    )
    assert (held.sid, held.host_no) == (None, None)  # not the kernel's yet


@pytest.mark.parametrize(("declared", "default", "expected"), [(None, 1, 1), (None, 5, 5), (7, 1, 7)])
def test_a_target_without_a_portal_group_tag_gets_the_default(declared, default, expected) -> None:
    result = replace(_login(FakeTarget()), target_portal_group_tag=declared)
    assert HeldSession.from_login(result, portal=PORTAL, default_tpgt=default).tpgt == expected


def test_a_discovery_session_is_never_held() -> None:
    result = replace(_login(FakeTarget()), target_name=None)
    with pytest.raises(LocalProtocolError, match="discovery"):
        HeldSession.from_login(result, portal=PORTAL)


def test_a_relogin_keeps_the_kernel_numbers_and_takes_the_new_tsih() -> None:
    result = replace(_login(FakeTarget(tsih=0x99)), target_portal_group_tag=None)
    again = replace(HELD, tpgt=4, credentials=ONE_WAY).relogged(result)
    assert (again.sid, again.host_no, again.cid, again.lun, again.credentials) == (3, 2, 0, 1, ONE_WAY)
    assert (again.tsih, again.tpgt) == (0x99, 4)


@pytest.mark.parametrize(
    ("credentials", "users"), [(None, (None, None)), (ONE_WAY, ("alice", None)), (MUTUAL, ("alice", "bob-target"))]
)
def test_the_file_record_keeps_user_names_and_no_secret(credentials, users) -> None:
    held = replace(HELD, credentials=credentials)
    data = json.loads(json.dumps(held.to_json()))
    assert tuple(data) == JSON_KEYS
    assert (data["username"], data["username_in"]) == users
    assert "secret" not in json.dumps(data)
    given_back: list[tuple[str | None, str | None]] = []

    def secrets(session: HeldSession, username: str | None, username_in: str | None) -> Credentials | None:
        assert session == replace(held, credentials=None)
        given_back.append((username, username_in))
        return credentials

    assert HeldSession.from_json(data, secrets) == held
    assert given_back == [users]
    assert HeldSession.from_json(data) == replace(held, credentials=None)


@given(
    st.builds(
        HeldSession,
        target=st.from_regex(r"iqn\.20[0-9]{2}-[01][0-9]\.[a-z.]{1,20}:[a-z0-9]{1,10}", fullmatch=True),
        portal=st.builds(Portal, st.sampled_from(["10.0.2.2", "fe80::1%eth0", "host.example"]), st.integers(1, 65535)),
        tpgt=st.integers(0, 0xFFFF),
        initiator_name=st.just(INITIATOR),
        isid=st.binary(min_size=6, max_size=6),
        tsih=st.integers(0, 0xFFFF),
        lun=st.integers(0, 16383),
        header_digest=st.sampled_from(["None", "CRC32C"]),
        data_digest=st.sampled_from(["None", "CRC32C"]),
        sid=st.integers(0, 1 << 20),
        host_no=st.integers(0, 1 << 20),
    )
)
def test_every_session_survives_the_file(held: HeldSession) -> None:
    assert HeldSession.from_json(json.loads(json.dumps(held.to_json()))) == held


@pytest.mark.parametrize(("key", "value"), [("isid", "not hex"), ("isid", 42)])
def test_a_corrupt_record_is_bad_input(key: str, value: object) -> None:
    with pytest.raises(BadInputError, match="session record"):
        HeldSession.from_json({**HELD.to_json(), key: value})


def test_label_names_sid_target_and_portal() -> None:
    assert HELD.label == f"session 3 ({TARGET} at 10.0.2.2:3260)"
    assert replace(HELD, portal=Portal("fe80::1", 3261)).label == f"session 3 ({TARGET} at fe80::1:3261)"
