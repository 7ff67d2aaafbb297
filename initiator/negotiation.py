"""Operational key negotiation during login (RFC 7143 sections 6 and 13), from the initiator's side.

Each key is declared once in `KEYS` with its real rule, so the table reads against section 13:
  list      the responder picks the first value of the originator's list it supports (HeaderDigest, ...)
  and / or  boolean AND or OR of both sides (ImmediateData is AND, InitialR2T is OR)
  min / max numerical: the result is the smaller (larger) of offer and answer (DefaultTime2Wait is max)
  declare   declarative: each side states its own value, nobody answers (MaxRecvDataSegmentLength, TPGT)
Besides a value, an answer may be Reject (the key keeps its default), Irrelevant (not used given other keys)
or NotUnderstood (an unknown key). Keys marked leading-only (LO) are negotiated only on a session's leading
connection; keys irrelevant in a discovery session are neither offered there nor accepted from the target.

`Negotiator` keeps track of what we offered, checks each answer against the rule (an answer a rule forbids
is a RemoteProtocolError naming key and values), answers the target's own offers, refuses a key settled twice,
and at the end fills defaults for everything not negotiated. Security keys (AuthMethod, CHAP_*) belong to
`login.py`/`chap.py`; identity keys (InitiatorName, TargetName, SessionType) to `login.py`.

Public API
    Offers (frozen): what we propose; digests as preference lists, e.g. Offers(header_digest=("CRC32C", "None"))
    KeySpec, Rule, KEYS, SECURITY_KEYS, IDENTITY_KEYS
    Negotiator(offers, *, discovery=False, leading=True)
        .offers() -> list[(key, value)]   (our operational proposals and declarations; call once)
        .receive(pairs) -> list[(key, value)]   (answers to the target's offers; RemoteProtocolError on a bad answer)
        .unanswered() -> list[str]
        .finish() -> Negotiated
    Negotiated (frozen): .values: dict RFC key -> canonical value (every relevant key, defaults filled),
        .target_declared: dict of the target's declarations (TargetAlias, TargetPortalGroupTag,
        MaxRecvDataSegmentLength, ...), typed accessors (.max_burst_length, .header_digest ...)
    parse_number(key, text) -> int   decimal (ASCII digits) or 0x-hex, RemoteValueError naming the key
    MAX_NOT_UNDERSTOOD_BYTES         NotUnderstood answers one response may cost us; more is the target's error
"""

from __future__ import annotations

from types import MappingProxyType

from initiator.alphabet import is_hex_literal
from initiator.codes import Code
from initiator.errors import BadInputError, LocalProtocolError, RemoteProtocolError, RemoteValueError
from initiator.numbers import decimal
from initiator.record import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

REJECT = "Reject"
IRRELEVANT = "Irrelevant"
NOT_UNDERSTOOD = "NotUnderstood"
SPECIAL_ANSWERS = frozenset({REJECT, IRRELEVANT, NOT_UNDERSTOOD})

SECURITY_KEYS = frozenset({"AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R"})
IDENTITY_KEYS = frozenset({"InitiatorName", "InitiatorAlias", "TargetName", "SessionType"})


class Rule(Code):
    LIST = "list"
    AND = "and"
    OR = "or"
    MIN = "min"
    MAX = "max"
    DECLARE = "declare"  # declarative, free text
    DECLARE_NUMBER = "declare-number"  # declarative, a number within lo..hi


@record
class KeySpec:
    name: str
    rule: Rule
    default: str | None
    lo: int = 0
    hi: int = 0
    values: tuple[str, ...] = ()  # for LIST: every value the RFC defines
    leading_only: bool = False
    in_discovery: bool = True  # False: Irrelevant when SessionType=Discovery
    from_target: bool = True  # the target may send it


_MAX_24 = (1 << 24) - 1
MAX_NUMBER = (1 << 64) - 1  # the largest numerical value RFC 7143 5.1 allows

