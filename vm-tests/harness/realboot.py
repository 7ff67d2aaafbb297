"""Boot a real Debian root (harness.debroot) from a private tgtd, once or several times on the same disk.

`Lab(root)` starts tgtd on 127.0.0.1 with a sparse private copy of the root image as LUN 1 of the root target and a
blank disk as LUN 1 of a second, data target; it lives across boots, so a reboot finds the disk as it was left.
`lab.boot(Guest(...))` runs QEMU (TCG) once:

- `ipxe=True`: BIOS iPXE `sanhook`s the root target (drive 0x80) and the data target (0x81), which leaves an iBFT
  naming both, then boots the root's own kernel and initrd (read out of its /boot) with `rd.iscsi.firmware=1`;
- `ipxe=False`: direct kernel boot with `netroot=iscsi:10.0.2.2::<port>:1:<root iqn> ip=dhcp`, which names only
  the root target (the data target stays served: a node record an earlier boot left may log in to it).

`NetLabRoot(root, lease_seconds)` is the same over the routed test network instead of QEMU's NAT
(harness.netlab: the VM's tap in a namespace of its own, dnsmasq handing out leases of `lease_seconds`, tgtd on
the namespace's 192.168.77.1): direct kernel boot with `netroot=iscsi:192.168.77.1::3260:1:<root iqn> ip=dhcp`,
root target only. Its boots record how many DHCP acknowledgements dnsmasq had logged when each PYISCSI-MARK line
arrived (`Booted.extra["acks_at"]`), so a test can tell which leases were renewed between two marks.

The root's test unit reports on the console (PYISCSI-MARK lines, see debroot.GUEST_CHECK), then reboots or powers
off as `Guest.action` says; QEMU's `-no-reboot` ends the run either way. The pure helpers (`details`,
`kernel_errors`, `fs_verdict`) read those results.
"""

from __future__ import annotations

import os
import re
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness import rootimage
from harness.bootvm import BASE_APPEND, INITIATOR
from harness.console import ConsoleParser, ConsoleResult, Marker, ReadEnd, finish, split_lines
from harness.debroot import DebRoot
from harness.errors import HarnessError
from harness.http import GUEST_HOST, StaticServer
from harness.ipxe import IpxeScript, SanTarget
from harness.netlab import LabConfig, NetLab, Stack
from harness.paths import CACHE, REPO
from harness.private import make_private_dir
from harness.qemu import ACCEL_ENV, QEMU, VmSpec, build_command, stop
from initiator.deadline import Deadline

if TYPE_CHECKING:
    from tests.support.tgtd import Tgtd

ROOT_IQN = "iqn.2026-12.org.pyiscsi:debian-root"
DATA_IQN = "iqn.2026-12.org.pyiscsi:debian-data"
DATA_BYTES = 16 << 20
BOUND = 600.0  # wall seconds for one boot under TCG: the initramfs, Debian's start-up, the checks, the shutdown
MEMORY_MB = 1024
# kernel log lines that must never show while the root is in use
ERROR_RE = re.compile(r"I/O error|detected conn error|connection\d+:\d+: .*error|ping timeout")
STAMP_RE = re.compile(r"^\[\s*(\d+\.\d+)\]")
MARK_RE = re.compile(r"PYISCSI-MARK (\S+) ")
# a console line after which the root disk is lost for good: the run ends FATAL_GRACE wall seconds later (to keep
# what follows in the log) instead of waiting out the bound while the guest hangs on its root
FATAL_RE = re.compile(r"ping timeout of|I/O error|rejecting I/O to offline device|detected conn error")
FATAL_GRACE = 20.0


@dataclass(frozen=True)
class Guest:
    name: str
    ipxe: bool = True
    action: str = "poweroff"  # reboot | poweroff: what the guest does after its checks
    phase: str = ""  # write | verify: the token file
    data: bool = True  # iPXE sanhooks the data target too, so it is in the iBFT
    extra: str = ""  # more kernel command line


