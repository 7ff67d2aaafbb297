"""initiator.codes: IntCode and Code behave as enum.IntEnum and enum.Enum for the same class bodies, in every
way the library uses them; importing the module imports nothing."""

from __future__ import annotations

import copy
import enum
import importlib
import json
import pickle
import pkgutil
import struct
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import initiator
from initiator.codes import Code, IntCode

ROOT = Path(__file__).resolve().parents[2]


def _int_sample(base: type) -> Any:
    """One class body, made into an IntEnum and an IntCode."""

    class Mixin(base):  # a base without members: methods only
        def describe(self) -> str:
            return f"{self.name}={self.value}"

    class Sample(Mixin):
        """Doc."""

        ZERO = 0
        ONE = 1
        TWO = 2
        BIG = 0x3F
        ALIAS = 1  # an alias of ONE
        __hidden = 9  # a private (mangled) name: an attribute

        def double(self) -> int:
            return self * 2

        @property
        def lower(self) -> str:
            return self.name.lower()

        @classmethod
        def of(cls, value: int) -> Any:
            try:
                return cls(value)
            except ValueError:
                return value

        @staticmethod
        def helper() -> str:
            return "static"

    return Sample


def _plain_sample(base: type) -> Any:
    """One class body, made into an Enum and a Code."""

    class Mixin(base):
        def describe(self) -> str:
            return f"{self.name}={self.value}"

    class Sample(Mixin):
        ONE = "one"
        TWO = "two"
        THREE = "three, with words"
        SAME = "one"  # an alias of ONE
        __hidden = 9

        @property
        def upper(self) -> str:
            return self.value.upper()

    return Sample


def _other(base: type) -> Any:
    class Other(base):
        ONE = 1

    return Other


def _named(cls: Any, qualname: str) -> Any:
    cls.__qualname__ = qualname  # where pickle finds the class; repr and str use __name__, "Sample" for both
    return cls


EnumInt = _named(_int_sample(enum.IntEnum), "EnumInt")
CodesInt = _named(_int_sample(IntCode), "CodesInt")
EnumPlain = _named(_plain_sample(enum.Enum), "EnumPlain")
CodesPlain = _named(_plain_sample(Code), "CodesPlain")
INT_PAIR = (EnumInt, CodesInt, _other(enum.IntEnum), _other(IntCode))
PLAIN_PAIR = (EnumPlain, CodesPlain, _other(enum.Enum), _other(Code))


def _shape(result: object) -> object:
    """A result made comparable across the two kinds: a member by its class's name and its name."""
    if isinstance(result, (enum.Enum, IntCode, Code)):
        return ("member", type(result).__name__, result.name)
    if isinstance(result, (list, tuple)):
        return [_shape(item) for item in result]
    return result


def _outcome(case: Callable[[Any, Any], object], cls: Any, other: Any) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.11's enum warns of 3.12's `x in Cls`
            return ("=", _shape(case(cls, other)))
    except ValueError as exc:  # "5 is not a valid Opcode": the same message
        return ("raises", "ValueError", str(exc).replace(cls.__qualname__, "Sample"))
    except Exception as exc:  # the same kind of error (messages name enum's own classes)
        return ("raises", type(exc).__name__)


def _extend(cls: Any) -> type:
    class Sub(cls):
        NEW = 9

    return Sub


def _match(member: object, cls: Any) -> str:
    match member:
        case cls.ONE:
            return "one"
        case cls.TWO:
            return "two"
        case _:
            return "other"