KEYS: Mapping[str, KeySpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            KeySpec("HeaderDigest", Rule.LIST, "None", values=("None", "CRC32C")),
            KeySpec("DataDigest", Rule.LIST, "None", values=("None", "CRC32C")),
            KeySpec("MaxConnections", Rule.MIN, "1", 1, 65535, leading_only=True, in_discovery=False),
            KeySpec("TargetAlias", Rule.DECLARE, None),
            KeySpec("TargetAddress", Rule.DECLARE, None),
            KeySpec("TargetPortalGroupTag", Rule.DECLARE_NUMBER, None, 0, 65535),
            KeySpec("InitialR2T", Rule.OR, "Yes", leading_only=True, in_discovery=False),
            KeySpec("ImmediateData", Rule.AND, "Yes", leading_only=True, in_discovery=False),
            KeySpec("MaxRecvDataSegmentLength", Rule.DECLARE_NUMBER, "8192", 512, _MAX_24),
            KeySpec("MaxBurstLength", Rule.MIN, "262144", 512, _MAX_24, leading_only=True, in_discovery=False),
            KeySpec("FirstBurstLength", Rule.MIN, "65536", 512, _MAX_24, leading_only=True, in_discovery=False),
            KeySpec("DefaultTime2Wait", Rule.MAX, "2", 0, 3600, leading_only=True),
            KeySpec("DefaultTime2Retain", Rule.MIN, "20", 0, 3600, leading_only=True),
            KeySpec("MaxOutstandingR2T", Rule.MIN, "1", 1, 65535, leading_only=True, in_discovery=False),
            KeySpec("DataPDUInOrder", Rule.OR, "Yes", leading_only=True, in_discovery=False),
            KeySpec("DataSequenceInOrder", Rule.OR, "Yes", leading_only=True, in_discovery=False),
            KeySpec("ErrorRecoveryLevel", Rule.MIN, "0", 0, 2, leading_only=True),
            KeySpec(
                "TaskReporting",
                Rule.LIST,
                "RFC3720",
                values=("RFC3720", "ResponseFence", "FastAbort"),
                leading_only=True,
                in_discovery=False,
            ),
            KeySpec("iSCSIProtocolLevel", Rule.MIN, "1", 0, 31, leading_only=True),
            # Markers were dropped by RFC 7143; RFC 3720 targets may still offer them: we always say No.
            KeySpec("IFMarker", Rule.AND, "No"),
            KeySpec("OFMarker", Rule.AND, "No"),
        )
    }
)

# Keys answered Irrelevant rather than negotiated: marker intervals, pointless with markers off.
_ALWAYS_IRRELEVANT = frozenset({"IFMarkInt", "OFMarkInt"})

# Bytes of NotUnderstood answers we give to one response. Known keys are answered at most once each and our
# own offers take a few hundred bytes, so this keeps a whole Login Request within 8192 (RFC 7143 6.2).
MAX_NOT_UNDERSTOOD_BYTES = 4096


def _first_unknown(pairs: list[tuple[str, str]]) -> str:
    return next((k for k, _ in pairs if k not in KEYS and k not in _ALWAYS_IRRELEVANT), "?")


# List values we support, per key (the rest of the RFC's values we decline).
MAX_HEX_DIGITS = 16  # a 64-bit number (RFC 7143 5.1's hex-constant of a numerical value)

_SUPPORTED_LIST_VALUES = {
    "HeaderDigest": ("None", "CRC32C"),
    "DataDigest": ("None", "CRC32C"),
    "TaskReporting": ("RFC3720",),
}


def parse_number(key: str, text: str) -> int:
    """A numerical value: decimal (ASCII digits), or hex with 0x (RFC 7143 5.1); RemoteValueError naming the key."""
    number = decimal(text, 0, MAX_NUMBER)
    if number is not None:
        return number
    if is_hex_literal(text, MAX_HEX_DIGITS):
        return int(text[2:], 16)
    raise RemoteValueError(f"key {key}", None, f"{text[:40]!r} is not a number (ASCII decimal digits, or 0x-hex)")


def _bool(key: str, text: str) -> bool:
    if text == "Yes":
        return True
    if text == "No":
        return False
    raise RemoteProtocolError(f"key {key}: {text[:40]!r} is neither Yes nor No")


def _yes_no(value: bool) -> str:
    return "Yes" if value else "No"


DIGESTS = ("None", "CRC32C")


def digest_offer(name: str, value: str) -> tuple[str, ...]:
    """What we offer for HeaderDigest/DataDigest: `CRC32C`, `None`, or a preference list as iscsiadm writes it
    (`CRC32C,None`)."""
    offer = tuple(part.strip() for part in value.split(","))
    if any(part not in DIGESTS for part in offer) or len(set(offer)) != len(offer):
        raise BadInputError(name, value, "must be None, CRC32C, or both in order of preference (CRC32C,None)")
    return offer