@dataclass(frozen=True)
class Booted:
    guest: Guest
    console: ConsoleResult
    cmdline: str
    wall: float
    fatal: str | None = None  # the console line that ended the run early (see FATAL_RE)
    extra: dict = field(default_factory=dict)

    def detail(self, name: str) -> dict[str, str]:
        marker = self.console.marker(name)
        return details(marker) if marker else {}

    def uptime(self, name: str) -> float | None:
        marker = self.console.marker(name)
        return marker.uptime if marker else None


def details(marker: Marker) -> dict[str, str]:
    """`k=v k2=v2` of a mark's detail as a dict (words without `=` are left out)."""
    out: dict[str, str] = {}
    for word in marker.detail.split():
        key, sep, value = word.partition("=")
        if sep:
            out[key] = value
    return out


def kernel_errors(log: str, start: float, end: float) -> list[str]:
    """Console lines of the kernel's that report I/O or iSCSI connection errors, stamped in [start, end)."""
    found = []
    for line in log.splitlines():
        stamp = STAMP_RE.match(line.strip("\r"))
        if stamp and start <= float(stamp.group(1)) < end and ERROR_RE.search(line):
            found.append(line.strip())
    return found


def fs_verdict(dumpe2fs: str, e2fsck_status: int) -> str:
    """'clean', or why not: the state dumpe2fs -h shows, a journal still to recover, e2fsck -fn's status."""
    state = re.search(r"^Filesystem state:\s*(.+)$", dumpe2fs, re.M)
    features = re.search(r"^Filesystem features:\s*(.+)$", dumpe2fs, re.M)
    problems = []
    if not state or state.group(1).strip() != "clean":
        problems.append(f"state {state.group(1).strip() if state else 'unknown'}")
    if features and "needs_recovery" in features.group(1).split():
        problems.append("journal needs recovery")
    if e2fsck_status != 0:
        problems.append(f"e2fsck -fn exit {e2fsck_status}")
    return "clean" if not problems else ", ".join(problems)


def serve_disk(tgtd: Tgtd, iqn: str, disk: Path) -> None:
    """A target `iqn` whose LUN 1 is the file `disk` (the root image a boot writes to)."""
    target = tgtd.add_target(iqn, [])
    tgtd.tgtadm(
        "--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", "1", "--backing-store", str(disk)
    )  # fmt: skip


def accel() -> str:
    """TCG unless the environment says otherwise (KVM hangs on the machines this project runs on)."""
    return os.environ.get(ACCEL_ENV) or "tcg"


