"""`pyiscsi probe`: log in from userspace, describe the target's LUNs, hash block 0 of one, log out."""

from __future__ import annotations

import contextlib
import json
from typing import Any

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
from initiator.errors import BadInputError, PyiscsiError
from initiator.initiator_name import validate_name
from initiator.portal import parse_portal
from initiator.printable import printable
from initiator.scsi import ScsiCommandError

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only for a command line boot.argv leaves to it
    import argparse

DEFAULT_TIMEOUT = 60.0
LOGOUT_AFTER_FAILURE = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--portal", required=True, metavar="ADDR[:PORT]", help="where the target listens")
    parser.add_argument("--target", required=True, metavar="IQN", help="the target's name")
    parser.add_argument("--lun", type=int, metavar="N", help="LUN whose block 0 to read (default: the first disk)")
    add_initiator_argument(parser)
    add_chap_arguments(parser)
    add_digest_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print JSON (the CLI contract's probe shape)")
    add_timeout_argument(parser, DEFAULT_TIMEOUT)


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def human(report: dict[str, Any]) -> str:
    lines = [
        f"target      {report['target']}",
        f"portal      {report['portal']}",
        f"tsih        {report['tsih']}",
        "negotiated  " + " ".join(f"{k}={v}" for k, v in report["negotiated"].items()),
    ]
    for lun in report["luns"]:
        what = f"{lun['vendor']} {lun['product']}".strip()
        if lun["blocks"] is None:
            lines.append(f"LUN {lun['lun']:<6}  {what}  (not a disk)")
        else:
            lines.append(
                f"LUN {lun['lun']:<6}  {what}  {lun['blocks']} blocks of {lun['block_size']} bytes"
                f" = {lun['size_bytes']} bytes ({_size(lun['size_bytes'])})"
            )
    if report["block0_sha256"] is None:
        lines.append("block 0     not read (no disk LUN)")
    else:
        lines.append(f"block 0     LUN {report['lun']}: sha256 {report['block0_sha256']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from initiator import client  # the protocol stack loads only once the options are good

    portal = parse_portal(args.portal)
    target = validate_name(args.target, field="--target")
    if args.lun is not None and not 0 <= args.lun < 1 << 14:
        raise BadInputError("--lun", args.lun, "LUN must be 0..16383")
    initiator = initiator_from_args(args)
    credentials = chap_from_args(args)
    deadline = Deadline("probe", timeout_from_args(args))
    conn = client.login(
        portal,
        target,
        initiator,
        deadline,
        credentials=credentials,
        header_digest=args.header_digest,
        data_digest=args.data_digest,
    )
    try:
        result = client.probe(conn, deadline, lun=args.lun)
        client.logout(conn, deadline)
    except (ScsiCommandError, BadInputError):
        # The session still works after a SCSI error or a LUN we do not have: log out, under a bound of its own.
        with contextlib.suppress(PyiscsiError):
            client.logout(conn, Deadline("logout", LOGOUT_AFTER_FAILURE))
        raise
    finally:
        conn.close()
    report = {
        "target": target,
        "portal": str(conn.portal),
        "tsih": conn.tsih,
        "negotiated": conn.negotiated,
        "luns": [info.to_json() for info in result.luns],
        "block0_sha256": result.block0_sha256,
        "lun": result.chosen_lun,
        "redirected_from": [str(p) for p in conn.redirected_from],
    }
    print(render(report, as_json=args.json))
    return 0


def render(report: dict, as_json: bool) -> str:
    """What `probe` prints. Names, aliases and INQUIRY strings come from the target: JSON escapes every control
    and non-ASCII character (ensure_ascii), the human form escapes each value."""
    if as_json:
        return json.dumps(report, indent=2)
    return human(_escaped(report))  # each value escaped before it is laid out: a newline in it forges no line


def _escaped(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(str(k)): _escaped(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escaped(v) for v in value]
    return value
