from __future__ import annotations

import base64
import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.chap import (
    DEFAULT_ALGORITHMS,
    MD5_ONLY,
    ChapAlgorithm,
    ChapExchange,
    MutualAuthenticationFailed,
    chap_response,
    decode_binary,
    encode_binary,
    with_md5_fallback,
)
from initiator.credentials import Chap, Credentials
from initiator.errors import Md5FallbackAdvised, NetworkError, PyiscsiError, RemoteProtocolError
from initiator.secret import Secret
from initiator.status import AuthenticationFailed

ONE_WAY = Credentials(Chap("alice", Secret("alicesecret1")))
MUTUAL = Credentials(Chap("alice", Secret("alicesecret1")), Chap("target-bob", Secret("bobsecret123")))
CHALLENGE = bytes(range(16))
HASH = {5: hashlib.md5, 6: hashlib.sha1, 7: hashlib.sha256, 8: hashlib.sha3_256}


def _counter_random() -> object:
    """Deterministic 'random' bytes: 0xA0, 0xA1, ... so tests know our challenge and identifier."""
    counter = itertools.count(0xA0)
    return lambda n: bytes(next(counter) & 0xFF for _ in range(n))


@pytest.mark.parametrize("alg", [5, 6, 7, 8])
def test_response_is_hash_of_id_secret_challenge(alg: int) -> None:
    expected = HASH[alg](b"\x07" + b"alicesecret1" + CHALLENGE).digest()
    assert chap_response(alg, 7, b"alicesecret1", CHALLENGE) == expected


@pytest.mark.parametrize(
    ("alg", "identifier", "secret", "challenge", "digest"),
    [
        # computed outside Python with coreutils: printf '\x01secret' + 16 NULs | md5sum
        (5, 1, b"secret", bytes(16), "7570c653cdf4755ccffcaa80f29268d1"),
        # printf '\x07alicesecret1' followed by bytes 0..15 | sha256sum
        (7, 7, b"alicesecret1", CHALLENGE, "402ad7537b2631740c42e642e85890c9a8484765d1db73e9433db4a8b8b025fa"),
    ],
)
def test_known_vectors(alg: int, identifier: int, secret: bytes, challenge: bytes, digest: str) -> None:
    assert chap_response(alg, identifier, secret, challenge).hex() == digest


def test_offer_strongest_first_then_md5_fallback_once() -> None:
    ex = ChapExchange(ONE_WAY)
    assert ex.algorithm_offer() == [("CHAP_A", "7,8,6,5")]
    assert ex.fallback_offer() == [("CHAP_A", "5")]
    assert ex.fallback_offer() is None


@pytest.mark.parametrize(("algorithms", "fallback"), [((5,), None), ((7, 6), None), ((7, 5), [("CHAP_A", "5")])])
def test_fallback_only_when_it_changes_something(algorithms: tuple[int, ...], fallback: object) -> None:
    ex = ChapExchange(ONE_WAY, algorithms)
    ex.algorithm_offer()
    assert ex.fallback_offer() == fallback


@pytest.mark.parametrize("alg", [5, 6, 7, 8])
def test_one_way_answer(alg: int) -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    out = dict(ex.answer_challenge({"CHAP_A": str(alg), "CHAP_I": "42", "CHAP_C": encode_binary(CHALLENGE)}))
    assert out == {"CHAP_N": "alice", "CHAP_R": "0x" + HASH[alg](b"\x2a" + b"alicesecret1" + CHALLENGE).hexdigest()}
    assert not ex.expects_target_response
    assert ex.algorithm == alg
    ex.verify_target({})  # nothing to verify one-way


def test_base64_challenge_accepted() -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    b64 = "0b" + base64.b64encode(CHALLENGE).decode()
    out = dict(ex.answer_challenge({"CHAP_A": "5", "CHAP_I": "0x2a", "CHAP_C": b64}))
    assert out["CHAP_R"] == "0x" + hashlib.md5(b"\x2a" + b"alicesecret1" + CHALLENGE).hexdigest()


def _mutual_exchange(alg: int = 7) -> tuple[ChapExchange, dict[str, str]]:
    ex = ChapExchange(MUTUAL, random_bytes=_counter_random())
    ex.algorithm_offer()
    out = dict(ex.answer_challenge({"CHAP_A": str(alg), "CHAP_I": "1", "CHAP_C": encode_binary(CHALLENGE)}))
    return ex, out


