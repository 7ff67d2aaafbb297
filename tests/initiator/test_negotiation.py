from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import (
    BadInputError,
    ExitStatus,
    LocalProtocolError,
    PyiscsiError,
    RemoteProtocolError,
    RemoteValueError,
)
from initiator.framing import LOGIN_MAX_DATA_SEGMENT
from initiator.negotiation import (
    KEYS,
    MAX_NOT_UNDERSTOOD_BYTES,
    Negotiator,
    Offers,
    Rule,
    digest_offer,
    parse_number,
)
from initiator.text import encode_text

LO_KEYS = {k for k, s in KEYS.items() if s.leading_only}


def _answer_all(neg: Negotiator, answers: dict[str, str]) -> None:
    """Answer each of our offers with its own value unless the table says otherwise."""
    offered = dict(neg.offers())
    pairs = [(k, answers.get(k, v)) for k, v in offered.items() if k in neg.unanswered()]
    assert neg.receive(pairs) == []


def test_normal_leading_offers_in_rfc_spelling() -> None:
    offers = dict(Negotiator().offers())
    assert offers == {
        "HeaderDigest": "None",
        "DataDigest": "None",
        "MaxConnections": "1",
        "InitialR2T": "No",
        "ImmediateData": "Yes",
        "MaxRecvDataSegmentLength": "262144",
        "MaxBurstLength": "262144",
        "FirstBurstLength": "65536",
        "DefaultTime2Wait": "2",
        "DefaultTime2Retain": "0",
        "MaxOutstandingR2T": "1",
        "DataPDUInOrder": "Yes",
        "DataSequenceInOrder": "Yes",
        "ErrorRecoveryLevel": "0",
    }


def test_discovery_offers_only_discovery_keys() -> None:
    offers = dict(Negotiator(discovery=True).offers())
    assert set(offers) == {
        "HeaderDigest",
        "DataDigest",
        "MaxRecvDataSegmentLength",
        "DefaultTime2Wait",
        "DefaultTime2Retain",
        "ErrorRecoveryLevel",
    }


def test_non_leading_offers_no_leading_only_keys() -> None:
    offers = dict(Negotiator(leading=False).offers())
    assert not set(offers) & LO_KEYS
    assert set(offers) == {"HeaderDigest", "DataDigest", "MaxRecvDataSegmentLength"}


def test_configured_digests_offered_in_preference_order() -> None:
    offers = dict(Negotiator(Offers(header_digest=("CRC32C", "None"), data_digest=("CRC32C",))).offers())
    assert (offers["HeaderDigest"], offers["DataDigest"]) == ("CRC32C,None", "CRC32C")


@pytest.mark.parametrize(
    ("key", "offer_kwargs", "answer", "result"),
    [
        # list: any one of our values
        ("HeaderDigest", {"header_digest": ("CRC32C", "None")}, "None", "None"),
        ("HeaderDigest", {"header_digest": ("CRC32C", "None")}, "CRC32C", "CRC32C"),
        ("DataDigest", {"data_digest": ("None", "CRC32C")}, "CRC32C", "CRC32C"),
        # min: anything not above our offer
        ("MaxBurstLength", {}, "65536", "65536"),
        ("MaxBurstLength", {}, "0x10000", "65536"),
        ("FirstBurstLength", {}, "512", "512"),
        ("MaxOutstandingR2T", {}, "1", "1"),
        ("DefaultTime2Retain", {"default_time2retain": 20}, "0", "0"),
        # max: anything not below our offer
        ("DefaultTime2Wait", {}, "5", "5"),
        # OR: our No may become Yes
        ("InitialR2T", {}, "Yes", "Yes"),
        ("InitialR2T", {}, "No", "No"),
        # AND: our Yes may become No
        ("ImmediateData", {}, "No", "No"),
        # special answers keep the default
        ("MaxBurstLength", {}, "Reject", "262144"),
        ("InitialR2T", {}, "NotUnderstood", "Yes"),
        ("FirstBurstLength", {}, "Irrelevant", "65536"),
        ("HeaderDigest", {"header_digest": ("CRC32C", "None")}, "Reject", "None"),
    ],
)
def test_answer_to_our_offer(key: str, offer_kwargs: dict, answer: str, result: str) -> None:
    neg = Negotiator(Offers(**offer_kwargs))
    _answer_all(neg, {key: answer})
    assert neg.finish().values[key] == result


