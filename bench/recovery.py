"""Bench: time for the root's session to recover after the target restarts, pyiscsi's initramfs against the stock.

Both stacks boot the `ibft-recovery` scenario of bench.boot (iPXE sanhook + `rd.iscsi.firmware=1 ip=ibft`: the
boot the stock stack completes here) into harness.rootimage's real root, which starts iscsid, waits until iscsid
has adopted the session (`adopted`), reads the disk and prints `await-failure`; harness.bootvm then stops tgtd
for RESTART_PAUSE (1 s) and starts it again with the same LUN. The figure runs on the guest's clock:
- start: `PYISCSI-MARK await-failure` (the host stops tgtd as soon as it reads it, so the connection breaks a few
  ms later). The kernel's `connectionN:0: detected conn error` would be the natural start, but it is not on the
  console (only in dmesg, unstamped by the time the root's init copies it into `conn-lost`), and in both stacks
  iscsid's adoption itself drops and re-makes the connection once (`error (1020 ...) state (1)` then `is operational
  after recovery` before `adopted`), so the first such dmesg line can be the adoption's, not the restart's;
- end: `PYISCSI-MARK recovered`: the session is LOGGED_IN again and an O_DIRECT read of the disk succeeded (the
  init polls every 0.5 s, so the figure is up to 0.5 s late, the same for both stacks).
So the figure includes the 1 s tgtd is down and the host's stop/start of tgtd: target restart to I/O again.
Medians over RUNS boots per stack, alternating, plus the adoption time for context. Who recovered is read off
the console after `await-failure`: iscsid's `is operational after recovery` line, pyiscsi's agent's `recovered
after` line (ours starts the agent in the initramfs; it follows /run into the root).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench import boot
from bench.stats import table

RUNS = 3  # boots per stack (alternating)
QUICK_RUNS = 1
BOUND = 300.0  # host wall clock per boot: a good one takes ~90 s here under TCG
SCENARIO = "ibft-recovery"

CONN_ERROR_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\].*connection\d+:\d+: detected conn error", re.M)
MARK_RE = re.compile(r"PYISCSI-MARK (?P<name>[a-z-]+) (?P<secs>\d+\.\d+)")
OWNERS = (
    ("iscsid", re.compile(r"is operational after recovery")),
    ("pyiscsi agent", re.compile(r"recovered after \d")),
)


@dataclass(frozen=True)
class Recovery:
    stack: str
    adopted: float | None  # the root's `adopted` marker
    restart: float | None  # the root's `await-failure` marker: the host restarts tgtd now
    conn_error: float | None  # a stamped kernel `detected conn error` after it, when the console shows one
    recovered: float | None  # the root's `recovered` marker
    owners: tuple[str, ...]  # who said it recovered the session
    failed: str  # the root's `realroot-fail` reason, or why the boot ended early
    log: Path

    @property
    def seconds(self) -> float | None:
        if self.restart is None or self.recovered is None:
            return None
        return self.recovered - self.restart


def markers(log: str) -> dict[str, float]:
    """The first uptime of each PYISCSI-MARK name on the console."""
    found: dict[str, float] = {}
    for match in MARK_RE.finditer(log):
        found.setdefault(match.group("name"), float(match.group("secs")))
    return found


def parse(stack: str, log: str, reason: str, path: Path) -> Recovery:
    marks = markers(log)
    cut = log.find("PYISCSI-MARK await-failure")
    after = log[cut:] if cut >= 0 else ""  # adoption's own reconnect comes before it
    error = CONN_ERROR_RE.search(after)
    owners = tuple(name for name, pattern in OWNERS if pattern.search(after))
    fail = re.search(r"PYISCSI-MARK realroot-fail \S+ (?P<why>.*)", log)
    failed = fail.group("why").strip() if fail else ("" if "recovered" in marks else reason)
    return Recovery(
        stack,
        marks.get("adopted"),
        marks.get("await-failure"),
        float(error.group("secs")) if error else None,
        marks.get("recovered"),
        owners,
        failed,
        path,
    )


def _cell(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def report(samples: Sequence[Recovery]) -> str:
    by = {st: [s for s in samples if s.stack == st] for st in ("ours", "stock")}
    rows = []
    fields = [
        ("tgtd restart -> I/O again, s", lambda s: s.seconds),
        ("iscsid adopted the session, uptime s", lambda s: s.adopted),
    ]
    for label, get in fields:
        medians = [boot._median([get(s) for s in by[st]]) for st in ("ours", "stock")]
        rows.append([label, *map(_cell, medians), boot._ratio(*medians)])
    for stack in ("ours", "stock"):
        good = [s for s in by[stack] if s.seconds is not None]
        owners = sorted({o for s in good for o in s.owners}) or ["-"]
        rows.append([f"{stack}: recovered ({', '.join(owners)})", f"{len(good)}/{len(by[stack])}", "", ""])
    return table(["target restart: figure (median)", "ours", "stock", "ours/stock"], rows)


def run() -> None:
    reason = boot._unavailable()
    if reason:
        print(f"recovery: skipped: {reason}")
        return
    from harness import bootvm

    built = boot.images()
    root = boot.root_image()
    samples: list[Recovery] = []
    for stack in boot.alternate(RUNS):
        sample = boot.boot_once(stack, built[stack], SCENARIO, root, bound=BOUND, stop_on="recovered")
        got = parse(stack, sample.log.read_text(errors="replace"), sample.reason, sample.log)
        samples.append(got)
        print(
            f"  {stack:5} adopted {_cell(got.adopted):>6}  restart {_cell(got.restart):>6}  recovered"
            f" {_cell(got.recovered):>6}  = {_cell(got.seconds):>5}s  by {', '.join(got.owners) or '-'}"
            f"  wall {sample.wall:6.1f}s  {got.failed or 'ok'}  {sample.log.name}",
            flush=True,
        )
    print(report(samples))
    print(
        f"(guest seconds, medians of {RUNS} boot(s) per stack; tgtd down {bootvm.RESTART_PAUSE:g}s; iscsid in the real"
        f" root (Debian's open-iscsi, default iscsid.conf) for both; QEMU accel {boot._accel()}; logs under cache/logs)"
    )


if __name__ == "__main__":
    run()