# What a member and its class do, the same whichever the kind: (what, case(cls, other)).
COMMON = [
    ("attribute", lambda c, o: c.ONE),
    ("call with a value", lambda c, o: c(c.ONE.value)),
    ("call with the member", lambda c, o: c(c.TWO) is c.TWO),
    ("call with a value no member has", lambda c, o: c(5)),
    ("call with an unhashable value", lambda c, o: c([1])),
    ("call with None", lambda c, o: c(None)),
    ("call with nothing", lambda c, o: c()),
    ("call with another class's member", lambda c, o: c(o.ONE)),
    ("name", lambda c, o: c.TWO.name),
    ("value", lambda c, o: c.TWO.value),
    ("type of value", lambda c, o: type(c.TWO.value).__name__),
    ("iteration in definition order", lambda c, o: list(c)),
    ("len", lambda c, o: len(c)),
    ("bool of the class", lambda c, o: bool(c)),
    ("member in its class", lambda c, o: c.ONE in c),
    ("another class's member in the class", lambda c, o: o.ONE in c),
    ("a value in the class (3.11: TypeError)", lambda c, o: c.ONE.value in c),
    ("isinstance of its class", lambda c, o: isinstance(c.ONE, c)),
    ("isinstance of another class", lambda c, o: isinstance(c.ONE, o)),
    ("repr", lambda c, o: repr(c.TWO)),
    ("str", lambda c, o: str(c.TWO)),
    ("format", lambda c, o: format(c.TWO)),
    ("format with a width", lambda c, o: format(c.TWO, ">14")),
    ("f-string", lambda c, o: f"{c.TWO} {c.ONE!r} {c.ONE!s}"),
    ("%-formatting", lambda c, o: "%s %r" % (c.TWO, c.TWO)),  # noqa: UP031  (the operator is what is tested)
    ("alias is the first member", lambda c, o: (c.ALIAS if hasattr(c, "ALIAS") else c.SAME) is c.ONE),
    ("alias neither iterated nor counted", lambda c, o: [m.name for m in c]),
    ("equal to itself", lambda c, o: c.ONE == c.ONE),
    ("unequal to another member", lambda c, o: c.ONE != c.TWO),
    ("equal to its value", lambda c, o: c.ONE.value == c.ONE),
    ("dict key", lambda c, o: {c.ONE: "a", c.TWO: "b"}[c.TWO]),
    ("dict key looked up by value", lambda c, o: {c.ONE: "a"}.get(c.ONE.value)),
    ("set of members", lambda c, o: len({c.ONE, c.TWO, c.ONE})),
    ("match statement", lambda c, o: [_match(c.ONE, c), _match(c.TWO, c)]),
    ("reassign a member", lambda c, o: setattr(c, "ONE", 7)),
    ("delete a member", lambda c, o: delattr(c, "ONE")),
    ("set a member's name", lambda c, o: setattr(c.ONE, "name", "X")),
    ("set a member's value", lambda c, o: setattr(c.ONE, "value", 7)),
    ("a class attribute that is no member", lambda c, o: (setattr(c, "extra", 3), c.extra, delattr(c, "extra"))),
    ("private name stays an attribute", lambda c, o: c._Sample__hidden),
    ("method of a base without members", lambda c, o: c.TWO.describe()),
    ("extend a class with members", lambda c, o: _extend(c)),
    ("copy", lambda c, o: copy.copy(c.TWO) is c.TWO),
    ("deepcopy", lambda c, o: copy.deepcopy([c.TWO])[0] is c.TWO),
    ("pickle", lambda c, o: pickle.loads(pickle.dumps(c.TWO)) is c.TWO),
    ("class name", lambda c, o: c.__name__),
    ("docstring", lambda c, o: c.__doc__),
]

INT_ONLY = [
    ("int value", lambda c, o: c(2)),
    ("bool of a zero member", lambda c, o: bool(c.ZERO)),
    ("isinstance of int", lambda c, o: isinstance(c.ONE, int)),
    ("hex format", lambda c, o: f"{c.BIG:x} {c.BIG:#04x} {c.BIG:5d}"),
    ("%d", lambda c, o: "%d|%x" % (c.BIG, c.BIG)),  # noqa: UP031
    ("arithmetic gives ints", lambda c, o: (c.TWO + 1, type(c.TWO + 1).__name__, c.BIG & 0x0F, -c.ONE)),
    ("ordering", lambda c, o: sorted([c.BIG, c.TWO, c.ZERO, c.ONE])),
    ("equal to another class's member of that value", lambda c, o: c.ONE == o.ONE),
    ("hash of the number", lambda c, o: hash(c.BIG) == hash(0x3F)),
    ("struct.pack", lambda c, o: struct.pack(">BH", c.TWO, c.BIG)),
    ("json.dumps", lambda c, o: json.dumps({c.ONE: [c.TWO, c.BIG]})),
    ("int()", lambda c, o: (int(c.BIG), type(int(c.BIG)).__name__)),
    ("index", lambda c, o: ["a", "b", "c"][c.TWO]),
    ("call with a float or a bool", lambda c, o: (c(2.0), c(True))),
    ("call with a numeric string", lambda c, o: c("1")),
    ("method", lambda c, o: c.TWO.double()),
    ("property", lambda c, o: c.TWO.lower),
    ("classmethod", lambda c, o: (c.of(2), c.of(7))),
    ("staticmethod", lambda c, o: c.helper()),
    (
        "descriptors stay what they are",
        lambda c, o: [type(vars(c)[n]).__name__ for n in ("double", "lower", "of", "helper")],
    ),
]

PLAIN_ONLY = [
    ("str value", lambda c, o: c("two")),
    ("bool of a member", lambda c, o: bool(c.ONE)),
    ("unequal to another class's member", lambda c, o: c.ONE == o.ONE),
    ("ordering is refused", lambda c, o: c.ONE < c.TWO),
    ("call with a value of another type", lambda c, o: c(1)),
    ("property", lambda c, o: c.THREE.upper),
    ("isinstance of str", lambda c, o: isinstance(c.ONE, str)),
]


