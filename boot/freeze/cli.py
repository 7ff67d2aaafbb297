"""`python -m boot.freeze --out DIR`: what dracut's module-setup.sh runs to put the runtime into the image."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from boot.freeze.build import build
from boot.freeze.closure import default_search_path
from boot.freeze.layout import PREFIX
from boot.freeze.options import FreezeOptions
from boot.freeze.report import report
from boot.freeze.verify import verify
from initiator.errors import ExitStatus, PyiscsiError

DESCRIPTION = "Build the minimal Python runtime the initramfs carries, and prove it runs on its own."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m boot.freeze", description=DESCRIPTION)
    parser.add_argument("--out", type=Path, required=True, help="tree to write into (e.g. dracut's $initdir)")
    parser.add_argument("--entry", action="append", help="entry module (repeatable; default: pyiscsi's commands)")
    parser.add_argument("--extra", action="append", default=[], help="also carry this module (dynamic imports)")
    parser.add_argument("--package", action="append", default=[], help="also carry every module of this package")
    parser.add_argument("--exclude", action="append", default=[], help="never carry this module or package")
    parser.add_argument("--path", action="append", type=Path, default=[], help="search here before sys.path")
    parser.add_argument("--prefix", default=str(PREFIX), help=f"runtime prefix inside the tree ({PREFIX})")
    parser.add_argument("--skip-missing", action="store_true", help="warn about missing entries instead of failing")
    parser.add_argument("--no-libs", action="store_true", help="do not copy shared libraries (the caller does)")
    parser.add_argument(
        "--line-numbers",
        action="store_true",
        help="keep each instruction's line for tracebacks (default: its function's first line; +0.6 MiB)",
    )
    parser.add_argument("--verify", action="store_true", help="run the tree (in a chroot when root) and check it")
    parser.add_argument("--report", action="store_true", help="print sizes and start-up times as JSON")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    defaults = FreezeOptions(out=args.out)
    options = dataclasses.replace(
        defaults,
        entries=tuple(args.entry) if args.entry else defaults.entries,
        extras=defaults.extras + tuple(args.extra),
        packages=defaults.packages + tuple(args.package),
        excludes=defaults.excludes + tuple(args.exclude),
        search_path=tuple(args.path) + default_search_path() if args.path else (),
        prefix=PurePosixPath(args.prefix),
        skip_missing=args.skip_missing,
        copy_libraries=not args.no_libs,
        line_numbers=args.line_numbers,
    )
    try:
        tree = build(options)
        for name in tree.missing_entries:
            print(f"boot.freeze: warning: entry module {name!r} does not exist; skipped", file=sys.stderr)
        checked = verify(tree) if args.verify or args.report else None
    except PyiscsiError as exc:
        print(f"boot.freeze: {exc}", file=sys.stderr)
        return int(exc.exit_status)
    if args.report:
        print(json.dumps(report(tree, checked), indent=2))
    return int(ExitStatus.OK)
