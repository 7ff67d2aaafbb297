"""Bench: a boot storm, N machines logging in at once to one tgtd (N = 50 and 200).

One private tgtd on 127.0.0.1 with one target (one 64 MiB disk). Every storm starts N workers behind a
barrier and releases them together; each worker is one "machine" with its own initiator name. A worker that is
refused (target busy, connection reset, a timeout) retries after a jittered back-off (`backoff()`: exponential,
full jitter, capped), at most ATTEMPTS tries and never past STORM_BOUND; its time is from the barrier to its
success, retries included. A storm reports how many succeeded, the retries it took, and p50/p99 of the times.

Rows, each storm run for N in SIZES:
- ours, `client.login` of a normal session (threads in one process; each session is held until every worker is
  done, as booting machines keep theirs, then logged out untimed);
- ours, `client.discover`, a whole discovery session (threads, in-process);
- ours, `pyiscsi discover` processes, N at once (Python start-up and imports in every one): the frozen runtime
  in a chroot, as each booting machine's initramfs runs it (needs root), and the checkout's venv with its bytecode
  cached (bench.procs);
- stock, `iscsiadm -m discovery -t st` processes, N at once (private state, see tests.support.iscsiadm).
open-iscsi has no userspace-only normal-session login (iscsid hands sessions to the kernel, one host-wide
daemon), so the like-for-like stock row is discovery, process for process: ours/stock compares the two
process storms, and the in-process discovery storm with it too. Each process storm starts after one untimed run of
its command (page cache, bytecode, tgtd's first connection), for ours and the stock tool alike.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import procs
from bench.stats import percentile, table
from initiator import client
from initiator.deadline import Deadline
from initiator.errors import PyiscsiError
from initiator.portal import parse_portal
from tests.support import iscsiadm
from tests.support.tgtd import LunSpec, Tgtd
from tests.support.tgtd import unavailable_reason as tgtd_unavailable

RUNS = 1  # storms per size (each storm already yields N samples)
SIZES = (50, 200)
QUICK_ENV = "PYISCSI_BENCH_QUICK"  # set (`python -m bench --quick`): only the smallest storm
ATTEMPTS = 6
STORM_BOUND = 120.0  # one storm, every worker's retries included
TRY_BOUND = 30.0  # one attempt
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
TARGET = "iqn.2026-11.org.pyiscsi.bench:storm"
INITIATOR = "iqn.2026-11.org.pyiscsi:storm-{:04d}"


def backoff(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before try `attempt + 1` (attempt counts from 1): full jitter over a capped exponential."""
    return rng.uniform(0.0, min(BACKOFF_CAP, BACKOFF_BASE * (2 ** (attempt - 1))))


@dataclass(frozen=True)
class Outcome:
    """One worker: seconds from the barrier to success (None: it gave up), tries used, the last error."""

    seconds: float | None
    tries: int
    error: str = ""


@dataclass(frozen=True)
class StormResult:
    name: str
    size: int
    outcomes: tuple[Outcome, ...]
    wall: float  # barrier to the last worker's end

    @property
    def successes(self) -> int:
        return sum(1 for o in self.outcomes if o.seconds is not None)

    @property
    def retries(self) -> int:
        return sum(o.tries - 1 for o in self.outcomes)

    def times(self) -> list[float]:
        return [o.seconds for o in self.outcomes if o.seconds is not None]

    def p(self, q: float) -> float | None:
        times = self.times()
        return percentile(times, q) * 1000.0 if times else None

    def first_error(self) -> str:
        return next((o.error for o in self.outcomes if o.error and o.seconds is None), "")


