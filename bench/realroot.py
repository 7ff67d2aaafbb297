"""Bench: a real Debian 12 root (harness.debroot) booted to multi-user.target and powered off, pyiscsi's initramfs
against the stock stack's, both made by that root's own dracut, over the routed test network (harness.netlab).

The roots are harness.debroot variants (VARIANTS, default networkd and networkmanager; $PYISCSI_BENCH_REALROOT names
others), with our package installed and the README's dracut configuration, as the VM tests build them. Ours is the
initramfs Debian's kernel hook made in it. The stock one is made by the same root's dracut in a chroot of a copy of
the root (`debugfs rdump`, no loop mount), with the README's `/etc/dracut.conf.d/pyiscsi.conf` removed, so Debian's
defaults decide: `95iscsi` comes in because open-iscsi is installed, and dracut's network module for the root's own
network manager with it. The fixes of bench.stock that apply to an image are added as the same throw-away
`99stock-fixes` module (the host's busybox copied into the copy for its awk). Cached under cache/bench by the root's
key, the fixes and this recipe's code.

Both boot the same way, one after the other on fresh copies of the root disk: direct kernel boot with
`netroot=iscsi:192.168.77.1::3260:1:<iqn> ip=dhcp` over netlab, which the stock stack cannot boot behind QEMU's
NAT (bench.stock.LIMITS). The root's test unit (debroot.GUEST_CHECK) waits for `systemctl is-system-running --wait`,
prints its marks, then runs `systemctl poweroff`. Figures, guest seconds (/proc/uptime and the kernel's stamps):
- multi-user: the `multiuser` mark (is-system-running returned: running or degraded), and that state;
- power-off: from the `shutdown` mark (just before `systemctl poweroff`) to the kernel's last stamp (`reboot:
  Power down`), i.e. until the VM exits; `final` (systemd-shutdown's hook, the root read-only) in between.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench import stock
from bench.stats import table

RUNS = 1  # boots per stack (alternating ours/stock); each is minutes of TCG
QUICK_RUNS = 1
VARIANT_ENV = "PYISCSI_BENCH_REALROOT"
VARIANTS = tuple(os.environ.get(VARIANT_ENV, "networkd networkmanager").split())
DEB_ENV = "PYISCSI_REALROOT_DEB"  # a .deb to use instead of `make deb` of this checkout (as vm-tests/test_realroot)
LEASE = 3600  # seconds: nothing here is about renewals
BOUND = 600.0  # wall seconds per boot
DRACUT_BOUND = 900.0
STACKS = ("ours", "stock")
MARK_RE = re.compile(r"PYISCSI-MARK (?P<name>[\w.:-]+) (?P<uptime>\d+\.\d+)(?: (?P<detail>.*))?")
STAMP_RE = re.compile(r"^\[\s*(?P<secs>\d+\.\d+)\]")


@dataclass(frozen=True)
class Figures:
    """What one boot's console says (guest seconds; None: the console never showed it)."""

    multiuser: float | None
    state: str  # running | degraded | timeout | none
    shutdown: float | None
    final: float | None
    last_stamp: float | None
    failed_units: str = "none"
    ended: str = ""  # how the run ended, when it did not power off after multi-user (see `ending`)

    @property
    def poweroff(self) -> float | None:
        """From `systemctl poweroff` to the VM's exit (the kernel's last stamp)."""
        if self.shutdown is None or self.final is None or self.last_stamp is None:
            return None
        return self.last_stamp - self.shutdown


