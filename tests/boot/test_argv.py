"""boot.argv: the command lines it parses give what argparse gives; on everything else it declines."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot import cli
from boot.argv import Recorder
from initiator.errors import UsageError

REFUSED = "refused"  # argparse's outcome: a usage error (exit status 1)
EXITED = "exited"  # argparse's outcome: it printed the help and exited


def _add_arguments(command: str) -> Callable[[object], None]:
    return importlib.import_module(cli.COMMANDS[command][0]).add_arguments  # type: ignore[no-any-return]


def _recorded(add_arguments: Callable[[object], None]) -> Recorder:
    recorder = Recorder()
    add_arguments(recorder)
    return recorder


def _argparse(add_arguments: Callable[[object], None], argv: Sequence[str]) -> dict[str, object] | str:
    """What our argparse parser (boot.cli's, never abbreviating) makes of argv with the same add_arguments."""
    parser = cli._parser(argv, prog="pyiscsi test")
    add_arguments(parser)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return vars(parser.parse_args(argv))
    except UsageError:
        return REFUSED
    except SystemExit:
        return EXITED


def _same(fast: dict[str, object], slow: dict[str, object]) -> bool:
    """The same keys, and each value of the same type and equal (a NaN equal to a NaN)."""

    def equal(a: object, b: object) -> bool:
        nans = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
        return type(a) is type(b) and (a == b or nans)

    return fast.keys() == slow.keys() and all(equal(fast[key], slow[key]) for key in fast)


def _agrees(add_arguments: Callable[[object], None], argv: list[str]) -> dict[str, object] | None:
    """The fast path's namespace (as a dict) or None, after checking it against argparse's outcome."""
    fast = _recorded(add_arguments).parse(argv)
    slow = _argparse(add_arguments, argv)
    if isinstance(slow, str):
        assert fast is None, f"argparse {slow} {argv!r}, the fast path gave {fast}"
    elif fast is not None:
        assert _same(vars(fast), slow), (argv, vars(fast), slow)
    return None if fast is None else vars(fast)


# ---- one parser of every kind the recorder knows, against argparse ----


def _example(parser: Any) -> None:
    parser.add_argument("name", metavar="NAME", help="a positional")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--ratio", type=float)
    parser.add_argument("--mode", choices=("a", "b"), default="a")
    parser.add_argument("--level", type=int, choices=(1, 2))
    parser.add_argument("--on", action="store_true")
    group = parser.add_argument_group("a heading")
    group.add_argument("--in-group", metavar="V")
    exclusive = parser.add_mutually_exclusive_group()
    exclusive.add_argument("--left")
    exclusive.add_argument("--right", action="store_true")
    parser.add_argument("--need", required=True, dest="needed")


BASE = {
    "count": 3,
    "ratio": None,
    "mode": "a",
    "level": None,
    "on": False,
    "in_group": None,
    "left": None,
    "right": False,
}

EXAMPLE_CASES = [
    (["n", "--need", "x"], {"name": "n", "needed": "x"}),
    (["--need=x", "n"], {"name": "n", "needed": "x"}),
    (["--need", "", ""], {"name": "", "needed": ""}),
    (["n", "--need=", "--count", "7"], {"name": "n", "needed": "", "count": 7}),
    (
        ["n", "--need", "a=b", "--ratio=nan", "--mode", "b"],
        {"name": "n", "needed": "a=b", "ratio": math.nan, "mode": "b"},
    ),
    (["n", "--need", "x", "--count", " 8 ", "--level", "2"], {"name": "n", "needed": "x", "count": 8, "level": 2}),
    (
        ["n", "--need", "x", "--on", "--in-group", "g", "--left", "l"],
        {"name": "n", "needed": "x", "on": True} | {"in_group": "g", "left": "l"},
    ),
    (["n", "--need", "x", "--right"], {"name": "n", "needed": "x", "right": True}),
]
EXAMPLE_DECLINED = [
    [],  # the positional and the required option missing
    ["n"],  # the required option missing
    ["--need", "x"],  # the positional missing
    ["n", "m", "--need", "x"],  # one word too many
    ["n", "--need", "x", "--count", "x"],  # not an int
    ["n", "--need", "x", "--count", "1.5"],
    ["n", "--need", "x", "--count", "-1"],  # argparse takes it: still argparse's to take
    ["n", "--need", "x", "--ratio", "-x"],
    ["n", "--need", "x", "--mode", "c"],  # not a choice
    ["n", "--need", "x", "--level", "3"],
    ["n", "--need", "x", "--on=1"],  # a flag given a value
    ["n", "--need", "x", "--on", "--on"],  # twice
    ["n", "--need", "x", "--need", "y"],
    ["n", "--need", "x", "--left", "l", "--right"],  # two of a mutually exclusive group
    ["n", "--need", "x", "--cou", "1"],  # an abbreviation
    ["n", "--need", "x", "--count"],  # no value
    ["n", "--need", "x", "--count=-1"],
    ["n", "--need=--"],  # argparse gives [] for that
    ["n", "--need", "x", "--"],
    ["--", "n", "--need", "x"],
    ["-", "--need", "x"],
    ["n", "--need", "x", "-h"],
    ["n", "--need", "x", "--help"],
    ["n", "--need", "x", "--nope"],
    ["-n", "--need", "x"],
]


@pytest.mark.parametrize(("argv", "changed"), EXAMPLE_CASES)
def test_a_well_formed_command_line_gives_argparses_namespace(argv: list[str], changed: dict[str, object]) -> None:
    got = _agrees(_example, argv)
    assert got is not None and _same(got, BASE | changed)


@pytest.mark.parametrize("argv", EXAMPLE_DECLINED)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert _agrees(_example, argv) is None


def _adds(*calls: tuple[tuple[str, ...], dict[str, object]]) -> Callable[[object], None]:
    return lambda parser: [parser.add_argument(*names, **kwargs) for names, kwargs in calls]  # type: ignore[attr-defined,func-returns-value]


UNKNOWN = [
    pytest.param(_adds((("source",), {"nargs": "?"})), id="an-optional-positional"),
    pytest.param(_adds((("--many",), {"nargs": "*"})), id="nargs"),
    pytest.param(_adds((("--add",), {"action": "append"})), id="append"),
    pytest.param(_adds((("--off",), {"action": "store_false"})), id="store-false"),
    pytest.param(_adds((("--c",), {"action": "store_const", "const": 1})), id="store-const"),
    pytest.param(_adds((("-v",), {"action": "store_true"})), id="a-short-option"),
    pytest.param(_adds((("-v", "--verbose"), {"action": "store_true"})), id="short-and-long"),
    pytest.param(_adds((("--n",), {"type": lambda word: word})), id="a-type-of-its-own"),
    pytest.param(_adds((("--n",), {"default": "==SUPPRESS=="})), id="default-suppressed"),
    pytest.param(_adds((("--n",), {"dest": "==SUPPRESS=="})), id="dest-suppressed"),
    pytest.param(_adds((("--n",), {"metavar": ("A", "B")})), id="a-metavar-tuple"),
    pytest.param(_adds((("--n",), {"required": 1})), id="required-not-a-bool"),
    pytest.param(_adds((("--n",), {"choices": "abc"})), id="choices-a-string"),
    pytest.param(_adds((("--n",), {"const": "x"})), id="an-unknown-keyword"),
    pytest.param(_adds((("--flag",), {"action": "store_true", "type": int})), id="a-flag-with-a-type"),
    pytest.param(_adds((("p",), {"dest": "q"})), id="a-positional-with-dest"),
    pytest.param(_adds((("p",), {"required": True})), id="a-positional-with-required"),
    pytest.param(_adds((("--n",), {}), (("--n",), {})), id="an-option-twice"),
    pytest.param(_adds((("--a",), {"dest": "n"}), (("--n",), {})), id="a-dest-twice"),
    pytest.param(_adds((("--help",), {})), id="help-of-its-own"),
    pytest.param(_adds(((), {})), id="no-name"),
    pytest.param(
        lambda parser: parser.add_mutually_exclusive_group(required=True).add_argument("--a"), id="required-group"
    ),
    pytest.param(
        lambda parser: parser.add_argument_group("t", argument_default=1).add_argument("--a"), id="group-keywords"
    ),
]


@pytest.mark.parametrize("add_arguments", UNKNOWN)
def test_a_parser_it_does_not_know_declines_every_command_line(add_arguments: Callable[[object], None]) -> None:
    recorder = _recorded(add_arguments)
    assert not recorder.supported and recorder.parse([]) is None


def test_a_str_default_argparse_would_convert_declines_unless_the_option_is_given() -> None:
    add_arguments = _adds((("--n",), {"type": int, "default": "5"}))
    assert _agrees(add_arguments, []) is None
    assert _agrees(add_arguments, ["--n", "6"]) == {"n": 6}


def test_a_parser_method_it_lacks_is_an_attribute_error() -> None:
    """boot.cli takes that for "argparse, please"."""
    with pytest.raises(AttributeError):
        Recorder().set_defaults(x=1)  # type: ignore[attr-defined]


# ---- every command, its own add_arguments ----

VALUES = ("", "x", "-x", "1", "-1", "1.5", " 2 ", "nan", "inf", "1e3", "0x10", "a=b", "None", "CRC32C", "crc32c")
VALUES += ("--", "-", "a b", "-a b", "--json", "/sysroot")
Atom = tuple[str, ...]  # words that go together: an option and its value
JUNK = ("--", "-", "-h", "--help", "--help=x", "--nope", "--nope=1", "-x", "-1", "-j", "--json=1", "--=x")


def _atoms(add_arguments: Callable[[object], None]) -> tuple[list[Atom], list[Atom], list[Atom]]:
    """The words of a parser's command lines as units (an option with a value, a value, junk): those argparse
    takes, the others, and those that make a line acceptable (its required options and positionals); from its
    argparse parser."""
    parser = cli._parser([], prog="pyiscsi test")
    add_arguments(parser)
    good: list[Atom] = []
    bad: list[Atom] = [(word,) for word in (*VALUES, *JUNK)]
    required: list[Atom] = []
    for action in parser._actions[1:]:  # the first is -h/--help: JUNK
        values = (*VALUES, *map(str, action.choices or ()))
        takes = [value for value in values if _takes(action, value)]
        for name in action.option_strings:
            if action.nargs == 0:
                good.append((name,))
                bad += [(f"{name}={value}",) for value in values]
            else:
                good += [*((name, value) for value in takes), *((f"{name}={value}",) for value in takes)]
                bad += [(name,), (name, name), *((name, value) for value in values if value not in takes)]
                bad += [(f"{name}={value}",) for value in values if value not in takes]
            bad.append((name[:-1],))
        if not action.option_strings and action.nargs is None:
            good += [(value,) for value in takes]
        if action.required:
            required.append((action.option_strings[0], "x") if action.option_strings else ("word",))
    return good, bad, required


def _takes(action: argparse.Action, value: str) -> bool:
    """Whether value is one argparse surely takes for the action (no dash first, converts, one of its choices)."""
    try:
        converted = action.type(value) if action.type else value  # type: ignore[operator]
    except ValueError:
        return False
    return not value.startswith("-") and (action.choices is None or converted in action.choices)


def _option(atom: Atom) -> str:
    return atom[0].partition("=")[0] if atom[0].startswith("-") else "positional"


@st.composite
def command_lines(draw: st.DrawFn, add_arguments: Callable[[object], None]) -> list[str]:
    """Mostly options that parse, each once; now and then a word that does not."""
    good, bad, required = _atoms(add_arguments)
    chosen = draw(st.lists(st.sampled_from(good), max_size=5, unique_by=_option))
    chosen += draw(st.lists(st.sampled_from(bad), max_size=1))
    if draw(st.booleans()):
        chosen += required
    return [word for atom in draw(st.permutations(chosen)) for word in atom]


@pytest.mark.parametrize("command", [*sorted(cli.COMMANDS), "example"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_every_command_parses_as_argparse_or_declines(command: str, data: st.DataObject) -> None:
    add_arguments = _example if command == "example" else _add_arguments(command)
    _agrees(add_arguments, data.draw(command_lines(add_arguments)))


MUST_ACCEPT = [
    ("discover", ["127.0.0.1:3260", "--initiator", "iqn.x:y"]),
    ("discover", ["p", "--timeout", "5", "--header-digest", "CRC32C"]),
    ("discover", ["--timeout=2.5", "p", "--data-digest=None", "--username", "u", "--password", "s e c r e t"]),
    ("discover", ["[::1]:3260", "--password-file", "/f", "--reverse-username", "r", "--reverse-password", ""]),
    ("probe", ["--portal", "p", "--target", "t", "--lun", "1", "--json"]),
    ("probe", ["--target=iqn.x:y", "--portal=10.0.0.1", "--timeout", "10", "--initiator", "iqn.z:w"]),
    ("explain", ["--json"]),
    ("explain", ["--cmdline", "ip=dhcp rd.iscsi.firmware", "--show-secrets"]),
    ("explain", ["--cmdline-file", "/f", "--ibft", "none"]),
    ("net", ["--cmdline", "ip=eth0:dhcp", "--json"]),
    ("net", ["--resolv-conf", "/etc/resolv.conf", "--state-file", "/run/x"]),
    ("boot", ["--no-agent"]),
    ("boot", ["--state-dir", "/run/x", "--root-link", "sda", "--cmdline-file", "/f"]),
    ("handover", ["--sysroot", "/sysroot"]),
    ("handover", ["--sysroot=/sysroot", "--state-dir", "/run/pyiscsi", "--run-root", "/"]),
    ("agent", ["--daemon"]),
    ("agent", ["--stop", "--timeout", "30"]),
    ("agent", ["--sessions", "/s", "--pid-file", "/p", "--ibft", "none", "--cmdline", "x"]),
]


@pytest.mark.parametrize(("command", "argv"), MUST_ACCEPT)
def test_the_command_lines_people_type_are_parsed_without_argparse(command: str, argv: list[str]) -> None:
    assert _agrees(_add_arguments(command), argv) is not None


MUST_DECLINE = [
    ("discover", []),
    ("discover", ["p", "--timeout", "x"]),
    ("discover", ["p", "--header-digest", "crc32c"]),
    ("discover", ["p", "--pass=secret"]),
    ("discover", ["p", "--password", "-starts-with-a-dash"]),
    ("probe", ["--portal", "p"]),
    ("probe", ["--portal", "p", "--target", "t", "--lun", "1.5"]),
    ("explain", ["--cmdline", "a", "--cmdline-file", "b"]),
    ("handover", []),
    ("agent", ["--timeout=-5"]),
    ("ibft", ["--json"]),  # its optional positional: ibft is argparse's alone
]


@pytest.mark.parametrize(("command", "argv"), MUST_DECLINE)
def test_usage_errors_and_what_it_does_not_know_are_argparses(command: str, argv: list[str]) -> None:
    assert _agrees(_add_arguments(command), argv) is None


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_every_command_but_ibft_is_known_to_the_recorder(command: str) -> None:
    assert _recorded(_add_arguments(command)).supported == (command != "ibft")
