"""Boot the product initramfs in QEMU to a real root on a local tgtd, and read what happened off the console.

One `Boot` says how: the kernel command line (a template: `{host}` (`{host6}`), `{port}`, `{iqn}` (`{iqn2}`...
for the extra targets), `{lun}`, `{uuid}`, `{user}`/`{secret}`, `{ruser}`/`{rsecret}` are filled in), whether
iPXE `sanhook` boots the machine (an iBFT), CHAP accounts on the target, the root LUN's number, whether tgtd is
up at all. `boot(b, kernel, initrd)` starts tgtd on 127.0.0.1 with the real root image (harness.rootimage) as
that LUN, runs QEMU, and when the real root prints `PYISCSI-MARK await-failure` restarts tgtd (a connection
failure iscsid must recover from).

`paths=N` makes tgtd listen on N ports (`{port2}`... for the others): N paths to the root LUN, which an iPXE boot
names in one `sanhook` (iPXE's multipath SAN device, one iBFT target per path). `{downport}` is a port of
127.0.0.1 nothing listens on (a path that is down: the guest's connection is refused).

`firmware=Firmware.UEFI` boots the same through OVMF (q35, a private copy of its variables in the boot's temporary
directory): UEFI iPXE's `sanhook` leaves the iBFT as an ACPI table, and the kernel line names the initrd.

Failing boots end quickly: `rd.shell=0 rd.emergency=poweroff panic=-1` with QEMU's `-no-reboot`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness import rootimage
from harness.console import ConsoleParser, ConsoleResult, ReadEnd, finish, read_console
from harness.errors import HarnessError
from harness.http import GUEST_HOST, StaticServer
from harness.ipxe import Chap, IpxeScript, SanPaths, SanTarget, StaticNet
from harness.paths import CACHE, REPO
from harness.qemu import OVMF_CODE, OVMF_VARS, Firmware, VmSpec, build_command, choose_accel, stop, uefi_vars
from initiator.deadline import Deadline
from initiator.secret import Secret

IQN = "iqn.2026-12.org.pyiscsi:root"
INITIATOR = "iqn.2026-12.org.pyiscsi:client"
USER, SECRET = "pyiscsi-user", "initiatorsecret1"
RUSER, RSECRET = "pyiscsi-target", "targetsecret22"
# a failed boot powers off instead of waiting in a shell; the kernel's own panic reboots, which -no-reboot ends
FAIL_FAST = "rd.shell=0 rd.emergency=poweroff panic=-1 rd.retry=60"
BASE_APPEND = "console=ttyS0 loglevel=4 systemd.show_status=0 rw " + FAIL_FAST
GUEST_HOST6 = "fec0::2"  # QEMU user networking's IPv6 alias of the host's loopback
BOUND = 300.0  # one boot, wall clock, TCG included
# a NIC whose frames go to a UDP port on 127.0.0.1 nobody reads: carrier up, no DHCP answer, ever
DEAD_NETDEV = "socket,id=n0,udp=127.0.0.1:{udp_remote},localaddr=127.0.0.1:{udp_local}"
RESTART_PAUSE = 1.0  # seconds tgtd stays down when the real root asks for a connection failure
MEMORY_MB = 768  # a boot's guest memory, the same for every stack and the floor


@dataclass(frozen=True)
class Boot:
    name: str
    cmdline: str  # a template, see the module docstring
    ipxe: bool = False
    static: StaticNet | None = None  # iPXE: static address instead of DHCP
    chap: bool = False
    mutual: bool = False
    lun: int = 1
    iqn: str = IQN
    target_up: bool = True
    wrong_secret: bool = False  # the initiator gets another secret than the target knows
    extra_targets: tuple[str, ...] = ()  # more targets (each with one blank LUN 1), e.g. a second netroot
    netdev_extra: str = ""  # appended to QEMU's -netdev user,... (e.g. ",restrict=on")
    netdev: str | None = None  # replaces the -netdev value; DEAD_NETDEV: a link with carrier and nobody on it
    stop_on: str | None = None  # end the run at this marker (failure scenarios need no poweroff)
    memory_mb: int = MEMORY_MB
    ipv6: bool = False  # tgtd listens on [::1] too; the guest reaches it as [fec0::2] ({host6})
    firmware: Firmware = Firmware.BIOS  # UEFI: OVMF on q35 (see the module docstring)
    paths: int = 1  # portals (tgtd ports) of the root target: {port}, {port2}, ...; iPXE hooks them all


@dataclass(frozen=True)
class BootResult:
    boot: Boot
    console: ConsoleResult
    port: int
    restarted: bool = False
    extra: dict = field(default_factory=dict)  # "ports": every portal port, the main one first; "downport"

    def mark(self, name: str) -> float | None:
        marker = self.console.marker(name)
        return marker.uptime if marker else None


def fill(template: str, values: dict[str, str]) -> str:
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def _run_qemu(
    argv: list[str], bound: float, log_path: Path, on_marker: dict[str, Callable[[], None]], stop_on: str | None
) -> ConsoleResult:
    """QEMU with the console read under one deadline; `on_marker[name]()` runs when that marker shows."""
    deadline = Deadline("vm boot", bound)
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    parser = ConsoleParser()
    end = ReadEnd.EOF
    pending = dict(on_marker)
    part = 0
    parts: list[Path] = []
    try:
        while True:
            wanted = stop_on if not pending else next(iter(pending))
            piece = log_path.with_name(f"{log_path.name}.{part}")
            parts.append(piece)
            part += 1
            parser, end = read_console(proc.stdout, piece, deadline, stop_on=wanted, parser=parser)
            if end is ReadEnd.MARKER and pending and parser.markers[-1].name in pending:
                pending.pop(parser.markers[-1].name)()
                continue
            break
    finally:
        returncode = stop(proc)
        with log_path.open("wb") as log:
            for piece in parts:
                if piece.exists():
                    log.write(piece.read_bytes())
                    piece.unlink()
            log.write(f"\n# harness: {shlex.join(argv)}\n".encode())
    return finish(parser, log_path, started, end, returncode)


def boot(spec: Boot, vmlinuz: Path, initrd: Path, root_image: Path, bound: float = BOUND) -> BootResult:
    """One boot of `spec` (see the module docstring); tgtd and QEMU are always stopped before returning."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from tests.support.tgtd import LunSpec, Tgtd

    logs = CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"boot-{spec.name}-{os.getpid()}-{time.monotonic_ns()}.log"
    restarted = []
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=f".boot-{spec.name}-") as tmp_name, Tgtd(ipv6=spec.ipv6) as tgt:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        disk = rootimage.copy_for_boot(root_image, tmp / "root.ext4")
        target = tgt.add_target(spec.iqn, [])
        for lun in range(1, spec.lun):  # blank LUNs before the root one
            tgt.add_lun(target, lun, LunSpec(8 << 20))
        tgt.tgtadm(
            "--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", str(spec.lun),
            "--backing-store", str(disk),
        )  # fmt: skip
        for extra in spec.extra_targets:
            tgt.add_target(extra, [LunSpec(8 << 20)])
        ports = [tgt.port] + [tgt.add_portal() for _ in range(1, spec.paths)]
        down = _free_tcp_port()
        if spec.chap or spec.mutual:
            tgt.add_chap(target, USER, SECRET)
            if spec.mutual:
                tgt.add_mutual_chap(target, RUSER, RSECRET)
        values = {
            "host": GUEST_HOST,
            "host6": GUEST_HOST6,
            "port": str(tgt.port),
            **{f"port{n}": str(port) for n, port in enumerate(ports[1:], start=2)},
            "downport": str(down),
            "iqn": spec.iqn,
            "lun": str(spec.lun),
            "uuid": rootimage.root_uuid(disk),
            "user": USER,
            "secret": "wrongsecret99" if spec.wrong_secret else SECRET,
            "ruser": RUSER,
            "rsecret": RSECRET,
            "initiator": INITIATOR,
            **{f"iqn{n}": name for n, name in enumerate(spec.extra_targets, start=2)},
        }
        append = f"{BASE_APPEND} {fill(spec.cmdline, values)}".strip()
        if not spec.target_up:
            tgt.stop()

        def restart() -> None:
            if tgt.running:
                tgt.stop()
                time.sleep(RESTART_PAUSE)
                tgt.start()
                restarted.append(True)

        accel = choose_accel(vmlinuz)
        efi = spec.firmware == Firmware.UEFI
        ovmf_vars = uefi_vars(tmp / "OVMF_VARS.fd") if efi else None
        if spec.ipxe:
            shutil.copyfile(vmlinuz, tmp / "vmlinuz")
            if _same_fs(initrd, tmp):
                os.link(initrd, tmp / "initrd.img")
            else:
                shutil.copyfile(initrd, tmp / "initrd.img")
            (tmp / "root.ext4").chmod(0o600)
            with StaticServer(tmp) as http:
                chap = None
                if spec.chap or spec.mutual:
                    chap = Chap(
                        USER,
                        Secret(values["secret"]),
                        RUSER if spec.mutual else None,
                        Secret(RSECRET) if spec.mutual else None,
                    )
                hooks = tuple(SanTarget(GUEST_HOST, port, spec.lun, spec.iqn) for port in ports)
                script = IpxeScript(
                    targets=(hooks[0] if len(hooks) == 1 else SanPaths(hooks),),
                    kernel_url=http.guest_url("vmlinuz"),
                    initrd_url=http.guest_url("initrd.img"),
                    # EFI: the script adds initrd=<name> (the EFI stub loads it); BIOS: as it always was
                    cmdline=append if efi else append + " initrd=initrd.img",
                    initiator_iqn=INITIATOR,
                    chap=chap,
                    static=spec.static,
                    efi=efi,
                )
                script.write(tmp / "boot.ipxe")
                vm = VmSpec(tftp_dir=tmp, bootfile="boot.ipxe", memory_mb=spec.memory_mb, firmware=spec.firmware,
                            uefi_vars=ovmf_vars)  # fmt: skip
                argv = _netdev(build_command(vm, accel), spec)
                console = _run_qemu(argv, bound, log_path, {"await-failure": restart}, spec.stop_on)
        else:
            vm = VmSpec(kernel=vmlinuz, initrd=initrd, append=append, memory_mb=spec.memory_mb, firmware=spec.firmware,
                        uefi_vars=ovmf_vars)  # fmt: skip
            argv = _netdev(build_command(vm, accel), spec)
            console = _run_qemu(argv, bound, log_path, {"await-failure": restart}, spec.stop_on)
    return BootResult(spec, console, tgt.port, bool(restarted), {"ports": ports, "downport": down})


