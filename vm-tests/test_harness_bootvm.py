"""harness.initramfs / bootvm / rootimage / demo: the pure parts (no dracut run, no QEMU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import bootvm, demo, initramfs, rootimage
from harness.console import ConsoleResult, ExitReason, Marker
from harness.qemu import Firmware


def test_dracut_argv_product_and_unpackable_forms(tmp_path: Path) -> None:
    argv = initramfs.dracut_argv("6.1.0-x", tmp_path / "mods", tmp_path, tmp_path / "c", "base pyiscsi", tmp_path / "o")
    assert argv[:4] == ["dracut", "--force", "--no-hostonly", "--no-early-microcode"]
    assert argv[argv.index("--compress") + 1] == "gzip" and argv[-1] == str(tmp_path / "o")
    assert argv[argv.index("--add-drivers") + 1] == initramfs.DRIVERS
    bare = initramfs.dracut_argv("6.1.0-x", None, tmp_path, tmp_path / "c", "base", tmp_path / "o", "", None)
    assert "--no-compress" in bare and "--add-drivers" not in bare and "--kmoddir" not in bare


def test_product_conf_names_the_python_and_the_nic_drivers() -> None:
    conf = initramfs.product_conf(Path("/x/python"))
    assert conf.splitlines() == ["pyiscsi_python=/x/python", f'pyiscsi_net_drivers="{initramfs.NET_DRIVERS}"']
    assert "net_drivers" not in initramfs.product_conf(Path("/x/python"), net_drivers="")


def test_dracut_base_links_the_host_modules_and_ours(tmp_path: Path) -> None:
    host = tmp_path / "host"
    (host / "modules.d" / "90kernel-modules").mkdir(parents=True)
    (host / "modules.d" / "95pyiscsi").mkdir()  # an installed copy must not shadow the checkout's
    (host / "dracut-functions.sh").write_text("")
    base = initramfs.dracut_base(tmp_path / "t", initramfs.MODULE, host)
    assert (base / "dracut-functions.sh").resolve() == (host / "dracut-functions.sh").resolve()
    assert (base / "modules.d" / "95pyiscsi").resolve() == initramfs.MODULE.resolve()
    assert (base / "modules.d" / "90kernel-modules").is_symlink()


def test_fill_and_dead_netdev() -> None:
    assert bootvm.fill("iscsi:{host}::{port}:{lun}:{iqn}", {"host": "h", "port": "1", "lun": "2", "iqn": "q"}) == (
        "iscsi:h::1:2:q"
    )
    argv = ["qemu", "-netdev", "user,id=n0", "-device", "x"]
    assert bootvm._netdev(argv, bootvm.Boot("x", "", netdev_extra=",restrict=on"))[2] == "user,id=n0,restrict=on"
    dead = bootvm._netdev(argv, bootvm.Boot("x", "", netdev=bootvm.DEAD_NETDEV))[2]
    assert dead.startswith("socket,id=n0,udp=127.0.0.1:") and "localaddr=127.0.0.1:" in dead


def test_root_init_script_has_no_unfilled_bounds() -> None:
    script = rootimage.init_script()
    assert "_BOUND" not in script and script.startswith("#!/bin/sh\n")
    assert "PYISCSI-MARK" in script and "iscsid -f" in script


def test_demo_timeline_reads_markers_and_kernel_stamps(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text(
        "pyiscsi-ipxe: sanhooked\n[    0.000000] Linux version 6.1.0-50-amd64 (x)\n"
        "[   30.5] EXT4-fs (sda): mounted filesystem with ordered data mode.\n"
    )
    console = ConsoleResult(
        ExitReason.POWEROFF,
        (Marker("start", 20.0), Marker("login", 25.0, "iqn... session 1"), Marker("adopted", 40.0, "session1")),
        log,
        (),
        40.0,
        60.0,
    )
    lines = demo.timeline(bootvm.BootResult(bootvm.Boot("demo", ""), console, 3260))
    text = "\n".join(lines)
    assert "firmware (iPXE)" in text and "Linux version 6.1.0-50-amd64" in text
    assert "root mounted" in text and "30.50s" in text and "iscsid adopted the session" in text


@pytest.mark.parametrize(
    ("detail", "shown"),
    [
        # the root image's init: its argument count, then /proc/stat's cpu line (USER_HZ ticks)
        ("13 args; cpu  424 1 448 30 5 2 7 3 0 0", "13 args; vCPU since power-on: busy 8.85s, idle 0.35s"),
        ("13 args", "13 args"),  # an older root image: as it is
        ("13 args; cpu  many", "13 args; cpu  many"),  # not a stat line: as it is, never a wrong figure
    ],
)
def test_demo_timeline_shows_the_real_roots_vcpu_time_in_seconds(tmp_path: Path, detail: str, shown: str) -> None:
    log = tmp_path / "log"
    log.write_text("")
    console = ConsoleResult(ExitReason.POWEROFF, (Marker("realroot", 15.0, detail),), log, (), 40.0, 60.0)
    (row,) = [line for line in demo.timeline(bootvm.BootResult(bootvm.Boot("d", ""), console, 3260)) if "init" in line]
    assert row.endswith(f"15.00s  {shown}")


def test_demo_timeline_says_which_firmware_left_the_ibft_and_where_pyiscsi_read_it(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("pyiscsi-ipxe: sanhooked\n")
    console = ConsoleResult(
        ExitReason.POWEROFF,
        (Marker("start", 20.0), Marker("firmware", 20.5, "ibft=acpi:/sys/firmware/acpi/tables/iBFT")),
        log,
        (),
        40.0,
        60.0,
    )
    uefi = "\n".join(demo.timeline(bootvm.BootResult(bootvm.Boot("d", "", firmware=Firmware.UEFI), console, 3260)))
    assert "firmware (OVMF, iPXE)" in uefi and "(ACPI table)" in uefi
    assert "iBFT read from" in uefi and "ibft=acpi:/sys/firmware/acpi/tables/iBFT" in uefi
    bios = "\n".join(demo.timeline(bootvm.BootResult(bootvm.Boot("d", ""), console, 3260)))
    assert "firmware (iPXE)" in bios and "(low memory)" in bios and "OVMF" not in bios


def test_uefi_boots_need_ovmf(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(bootvm, "OVMF_CODE", tmp_path / "missing.fd")
    monkeypatch.setattr(bootvm.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    assert "ovmf" in (bootvm.require_tools(Firmware.UEFI) or "")
    assert "ovmf" not in (bootvm.require_tools(Firmware.BIOS) or "")


def test_boot_local_boots_the_root_from_a_virtio_disk_until_the_real_root(monkeypatch, tmp_path: Path) -> None:
    image = tmp_path / "root.ext4"
    image.write_bytes(b"\0" * 4096)
    runs = []

    def fake_run(argv, bound, log_path, on_marker, stop_on):
        runs.append((argv, on_marker, stop_on))
        return ConsoleResult(ExitReason.STOPPED, (Marker("realroot", 16.5),), log_path, (), 16.5, 21.0)

    monkeypatch.setattr(bootvm, "CACHE", tmp_path / "cache")
    monkeypatch.setattr(bootvm, "choose_accel", lambda kernel: "tcg")
    monkeypatch.setattr(rootimage, "root_uuid", lambda disk: "b8e2-uuid")
    monkeypatch.setattr(bootvm, "_run_qemu", fake_run)
    result = bootvm.boot_local("bench-floor", Path("/k/vmlinuz"), Path("/i.img"), image, "root=UUID={uuid}")
    [(argv, on_marker, stop_on)] = runs
    assert (result.marker("realroot").uptime, on_marker, stop_on) == (16.5, {}, "realroot")
    append = argv[argv.index("-append") + 1]
    assert append.startswith(bootvm.BASE_APPEND) and append.endswith(" root=UUID=b8e2-uuid")
    drive = argv[argv.index("-drive") + 1]
    assert drive.endswith(",format=raw,if=virtio,index=0") and drive != f"file={image},format=raw,if=virtio,index=0"
    assert argv[argv.index("-initrd") + 1] == "/i.img" and "-boot" not in argv  # a private copy, direct kernel boot
    assert not list((tmp_path / "cache").glob(".boot-*"))  # the copy is gone afterwards