@pytest.mark.parametrize(
    ("key", "offer_kwargs", "answer", "message"),
    [
        ("HeaderDigest", {}, "CRC32C", "not one of our offer 'None'"),
        ("HeaderDigest", {"header_digest": ("CRC32C", "None")}, "CRC32C,None", "not one of our offer"),
        ("DataDigest", {"data_digest": ("CRC32C",)}, "Reject", "default 'None' is not one we accept"),
        ("MaxBurstLength", {}, "524288", "exceeds our offer 262144"),
        ("MaxBurstLength", {}, "100", "outside 512..16777215"),
        ("MaxBurstLength", {}, "lots", "'lots' is not a number"),
        ("MaxBurstLength", {}, "-1", "is not a number"),
        ("DefaultTime2Wait", {}, "1", "below our offer 2"),
        ("DefaultTime2Wait", {}, "3601", "outside 0..3600"),
        ("ErrorRecoveryLevel", {}, "3", "outside 0..2"),
        ("InitialR2T", {"initial_r2t": True}, "No", "answer No to our Yes"),
        ("ImmediateData", {"immediate_data": False}, "Yes", "answer Yes to our No"),
        ("ImmediateData", {}, "yes", "neither Yes nor No"),
    ],
)
def test_answers_the_rule_forbids(key: str, offer_kwargs: dict, answer: str, message: str) -> None:
    neg = Negotiator(Offers(**offer_kwargs))
    neg.offers()
    with pytest.raises(RemoteProtocolError, match=f"key {key}: .*{message}"):
        neg.receive([(key, answer)])


@pytest.mark.parametrize(
    ("key", "theirs", "offer_kwargs", "reply", "result"),
    [
        ("HeaderDigest", "CRC32C,None", {"header_digest": ("None", "CRC32C")}, "CRC32C", "CRC32C"),  # their order
        ("HeaderDigest", "CRC32C,None", {}, "None", "None"),
        ("HeaderDigest", "CRC32C", {}, "Reject", "None"),
        ("DataDigest", "None", {"data_digest": ("CRC32C", "None")}, "None", "None"),
        ("MaxBurstLength", "1048576", {}, "262144", "262144"),
        ("MaxBurstLength", "4096", {}, "4096", "4096"),
        ("DefaultTime2Wait", "0", {}, "2", "2"),
        ("DefaultTime2Wait", "10", {}, "10", "10"),
        ("InitialR2T", "Yes", {}, "Yes", "Yes"),
        ("InitialR2T", "No", {}, "No", "No"),
        ("ImmediateData", "Yes", {"immediate_data": False}, "No", "No"),
        ("DataPDUInOrder", "No", {}, "Yes", "Yes"),
        ("ErrorRecoveryLevel", "2", {}, "0", "0"),
        ("TaskReporting", "ResponseFence,RFC3720", {}, "RFC3720", "RFC3720"),
        ("TaskReporting", "FastAbort", {}, "Reject", "RFC3720"),
        ("iSCSIProtocolLevel", "2", {}, "1", "1"),
        ("IFMarker", "Yes", {}, "No", "No"),
    ],
)
def test_answer_to_a_target_offer(key: str, theirs: str, offer_kwargs: dict, reply: str, result: str) -> None:
    neg = Negotiator(Offers(**offer_kwargs))
    assert neg.receive([(key, theirs)]) == [(key, reply)]
    # we do not offer a key the target already brought up
    assert key not in dict(neg.offers())
    assert neg.finish().values[key] == result


@pytest.mark.parametrize(
    ("key", "reply"),
    [("X-com.example.Feature", "NotUnderstood"), ("FutureKey", "NotUnderstood"), ("OFMarkInt", "Irrelevant")],
)
def test_unknown_and_obsolete_keys(key: str, reply: str) -> None:
    neg = Negotiator()
    assert neg.receive([(key, "1")]) == [(key, reply)]
    assert key not in neg.finish().values


@pytest.mark.parametrize("key", ["MaxBurstLength", "InitialR2T", "MaxConnections", "DataSequenceInOrder"])
def test_discovery_session_answers_irrelevant(key: str) -> None:
    neg = Negotiator(discovery=True)
    assert neg.receive([(key, KEYS[key].default)]) == [(key, "Irrelevant")]
    assert key not in neg.finish().values