@pytest.mark.parametrize("alg", [5, 6, 7, 8])
def test_mutual_sends_our_challenge_and_checks_the_target(alg: int) -> None:
    ex, out = _mutual_exchange(alg)
    size = HASH[alg]().digest_size
    our_challenge = bytes(range(0xA0, 0xA0 + size))
    our_id = 0xA0 + size
    assert out["CHAP_C"] == "0x" + our_challenge.hex()
    assert out["CHAP_I"] == str(our_id)
    assert ex.expects_target_response
    target_r = HASH[alg](bytes([our_id]) + b"bobsecret123" + our_challenge).hexdigest()
    ex.verify_target({"CHAP_N": "target-bob", "CHAP_R": "0x" + target_r})


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({}, "skipped the mutual CHAP authentication"),
        ({"CHAP_N": "target-bob"}, "skipped the mutual"),
        ({"CHAP_N": "mallory", "CHAP_R": "0x00"}, "as 'mallory', expected 'target-bob'"),
        ({"CHAP_N": "target-bob", "CHAP_R": "0x" + "00" * 32}, "wrong CHAP_R"),
    ],
)
def test_mutual_failures(keys: dict[str, str], message: str) -> None:
    ex, _ = _mutual_exchange()
    with pytest.raises(MutualAuthenticationFailed, match=message):
        ex.verify_target(keys)


def test_mutual_response_with_bad_encoding() -> None:
    ex, _ = _mutual_exchange()
    with pytest.raises(RemoteProtocolError, match="CHAP_R: 'zz' is neither"):
        ex.verify_target({"CHAP_N": "target-bob", "CHAP_R": "zz"})


def test_target_answer_without_our_challenge() -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    ex.answer_challenge({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": encode_binary(CHALLENGE)})
    with pytest.raises(RemoteProtocolError, match="never sent"):
        ex.verify_target({"CHAP_N": "t", "CHAP_R": "0x00"})


def test_our_challenge_never_equals_theirs() -> None:
    target_challenge = bytes([0xA0] * 32)
    ex = ChapExchange(MUTUAL, random_bytes=lambda n: bytes([0xA0] * n) if n == 32 else b"\x05")
    ex.algorithm_offer()
    with pytest.raises(PyiscsiError, match="random source keeps producing"):
        ex.answer_challenge({"CHAP_A": "7", "CHAP_I": "1", "CHAP_C": encode_binary(target_challenge)})


def test_reflected_challenge_is_refused() -> None:
    ex, out = _mutual_exchange()
    # a second round (as after a CHAP_A fallback) offering back our own challenge
    ex._answered = False
    with pytest.raises(RemoteProtocolError, match="reflection"):
        ex.answer_challenge({"CHAP_A": "7", "CHAP_I": "2", "CHAP_C": out["CHAP_C"]})


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"CHAP_I": "1", "CHAP_C": "0x00"}, "CHAP_A: missing"),
        ({"CHAP_A": "5", "CHAP_C": "0x00"}, "CHAP_I: missing"),
        ({"CHAP_A": "5", "CHAP_I": "1"}, "CHAP_C: missing"),
        ({"CHAP_A": "9", "CHAP_I": "1", "CHAP_C": "0x00"}, r"CHAP_A: '9' is not one we offered \(7,8,6,5\)"),
        ({"CHAP_A": "5,7", "CHAP_I": "1", "CHAP_C": "0x00"}, "CHAP_A: '5,7' is not one we offered"),
        ({"CHAP_A": "\u00b2", "CHAP_I": "1", "CHAP_C": "0x00"}, "CHAP_A: '\u00b2' is not one we offered"),
        ({"CHAP_A": "5", "CHAP_I": "256", "CHAP_C": "0x00"}, "CHAP_I: '256' is not an identifier"),
        ({"CHAP_A": "5", "CHAP_I": "-1", "CHAP_C": "0x00"}, "CHAP_I"),
        ({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "hello"}, "CHAP_C: 'hello' is neither 0x-hex nor 0b-base64"),
        ({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "0xzz"}, "CHAP_C: '0xzz' is neither"),
        ({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "0b!!!!"}, "CHAP_C"),
        ({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "0x"}, "CHAP_C"),
        ({"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "0x" + "ab" * 1025}, "challenge of 1025 bytes outside 1..1024"),
    ],
)
def test_hostile_challenges(keys: dict[str, str], message: str) -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    with pytest.raises(RemoteProtocolError, match=message):
        ex.answer_challenge(keys)


def test_algorithm_must_be_one_still_offered_after_fallback() -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    ex.fallback_offer()
    with pytest.raises(RemoteProtocolError, match=r"'7' is not one we offered \(5\)"):
        ex.answer_challenge({"CHAP_A": "7", "CHAP_I": "1", "CHAP_C": "0x00"})


