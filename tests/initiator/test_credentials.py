from __future__ import annotations

import pytest

from initiator.credentials import Chap, Credentials
from initiator.errors import BadInputError, UsageError
from initiator.secret import Secret

ALICE = Chap("alice", Secret("alicesecret1"))
BOB = Chap("target-bob", Secret("bobsecret123"))


@pytest.mark.parametrize(
    ("chap", "reverse", "field"),
    [
        (Chap("", Secret("x")), None, "chap.username"),
        (Chap("a", Secret("")), None, "chap.password"),
        (Chap("a", Secret("x")), Chap("t", Secret("")), "chap.reverse_password"),
    ],
)
def test_bad_credentials_name_the_field(chap: Chap, reverse: Chap | None, field: str) -> None:
    with pytest.raises(BadInputError, match=rf"^{field}:"):
        Credentials(chap, reverse)


@pytest.mark.parametrize("password", ["plain text", b"bytes", None])
def test_a_password_is_always_a_secret(password: object) -> None:
    with pytest.raises(TypeError, match="Secret"):
        Chap("alice", password)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("chap", "reverse", "expected"),
    [
        (None, None, None),
        (ALICE, None, Credentials(ALICE)),
        (ALICE, BOB, Credentials(ALICE, BOB)),
    ],
)
def test_of_pairs_one_way_and_reverse(chap: Chap | None, reverse: Chap | None, expected: Credentials | None) -> None:
    assert Credentials.of(chap, reverse) == expected
    assert expected is None or expected.mutual is (reverse is not None)


def test_reverse_alone_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="needs one-way CHAP"):
        Credentials.of(None, BOB)


def test_secrets_show_only_when_asked() -> None:
    pair = Credentials(ALICE, BOB)
    assert "alicesecret1" not in repr(pair) and "bobsecret123" not in repr(pair)
    assert ALICE.to_json() == {"username": "alice", "password": "***"}
    assert ALICE.to_json(show_secrets=True) == {"username": "alice", "password": "alicesecret1"}
