"""Bench: initramfs size, Debian's dracut for the pinned kernel, a base image and the same base + each iSCSI stack.

Per flavour (harness.initramfs.FLAVOURS: `systemd`, `sh`), three images with the same dracut options and drivers:
- base: the flavour's module list without `pyiscsi` (no network, no iSCSI);
- ours: the product image (harness.initramfs.build: base + `pyiscsi`, the frozen runtime included);
- stock: base + `iscsi network-legacy` + bench.stock's fixes (what 95iscsi needs to boot at all).
Sizes: the uncompressed cpio (`raw`) and that cpio through `zstd -15` (dracut's zstd level; single-threaded
here so the figure does not depend on the core count), and what each iSCSI stack adds over its base. Both stacks
carry the same NIC drivers (bench.stock); the run lists the drivers/net modules of each image and says whether
they are the same, since an increment with 200 more NIC drivers in it says nothing about an iSCSI stack.

The interpreter's line: the Python binary the frozen tree carries, alone through the same zstd, against the stock
stack's increment. It is the floor of ours for as long as the image carries that interpreter (issue 13's target
for the increment is 0.3x of stock's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bench  # noqa: F401  (repository root and vm-tests on sys.path)
from bench import stock
from bench.stats import table
from boot.freeze import interpreter

RUNS = 1  # sizes do not vary; kept for the registry's --runs
FLAVOURS = ("systemd", "sh")
QUICK_FLAVOURS = ("systemd",)
# stock-unfixed: Debian's 95iscsi as shipped, without bench.stock's fixes (it boots no iSCSI root); its row shows
# what the fixes weigh (the busybox copied in as awk is most of it)
VARIANTS = ("base", "ours", "stock", "stock-unfixed")
STOCKS = ("stock", "stock-unfixed")
ZSTD = ["zstd", "-15", "-T1", "-q", "-c"]
BOUND = 600.0


@dataclass(frozen=True)
class Size:
    flavour: str
    variant: str
    raw: int
    zstd: int


def decompress_command(head: bytes) -> list[str]:
    """How to get the cpio back out of an image by its first bytes (dracut: gzip here; others for --compress)."""
    if head.startswith(b"\x1f\x8b"):
        return ["gzip", "-dc"]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return ["zstd", "-dc"]
    if head.startswith(b"\xfd7zXZ"):
        return ["xz", "-dc"]
    if head.startswith(b"070701") or head.startswith(b"070702"):
        return ["cat"]
    raise ValueError(f"unknown initramfs compression (first bytes {head[:6].hex()})")


def measure(image: Path) -> tuple[int, int]:
    """(raw cpio bytes, zstd -15 bytes) of one image."""
    with image.open("rb") as f:
        head = f.read(8)
    with tempfile.TemporaryDirectory(prefix="pyiscsi-bench-size-") as tmp:
        raw = Path(tmp) / "initramfs.cpio"
        with image.open("rb") as src, raw.open("wb") as out:
            subprocess.run(decompress_command(head), stdin=src, stdout=out, check=True, timeout=BOUND)
        with raw.open("rb") as src:
            packed = subprocess.run(ZSTD, stdin=src, capture_output=True, check=True, timeout=BOUND)
        return raw.stat().st_size, len(packed.stdout)


def zstd_bytes(path: Path) -> int:
    """zstd -15 bytes of one file."""
    with path.open("rb") as src:
        return len(subprocess.run(ZSTD, stdin=src, capture_output=True, check=True, timeout=BOUND).stdout)


def interpreter_line(flavour: str, binary: Path, raw: int, packed: int, stock_added: int) -> str:
    """The interpreter alone against the stock stack's zstd increment: the part of ours no module diet removes."""
    ratio = f"{packed / stock_added:.2f}x" if stock_added > 0 else "-"
    return (
        f"{flavour}: the interpreter alone ({binary.name}, {_mib(raw)} MiB raw) is {_mib(packed)} MiB zstd, "
        f"{ratio} the stock stack's zstd increment ({_mib(stock_added)} MiB)"
    )