def boot_local(
    name: str, vmlinuz: Path, initrd: Path, root_image: Path, cmdline: str, bound: float = BOUND
) -> ConsoleResult:
    """The same real root on a local virtio disk, no target and no network root: a boot without any iSCSI
    initiator, the floor an initiator's boot is measured against (bench.boot). `cmdline` is a template (`{uuid}`);
    the NIC is there as in every other boot, with nothing asking for it. Runs until the `realroot` mark."""
    logs = CACHE / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"boot-{name}-{os.getpid()}-{time.monotonic_ns()}.log"
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=f".boot-{name}-") as tmp_name:
        disk = rootimage.copy_for_boot(root_image, Path(tmp_name) / "root.ext4")
        append = f"{BASE_APPEND} {fill(cmdline, {'uuid': rootimage.root_uuid(disk)})}".strip()
        vm = VmSpec(kernel=vmlinuz, initrd=initrd, append=append, memory_mb=MEMORY_MB, drives=(disk,))
        argv = build_command(vm, choose_accel(vmlinuz))
        return _run_qemu(argv, bound, log_path, {}, "realroot")


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


def _free_tcp_port() -> int:
    """A port of 127.0.0.1 nobody listens on now (the kernel's choice, given back at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _netdev(argv: list[str], spec: Boot) -> list[str]:
    i = argv.index("-netdev")
    value = argv[i + 1] + spec.netdev_extra
    if spec.netdev is not None:
        value = spec.netdev.format(udp_remote=_free_udp_port(), udp_local=_free_udp_port())
    return [*argv[: i + 1], value, *argv[i + 2 :]]


def require_tools(firmware: Firmware = Firmware.BIOS) -> str | None:
    """Why these boots cannot run here, or None."""
    for tool in ("qemu-system-x86_64", "dracut", "tgtd", "mke2fs", "blkid"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if firmware == Firmware.UEFI:
        for path in (OVMF_CODE, OVMF_VARS):
            if not path.is_file():
                return f"{path} not installed (Debian package ovmf)"
    if os.geteuid() != 0:
        return "tgtd and dracut need root"
    for binary in rootimage.BINARIES:
        if not Path(binary).is_file():
            return f"{binary} not installed (open-iscsi)"
    return None


__all__ = ["Boot", "BootResult", "HarnessError", "boot", "boot_local", "require_tools"]
