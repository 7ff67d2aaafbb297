"""`pyiscsi discover PORTAL`: SendTargets discovery, one `ADDRESS:PORT,TPGT TARGETNAME` line per portal."""

from __future__ import annotations

from boot.commands.chap_args import (
    add_chap_arguments,
    add_digest_arguments,
    add_initiator_argument,
    add_timeout_argument,
    chap_from_args,
    initiator_from_args,
    timeout_from_args,
)
from initiator.deadline import Deadline
from initiator.portal import parse_portal
from initiator.printable import printable

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse

DEFAULT_TIMEOUT = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("portal", metavar="PORTAL", help="ADDR[:PORT] or [IPv6]:PORT (port 3260 by default)")
    add_initiator_argument(parser)
    add_chap_arguments(parser)
    add_digest_arguments(parser)
    add_timeout_argument(parser, DEFAULT_TIMEOUT)


def run(args: argparse.Namespace) -> int:
    from initiator import client  # the protocol stack loads only once the options are good

    portal = parse_portal(args.portal)
    initiator = initiator_from_args(args)
    credentials = chap_from_args(args)
    deadline = Deadline("discover", timeout_from_args(args))
    targets = client.discover(
        portal,
        initiator,
        deadline,
        credentials=credentials,
        header_digest=args.header_digest,
        data_digest=args.data_digest,
    )
    for target in targets:  # names and addresses chosen by the target: control characters escaped
        for line in target.lines():
            print(printable(line))
    return 0
