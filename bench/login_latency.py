"""Bench: how long pyiscsi takes to reach a target, against open-iscsi's `iscsiadm` on the same tgtd.

One private tgtd on 127.0.0.1 (three targets, one 64 MiB disk each). Every round takes one sample of each
measurement, in an order that rotates from round to round so none always runs first (warm caches, a busy
neighbour). Measurements:
- ours, in-process: `client.login` of a normal session, TCP connect to full feature phase (the logout after
  it is not timed); `client.discover`, a whole discovery session (login, SendTargets, logout).
- ours, whole process: `pyiscsi discover PORTAL`, Python's start-up and imports included, as a user runs it.
- stock: `iscsiadm -m discovery -t st -p PORTAL`, a whole process with private state (see tests.support.iscsiadm:
  `unshare -m`, tmpfs /etc/iscsi, a stand-in iscsid socket when the host cannot run iscsid). Its wrapper alone
  (the same unshare and mounts, `true` instead of iscsiadm) is measured too, so the tool's own share shows,
  and so is a bare `python -c pass`, the floor under any whole-process pyiscsi number.
open-iscsi has no userspace-only normal-session login (iscsid hands every session to the kernel), so the stock
side is its discovery round trip: that is the comparison a user can make on any host.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping

from bench import procs
from bench.stats import Summary, ratio, table
from initiator import client
from initiator.deadline import Deadline
from initiator.portal import parse_portal
from tests.support import iscsiadm
from tests.support.tgtd import LunSpec, Tgtd
from tests.support.tgtd import unavailable_reason as tgtd_unavailable

RUNS = 20
BOUND = 30.0  # per sample: a hang is a failed benchmark, not a slow one
INITIATOR = "iqn.2026-11.org.pyiscsi:bench"
TARGETS = tuple(f"iqn.2026-11.org.pyiscsi.bench:disk{n}" for n in range(1, 4))


def _timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _login(portal: str) -> Callable[[], float]:
    where = parse_portal(portal)

    def sample() -> float:
        started = time.perf_counter()
        conn = client.login(where, TARGETS[0], INITIATOR, Deadline("bench login", BOUND))
        took = time.perf_counter() - started
        client.logout(conn, Deadline("bench logout", BOUND))
        return took

    return sample


def _discover(portal: str) -> Callable[[], float]:
    where = parse_portal(portal)

    def action() -> None:
        found = client.discover(where, INITIATOR, Deadline("bench discover", BOUND))
        if len(found) != len(TARGETS):
            raise RuntimeError(f"client.discover found {len(found)} targets, expected {len(TARGETS)}")

    return lambda: _timed(action)


def _process(argv: list[str], expect_lines: int | None, env: Mapping[str, str] | None = None) -> Callable[[], float]:
    def action() -> None:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=BOUND, check=False, env=env)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[:4])}... exited {result.returncode}: {result.stderr.strip()}")
        if expect_lines is not None and len(result.stdout.splitlines()) != expect_lines:
            raise RuntimeError(f"{' '.join(argv[:4])}... printed {result.stdout!r}")

    return lambda: _timed(action)


def _measurements(portal: str, env: Mapping[str, str]) -> dict[str, Callable[[], float]]:
    stock = iscsiadm.sendtargets_command(portal, INITIATOR)
    wrapper = iscsiadm.sendtargets_command(portal, INITIATOR, wrapper_only=True)
    return {
        "ours: client.login, connect to full feature phase (in-process)": _login(portal),
        "ours: client.discover, whole discovery session (in-process)": _discover(portal),
        "ours: `pyiscsi discover` (whole process)": _process(
            procs.checkout_argv("discover", portal, "--initiator", INITIATOR), len(TARGETS), env
        ),
        "stock: `iscsiadm -m discovery -t st` (whole process)": _process(stock, len(TARGETS)),
        "stock wrapper alone (unshare + tmpfs mounts, no iscsiadm)": _process(wrapper, None),
        "python start-up alone (`python -c pass`)": _process([sys.executable, "-c", "pass"], None, env),
    }


def measure(runs: int, portal: str) -> dict[str, Summary]:
    with procs.checkout_env() as env:  # our processes' bytecode, cached (bench.procs)
        return _measure(runs, _measurements(portal, env))


def _measure(runs: int, measurements: dict[str, Callable[[], float]]) -> dict[str, Summary]:
    names = list(measurements)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(2):  # warm-up: page cache, Python bytecode, tgtd's first connections
        for name in names:
            measurements[name]()
    for round_index in range(runs):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(measurements[name]())
    return {name: Summary.of_seconds(values) for name, values in samples.items()}


def report(results: dict[str, Summary]) -> str:
    stock = next(s for name, s in results.items() if name.startswith("stock: "))
    rows = []
    for name, summary in results.items():
        versus = ratio(summary, stock) if name.startswith("ours: ") else ""
        rows.append([name, *summary.cells(), versus])
    count = next(iter(results.values())).count
    header = ["measurement (ms)", "median", "p90", "min", "max", "ours/stock"]
    plural = "s" if count != 1 else ""
    note = f"({count} sample{plural} each; ours/stock compares medians with the iscsiadm row)"
    return f"{table(header, rows)}\n{note}"


def run() -> None:
    for reason in (tgtd_unavailable(), iscsiadm.unavailable_reason()):
        if reason:
            print(f"login_latency: skipped: {reason}")
            return
    with Tgtd() as tgt, iscsiadm.iscsid_stand_in() as stand_in:
        for name in TARGETS:
            tgt.add_target(name, [LunSpec(64 << 20)])
        results = measure(RUNS, tgt.portal)
    print(f"tgtd {tgt.portal}, {len(TARGETS)} targets; iscsid: {'stand-in socket' if stand_in else 'the real one'}")
    print(report(results))


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("login_latency bench: run as root (tgtd, and iscsiadm under unshare -m)")
    run()
