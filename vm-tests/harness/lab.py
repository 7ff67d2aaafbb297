"""Lab mode: run one command inside a VM with the pinned kernel, using the host's own files as its root.

The guest is a busybox initramfs that loads the modules (virtio, 9p, iscsi_tcp, sd_mod, ...), brings up eth0
as 10.0.2.15/24 (QEMU user networking, so the host's 127.0.0.1 is 10.0.2.2), mounts the host's `/` read-only
over 9p with a tmpfs overlay on top (writes stay in the guest), mounts /proc /sys /dev /run, binds the pinned
kernel's whole module tree (from the host's cache) at /lib/modules/<release> so plain `modprobe` works, chroots
and runs the command from a per-run 9p share that also collects its stdout, stderr and exit status.
Kernel-facing code (NETLINK_ISCSI, sysfs, the iBFT) is thus exercised in seconds without building anything.

    python -m harness.lab [--timeout S] [--acpitable FILE] [--drive IMG] [--share DIR]
                          [--sanhook iscsi:10.0.2.2::PORT:LUN:IQN [--initiator-iqn IQN]] -- CMD ...
    e.g. python -m harness.lab --acpitable tests/fixtures/ibft/ipxe-static.bin -- .venv/bin/pyiscsi ...

Exit status: the command's, or 124 if the VM did not report one before the deadline.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from harness import images, kernel
from harness.console import ConsoleResult
from harness.http import StaticServer
from harness.ipxe import Chap, IpxeScript, SanTarget, StaticNet
from harness.paths import CACHE, REPO
from harness.qemu import VirtFs, VmSpec, run

LAB_BOUND = 120.0
LAB_APPEND = "console=ttyS0 panic=-1 quiet loglevel=4"

LAB_INIT = """\
for m in virtio_pci virtio_net 9pnet_virtio 9p overlay crc32c_generic iscsi_tcp sd_mod; do
    modprobe $m || die "modprobe $m"
done
mark modules
ip link set lo up
if ! grep -qw lab.nonet /proc/cmdline; then
    ip link set eth0 up || die "no eth0"
    ip addr add 10.0.2.15/24 dev eth0
    ip route add default via 10.0.2.2
    printf 'nameserver 10.0.2.3\\n' > /etc/resolv.conf
    n=0  # carrier follows link-up a moment later; wait at most 5 s so the command starts with a working link
    while [ "$(cat /sys/class/net/eth0/operstate 2>/dev/null)" != up ] && [ $n -lt 50 ]; do sleep 0.1; n=$((n+1)); done
fi
mark net
NINEP=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /host /upper /new
mount -t 9p -o $NINEP,ro,cache=loose hostroot /host || die "9p hostroot"
mount -t tmpfs -o mode=0755 tmpfs /upper
mkdir -p /upper/up /upper/work
if mount -t overlay -o lowerdir=/host,upperdir=/upper/up,workdir=/upper/work overlay /new; then
    R=/new
else
    echo "lab: overlay failed; the root stays read-only"
    R=/host
