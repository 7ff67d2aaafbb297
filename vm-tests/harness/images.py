"""Guest images without loop mounts: a busybox initramfs (cpio from a staging dir) and ext4 roots (`mke2fs -d`).

The initramfs holds static busybox, the kernel modules a boot test needs (with their dependencies taken from the
kernel's modules.dep, then re-indexed with `depmod -b` so busybox's modprobe resolves them) and an `/init`
script the caller writes. Images are cached by a hash of their inputs, so repeated test runs rebuild nothing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from harness.errors import HarnessError
from harness.kernel import Kernel
from harness.paths import BUSYBOX, CACHE

# What the boot and lab guests load; dependencies are added from modules.dep.
BOOT_MODULES = (
    "virtio_pci",
    "virtio_net",
    "virtio_blk",
    "crc32c_generic",
    "scsi_transport_iscsi",
    "libiscsi",
    "libiscsi_tcp",
    "iscsi_tcp",
    "iscsi_ibft",
    "sd_mod",
    "netfs",
    "9pnet",
    "9pnet_virtio",
    "9p",
    "ext4",
    "overlay",
    "af_packet",
)

# Shell helpers every init script gets: markers the host's console reader looks for.
INIT_PRELUDE = """\
#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mark() { echo "PYISCSI-MARK $1 $(cut -d' ' -f1 /proc/uptime)${2:+ $2}"; }
die() { echo "PYISCSI-FAIL $*"; mark failed; poweroff -f; sleep 5; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp
mount -t tmpfs tmpfs /run
mark init
"""


def module_name(path: str) -> str:
    """`kernel/net/9p/9pnet_virtio.ko[.xz]` -> `9pnet_virtio` (the kernel treats - and _ alike)."""
    base = path.rsplit("/", 1)[-1]
    return base.split(".ko", 1)[0].replace("-", "_")


def parse_modules_dep(text: str) -> dict[str, tuple[str, list[str]]]:
    """modules.dep as {name: (path, [dependency paths])}."""
    table: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        path, sep, deps = line.partition(":")
        if sep:
            table[module_name(path)] = (path, deps.split())
    return table


def module_closure(dep_text: str, builtin_text: str, wanted: Iterable[str]) -> list[str]:
    """Paths (relative to the module dir) of `wanted` and everything they depend on; built-ins are skipped."""
    table = parse_modules_dep(dep_text)
    builtin = {module_name(line) for line in builtin_text.split()}
    paths: set[str] = set()
    for raw in wanted:
        name = raw.replace("-", "_")
        if name in table:
            path, deps = table[name]
            paths.add(path)
            paths.update(deps)
        elif name not in builtin:
            raise HarnessError(f"module {raw!r}: neither in modules.dep nor built in")
    return sorted(paths)


def _hash_inputs(*parts: object) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            stat = part.stat()
            digest.update(f"{part}:{stat.st_size}:{stat.st_mtime_ns}".encode())
        elif isinstance(part, bytes):
            digest.update(part)
        else:
            digest.update(repr(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def _run(argv: list[str], **kwargs) -> None:
    proc = subprocess.run(argv, capture_output=True, timeout=300, check=False, **kwargs)
    if proc.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: {proc.stderr.decode(errors='replace').strip()}")


def stage_busybox(root: Path) -> None:
    """Static busybox at /bin/busybox with a symlink per applet."""
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, bindir / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, timeout=30, check=True)
    for applet in applets.stdout.split():
        link = bindir / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    for name in ("sbin", "usr/bin", "usr/sbin"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if not (root / name).exists():
            (root / name).symlink_to("/bin")


def stage_modules(root: Path, kernel: Kernel, wanted: Iterable[str]) -> None:
    src = kernel.modules
    dest = root / "lib" / "modules" / kernel.release
    paths = module_closure((src / "modules.dep").read_text(), (src / "modules.builtin").read_text(), wanted)
    for rel in paths:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / rel, dest / rel)
    for index in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (src / index).exists():
            shutil.copy2(src / index, dest / index)
    _run(["depmod", "-b", str(root), kernel.release])


def write_cpio(staging: Path, out: Path) -> None:
    """newc cpio of `staging`, gzip'ed (fast to unpack under TCG, understood by every kernel)."""
    names = sorted(str(p.relative_to(staging)) for p in staging.rglob("*"))
    listing = ("\n".join([".", *names]) + "\n").encode()
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".cpio-")  # unique: parallel builds never share it
    tmp = Path(tmp_name)
    with os.fdopen(fd, "wb") as sink:
        cpio = subprocess.Popen(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            cwd=staging,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        gz = subprocess.Popen(["gzip", "-1", "-n"], stdin=cpio.stdout, stdout=sink)
        assert cpio.stdin is not None and cpio.stdout is not None
        cpio.stdout.close()
        cpio.stdin.write(listing)
        cpio.stdin.close()
        if cpio.wait(timeout=300) != 0 or gz.wait(timeout=300) != 0:
            tmp.unlink()
            raise HarnessError(f"cpio|gzip of {staging} failed")
    tmp.chmod(0o644)
    os.replace(tmp, out)


def build_initramfs(
    kernel: Kernel,
    init_script: str,
    files: Mapping[str, bytes] | None = None,
    modules: Iterable[str] = BOOT_MODULES,
    cache: Path | None = None,
) -> Path:
    """An initramfs whose /init is INIT_PRELUDE + `init_script`; `files` maps guest paths to contents."""
    files = dict(files or {})
    modules = tuple(modules)
    cache = cache or CACHE / "images"
    key = _hash_inputs(kernel.root, kernel.release, init_script, sorted(files.items()), modules, BUSYBOX)
    out = cache / f"initrd-{key}.img"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".stage-") as tmp:
        root = Path(tmp)
        for name in ("proc", "sys", "dev", "run", "tmp", "mnt", "etc", "root"):
            (root / name).mkdir()
        stage_busybox(root)
        stage_modules(root, kernel, modules)
        (root / "init").write_text(INIT_PRELUDE + init_script)
        (root / "init").chmod(0o755)
        for guest_path, content in files.items():
            target = root / guest_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            target.chmod(0o755 if content.startswith(b"#!") else 0o644)
        write_cpio(root, out)
    return out


OS_RELEASE = 'PRETTY_NAME="pyiscsi test root"\nNAME="pyiscsi-test"\nID=pyiscsi-test\nVERSION_ID="1"\n'


def build_ext4(out: Path, files: Mapping[str, bytes], size_mb: int = 64, label: str = "pyiscsi-root") -> Path:
    """An ext4 image filled from a staging dir with `mke2fs -d` (no loop mount); always has /etc/os-release."""
    contents = {"/etc/os-release": OS_RELEASE.encode(), **files}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".ext4-") as tmp:
        root = Path(tmp)
        for guest_path, content in contents.items():
            target = root / guest_path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
            os.chmod(target, 0o755 if content.startswith(b"#!") else 0o644)
        if out.exists():
            out.unlink()
        _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", label, "-d", str(root), str(out), f"{size_mb}M"])
    return out
