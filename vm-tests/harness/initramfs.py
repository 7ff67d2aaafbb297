"""Build the product initramfs: Debian's dracut with `dracut/95pyiscsi`, for the pinned kernel or another one.

    python -m harness.initramfs [--kver K] [--kernel F] [--flavour systemd|sh] [--out build/initramfs-pyiscsi.img]

(`make initramfs`, `KVER=`/`KERNEL=`). dracut runs with a throw-away `dracutbasedir` that is the host's
/usr/lib/dracut by symlinks plus our module, so nothing is installed on the host. Images are cached under
cache/initramfs by a hash of everything that goes into them (the module's files, the Python sources that get
frozen, the kernel's module index, dracut's version, the flavour and options), so tests rebuild nothing when
nothing changed; `build/initramfs-pyiscsi.img` and `build/vmlinuz` are copies of the cached files.

Flavours: `systemd` (the default: Debian's dracut with systemd in the initramfs) and `sh` (dracut's own init).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import CACHE, REPO

HOST_DRACUT = Path("/usr/lib/dracut")
MODULE = REPO / "dracut" / "95pyiscsi"
BUILD = REPO / "build"
OUT = BUILD / "initramfs-pyiscsi.img"
VMLINUZ = BUILD / "vmlinuz"
VENV_PYTHON = REPO / ".venv" / "bin" / "python"
DRACUT_BOUND = 900.0
# dracut modules per flavour; the root filesystem and the virtio disk/NIC drivers come as --add-drivers
FLAVOURS = {
    "systemd": "base systemd systemd-initrd dracut-systemd udev-rules rootfs-block fs-lib shutdown pyiscsi",
    "sh": "base udev-rules rootfs-block fs-lib shutdown pyiscsi",
}
DEFAULT_FLAVOUR = "systemd"
KEEP = 3  # cached images kept per flavour and kernel
# an image used this recently is kept beyond KEEP: a test run (CI's, in another checkout) may still boot it while
# another run builds images of its own
IN_USE = 3 * 3600.0
DRIVERS = "ext4 virtio_pci virtio_net virtio_blk sd_mod"
# the NICs QEMU gives the test machines; every other wired driver would add 40 MB (unpacked) to each boot
NET_DRIVERS = "virtio_net e1000 e1000e"
# what the frozen runtime is made of: a change in any of these must give a new image
SOURCE_DIRS = ("boot", "initiator")


@dataclass(frozen=True)
class Initramfs:
    path: Path
    kver: str
    flavour: str
    seconds: float  # how long dracut took (0.0: from the cache)
    cached: bool


def dracut_base(into: Path, module: Path = MODULE, host_dracut: Path = HOST_DRACUT) -> Path:
    """A throw-away dracutbasedir: the host's dracut, by symlinks, with our module added to modules.d."""
    base = into / "dracut-base"
    if base.exists():
        return base
    (base / "modules.d").mkdir(parents=True)
    for entry in host_dracut.iterdir():
        if entry.name != "modules.d":
            (base / entry.name).symlink_to(entry)
    for mod in (host_dracut / "modules.d").iterdir():
        if mod.name != module.name:
            (base / "modules.d" / mod.name).symlink_to(mod)
    (base / "modules.d" / module.name).symlink_to(module)
    return base


def dracut_argv(
    kver: str,
    moddir: Path | None,
    tmp: Path,
    conf: Path,
    modules: str,
    out: Path,
    drivers: str = DRIVERS,
    compress: str | None = "gzip",
) -> list[str]:
    argv = ["dracut", "--force", "--no-hostonly", "--no-early-microcode"]
    argv += ["--compress", compress] if compress else ["--no-compress"]
    argv += ["--kver", kver]
    if moddir is not None:
        argv += ["--kmoddir", str(moddir)]
    argv += ["--tmpdir", str(tmp), "--conf", str(conf), "--confdir", str(tmp / "conf.d"), "-m", modules]
    argv += ["--add-drivers", drivers] if drivers else []
    return [*argv, str(out)]


def run_dracut(
    tmp: Path,
    kver: str,
    moddir: Path | None,
    modules: str,
    conf: str,
    out: Path,
    drivers: str = DRIVERS,
    bound: float = DRACUT_BOUND,
    compress: str | None = "gzip",
) -> subprocess.CompletedProcess[str]:
    """One dracut run with our module in a throw-away dracutbasedir; `conf` is the dracut.conf text."""
    (tmp / "conf.d").mkdir(exist_ok=True)
    (tmp / "dracut.conf").write_text(conf)
    base = dracut_base(tmp)
    argv = dracut_argv(kver, moddir, tmp, tmp / "dracut.conf", modules, out, drivers, compress)
    env = {**os.environ, "dracutbasedir": str(base)}
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=bound, check=False)


def product_conf(python: Path, freeze_args: str = "", net_drivers: str = NET_DRIVERS) -> str:
    conf = f"pyiscsi_python={python}\n"
    conf += f'pyiscsi_net_drivers="{net_drivers}"\n' if net_drivers else ""
    return conf + (f'pyiscsi_freeze_args="{freeze_args}"\n' if freeze_args else "")


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.is_file():
            found.append(path)
    return found


