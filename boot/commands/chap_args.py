"""Options shared by the commands that log in (`discover`, `probe`): CHAP credentials, digests, initiator name,
overall timeout.

Secrets can come from the command line (`--password`), a file (`--password-file`: first line the password,
an optional second line the reverse password) or the environment (`PYISCSI_PASSWORD`,
`PYISCSI_REVERSE_PASSWORD`), so they need not show on the process list. They become `Secret`s at once and are
never echoed, not even in error messages.
"""

from __future__ import annotations

import os

from initiator.credentials import Chap, Credentials
from initiator.errors import BadInputError, UsageError
from initiator.negotiation import DIGESTS
from initiator.secret import Secret

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse
    from collections.abc import Mapping

ENV_PASSWORD = "PYISCSI_PASSWORD"
ENV_REVERSE_PASSWORD = "PYISCSI_REVERSE_PASSWORD"
PASSWORD_FILE_MAX = 4096


def add_chap_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("CHAP authentication")
    group.add_argument("--username", metavar="U", help="CHAP name the target checks us by")
    group.add_argument("--password", metavar="P", help=f"CHAP secret (prefer --password-file or ${ENV_PASSWORD})")
    group.add_argument("--reverse-username", metavar="U", help="the name the target answers our challenge with")
    group.add_argument("--reverse-password", metavar="P", help=f"reverse secret (or ${ENV_REVERSE_PASSWORD})")
    group.add_argument(
        "--password-file", metavar="F", help="file: first line the CHAP secret, optional second the reverse one"
    )


def add_digest_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("digests")
    group.add_argument("--header-digest", choices=DIGESTS, default="None", help="HeaderDigest to offer")
    group.add_argument("--data-digest", choices=DIGESTS, default="None", help="DataDigest to offer")


def add_initiator_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--initiator", metavar="IQN", help="our initiator name (default: /etc/iscsi/initiatorname.iscsi or derived)"
    )


def add_timeout_argument(parser: argparse.ArgumentParser, default: float) -> None:
    parser.add_argument(
        "--timeout", metavar="S", type=float, default=default, help=f"overall bound in seconds (default {default:g})"
    )


def timeout_from_args(args: argparse.Namespace) -> float:
    value = args.timeout
    if not value > 0 or value != value or value > 86400:
        raise BadInputError("--timeout", value, "seconds must be > 0 and at most 86400")
    return float(value)


def initiator_from_args(args: argparse.Namespace) -> str:
    """--initiator (checked), else the host's default name."""
    from initiator.initiator_name import default_initiator_name, validate_name

    if args.initiator is not None:
        return validate_name(args.initiator, field="--initiator")
    return default_initiator_name()


def _read_password_file(path: str) -> tuple[str, str | None]:
    try:
        with open(path, "rb") as f:
            raw = f.read(PASSWORD_FILE_MAX + 1)
    except OSError as exc:
        raise BadInputError("--password-file", path, f"cannot read: {exc.strerror or exc}") from None
    if len(raw) > PASSWORD_FILE_MAX:
        raise BadInputError("--password-file", path, f"longer than {PASSWORD_FILE_MAX} bytes")
    try:
        lines = raw.decode().splitlines()
    except UnicodeDecodeError:
        raise BadInputError("--password-file", path, "not UTF-8 text") from None
    if not lines or not lines[0]:
        raise BadInputError("--password-file", path, "the first line (the CHAP secret) is empty")
    reverse = lines[1] if len(lines) > 1 and lines[1] else None
    return lines[0], reverse


def chap_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials the options ask for (None: no CHAP). UsageError for combinations that make no sense (a
    password without a name, reverse CHAP without one-way CHAP)."""
    env = os.environ if environ is None else environ
    if args.password is not None and args.password_file is not None:
        raise UsageError("give the CHAP secret by --password or by --password-file, not both")
    file_password: str | None = None
    file_reverse: str | None = None
    if args.password_file is not None:
        file_password, file_reverse = _read_password_file(args.password_file)

    password = args.password if args.password is not None else file_password or env.get(ENV_PASSWORD) or None
    reverse = (
        args.reverse_password
        if args.reverse_password is not None
        else file_reverse or env.get(ENV_REVERSE_PASSWORD) or None
    )

    if args.username is None:
        if args.password is not None or args.password_file is not None:
            raise UsageError("a CHAP secret needs --username")
        if args.reverse_username is not None or args.reverse_password is not None:
            raise UsageError("reverse (mutual) CHAP needs one-way CHAP too: give --username and a secret")
        return None
    if not args.username:
        raise BadInputError("--username", args.username, "empty")
    if not password:
        raise UsageError(f"--username needs a secret: --password, --password-file or ${ENV_PASSWORD}")
    chap = Chap(args.username, Secret(password))

    if args.reverse_username is None:
        if args.reverse_password is not None:
            raise UsageError("--reverse-password needs --reverse-username")
        return Credentials(chap)
    if not args.reverse_username:
        raise BadInputError("--reverse-username", args.reverse_username, "empty")
    if not reverse:
        raise UsageError(
            "--reverse-username needs a secret: --reverse-password, the second line of --password-file "
            f"or ${ENV_REVERSE_PASSWORD}"
        )
    return Credentials(chap, Chap(args.reverse_username, Secret(reverse)))