class Lab:
    """tgtd with the root's private disk and a data disk, kept across boots; a context manager."""

    def __init__(self, root: DebRoot) -> None:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        self.root = root
        self._tmp = make_private_dir(CACHE, f".realboot-{root.variant}")
        self.disk = self._tmp / "root.ext4"
        self.copy_seconds = 0.0
        self._tgtd = None
        self.port = 0

    def __enter__(self) -> Lab:
        from tests.support.tgtd import LunSpec, Tgtd

        try:
            started = time.monotonic()
            rootimage.copy_for_boot(self.root.image, self.disk)
            self.disk.chmod(0o600)
            self.copy_seconds = time.monotonic() - started
            shutil.copyfile(self.root.vmlinuz, self._tmp / "vmlinuz")
            shutil.copyfile(self.root.initrd, self._tmp / "initrd.img")
            self._tgtd = Tgtd(self._tmp / "tgtd").__enter__()
            serve_disk(self._tgtd, ROOT_IQN, self.disk)
            self._tgtd.add_target(DATA_IQN, [LunSpec(DATA_BYTES)])
            self.port = self._tgtd.port
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tgtd is not None:
            self._tgtd.close()
            self._tgtd = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def cmdline(self, guest: Guest, token: str) -> str:
        words = [BASE_APPEND]
        if guest.ipxe:
            words.append(f"rd.iscsi.firmware=1 root=UUID={self.root.uuid}")
        else:
            words.append(f"netroot=iscsi:{GUEST_HOST}::{self.port}:1:{ROOT_IQN} ip=dhcp root=UUID={self.root.uuid}")
        # the data target is always there: without its sanhook, open-iscsi may still log in from a record on the disk
        words.append(f"pyiscsi.test.action={guest.action} pyiscsi.test.root={ROOT_IQN} pyiscsi.test.data={DATA_IQN}")
        if guest.phase:
            words.append(f"pyiscsi.test.phase={guest.phase} pyiscsi.test.token={token}")
        if guest.extra:
            words.append(guest.extra)
        return " ".join(words)

    def boot(self, guest: Guest, token: str = "", bound: float = BOUND) -> Booted:
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"realroot-{guest.name}-{os.getpid()}-{time.monotonic_ns()}.log"
        append = self.cmdline(guest, token)
        started = time.monotonic()
        if guest.ipxe:
            targets = [SanTarget(GUEST_HOST, self.port, 1, ROOT_IQN)]
            if guest.data:
                targets.append(SanTarget(GUEST_HOST, self.port, 1, DATA_IQN))
            with StaticServer(self._tmp) as http:
                script = IpxeScript(
                    targets=tuple(targets),
                    kernel_url=http.guest_url("vmlinuz"),
                    initrd_url=http.guest_url("initrd.img"),
                    cmdline=append + " initrd=initrd.img",
                    initiator_iqn=INITIATOR,
                )
                script.write(self._tmp / "boot.ipxe")
                spec = VmSpec(tftp_dir=self._tmp, bootfile="boot.ipxe", memory_mb=MEMORY_MB)
                console, fatal = run_watched(build_command(spec, accel()), bound, log_path, guest.name)
        else:
            spec = VmSpec(
                kernel=self._tmp / "vmlinuz", initrd=self._tmp / "initrd.img", append=append, memory_mb=MEMORY_MB
            )
            console, fatal = run_watched(build_command(spec, accel()), bound, log_path, guest.name)
        return Booted(guest, console, append, time.monotonic() - started, fatal)

    def fs_state(self) -> tuple[str, str]:
        """(verdict, dumpe2fs -h text) of the private disk as the last boot left it (read-only checks)."""
        dump = subprocess.run(
            ["dumpe2fs", "-h", str(self.disk)], capture_output=True, text=True, timeout=60, check=False
        )
        fsck = subprocess.run(["e2fsck", "-fn", str(self.disk)], capture_output=True, text=True, timeout=300,
                              check=False)  # fmt: skip
        if dump.returncode != 0:
            raise HarnessError(f"dumpe2fs -h {self.disk}: {dump.stderr.strip()}")
        return fs_verdict(dump.stdout, fsck.returncode), dump.stdout + fsck.stdout + fsck.stderr


