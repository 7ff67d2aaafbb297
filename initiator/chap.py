"""CHAP for iSCSI login (RFC 7143 12.1.3, RFC 1994; SHA-2/SHA-3 algorithm numbers from RFC 7143's IANA registry).

response = HASH(identifier byte || secret || challenge). We offer `CHAP_A=7,8,6,5` (SHA-256, SHA3-256, SHA-1,
MD5: strongest first) and, when a target rejects that list (older LIO and some NAS do), offer `CHAP_A=5` alone
once. One-way: we answer the target's challenge. Mutual: with our answer we send our own identifier and
challenge, and the login goes on only after the target's CHAP_N and CHAP_R check out; a target that moves
on without answering is refused. A challenge from the target equal to one we sent (a reflection) is refused,
and ours is never equal to the one we received.

Binary values travel as `0x` + hex (what we send) or `0b` + base64 (accepted too).

Public API
    ChapAlgorithm (IntCode 5 MD5, 6 SHA1, 7 SHA256, 8 SHA3_256), DEFAULT_ALGORITHMS = (7, 8, 6, 5)
    chap_response(algorithm, identifier, secret: bytes, challenge: bytes) -> bytes
    encode_binary(data) -> str, decode_binary(key, text) -> bytes
    ChapExchange(credentials, algorithms=DEFAULT_ALGORITHMS, random_bytes=os.urandom)
        .algorithm_offer() -> list[(key, value)]
        .fallback_offer() -> list[(key, value)] | None     after the target rejected our CHAP_A list
        .can_fall_back -> bool
        .answer_challenge(keys: Mapping) -> list[(key, value)]
        .verify_target(keys: Mapping) -> None              mutual only
        .expects_target_response -> bool, .algorithm -> ChapAlgorithm | None
    MutualAuthenticationFailed (IscsiError)
    MD5_ONLY, with_md5_fallback(attempt, algorithms, on_fallback) -> (outcome, algorithms used)
        one more whole login offering MD5 alone, when the first one's refusal advises it
        (errors.Md5FallbackAdvised: raised by the login drivers, client and kernel_login)

The credentials themselves are `initiator.credentials.Credentials` (one-way `chap`, optional `reverse`).
"""

from __future__ import annotations

import os

from initiator.alphabet import BASE64, is_hex_literal, is_run_of
from initiator.codes import IntCode
from initiator.credentials import Credentials
from initiator.errors import IscsiError, LocalProtocolError, Md5FallbackAdvised, PyiscsiError, RemoteProtocolError
from initiator.numbers import decimal

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (the discover path does not need it)
if TYPE_CHECKING:
    import hashlib
    from collections.abc import Callable, Mapping
    from typing import TypeVar

    T = TypeVar("T")


class ChapAlgorithm(IntCode):
    MD5 = 5
    SHA1 = 6
    SHA256 = 7
    SHA3_256 = 8


# hashlib's constructor names. hashlib (and hmac, base64) are imported on the first CHAP exchange, not with this
# module: a login without CHAP, and every discovery, then never pays their start-up (hashlib's loads OpenSSL).
_HASHES: dict[ChapAlgorithm, str] = {
    ChapAlgorithm.MD5: "md5",
    ChapAlgorithm.SHA1: "sha1",
    ChapAlgorithm.SHA256: "sha256",
    ChapAlgorithm.SHA3_256: "sha3_256",
}


def _new_hash(algorithm: ChapAlgorithm) -> hashlib._Hash:
    import hashlib

    return getattr(hashlib, _HASHES[algorithm])()


DEFAULT_ALGORITHMS: tuple[ChapAlgorithm, ...] = (
    ChapAlgorithm.SHA256,
    ChapAlgorithm.SHA3_256,
    ChapAlgorithm.SHA1,
    ChapAlgorithm.MD5,
)
MAX_CHALLENGE_LEN = 1024  # bytes, decoded
MIN_CHALLENGE_LEN = 1


class MutualAuthenticationFailed(IscsiError):
    """The target could not prove it knows the reverse secret, or did not try although we asked."""