def test_leading_only_key_on_non_leading_connection() -> None:
    with pytest.raises(RemoteProtocolError, match="leading-only key offered on a non-leading connection"):
        Negotiator(leading=False).receive([("MaxBurstLength", "4096")])


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("MaxBurstLength", "4096"), ("MaxBurstLength", "4096")], "negotiated twice"),
        ([("TargetAlias", "a"), ("TargetAlias", "b")], "negotiated twice"),
        ([("X-vendor", "1"), ("X-vendor", "1")], "negotiated twice"),
        ([("MaxBurstLength", "Reject")], "answer 'Reject' to an offer we never made"),
        ([("TargetPortalGroupTag", "65536")], "outside 0..65535"),
        ([("TargetPortalGroupTag", "one")], "is not a number"),
        ([("MaxRecvDataSegmentLength", "511")], "outside 512..16777215"),
        ([("MaxRecvDataSegmentLength", "16777216")], "outside 512..16777215"),
    ],
)
def test_hostile_target_keys(pairs: list[tuple[str, str]], message: str) -> None:
    neg = Negotiator()
    with pytest.raises(RemoteProtocolError, match=message):
        neg.receive(pairs)


def test_a_declaration_repeated_unchanged_is_tolerated() -> None:
    neg = Negotiator()
    neg.receive([("TargetPortalGroupTag", "1"), ("TargetAlias", "disk")])
    assert neg.receive([("TargetPortalGroupTag", "1"), ("TargetAlias", "disk")]) == []
    with pytest.raises(RemoteProtocolError, match=r"TargetPortalGroupTag: negotiated twice \('1', then '2'\)"):
        neg.receive([("TargetPortalGroupTag", "2")])


def test_answer_then_repeat_is_refused() -> None:
    neg = Negotiator()
    neg.offers()
    neg.receive([("MaxBurstLength", "4096")])
    with pytest.raises(RemoteProtocolError, match=r"MaxBurstLength: negotiated twice \('4096', then '4096'\)"):
        neg.receive([("MaxBurstLength", "4096")])


def test_security_and_identity_keys_are_not_ours() -> None:
    for key in ("AuthMethod", "CHAP_A", "TargetName", "SessionType"):
        with pytest.raises(LocalProtocolError, match=key):
            Negotiator().receive([(key, "x")])


def test_target_declarations() -> None:
    neg = Negotiator()
    neg.offers()
    neg.receive([("TargetPortalGroupTag", "1"), ("TargetAlias", "disk one"), ("MaxRecvDataSegmentLength", "0x2000")])
    result = neg.finish()
    assert result.target_declared == {"TargetPortalGroupTag": "1", "TargetAlias": "disk one",
                                      "MaxRecvDataSegmentLength": "8192"}  # fmt: skip
    assert result.target_max_recv_data_segment_length == 8192
    assert result.values["MaxRecvDataSegmentLength"] == "262144"  # ours, as declared


def test_unanswered_offers_keep_the_default() -> None:
    neg = Negotiator()
    neg.offers()
    neg.receive([("MaxBurstLength", "65536")])
    assert "InitialR2T" in neg.unanswered()
    values = neg.finish().values
    assert values["InitialR2T"] == "Yes"  # the RFC default, not our unanswered No
    assert values["MaxBurstLength"] == "65536"


def test_without_declaration_our_receive_limit_is_the_default() -> None:
    assert Negotiator().finish().values["MaxRecvDataSegmentLength"] == "8192"


def test_first_burst_above_max_burst_is_refused() -> None:
    neg = Negotiator(Offers(max_burst_length=262144, first_burst_length=262144))
    neg.offers()
    neg.receive([("MaxBurstLength", "1024"), ("FirstBurstLength", "4096")])
    with pytest.raises(RemoteProtocolError, match="FirstBurstLength: 4096 exceeds MaxBurstLength 1024"):
        neg.finish()