def test_second_challenge_refused() -> None:
    ex = ChapExchange(ONE_WAY)
    ex.algorithm_offer()
    keys = {"CHAP_A": "5", "CHAP_I": "1", "CHAP_C": "0x0102"}
    ex.answer_challenge(keys)
    with pytest.raises(RemoteProtocolError, match="second challenge"):
        ex.answer_challenge(keys)


@pytest.mark.parametrize(("text", "data"), [("0x0102ff", b"\x01\x02\xff"), ("0X1", b"\x01"), ("0bAQI=", b"\x01\x02")])
def test_decode_binary(text: str, data: bytes) -> None:
    assert decode_binary("K", text) == data


def test_secrets_never_in_repr() -> None:
    assert "alicesecret1" not in repr(MUTUAL)
    assert "bobsecret123" not in repr(MUTUAL)


def test_algorithm_enum_numbers() -> None:
    assert [int(a) for a in ChapAlgorithm] == [5, 6, 7, 8]


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"]), st.text(max_size=30)))
def test_random_keys_give_typed_errors_only(keys: dict[str, str]) -> None:
    ex = ChapExchange(MUTUAL)
    ex.algorithm_offer()
    try:
        ex.answer_challenge(keys)
        ex.verify_target(keys)
    except PyiscsiError:
        pass


# ---- one more login with MD5 alone ---------------------------------------------------------------------------


def _attempts(*outcomes: object):  # type: ignore[no-untyped-def]
    """An attempt that returns or raises each outcome in turn, recording the algorithms it was offered."""
    offered: list[tuple[int, ...]] = []
    queue = list(outcomes)

    def attempt(algorithms: tuple[int, ...]) -> object:
        offered.append(tuple(algorithms))
        outcome = queue.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return attempt, offered


REFUSED = AuthenticationFailed(0x0201)


@pytest.mark.parametrize(
    ("start", "outcomes", "result", "offered"),
    [
        # the first login works: nothing more
        (DEFAULT_ALGORITHMS, ["in"], ("in", DEFAULT_ALGORITHMS), [DEFAULT_ALGORITHMS]),
        # advised: once more with MD5 alone, which the caller learns
        (DEFAULT_ALGORITHMS, [Md5FallbackAdvised(REFUSED), "in"], ("in", MD5_ONLY), [DEFAULT_ALGORITHMS, MD5_ONLY]),
        # learned before: MD5 alone from the start
        (MD5_ONLY, ["in"], ("in", MD5_ONLY), [MD5_ONLY]),
    ],
)
def test_with_md5_fallback(start, outcomes, result, offered) -> None:
    attempt, seen = _attempts(*outcomes)
    fell_back: list[PyiscsiError] = []
    assert with_md5_fallback(attempt, start, fell_back.append) == result
    assert seen == offered
    assert fell_back == ([REFUSED] if len(offered) == 2 else [])


@pytest.mark.parametrize(
    ("start", "outcomes", "offered"),
    [
        # a refusal that advises nothing is the target's answer
        (DEFAULT_ALGORITHMS, [REFUSED], [DEFAULT_ALGORITHMS]),
        # MD5 alone refused too: the second refusal is the answer, as its own typed error
        (
            DEFAULT_ALGORITHMS,
            [Md5FallbackAdvised(REFUSED), Md5FallbackAdvised(REFUSED)],
            [DEFAULT_ALGORITHMS, MD5_ONLY],
        ),
        (MD5_ONLY, [Md5FallbackAdvised(REFUSED)], [MD5_ONLY]),
        (DEFAULT_ALGORITHMS, [Md5FallbackAdvised(REFUSED), NetworkError("reset")], [DEFAULT_ALGORITHMS, MD5_ONLY]),
    ],
)
def test_with_md5_fallback_gives_up(start, outcomes, offered) -> None:
    attempt, seen = _attempts(*outcomes)
    last = outcomes[-1]
    expected = last.refusal if isinstance(last, Md5FallbackAdvised) else last
    with pytest.raises(type(expected)) as caught:
        with_md5_fallback(attempt, start)
    assert caught.value is expected and not isinstance(caught.value, Md5FallbackAdvised)
    assert seen == offered


def test_the_advice_carries_the_refusal() -> None:
    advice = Md5FallbackAdvised(REFUSED)
    assert str(advice) == str(REFUSED) and advice.exit_status == REFUSED.exit_status