def with_retry(
    attempt: Callable[[], None], start: float, rng: random.Random, sleep: Callable[[float], None] = time.sleep
) -> Outcome:
    """Run `attempt` until it returns, at most ATTEMPTS times and not past start + STORM_BOUND."""
    error = ""
    for tries in range(1, ATTEMPTS + 1):
        try:
            attempt()
        except (PyiscsiError, OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            error = f"{type(exc).__name__}: {exc}"
            pause = backoff(tries, rng)
            if tries == ATTEMPTS or time.monotonic() + pause > start + STORM_BOUND:
                return Outcome(None, tries, error)
            sleep(pause)
            continue
        return Outcome(time.monotonic() - start, tries)
    return Outcome(None, ATTEMPTS, error)  # pragma: no cover (the loop always returns)


def storm(
    name: str, size: int, make_attempt: Callable[[int], Callable[[], None]], after: Callable[[], None] = lambda: None
) -> StormResult:
    """N workers released together; `make_attempt(i)` gives worker i its try; `after()` once all are done."""
    barrier = threading.Barrier(size + 1, timeout=STORM_BOUND)
    outcomes: list[Outcome | None] = [None] * size
    start_box: list[float] = []

    def worker(index: int) -> None:
        attempt = make_attempt(index)
        rng = random.Random(index)
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            outcomes[index] = Outcome(None, 0, "barrier broken")
            return
        outcomes[index] = with_retry(attempt, start_box[0], rng)

    threads = [threading.Thread(target=worker, args=(i,), name=f"storm-{i}", daemon=True) for i in range(size)]
    for thread in threads:
        thread.start()
    start_box.append(time.monotonic())
    barrier.wait()
    end = time.monotonic() + STORM_BOUND + TRY_BOUND
    for thread in threads:
        thread.join(timeout=max(0.1, end - time.monotonic()))
    wall = time.monotonic() - start_box[0]
    after()
    done = tuple(o if o is not None else Outcome(None, 0, "worker did not finish in the bound") for o in outcomes)
    return StormResult(name, size, done, wall)


# --- the attempts -------------------------------------------------------------------------------------------------


def _login_storm(portal: str, size: int) -> StormResult:
    where = parse_portal(portal)
    held: list[client.LoggedInConnection] = []
    lock = threading.Lock()

    def make(index: int) -> Callable[[], None]:
        def attempt() -> None:
            conn = client.login(where, TARGET, INITIATOR.format(index), Deadline("storm login", TRY_BOUND))
            with lock:
                held.append(conn)

        return attempt

    def logout_all() -> None:
        for conn in held:
            try:
                client.logout(conn, Deadline("storm logout", 5.0))
            except (PyiscsiError, OSError):
                conn.close()

    return storm("ours: client.login, normal session held (threads)", size, make, logout_all)


def _discover_storm(portal: str, size: int) -> StormResult:
    where = parse_portal(portal)

    def make(index: int) -> Callable[[], None]:
        def attempt() -> None:
            found = client.discover(where, INITIATOR.format(index), Deadline("storm discover", TRY_BOUND))
            if not found:
                raise RuntimeError("client.discover found no target")

        return attempt

    return storm("ours: client.discover (threads)", size, make)


def _process_attempt(argv: Sequence[str], env: Mapping[str, str] | None = None) -> Callable[[], None]:
    def attempt() -> None:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=TRY_BOUND, check=False, env=env
        )  # fmt: skip
        if result.returncode != 0 or TARGET not in result.stdout:
            raise RuntimeError(f"exit {result.returncode}: {(result.stderr or result.stdout).strip()[-200:]}")

    return attempt


def discover_args(portal: str, index: int) -> tuple[str, ...]:
    """`pyiscsi discover`'s arguments for worker `index` (each machine has its own initiator name)."""
    return ("discover", portal, "--initiator", INITIATOR.format(index))


@dataclass(frozen=True)
class ProcessStorm:
    """A storm of whole processes: `argv(i)` is worker i's command line, run with `env` (None: ours)."""

    name: str
    argv: Callable[[int], list[str]]
    env: Mapping[str, str] | None = None

    def run(self, size: int) -> StormResult:
        _process_attempt(self.argv(size), self.env)()  # warm-up, untimed: page cache, bytecode, first connection
        return storm(self.name, size, lambda i: _process_attempt(self.argv(i), self.env))


