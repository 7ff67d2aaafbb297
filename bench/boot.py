"""Bench: whole boots of an iSCSI root in QEMU, pyiscsi's initramfs against the stock one, same kernel and target.

Both images are Debian's dracut for the pinned kernel with the same flavour (systemd), the same modules apart from
the iSCSI ones (ours: `pyiscsi`, harness.initramfs; stock: `iscsi network-legacy` + the fixes in bench.stock) and
the same drivers. Both boot through harness.bootvm into the same real root (harness.rootimage: ext4 with
/etc/os-release, whose init prints `PYISCSI-MARK realroot <uptime>` first; the run stops there), a private copy
per boot, served as LUN 1 of a private tgtd on 127.0.0.1. Boots alternate ours/stock, RUNS pairs per scenario,
and each figure is the median.

Figures, guest uptime (s, /proc/uptime and the kernel's printk stamps, so firmware and iPXE time is not in them):
- root disk: the kernel's `[sdX] Attached SCSI disk` line (loglevel=6 on both command lines makes it show);
- real root: the `realroot` marker, printed by the real root's init right after switch_root;
- vCPU busy / idle to the real root: the kernel's /proc/stat `cpu` line, which the real root's init prints in that
  marker (busy: user, nice, system, irq, softirq, steal; idle: idle, iowait); on one TCG vCPU a boot whose vCPU
  is never idle is bound by CPU, not by the network or the target;
- pyiscsi boot's own CPU to `booted` (ours): the process's and its waited-for children's, from its booted mark;
- failure, target down (cmdline only: tgtd is stopped before the boot, its port refuses): the last kernel stamp
  before the guest powers off or panics (`rd.emergency=poweroff panic=-1`, QEMU `-no-reboot`), and the host's wall
  clock to that moment. Both get the same `rd.retry` / `rd.timeout`, which bound how long either may try.
Scenarios: `ibft` (legacy BIOS iPXE `sanhook` leaves the iBFT in low memory; `rd.iscsi.firmware=1 ip=ibft`),
`ibft-uefi` (the same command line through UEFI firmware, OVMF on q35: the EFI iPXE leaves the iBFT as the ACPI
table /sys/firmware/acpi/tables/iBFT) and `cmdline` (`netroot=iscsi:10.0.2.2::PORT:1:IQN ip=dhcp
rd.iscsi.initiator=...`), all with `root=UUID=...`.

The floor (`FLOOR`): the base image (the flavour's modules without any iSCSI or network one, bench.stock's `base`)
booting the same real root from a local virtio disk, with the common part of the command line, between the
`ibft` pairs. It is every cost of the boot that no initiator can remove (kernel, systemd, udev, fsck, mount,
switch_root on this machine under this run's load): floor/stock is the best ratio any initiator could reach, and
ours - floor what pyiscsi's boot adds to a local one.

Phases (`PHASES`), per boot and as medians: each is the guest uptime of one console line, pyiscsi's own mark where
our image prints one, else a kernel line both stacks show (loglevel=7 on both command lines, as `make demo` uses, so
the kernel's info lines carry their stamps); a phase the console does not show is `-`. Its step is the time since
the previous phase that was seen (the kernel starts at 0).
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench import stock
from bench.stats import table

if TYPE_CHECKING:
    from harness.console import ConsoleResult

RUNS = 3  # boots per stack per scenario (alternating)
QUICK_RUNS = 1
BOUND = 200.0  # one boot, wall clock (TCG; a good one takes 60-90 s here, a failing one up to ~150 s)
FLAVOUR = "systemd"
# the floor: the base image (the same dracut modules less any iSCSI or network one) booting the same real root from
# a local virtio disk, beside the boots of this scenario, whose stock figures it is set against
FLOOR = "floor"
FLOOR_SCENARIO = "ibft"
ONCE = {("cmdline", True): "stock"}  # (scenario, target up) -> the stack booted only once there
# after harness.bootvm.BASE_APPEND (console, rd.shell=0 rd.emergency=poweroff panic=-1 rd.retry=...): the
# kernel keeps the last loglevel=, and 7 shows its info lines (`Run /init`, the iSCSI host, the root mount) too
COMMON = "loglevel=7 root=UUID={uuid}"
CMDLINES = {
    "ibft": "rd.iscsi.firmware=1 ip=ibft",
    "ibft-uefi": "rd.iscsi.firmware=1 ip=ibft",
    "cmdline": "netroot=iscsi:{host}::{port}:{lun}:{iqn} ip=dhcp rd.iscsi.initiator={initiator}",
    # bench.nodhcp: the cmdline boot on a NIC nobody answers (bootvm.DEAD_NETDEV), the same DHCP bound for both
    "nodhcp": "netroot=iscsi:{host}::{port}:{lun}:{iqn} ip=dhcp rd.iscsi.initiator={initiator} rd.net.timeout.dhcp=30",
    # bench.recovery: the iBFT boot (the one the stock stack completes here) run on past the real root's recovery
    "ibft-recovery": "rd.iscsi.firmware=1 ip=ibft",
}
UEFI_SCENARIOS = frozenset({"ibft-uefi"})  # booted through OVMF (q35); every other scenario is legacy BIOS
# what `run` boots, in order: (scenario, target up)
PLAN = (("ibft", True), ("ibft-uefi", True), ("cmdline", True), ("cmdline", False))
ATTACHED_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\].*\[sd[a-z]+\] Attached SCSI disk", re.M)
# the floor's local disk: virtio_blk's size line is its first line about the disk
LOCAL_DISK_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\].*virtio_blk \S+: \[vd[a-z]+\] \d+ 512-byte logical", re.M)
STAMP_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\]", re.M)
LINE_STAMP_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\]")
MARK_RE = re.compile(r"PYISCSI-MARK (?P<name>[\w.:-]+) (?P<uptime>\d+\.\d+)")
# the root image's init puts the kernel's /proc/stat `cpu` line into its realroot mark (harness.rootimage), and
# `pyiscsi boot` its own CPU into the booted mark
REALROOT_RE = re.compile(r"PYISCSI-MARK realroot \d+\.\d+ (?P<detail>.*)")
OWN_CPU_RE = re.compile(r"PYISCSI-MARK booted \d+\.\d+ .*\bcpu (?P<seconds>\d+\.\d+)s")


@dataclass(frozen=True)
class Phase:
    """One step of the boot: pyiscsi's mark `marker` if the console has it, else a stamped line matching `pattern`."""

    name: str
    label: str
    marker: str | None = None
    pattern: re.Pattern[str] | None = None


