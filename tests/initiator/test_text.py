from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import LocalProtocolError, PyiscsiError, RemoteProtocolError
from initiator.text import (
    TextAssembler,
    as_dict,
    decode_text,
    encode_text,
    is_key_name,
    split_text,
)


@pytest.mark.parametrize(
    ("pairs", "raw"),
    [
        ([], b""),
        ([("HeaderDigest", "None")], b"HeaderDigest=None\0"),
        ([("A", ""), ("B", "x=y")], b"A=\0B=x=y\0"),  # the value is everything after the first '='
        ([("TargetAlias", "disk \u00e9")], "TargetAlias=disk \u00e9\0".encode()),
        ([("X-com.example.Key", "1"), ("X#vendor", "2")], b"X-com.example.Key=1\0X#vendor=2\0"),
        ([("TargetName", "a"), ("TargetName", "b")], b"TargetName=a\0TargetName=b\0"),
    ],
)
def test_round_trip(pairs: list[tuple[str, str]], raw: bytes) -> None:
    assert encode_text(pairs) == raw
    assert decode_text(raw) == pairs


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"HeaderDigest=None", "not NUL-terminated"),
        (b"HeaderDigest\0", "has no '='"),
        (b"=None\0", "empty key name"),
        (b"headerDigest=None\0", "outside the standard-label alphabet"),
        (b"Header Digest=None\0", "outside the standard-label alphabet"),
        (b"K" * 64 + b"=1\0", "longer than 63"),
        (b"TargetAlias=" + b"a" * 256 + b"\0", "TargetAlias: value of 256 bytes exceeds 255"),
        (b"CHAP_C=0x" + b"a" * 8191 + b"\0", "CHAP_C: value of 8193 bytes exceeds 8192"),
        (b"TargetAlias=\xff\0", "TargetAlias: value is not UTF-8"),
        (b"\xffKey=1\0", "is not ASCII"),
    ],
)
def test_decode_refuses(raw: bytes, message: str) -> None:
    with pytest.raises(RemoteProtocolError, match=message):
        decode_text(raw)


def test_limits_are_inclusive() -> None:
    key = "K" * 63
    assert decode_text(key.encode() + b"=" + b"v" * 255 + b"\0") == [(key, "v" * 255)]
    chap = "0x" + "a" * 8190
    assert decode_text(b"CHAP_C=" + chap.encode() + b"\0") == [("CHAP_C", chap)]


def test_stray_nul_is_tolerated() -> None:
    assert decode_text(b"A=1\0\0B=2\0") == [("A", "1"), ("B", "2")]


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("", "x")], "empty key name"),
        ([("lower", "x")], "standard-label"),
        ([("A", "x\0y")], "contains a NUL"),
        ([("A", "x" * 256)], "exceeds 255"),
        ([("CHAP_R", "x" * 8193)], "exceeds 8192"),
    ],
)
def test_encode_refuses(pairs: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        encode_text(pairs)


def test_as_dict_refuses_a_repeated_key() -> None:
    with pytest.raises(RemoteProtocolError, match=r"MaxBurstLength: given twice \('512', then '1024'\)"):
        as_dict([("MaxBurstLength", "512"), ("MaxBurstLength", "1024")])


def test_as_dict_repeatable_keys_keep_the_last() -> None:
    assert as_dict([("TargetAddress", "a"), ("TargetAddress", "b")], repeatable=frozenset({"TargetAddress"})) == {
        "TargetAddress": "b"
    }


@pytest.mark.parametrize(("size", "limit", "chunks"), [(0, 8, 1), (8, 8, 1), (9, 8, 2), (17, 8, 3), (5, 1, 5)])
def test_split_text(size: int, limit: int, chunks: int) -> None:
    data = bytes(range(size))
    parts = split_text(data, limit)
    assert len(parts) == chunks
    assert all(len(p) <= limit for p in parts)
    assert b"".join(parts) == data


def test_split_text_needs_a_positive_limit() -> None:
    with pytest.raises(LocalProtocolError):
        split_text(b"a", 0)


def test_assembler_joins_a_pair_split_across_pdus() -> None:
    asm = TextAssembler()
    assert asm.add(b"TargetName=iqn.20", True) is None
    assert asm.pending
    assert asm.add(b"26-11.x:disk\0TargetAddr", True) is None
    whole = asm.add(b"ess=10.0.0.1:3260,1\0", False)
    assert decode_text(whole) == [("TargetName", "iqn.2026-11.x:disk"), ("TargetAddress", "10.0.0.1:3260,1")]
    assert not asm.pending


def test_assembler_bound() -> None:
    asm = TextAssembler(max_total=10)
    asm.add(b"A=12345\0", True)
    with pytest.raises(RemoteProtocolError, match="continued text of 16 bytes exceeds the bound of 10"):
        asm.add(b"B=12345\0", True)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_text_gives_typed_errors_only(raw: bytes) -> None:
    try:
        pairs = decode_text(raw)
    except PyiscsiError:
        return
    assert encode_text(pairs) == b"".join(k.encode() + b"=" + v.encode() + b"\0" for k, v in pairs)


# the pattern text.py checked key names with before is_key_name: the two must agree
KEY_PATTERN = r"(?:[A-Z][A-Za-z0-9.\-+@_]*|X#[A-Za-z0-9.\-+@_]+)"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("HeaderDigest", True),
        ("X-com.example.Key", True),
        ("X#", False),
        ("X#a", True),
        ("x-lower", False),
        ("", False),
        ("Key=", False),
        ("K\u00e9y", False),
        ("#X", False),
    ],
)
def test_key_names(key: str, expected: bool) -> None:
    assert is_key_name(key) is expected


@settings(max_examples=3000)
@given(st.text(st.sampled_from("AXZaz09.-+@_#= \n\u00c9"), max_size=12))
def test_key_names_are_what_the_old_pattern_took(key: str) -> None:
    assert is_key_name(key) == (re.fullmatch(KEY_PATTERN, key) is not None)
