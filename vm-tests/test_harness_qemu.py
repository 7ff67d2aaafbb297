"""QEMU command building and the KVM probe, with pytest-subprocess standing in for QEMU."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import qemu
from harness.errors import HarnessError
from harness.qemu import VirtFs, VmSpec, build_command

K = Path("/k/vmlinuz")
INITRD = Path("/k/initrd.img")


def _pairs(argv: list[str]) -> list[tuple[str, str]]:
    return [(argv[i], argv[i + 1]) for i in range(len(argv) - 1) if argv[i].startswith("-")]


def test_direct_boot_command_has_kernel_initrd_append_and_no_netboot():
    argv = build_command(VmSpec(kernel=K, initrd=INITRD, append="console=ttyS0 quiet"), "tcg")
    pairs = _pairs(argv)
    assert argv[0] == "qemu-system-x86_64"
    for pair in [
        ("-accel", "tcg"),
        ("-m", "1024"),
        ("-kernel", str(K)),
        ("-initrd", str(INITRD)),
        ("-append", "console=ttyS0 quiet"),
        ("-serial", "stdio"),
        ("-netdev", "user,id=n0,net=10.0.2.0/24"),
    ]:
        assert pair in pairs
    assert "-no-reboot" in argv and "-nographic" in argv
    assert "-boot" not in argv


def test_netboot_command_boots_from_the_nic_with_ipxe_rom_and_tftp_script(tmp_path):
    spec = VmSpec(tftp_dir=tmp_path, bootfile="boot.ipxe", memory_mb=512)
    argv = build_command(spec, "kvm")
    pairs = _pairs(argv)
    assert ("-boot", "n") in pairs
    assert ("-accel", "kvm") in pairs
    assert ("-m", "512") in pairs
    assert ("-netdev", f"user,id=n0,net=10.0.2.0/24,tftp={tmp_path},bootfile=boot.ipxe") in pairs
    assert ("-device", "virtio-net-pci,netdev=n0") in pairs  # QEMU picks ipxe-qemu's efi-virtio.rom
    assert "-kernel" not in argv


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (VmSpec(kernel=K, acpi_tables=(Path("/t/ibft.bin"),)), [("-acpitable", "file=/t/ibft.bin")]),
        (
            VmSpec(kernel=K, virtfs=(VirtFs(Path("/"), "hostroot"), VirtFs(Path("/r"), "labrun", readonly=False))),
            [
                ("-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,multidevs=remap,readonly=on"),
                ("-virtfs", "local,path=/r,mount_tag=labrun,security_model=none,multidevs=remap"),
            ],
        ),
        (
            VmSpec(kernel=K, drives=(Path("/d/a.img"), Path("/d/b.img"))),
            [
                ("-drive", "file=/d/a.img,format=raw,if=virtio,index=0"),
                ("-drive", "file=/d/b.img,format=raw,if=virtio,index=1"),
            ],
        ),
    ],
)
def test_optional_devices_become_options_in_order(spec, expected):
    pairs = _pairs(build_command(spec, "tcg"))
    assert [p for p in pairs if p[0] == expected[0][0]] == expected


@pytest.mark.parametrize(
    ("spec", "accel", "match"),
    [
        (VmSpec(kernel=K), "hvf", "accel"),
        (VmSpec(), "tcg", "nothing to boot"),
    ],
)
def test_bad_specs_are_refused_by_name(spec, accel, match):
    with pytest.raises(HarnessError, match=match):
        build_command(spec, accel)


def test_uefi_boots_q35_with_read_only_ovmf_code_and_this_vms_vars(tmp_path):
    vars_copy = tmp_path / "OVMF_VARS.fd"
    spec = VmSpec(tftp_dir=tmp_path, bootfile="boot.ipxe", firmware=qemu.Firmware.UEFI, uefi_vars=vars_copy)
    argv = build_command(spec, "tcg")
    pairs = _pairs(argv)
    assert ("-M", "q35") in pairs
    assert [p for p in pairs if p[0] == "-drive"] == [
        ("-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={qemu.OVMF_CODE}"),
        ("-drive", f"if=pflash,format=raw,unit=1,file={vars_copy}"),
    ]
    nic = f"virtio-net-pci,netdev=n0,romfile={qemu.IPXE_VIRTIO_ROM},bootindex=1"
    assert ("-device", nic) in pairs and ("-boot", "n") in pairs
    # the BIOS command is what it always was: machine pc, no pflash, QEMU's own ROM choice, no boot index
    bios = build_command(VmSpec(tftp_dir=tmp_path, bootfile="boot.ipxe"), "tcg")
    assert ("-M", "pc") in _pairs(bios) and not any("pflash" in a or "bootindex" in a for a in bios)


def test_uefi_direct_kernel_boot_and_several_nics_give_one_boot_index(tmp_path):
    spec = VmSpec(kernel=K, firmware="uefi", uefi_vars=tmp_path / "v.fd")
    argv = build_command(spec, "tcg")
    assert ("-kernel", str(K)) in _pairs(argv) and not any("bootindex" in a for a in argv)
    netboot = VmSpec(netdevs=("tap,ifname=a", "tap,ifname=b"), firmware="uefi", uefi_vars=tmp_path / "v.fd")
    devices = [p[1] for p in _pairs(build_command(netboot, "tcg")) if p[0] == "-device"]
    assert [d.endswith(",bootindex=1") for d in devices] == [True, False]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        (VmSpec(kernel=K, firmware="uefi"), "uefi_vars"),
        (VmSpec(kernel=K, firmware="coreboot"), "firmware"),
    ],
)
def test_bad_firmware_specs_are_refused_by_name(spec, match):
    with pytest.raises(HarnessError, match=match):
        build_command(spec, "tcg")


def test_uefi_vars_is_a_private_writable_copy(tmp_path):
    template = tmp_path / "template.fd"
    template.write_bytes(b"\x00vars" * 16)
    copy = qemu.uefi_vars(tmp_path / "mine.fd", template)
    assert copy.read_bytes() == template.read_bytes() and copy.stat().st_mode & 0o777 == 0o600
    copy.write_bytes(b"firmware wrote here")
    assert template.read_bytes() == b"\x00vars" * 16
    with pytest.raises(HarnessError, match="ovmf"):
        qemu.uefi_vars(tmp_path / "x.fd", tmp_path / "missing.fd")


@pytest.fixture
def kvm_present(monkeypatch):
    monkeypatch.setattr(qemu.os, "access", lambda path, mode: True)
    monkeypatch.setattr(qemu, "_accel_verdict", None)
    monkeypatch.delenv(qemu.ACCEL_ENV, raising=False)


@pytest.mark.parametrize(
    ("stdout", "wait", "expected"),
    [
        (b"[    0.000000] Linux version 6.1.0\n[ 1.0] Kernel panic\n", None, True),
        (b"SeaBIOS\nBooting from ROM...\n", None, False),
        (b"Booting from ROM...\n", 2, False),  # hangs: the probe's timeout (0.5 s) kills it
    ],
)
def test_kvm_probe_trusts_only_a_kernel_banner(fp, kvm_present, stdout, wait, expected):
    fp.register(qemu.probe_command(K), stdout=stdout, wait=wait)
    assert qemu.probe_kvm(K, timeout=0.5) is expected


def test_accel_verdict_is_probed_once_then_read_back_for_this_boot(fp, kvm_present, tmp_path):
    fp.register(qemu.probe_command(K), stdout=b"Booting\n")
    verdict = tmp_path / "accel"
    assert qemu.choose_accel(K, verdict) == "tcg"
    assert verdict.read_text().split()[1] == "tcg"
    qemu._accel_verdict = None
    assert qemu.choose_accel(K, verdict) == "tcg"  # from the file: no second process registered
    assert len(fp.calls) == 1


def test_accel_env_overrides_the_probe(fp, monkeypatch, tmp_path):
    monkeypatch.setenv(qemu.ACCEL_ENV, "tcg")
    assert qemu.choose_accel(K, tmp_path / "accel") == "tcg"
    assert len(fp.calls) == 0


def test_run_reads_console_until_qemu_exits_and_reports_markers(fp, tmp_path):
    spec = VmSpec(kernel=K, initrd=INITRD)
    console = (
        b"[    0.000000] Linux version\nPYISCSI-MARK init 1.50\n"
        b"PYISCSI-MARK exit 2.25 0\n[    2.300000] reboot: Power down\n"
    )
    fp.register(build_command(spec, "tcg"), stdout=console)
    result = qemu.run(spec, 10, log_path=tmp_path / "log", accel="tcg")
    assert result.reason.value == "poweroff"
    assert [(m.name, m.uptime, m.detail) for m in result.markers] == [("init", 1.5, ""), ("exit", 2.25, "0")]
    assert result.kernel_uptime == pytest.approx(2.3)
    assert "PYISCSI-MARK init" in result.log()


def test_run_reports_qemu_failure_with_its_message(fp, tmp_path):
    spec = VmSpec(kernel=K)
    fp.register(build_command(spec, "tcg"), stdout=b"qemu: could not load kernel\n", returncode=1)
    result = qemu.run(spec, 10, log_path=tmp_path / "log", accel="tcg")
    assert result.reason.value == "qemu-failed"
    assert result.returncode == 1
    assert "could not load kernel" in result.summary()


def test_probe_is_a_bounded_subprocess():
    # The probe must never be able to hang the test run: it goes through subprocess.run with a timeout.
    assert qemu.KVM_PROBE_SECONDS <= 10
    assert subprocess.run is qemu.subprocess.run