# In boot order. The patterns are kernel lines both stacks print; the markers are pyiscsi's own (and the real
# root's `realroot`, bench's root image prints it on both).
PHASES = (
    Phase("init", "kernel to /init", pattern=re.compile(r"Run /init as init process")),
    Phase("exec", "/init to pyiscsi's process start", marker="exec"),
    Phase("first", "pyiscsi's process start to its first mark (the interpreter's start-up)", marker="start"),
    Phase("plan", "plan", marker="plan"),
    Phase("link", "link", marker="link", pattern=re.compile(r"ADDRCONF\(NETDEV_CHANGE\): \S+: link becomes ready")),
    Phase("address", "address", marker="address"),
    Phase("login", "login", marker="login", pattern=re.compile(r"scsi host\d+: iSCSI Initiator over TCP/IP")),
    Phase("disk", "disk", marker="disk", pattern=re.compile(r"\[sd[a-z]+\] Attached SCSI disk")),
    Phase("booted", "booted", marker="booted"),
    Phase("rootfs", "root mounted", pattern=re.compile(r"(?:EXT4-fs|XFS) \(\S+\): (?:mounted|Ending clean)")),
    # the line `pyiscsi handover` prints, and the agent logs when it does the handover on request
    Phase("handover", "handover", pattern=re.compile(r"\d+ file\(s\) written for the real root")),
    Phase("realroot", "real root's init", marker="realroot"),
)
PHASE_NAMES = tuple(p.name for p in PHASES)