def measure(log: str) -> Figures:
    """The figures of one console log: the first of each mark, the last kernel stamp anywhere."""
    marks: dict[str, tuple[float, str]] = {}
    last: float | None = None
    for raw in log.splitlines():
        line = raw.strip("\r")
        mark = MARK_RE.search(line)
        if mark and "check:" not in line:
            marks.setdefault(mark.group("name"), (float(mark.group("uptime")), mark.group("detail") or ""))
        stamp = STAMP_RE.match(line)
        if stamp:
            last = float(stamp.group("secs"))

    def detail(name: str, key: str, default: str) -> str:
        for word in marks.get(name, (0.0, ""))[1].split():
            k, sep, v = word.partition("=")
            if sep and k == key:
                return v
        return default

    def at(name: str) -> float | None:
        return marks[name][0] if name in marks else None

    return Figures(
        multiuser=at("multiuser"),
        state=detail("multiuser", "state", "none"),
        shutdown=at("shutdown"),
        final=at("final"),
        last_stamp=last,
        failed_units=detail("failed", "units", "none"),
    )


def ending(figures: Figures, reason: str, fatal: str | None) -> str:
    """A short word for how a boot ended: `ok`, or what the console last said about the root disk."""
    if figures.multiuser is not None and figures.poweroff is not None:
        return "ok"
    if fatal:
        stamp = STAMP_RE.match(fatal.strip())
        what = re.sub(r"^\[\s*\d+\.\d+\]\s*", "", fatal.strip())
        what = "ping timeout" if "ping timeout" in what else "I/O error" if "I/O error" in what else "conn error"
        return f"root disk lost at {_cell(float(stamp.group('secs')) if stamp else None)}s ({what})"
    return f"{reason} at {_cell(figures.last_stamp)}s"


def _cell(value: float | None) -> str:
    return f"{value:.1f}" if value is not None else "-"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if ours is not None and theirs else "-"


def _median(values: Sequence[float | None]) -> float | None:
    present = sorted(v for v in values if v is not None)
    if not present:
        return None
    middle = len(present) // 2
    return present[middle] if len(present) % 2 else (present[middle - 1] + present[middle]) / 2


def report(samples: dict[str, list[Figures]], scenario: str = "netroot over netlab") -> str:
    """One table: multi-user and power-off per stack (medians), ours/stock, and how each boot ended."""
    rows = []
    for label, get in (
        ("multi-user.target (guest uptime s)", lambda f: f.multiuser),
        ("power-off: systemctl poweroff to VM exit (guest s)", lambda f: f.poweroff),
    ):
        values = {stack: _median([get(f) for f in samples.get(stack, [])]) for stack in STACKS}
        rows.append([scenario, label, _cell(values["ours"]), _cell(values["stock"]),
                     _ratio(values["ours"], values["stock"])])  # fmt: skip
    states = {stack: ",".join(f.state for f in samples.get(stack, [])) or "-" for stack in STACKS}
    failed = {
        stack: ",".join(sorted({u for f in samples.get(stack, []) for u in f.failed_units.split(",")})) or "-"
        for stack in STACKS
    }
    counts = "/".join(str(len(samples.get(stack, []))) for stack in STACKS)
    rows.append([scenario, f"system state at multi-user (n={counts})", states["ours"], states["stock"], ""])
    rows.append([scenario, "failed units", failed["ours"], failed["stock"], ""])
    ended = {stack: "; ".join(f.ended or "ok" for f in samples.get(stack, [])) or "-" for stack in STACKS}
    rows.append([scenario, "how the boot ended", ended["ours"], ended["stock"], ""])
    return table(["scenario", "figure", "ours", "stock", "ours/stock"], rows)


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


# ---- I/O ------------------------------------------------------------------------------------------------------