def chap_response(algorithm: int, identifier: int, secret: bytes, challenge: bytes) -> bytes:
    h = _new_hash(ChapAlgorithm(algorithm))
    h.update(bytes([identifier]) + secret + challenge)
    return h.digest()


def encode_binary(data: bytes) -> str:
    return "0x" + data.hex()


MAX_BASE64_PADDING = 2  # '=' characters at the end of a base64 text


def _is_base64(text: str) -> bool:
    data = text.rstrip("=")
    return len(text) - len(data) <= MAX_BASE64_PADDING and is_run_of(data, BASE64)


def decode_binary(key: str, text: str) -> bytes:
    """A binary value `0x<hex>` or `0b<base64>`; RemoteProtocolError naming the key otherwise."""
    prefix, body = text[:2], text[2:]
    try:
        if is_hex_literal(text):
            return bytes.fromhex(body if len(body) % 2 == 0 else "0" + body)
        if prefix in ("0b", "0B") and _is_base64(body):
            import base64

            return base64.b64decode(body, validate=True)
    except ValueError:  # binascii.Error is a ValueError
        pass
    raise RemoteProtocolError(f"key {key}: {text[:40]!r} is neither 0x-hex nor 0b-base64")


def _identifier(text: str) -> int:
    number = decimal(text, 0, 255)  # ASCII digits only (numbers.py)
    if number is not None:
        return number
    if is_hex_literal(text, 2):
        return int(text, 16)
    raise RemoteProtocolError(f"key CHAP_I: {text[:40]!r} is not an identifier 0..255")


