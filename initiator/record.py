"""Value classes without `dataclasses`: `@record` is `@dataclass(frozen=True)` for the classes a `pyiscsi discover`
imports, at a fraction of the import cost.

Why: `dataclasses` imports inspect (with ast, dis, tokenize) and compiles every class's __init__, __eq__,
__hash__, __repr__ and __setattr__ with exec() while the module is imported; over the thirty-odd classes of the
protocol stack that was a third of a by-hand `pyiscsi discover`'s start-up. Here the methods are written once and
shared; decorating a class only reads its annotations and defaults (once, at class creation).

    @record (or @record(frozen=False))     fields: the class's annotations, in order, that are not ClassVar or _private;
                                         __init__ (positional or keyword), __post_init__ when defined, __eq__ and
                                         __hash__ over the compared fields, __repr__, assignment refused when frozen
    field(default=, default_factory=, repr=True, compare=True)   as dataclasses.field
    replace(obj, **changes)              a changed copy (of a record, or of a dataclass); dataclasses.replace works
                                         on records too
    fields(cls_or_obj) -> tuple[str, ...]  the field names, in order
    FrozenFieldError                     what assigning to a frozen value's field raises (an AttributeError)

What it does not do (no class here needs it): ordering, slots, InitVar, keyword-only markers, inheriting fields
from a base that is not itself a @record class.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")


class FrozenFieldError(AttributeError):
    """Assigning to (or deleting) a field of a frozen value."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


class Spec:
    """One field's options (what `field()` returns and `@record` keeps)."""

    __slots__ = ("_field_type", "compare", "default", "factory", "init", "name", "repr")

    def __init__(self, default: object, factory: object, repr: bool, compare: bool) -> None:
        self.name = ""
        self.default = default
        self.factory = factory
        self.repr = repr
        self.compare = compare
        self.init = True  # with _field_type, what dataclasses.replace reads of a field (see _process)
        self._field_type = None


def field(
    *,
    default: object = MISSING,
    default_factory: Callable[[], object] | _Missing = MISSING,
    repr: bool = True,
    compare: bool = True,
) -> Any:  # the field's own type to a type checker, as dataclasses.field
    if default is not MISSING and default_factory is not MISSING:
        raise ValueError("cannot specify both default and default_factory")
    return Spec(default, default_factory, repr, compare)


def _init(self: object, *args: object, **kwargs: object) -> None:
    cls = type(self)
    specs: tuple[Spec, ...] = cls.__value_specs__  # type: ignore[attr-defined]
    if len(args) > len(specs):
        raise TypeError(f"{cls.__name__}() takes {len(specs)} positional arguments but {len(args)} were given")
    for index, spec in enumerate(specs):
        name = spec.name
        if index < len(args):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            item = args[index]
        elif name in kwargs:
            item = kwargs.pop(name)
        elif spec.default is not MISSING:
            item = spec.default
        elif spec.factory is not MISSING:
            item = spec.factory()  # type: ignore[operator]
        else:
            raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        object.__setattr__(self, name, item)
    if kwargs:
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {next(iter(kwargs))!r}")
    post = getattr(self, "__post_init__", None)
    if post is not None:
        post()


def _compared(self: object) -> tuple[object, ...]:
    return tuple(getattr(self, name) for name in type(self).__value_compared__)  # type: ignore[attr-defined]


def _eq(self: object, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    return _compared(self) == _compared(other)


def _hash(self: object) -> int:
    return hash(_compared(self))


def _repr(self: object) -> str:
    shown = type(self).__value_shown__  # type: ignore[attr-defined]
    return f"{type(self).__qualname__}({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"


def _frozen_setattr(self: object, name: str, item: object) -> None:
    raise FrozenFieldError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: object, name: str) -> None:
    raise FrozenFieldError(f"cannot delete field {name!r}")


def _replace(self: T, **changes: object) -> T:
    for spec in type(self).__value_specs__:  # type: ignore[attr-defined]
        if spec.name not in changes:
            changes[spec.name] = getattr(self, spec.name)
    return type(self)(**changes)


def _process(cls: type[T], frozen: bool) -> type[T]:
    specs: dict[str, Spec] = {}
    for base in reversed(cls.__mro__[1:]):
        for spec in base.__dict__.get("__value_specs__", ()):
            specs[spec.name] = spec
    own = cls.__dict__.get("__annotations__", {})  # noqa: RUF063  (inspect.get_annotations: the import we avoid)
    for name, annotation in own.items():
        if name.startswith("_") or str(annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        declared = cls.__dict__.get(name, MISSING)
        if isinstance(declared, Spec):
            spec = declared
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        else:
            spec = Spec(declared, MISSING, True, True)
        spec.name = name
        specs[name] = spec  # a redeclared field keeps its place among the base's, as in a dataclass
    ordered = tuple(specs.values())
    cls.__value_specs__ = ordered  # type: ignore[attr-defined]
    cls.__value_compared__ = tuple(s.name for s in ordered if s.compare)  # type: ignore[attr-defined]
    cls.__value_shown__ = tuple(s.name for s in ordered if s.repr)  # type: ignore[attr-defined]
    cls.__match_args__ = tuple(s.name for s in ordered)  # type: ignore[attr-defined]
    cls.__init__ = _init  # type: ignore[misc]
    if "__repr__" not in cls.__dict__:
        cls.__repr__ = _repr  # type: ignore[assignment]
    if "__eq__" not in cls.__dict__:
        cls.__eq__ = _eq  # type: ignore[assignment]
    explicit_hash = cls.__dict__.get("__hash__") is not None  # (a class body's __eq__ sets __hash__ to None)
    if frozen:
        cls.__setattr__ = _frozen_setattr  # type: ignore[assignment]
        cls.__delattr__ = _frozen_delattr  # type: ignore[assignment]
        if not explicit_hash:
            cls.__hash__ = _hash  # type: ignore[assignment]
    elif not explicit_hash:
        cls.__hash__ = None  # type: ignore[assignment]  # mutable and compared by value: unhashable, as dataclass
    cls.__replace__ = _replace  # type: ignore[attr-defined]
    # dataclasses.replace(obj, ...) of callers written for dataclasses keeps working: it reads only this table's
    # fields' name, init and _field_type (ours is none of its ClassVar/InitVar markers). dataclasses.fields()
    # and asdict() do not see these fields: use fields() and replace() of this module.
    cls.__dataclass_fields__ = {spec.name: spec for spec in ordered}  # type: ignore[attr-defined]
    return cls


def record(cls: type[T] | None = None, /, *, frozen: bool = True) -> Any:
    """`@record` or `@record(frozen=False)`: see the module's docstring."""
    if cls is None:
        return lambda klass: _process(klass, frozen)
    return _process(cls, frozen)


def is_record(obj: object) -> bool:
    return hasattr(type(obj) if not isinstance(obj, type) else obj, "__value_specs__")


def fields(obj: object) -> tuple[str, ...]:
    cls = obj if isinstance(obj, type) else type(obj)
    return tuple(spec.name for spec in cls.__value_specs__)  # type: ignore[attr-defined]


def replace(obj: T, /, **changes: object) -> T:
    """A copy of a record (or of a dataclass instance) with some fields changed; __post_init__ runs again."""
    if is_record(obj):
        return _replace(obj, **changes)
    import dataclasses

    return dataclasses.replace(obj, **changes)  # type: ignore[type-var]
