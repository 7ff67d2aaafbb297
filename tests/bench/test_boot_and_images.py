"""bench.stock, bench.boot, bench.initramfs_size: module lists, the fix module, command lines, console parsing,
ordering, sizes and tables (pure: no dracut, no QEMU, no timing asserts)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import boot, initramfs_size, stock

SYSTEMD = "base systemd systemd-initrd dracut-systemd udev-rules rootfs-block fs-lib shutdown pyiscsi"


@pytest.mark.parametrize(
    ("variant", "tail"),
    [
        ("base", "shutdown"),
        ("ours", "shutdown pyiscsi"),
        ("stock", "shutdown iscsi network-legacy stock-fixes"),
        ("stock-unfixed", "shutdown iscsi network-legacy"),
    ],
)
def test_module_lists_differ_only_in_the_iscsi_modules(variant: str, tail: str) -> None:
    modules = stock.modules_for(SYSTEMD, variant)
    assert modules.startswith("base systemd systemd-initrd") and modules.endswith(tail)
    assert modules.count("pyiscsi") == (1 if variant == "ours" else 0)


def test_fix_module_installs_the_recorded_fixes(tmp_path: Path) -> None:
    module = stock.fix_module(tmp_path)
    text = (module / "module-setup.sh").read_text()
    assert module.name == stock.FIX_MODULE and stock.FIX_MODULE[2:] in stock.modules_for(SYSTEMD, "stock")
    assert "check() { return 255; }" in text  # only when asked for by name
    assert "startup-checks.sh" in text and f"InitiatorName={stock.BENCH_INITIATOR}" in text
    assert 'cp -L /bin/busybox "$initdir/usr/bin/awk"' in text
    image_fixes = [f for f in stock.FIXES if f.where == "image"]
    assert any("startup-checks" in f.what for f in image_fixes) and any("initiatorname" in f.what for f in image_fixes)
    assert any("awk" in f.what for f in image_fixes)
    assert any("os-release" in f.what for f in stock.FIXES if f.where == "root")


def test_fixes_are_printed() -> None:
    lines: list[str] = []
    stock.print_fixes(lines.append)
    assert len(lines) == 1 + len(stock.FIXES) + len(stock.LIMITS) and all(
        f.what in "\n".join(lines) for f in stock.FIXES
    )


def test_stock_module_wrapper_keeps_debians_files(tmp_path: Path) -> None:
    host = Path("/usr/lib/dracut/modules.d/95iscsi")
    if not host.is_dir():
        pytest.skip("dracut-network not installed")
    base = tmp_path / "base"
    (base / "modules.d").mkdir(parents=True)
    (base / "modules.d" / "95iscsi").symlink_to(host)
    wrapped = stock.wrap_stock_module(base, Path("/k"))
    assert (wrapped / "iscsiroot.sh").resolve() == (host / "iscsiroot.sh").resolve()
    setup = (wrapped / "module-setup.sh").read_text()
    assert f'. "{host.resolve()}/module-setup.sh"' in setup and 'modprobe -d "/k"' in setup


def test_command_lines() -> None:
    values = {"uuid": "U", "host": "10.0.2.2", "port": "3261", "lun": "1", "iqn": "iqn.x:r", "initiator": "iqn.y:c"}
    cmdline = boot.append_for("cmdline", values)
    assert "root=UUID=U" in cmdline and "netroot=iscsi:10.0.2.2::3261:1:iqn.x:r ip=dhcp" in cmdline
    assert "rd.iscsi.initiator=iqn.y:c" in cmdline and "loglevel=7" in cmdline and "{" not in cmdline
    ibft = boot.append_for("ibft", values)
    assert "rd.iscsi.firmware=1" in ibft and "netroot" not in ibft


def test_uefi_ibft_row_sits_beside_the_bios_one_with_the_same_command_line() -> None:
    values = {"uuid": "U", "host": "10.0.2.2", "port": "3261", "lun": "1", "iqn": "iqn.x:r", "initiator": "iqn.y:c"}
    assert boot.append_for("ibft-uefi", values) == boot.append_for("ibft", values)
    scenarios = [scenario for scenario, up in boot.PLAN if up]
    assert scenarios.index("ibft-uefi") == scenarios.index("ibft") + 1
    assert [boot.firmware_for(s) for s, _ in boot.PLAN] == ["bios", "uefi", "bios", "bios"]
    assert {boot.firmware_for(s) for s in boot.CMDLINES if s != "ibft-uefi"} == {"bios"}


@pytest.mark.parametrize(("scenario", "firmware", "ipxe"), [("ibft-uefi", "uefi", True), ("ibft", "bios", True),
                                                            ("cmdline", "bios", False)])  # fmt: skip
def test_boot_once_boots_the_scenario_through_its_firmware(monkeypatch, tmp_path, scenario, firmware, ipxe) -> None:
    from harness import bootvm, kernel
    from harness.console import ConsoleResult, ExitReason, Marker

    log = tmp_path / "console.log"
    log.write_text("[   12.5] sd 0:0:0:1: [sda] Attached SCSI disk\nPYISCSI-MARK realroot 20.00\n")
    seen: list[bootvm.Boot] = []

    def fake_boot(spec, vmlinuz, initrd, root, bound):
        seen.append(spec)
        console = ConsoleResult(ExitReason.STOPPED, (Marker("realroot", 20.0),), log, (), 20.0, 61.0)
        return bootvm.BootResult(spec, console, 3260)

    monkeypatch.setattr(kernel, "require", lambda: type("K", (), {"vmlinuz": Path("/k/vmlinuz")})())
    monkeypatch.setattr(bootvm, "boot", fake_boot)
    sample = boot.boot_once("ours", Path("/i.img"), scenario, Path("/r.ext4"))
    assert [(s.firmware, s.ipxe, s.name) for s in seen] == [(firmware, ipxe, f"bench-ours-{scenario}")]
    assert "rd.iscsi.firmware=1" in seen[0].cmdline if ipxe else "netroot=iscsi:" in seen[0].cmdline
    assert (sample.scenario, sample.disk, sample.realroot, sample.reason) == (scenario, 12.5, 20.0, "real root")


def test_floor_once_boots_the_base_image_from_a_local_disk(monkeypatch, tmp_path) -> None:
    from harness import bootvm, kernel
    from harness.console import ConsoleResult, ExitReason, Marker

    log = tmp_path / "console.log"
    log.write_text(
        "[    5.1] Run /init as init process\n"
        "[   13.9] virtio_blk virtio1: [vda] 98304 512-byte logical blocks (50.3 MB/48.0 MiB)\n"
        "[   15.7] EXT4-fs (vda): mounted filesystem with ordered data mode. Quota mode: none.\n"
        "PYISCSI-MARK realroot 16.50 13 args; cpu  1400 0 100 20 0 0 0 0\n"
    )
    seen = []

    def fake_boot_local(name, vmlinuz, initrd, root, cmdline, bound):
        seen.append((name, initrd, root, cmdline))
        return ConsoleResult(ExitReason.STOPPED, (Marker("realroot", 16.5),), log, (), 16.5, 21.0)

    monkeypatch.setattr(kernel, "require", lambda: type("K", (), {"vmlinuz": Path("/k/vmlinuz")})())
    monkeypatch.setattr(bootvm, "boot_local", fake_boot_local)
    sample = boot.floor_once(Path("/base.img"), Path("/r.ext4"))
    assert seen == [("bench-floor", Path("/base.img"), Path("/r.ext4"), boot.COMMON)]  # no iSCSI, no ip=
    assert (sample.stack, sample.scenario, sample.disk, sample.realroot) == ("floor", "ibft", 13.9, 16.5)
    assert dict(sample.phases) == {"init": 5.1, "rootfs": 15.7, "realroot": 16.5}
    assert sample.cpu == (15.0, 0.2) and sample.own_cpu is None


def test_the_floor_boots_between_each_pair() -> None:
    assert boot.with_floor(boot.alternate(2)) == ["ours", "stock", "floor", "stock", "ours", "floor"]
    assert boot.with_floor([]) == []


def test_floor_report_gives_the_best_ratio_an_initiator_could_reach_and_what_ours_adds() -> None:
    def sample(stack: str, disk: float, realroot: float | None, busy: float) -> boot.Sample:
        return boot.Sample(stack, "ibft", disk, realroot, 50.0, None, "real root", Path("/l"), (), (busy, 0.1))

    samples = [
        sample("ours", 18.0, 24.0, 22.0), sample("ours", 20.0, 26.0, 24.0),
        sample("stock", 35.0, 45.0, 40.0), sample("stock", 33.0, 43.0, 38.0),
        sample("floor", 13.0, 16.0, 15.0), sample("floor", 14.0, None, 16.0),
        _sample("stock", "cmdline", 1.0, 2.0),  # another scenario: not in the floor's table
    ]  # fmt: skip
    lines = boot.floor_report(samples).splitlines()
    row = {label: next(line.split()[-6:] for line in lines if line.startswith(label)) for label in
           ("root disk appears", "real root init", "vCPU busy")}  # fmt: skip
    assert row["root disk appears"] == ["13.50", "19.00", "34.00", "0.40x", "0.56x", "+5.50"]
    assert row["real root init"] == ["16.00", "25.00", "44.00", "0.36x", "0.57x", "+9.00"]
    assert row["vCPU busy"] == ["15.50", "23.00", "39.00", "0.40x", "0.59x", "+7.50"]
    assert any(line.startswith("floor: reached the real root") and "1/2" in line for line in lines)
    assert boot.floor_report(samples[:4]) == "floor: no boots"


def test_the_floors_figures_are_not_in_the_stacks_tables() -> None:
    samples = [_sample("ours", "ibft", 5.0, 10.0), _sample("stock", "ibft", 10.0, 20.0)]
    samples.append(_sample("floor", "ibft", 1.0, 2.0))
    assert boot.report(samples) == boot.report(samples[:2])
    assert boot.phase_report(samples) == boot.phase_report(samples[:2])


def test_boot_report_gives_the_uefi_row_its_own_lines() -> None:
    samples = [
        _sample("ours", "ibft", 5.0, 10.0),
        _sample("ours", "ibft-uefi", 6.0, 12.0),
        _sample("stock", "ibft", 8.0, 20.0),
        _sample("stock", "ibft-uefi", None, None, reason="poweroff"),
    ]
    lines = boot.report(samples).splitlines()
    uefi = next(line for line in lines if line.split()[0] == "ibft-uefi" and "real root init" in line)
    assert uefi.split()[-3:] == ["12.00", "-", "-"]
    assert any(line.split()[0] == "ibft-uefi" and "stock: reached the real root" in line and "0/1" in line
               for line in lines)  # fmt: skip
    bios = next(line for line in lines if line.split()[0] == "ibft" and "real root init" in line)
    assert bios.split()[-3:] == ["10.00", "20.00", "0.50x"]


LOG = """\
[    0.000000] Linux version 6.1.0
[    9.250001] scsi 2:0:0:0: RAID              IET      Controller       0001 PQ: 0 ANSI: 5
[   12.345678] sd 2:0:0:1: [sda] Attached SCSI disk
PYISCSI-MARK realroot 20.50
[   21.000000] reboot: Power down
"""


def test_console_figures() -> None:
    assert boot.disk_uptime(LOG) == pytest.approx(12.345678)
    assert boot.last_stamp(LOG) == pytest.approx(21.0)
    assert boot.disk_uptime("[ 1.0] nothing") is None and boot.last_stamp("") is None


OURS_CONSOLE = """\
[    0.000000] Linux version 6.1.0
[    1.500000] Run /init as init process
PYISCSI-MARK exec 5.200 the process started (the interpreter's start-up follows)
PYISCSI-MARK start 6.100
[    6.100100] pyiscsi: PYISCSI-MARK start 6.100
PYISCSI-MARK plan 6.300 1 interface(s), 1 target(s)
[    6.300100] pyiscsi: PYISCSI-MARK plan 6.300 1 interface(s), 1 target(s)
PYISCSI-MARK address 7.000 eth0 10.0.2.15/24 (0.16s)
[    7.500000] scsi host2: iSCSI Initiator over TCP/IP
PYISCSI-MARK login 7.400 iqn.x:r 10.0.2.2:3260 session 1
[    8.000000] sd 2:0:0:1: [sda] Attached SCSI disk
PYISCSI-MARK disk 8.100 sda lun 1 of iqn.x:r
PYISCSI-MARK booted 9.000 1 session(s), root sda
[    9.800000] EXT4-fs (sda): mounted filesystem with ordered data mode. Quota mode: none.
[   10.500000] pyiscsi[242]: pyiscsi agent: handover: 10 file(s) written for the real root
PYISCSI-MARK realroot 11.00
"""
STOCK_CONSOLE = """\
[    0.000000] Linux version 6.1.0
[    1.700000] Run /init as init process
PYISCSI-MARK start 1.0 printed by nobody: a mark without a stamp of its own still counts, on either stack
[    9.000000] scsi host2: iSCSI Initiator over TCP/IP
[   10.000000] sd 2:0:0:1: [sda] Attached SCSI disk
[   10.100000] sd 2:0:0:1: [sdb] Attached SCSI disk
[   11.000000] EXT4-fs (sda): mounted filesystem with ordered data mode. Quota mode: none.
PYISCSI-MARK realroot 13.00
"""


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (
            OURS_CONSOLE,
            {"init": 1.5, "exec": 5.2, "first": 6.1, "plan": 6.3, "address": 7.0, "login": 7.4, "disk": 8.1,
             "booted": 9.0, "rootfs": 9.8, "handover": 10.5, "realroot": 11.0},
        ),
        (
            STOCK_CONSOLE.replace("PYISCSI-MARK start 1.0 printed by nobody: a mark without a stamp of its own "
                                  "still counts, on either stack\n", ""),
            {"init": 1.7, "login": 9.0, "disk": 10.0, "rootfs": 11.0, "realroot": 13.0},
        ),
        ("", {}),
        ("PYISCSI-MARK disk - no uptime\n[ x] Run /init as init process\n", {}),
    ],
)  # fmt: skip
def test_phases_prefer_pyiscsis_marks_then_the_kernels_lines(log: str, expected: dict[str, float]) -> None:
    found = boot.phases(log)
    assert found == pytest.approx(expected)
    assert list(found) == [name for name in boot.PHASE_NAMES if name in expected]  # boot order


def test_steps_are_from_the_previous_phase_seen() -> None:
    found = boot.phases(OURS_CONSOLE)
    steps = boot.steps(found)
    assert steps["init"] == pytest.approx(1.5) and steps["exec"] == pytest.approx(3.7)
    assert steps["first"] == pytest.approx(0.9)
    assert steps["rootfs"] == pytest.approx(0.8) and sum(steps.values()) == pytest.approx(found["realroot"])
    line = boot.phase_line(found)
    assert line.startswith("init 1.50(+1.50) exec 5.20(+3.70) first 6.10(+0.90)") and "link -" in line
    assert "handover 10.50(+0.70)" in line


def test_phase_report_medians_steps_and_ratios() -> None:
    def sample(stack: str, log: str, shift: float = 0.0) -> boot.Sample:
        seen = tuple((name, at + shift) for name, at in boot.phases(log).items())
        return boot.Sample(stack, "ibft", None, None, 60.0, None, "real root", Path("/l"), seen)

    samples = [sample("ours", OURS_CONSOLE), sample("ours", OURS_CONSOLE, 1.0), sample("ours", OURS_CONSOLE, 2.0),
               sample("stock", STOCK_CONSOLE)]  # fmt: skip
    lines = boot.phase_report(samples).splitlines()[2:]
    cells = [re.split(r"\s{2,}", line) for line in lines]
    rows = {p.label: next((c[2:] for c in cells if c[:2] == ["ibft", p.label]), None) for p in boot.PHASES}
    assert rows["real root's init"] == ["12.00", "+0.50", "13.00", "+2.00", "0.92x"]
    assert rows["handover"] == ["11.50", "+0.70", "-", "-", "-"]
    assert rows["kernel to /init"] == ["2.50", "+2.50", "1.70", "+1.70", "1.47x"]
    label = {p.name: p.label for p in boot.PHASES}
    assert rows[label["exec"]] == ["6.20", "+3.70", "-", "-", "-"]
    assert rows[label["first"]] == ["7.10", "+0.90", "1.00", "-0.70", "7.10x"]
    assert rows["plan"] == ["7.30", "+0.20", "-", "-", "-"] and rows["link"] is None


@pytest.mark.parametrize(
    ("log", "busy_idle", "own"),
    [
        # /proc/stat's cpu line: user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ (100)
        (OURS_CONSOLE.replace("booted 9.000 1 session(s), root sda", "booted 9.000 1 session(s), root sda, cpu 1.90s")
         .replace("realroot 11.00", "realroot 11.00 13 args; cpu  424 1 448 30 5 2 7 3 0 0"),
         (8.85, 0.35), 1.90),
        (STOCK_CONSOLE.replace("realroot 13.00", "realroot 13.00 13 args; cpu  900 0 300 100"), (12.0, 1.0), None),
        (OURS_CONSOLE, None, None),  # an older root image or pyiscsi: no figures, not wrong ones
        ("PYISCSI-MARK realroot 11.00 13 args; cpu  many\nPYISCSI-MARK booted 9.0 root sda, cpu 1.9\n", None, None),
    ],
)  # fmt: skip
def test_vcpu_time_to_the_real_root_and_pyiscsis_own_cpu(log: str, busy_idle, own) -> None:
    assert boot.vcpu_time(log) == (None if busy_idle is None else pytest.approx(busy_idle))
    assert boot.own_cpu(log) == own


def test_boot_report_shows_the_vcpus_busy_and_idle_time_and_pyiscsis_share() -> None:
    def sample(stack: str, cpu: tuple[float, float] | None, own: float | None) -> boot.Sample:
        return boot.Sample(stack, "ibft", 5.0, 9.0, 50.0, None, "real root", Path("/l"), (), cpu, own)

    lines = boot.report([sample("ours", (8.0, 0.5), 1.5), sample("ours", (9.0, 0.7), 2.5), sample("ours", None, None),
                         sample("stock", (20.0, 6.0), None)]).splitlines()  # fmt: skip
    labels = ("vCPU busy to the real root", "vCPU idle to the real root", "pyiscsi boot's own CPU to booted")
    row = {label: next(line.split()[-3:] for line in lines if label in line) for label in labels}
    assert row["vCPU busy to the real root"] == ["8.50", "20.00", "0.42x"]  # medians of the boots that had it
    assert row["vCPU idle to the real root"] == ["0.60", "6.00", "0.10x"]
    assert row["pyiscsi boot's own CPU to booted"] == ["2.00", "-", "-"]
    hung = _sample("stock", "ibft", None, None, 200.0, 161.9, "timeout")
    never = boot.report([sample("ours", (8.0, 0.5), 1.5), hung])
    assert [line.split()[-2] for line in never.splitlines() if "vCPU" in line] == ["-", "-"]  # not ">162": no time


def test_alternation_gives_each_stack_the_first_boot_equally() -> None:
    assert boot.alternate(3) == ["ours", "stock", "stock", "ours", "ours", "stock"]
    assert boot.alternate(2).count("ours") == 2


def _sample(stack: str, scenario: str, disk, realroot, wall=50.0, stamp=None, reason="poweroff") -> boot.Sample:
    return boot.Sample(stack, scenario, disk, realroot, wall, stamp, reason, Path("/l"))


def test_boot_report_medians_ratios_and_counts() -> None:
    samples = [
        _sample("ours", "ibft", 5.0, 10.0),
        _sample("ours", "ibft", 7.0, 12.0),
        _sample("ours", "ibft", 6.0, 11.0),
        _sample("stock", "ibft", 10.0, 20.0),
        _sample("stock", "ibft", None, None),
        _sample("ours", "cmdline-target-down", None, None, 40.0, 30.0),
        _sample("stock", "cmdline-target-down", None, None, 80.0, 60.0, "poweroff, no real root"),
        _sample("stock", "cmdline-target-down", None, None, 200.0, 190.0, "timeout, no real root"),
    ]
    lines = boot.report(samples).splitlines()
    disk = next(line for line in lines if "ibft" in line and "root disk" in line)
    assert disk.split()[-3:] == ["6.00", "10.00", "0.60x"]
    assert any("stock: reached the real root" in line and "1/2" in line for line in lines)
    fail = next(line for line in lines if "target-down" in line and "guest uptime" in line)
    assert fail.split()[-1] == "0.50x"
    assert any("ours: failed clearly" in line and "target-down" in line and "1/1" in line for line in lines)
    assert any("stock: failed clearly" in line and "1/2" in line for line in lines)  # the hang is not clear
    hung = boot.report([_sample("ours", "x", 3.0, 4.0), _sample("stock", "x", None, None, 200.0, 161.9, "timeout, no")])
    assert [line.split()[-2] for line in hung.splitlines()[2:4]] == [">162", ">162"]


@pytest.mark.parametrize(
    ("head", "tool"),
    [(b"\x1f\x8b\x08\x00", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"\xfd7zXZ\x00", "xz"), (b"070701", "cat")],
)
def test_decompress_command_by_magic(head: bytes, tool: str) -> None:
    assert initramfs_size.decompress_command(head)[0] == tool


def test_decompress_command_refuses_unknown() -> None:
    with pytest.raises(ValueError):
        initramfs_size.decompress_command(b"BZh91AY")


def test_size_report_additions_and_ratio() -> None:
    mib = 1 << 20
    sizes = [
        initramfs_size.Size("systemd", "base", 40 * mib, 10 * mib),
        initramfs_size.Size("systemd", "ours", 70 * mib, 18 * mib),
        initramfs_size.Size("systemd", "stock", 50 * mib, 12 * mib),
    ]
    lines = initramfs_size.report(sizes).splitlines()
    assert lines[3].split()[-2:] == ["30.00", "8.00"]
    assert lines[4].split()[-2:] == ["10.00", "2.00"]
    assert lines[5].split()[-2:] == ["3.00x", "4.00x"] and "ours/stock (added)" in lines[5]
    assert len(lines) == 7 and lines[6].startswith("(zstd")  # no stock-unfixed image: no row, no ratio for it
    sizes.append(initramfs_size.Size("systemd", "stock-unfixed", 45 * mib, 14 * mib))
    lines = initramfs_size.report(sizes).splitlines()
    assert lines[5].split()[-2:] == ["5.00", "4.00"] and "stock-unfixed" in lines[5]
    assert lines[6].split()[-2:] == ["3.00x", "4.00x"] and "ours/stock (added)" in lines[6]
    assert lines[7].split()[-2:] == ["6.00x", "2.00x"] and "ours/stock-unfixed (added)" in lines[7]


def test_interpreter_line_sets_the_interpreter_against_the_stock_increment(tmp_path: Path) -> None:
    binary = tmp_path / "python3.11"
    binary.write_bytes(bytes(range(256)) * 4096)  # 1 MiB of one repeated block: zstd shrinks it to almost nothing
    assert 0 < initramfs_size.zstd_bytes(binary) < 4096
    line = initramfs_size.interpreter_line("systemd", binary, 1 << 20, 3 << 19, 3 << 20)
    assert line == (
        "systemd: the interpreter alone (python3.11, 1.00 MiB raw) is 1.50 MiB zstd, 0.50x the stock stack's zstd "
        "increment (3.00 MiB)"
    )
    assert ", - the stock stack's zstd increment (0.00 MiB)" in initramfs_size.interpreter_line("sh", binary, 1, 1, 0)


def test_measure_real_gzip_cpio(tmp_path: Path) -> None:
    import gzip

    raw = b"070701" + b"0" * 4000
    image = tmp_path / "i.img"
    image.write_bytes(gzip.compress(raw))
    got_raw, got_zstd = initramfs_size.measure(image)
    assert got_raw == len(raw) and 0 < got_zstd < len(raw)


MODULES_DEP = """\
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/drivers/net/bonding/bonding.ko: kernel/net/tls/tls.ko
kernel/net/tls/tls.ko:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko:
kernel/drivers/net/ethernet/sfc/falcon/sfc-falcon.ko.xz: kernel/drivers/net/mdio.ko
kernel/drivers/net/mdio.ko:
kernel/drivers/net/ethernet/qlogic/qed/qed.ko:
kernel/drivers/scsi/qedi/qedi.ko: kernel/drivers/net/ethernet/qlogic/qed/qed.ko
"""


@pytest.mark.parametrize(
    ("keep", "omitted"),
    [
        (["virtio_net", "bonding"], ("e1000e", "mdio", "qed", "sfc_falcon")),  # a kept driver's deps stay too
        (["sfc-falcon"], ("bonding", "e1000e", "net_failover", "qed", "virtio_net")),  # dashes as kmod spells them
        ([], ("bonding", "e1000e", "mdio", "net_failover", "qed", "sfc_falcon", "virtio_net")),
    ],
)
def test_other_nic_drivers_are_those_under_drivers_net_nothing_kept_needs(keep: list[str], omitted: tuple) -> None:
    assert stock.other_nic_drivers(MODULES_DEP, keep) == omitted  # never qedi, tls or failover: not NIC drivers


def test_stock_conf_omits_every_nic_driver_ours_does_not_carry() -> None:
    from harness import initramfs

    conf = stock.stock_conf(MODULES_DEP)
    words = conf.split('"')[1].split()
    assert conf.startswith("omit_drivers+=") and words == ["mdio", "qed", "sfc_falcon"]
    assert not set(words) & {*initramfs.NET_DRIVERS.split(), *stock.SHARED_NIC_MODULES, "net_failover"}


def test_nic_modules_lists_an_images_drivers_net_modules(tmp_path: Path) -> None:
    import gzip
    import subprocess

    tree = tmp_path / "tree"
    files = [
        "usr/lib/modules/6.1.0/kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko",
        "usr/lib/modules/6.1.0/kernel/drivers/net/ethernet/sfc/falcon/sfc-falcon.ko.xz",
        "usr/lib/modules/6.1.0/kernel/net/bridge/bridge.ko",
        "usr/lib/modules/6.1.0/kernel/drivers/net/README",
    ]
    for name in files:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_bytes(b"x")
    listing = "\n".join(files).encode() + b"\n"
    packed = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, input=listing, capture_output=True)
    image = tmp_path / "i.img"
    image.write_bytes(gzip.compress(packed.stdout))
    assert initramfs_size.nic_modules(image) == {"e1000e", "sfc_falcon"}


def test_nic_line_says_same_or_names_the_difference() -> None:
    same = initramfs_size.nic_line("systemd", frozenset({"e1000", "bonding"}), frozenset({"bonding", "e1000"}))
    assert same == "systemd: both stacks carry the same 2 drivers/net modules (bonding e1000)"
    differ = initramfs_size.nic_line("sh", frozenset({"e1000"}), frozenset({"e1000", "tg3", "bnx2"}))
    assert differ == "sh: the NIC drivers differ: only ours -; only stock bnx2 tg3"