def _dracut_version() -> str:
    try:
        done = subprocess.run(["dracut", "--version"], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as exc:
        raise HarnessError("dracut: not installed (Debian package dracut-core)") from exc
    return done.stdout.strip()


def content_key(kver: str, moddir: Path | None, flavour: str, conf: str, python: Path) -> str:
    digest = hashlib.sha256()
    for part in (kver, flavour, FLAVOURS[flavour], DRIVERS, conf, str(python), _dracut_version(), sys.version):
        digest.update(part.encode() + b"\0")
    sources = _files([MODULE, *(REPO / d for d in SOURCE_DIRS), REPO / "pyproject.toml"])
    if moddir is not None:
        sources.append(moddir / "modules.dep")
    for path in sources:
        digest.update(str(path.relative_to(REPO) if path.is_relative_to(REPO) else path).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build(
    kver: str,
    moddir: Path | None = None,
    flavour: str = DEFAULT_FLAVOUR,
    python: Path | None = None,
    cache: Path | None = None,
    log=None,
    net_drivers: str = NET_DRIVERS,
) -> Initramfs:
    """The initramfs for `kver` (modules from `moddir`, else /lib/modules/<kver>), built once per content."""
    if flavour not in FLAVOURS:
        raise HarnessError(f"flavour: expected one of {sorted(FLAVOURS)}, got {flavour!r}")
    python = python or (VENV_PYTHON if VENV_PYTHON.exists() else Path(sys.executable))
    conf = product_conf(python, net_drivers=net_drivers)
    cache = cache or CACHE / "initramfs"
    cache.mkdir(parents=True, exist_ok=True)
    key = content_key(kver, moddir, flavour, conf, python)
    out = cache / f"initramfs-{flavour}-{kver}-{key}.img"
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test workers: one builds, the others take its image
        if out.is_file():
            os.utime(out)  # used now (prune)
            return Initramfs(out, kver, flavour, 0.0, True)
        if log:
            log(f"initramfs: building the {flavour} image for {kver} with dracut (a minute or two)")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(dir=cache, prefix=".dracut-") as tmp_name:
            tmp = Path(tmp_name)
            part = tmp / "initramfs.img"
            result = run_dracut(tmp, kver, moddir, FLAVOURS[flavour], conf, part)
            (cache / f"dracut-{flavour}-{kver}.log").write_text(result.stderr)
            if result.returncode != 0 or not part.is_file():
                tail = "\n".join(result.stderr.splitlines()[-20:])
                raise HarnessError(f"dracut failed ({result.returncode}) for {kver} ({flavour}):\n{tail}")
            os.replace(part, out)
            out.chmod(0o644)
        prune(cache, f"initramfs-{flavour}-{kver}-*.img", keep=KEEP)
    return Initramfs(out, kver, flavour, time.monotonic() - started, False)


def prune(cache: Path, pattern: str, keep: int, in_use: float = IN_USE, now: float | None = None) -> None:
    """Drop all but the `keep` most recently built or used images of one kind (each is 20-30 MB), except those
    used within `in_use` seconds."""
    now = time.time() if now is None else now
    for old in sorted(cache.glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)[keep:]:
        if now - old.stat().st_mtime > in_use:
            old.unlink(missing_ok=True)


def pinned(flavour: str = DEFAULT_FLAVOUR, log=None) -> tuple[Path, Initramfs]:
    """(vmlinuz, initramfs) for the pinned test kernel."""
    from harness import kernel

    kern = kernel.require()
    return kern.vmlinuz, build(kern.release, kern.modules, flavour, log=log)


def _kver_of_kernel_file(path: Path) -> str | None:
    """The release string in a bzImage header (offset 0x20e holds a pointer to it, minus 0x200)."""
    try:
        data = path.read_bytes()
        offset = int.from_bytes(data[0x20E:0x210], "little") + 0x200
        return data[offset : data.index(b"\0", offset)].split(b" ")[0].decode()
    except (OSError, ValueError, IndexError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.initramfs", description="Build build/initramfs-pyiscsi.img.")
    parser.add_argument("--kver", help="kernel release (default: the pinned test kernel's)")
    parser.add_argument("--kernel", type=Path, help="kernel image to copy to build/vmlinuz (default: the kver's)")
    parser.add_argument("--flavour", choices=sorted(FLAVOURS), default=DEFAULT_FLAVOUR)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--net-drivers",
        help=f"NIC drivers to carry (default: '{NET_DRIVERS}' for the pinned kernel, every wired one for --kver)",
    )
    args = parser.parse_args(argv)
    try:
        if args.kver is None and args.kernel is None:
            from harness import kernel

            kern = kernel.require()
            drivers = NET_DRIVERS if args.net_drivers is None else args.net_drivers
            image = build(kern.release, kern.modules, args.flavour, log=print, net_drivers=drivers)
            vmlinuz = kern.vmlinuz
        else:
            kver = args.kver or (_kver_of_kernel_file(args.kernel) if args.kernel else None)
            if kver is None:
                parser.error(f"--kernel {args.kernel}: no release string found; give --kver too")
            moddir = Path("/lib/modules") / kver
            if not (moddir / "modules.dep").is_file():
                from harness import kernel

                cached = kernel.cached()
                if cached is not None and cached.release == kver:
                    moddir = cached.modules
                else:
                    parser.error(f"--kver {kver}: no modules in /lib/modules/{kver}")
            vmlinuz = args.kernel or (moddir.parents[2] / "boot" / f"vmlinuz-{kver}")
            if not vmlinuz.is_file():
                vmlinuz = Path("/boot") / f"vmlinuz-{kver}"
            image = build(kver, moddir, args.flavour, log=print, net_drivers=args.net_drivers or "")
    except HarnessError as exc:
        print(f"initramfs: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image.path, args.out)
    if vmlinuz.is_file():
        shutil.copyfile(vmlinuz, VMLINUZ)
    else:
        print(f"initramfs: warning: no kernel image {vmlinuz}; build/vmlinuz not written", file=sys.stderr)
    how = "from the cache" if image.cached else f"built in {image.seconds:.0f}s"
    size = args.out.stat().st_size / 1e6
    print(f"initramfs: {args.out} ({image.flavour}, {image.kver}, {size:.1f} MB, {how}); kernel {VMLINUZ}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
