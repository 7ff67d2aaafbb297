"""Bench: the frozen runtime `boot.freeze` builds for the initramfs: its size and its start-up, against open-iscsi's.

Size: the tree `boot.freeze.build()` writes (interpreter, the .pyc files, lib-dynload, the shared libraries
it copies) and the .pyc files alone, against the stock tools dracut's 95iscsi installs (`iscsistart`, `iscsiadm`,
`iscsid`) plus the shared libraries they link that are not libc's (ldd), as a like-for-like "what the
iSCSI initiator costs in bytes" (the initramfs bench measures the whole images).

Start-up: a whole process that prints its version and exits, which is the fixed cost every call in the
initramfs pays. Ours: the frozen `pyiscsi --version` (the interpreter command the wrapper ends in, `python3 -c
'...' --version`, with -I for the wrapper's variable clean-up and hash seed, in a chroot of the tree),
`-m boot --version` (which imports runpy), the wrapper's form without the chroot, and the checkout's venv for
contrast; stock: `iscsistart --version` (what 95iscsi runs at boot) and `iscsiadm --version`; the floor: the
frozen interpreter's `-c` of one statement. Rounds rotate the order; ours/stock compares medians with
`iscsistart --version`, and every row's median is also given against the floor's (issue 13's target:
`pyiscsi --version` and a by-hand `pyiscsi discover` within 2x of it).

A by-hand command's whole process: with tgtd installed, a private tgtd on 127.0.0.1 (tests.support.tgtd) with
one target, and the frozen `pyiscsi discover` against it (start-up, imports, one discovery session, exit),
cold in the sense that every sample is a new process. The storm of 50 such processes against iscsiadm's is
`python -m bench storm`.

By package: the .pyc files and their bytes per top-level package, the extension modules and the shared
libraries by file, largest first, so what the tree carries and for whom is one table.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.stats import Summary, table
from boot import freeze

RUNS = 20
QUICK_RUNS = 5
BOUND = 30.0
STOCK_TOOLS = ("iscsistart", "iscsiadm", "iscsid")
LIBC = ("libc.so", "ld-linux", "linux-vdso", "libm.so", "libpthread", "libdl.so", "librt.so")


def ldd_libraries(text: str) -> list[str]:
    """Paths of the resolved libraries in ldd's output, libc's own family left out (every image has it)."""
    found = []
    for line in text.splitlines():
        parts = line.split()
        if "=>" in parts:
            path = parts[parts.index("=>") + 1]
            if path.startswith("/") and not any(name in path for name in LIBC):
                found.append(path)
    return found


def stock_size(tools: Iterable[str] = STOCK_TOOLS) -> tuple[int, list[str]]:
    """Bytes of the stock tools and their non-libc libraries (each counted once), and the files counted."""
    files: list[str] = []
    for tool in tools:
        path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
        if path is None:
            continue
        files.append(os.path.realpath(path))
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=BOUND, check=False)
        files += [os.path.realpath(lib) for lib in ldd_libraries(ldd.stdout)]
    unique = sorted(set(files))
    return sum(os.path.getsize(f) for f in unique), unique


def _timed(argv: list[str], expect: str, env: Mapping[str, str] | None = None) -> Callable[[], float]:
    def sample() -> float:
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=BOUND, check=False, env=env)
        took = time.perf_counter() - started
        if expect not in result.stdout + result.stderr:
            raise RuntimeError(f"{' '.join(argv[:5])}: exit {result.returncode}, {result.stdout!r} {result.stderr!r}")
        return took

    return sample


FLOOR = "floor: frozen interpreter `-c pass` (chroot)"
DISCOVER_TARGET = "iqn.2026-11.org.pyiscsi.bench:frozen"
DISCOVER_INITIATOR = "iqn.2026-11.org.pyiscsi:bench-frozen"


def commands(tree: Path, portal: str | None = None) -> dict[str, tuple[list[str], str]]:
    """Name -> (argv, text its output must hold); the discover rows only with a portal to discover."""
    python = str(freeze.PREFIX / "bin" / "python3")
    outside = str(tree / str(freeze.PREFIX).lstrip("/") / "bin" / "python3")
    flags = procs.FROZEN_FLAGS
    wrapper = ["-c", freeze.WRAPPER_CODE]  # what /usr/sbin/pyiscsi runs
    found: dict[str, tuple[list[str], str]] = {
        "ours: frozen `pyiscsi --version` (chroot, as in the initramfs)": (
            procs.frozen_argv(tree, "--version"),
            "pyiscsi ",
        ),
        "ours: frozen `python3 -m boot --version` (chroot)": (
            ["chroot", str(tree), python, *flags, "-m", "boot", "--version"],
            "pyiscsi ",
        ),
        "ours: frozen `pyiscsi --version` (tree, no chroot)": (
            [outside, *flags, *wrapper, "--version"],
            "pyiscsi ",
        ),
        "ours: checkout venv `python -m boot --version`": (procs.checkout_argv("--version"), "pyiscsi "),
        "stock: `iscsistart --version`": (["iscsistart", "--version"], "iscsistart version"),
        "stock: `iscsiadm --version`": (["iscsiadm", "--version"], "iscsiadm version"),
        FLOOR: (["chroot", str(tree), python, *flags, "-c", "print(1)"], "1"),  # pass, with something to check
    }
    if portal is not None:
        discover = ["discover", portal, "--initiator", DISCOVER_INITIATOR]
        found["ours: frozen `pyiscsi discover` (chroot, local tgtd)"] = (
            procs.frozen_argv(tree, *discover),
            DISCOVER_TARGET,
        )
        found["ours: checkout venv `python -m boot discover` (local tgtd)"] = (
            procs.checkout_argv(*discover),
            DISCOVER_TARGET,
        )
    return found


def measure(runs: int, tree: Path, portal: str | None = None) -> dict[str, Summary]:
    with procs.checkout_env() as env:  # the checkout rows' bytecode, cached (bench.procs)
        return _measure(runs, tree, portal, env)


def _measure(runs: int, tree: Path, portal: str | None, env: Mapping[str, str]) -> dict[str, Summary]:
    samplers = {name: _timed(argv, expect, env) for name, (argv, expect) in commands(tree, portal).items()}
    names = list(samplers)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for name in names:  # warm-up
        samplers[name]()
    for index in range(runs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(samplers[name]())
    return {name: Summary.of_seconds(values) for name, values in samples.items()}


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.2f}"


def libc_family_bytes(tree: Path) -> int:
    """Bytes of the libc family the tree copies (libc, libm, ld-linux...): the stock figure leaves them out, as
    every image has them, so the like-for-like row leaves them out of ours too."""
    return sum(
        path.stat().st_size
        for path in tree.rglob("*")
        if path.is_file() and not path.is_symlink() and any(name in path.name for name in LIBC)
    )


def size_report(
    tree_bytes: int, bytecode_bytes: int, modules: int, stock_bytes: int, stock_files: int, libc_bytes: int = 0
) -> str:
    rows = [
        [
            "ours: frozen tree (interpreter, .pyc files, lib-dynload, libraries)",
            _mib(tree_bytes),
            f"{tree_bytes / stock_bytes:.2f}x",
        ],
    ]
    if libc_bytes:
        less = tree_bytes - libc_bytes
        rows.append(
            [
                "ours: the tree less libc's family (counted as the stock row is)",
                _mib(less),
                f"{less / stock_bytes:.2f}x",
            ]
        )
    rows += [
        [
            f"ours: the .pyc files alone ({modules} modules)",
            _mib(bytecode_bytes),
            f"{bytecode_bytes / stock_bytes:.2f}x",
        ],
        [f"stock: {' + '.join(STOCK_TOOLS)} + non-libc libraries ({stock_files} files)", _mib(stock_bytes), ""],
    ]
    return table(["runtime size", "MiB", "ours/stock"], rows)


def startup_report(results: dict[str, Summary]) -> str:
    stock = results["stock: `iscsistart --version`"]
    floor = results.get(FLOOR)
    rows = []
    for name, summary in results.items():
        versus = "" if summary is stock else f"{summary.median / stock.median:.2f}x" if stock.median > 0 else "n/a"
        over_floor = (
            "" if floor is None or summary is floor or floor.median <= 0 else f"{summary.median / floor.median:.2f}x"
        )
        rows.append([name, *summary.cells(), over_floor, versus])
    count = next(iter(results.values())).count
    note = f"({count} samples each; ratios: medians against the frozen interpreter's floor and `iscsistart --version`)"
    header = ["start-up (ms)", "median", "p90", "min", "max", "vs floor", "vs iscsistart"]
    return f"{table(header, rows)}\n{note}"


@dataclass(frozen=True)
class Part:
    """One row of the tree by package: a top-level package's .pyc files (how many, their bytes) or one file."""

    name: str
    kind: str  # "bytecode", "extension", "library", "interpreter", "other"
    modules: int
    size: int