def phases(log: str, order: Sequence[Phase] = PHASES) -> dict[str, float]:
    """Guest uptime of each phase the console shows: the first mark if any, else the first stamped matching line."""
    marks: dict[str, float] = {}
    lines: dict[str, float] = {}
    for line in log.splitlines():
        mark = MARK_RE.search(line)
        if mark:
            marks.setdefault(mark.group("name"), float(mark.group("uptime")))
            continue
        stamp = LINE_STAMP_RE.match(line)
        if stamp is None:
            continue
        for phase in order:
            if phase.pattern is not None and phase.name not in lines and phase.pattern.search(line):
                lines[phase.name] = float(stamp.group("secs"))
    found: dict[str, float] = {}
    for phase in order:
        if phase.marker is not None and phase.marker in marks:
            found[phase.name] = marks[phase.marker]
        elif phase.name in lines:
            found[phase.name] = lines[phase.name]
    return found


def steps(seen: dict[str, float], order: Sequence[Phase] = PHASES) -> dict[str, float]:
    """Each seen phase's time since the previous seen one (the kernel starts at uptime 0)."""
    out: dict[str, float] = {}
    previous = 0.0
    for phase in order:
        if phase.name in seen:
            out[phase.name] = seen[phase.name] - previous
            previous = seen[phase.name]
    return out


def phase_line(seen: dict[str, float], order: Sequence[Phase] = PHASES) -> str:
    """One boot's phases on one line: `name at (+step)`, `name -` where the console did not show it."""
    step = steps(seen, order)
    cells = [f"{p.name} {seen[p.name]:.2f}({step[p.name]:+.2f})" if p.name in seen else f"{p.name} -" for p in order]
    return " ".join(cells)


@dataclass(frozen=True)
class Sample:
    stack: str
    scenario: str
    disk: float | None  # guest uptime when the root disk appeared
    realroot: float | None  # guest uptime when the real root's init ran
    wall: float  # host seconds, QEMU start to end
    last_stamp: float | None  # the last kernel timestamp on the console
    reason: str
    log: Path
    phases: tuple[tuple[str, float], ...] = ()  # (phase name, guest uptime) in boot order, those the console showed
    cpu: tuple[float, float] | None = None  # the vCPU's busy and idle seconds from power-on to the real root
    own_cpu: float | None = None  # `pyiscsi boot`'s own CPU seconds to `booted` (ours only)


def vcpu_time(log: str) -> tuple[float, float] | None:
    """(busy, idle) seconds of the vCPU from power-on to the real root, from the /proc/stat line the real root's
    init prints: user, nice, system, irq, softirq and steal are busy; idle and iowait are idle."""
    from harness import rootimage

    found = REALROOT_RE.search(log)
    return None if found is None else rootimage.vcpu_seconds(found.group("detail"))


def own_cpu(log: str) -> float | None:
    found = OWN_CPU_RE.search(log)
    return float(found.group("seconds")) if found else None


APPEND_ENV = "PYISCSI_BENCH_APPEND"  # extra kernel parameters for both stacks (debugging a boot)


def append_for(scenario: str, values: dict[str, str]) -> str:
    """The scenario's command line; placeholders not in `values` stay for harness.bootvm to fill."""
    text = f"{COMMON} {CMDLINES[scenario]} {os.environ.get(APPEND_ENV, '')}".strip()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def firmware_for(scenario: str) -> str:
    """'uefi' or 'bios': the firmware a scenario boots through (harness.qemu.Firmware's values)."""
    return "uefi" if scenario in UEFI_SCENARIOS else "bios"


def disk_uptime(log: str, pattern: re.Pattern[str] = ATTACHED_RE) -> float | None:
    found = pattern.search(log)
    return float(found.group("secs")) if found else None


def last_stamp(log: str) -> float | None:
    stamps = STAMP_RE.findall(log)
    return float(stamps[-1]) if stamps else None


def alternate(runs: int, stacks: Sequence[str] = ("ours", "stock")) -> list[str]:
    """ours, stock, stock, ours, ours, stock, ...: each stack goes first as often as the other."""
    order: list[str] = []
    for index in range(runs):
        pair = list(stacks) if index % 2 == 0 else list(reversed(stacks))
        order += pair
    return order