def stock_initrd(root, log: Callable[[str], None] = print) -> Path:
    """The stock stack's initramfs for `root` (a debroot.DebRoot), made by the root's own dracut (see the
    module docstring); cached."""
    from harness import debroot

    digest = hashlib.sha256()
    for part in (root.info["key"], stock.FIX_SETUP, inspect.getsource(stock_initrd)):
        digest.update(part.encode() + b"\0")
    stock.CACHE.mkdir(parents=True, exist_ok=True)
    out = stock.CACHE / f"realroot-stock-{root.variant}-{digest.hexdigest()[:16]}.img"
    if out.is_file():
        return out
    log(f"realroot: building the stock initramfs with the {root.variant} root's own dracut (a copy of the root)")
    with tempfile.TemporaryDirectory(dir=stock.CACHE, prefix=".realroot-") as tmp_name:
        tree = Path(tmp_name) / "root"
        tree.mkdir()
        try:
            _run(["debugfs", "-R", f"rdump / {tree}", str(root.image)], 300.0)
            (tree / "etc/dracut.conf.d/pyiscsi.conf").unlink(missing_ok=True)
            module = tree / "usr/lib/dracut/modules.d" / stock.FIX_MODULE
            module.mkdir(parents=True, exist_ok=True)
            (module / "module-setup.sh").write_text(stock.FIX_SETUP)
            (module / "module-setup.sh").chmod(0o755)
            shutil.copyfile("/bin/busybox", tree / "bin/busybox")
            (tree / "bin/busybox").chmod(0o755)
            env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
            argv = ["chroot", str(tree), "dracut", "-f", "--add", stock.FIX_MODULE[2:], "/tmp/stock.img", root.kver]
            with debroot.chroot_mounts(tree):
                said = _run(argv, DRACUT_BOUND, env)
            (stock.CACHE / f"dracut-realroot-stock-{root.variant}.log").write_text(said)
            shutil.move(tree / "tmp/stock.img", out.with_suffix(".part"))
            os.replace(out.with_suffix(".part"), out)
        finally:
            debroot._remove_tree(tree)
    return out


def _run(argv: list[str], bound: float, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=bound, check=False, env=env)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        raise RuntimeError(f"{' '.join(argv[:4])}... failed ({done.returncode}):\n{tail}")
    return done.stdout + done.stderr


def _unavailable() -> str | None:
    for tool in ("qemu-system-x86_64", "mmdebstrap", "debugfs", "tgtd", "dnsmasq", "busybox"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if os.geteuid() != 0:
        return "mmdebstrap, chroot, tgtd and netlab need root"
    from harness import netlab

    return netlab.unavailable_reason()


def boot(root, initrd: Path, name: str) -> tuple[Figures, str]:
    from dataclasses import replace

    from harness import realboot

    with realboot.NetLabRoot(root, LEASE, initrd=initrd) as lab:
        booted = lab.boot(realboot.Guest(name, ipxe=False, data=False, action="poweroff"), bound=BOUND)
    figures = measure(booted.console.log())
    return replace(figures, ended=ending(figures, booted.console.reason.value, booted.fatal)), str(
        booted.console.log_path
    )


def run() -> None:
    reason = _unavailable()
    if reason:
        print(f"realroot: skipped: {reason}")
        return
    from harness import debroot

    print(f"realroot: {load_line()} (before)")
    stock.print_fixes()
    print("  (bench.stock's limit above is QEMU's NAT; these boots go over netlab, where the target's address is real)")
    given = os.environ.get(DEB_ENV)
    deb = Path(given).resolve() if given else debroot.make_deb()
    tables = []
    for variant in VARIANTS:
        root = debroot.build(variant, deb)
        images = {"ours": root.initrd, "stock": stock_initrd(root)}
        samples: dict[str, list[Figures]] = {stack: [] for stack in STACKS}
        for index in range(RUNS):
            for stack in STACKS if index % 2 == 0 else tuple(reversed(STACKS)):
                started = time.monotonic()
                figures, log_path = boot(root, images[stack], f"bench-realroot-{variant}-{stack}-{index}")
                samples[stack].append(figures)
                print(f"  {variant} {stack} #{index + 1}: multi-user {_cell(figures.multiuser)} ({figures.state}), "
                      f"poweroff {_cell(figures.poweroff)}, failed {figures.failed_units}, ended {figures.ended}; "
                      f"{time.monotonic() - started:.0f}s wall; log {log_path}")  # fmt: skip
        tables.append(f"the {variant} root ({root.info['key']}), n={RUNS} per stack, TCG\n"
                      + report(samples, f"{variant}, netroot over netlab"))  # fmt: skip
    print(f"realroot: {load_line()} (after)")
    for text in tables:
        print(text)
