from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import BadInputError
from initiator.portal import Portal, is_ipv4_address, parse_portal


@pytest.mark.parametrize(
    ("text", "address", "port", "shown"),
    [
        ("127.0.0.1", "127.0.0.1", 3260, "127.0.0.1:3260"),
        ("10.0.2.2:3261", "10.0.2.2", 3261, "10.0.2.2:3261"),
        ("[::1]", "::1", 3260, "[::1]:3260"),
        ("[fec0::2]:860", "fec0::2", 860, "[fec0::2]:860"),
        ("[FEC0:0::2]:860", "fec0::2", 860, "[fec0::2]:860"),
        ("fe80::1", "fe80::1", 3260, "[fe80::1]:3260"),
        ("[fe80::1%eth0]:3260", "fe80::1%eth0", 3260, "[fe80::1%eth0]:3260"),
        ("storage.example.com:3260", "storage.example.com", 3260, "storage.example.com:3260"),
        (" nas ", "nas", 3260, "nas:3260"),
    ],
)
def test_parse(text: str, address: str, port: int, shown: str) -> None:
    portal = parse_portal(text)
    assert portal == Portal(address, port)
    assert str(portal) == shown


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no address"),
        (":3260", "no address"),
        ("10.0.0.1:", "port ''"),
        ("10.0.0.1:0", "port '0'"),
        ("10.0.0.1:65536", "port '65536'"),
        ("10.0.0.1:32a", "port '32a'"),
        ("10.0.0.256", "neither"),
        ("[::1", "closing"),
        ("[::1]x", "unexpected"),
        ("[10.0.0.1]:3260", "not an IPv6"),
        ("[fe80::1%a b]", "scope"),
        ("bad_host!", "neither"),
        ("1::2::3", "not an IPv6"),
    ],
)
def test_bad_portal_names_field_and_value(text: str, reason: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_portal(text)
    assert info.value.field == "portal"
    assert reason in str(info.value)
    assert repr(text) in str(info.value)


def test_field_name_and_default_port_are_inputs() -> None:
    assert parse_portal("10.0.0.1", default_port=860).port == 860
    with pytest.raises(BadInputError, match=r"^TargetAddress:"):
        parse_portal("x:y", field="TargetAddress")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdef.:[]%-_ xyz", max_size=40))
def test_any_text_gives_a_portal_or_bad_input(text: str) -> None:
    try:
        portal = parse_portal(text)
    except BadInputError as exc:
        assert exc.field == "portal"
        return
    assert 0 < portal.port < 65536 and portal.address
    assert parse_portal(str(portal)) == portal


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.0.0.1:3²60", "port '3²60' is not a number in 1..65535 (ASCII digits 0-9 only)"),  # int() raises
        ("10.0.0.1:٣٢٦٠", "port '٣٢٦٠'"),  # int() would read 3260
        ("[::1]:\uff13\uff12\uff16\uff10", "port"),  # fullwidth digits
        ("10.0.0.1:+3260", "port '+3260'"),
        ("10.0.0.1:3_260", "port '3_260'"),
        ("10.0.0.1:" + "0" * 30 + "1", "port"),
        ("host\n:3260", "neither an IP address nor a host name"),  # `$` once let the newline through
        ("[::1\n]", "not an IPv6"),
    ],
)
def test_hostile_numbers_and_names(text: str, reason: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_portal(text)
    assert info.value.field == "portal" and reason in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii()),
    st.text(alphabet="0123456789", max_size=3),
    st.sampled_from(["10.0.0.1:{}", "[fec0::2]:{}", "storage.example.com:{}"]),
)
def test_a_port_with_a_non_ascii_digit_is_bad_input_naming_the_field(digit: str, tail: str, form: str) -> None:
    with pytest.raises(BadInputError) as info:
        parse_portal(form.format(digit + tail), field="TargetAddress")
    assert info.value.field == "TargetAddress"


_QUAD_PART = st.one_of(st.integers(0, 300).map(str), st.text("0123456789", max_size=4), st.text(max_size=3))


@settings(max_examples=500)
@given(st.lists(_QUAD_PART, min_size=1, max_size=6).map(".".join))
def test_ipv4_check_agrees_with_ipaddress_which_it_replaces(text: str) -> None:
    """inet_pton stands in for ipaddress.IPv4Address (its import was a cost of every discover): the same texts
    pass, and each one that passes is already the address's canonical form."""
    try:
        canonical: str | None = str(ipaddress.IPv4Address(text))
    except ValueError:
        canonical = None
    assert is_ipv4_address(text) == (canonical is not None)
    if canonical is not None:
        assert canonical == text and parse_portal(text).address == text