def bytecode_packages(names_and_sizes: Iterable[tuple[str, int]]) -> list[Part]:
    """.pyc files (path under the bytecode directory, bytes) summed by top-level package (`a/b.pyc`, `a.pyc`: `a`)."""
    count: dict[str, int] = {}
    size: dict[str, int] = {}
    for name, bytes_ in names_and_sizes:
        if name.endswith("/"):
            continue
        top = name.split("/", 1)[0].removesuffix(".pyc")
        count[top] = count.get(top, 0) + 1
        size[top] = size.get(top, 0) + bytes_
    return [Part(top, "bytecode", count[top], size[top]) for top in count]


def tree_parts(tree: Path, bytecode_dir: Path) -> list[Part]:
    """Everything in the tree: the .pyc files by package, every other file on its own, largest first."""
    pycs = sorted(bytecode_dir.rglob("*.pyc"))
    parts = bytecode_packages((path.relative_to(bytecode_dir).as_posix(), path.stat().st_size) for path in pycs)
    counted = set(pycs)
    for path in sorted(tree.rglob("*")):
        if not path.is_file() or path.is_symlink() or path in counted:
            continue
        name = path.name
        kind = (
            "extension" if "lib-dynload" in path.parts
            else "interpreter" if name.startswith("python3")
            else "library" if ".so" in name
            else "other"
        )  # fmt: skip
        parts.append(Part(name.split(".cpython-")[0] if kind == "extension" else name, kind, 0, path.stat().st_size))
    return sorted(parts, key=lambda part: (-part.size, part.name))


