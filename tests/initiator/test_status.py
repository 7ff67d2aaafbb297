from __future__ import annotations

import pytest

from initiator.errors import ExitStatus, IscsiError
from initiator.status import (
    AuthenticationFailed,
    AuthorizationFailed,
    InitiatorError,
    LoginRejected,
    LoginStatus,
    OutOfResources,
    ServiceUnavailable,
    TargetError,
    TargetNotFound,
    TargetRemoved,
    describe,
    login_error,
    status_code,
)


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (0x0000, "success (0x0000)"),
        (0x0101, "target moved temporarily (0x0101)"),
        (0x0102, "target moved permanently (0x0102)"),
        (0x0201, "authentication failed (0x0201)"),
        (0x0202, "authorization failed (0x0202)"),
        (0x0203, "target not found (0x0203)"),
        (0x0205, "unsupported iSCSI version (0x0205)"),
        (0x020B, "invalid request during login (0x020b)"),
        (0x0301, "service unavailable (0x0301)"),
        (0x0302, "target out of resources (0x0302)"),
        (0x0299, "unknown status of class initiator error (0x0299)"),
        (0x0777, "unknown status of class 7 (0x0777)"),
    ],
)
def test_describe(code: int, text: str) -> None:
    assert describe(code) == text


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0x0201, AuthenticationFailed),
        (0x0202, AuthorizationFailed),
        (0x0203, TargetNotFound),
        (0x0204, TargetRemoved),
        (0x0200, InitiatorError),
        (0x02FE, InitiatorError),
        (0x0300, TargetError),
        (0x0301, ServiceUnavailable),
        (0x0302, OutOfResources),
        (0x03AA, TargetError),
        (0x0400, LoginRejected),
    ],
)
def test_login_error_is_most_specific(code: int, cls: type[LoginRejected]) -> None:
    err = login_error(code, "iqn.2026-11.test:disk")
    assert type(err) is cls
    assert isinstance(err, IscsiError)
    assert err.exit_status == ExitStatus.ISCSI_REFUSED
    assert err.code == code
    assert (err.status_class, err.status_detail) == (code >> 8, code & 0xFF)
    assert f"(0x{code:04x})" in str(err)
    assert "iqn.2026-11.test:disk" in str(err)


def test_message_shape_matches_the_contract() -> None:
    assert str(login_error(0x0201)) == "login refused: authentication failed (0x0201)"
    assert str(login_error(0x0203, "iqn.x")) == "target 'iqn.x': login refused: target not found (0x0203)"


def test_every_class_2_and_3_status_has_words_and_an_error() -> None:
    for status in LoginStatus:
        assert "unknown" not in describe(status)
        if status >> 8 in (2, 3):
            assert isinstance(login_error(status), InitiatorError | TargetError)


def test_status_code() -> None:
    assert status_code(2, 1) == 0x0201