class ChapExchange:
    """One CHAP exchange, initiator side: offers, answers and (mutual) checks."""

    def __init__(
        self,
        credentials: Credentials,
        algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not algorithms or len(set(algorithms)) != len(algorithms):
            raise LocalProtocolError(f"CHAP: algorithm list {algorithms!r} must be non-empty without repeats")
        self.credentials = credentials
        self.algorithms = tuple(ChapAlgorithm(a) for a in algorithms)
        self._random = random_bytes
        self._offered: tuple[ChapAlgorithm, ...] = ()
        self.algorithm: ChapAlgorithm | None = None
        self._our_identifier: int | None = None
        self._our_challenges: list[bytes] = []
        self._fell_back = False
        self._answered = False

    @property
    def expects_target_response(self) -> bool:
        return self.credentials.mutual and self._answered

    def algorithm_offer(self) -> list[tuple[str, str]]:
        self._offered = self.algorithms
        return [("CHAP_A", ",".join(str(int(a)) for a in self._offered))]

    @property
    def can_fall_back(self) -> bool:
        """Whether offering MD5 alone would differ from what we offered (and has not been tried yet)."""
        md5 = ChapAlgorithm.MD5
        return not self._fell_back and self._offered != (md5,) and md5 in self.algorithms

    def fallback_offer(self) -> list[tuple[str, str]] | None:
        """After the target rejected our CHAP_A list: offer MD5 alone, once; None if there is nothing left."""
        if not self.can_fall_back:
            return None
        self._fell_back = True
        self._offered = (ChapAlgorithm.MD5,)
        return [("CHAP_A", "5")]

    def answer_challenge(self, keys: Mapping[str, str]) -> list[tuple[str, str]]:
        """The target's CHAP_A, CHAP_I, CHAP_C in; our CHAP_N, CHAP_R (and CHAP_I, CHAP_C if mutual) out."""
        if self._answered:
            raise RemoteProtocolError("key CHAP_C: a second challenge in one login")
        for key in ("CHAP_A", "CHAP_I", "CHAP_C"):
            if key not in keys:
                raise RemoteProtocolError(f"key {key}: missing from the target's CHAP challenge")
        chosen = keys["CHAP_A"]
        if decimal(chosen, 0, 255) not in [int(a) for a in self._offered]:
            offered = ",".join(str(int(a)) for a in self._offered)
            raise RemoteProtocolError(f"key CHAP_A: {chosen[:40]!r} is not one we offered ({offered})")
        self.algorithm = ChapAlgorithm(int(chosen))
        identifier = _identifier(keys["CHAP_I"])
        challenge = decode_binary("CHAP_C", keys["CHAP_C"])
        if not MIN_CHALLENGE_LEN <= len(challenge) <= MAX_CHALLENGE_LEN:
            raise RemoteProtocolError(
                f"key CHAP_C: challenge of {len(challenge)} bytes outside {MIN_CHALLENGE_LEN}..{MAX_CHALLENGE_LEN}"
            )
        if challenge in self._our_challenges:
            raise RemoteProtocolError("key CHAP_C: the target sent back a challenge of ours (reflection)")
        us = self.credentials.chap
        response = chap_response(self.algorithm, identifier, us.password.reveal().encode(), challenge)
        out = [("CHAP_N", us.username), ("CHAP_R", encode_binary(response))]
        if self.credentials.mutual:
            ours = self._new_challenge(avoid=challenge)
            self._our_identifier = self._random(1)[0]
            out += [("CHAP_I", str(self._our_identifier)), ("CHAP_C", encode_binary(ours))]
        self._answered = True
        return out

    def _new_challenge(self, avoid: bytes) -> bytes:
        assert self.algorithm is not None
        size = _new_hash(self.algorithm).digest_size
        for _ in range(3):
            ours = self._random(size)
            if ours != avoid and len(ours) == size:
                self._our_challenges.append(ours)
                return ours
        raise LocalProtocolError("CHAP: random source keeps producing the target's own challenge")

    def verify_target(self, keys: Mapping[str, str]) -> None:
        """Check the target's CHAP_N/CHAP_R against our challenge and the reverse secret (mutual only)."""
        reverse = self.credentials.reverse
        if reverse is None:
            if "CHAP_R" in keys or "CHAP_N" in keys:
                raise RemoteProtocolError("key CHAP_R: the target answered a challenge we never sent")
            return
        if not self._answered or self._our_identifier is None or self.algorithm is None:
            raise LocalProtocolError("CHAP: verify_target before our challenge was sent")
        if "CHAP_R" not in keys or "CHAP_N" not in keys:
            raise MutualAuthenticationFailed(
                "target skipped the mutual CHAP authentication we asked for (no CHAP_N/CHAP_R)"
            )
        if keys["CHAP_N"] != reverse.username:
            raise MutualAuthenticationFailed(
                f"target answered mutual CHAP as {keys['CHAP_N'][:80]!r}, expected {reverse.username!r}"
            )
        got = decode_binary("CHAP_R", keys["CHAP_R"])
        expected = chap_response(
            self.algorithm, self._our_identifier, reverse.password.reveal().encode(), self._our_challenges[-1]
        )
        import hmac

        if not hmac.compare_digest(got, expected):
            raise MutualAuthenticationFailed("target failed mutual CHAP authentication (wrong CHAP_R)")


# ---- one more login with MD5 alone --------------------------------------------------------------------------

MD5_ONLY: tuple[ChapAlgorithm, ...] = (ChapAlgorithm.MD5,)


def with_md5_fallback(
    attempt: Callable[[tuple[int, ...]], T],
    algorithms: tuple[int, ...] = DEFAULT_ALGORITHMS,
    on_fallback: Callable[[PyiscsiError], None] | None = None,
) -> tuple[T, tuple[int, ...]]:
    """Run one whole login, `attempt(algorithms)`; when its refusal advises it (Md5FallbackAdvised), run it once
    more offering MD5 alone, after `on_fallback(refusal)`. Returns the outcome and the algorithms that got it:
    MD5_ONLY tells the caller to offer MD5 alone from the start next time. A refusal left is raised as the
    target's own typed error.

    Why a whole new login: some targets refuse any CHAP_A list but `5` outright, and tgt 1.0.x takes CHAP_A=7
    as SHA-1 and then fails our SHA-256 answer with 0x0200; a login that failed cannot go on."""
    if tuple(algorithms) != MD5_ONLY:
        try:
            return attempt(algorithms), algorithms
        except Md5FallbackAdvised as advice:
            if on_fallback is not None:
                on_fallback(advice.refusal)
    try:
        return attempt(MD5_ONLY), MD5_ONLY
    except Md5FallbackAdvised as advice:  # MD5 alone was offered: nothing weaker is left to try
        raise advice.refusal from None