def test_typed_accessors() -> None:
    neg = Negotiator(Offers(header_digest=("CRC32C",), data_digest=("CRC32C", "None")))
    _answer_all(neg, {"DataDigest": "None"})
    result = neg.finish()
    assert result.header_digest and not result.data_digest
    assert result.number("MaxBurstLength") == 262144
    assert result.flag("ImmediateData") is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"header_digest": ()}, "HeaderDigest"),
        ({"data_digest": ("MD5",)}, "DataDigest"),
        ({"header_digest": ("None", "None")}, "HeaderDigest"),
        ({"max_recv_data_segment_length": 100}, "MaxRecvDataSegmentLength: 100 outside"),
        ({"first_burst_length": 524288}, "FirstBurstLength: 524288 exceeds MaxBurstLength"),
        ({"error_recovery_level": 3}, "ErrorRecoveryLevel"),
    ],
)
def test_bad_offers(kwargs: dict, message: str) -> None:
    with pytest.raises(LocalProtocolError, match=message):
        Offers(**kwargs)


def test_offers_once() -> None:
    neg = Negotiator()
    neg.offers()
    with pytest.raises(LocalProtocolError):
        neg.offers()


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("8192", 8192), ("0x2000", 8192), ("0X10", 16)])
def test_parse_number(text: str, value: int) -> None:
    assert parse_number("K", text) == value


@pytest.mark.parametrize(
    "text",
    ["", "0x", "1e3", " 1", "+1", "1_0", "8192\n", "0x" + "f" * 17, "9" * 21, "١٢", "²", "8²", "0x²", "٨١٩٢"],
)
def test_parse_number_refuses(text: str) -> None:
    with pytest.raises(RemoteValueError) as info:
        parse_number("K", text)
    assert info.value.field == "key K" and info.value.exit_status is ExitStatus.ISCSI_REFUSED


_NON_ASCII_DIGIT = st.characters(categories=["Nd", "No", "Nl"]).filter(lambda c: not c.isascii())
_WITH_NON_ASCII_DIGIT = st.builds(
    lambda before, digit, after: before + digit + after,
    st.sampled_from(["", "0x", "8", "1"]),
    _NON_ASCII_DIGIT,
    st.text(alphabet="0123456789", max_size=3),
)
_NUMERIC_KEYS = sorted(k for k, s in KEYS.items() if s.rule in (Rule.MIN, Rule.MAX, Rule.DECLARE_NUMBER))


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_NUMERIC_KEYS), _WITH_NON_ASCII_DIGIT, st.booleans())
def test_a_number_with_a_non_ascii_digit_is_refused_naming_the_key(key: str, text: str, as_answer: bool) -> None:
    """Offer, answer or declaration: never an int() surprise, always the key named, always the target's fault."""
    neg = Negotiator()
    if as_answer:
        neg.offers()
    with pytest.raises(RemoteValueError) as info:
        neg.receive([(key, text)])
    assert info.value.field == f"key {key}"


# ---- a target flooding us with keys we do not know ------------------------------------------------------------


def _unknown(count: int, width: int = 10) -> list[tuple[str, str]]:
    return [(f"X-k{n:0{width - 3}d}", "v") for n in range(count)]


def test_unknown_keys_within_the_budget_are_each_answered() -> None:
    fits = MAX_NOT_UNDERSTOOD_BYTES // len("X-k0000000=NotUnderstood\0")
    pairs = _unknown(fits)
    assert Negotiator().receive(pairs) == [(k, "NotUnderstood") for k, _ in pairs]


