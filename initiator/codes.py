"""Named codes without `enum`: `IntCode` is `enum.IntEnum` and `Code` is `enum.Enum` for the classes a
`pyiscsi discover` imports, at a fraction of the import cost.

Why: `enum` imports functools, collections and operator when it is imported, about 3 ms of a by-hand
`pyiscsi discover`'s ~22 ms, and EnumType.__new__ is slow on 3.11 (an _EnumDict per class body and, per member,
descriptor checks, __set_name__ and the value map's bookkeeping: 0.075 ms for a 10-member IntEnum on a host,
0.013 ms here); the 21 code classes of that path cost 2 ms more. Here creating a class reads its body once and
makes each member with one call, with no per-member machinery in the metaclass.

    class Opcode(IntCode): NOP_OUT = 0     members are instances of an int subclass: they compare, hash, sort,
                                           struct.pack and json.dumps as their number; str() and format() are
                                           the number's ("3"), repr() is `<Opcode.NOP_OUT: 0>`
    class Rule(Code): LIST = "list"        members are plain objects compared by identity; str() and format()
                                           give "Rule.LIST", repr() `<Rule.LIST: 'list'>`
    Cls.NAME, member.name, member.value    value is the plain value (an int for IntCode)
    Cls(value) -> member                   ValueError "5 is not a valid Opcode" for a value no member has;
                                           a member of Cls is returned as it is
    iter(Cls), len(Cls), member in Cls     definition order; aliases (a name whose value an earlier name has:
                                           the same member) are neither iterated nor counted; `x in Cls` with
                                           x no code at all is a TypeError, as in 3.11's enum
    isinstance(member, Cls), match/case, dict keys, copy, deepcopy and pickle (the same member back)
    Members are immutable (enum lets a member take new attributes; here it takes none), and a member cannot be
    reassigned on its class or deleted from it.

Which names of a class body are members: every name not starting with `_` whose value is no descriptor (a
method, property, classmethod or staticmethod stays what it is). Unlike enum, `_single` names are never members
(enum makes them members; a helper table named so stays a class attribute here). A class with members cannot
be extended; a base without members (a mixin of methods) can.

What it does not do (nothing here uses it): auto(), Flag/IntFlag (ibft.IbftFlags stays on enum), the functional
API, _missing_ and the other _sunder_ hooks (a body naming one is refused with TypeError), Cls["NAME"],
__members__, reversed(Cls), unhashable values, @unique, StrEnum, members with more than one value.

Type checkers see enum.IntEnum and enum.Enum under these names (the TYPE_CHECKING branch below), so members
type as members of their class; at run time they are this module's classes, and isinstance(member, enum.Enum)
is False.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any, NoReturn

# enum's hooks: a body that names one expects enum's behaviour, which this module does not give.
_ENUM_HOOKS = frozenset(
    {"_missing_", "_ignore_", "_order_", "_generate_next_value_", "_numeric_repr_", "_value_", "_name_"}
)


def _is_member(name: str, value: object) -> bool:
    """Whether `name = value` in a class body makes a member (see the module's docstring)."""
    if name[0] == "_":
        if name in _ENUM_HOOKS:
            raise TypeError(f"{name} is an enum hook; initiator.codes does not support it")
        return False
    kind = type(value)
    if kind is int or kind is str:  # the usual case, without three failed attribute lookups
        return True
    return not (hasattr(kind, "__get__") or hasattr(kind, "__set__") or hasattr(kind, "__delete__"))


class _CodeType(type):
    """The metaclass of IntCode and Code: makes the members once, when the class is created."""

    _code_members: tuple[Any, ...]  # in definition order, without aliases
    _code_values: dict[object, Any]  # value -> member
    _code_names: frozenset[str]  # member names, aliases included

    def __new__(mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> _CodeType:
        for base in bases:
            if isinstance(base, _CodeType) and base._code_members:
                raise TypeError(f"{name}: cannot extend {base.__name__}, which has members")
        body: dict[str, Any] = {}
        values: dict[str, object] = {}
        for key, value in namespace.items():
            if _is_member(key, value):
                values[key] = value
            else:
                body[key] = value
        body["_code_names"] = frozenset(values)
        cls = super().__new__(mcls, name, bases, body)
        members: list[Any] = []
        by_value: dict[object, Any] = {}
        for key, value in values.items():
            member = by_value.get(value)
            if member is None:  # not an alias
                member = cls._code_new(value)  # type: ignore[attr-defined]
                attributes = member.__dict__
                attributes["name"] = key
                attributes["value"] = value
                by_value[value] = member
                members.append(member)
            type.__setattr__(cls, key, member)
        type.__setattr__(cls, "_code_members", tuple(members))
        type.__setattr__(cls, "_code_values", by_value)
        return cls

    def __call__(cls, value: object) -> Any:
        """The member whose value is `value` (the member itself for a member); ValueError as enum's if none."""
        try:
            return cls._code_values[value]
        except (KeyError, TypeError):  # (TypeError: unhashable, so no member's value)
            pass
        if type(value) is cls:
            return value
        raise ValueError(f"{value!r} is not a valid {cls.__qualname__}")

    def __iter__(cls) -> Iterator[Any]:
        return iter(cls._code_members)

    def __len__(cls) -> int:
        return len(cls._code_members)

    def __bool__(cls) -> bool:  # a class is true even without members (bool() would ask __len__)
        return True

    def __contains__(cls, member: object) -> bool:
        if not isinstance(type(member), _CodeType):
            raise TypeError(
                f"unsupported operand type(s) for 'in': '{type(member).__qualname__}' and '{type(cls).__qualname__}'"
            )
        return type(member) is cls

    def __setattr__(cls, name: str, value: object) -> None:
        if name in cls._code_names:
            raise AttributeError(f"cannot reassign member {name!r}")
        super().__setattr__(name, value)

    def __delattr__(cls, name: str) -> None:
        if name in cls._code_names:
            raise AttributeError(f"{cls.__name__!r} cannot delete member {name!r}.")
        super().__delattr__(name)


def _refuse_setattr(self: object, name: str, value: object) -> NoReturn:
    raise AttributeError(f"{self!r} is immutable: cannot set attribute {name!r}")


def _refuse_delattr(self: object, name: str) -> NoReturn:
    raise AttributeError(f"{self!r} is immutable: cannot delete attribute {name!r}")


def _reduce(self: Any, protocol: object = None) -> tuple[type, tuple[object]]:
    """copy, deepcopy and pickle give the same member back (through Cls(value)), never a second one."""
    return type(self), (self.value,)


if TYPE_CHECKING:
    from enum import Enum as Code
    from enum import IntEnum as IntCode
else:

    class IntCode(int, metaclass=_CodeType):
        """Base of int codes (enum.IntEnum's stand-in): see the module's docstring."""

        name: str
        value: int

        @classmethod
        def _code_new(cls, value: int) -> IntCode:
            return int.__new__(cls, value)

        def __repr__(self) -> str:
            return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

        __str__ = int.__repr__  # "3", as 3.11's IntEnum (int's __format__ then gives the number too)
        __setattr__ = _refuse_setattr
        __delattr__ = _refuse_delattr
        __reduce_ex__ = _reduce

    class Code(metaclass=_CodeType):
        """Base of codes of other values (enum.Enum's stand-in), compared by identity: see the module's docstring."""

        name: str
        value: object

        @classmethod
        def _code_new(cls, value: object) -> Code:
            return object.__new__(cls)

        def __repr__(self) -> str:
            return f"<{type(self).__name__}.{self.name}: {self.value!r}>"

        def __str__(self) -> str:
            return f"{type(self).__name__}.{self.name}"

        def __format__(self, spec: str) -> str:
            return format(str(self), spec)

        __setattr__ = _refuse_setattr
        __delattr__ = _refuse_delattr
        __reduce_ex__ = _reduce