def boot_once(
    stack: str,
    initrd: Path,
    scenario: str,
    root: Path,
    target_up: bool = True,
    bound: float = BOUND,
    netdev: str | None = None,
    stop_on: str | None = "realroot",
) -> Sample:
    """One boot through harness.bootvm (tgtd on 127.0.0.1, iPXE + HTTP for `ibft*`, OVMF for `ibft-uefi`); it stops
    at `stop_on` (`realroot`; None: run until the guest powers off). `netdev` replaces QEMU's -netdev
    (bootvm.DEAD_NETDEV)."""
    from harness import bootvm, kernel
    from harness.qemu import Firmware

    kern = kernel.require()
    spec = bootvm.Boot(
        name=f"bench-{stack}-{scenario}",
        cmdline=append_for(scenario, {}),
        ipxe=scenario.startswith("ibft"),
        target_up=target_up,
        netdev=netdev,
        stop_on=stop_on,
        firmware=Firmware(firmware_for(scenario)),
    )
    return sample_of(stack, scenario, bootvm.boot(spec, kern.vmlinuz, initrd, root, bound=bound).console)


def sample_of(stack: str, scenario: str, console: ConsoleResult, disk: re.Pattern[str] = ATTACHED_RE) -> Sample:
    """What one boot's console says: the root disk's line (`disk`), the real root's mark, phases and CPU."""
    text = console.log()
    mark = console.marker("realroot")
    reason = "real root" if mark else f"{console.reason.value}, no real root"
    return Sample(
        stack, scenario, disk_uptime(text, disk), mark.uptime if mark else None, console.wall_seconds,
        last_stamp(text), reason, console.log_path, tuple(phases(text).items()), vcpu_time(text), own_cpu(text),
    )  # fmt: skip


def floor_once(initrd: Path, root: Path, bound: float = BOUND) -> Sample:
    """One boot of the base image (no network, no iSCSI) into the same real root on a local virtio disk, with the
    command line's common part: what the rest of the boot costs with no initiator at all (`FLOOR`)."""
    from harness import bootvm, kernel

    console = bootvm.boot_local("bench-floor", kernel.require().vmlinuz, initrd, root, COMMON, bound=bound)
    return sample_of(FLOOR, FLOOR_SCENARIO, console, LOCAL_DISK_RE)


def with_floor(order: Sequence[str]) -> list[str]:
    """The floor's boots between each pair of ours and stock, so each sees the machine's load as they do."""
    out: list[str] = []
    for index, stack in enumerate(order):
        out.append(stack)
        if index % 2 == 1:
            out.append(FLOOR)
    return out


def root_image() -> Path:
    from harness import rootimage

    return rootimage.build()