def process_storms(portal: str, tree: Path | None, env: Mapping[str, str]) -> list[ProcessStorm]:
    """Ours (the frozen runtime, as each booting machine's initramfs runs it, when a tree is given; the checkout's
    venv), then the stock storm."""
    found = []
    if tree is not None:
        found.append(
            ProcessStorm(
                "ours: frozen `pyiscsi discover` (processes, chroot)",
                lambda i: procs.frozen_argv(tree, *discover_args(portal, i)),
            )
        )
    found.append(
        ProcessStorm(
            "ours: checkout `python -m boot discover` (processes)",
            lambda i: procs.checkout_argv(*discover_args(portal, i)),
            env,
        )
    )
    found.append(
        ProcessStorm(
            "stock: `iscsiadm -m discovery -t st` (processes)",
            lambda i: iscsiadm.sendtargets_command(portal, INITIATOR.format(i)),
        )
    )
    return found


STORMS = (_login_storm, _discover_storm)


def _ms(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _stock_of_round(results: Sequence[StormResult], index: int) -> StormResult | None:
    """The stock storm results[index] is compared with: the first of its size at or after it (run() ends each
    round of a size with the stock storm), else the last before it."""
    size = results[index].size
    stock = [i for i, r in enumerate(results) if r.size == size and r.name.startswith("stock: ")]
    after = [i for i in stock if i >= index]
    return results[after[0]] if after else results[stock[-1]] if stock else None


def report(results: Sequence[StormResult]) -> str:
    """One row per storm; ours/stock compares p50 and p99 with the stock storm of the same size and round."""
    rows = []
    for index, result in enumerate(results):
        stock = _stock_of_round(results, index)
        versus = ""
        if result.name.startswith("ours: ") and stock is not None and stock.p(50) and result.p(50) is not None:
            versus = f"{result.p(50) / stock.p(50):.2f}x / {result.p(99) / stock.p(99):.2f}x"  # type: ignore[operator]
        rows.append(
            [
                result.name,
                str(result.size),
                f"{result.successes}/{result.size}",
                str(result.retries),
                _ms(result.p(50)),
                _ms(result.p(99)),
                f"{result.wall * 1000:.0f}",
                versus,
            ]
        )
    header = ["storm", "N", "ok", "retries", "p50 ms", "p99 ms", "wall ms", "ours/stock p50 / p99"]
    notes = [
        f"(retry: up to {ATTEMPTS} tries, full-jitter back-off capped at {BACKOFF_CAP}s, {STORM_BOUND:.0f}s per storm)"
    ]
    for result in results:
        if result.successes < result.size and result.first_error():
            notes.append(f"{result.name} N={result.size}: gave up: {result.first_error()}")
    return "\n".join([table(header, rows), *notes])


def sizes() -> tuple[int, ...]:
    return SIZES[:1] if os.environ.get(QUICK_ENV) else SIZES


def run() -> None:
    for reason in (tgtd_unavailable(), iscsiadm.unavailable_reason()):
        if reason:
            print(f"storm: skipped: {reason}")
            return
    results: list[StormResult] = []
    root = os.geteuid() == 0
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(procs.frozen_tree()).root if root else None
        env = stack.enter_context(procs.checkout_env())
        tgt = stack.enter_context(Tgtd())
        stack.enter_context(iscsiadm.iscsid_stand_in())
        tgt.add_target(TARGET, [LunSpec(64 << 20)])
        for size in sizes():
            for _ in range(RUNS):
                for make in STORMS:
                    results.append(make(tgt.portal, size))
                    time.sleep(0.5)  # let tgtd reap the last storm's connections
                for process_storm in process_storms(tgt.portal, tree, env):
                    results.append(process_storm.run(size))
                    time.sleep(0.5)
        print(f"tgtd {tgt.portal}, one target; {os.cpu_count()} CPUs")
    if tree is None:
        print("(the frozen process storm needs root for its chroot: not run)")
    print(report(results))


if __name__ == "__main__":
    run()
