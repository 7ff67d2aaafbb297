"""QEMU command building and one bounded run: serial console to a pipe, guest poweroff ends it.

`build_command(spec, accel)` is pure and unit-tested; `run(spec, ...)` starts QEMU, reads the console under a
named deadline (harness.console) and always reaps the process. KVM is used only if a short probe boots the
pinned kernel far enough to print its banner: on nested machines /dev/kvm can exist and hang forever.

Firmware: legacy BIOS (SeaBIOS, machine `pc`) by default; `Firmware.UEFI` boots machine `q35` with Debian's OVMF
(`ovmf`): the code read-only, the variables from a private copy per VM (`uefi_vars`), since firmware writes
them (boot entries). The NIC's option ROM is ipxe-qemu's efi-virtio.rom either way, its EFI half under OVMF.
"""

from __future__ import annotations

import enum
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.console import ConsoleResult, read_console
from harness.console import finish as finish_console
from harness.errors import HarnessError
from harness.paths import CACHE, IPXE_VIRTIO_ROM
from initiator.deadline import Deadline

QEMU = "qemu-system-x86_64"
KVM_PROBE_SECONDS = 6.0
ACCEL_ENV = "PYISCSI_VM_ACCEL"  # "tcg" or "kvm" skips the probe
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")  # Debian's ovmf: the firmware, never written
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")  # its empty variable store, copied per VM


class Firmware(enum.StrEnum):
    BIOS = "bios"
    UEFI = "uefi"


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
    # -netdev values (without id=) instead of the user network, one virtio NIC each (harness.netlab's taps); a
    # netboot then needs no bootfile: the lab's DHCP server names it
    netdevs: tuple[str, ...] = ()
    netns: str | None = None  # run QEMU inside this network namespace (`ip netns exec`), where the taps are
    firmware: Firmware = Firmware.BIOS
    uefi_vars: Path | None = None  # UEFI: this VM's writable copy of OVMF_VARS (see `uefi_vars()`)

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


def firmware_options(spec: VmSpec) -> tuple[str, list[str]]:
    """(machine type, firmware options): SeaBIOS's `pc`, or `q35` with OVMF's code and this VM's variables."""
    try:
        firmware = Firmware(spec.firmware)
    except ValueError:
        raise HarnessError(f"VmSpec firmware: expected 'bios' or 'uefi', got {spec.firmware!r}") from None
    if firmware is Firmware.BIOS:
        return "pc", []
    if spec.uefi_vars is None:
        raise HarnessError("VmSpec uefi_vars: UEFI needs this VM's own copy of OVMF_VARS (harness.qemu.uefi_vars)")
    return "q35", [
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={spec.uefi_vars}",
    ]  # fmt: skip


def uefi_vars(dest: Path, template: Path = OVMF_VARS) -> Path:
    """A fresh writable copy of OVMF's empty variable store at `dest` (in the boot's own temporary directory)."""
    if not template.is_file():
        raise HarnessError(f"{template}: not installed (Debian package ovmf)")
    shutil.copyfile(template, dest)
    dest.chmod(0o600)
    return dest


def build_command(spec: VmSpec, accel: str) -> list[str]:
    """The argv for one run. Pure: no files are checked here, so tests can compare whole commands."""
    if accel not in ("tcg", "kvm"):
        raise HarnessError(f"accel: expected 'tcg' or 'kvm', got {accel!r}")
    if spec.netboot and spec.bootfile is None and not spec.netdevs:
        raise HarnessError("VmSpec: no kernel and no bootfile: nothing to boot")
    machine, firmware = firmware_options(spec)
    argv = [QEMU, "-accel", accel, "-M", machine, "-m", str(spec.memory_mb), "-smp", str(spec.cpus)]
    argv += ["-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none", *firmware]
    uefi = spec.firmware == Firmware.UEFI
    nic_rom = spec.nic_rom or (IPXE_VIRTIO_ROM if uefi else None)
    rom = f",romfile={nic_rom}" if nic_rom else ""
    # OVMF boots what the fw_cfg boot order names (bootindex=), not `-boot n`: the first NIC, for a netboot
    first = ",bootindex=1" if uefi and spec.netboot else ""
    netdevs = [f"{value},id=n{index}" for index, value in enumerate(spec.netdevs)] or [netdev_option(spec)]
    for index, netdev in enumerate(netdevs):
        argv += ["-netdev", netdev, "-device", f"virtio-net-pci,netdev=n{index}{rom}{first if index == 0 else ''}"]
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
    return ["ip", "netns", "exec", spec.netns, *argv] if spec.netns else argv


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