@record
class Offers:
    """What we propose (normal session, leading connection). Digests are preference-ordered lists."""

    header_digest: tuple[str, ...] = ("None",)
    data_digest: tuple[str, ...] = ("None",)
    max_recv_data_segment_length: int = 262144
    max_connections: int = 1
    initial_r2t: bool = False
    immediate_data: bool = True
    max_burst_length: int = 262144
    first_burst_length: int = 65536
    default_time2wait: int = 2
    default_time2retain: int = 0
    max_outstanding_r2t: int = 1
    data_pdu_in_order: bool = True
    data_sequence_in_order: bool = True
    error_recovery_level: int = 0

    def __post_init__(self) -> None:
        for key, prefs in (("HeaderDigest", self.header_digest), ("DataDigest", self.data_digest)):
            if not prefs or any(v not in ("None", "CRC32C") for v in prefs) or len(set(prefs)) != len(prefs):
                raise LocalProtocolError(f"offer {key}: {prefs!r} must list None and/or CRC32C once each")
        for spec_name, value in self._numbers().items():
            spec = KEYS[spec_name]
            if not spec.lo <= value <= spec.hi:
                raise LocalProtocolError(f"offer {spec_name}: {value} outside {spec.lo}..{spec.hi}")
        if self.first_burst_length > self.max_burst_length:
            raise LocalProtocolError(
                f"offer FirstBurstLength: {self.first_burst_length} exceeds MaxBurstLength {self.max_burst_length}"
            )

    def _numbers(self) -> dict[str, int]:
        return {
            "MaxRecvDataSegmentLength": self.max_recv_data_segment_length,
            "MaxConnections": self.max_connections,
            "MaxBurstLength": self.max_burst_length,
            "FirstBurstLength": self.first_burst_length,
            "DefaultTime2Wait": self.default_time2wait,
            "DefaultTime2Retain": self.default_time2retain,
            "MaxOutstandingR2T": self.max_outstanding_r2t,
            "ErrorRecoveryLevel": self.error_recovery_level,
        }

    def value(self, key: str) -> str:
        """Our value for a key in RFC spelling (a comma list for list keys), used for offers and answers."""
        numbers = self._numbers()
        if key in numbers:
            return str(numbers[key])
        booleans = {
            "InitialR2T": self.initial_r2t,
            "ImmediateData": self.immediate_data,
            "DataPDUInOrder": self.data_pdu_in_order,
            "DataSequenceInOrder": self.data_sequence_in_order,
            "IFMarker": False,
            "OFMarker": False,
        }
        if key in booleans:
            return _yes_no(booleans[key])
        if key == "HeaderDigest":
            return ",".join(self.header_digest)
        if key == "DataDigest":
            return ",".join(self.data_digest)
        if key == "iSCSIProtocolLevel":
            return "1"
        if key == "TaskReporting":
            return "RFC3720"
        raise LocalProtocolError(f"offer: no value of ours for key {key}")


# Order of our operational offers (the order open-iscsi and most targets expect to read them in).
_OFFER_ORDER = (
    "HeaderDigest",
    "DataDigest",
    "MaxConnections",
    "InitialR2T",
    "ImmediateData",
    "MaxRecvDataSegmentLength",
    "MaxBurstLength",
    "FirstBurstLength",
    "DefaultTime2Wait",
    "DefaultTime2Retain",
    "MaxOutstandingR2T",
    "DataPDUInOrder",
    "DataSequenceInOrder",
    "ErrorRecoveryLevel",
)


@record
class Negotiated:
    """The outcome: every relevant key with its final value, and what the target declared about itself."""

    values: Mapping[str, str]
    target_declared: Mapping[str, str] = field(default_factory=dict)

    def number(self, key: str) -> int:
        return int(self.values[key])

    def flag(self, key: str) -> bool:
        return self.values[key] == "Yes"

    @property
    def header_digest(self) -> bool:
        return self.values.get("HeaderDigest") == "CRC32C"

    @property
    def data_digest(self) -> bool:
        return self.values.get("DataDigest") == "CRC32C"

    @property
    def target_max_recv_data_segment_length(self) -> int:
        """Our transmit limit: the target's declaration, or the RFC default 8192 if it declared none."""
        return int(self.target_declared.get("MaxRecvDataSegmentLength", "8192"))