@pytest.mark.parametrize(("what", "case"), COMMON + INT_ONLY, ids=[w for w, _ in COMMON + INT_ONLY])
def test_int_code_as_int_enum(what: str, case: Callable[[Any, Any], object]) -> None:
    theirs, ours, their_other, our_other = INT_PAIR
    assert _outcome(case, ours, our_other) == _outcome(case, theirs, their_other)


@pytest.mark.parametrize(("what", "case"), COMMON + PLAIN_ONLY, ids=[w for w, _ in COMMON + PLAIN_ONLY])
def test_code_as_enum(what: str, case: Callable[[Any, Any], object]) -> None:
    theirs, ours, their_other, our_other = PLAIN_PAIR
    assert _outcome(case, ours, our_other) == _outcome(case, theirs, their_other)


def test_the_table_sees_what_it_should() -> None:
    """A few outcomes spelled out, so that two equally wrong classes cannot pass the comparisons."""
    assert str(CodesInt.TWO) == "2" and repr(CodesInt.TWO) == "<Sample.TWO: 2>" and f"{CodesInt.BIG:x}" == "3f"
    assert str(CodesPlain.TWO) == "Sample.TWO" and repr(CodesPlain.TWO) == "<Sample.TWO: 'two'>"
    assert [m.name for m in CodesInt] == ["ZERO", "ONE", "TWO", "BIG"] and CodesInt.ALIAS is CodesInt.ONE
    with pytest.raises(ValueError, match=r"^5 is not a valid CodesInt$"):
        CodesInt(5)
    with pytest.raises(ValueError, match=r"^'five' is not a valid CodesPlain$"):
        CodesPlain("five")
    assert json.dumps([CodesInt.BIG]) == "[63]" and struct.pack("B", CodesInt.BIG) == b"?"


_VALUES = st.one_of(
    st.integers(-3, 70),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.sampled_from(["one", "two", "three, with words", "1"]),
    st.lists(st.integers(), max_size=2),
    st.binary(max_size=3),
)


@given(_VALUES)
def test_a_value_gives_the_member_or_the_value_error_enum_gives(value: object) -> None:
    for theirs, ours, their_other, our_other in (INT_PAIR, PLAIN_PAIR):
        assert _outcome(lambda c, o: c(value), ours, our_other) == _outcome(lambda c, o: c(value), theirs, their_other)


def test_underscore_names_are_never_members() -> None:
    """Where this module differs from enum on purpose: enum makes `_single` a member; here it stays a class
    attribute (a helper table, say). No class of the library has such a name."""

    class Table(Code):
        A = "a"
        _WORDS = {"a": "ay"}

    assert list(Table) == [Table.A] and Table._WORDS == {"a": "ay"}


@pytest.mark.parametrize("hook", ["_missing_", "_ignore_", "_order_", "_generate_next_value_"])
def test_enum_hooks_are_refused(hook: str) -> None:
    """A body that names one of enum's hooks expects enum's behaviour: refused, rather than silently ignored."""
    with pytest.raises(TypeError, match=hook):
        type(Code)("Hooked", (Code,), {"__module__": __name__, "__qualname__": "Hooked", "A": "a", hook: None})


def test_members_take_no_attributes_at_all() -> None:
    """enum lets a member take new attributes (only name and value are read-only); here a member is immutable."""
    with pytest.raises(AttributeError, match="immutable"):
        CodesInt.ONE.note = "x"  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="immutable"):
        del CodesPlain.ONE.name


def _run(code: str) -> str:
    """`code` run by a fresh interpreter, as the frozen tree runs one: isolated, without site."""
    script = f"import sys; sys.path.insert(0, {str(ROOT)!r}); {code}"
    done = subprocess.run([sys.executable, "-I", "-S", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_codes_imports_no_other_module() -> None:
    """Besides the package and itself, only `__future__` (what `from __future__ import annotations` loads)."""
    out = _run("before = set(sys.modules); import initiator.codes; print(sorted(set(sys.modules) - before))")
    assert out == str(sorted(["__future__", "initiator", "initiator.codes"]))


def test_the_protocol_modules_of_discover_import_no_enum() -> None:
    """initiator.login is left out (so is initiator.client): it imports chap and negotiation, whose `re` imports
    enum; when `re` leaves them, login joins this list."""
    out = _run(
        "import initiator.pdu, initiator.status, initiator.session, initiator.errors, initiator.codes;"
        " print('enum' in sys.modules)"
    )
    assert out == "False"


def test_the_library_has_one_kind_of_code_type() -> None:
    """Every code class of initiator/ is an IntCode or a Code; only a flag type stays on enum (no Flag here)."""
    on_enum = []
    for info in pkgutil.iter_modules(initiator.__path__, "initiator."):
        module = importlib.import_module(info.name)
        on_enum += [
            f"{info.name}.{name}"
            for name, value in vars(module).items()
            if isinstance(value, type) and issubclass(value, enum.Enum) and value.__module__ == info.name
        ]
    assert sorted(set(on_enum)) == ["initiator.ibft.IbftFlags"]