@pytest.mark.parametrize("count", [MAX_NOT_UNDERSTOOD_BYTES // 25 + 1, 500, 5000])
def test_a_key_flood_is_the_targets_fault_and_names_the_cause(count: int) -> None:
    with pytest.raises(RemoteProtocolError) as info:
        Negotiator().receive(_unknown(count))
    assert info.value.exit_status is ExitStatus.ISCSI_REFUSED  # not BAD_INPUT: the input is the target's
    assert f"the target sent {count} keys we do not understand" in str(info.value)
    assert "first unknown key: X-k0000000" in str(info.value)


def test_the_budget_is_per_response_and_keeps_the_answer_within_a_login_pdu() -> None:
    neg = Negotiator()
    fits = MAX_NOT_UNDERSTOOD_BYTES // 25
    first = neg.receive(_unknown(fits))
    second = neg.receive([(f"X-z{n:07d}", "v") for n in range(fits)])
    answer = encode_text(first + neg.offers())
    assert len(answer) <= LOGIN_MAX_DATA_SEGMENT and len(second) == fits


def test_every_key_spec_is_sane() -> None:
    for name, spec in KEYS.items():
        assert spec.name == name
        if spec.rule in (Rule.MIN, Rule.MAX):
            assert spec.lo <= int(spec.default) <= spec.hi
        if spec.rule is Rule.LIST:
            assert spec.default in spec.values


_KEY_NAMES = [*sorted(KEYS), "X-foo", "IFMarkInt"]


@settings(max_examples=300, deadline=None)
@given(
    st.booleans(),
    st.lists(
        st.tuples(
            st.sampled_from(_KEY_NAMES),
            st.one_of(
                st.sampled_from(["Yes", "No", "None", "CRC32C", "Reject", "Irrelevant", "NotUnderstood", "0x10"]),
                st.integers(-5, 1 << 25).map(str),
                st.text(max_size=10),
            ),
        ),
        max_size=12,
    ),
)
def test_random_target_keys_give_typed_errors_only(offer_first: bool, pairs: list[tuple[str, str]]) -> None:
    neg = Negotiator()
    if offer_first:
        neg.offers()
    try:
        neg.receive(pairs)
        neg.finish()
    except PyiscsiError:
        pass


def _legal_answer(key: str, offered: str) -> st.SearchStrategy[str]:
    """Every answer the key's rule allows to our offer (RFC 7143 6.2), as a target might give it."""
    spec = KEYS[key]
    if spec.rule is Rule.LIST:
        return st.sampled_from(offered.split(","))
    if spec.rule is Rule.AND:
        return st.sampled_from(["Yes", "No"] if offered == "Yes" else ["No"])
    if spec.rule is Rule.OR:
        return st.sampled_from(["Yes"] if offered == "Yes" else ["Yes", "No"])
    low, high = (spec.lo, int(offered)) if spec.rule is Rule.MIN else (int(offered), spec.hi)
    return st.integers(low, high).flatmap(lambda n: st.sampled_from([str(n), hex(n)]))


_OFFER_SETS = st.builds(
    Offers,
    header_digest=st.sampled_from([("None",), ("CRC32C",), ("CRC32C", "None"), ("None", "CRC32C")]),
    data_digest=st.sampled_from([("None",), ("CRC32C", "None")]),
    initial_r2t=st.booleans(),
    immediate_data=st.booleans(),
    max_burst_length=st.sampled_from([8192, 65536, 262144, (1 << 24) - 1]),
    first_burst_length=st.sampled_from([512, 8192]),
    default_time2wait=st.integers(0, 3600),
    error_recovery_level=st.integers(0, 2),
)


@settings(max_examples=300, deadline=None)
@given(_OFFER_SETS, st.booleans(), st.data())
def test_every_legal_answer_is_accepted_and_becomes_the_result(offers: Offers, discovery: bool, data) -> None:
    neg = Negotiator(offers, discovery=discovery)
    sent = [(k, v) for k, v in neg.offers() if k in neg.unanswered()]
    answers = {k: data.draw(_legal_answer(k, v), label=k) for k, v in sent}
    assert neg.receive(list(answers.items())) == []
    first, most = answers.get("FirstBurstLength"), answers.get("MaxBurstLength")
    if first and most and int(first, 0) > int(most, 0):
        with pytest.raises(RemoteProtocolError, match="FirstBurstLength"):
            neg.finish()  # each answer is legal alone, together they break RFC 7143 13.14
        return
    values = neg.finish().values
    for key, answer in answers.items():
        assert values[key] == (str(int(answer, 0)) if answer[:1].isdigit() else answer)


@pytest.mark.parametrize(
    ("value", "offer"),
    [
        ("None", ("None",)),
        ("CRC32C", ("CRC32C",)),
        ("CRC32C,None", ("CRC32C", "None")),
        ("None, CRC32C", ("None", "CRC32C")),
    ],
)
def test_digest_offers_as_iscsiadm_writes_them(value, offer):
    assert digest_offer("HeaderDigest", value) == offer


@pytest.mark.parametrize("value", ["", "crc32c", "CRC32C,CRC32C", "None,,CRC32C", "MD5"])
def test_a_digest_that_is_no_offer_names_the_key_and_value(value):
    with pytest.raises(BadInputError) as info:
        digest_offer("DataDigest", value)
    assert "DataDigest" in str(info.value) and repr(value) in str(info.value)
