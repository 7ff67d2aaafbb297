"""The command lines people type, parsed without argparse: a recorder stands in for the parser while a command
module's `add_arguments(parser)` runs, then parses what it recorded.

Importing argparse (with re and gettext) and building a parser were 1.6 ms of a by-hand `pyiscsi discover`'s
8.4 in the frozen tree. The recorder knows a small subset of argparse (long options storing one value or
`store_true`, `type` int, float or str, `choices`, `required`, positionals of one word, mutually exclusive
groups), and answers only where argparse (with allow_abbrev=False) would give an equal namespace: on anything
else, a usage error included, `parse` returns None and boot.cli hands the command line to argparse, which says
what argparse always said. No message is made here, so none can echo what was typed.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without importing typing (and re)
if TYPE_CHECKING:
    from collections.abc import Callable, Container, Sequence

SUPPRESS = "==SUPPRESS=="  # argparse.SUPPRESS: such a default or dest keeps the attribute out of the namespace
TYPES = (int, float, str)  # conversions that do nothing else: argparse may run them again after a refusal
STORE_KWARGS = frozenset({"action", "metavar", "help", "default", "type", "choices", "required", "dest", "nargs"})
FLAG_KWARGS = frozenset({"action", "help", "default", "required", "dest"})  # what argparse's store_true takes


class Argument:
    """One add_argument call the recorder understood."""

    __slots__ = ("choices", "default", "dest", "exclusive", "flag", "required", "type")

    def __init__(self, dest: str, flag: bool, default: object, required: bool, exclusive: int | None) -> None:
        self.dest = dest
        self.flag = flag  # store_true: takes no value, gives True
        self.default = default
        self.required = required
        self.exclusive = exclusive  # the mutually exclusive group it is in, if any
        self.type: Callable[[str], object] | None = None
        self.choices: Container[object] | None = None


class Recorder:
    """Stands in for an argparse parser in `add_arguments(parser)`; `parse(argv)` then answers or declines.

    A call or keyword it does not know makes it decline every command line (`supported` false), so that argparse
    builds the parser and parses, or raises the same error as it always did. Only add_argument,
    add_argument_group and add_mutually_exclusive_group exist: any other method of a parser is an AttributeError,
    which boot.cli takes for "argparse, please"."""

    def __init__(self) -> None:
        self.arguments: list[Argument] = []
        self.options: dict[str, Argument] = {}  # "--long-name" -> its argument
        self.positionals: list[Argument] = []
        self.supported = True
        self._groups = 0

    def add_argument(self, *names: str, **kwargs: object) -> None:
        self._add(names, kwargs, None)

    def add_argument_group(self, title: str | None = None, description: str | None = None, **kwargs: object) -> Group:
        """A heading in the help only: its arguments parse as the parser's own (other keywords: argparse's)."""
        if kwargs:
            self.supported = False
        return Group(self, None)

    def add_mutually_exclusive_group(self, *, required: bool = False) -> Group:
        if required:
            self.supported = False
        self._groups += 1
        return Group(self, self._groups)

    def _add(self, names: tuple[str, ...], kwargs: dict[str, object], exclusive: int | None) -> None:
        argument = self._understood(names, kwargs, exclusive)
        if argument is None or any(known.dest == argument.dest for known in self.arguments):
            self.supported = False
            return
        self.arguments.append(argument)
        if names[0].startswith("-"):
            self.options.update(dict.fromkeys(names, argument))
        else:
            self.positionals.append(argument)

    def _understood(self, names: tuple[str, ...], kwargs: dict[str, object], exclusive: int | None) -> Argument | None:
        """The argument that add_argument call makes, or None when it is more than this module knows."""
        action = kwargs.get("action")
        flag = action == "store_true"
        if (action not in (None, "store") and not flag) or kwargs.get("nargs") is not None:
            return None
        if not set(kwargs) <= (FLAG_KWARGS if flag else STORE_KWARGS):
            return None
        default = kwargs.get("default", False if flag else None)
        type_, choices, required = kwargs.get("type"), kwargs.get("choices"), kwargs.get("required", False)
        dest = kwargs.get("dest")
        if (
            default == SUPPRESS
            or (type_ is not None and type_ not in TYPES)
            or not isinstance(choices, tuple | list | frozenset | set | None)
            or not isinstance(required, bool)
            or not isinstance(kwargs.get("metavar"), str | None)
        ):
            return None
        if all(isinstance(name, str) and name.startswith("--") and len(name) > 2 for name in names) and names:
            if "--help" in names or any(name in self.options for name in names):
                return None  # argparse refuses a second option of that name when it is added
            dest = names[0].lstrip("-").replace("-", "_") if dest is None else dest
            if not isinstance(dest, str) or not dest or dest == SUPPRESS:
                return None
        elif len(names) == 1 and isinstance(names[0], str) and names[0][:1] not in ("", "-"):
            if flag or dest is not None or "required" in kwargs or exclusive is not None:
                return None  # argparse raises at add_argument, or takes the positional for optional
            dest, required = names[0], True
        else:
            return None  # short options, none at all
        argument = Argument(dest, flag, default, required, exclusive)
        argument.type, argument.choices = type_, choices  # type: ignore[assignment]
        return argument

    def parse(self, argv: Sequence[str]) -> SimpleNamespace | None:
        """What argparse's parse_args(argv) would give, or None: not sure, or argparse would refuse it."""
        if not self.supported:
            return None
        given: dict[str, object] = {}
        exclusive: set[int] = set()
        positionals = iter(self.positionals)
        index = 0
        while index < len(argv):
            word = argv[index]
            index += 1
            text: str | None = word  # what the argument is given; None for a flag
            if not word.startswith("-"):
                argument = next(positionals, None)
                if argument is None:
                    return None  # one word too many: "unrecognized arguments"
            else:
                name, equals, explicit = word.partition("=")
                exact = self.options.get(word)
                argument = exact or (self.options.get(name) if equals else None)
                if argument is None or argument.dest in given:
                    return None  # -h, --, -1, an abbreviation, unknown, or twice (argparse keeps the last)
                if argument.flag:
                    if argument is not exact:
                        return None  # --flag=VALUE: "ignored explicit argument"
                    text = None
                elif argument is exact:
                    if index == len(argv) or argv[index].startswith("-"):
                        return None  # "expected one argument", or a value argparse may take for an option
                    text = argv[index]
                    index += 1
                elif explicit.startswith("-"):
                    return None  # --opt=-...: argparse drops a "--" value whole, as it would after --opt
                else:
                    text = explicit
                if argument.exclusive is not None:
                    if argument.exclusive in exclusive:
                        return None  # "not allowed with argument"
                    exclusive.add(argument.exclusive)
            value = True if text is None else _converted(argument, text)
            if value is _REFUSED:
                return None
            given[argument.dest] = value
        namespace: dict[str, object] = {}
        for argument in self.arguments:
            if argument.dest in given:
                namespace[argument.dest] = given[argument.dest]
            elif argument.required or (isinstance(argument.default, str) and argument.type is not None):
                return None  # missing, or a default argparse would convert (and might refuse)
            else:
                namespace[argument.dest] = argument.default
        return SimpleNamespace(**namespace)


class Group:
    """What add_argument_group and add_mutually_exclusive_group return: add_argument into the recorder."""

    def __init__(self, recorder: Recorder, exclusive: int | None) -> None:
        self._recorder = recorder
        self._exclusive = exclusive

    def add_argument(self, *names: str, **kwargs: object) -> None:
        self._recorder._add(names, kwargs, self._exclusive)


_REFUSED = object()


def _converted(argument: Argument, word: str) -> object:
    """The word through the argument's type and choices as argparse takes it, or _REFUSED where argparse refuses."""
    value: object = word
    if argument.type is not None:
        try:
            value = argument.type(word)
        except Exception:  # argparse: "invalid ... value" for ValueError and TypeError, else its traceback
            return _REFUSED
    if argument.choices is not None and value not in argument.choices:
        return _REFUSED
    return value