class Negotiator:
    """Offers, answers and checks the operational keys of one login."""

    def __init__(self, offers: Offers | None = None, *, discovery: bool = False, leading: bool = True) -> None:
        self.proposal = offers or Offers()
        self.discovery = discovery
        self.leading = leading
        self._offered: dict[str, str] = {}  # key -> what we sent, awaiting the target's answer
        self._settled: dict[str, str] = {}  # key -> final value
        self._declared: dict[str, str] = {}  # the target's declarations
        self._our_declared: dict[str, str] = {}  # ours (MaxRecvDataSegmentLength)
        self._made_offers = False

    def relevant(self, key: str) -> bool:
        spec = KEYS[key]
        return (spec.in_discovery or not self.discovery) and (self.leading or not spec.leading_only)

    # -- our side -------------------------------------------------------------------------------------------
    def offers(self) -> list[tuple[str, str]]:
        """Our operational proposals and declarations, in order. Call once, in the first operational PDU."""
        if self._made_offers:
            raise LocalProtocolError("negotiation: offers() called twice")
        self._made_offers = True
        out = []
        for key in _OFFER_ORDER:
            if not self.relevant(key) or key in self._settled or key in self._our_declared:
                continue  # the target may already have offered it (we answered): do not negotiate twice
            value = self.proposal.value(key)
            if key == "FirstBurstLength" and "MaxBurstLength" in self._settled:
                value = str(min(int(value), int(self._settled["MaxBurstLength"])))  # FirstBurst <= MaxBurst
            if KEYS[key].rule is Rule.DECLARE_NUMBER:
                self._our_declared[key] = value  # our own declaration: final as sent
            else:
                self._offered[key] = value
            out.append((key, value))
        return out

    def unanswered(self) -> list[str]:
        return list(self._offered)

    # -- the target's side ----------------------------------------------------------------------------------
    def receive(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Take the target's keys (answers and offers); return our answers to its offers, in order.

        Every unknown key gets NotUnderstood, within MAX_NOT_UNDERSTOOD_BYTES per response: our answer must fit
        in one Login Request of 8192 bytes, so a target flooding us with keys fails the login (its fault, an
        IscsiError) before we build a request we may not send."""
        given = list(pairs)
        replies: list[tuple[str, str]] = []
        echoed = 0
        for key, value in given:
            if key in SECURITY_KEYS or key in IDENTITY_KEYS:
                raise LocalProtocolError(f"negotiation: key {key} belongs to the login, not to negotiation")
            reply = self._receive_one(key, value)
            if reply is None:
                continue
            if reply == NOT_UNDERSTOOD:
                echoed += len(key) + len(NOT_UNDERSTOOD) + 2  # key=NotUnderstood and its NUL
                if echoed > MAX_NOT_UNDERSTOOD_BYTES:
                    unknown = sum(1 for k, _ in given if k not in KEYS and k not in _ALWAYS_IRRELEVANT)
                    raise RemoteProtocolError(
                        f"negotiation: the target sent {unknown} keys we do not understand in one response; "
                        f"answering NotUnderstood to each would exceed {MAX_NOT_UNDERSTOOD_BYTES} bytes "
                        f"(first unknown key: {_first_unknown(given)})"
                    )
            replies.append((key, reply))
        return replies

    def _receive_one(self, key: str, value: str) -> str | None:
        spec = KEYS.get(key)
        if key in self._offered:
            self._settle(key, self._check_answer(spec, key, self._offered.pop(key), value))
            return None
        if key in self._settled or key in self._declared:
            previous = self._settled.get(key, self._declared.get(key))
            if spec is not None and spec.rule in (Rule.DECLARE, Rule.DECLARE_NUMBER) and previous == value:
                return None  # a declaration repeated unchanged (some targets resend their TPGT): harmless
            raise RemoteProtocolError(f"key {key}: negotiated twice ({previous!r}, then {value!r})")
        if value in SPECIAL_ANSWERS:
            raise RemoteProtocolError(f"key {key}: answer {value!r} to an offer we never made")
        if key in _ALWAYS_IRRELEVANT:
            self._declared[key] = IRRELEVANT  # remember, so a repeat is caught
            return IRRELEVANT
        if spec is None:
            self._declared[key] = NOT_UNDERSTOOD
            return NOT_UNDERSTOOD
        if not spec.from_target:
            raise RemoteProtocolError(f"key {key}: only the initiator may send it")
        if spec.rule in (Rule.DECLARE, Rule.DECLARE_NUMBER):
            if spec.rule is Rule.DECLARE_NUMBER:
                number = parse_number(key, value)
                if not spec.lo <= number <= spec.hi:
                    raise RemoteProtocolError(f"key {key}: {number} outside {spec.lo}..{spec.hi}")
                value = str(number)
            self._declared[key] = value
            return None
        if not self.leading and spec.leading_only:
            raise RemoteProtocolError(f"key {key}: leading-only key offered on a non-leading connection")
        if not self.relevant(key):
            self._declared[key] = IRRELEVANT
            return IRRELEVANT
        answer = self._answer_offer(spec, value)
        if answer != REJECT:
            self._settle(key, answer)
        else:
            self._settle(key, spec.default or "")
        return answer

    def _answer_offer(self, spec: KeySpec, theirs: str) -> str:
        """Our answer to a target offer, by the key's rule (the answer is also the result, unless Reject)."""
        key = spec.name
        ours = self.proposal.value(key)
        if spec.rule is Rule.LIST:
            supported = _SUPPORTED_LIST_VALUES.get(key, spec.values)
            mine = [v for v in ours.split(",") if v in supported]
            for candidate in theirs.split(","):
                if candidate in mine:
                    return candidate
            return REJECT
        if spec.rule is Rule.AND:
            return _yes_no(_bool(key, theirs) and _bool(key, ours))
        if spec.rule is Rule.OR:
            return _yes_no(_bool(key, theirs) or _bool(key, ours))
        number = self._number_in_range(spec, theirs)
        mine_n = int(ours)
        return str(min(number, mine_n) if spec.rule is Rule.MIN else max(number, mine_n))

    def _check_answer(self, spec: KeySpec | None, key: str, offered: str, answer: str) -> str:
        """The result of our offer given the target's answer, or RemoteProtocolError if the rule forbids it."""
        assert spec is not None
        if answer in SPECIAL_ANSWERS:
            default = spec.default or ""
            if spec.rule is Rule.LIST and default not in offered.split(","):
                raise RemoteProtocolError(
                    f"key {key}: target answered {answer} to our {offered!r}, and the default {default!r} is not "
                    "one we accept"
                )
            return default
        if spec.rule is Rule.LIST:
            if "," in answer or answer not in offered.split(","):
                raise RemoteProtocolError(f"key {key}: answer {answer!r} is not one of our offer {offered!r}")
            return answer
        if spec.rule is Rule.AND:
            if _bool(key, answer) and not _bool(key, offered):
                raise RemoteProtocolError(f"key {key}: answer Yes to our No (AND leaves No)")
            return answer
        if spec.rule is Rule.OR:
            if not _bool(key, answer) and _bool(key, offered):
                raise RemoteProtocolError(f"key {key}: answer No to our Yes (OR leaves Yes)")
            return answer
        number = self._number_in_range(spec, answer)
        ours = int(offered)
        if spec.rule is Rule.MIN and number > ours:
            raise RemoteProtocolError(f"key {key}: answer {number} exceeds our offer {ours} (result is the minimum)")
        if spec.rule is Rule.MAX and number < ours:
            raise RemoteProtocolError(f"key {key}: answer {number} is below our offer {ours} (result is the maximum)")
        return str(number)

    @staticmethod
    def _number_in_range(spec: KeySpec, text: str) -> int:
        number = parse_number(spec.name, text)
        if not spec.lo <= number <= spec.hi:
            raise RemoteProtocolError(f"key {spec.name}: {number} outside {spec.lo}..{spec.hi}")
        return number

    def _settle(self, key: str, value: str) -> None:
        self._settled[key] = value

    # -- the end --------------------------------------------------------------------------------------------
    def finish(self) -> Negotiated:
        """Every relevant key's final value (defaults for the rest); offers left unanswered keep the default."""
        values: dict[str, str] = {}
        for key, spec in KEYS.items():
            if spec.rule is Rule.DECLARE or spec.default is None or not self.relevant(key):
                continue
            if key in ("IFMarker", "OFMarker") and key not in self._settled:
                continue  # obsolete: report only if a target brought them up
            if key in ("TaskReporting", "iSCSIProtocolLevel") and key not in self._settled:
                continue  # RFC 7143 additions: report only when negotiated
            values[key] = self._our_declared.get(key, self._settled.get(key, spec.default))
        if "FirstBurstLength" in values and int(values["FirstBurstLength"]) > int(values["MaxBurstLength"]):
            if "FirstBurstLength" not in self._settled or "MaxBurstLength" not in self._settled:
                values["FirstBurstLength"] = values["MaxBurstLength"]  # a default never exceeds a negotiated max
            else:
                first, most = values["FirstBurstLength"], values["MaxBurstLength"]
                raise RemoteProtocolError(f"key FirstBurstLength: {first} exceeds MaxBurstLength {most}")
        declared = {k: v for k, v in self._declared.items() if v not in SPECIAL_ANSWERS}
        return Negotiated(MappingProxyType(values), MappingProxyType(declared))