def nic_modules(image: Path) -> frozenset[str]:
    """The modules under the kernel's drivers/net that an image carries, by module name."""
    from bench.stock import NIC_TREE, module_name

    with image.open("rb") as f:
        head = f.read(8)
    with image.open("rb") as src:
        unpacked = subprocess.run(decompress_command(head), stdin=src, capture_output=True, check=True, timeout=BOUND)
    listed = subprocess.run(["cpio", "-it", "--quiet"], input=unpacked.stdout, capture_output=True, check=True)
    names = listed.stdout.decode(errors="replace").splitlines()
    return frozenset(module_name(n) for n in names if f"/{NIC_TREE}" in f"/{n}" and ".ko" in n.rsplit("/", 1)[-1])


def nic_line(flavour: str, ours: frozenset[str], stock: frozenset[str]) -> str:
    """Whether both stacks' images carry the same NIC drivers, and which differ if not."""
    if ours == stock:
        return f"{flavour}: both stacks carry the same {len(ours)} drivers/net modules ({' '.join(sorted(ours))})"
    only_ours, only_stock = " ".join(sorted(ours - stock)) or "-", " ".join(sorted(stock - ours)) or "-"
    return f"{flavour}: the NIC drivers differ: only ours {only_ours}; only stock {only_stock}"


def _mib(value: int) -> str:
    return f"{value / (1 << 20):.2f}"


def report(sizes: Sequence[Size]) -> str:
    rows = []
    for flavour in dict.fromkeys(s.flavour for s in sizes):
        by = {s.variant: s for s in sizes if s.flavour == flavour}
        base = by.get("base")
        for variant in VARIANTS:
            size = by.get(variant)
            if size is None:
                continue
            added = ["", ""]
            if base is not None and variant != "base":
                added = [_mib(size.raw - base.raw), _mib(size.zstd - base.zstd)]
            rows.append([flavour, variant, _mib(size.raw), _mib(size.zstd), *added])
        for other in STOCKS:
            if base is not None and "ours" in by and other in by:
                ours_add = (by["ours"].raw - base.raw, by["ours"].zstd - base.zstd)
                stock_add = (by[other].raw - base.raw, by[other].zstd - base.zstd)
                ratios = [f"{o / s:.2f}x" if s > 0 else "-" for o, s in zip(ours_add, stock_add, strict=True)]
                rows.append([flavour, f"ours/{other} (added)", "", "", *ratios])
    header = ["flavour", "image", "raw MiB", "zstd MiB", "added raw MiB", "added zstd MiB"]
    return table(header, rows) + "\n(zstd -15 of the uncompressed cpio; added = image minus the same flavour's base)"


def flavours() -> tuple[str, ...]:
    return QUICK_FLAVOURS if os.environ.get("PYISCSI_BENCH_QUICK") else FLAVOURS


def run() -> None:
    for tool in ("dracut", "zstd", "gzip"):
        if shutil.which(tool) is None:
            print(f"initramfs_size: skipped: {tool} not installed")
            return
    if os.geteuid() != 0:
        print("initramfs_size: skipped: dracut needs root")
        return
    stock.print_fixes()
    sizes = []
    drivers = []
    for flavour in flavours():
        images = {variant: stock.build_image(variant, flavour) for variant in VARIANTS}
        for variant, image in images.items():
            raw, packed = measure(image)
            sizes.append(Size(flavour, variant, raw, packed))
        drivers.append(nic_line(flavour, nic_modules(images["ours"]), nic_modules(images["stock"])))
        by = {s.variant: s for s in sizes if s.flavour == flavour}
        python = interpreter.host_interpreter()
        stock_added = by["stock"].zstd - by["base"].zstd
        drivers.append(interpreter_line(flavour, python, python.stat().st_size, zstd_bytes(python), stock_added))
    print(report(sizes))
    for line in drivers:
        print(line)


if __name__ == "__main__":
    run()