class NetLabRoot:
    """The root's private disk on netlab's tgtd, booted with `netroot=` + `ip=dhcp` over the routed network whose
    dnsmasq hands out leases of `lease_seconds`; a context manager that lives across boots, like Lab."""

    def __init__(self, root: DebRoot, lease_seconds: int, initrd: Path | None = None) -> None:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        self.root = root
        self.initrd = initrd or root.initrd  # another image for the same kernel and root (the bench's stock one)
        self.lease_seconds = lease_seconds
        self._tmp = make_private_dir(CACHE, f".netlabroot-{root.variant}")
        self.disk = self._tmp / "root.ext4"
        self.lab: NetLab | None = None

    def __enter__(self) -> NetLabRoot:
        try:
            rootimage.copy_for_boot(self.root.image, self.disk)
            self.disk.chmod(0o600)
            shutil.copyfile(self.root.vmlinuz, self._tmp / "vmlinuz")
            shutil.copyfile(self.initrd, self._tmp / "initrd.img")
            self.lab = NetLab(LabConfig(stack=Stack.IPV4, lease_seconds=self.lease_seconds)).__enter__()
            self.lab.root_target(ROOT_IQN, self.disk)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.lab is not None:
            self.lab.close()
            self.lab = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def portal(self) -> str:
        assert self.lab is not None
        return f"{self.lab.server}:{self.lab.tgtd().port}"

    def cmdline(self, guest: Guest, token: str = "") -> str:
        assert self.lab is not None
        words = [
            BASE_APPEND,
            f"netroot=iscsi:{self.portal.replace(':', '::')}:1:{ROOT_IQN} ip=dhcp root=UUID={self.root.uuid}",
            f"pyiscsi.test.action={guest.action} pyiscsi.test.root={ROOT_IQN}",
        ]
        if guest.phase:
            words.append(f"pyiscsi.test.phase={guest.phase} pyiscsi.test.token={token}")
        if guest.extra:
            words.append(guest.extra)
        return " ".join(words)

    def boot(self, guest: Guest, token: str = "", bound: float = BOUND) -> Booted:
        assert self.lab is not None
        lab = self.lab
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"realroot-{guest.name}-{os.getpid()}-{time.monotonic_ns()}.log"
        append = self.cmdline(guest, token)
        acks_at: dict[str, int] = {}

        def on_line(line: str) -> None:
            mark = MARK_RE.search(line)
            if mark and "check:" not in line:
                acks_at[mark.group(1)] = len(lab.dhcp_acks())

        spec = lab.attach(
            VmSpec(kernel=self._tmp / "vmlinuz", initrd=self._tmp / "initrd.img", append=append, memory_mb=MEMORY_MB)
        )
        started = time.monotonic()
        console, fatal = run_watched(build_command(spec, accel()), bound, log_path, guest.name, on_line)
        extra = {"acks_at": acks_at, "acks": lab.dhcp_acks(), "dhcp_log": lab.dhcp_log()}
        return Booted(guest, console, append, time.monotonic() - started, fatal, extra)


def run_watched(
    argv: list[str],
    bound: float,
    log_path: Path,
    name: str,
    on_line: Callable[[str], None] | None = None,
    fatal_re: re.Pattern[str] | None = FATAL_RE,
) -> tuple[ConsoleResult, str | None]:
    """QEMU until it exits, `bound` runs out, or FATAL_GRACE after a `fatal_re` line; always reaped. Returns the
    console and that line (None when there was none). `on_line` sees every console line as it arrives. A multipath
    root expects connection errors on a path: `fatal_re=None` lets the run go on."""
    deadline = Deadline(name, bound)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError as exc:
        raise HarnessError(f"{QEMU}: not installed (Debian package qemu-system-x86)") from exc
    assert proc.stdout is not None
    parser = ConsoleParser()
    pending = bytearray()
    fatal: str | None = None
    fatal_at = 0.0
    end = ReadEnd.EOF
    fd = proc.stdout.fileno()
    try:
        with log_path.open("wb") as log:
            while True:
                left = deadline.remaining()
                if left <= 0:
                    end = ReadEnd.DEADLINE
                    break
                if fatal is not None and time.monotonic() - fatal_at > FATAL_GRACE:
                    end = ReadEnd.MARKER
                    break
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    if pending:
                        parser.feed(bytes(pending).decode("utf-8", errors="replace"))
                    break
                log.write(chunk)
                log.flush()
                for line in split_lines(pending, chunk):
                    parser.feed(line)
                    if on_line is not None:
                        on_line(line)
                    if fatal is None and fatal_re is not None and fatal_re.search(line) and "check:" not in line:
                        fatal, fatal_at = line.strip(), time.monotonic()
    finally:
        returncode = stop(proc)
    with log_path.open("a") as log:
        log.write(f"\n# harness: {shlex.join(argv)}\n")
        if fatal is not None:
            log.write(f"# harness: stopped {FATAL_GRACE:.0f}s after: {fatal}\n")
    return finish(parser, log_path, started, end, returncode), fatal
