"""Bench: the multipath root (harness.multipath): its boot, and the path-loss-to-I/O-again time in both phases.

The same boot as vm-tests/test_multipath.py (one LUN at two tgtd portals, two NICs on two QEMU user networks, the
root on dm-multipath, iscsid held back until phase 2): the guest writes fsync'ed 1 MiB files, the host pulls NIC 2's
link 10 s in and gives it back 30 s later, first while pyiscsi's agent owns the sessions, then once iscsid has
adopted them. Figures, guest seconds:
- multi-user: the `multiuser` mark (is-system-running returned), and how many dm paths the root had;
- longest pause in the writes: the longest gap between two completed writes (path loss to I/O again: a write
  caught on the cut path waits until dm fails the path, a write on the other path does not wait at all);
- dm failed it: from the cut until dm's status showed the path failed (the nop-out's 5 s + 5 s, then the
  replacement timeout), i.e. the pause of a write caught on the cut path;
- both paths: from the link's return until dm showed both paths active again (the owner logged in again);
- power-off: from `systemctl poweroff` to systemd-shutdown's final hook.
No stock column: the stock stack's dracut cannot bring up two NICs for two netroots to one LUN without its
network module, which the README's configuration leaves out. n=1 by default (each boot is minutes of TCG).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench.stats import table

RUNS = 1
QUICK_RUNS = 1
DEB_ENV = "PYISCSI_REALROOT_DEB"  # a .deb to use instead of `make deb` of this checkout (as vm-tests/test_realroot)


def _unavailable() -> str | None:
    for tool in ("qemu-system-x86_64", "mmdebstrap", "debugfs", "tgtd"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if os.geteuid() != 0:
        return "mmdebstrap, chroot and tgtd need root"
    return None


def _cell(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rows(samples: list[dict[str, float | None]]) -> list[list[str]]:
    """One row per figure, one column per run (the table the module docstring describes)."""
    names = (
        ("multiuser", "multi-user (s)"),
        ("paths", "dm paths at boot"),
        ("agent_io", "agent: longest pause in the writes (s)"),
        ("agent_lost", "agent: dm failed the path (s)"),
        ("agent_back", "agent: both paths after the link returned (s)"),
        ("iscsid_io", "iscsid: longest pause in the writes (s)"),
        ("iscsid_lost", "iscsid: dm failed the path (s)"),
        ("iscsid_back", "iscsid: both paths after the link returned (s)"),
        ("poweroff", "power-off (s)"),
    )
    counts = {"paths"}  # whole numbers
    return [[label, *(_cell(sample.get(key), 0 if key in counts else 1) for sample in samples)] for key, label in names]


def run() -> None:
    reason = _unavailable()
    if reason:
        print(f"multipath: skipped: {reason}")
        return
    from harness import debroot, multipath, realboot

    given = os.environ.get(DEB_ENV)
    deb = Path(given).resolve() if given else debroot.make_deb()
    root = multipath.build(deb)
    samples: list[dict[str, float | None]] = []
    for index in range(RUNS):
        started = time.monotonic()
        with multipath.MultipathLab(root) as lab:
            guest = realboot.Guest(f"bench-mpath-{index}", ipxe=False, data=False,
                                   extra=f"{multipath.HOLD_ISCSID}=1")  # fmt: skip
            booted = lab.boot(guest)
        marks = [(m.name, realboot.details(m)) for m in booted.console.markers]
        sample: dict[str, float | None] = {"multiuser": booted.uptime("multiuser")}
        paths = booted.detail("paths").get("active")
        sample["paths"] = float(paths) if paths and paths.isdigit() else None
        for name in ("agent", "iscsid"):
            phase = multipath.phase_figures(name, marks)
            sample[f"{name}_io"], sample[f"{name}_lost"] = phase.max_gap, phase.lost_after_cut
            sample[f"{name}_back"] = phase.recovered_after
        start, end = booted.uptime("shutdown"), booted.uptime("final")
        sample["poweroff"] = end - start if start is not None and end is not None else None
        samples.append(sample)
        print(f"  multipath #{index + 1}: {booted.console.reason.value}, {time.monotonic() - started:.0f}s wall; "
              f"log {booted.console.log_path}")  # fmt: skip
    header = ["guest seconds, TCG", *(f"run {i + 1}" for i in range(len(samples)))]
    print(f"the multipath root ({root.info['key']}), two portals, two NICs, n={len(samples)}\n"
          + table(header, rows(samples)))  # fmt: skip