def parts_report(parts: Iterable[Part], stock_bytes: int, top: int = 30) -> str:
    """The largest `top` parts, then the rest summed; each with its share of the tree and of the stock bytes."""
    ordered = sorted(parts, key=lambda part: (-part.size, part.name))
    total = sum(part.size for part in ordered) or 1
    rows = []
    shown, rest = ordered[:top], ordered[top:]
    for part in shown:
        rows.append([part.name, part.kind, str(part.modules) if part.modules else "", _kib(part.size),
                     f"{100 * part.size / total:.1f}", f"{part.size / stock_bytes:.2f}x"])  # fmt: skip
    if rest:
        size = sum(part.size for part in rest)
        modules = sum(part.modules for part in rest)
        rows.append([f"({len(rest)} more)", "", str(modules) if modules else "", _kib(size),
                     f"{100 * size / total:.1f}", f"{size / stock_bytes:.2f}x"])  # fmt: skip
    modules = sum(part.modules for part in ordered)
    rows.append(["total", "", str(modules), _kib(total), "100.0", f"{total / stock_bytes:.2f}x"])
    return table(["tree by package / file", "kind", "modules", "KiB", "% of tree", "vs stock"], rows)


def _kib(size: int) -> str:
    return f"{size / 1024:.0f}"


def run() -> None:
    if os.geteuid() != 0 or shutil.which("iscsistart") is None:
        print("frozen: skipped: needs root (chroot) and open-iscsi's iscsistart")
        return
    with procs.frozen_tree() as frozen:
        tree_dir = frozen.root
        tree_bytes = freeze.tree_size(tree_dir)
        stock_bytes, stock_files = stock_size()
        if frozen.missing_entries:
            print(f"frozen: entries not present yet (skipped): {', '.join(frozen.missing_entries)}")
        libc_bytes = libc_family_bytes(tree_dir)
        bytecode_bytes = frozen.bytecode_bytes()
        print(size_report(tree_bytes, bytecode_bytes, len(frozen.modules), stock_bytes, len(stock_files), libc_bytes))
        print()
        print(parts_report(tree_parts(tree_dir, frozen.bytecode_dir), stock_bytes))
        print()
        print(startup_report(_measure_with_tgtd(tree_dir)))


def _measure_with_tgtd(tree: Path) -> dict[str, Summary]:
    """The start-up rows, with the discover rows when a private tgtd can be started."""
    from tests.support.tgtd import LunSpec, Tgtd
    from tests.support.tgtd import unavailable_reason as tgtd_unavailable

    reason = tgtd_unavailable()
    if reason:
        print(f"frozen: `pyiscsi discover` rows skipped: {reason}")
        return measure(RUNS, tree)
    with Tgtd() as tgt:
        tgt.add_target(DISCOVER_TARGET, [LunSpec(1 << 20)])
        return measure(RUNS, tree, tgt.portal)


if __name__ == "__main__":
    run()
