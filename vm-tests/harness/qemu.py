"""QEMU command building and one bounded run: serial console to a pipe, guest poweroff ends it.

`build_command(spec, accel)` is pure and unit-tested; `run(spec, ...)` starts QEMU, reads the console under a
named deadline (harness.console) and always reaps the process. KVM is used only if a short probe boots the
pinned kernel far enough to print its banner: on nested machines /dev/kvm can exist and hang forever.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.console import ConsoleResult, read_console
from harness.console import finish as finish_console
from harness.errors import HarnessError
from harness.paths import CACHE
from initiator.deadline import Deadline

QEMU = "qemu-system-x86_64"
KVM_PROBE_SECONDS = 6.0
ACCEL_ENV = "PYISCSI_VM_ACCEL"  # "tcg" or "kvm" skips the probe


@dataclass(frozen=True)
class VirtFs:
    """A host directory shared over 9p (virtio-9p-pci)."""

    path: Path
    tag: str
    readonly: bool = True


@dataclass(frozen=True)
class VmSpec:
    """Everything that shapes one QEMU run. Direct kernel boot when `kernel` is set, else network boot."""

    kernel: Path | None = None
    initrd: Path | None = None
    append: str = ""
    memory_mb: int = 1024
    cpus: int = 1
    tftp_dir: Path | None = None
    bootfile: str | None = None
    acpi_tables: tuple[Path, ...] = ()
    virtfs: tuple[VirtFs, ...] = ()
    drives: tuple[Path, ...] = ()
    nic_rom: Path | None = None  # None: QEMU's default for the NIC, which is ipxe-qemu's efi-virtio.rom
    extra: tuple[str, ...] = ()

    @property
    def netboot(self) -> bool:
        return self.kernel is None


def netdev_option(spec: VmSpec) -> str:
    """QEMU user networking: the guest is 10.0.2.15, the host's 127.0.0.1 is 10.0.2.2 from inside."""
    parts = ["user", "id=n0", "net=10.0.2.0/24"]
    if spec.tftp_dir is not None:
        parts.append(f"tftp={spec.tftp_dir}")
    if spec.bootfile is not None:
        parts.append(f"bootfile={spec.bootfile}")
    return ",".join(parts)


def build_command(spec: VmSpec, accel: str) -> list[str]:
    """The argv for one run. Pure: no files are checked here, so tests can compare whole commands."""
    if accel not in ("tcg", "kvm"):
        raise HarnessError(f"accel: expected 'tcg' or 'kvm', got {accel!r}")
    if spec.netboot and spec.bootfile is None:
        raise HarnessError("VmSpec: no kernel and no bootfile: nothing to boot")
    argv = [QEMU, "-accel", accel, "-M", "pc", "-m", str(spec.memory_mb), "-smp", str(spec.cpus)]
    argv += ["-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none"]
    nic = "virtio-net-pci,netdev=n0" + (f",romfile={spec.nic_rom}" if spec.nic_rom else "")
    argv += ["-netdev", netdev_option(spec), "-device", nic]
    if spec.netboot:
        argv += ["-boot", "n"]
    else:
        argv += ["-kernel", str(spec.kernel)]
        if spec.initrd is not None:
            argv += ["-initrd", str(spec.initrd)]
        argv += ["-append", spec.append]
    for table in spec.acpi_tables:
        argv += ["-acpitable", f"file={table}"]
    for share in spec.virtfs:
        opts = f"local,path={share.path},mount_tag={share.tag},security_model=none,multidevs=remap"
        argv += ["-virtfs", opts + (",readonly=on" if share.readonly else "")]
    for index, drive in enumerate(spec.drives):
        argv += ["-drive", f"file={drive},format=raw,if=virtio,index={index}"]
    argv += list(spec.extra)
    return argv


def probe_command(kernel: Path) -> list[str]:
    return [
        QEMU,
        "-accel",
        "kvm",
        "-M",
        "q35",
        "-m",
        "128",
        "-nographic",
        "-no-reboot",
        "-nodefaults",
        "-serial",
        "stdio",
        "-kernel",
        str(kernel),
        "-append",
        "console=ttyS0 panic=-1",
    ]


def probe_kvm(kernel: Path, timeout: float = KVM_PROBE_SECONDS) -> bool:
    """True only if KVM boots the kernel to its banner within `timeout` seconds."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    try:
        proc = subprocess.run(
            probe_command(kernel), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:  # run() has killed it; a banner may still have shown
        return b"Linux version" in (exc.stdout or b"")
    return b"Linux version" in proc.stdout


_accel_verdict: str | None = None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def choose_accel(kernel: Path, verdict_file: Path | None = None) -> str:
    """'kvm' or 'tcg': the environment override, else the probe's verdict.

    The verdict is remembered for this process and, keyed by the host's boot id, in `cache/accel`, so the
    command-line tools do not pay a hanging probe on every run; it cannot change until the host reboots.
    """
    global _accel_verdict
    forced = os.environ.get(ACCEL_ENV)
    if forced:
        return forced
    if _accel_verdict is not None:
        return _accel_verdict
    verdict_file = verdict_file or CACHE / "accel"
    key = _boot_id()
    try:
        saved_key, saved = verdict_file.read_text().split()
        if saved_key == key and saved in ("kvm", "tcg"):
            _accel_verdict = saved
            return saved
    except (OSError, ValueError):
        pass
    _accel_verdict = "kvm" if probe_kvm(kernel) else "tcg"
    verdict_file.parent.mkdir(parents=True, exist_ok=True)
    verdict_file.write_text(f"{key} {_accel_verdict}\n")
    return _accel_verdict


def stop(proc: subprocess.Popen[bytes]) -> int:
    """End a QEMU that is still running (terminate, then kill after 5 s); its exit status, its pipe closed."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    returncode = proc.wait(timeout=10)
    if proc.stdout is not None:
        proc.stdout.close()
    return returncode


def run(
    spec: VmSpec,
    bound: float,
    name: str = "vm boot",
    log_path: Path | None = None,
    stop_on: str | None = None,
    accel: str | None = None,
    probe_kernel: Path | None = None,
) -> ConsoleResult:
    """Boot once, read the console until poweroff, the marker `stop_on`, or `bound` seconds; always reap QEMU."""
    if accel is None:
        probe = probe_kernel or spec.kernel
        accel = choose_accel(probe) if probe is not None else "tcg"
    if log_path is None:
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"{name.replace(' ', '-')}-{os.getpid()}-{time.monotonic_ns()}.log"
    argv = build_command(spec, accel)
    started = time.monotonic()
    deadline = Deadline(name, bound)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    except FileNotFoundError as exc:
        raise HarnessError(f"{QEMU}: not installed (Debian package qemu-system-x86)") from exc
    assert proc.stdout is not None
    try:
        parser, end = read_console(proc.stdout, log_path, deadline, stop_on=stop_on)
    finally:
        returncode = stop(proc)
    with log_path.open("a") as log:
        log.write(f"\n# harness: {shlex.join(argv)}\n")
    return finish_console(parser, log_path, started, end, returncode)
