"""Bench: time to a clear failure when DHCP does not answer, pyiscsi's initramfs against the stock one.

Both stacks boot the `nodhcp` scenario of bench.boot (`netroot=iscsi:... ip=dhcp rd.net.timeout.dhcp=30`, the
same `rd.retry`/`rd.emergency=poweroff` as every bench boot) on a QEMU NIC whose frames go to a UDP port on
127.0.0.1 that nobody reads (harness.bootvm.DEAD_NETDEV, `-netdev socket,udp=...`): the link has carrier and no
DHCP server (QEMU's `-netdev user` always runs its built-in DHCP server; `restrict=on` does not stop it).

Figures (guest uptime, kernel printk stamps; medians over RUNS boots per stack, alternating):
- the failure line: ours, the `pyiscsi boot:` error naming the 'dhcp' wait; stock, the first line that says a
  wait ran out or DHCP failed (net-lib's `dhcp for interface ens2 failed`, dracut-initqueue's `timeout, still
  waiting for following initqueue hooks`, `Could not boot`, an emergency) -- what a user watching the console
  learns first. Debian 12's dracut says `rd.net.timeout.dhcp has no effect because dhclient does not implement the
  --timeout option`: its dhclient runs its own 60 s, and network-legacy tries again after a failure;
- the guest gives up (powers off or panics by itself), its last stamp, and the host's wall clock to then. A boot
  the host's bound cut off shows as `>N` (no failure within the host bound).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench import boot
from bench.stats import table

RUNS = 2  # boots per stack (alternating)
QUICK_RUNS = 1
BOUND = 200.0  # host wall clock per boot: ours powers off in ~60 s; the stock stack may wait all of it
SCENARIO = "nodhcp"

OURS_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\].*pyiscsi boot: .*'dhcp'.*$", re.M)
STOCK_RE = re.compile(
    r"^\[\s*(?P<secs>\d+\.\d+)\].*("
    r"dracut-initqueue: timeout, still waiting"
    r"|dhcp.*fail|fail.*dhcp|No DHCPOFFERS|No working leases"
    r"|Could not boot|[Ee]mergency"
    r").*$",
    re.M,
)


@dataclass(frozen=True)
class Failure:
    stack: str
    line_uptime: float | None  # the first line that says what failed
    line: str
    gave_up: float | None  # the guest's last stamp, when it powered off/panicked by itself
    wall: float
    cut_off: bool  # the host's bound ended it
    log: Path
    last_stamp: float | None = None  # the last kernel stamp on the console (how far a cut-off boot got)


def failure_line(stack: str, log: str) -> tuple[float | None, str]:
    """(uptime, text) of the first line that tells the user what failed, or (None, "")."""
    for found in (OURS_RE if stack == "ours" else STOCK_RE).finditer(log):
        text = found.group(0)
        if "command line" in text.lower():  # the kernel's `Command line:` echoing rd.emergency=: not a failure
            continue
        return float(found.group("secs")), text[text.index("]") + 1 :].strip()
    return None, ""


def from_sample(sample: boot.Sample, log: str) -> Failure:
    uptime, line = failure_line(sample.stack, log)
    clear = boot.clear_failure(sample)
    cut = sample.realroot is None and sample.reason.startswith("timeout")
    gave_up = sample.last_stamp if clear else None
    return Failure(sample.stack, uptime, line, gave_up, sample.wall, cut, sample.log, sample.last_stamp)


def _cell(values: Sequence[float | None], cut: Sequence[float]) -> tuple[str, float | None]:
    median = boot._median(values)
    if median is not None:
        return f"{median:.2f}", median
    if cut:
        return f">{min(cut):.0f}", None
    return "-", None


def report(failures: Sequence[Failure]) -> str:
    by = {st: [f for f in failures if f.stack == st] for st in ("ours", "stock")}
    rows = []
    fields = [
        ("failure line, guest uptime s", lambda f: f.line_uptime, lambda f: f.last_stamp or f.wall),
        ("guest gives up (poweroff), uptime s", lambda f: f.gave_up, lambda f: f.last_stamp or f.wall),
        ("guest gives up, host wall s", lambda f: f.wall if f.gave_up is not None else None, lambda f: f.wall),
    ]
    for label, get, bound_of in fields:
        cells, medians = [], []
        for stack in ("ours", "stock"):
            cut = [bound_of(f) for f in by[stack] if f.cut_off and get(f) is None]
            cell, median = _cell([get(f) for f in by[stack]], cut)
            cells.append(cell)
            medians.append(median)
        rows.append([label, *cells, boot._ratio(*medians)])
    for stack in ("ours", "stock"):
        gave_up = [f for f in by[stack] if f.gave_up is not None]
        rows.append([f"{stack}: failed clearly (powered off)", f"{len(gave_up)}/{len(by[stack])}", "", ""])
    return table(["no DHCP answer: figure (median)", "ours", "stock", "ours/stock"], rows)


def run() -> None:
    reason = boot._unavailable()
    if reason:
        print(f"nodhcp: skipped: {reason}")
        return
    from harness import bootvm

    built = boot.images()
    root = boot.root_image()
    failures: list[Failure] = []
    for stack in boot.alternate(RUNS):
        sample = boot.boot_once(stack, built[stack], SCENARIO, root, bound=BOUND, netdev=bootvm.DEAD_NETDEV)
        failure = from_sample(sample, sample.log.read_text(errors="replace"))
        failures.append(failure)
        line = f"{failure.line_uptime:.2f} {failure.line[:110]}" if failure.line_uptime is not None else "no line"
        print(f"  {stack:5} {sample.reason:24} wall {sample.wall:6.1f}s  {line}  {sample.log.name}", flush=True)
    print(report(failures))
    print(
        f"(guest uptime in seconds, medians of {RUNS} boot(s) per stack; ip=dhcp rd.net.timeout.dhcp=30 on a NIC with"
        f" carrier and no DHCP server; host bound {BOUND:.0f}s; QEMU accel {boot._accel()}; logs under cache/logs)"
    )
    for stack in ("ours", "stock"):
        first = next((f for f in failures if f.stack == stack and f.line), None)
        print(f"  {stack} says: {first.line if first else '(nothing naming the failure within the host bound)'}")


if __name__ == "__main__":
    run()
