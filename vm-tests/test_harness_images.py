"""Module closure from modules.dep, and the ext4 builder (real mke2fs, read back with debugfs: no mount)."""

from __future__ import annotations

import os
import subprocess

import pytest

from harness import images, initramfs
from harness.errors import HarnessError

DEP = """\
kernel/drivers/scsi/iscsi_tcp.ko: kernel/drivers/scsi/libiscsi_tcp.ko kernel/drivers/scsi/libiscsi.ko
kernel/drivers/scsi/libiscsi_tcp.ko: kernel/drivers/scsi/libiscsi.ko
kernel/drivers/scsi/libiscsi.ko:
kernel/arch/x86/crypto/crc32c-intel.ko.xz:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko
kernel/net/9p/9pnet.ko:
"""
BUILTIN = "kernel/net/packet/af_packet.ko\nkernel/crypto/crc32c_generic.ko\n"


@pytest.mark.parametrize(
    ("wanted", "paths"),
    [
        (
            ["iscsi_tcp"],
            [
                "kernel/drivers/scsi/iscsi_tcp.ko",
                "kernel/drivers/scsi/libiscsi.ko",
                "kernel/drivers/scsi/libiscsi_tcp.ko",
            ],
        ),
        (["crc32c_intel"], ["kernel/arch/x86/crypto/crc32c-intel.ko.xz"]),  # - and _ are the same name
        (["9p", "9pnet"], ["kernel/fs/9p/9p.ko", "kernel/net/9p/9pnet.ko"]),
        (["af_packet", "crc32c-generic"], []),  # built in: nothing to copy
    ],
)
def test_module_closure_follows_modules_dep(wanted, paths):
    assert images.module_closure(DEP, BUILTIN, wanted) == paths


def test_unknown_module_is_named():
    with pytest.raises(HarnessError, match="'nosuch'"):
        images.module_closure(DEP, BUILTIN, ["nosuch"])


def test_ext4_image_holds_the_files_and_os_release(tmp_path):
    img = images.build_ext4(tmp_path / "root.img", {"/sbin/init": b"#!/bin/sh\necho hi\n"}, size_mb=16)

    def cat(path: str) -> str:
        proc = subprocess.run(["debugfs", "-R", f"cat {path}", str(img)], capture_output=True, text=True, timeout=30)
        return proc.stdout

    assert "ID=pyiscsi-test" in cat("/etc/os-release")
    assert cat("/sbin/init") == "#!/bin/sh\necho hi\n"
    mode = subprocess.run(["debugfs", "-R", "stat /sbin/init", str(img)], capture_output=True, text=True, timeout=30)
    assert "Mode:  0755" in mode.stdout


def _cpio_listing(img) -> set[str]:
    unpacked = subprocess.run(["gzip", "-dc", str(img)], capture_output=True, timeout=60, check=True).stdout
    listing = subprocess.run(["cpio", "-it", "--quiet"], input=unpacked, capture_output=True, timeout=60, check=True)
    return set(listing.stdout.decode().split())


def test_initramfs_has_busybox_init_files_and_the_module_closure(pinned_kernel, tmp_path):
    img = images.build_initramfs(
        pinned_kernel, "mark hello\n", files={"/etc/extra": b"x"}, modules=["iscsi_tcp"], cache=tmp_path
    )
    names = _cpio_listing(img)
    moddir = f"lib/modules/{pinned_kernel.release}"
    for name in ["init", "bin/busybox", "bin/sh", "bin/modprobe", "etc/extra", f"{moddir}/modules.dep"]:
        assert name in names
    kos = {n.rsplit("/", 1)[-1] for n in names if n.startswith(moddir) and ".ko" in n}
    assert {"iscsi_tcp.ko", "libiscsi_tcp.ko", "libiscsi.ko", "scsi_transport_iscsi.ko"} <= kos
    assert "virtio_net.ko" not in kos  # only what was asked for, and its dependencies
    assert (
        images.build_initramfs(
            pinned_kernel, "mark hello\n", files={"/etc/extra": b"x"}, modules=["iscsi_tcp"], cache=tmp_path
        )
        == img
    )  # same inputs: the cached image


def test_prune_keeps_the_newest_and_any_image_used_lately(tmp_path):
    """Another run (CI's, in another checkout) may still boot an image while this one builds new ones."""
    now = 1_000_000.0
    ages = {"a": 10, "b": 20, "c": 30, "d": 40, "e": initramfs.IN_USE + 50, "f": initramfs.IN_USE + 60}
    for name, age in ages.items():
        image = tmp_path / f"initramfs-systemd-6.1-{name}.img"
        image.write_bytes(b"x")
        os.utime(image, (now - age, now - age))
    (tmp_path / "initramfs-sh-6.1-z.img").write_bytes(b"x")  # another kind: never looked at
    initramfs.prune(tmp_path, "initramfs-systemd-6.1-*.img", keep=3, now=now)
    left = sorted(p.name for p in tmp_path.iterdir())
    # a, b, c: the newest three; d: beyond them but used within IN_USE; e, f: neither
    assert left == ["initramfs-sh-6.1-z.img"] + [f"initramfs-systemd-6.1-{n}.img" for n in "abcd"]