fi
mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs tmpfs $R/dev/shm
# A checkout under /tmp or /run (a CI clone may live there) would vanish under the guest's own tmpfs: move it
# aside first and back on top afterwards, so the command still finds the repository, writable as the rest.
KEEP=
for arg in $(cat /proc/cmdline); do
    case "$arg" in lab.repo=/tmp/* | lab.repo=/run/*) KEEP=${arg#lab.repo=};; esac
done
if [ -n "$KEEP" ] && [ -d "$R$KEEP" ]; then
    mkdir -p /kept && mount --bind "$R$KEEP" /kept || die "bind $KEEP"
fi
mount -t tmpfs -o mode=0755 tmpfs $R/run
mount -t tmpfs -o mode=1777 tmpfs $R/tmp
if [ -n "$KEEP" ] && [ -d /kept ]; then
    mkdir -p "$R$KEEP" && mount --move /kept "$R$KEEP" || die "move $KEEP back"
fi
KREL=$(uname -r)
MODS=/lib/modules/$KREL  # the initramfs's few; the whole depmod'ed tree from the host's cache when we have it
for arg in $(cat /proc/cmdline); do
    case "$arg" in lab.modules=*) [ -f "$R${arg#lab.modules=}/modules.dep" ] && MODS="$R${arg#lab.modules=}";; esac
done
if mkdir -p $R/lib/modules/$KREL 2>/dev/null; then
    mount --bind $MODS $R/lib/modules/$KREL
fi
cp /etc/resolv.conf $R/run/lab-resolv.conf 2>/dev/null
mkdir -p $R/run/lab
mount -t 9p -o $NINEP,cache=none labrun $R/run/lab || die "9p labrun"
while read -r tag path; do
    mkdir -p "$R$path" && mount -t 9p -o $NINEP,cache=none "$tag" "$R$path" || die "9p $tag at $path"
done < $R/run/lab/shares
mark chroot
chroot $R /bin/sh /run/lab/cmd.sh > $R/run/lab/stdout 2> $R/run/lab/stderr
status=$?
echo "$status" > $R/run/lab/status
sync
mark exit $status
poweroff -f
sleep 5
"""


@dataclass(frozen=True)
class LabSanhook:
    """Boot the lab through iPXE instead of -kernel: `sanhook` these targets first, so the guest finds the
    firmware iBFT in low memory (the legacy-BIOS path) describing a target that is really there."""

    targets: tuple[SanTarget, ...]
    initiator_iqn: str | None = None
    chap: Chap | None = None
    static: StaticNet | None = None


@dataclass(frozen=True)
class LabResult:
    """The command's exit status (None if the VM never reported one), its output, and the boot's console."""

    status: int | None
    stdout: str
    stderr: str
    console: ConsoleResult

    @property
    def seconds(self) -> float:
        return self.console.wall_seconds


def command_script(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> str:
    """The shell script the guest runs in the chroot: env, cwd, then exec the command."""
    lines = ["#!/bin/sh", "set -e"]
    base = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
    for key, value in {**base, "PYTHONPATH": str(REPO), **env}.items():
        lines.append(f"export {key}={shlex.quote(value)}")
    lines.append(f"cd {shlex.quote(str(cwd))}")
    lines.append("set +e")
    lines.append("exec " + shlex.join(argv))
    return "\n".join(lines) + "\n"


def share_table(shares: Sequence[Path]) -> str:
    """`tag path` lines the guest mounts from; paths must be absolute and free of whitespace."""
    lines = []
    for index, path in enumerate(shares):
        text = str(path)
        if not path.is_absolute() or any(ch.isspace() for ch in text):
            raise ValueError(f"lab share: need an absolute path without whitespace, got {text!r}")
        lines.append(f"share{index} {text}")
    return "".join(line + "\n" for line in lines)


def lab_initramfs(kern: kernel.Kernel) -> Path:
    return images.build_initramfs(kern, LAB_INIT)


def lab_spec(
    kern: kernel.Kernel,
    initrd: Path,
    rundir: Path,
    acpi_tables: Sequence[Path] = (),
    drives: Sequence[Path] = (),
    memory_mb: int = 1024,
    append: str = "",
    shares: Sequence[Path] = (),
) -> VmSpec:
    writable = tuple(VirtFs(path, f"share{index}", readonly=False) for index, path in enumerate(shares))
    return VmSpec(
        kernel=kern.vmlinuz,
        initrd=initrd,
        append=f"{LAB_APPEND} {append}".strip(),
        memory_mb=memory_mb,
        acpi_tables=tuple(acpi_tables),
        drives=tuple(drives),
        virtfs=(VirtFs(Path("/"), "hostroot", readonly=True), VirtFs(rundir, "labrun", readonly=False), *writable),
    )


def run_in_lab(
    argv: Sequence[str],
    bound: float = LAB_BOUND,
    cwd: Path = REPO,
    env: Mapping[str, str] | None = None,
    acpi_tables: Sequence[Path] = (),
    drives: Sequence[Path] = (),
    memory_mb: int = 1024,
    append: str = "",
    shares: Sequence[Path] = (),
    sanhook: LabSanhook | None = None,
    configure_net: bool = True,
) -> LabResult:
    """Boot the lab VM, run `argv` as root in the chroot, return its status and output.

    The root is the host's `/` (read-only, with a guest-only tmpfs overlay); each directory in `shares` is
    mounted writable at the same path, so the command can leave files for the host there. With `sanhook`,
    iPXE logs in to the targets (which the caller serves, e.g. with tests.support.tgtd) before Linux starts.
    With `configure_net=False` eth0 is left down and unaddressed, for testing our own bring-up (QEMU's DHCP
    server answers on it).
    """
    if not argv:
        raise ValueError("run_in_lab: empty command")
    kern = kernel.require()
    initrd = lab_initramfs(kern)
    (CACHE / "lab").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE / "lab", prefix="run-") as tmp:
        rundir = Path(tmp)
        rundir.chmod(0o755)
        (rundir / "cmd.sh").write_text(command_script(argv, cwd, env or {}))
        (rundir / "shares").write_text(share_table(shares))
        extra = f"{append} lab.modules={kern.modules} lab.repo={REPO}" + ("" if configure_net else " lab.nonet")
        spec = lab_spec(kern, initrd, rundir, acpi_tables, drives, memory_mb, extra, shares)
        log_path = rundir.parent / f"{rundir.name}.log"
        if sanhook is None:
            console = run(spec, bound, name="lab", log_path=log_path)
        else:
            with _ipxe_served(spec, sanhook) as netboot:
                console = run(netboot, bound, name="lab-ipxe", log_path=log_path, probe_kernel=kern.vmlinuz)
        status_file = rundir / "status"
        status = int(status_file.read_text()) if status_file.is_file() else None
        stdout = (rundir / "stdout").read_text(errors="replace") if (rundir / "stdout").exists() else ""
        stderr = (rundir / "stderr").read_text(errors="replace") if (rundir / "stderr").exists() else ""
    return LabResult(status, stdout, stderr, console)


@contextmanager
def _ipxe_served(spec: VmSpec, sanhook: LabSanhook) -> Iterator[VmSpec]:
    """Serve the spec's kernel and initrd over HTTP, write the iPXE script, and turn the spec into a netboot."""
    assert spec.kernel is not None and spec.initrd is not None
    with tempfile.TemporaryDirectory(dir=CACHE / "lab", prefix="serve-") as tmp, StaticServer(Path(tmp)) as http:
        serve = Path(tmp)
        serve.chmod(0o755)
        (serve / "vmlinuz").symlink_to(spec.kernel)
        (serve / "initrd.img").symlink_to(spec.initrd)
        IpxeScript(
            targets=sanhook.targets,
            kernel_url=http.guest_url("vmlinuz"),
            initrd_url=http.guest_url("initrd.img"),
            cmdline=spec.append,
            initiator_iqn=sanhook.initiator_iqn,
            chap=sanhook.chap,
            static=sanhook.static,
        ).write(serve / "boot.ipxe")
        yield replace(spec, kernel=None, initrd=None, append="", tftp_dir=serve, bootfile="boot.ipxe")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.lab", description="Run one command in a VM (see module doc).")
    parser.add_argument("--timeout", type=float, default=LAB_BOUND, help="seconds for the whole boot and run")
    parser.add_argument("--acpitable", type=Path, action="append", default=[], help="hand QEMU an ACPI table")
    parser.add_argument("--drive", type=Path, action="append", default=[], help="raw image as a virtio disk")
    parser.add_argument("--append", default="", help="extra kernel command line")
    parser.add_argument("--share", type=Path, action="append", default=[], help="host dir mounted writable")
    parser.add_argument(
        "--sanhook",
        action="append",
        default=[],
        metavar="iscsi:SERVER::PORT:LUN:IQN",
        help="boot through iPXE and sanhook this target first (the host's 127.0.0.1 is 10.0.2.2)",
    )
    parser.add_argument("--initiator-iqn", help="with --sanhook: iPXE's initiator-iqn")
    parser.add_argument("--no-net", action="store_true", help="leave eth0 down (to test our own bring-up)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the console summary")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (use: python -m harness.lab -- CMD ...)")
    targets = tuple(SanTarget.parse(uri) for uri in args.sanhook)
    result = run_in_lab(
        command,
        bound=args.timeout,
        cwd=Path(os.getcwd()),
        acpi_tables=args.acpitable,
        drives=args.drive,
        append=args.append,
        shares=[p.resolve() for p in args.share],
        sanhook=LabSanhook(targets, args.initiator_iqn) if targets else None,
        configure_net=not args.no_net,
    )
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if args.verbose or result.status is None:
        print(f"harness.lab: {result.console.summary()}", file=sys.stderr)
    return 124 if result.status is None else result.status


if __name__ == "__main__":
    sys.exit(main())