def images(log=print, floor: bool = False) -> dict[str, Path]:
    """Ours and the stock image, and with `floor` the base image the floor boots."""
    built = {
        "ours": stock.build_image("ours", FLAVOUR, log=log),
        "stock": stock.build_image("stock", FLAVOUR, log=log),
    }
    if floor:
        built[FLOOR] = stock.build_image("base", FLAVOUR, log=log)
    return built


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _cell(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def _ratio(ours: float | None, stock_value: float | None) -> str:
    return f"{ours / stock_value:.2f}x" if ours is not None and stock_value else "-"


def clear_failure(sample: Sample) -> bool:
    """The guest gave up by itself (emergency -> poweroff, or a panic), not the host's bound."""
    return sample.realroot is None and sample.reason.startswith(("poweroff", "panic"))


@dataclass(frozen=True)
class Figure:
    """One row of the report: how a sample gives it, and, for a boot the host cut off while it was still trying,
    the lower bound shown instead as `>N` (None: a figure such a boot gives no bound for, as the vCPU's time)."""

    label: str
    get: Callable[[Sample], float | None]
    cut_off: Callable[[Sample], float] | None = None


def _uptime_reached(sample: Sample) -> float:
    return sample.last_stamp or sample.wall


def _wall(sample: Sample) -> float:
    return sample.wall


FAILURE_FIGURES = (
    Figure("clear failure, guest uptime s", lambda s: s.last_stamp if clear_failure(s) else None, _uptime_reached),
    Figure("clear failure, host wall s", lambda s: s.wall if clear_failure(s) else None, _wall),
)
BOOT_FIGURES = (
    Figure("root disk appears, uptime s", lambda s: s.disk, _uptime_reached),
    Figure("real root init, uptime s", lambda s: s.realroot, _uptime_reached),
    # under TCG the boot is bound by the one vCPU: how much of the time to the real root it was busy
    Figure("vCPU busy to the real root, s", lambda s: s.cpu[0] if s.cpu else None),
    Figure("vCPU idle to the real root, s", lambda s: s.cpu[1] if s.cpu else None),
    Figure("pyiscsi boot's own CPU to booted, s", lambda s: s.own_cpu),
)


def report(samples: Sequence[Sample]) -> str:
    """Medians per scenario and stack, with ours/stock; failures by the boots that did not reach the real root."""
    rows = []
    scenarios = list(dict.fromkeys(s.scenario for s in samples))
    for scenario in scenarios:
        by = {st: [s for s in samples if s.scenario == scenario and s.stack == st] for st in ("ours", "stock")}
        failing = scenario.endswith("-target-down")
        for figure in FAILURE_FIGURES if failing else BOOT_FIGURES:
            ours_m = _median([figure.get(s) for s in by["ours"]])
            stock_m = _median([figure.get(s) for s in by["stock"]])
            cells = [_cell(ours_m), _cell(stock_m)]
            for index, stack in enumerate(("ours", "stock")):
                hung = [s for s in by[stack] if s.realroot is None and s.reason.startswith("timeout")]
                if cells[index] == "-" and hung and figure.cut_off is not None:  # cut off, still trying
                    cells[index] = f">{min(figure.cut_off(s) for s in hung):.0f}"
            rows.append([scenario, figure.label, *cells, _ratio(ours_m, stock_m)])
        for stack in ("ours", "stock"):
            good = [s for s in by[stack] if (clear_failure(s) if failing else s.realroot is not None)]
            what = "failed clearly (powered off)" if failing else "reached the real root"
            rows.append([scenario, f"{stack}: {what}", f"{len(good)}/{len(by[stack])}", "", ""])
    return table(["scenario", "figure (median)", "ours", "stock", "ours/stock"], rows)


FLOOR_FIGURES = BOOT_FIGURES[:3]  # root disk, real root, vCPU busy


def floor_report(samples: Sequence[Sample]) -> str:
    """The floor beside ours and stock in its scenario: floor/stock is the best ratio any initiator could reach
    on this machine in this run (its boot would cost nothing), and ours - floor what pyiscsi's boot costs."""
    rows = []
    by = {st: [s for s in samples if s.scenario == FLOOR_SCENARIO and s.stack == st] for st in ("ours", "stock", FLOOR)}
    if not by[FLOOR]:
        return "floor: no boots"
    for figure in FLOOR_FIGURES:
        at = {st: _median([figure.get(s) for s in by[st]]) for st in by}
        extra = at["ours"] - at[FLOOR] if at["ours"] is not None and at[FLOOR] is not None else None
        rows.append([
            figure.label, _cell(at[FLOOR]), _cell(at["ours"]), _cell(at["stock"]), _ratio(at[FLOOR], at["stock"]),
            _ratio(at["ours"], at["stock"]), _step(extra),
        ])  # fmt: skip
    good = sum(1 for s in by[FLOOR] if s.realroot is not None)
    rows.append([f"{FLOOR}: reached the real root", f"{good}/{len(by[FLOOR])}", "", "", "", "", ""])
    header = ["figure (median)", "floor", "ours", "stock", "floor/stock", "ours/stock", "ours - floor"]
    note = (
        f"(floor: the base image, no network or iSCSI, the same real root on a local virtio disk, booted between the "
        f"{FLOOR_SCENARIO} pairs; floor/stock is the ratio an initiator that cost nothing would reach)"
    )
    return table(header, rows) + "\n" + note


def phase_report(samples: Sequence[Sample], order: Sequence[Phase] = PHASES) -> str:
    """Per scenario, each phase's median uptime and median step for ours and stock, and ours/stock of the uptimes."""
    rows = []
    for scenario in dict.fromkeys(s.scenario for s in samples):
        by = {st: [s for s in samples if s.scenario == scenario and s.stack == st] for st in ("ours", "stock")}
        seen = {st: [dict(s.phases) for s in by[st]] for st in by}
        step = {st: [steps(one, order) for one in seen[st]] for st in by}
        for phase in order:
            at = {st: _median([one.get(phase.name) for one in seen[st]]) for st in by}
            took = {st: _median([one.get(phase.name) for one in step[st]]) for st in by}
            if at["ours"] is None and at["stock"] is None:
                continue
            rows.append([
                scenario, phase.label, _cell(at["ours"]), _step(took["ours"]), _cell(at["stock"]),
                _step(took["stock"]), _ratio(at["ours"], at["stock"]),
            ])  # fmt: skip
    header = ["scenario", "phase (median)", "ours s", "ours step", "stock s", "stock step", "ours/stock"]
    return table(header, rows)


def _step(value: float | None) -> str:
    return f"{value:+.2f}" if value is not None else "-"


def run() -> None:
    reason = _unavailable()
    if reason:
        print(f"boot: skipped: {reason}")
        return
    stock.print_fixes()
    built = images(floor=True)
    root = root_image()
    samples: list[Sample] = []
    for scenario, up in PLAN:
        name = scenario if up else f"{scenario}-target-down"
        order = alternate(RUNS if up else max(1, RUNS // 2))
        if (scenario, up) in ONCE:  # known not to boot here (bench.stock.LIMITS): shown once, not repeated
            order = [st for i, st in enumerate(order) if st != ONCE[(scenario, up)] or i == order.index(st)]
        if (scenario, up) == (FLOOR_SCENARIO, True):
            order = with_floor(order)
        for stack in order:
            if stack == FLOOR:
                sample = floor_once(built[FLOOR], root)
            else:
                sample = boot_once(stack, built[stack], scenario, root, target_up=up)
            sample = replace(sample, scenario=name)
            samples.append(sample)
            print(
                f"  {stack:5} {name:20} disk {_cell(sample.disk):>6}  realroot {_cell(sample.realroot):>6}"
                f"  end {_cell(sample.last_stamp):>6}  wall {sample.wall:6.1f}s  {sample.reason}  {sample.log.name}",
                flush=True,
            )
            print(f"        {phase_line(dict(sample.phases))}", flush=True)
    print(report(samples))
    print()
    print(floor_report(samples))
    print()
    print(phase_report([s for s in samples if not s.scenario.endswith("-target-down")]))
    print(
        f"(guest uptime in seconds, medians; {FLAVOUR} flavour images; same kernel, root image, tgtd; QEMU accel "
        f"{_accel()}; logs under cache/logs)"
    )


def _accel() -> str:
    from harness import kernel, qemu

    return qemu.choose_accel(kernel.require().vmlinuz)


def _unavailable() -> str | None:
    for tool in ("qemu-system-x86_64", "dracut", "tgtd", "mke2fs", "blkid"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if os.geteuid() != 0:
        return "tgtd and dracut need root"
    try:
        from harness import initramfs, kernel  # noqa: F401
        from harness.qemu import OVMF_CODE, OVMF_VARS
    except ImportError as exc:
        return f"vm-tests harness missing: {exc}"
    if kernel.cached() is None:
        return "the pinned kernel is not fetched (make deps)"
    if any(firmware_for(scenario) == "uefi" for scenario, _ in PLAN):
        for path in (OVMF_CODE, OVMF_VARS):
            if not path.is_file():
                return f"{path} not installed (Debian package ovmf; make deps)"
    return None


if __name__ == "__main__":
    run()
