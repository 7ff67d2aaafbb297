from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from boot.commands.chap_args import (
    add_chap_arguments,
    add_digest_arguments,
    add_timeout_argument,
    chap_from_args,
    timeout_from_args,
)
from initiator.errors import BadInputError, UsageError
from initiator.secret import Secret


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_chap_arguments(parser)
    add_digest_arguments(parser)
    add_timeout_argument(parser, 30)
    return parser.parse_args(argv)


def _creds(argv: list[str], env: dict[str, str] | None = None):
    credentials = chap_from_args(_parse(argv), env or {})
    flat = lambda c: None if c is None else (c.username, c.password.reveal())  # noqa: E731
    return (None, None) if credentials is None else (flat(credentials.chap), flat(credentials.reverse))


@pytest.fixture
def pwfile(tmp_path: Path):
    def make(text: str) -> str:
        path = tmp_path / "pw"
        path.write_text(text)
        path.chmod(0o600)
        return str(path)

    return make


def test_none() -> None:
    assert _creds([]) == (None, None)


def test_env_alone_does_not_turn_chap_on() -> None:
    assert _creds([], {"PYISCSI_PASSWORD": "x"}) == (None, None)


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["--username", "u", "--password", "p"], {}, (("u", "p"), None)),
        (["--username", "u"], {"PYISCSI_PASSWORD": "envp"}, (("u", "envp"), None)),
        (["--username", "u", "--password", "cli"], {"PYISCSI_PASSWORD": "envp"}, (("u", "cli"), None)),
        (
            ["--username", "u", "--password", "p", "--reverse-username", "t", "--reverse-password", "r"],
            {},
            (("u", "p"), ("t", "r")),
        ),
        (
            ["--username", "u", "--reverse-username", "t"],
            {"PYISCSI_PASSWORD": "p", "PYISCSI_REVERSE_PASSWORD": "r"},
            (("u", "p"), ("t", "r")),
        ),
    ],
)
def test_sources(argv: list[str], env: dict[str, str], expected) -> None:
    assert _creds(argv, env) == expected


@pytest.mark.parametrize(
    ("text", "reverse_user", "expected"),
    [
        ("secret123456\n", [], (("u", "secret123456"), None)),
        ("secret123456", [], (("u", "secret123456"), None)),
        ("s1\nr1\n", ["--reverse-username", "t"], (("u", "s1"), ("t", "r1"))),
        ("s1\r\nr1\r\n", ["--reverse-username", "t"], (("u", "s1"), ("t", "r1"))),
        ("s1\nr1\n", [], (("u", "s1"), None)),
    ],
)
def test_password_file(pwfile, text: str, reverse_user: list[str], expected) -> None:
    assert _creds(["--username", "u", "--password-file", pwfile(text), *reverse_user]) == expected


@pytest.mark.parametrize(
    ("argv", "env", "match"),
    [
        (["--password", "p"], {}, "needs --username"),
        (["--username", "u"], {}, "needs a secret"),
        (["--reverse-username", "t", "--reverse-password", "r"], {}, "one-way CHAP too"),
        (["--username", "u", "--password", "p", "--reverse-password", "r"], {}, "needs --reverse-username"),
        (["--username", "u", "--password", "p", "--reverse-username", "t"], {}, "--reverse-username needs a secret"),
        (["--username", "u", "--password", "p", "--password-file", "/nonexistent"], {}, "not both"),
    ],
)
def test_usage_errors(argv: list[str], env: dict[str, str], match: str) -> None:
    with pytest.raises(UsageError, match=match):
        _creds(argv, env)


@pytest.mark.parametrize(
    ("content", "match"),
    [(None, "cannot read"), ("\nsecond\n", "first line"), ("", "first line"), ("x" * 5000, "longer than")],
)
def test_bad_password_file(tmp_path: Path, content: str | None, match: str) -> None:
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BadInputError, match=match) as info:
        _creds(["--username", "u", "--password-file", str(path)])
    assert info.value.field == "--password-file"


def test_bad_password_file_never_quotes_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "pw"
    path.write_bytes(b"\xffsecretvalue\n")
    with pytest.raises(BadInputError) as info:
        _creds(["--username", "u", "--password-file", str(path)])
    assert "secretvalue" not in str(info.value)


def test_secrets_are_secret_objects() -> None:
    credentials = chap_from_args(_parse(["--username", "u", "--password", "hunter2hunter2"]), {})
    assert credentials is not None and isinstance(credentials.chap.password, Secret)
    assert "hunter2" not in repr(credentials) and "hunter2" not in str(credentials)


def test_digest_and_timeout_options() -> None:
    args = _parse(["--header-digest", "CRC32C"])
    assert (args.header_digest, args.data_digest, timeout_from_args(args)) == ("CRC32C", "None", 30.0)
    for bad in ("0", "-1", "nan", "1e9"):
        with pytest.raises(BadInputError, match="--timeout"):
            timeout_from_args(_parse(["--timeout", bad]))
