"""dracut/95pyiscsi: build real images with Debian's dracut, look inside, run the frozen pyiscsi and the hooks."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from boot import freeze

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "vm-tests"))
from harness import initramfs  # (vm-tests/harness: the same dracut run `make initramfs` does)
from initiator import __version__

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "dracut" / "95pyiscsi"
SOURCED_HOOKS = ("parse-pyiscsi.sh", "handover-pyiscsi.sh", "timeout-pyiscsi.sh", "pyiscsi-lib.sh")
FLAVOURS = {
    "sh": "base pyiscsi",
    "systemd": "base systemd systemd-initrd dracut-systemd pyiscsi",
    "prebuilt": "base pyiscsi",  # a tree frozen beforehand, installed without running python3 in dracut
}
IQN = "iqn.2026-01.org.example:root"
BOOT_TIMEOUT = 120  # pyiscsi_boot_timeout= in the systemd image's configuration


def find_kernel() -> tuple[str, Path] | None:
    """The pinned test kernel in the per-user cache (vm-tests/harness/paths.py), else the host's own modules."""
    cache = Path(os.environ.get("PYISCSI_CACHE") or Path.home() / ".cache" / "pyiscsi")
    for moddir in sorted(cache.glob("kernel/linux-image-*/lib/modules/*")):
        if (moddir / "modules.dep").is_file():
            return moddir.name, moddir
    host = Path("/lib/modules") / os.uname().release
    if (host / "modules.dep").is_file():
        return host.name, host
    return None


KERNEL = find_kernel()
NEEDS_IMAGE = [
    pytest.mark.skipif(shutil.which("dracut") is None, reason="Debian's dracut is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="unpacking device nodes and chroot need root"),
    pytest.mark.skipif(KERNEL is None, reason="no kernel modules: neither the cached pinned kernel nor the host's"),
]


@dataclass(frozen=True)
class Image:
    flavour: str
    path: Path
    root: Path  # the image unpacked
    log: str


def run_dracut(tmp: Path, modules: str, conf: str) -> subprocess.CompletedProcess[str]:
    """The harness's dracut run (a throw-away dracutbasedir holding our module), uncompressed for unpacking."""
    assert KERNEL is not None
    kver, moddir = KERNEL
    return initramfs.run_dracut(tmp, kver, moddir, modules, conf, tmp / "initrd.img", drivers="", compress=None)


def conf_for(flavour: str, tmp: Path) -> str:
    # --skip-missing: the commands are written by others in parallel; test_every_command_present_is_frozen checks
    # that nothing present is left out (a product build runs boot.freeze strictly)
    if flavour == "prebuilt":
        tree = tmp / "frozen"
        argv = [sys.executable, "-m", "boot.freeze", "--out", str(tree), "--no-libs", "--skip-missing"]
        subprocess.run(argv, check=True, capture_output=True, timeout=300)
        return f"pyiscsi_python=/nonexistent/python3\npyiscsi_frozen_tree={tree}\n"
    conf = f'pyiscsi_python={sys.executable}\npyiscsi_freeze_args="--skip-missing"\n'
    return conf + (f"pyiscsi_boot_timeout={BOOT_TIMEOUT}\n" if flavour == "systemd" else "")


def unpack(image: Path, into: Path) -> None:
    into.mkdir()
    with image.open("rb") as stream:
        subprocess.run(["cpio", "-idm", "--quiet", "--no-absolute-filenames"], stdin=stream, cwd=into, check=True)
    dev = into / "dev"
    dev.mkdir(exist_ok=True)  # at boot a devtmpfs; a child process wants /dev/null
    if not (dev / "null").exists():
        os.mknod(dev / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))


_BUILT: dict[str, Image] = {}


def build_image(flavour: str, tmp_path_factory: pytest.TempPathFactory) -> Image:
    """One image per flavour per session, shared by every test that looks at it."""
    for mark in NEEDS_IMAGE:
        if mark.args[0]:
            pytest.skip(mark.kwargs["reason"])
    if flavour not in _BUILT:
        tmp = tmp_path_factory.mktemp(f"dracut-{flavour}")
        result = run_dracut(tmp, FLAVOURS[flavour], conf_for(flavour, tmp))
        assert result.returncode == 0, result.stderr[-3000:]
        unpack(tmp / "initrd.img", tmp / "root")
        _BUILT[flavour] = Image(flavour, tmp / "initrd.img", tmp / "root", result.stderr)
    return _BUILT[flavour]


@pytest.fixture(scope="module", params=sorted(FLAVOURS))
def image(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build_image(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def sh_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build_image("sh", tmp_path_factory)


@pytest.fixture(scope="module")
def systemd_image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    return build_image("systemd", tmp_path_factory)


def chroot(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(root), *argv], capture_output=True, text=True, timeout=120, check=False)


# --- what dracut put into the image -------------------------------------------------------------------------------

COMMON = [
    "usr/lib/pyiscsi/bin/python3",
    "usr/lib/pyiscsi/lib/python3.11/boot/cli.pyc",
    "usr/lib/pyiscsi/lib/python3.11/lib-dynload",
    "usr/sbin/pyiscsi",
    "usr/lib/dracut/hooks/initqueue/timeout/80-timeout-pyiscsi.sh",
    "usr/lib/pyiscsi-lib.sh",
    "etc/ld.so.cache",
]
SH_ONLY = [
    "usr/sbin/pyiscsi-boot",
    "usr/lib/dracut/hooks/cmdline/90-parse-pyiscsi.sh",
    "usr/lib/dracut/hooks/pre-pivot/50-handover-pyiscsi.sh",
]
GENERATOR = "usr/lib/systemd/system-generators/pyiscsi-generator"
ONLY = {
    "sh": SH_ONLY,
    "prebuilt": SH_ONLY,
    "systemd": [
        GENERATOR,
        "usr/lib/pyiscsi-cmdline.sh",
        "usr/lib/systemd/system/pyiscsi-modules.service",
        "etc/systemd/system/sysinit.target.wants/pyiscsi-modules.service",
        "usr/lib/systemd/system/pyiscsi-boot.service",
        "usr/lib/systemd/system/pyiscsi-handover.service",
        "etc/systemd/system/initrd-root-device.target.wants/pyiscsi-boot.service",
        "etc/systemd/system/initrd.target.wants/pyiscsi-handover.service",
    ],
}


def test_runtime_hooks_and_units_are_inside(image: Image) -> None:
    other = "sh" if image.flavour == "systemd" else "systemd"
    present = [p for p in COMMON + ONLY[image.flavour] if not os.path.lexists(image.root / p)]
    assert present == [], f"missing from the {image.flavour} image"
    assert [p for p in ONLY[other] if os.path.lexists(image.root / p)] == []


def test_a_systemd_image_does_not_ask_for_dracuts_initqueue(systemd_image: Image) -> None:
    """pyiscsi-boot.service runs before dracut-initqueue.service and bounds its own waits: asking for the initqueue
    only made the root's fsck and mount (ordered after it through dracut-pre-mount.service) wait for its shell."""
    assert not os.path.lexists(systemd_image.root / "usr/lib/dracut/need-initqueue")
    assert os.path.lexists(systemd_image.root / "usr/lib/dracut/hooks/initqueue/timeout/80-timeout-pyiscsi.sh")


def test_a_systemd_image_has_no_cmdline_hook_so_dracut_cmdline_service_is_skipped(systemd_image: Image) -> None:
    """dracut-cmdline.service runs only when a cmdline hook is installed (ConditionDirectoryNotEmpty=|...): ours
    was the only one, and that unit held back udevd and pyiscsi-boot.service by seconds under TCG. The generator
    decides instead."""
    hooks = systemd_image.root / "usr/lib/dracut/hooks/cmdline"
    present = sorted(p.name for p in hooks.iterdir()) if hooks.is_dir() else []
    assert present == []
    unit = (systemd_image.root / "usr/lib/systemd/system/dracut-cmdline.service").read_text().splitlines()
    assert "ConditionDirectoryNotEmpty=|/lib/dracut/hooks/cmdline" in unit


@pytest.mark.parametrize(
    "module",
    [
        "drivers/scsi/iscsi_tcp",
        "drivers/firmware/iscsi_ibft",
        "drivers/net/virtio_net",
        "net/8021q/8021q",
        "crypto/crc32c_generic",  # what the preloaded `crc32c` resolves to on any processor
        "crypto/crc64_rocksoft_generic",  # what t10-pi's library asks for; no module depends on it
    ],
)
def test_kernel_modules_are_inside(image: Image, module: str) -> None:
    assert KERNEL is not None
    found = list((image.root / "usr/lib/modules" / KERNEL[0] / "kernel").glob(f"{module}.ko*"))
    assert found, f"{module} not in the image"


def test_no_network_or_iscsi_module_came_along(image: Image) -> None:
    included = {line.split("module: ")[1].strip(" *") for line in image.log.splitlines() if "Including module:" in line}
    assert "pyiscsi" in included
    assert included.isdisjoint({"network", "network-legacy", "kernel-network-modules", "iscsi"})
    assert not (image.root / "usr/sbin/iscsiroot").exists()


def test_every_command_present_is_frozen(image: Image) -> None:
    present = [name for name in freeze.DEFAULT_ENTRIES if importlib.util.find_spec(name) is not None]
    assert "boot.cli" in present
    bytecode = image.root / "usr/lib/pyiscsi/lib/python3.11"
    assert [name for name in present if not (bytecode / (name.replace(".", "/") + ".pyc")).is_file()] == []


def test_frozen_pyiscsi_runs_from_the_image(image: Image) -> None:
    result = chroot(image.root, "/usr/sbin/pyiscsi", "--version")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"pyiscsi {__version__}", "")


def test_pyroute2_and_pyudev_load_with_the_libraries_dracut_resolved(image: Image) -> None:
    code = (
        "import sys, pyudev\n"
        "from pyroute2.iproute.linux import IPRoute\n"
        "with IPRoute() as ipr: ipr.get_links()\n"
        "origins = {getattr(getattr(m, '__spec__', None), 'origin', None) for m in list(sys.modules.values())}\n"
        "outside = sorted(o for o in origins if o and o not in ('built-in', 'frozen')"
        " and not o.startswith('/usr/lib/pyiscsi/'))\n"
        "print(pyudev.Context().sys_path, outside)"
    )
    result = chroot(image.root, "/usr/lib/pyiscsi/bin/python3", "-I", "-S", "-B", "-c", code)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "/sys []", "")


@pytest.mark.parametrize(
    "argv",
    [
        ["ibft", "/tmp/ibft.bin", "--json"],
        ["explain", "--cmdline", f"root=iscsi:10.0.2.2::3260:0:{IQN} ip=dhcp rd.iscsi.initiator={IQN}:i", "--json"],
    ],
)
def test_frozen_commands_answer_as_the_checkout_does(sh_image: Image, argv: list[str]) -> None:
    shutil.copyfile(REPO / "tests/fixtures/ibft/ipxe-chap.bin", sh_image.root / "tmp/ibft.bin")
    frozen = chroot(sh_image.root, "/usr/sbin/pyiscsi", *argv)
    local = [str(REPO / "tests/fixtures/ibft/ipxe-chap.bin") if arg == "/tmp/ibft.bin" else arg for arg in argv]
    here = subprocess.run(
        [sys.executable, "-m", "boot", *local], capture_output=True, text=True, timeout=60, check=False
    )
    assert (frozen.returncode, frozen.stderr) == (here.returncode, here.stderr) == (0, "")
    answers = [json.loads(out) for out in (frozen.stdout, here.stdout)]
    for answer in answers:
        answer.pop("source", None)  # the file's path differs inside the image
    assert answers[0] == answers[1]


def test_unit_files_order_and_bound_the_boot(systemd_image: Image) -> None:
    image = systemd_image
    unit = (image.root / "usr/lib/systemd/system/pyiscsi-boot.service").read_text()
    for line in (
        "ConditionPathExists=/run/pyiscsi/wanted",
        "Before=initrd-root-device.target sysroot.mount dracut-initqueue.service",
        "ExecStart=/lib/pyiscsi-sh /usr/sbin/pyiscsi boot",
        "SyslogIdentifier=pyiscsi",
        f"TimeoutStartSec={BOOT_TIMEOUT}",
        "CPUWeight=1000",  # ten times any other unit's share of the processor (udev's coldplug competes)
        "StartupCPUWeight=1000",
    ):
        assert line in unit.splitlines()
    handover = (image.root / "usr/lib/systemd/system/pyiscsi-handover.service").read_text().splitlines()
    assert "ExecStart=/lib/pyiscsi-sh -c '. /lib/pyiscsi-lib.sh && pyiscsi_handover /sysroot'" in handover
    assert any(line.startswith("Before=") and "initrd-cleanup.service" in line for line in handover)
    after = next(line for line in unit.splitlines() if line.startswith("After="))
    assert "pyiscsi-modules.service" in after.split()
    modules = (image.root / "usr/lib/systemd/system/pyiscsi-modules.service").read_text().splitlines()
    for line in (
        "ConditionPathExists=/run/pyiscsi/modules",
        "EnvironmentFile=/run/pyiscsi/modules",
        "ExecStart=-/sbin/modprobe -a -b -q $PYISCSI_MODULES",
    ):
        assert line in modules
    before = next(line for line in modules if line.startswith("Before=systemd-udev-trigger"))
    assert {"systemd-udev-trigger.service", "pyiscsi-boot.service"} <= set(before.split("=")[1].split())
    # udevd listens when the adapters' drivers load: their links are named at once, not during the coldplug
    assert "After=systemd-udevd.service" in modules


@pytest.mark.parametrize("flavour", ["systemd", "sh"])
def test_our_shell_is_dash_where_the_host_has_it(request: pytest.FixtureRequest, flavour: str) -> None:
    """The units' and the generator's shell: each start is on the boot's critical path, and dash starts in a
    fraction of bash's time (Debian's dracut makes /bin/sh bash). It runs the same scripts the tests run under sh."""
    image: Image = request.getfixturevalue(f"{flavour}_image")
    shell = image.root / "lib/pyiscsi-sh"
    assert shell.is_symlink()
    dash = shutil.which("dash")
    if dash is None:
        assert os.readlink(shell) == "/bin/sh"
    else:
        target = os.readlink(shell)
        assert Path(target).name == "dash" and (image.root / target.lstrip("/")).is_file()
        version = chroot(image.root, "/lib/pyiscsi-sh", "-c", 'echo "${BASH_VERSION:-not bash}"')
        assert version.stdout == "not bash\n"
    if flavour == "systemd":  # the shell's own path: dracut resolves each script's interpreter on the host
        generator = (image.root / GENERATOR).read_text().splitlines()[0]
        assert generator == f"#!{os.readlink(shell)}" and Path(generator[2:]).is_file()
    # a Debian kernel's postinst fails on dracut-install's errors (an interpreter it could not resolve, say)
    assert "dracut-install: ERROR" not in image.log


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_units_verify_without_cycles_in_the_initrd_graph(systemd_image: Image) -> None:
    units = ["initrd.target", "initrd-switch-root.target"]
    units += [
        f"/usr/lib/systemd/system/{name}"
        for name in ("pyiscsi-modules.service", "pyiscsi-boot.service", "pyiscsi-handover.service")
    ]
    argv = ["systemd-analyze", "verify", f"--root={systemd_image.root}", "--man=no", *units]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")  # unknown keys and ordering cycles print here


# --- the hooks, run in the unpacked image -------------------------------------------------------------------------

# The stand-in modprobe fails for module aliases, as the real one does when an adapter has no driver in the image.
HOOK_RUNNER = r"""
. /lib/dracut-lib.sh
modprobe() { echo "modprobe $*" >> /tmp/t/modprobe; case "$*" in *pci:*) return 1 ;; esac; }
. $hookdir/cmdline/90-parse-pyiscsi.sh
echo "status=$? root=$root rootok=$rootok"
"""


@dataclass(frozen=True)
class HookRun:
    stdout: str
    wanted: str | None
    finished: str | None
    job: str | None
    modprobe: str


def run_cmdline_hook(root: Path, cmdline: str, iscsiroot: bool = False) -> HookRun:
    queue = root / "usr/lib/dracut/hooks/initqueue"
    for stale in (root / "run/pyiscsi", root / "tmp/t"):
        shutil.rmtree(stale, ignore_errors=True)
    for stale in (queue / "finished/pyiscsi.sh", queue / "settled/pyiscsi-boot.sh"):
        stale.unlink(missing_ok=True)
    (root / "tmp/t").mkdir(parents=True)
    (root / "etc/cmdline.d").mkdir(exist_ok=True)
    (root / "etc/cmdline.d/90-test.conf").write_text(cmdline + "\n")
    fake = root / "sbin/iscsiroot"
    if iscsiroot:
        fake.write_text("#!/bin/sh\nexit 0\n")
        fake.chmod(0o755)
    try:
        result = chroot(root, "/bin/sh", "-c", HOOK_RUNNER)
    finally:
        fake.unlink(missing_ok=True)
    assert result.returncode == 0, result.stderr

    def read(path: str) -> str | None:
        target = root / path
        return target.read_text().strip() if target.exists() else None

    return HookRun(
        stdout=result.stdout + result.stderr,
        wanted=read("run/pyiscsi/wanted"),
        finished=read("usr/lib/dracut/hooks/initqueue/finished/pyiscsi.sh"),
        job=read("usr/lib/dracut/hooks/initqueue/settled/pyiscsi-boot.sh"),
        modprobe=read("tmp/t/modprobe") or "",
    )


# the hook's modprobe for a root on iSCSI: the transport, the checksum it asks for per connection, the checksum
# t10-pi asks for, the disk driver
NET = ["iscsi_tcp", "crc32c", "crypto-crc64-rocksoft", "sd_mod"]
IBFT = ["iscsi_boot_sysfs", "iscsi_ibft", *NET]  # and the iBFT's sysfs tree


@pytest.mark.parametrize(
    ("cmdline", "wanted", "root", "rootok", "modules"),
    [
        (f"root=iscsi:10.0.2.2::3260:0:{IQN}", "root=iscsi:", "/dev/pyiscsiroot", "1", NET),
        (f"root=UUID=0a1b netroot=iscsi:[fec0::2]::::{IQN}", "netroot=iscsi:", "UUID=0a1b", "", NET),
        ("rd.iscsi.firmware=1", "iBFT", "/dev/pyiscsiroot", "1", IBFT),
        ("iscsi_firmware", "iBFT", "/dev/pyiscsiroot", "1", IBFT),
        ("rd.iscsi.ibft", "iBFT", "/dev/pyiscsiroot", "1", IBFT),
        ("root=/dev/vda1", None, "/dev/vda1", "", []),
        (f"root=iscsi:10.0.2.2::::{IQN} rd.pyiscsi=0", None, "", "", []),  # left alone entirely
        ("netroot=nfs:10.0.2.2:/srv root=/dev/nfs", None, "/dev/nfs", "", []),
        # the root path comes with the lease: no dracut network module (/sbin/netroot) here, so pyiscsi's DHCP
        ("netroot=dhcp", "netroot=dhcp", "/dev/pyiscsiroot", "1", NET),
        ("root=dhcp", "netroot=dhcp", "/dev/pyiscsiroot", "1", NET),
        ("netroot=dhcp root=UUID=0a1b ip=dhcp", "netroot=dhcp", "UUID=0a1b", "", NET),
        ("netroot=dhcp rd.pyiscsi=0", None, "", "", []),
    ],
)  # fmt: skip
def test_cmdline_hook_decides_who_owns_the_root(
    sh_image: Image, cmdline: str, wanted: str | None, root: str, rootok: str, modules: list[str]
) -> None:
    run = run_cmdline_hook(sh_image.root, cmdline)
    assert f"status=0 root={root} rootok={rootok}" in run.stdout
    assert run.wanted == wanted
    calls = run.modprobe.splitlines()
    assert len(calls) == (1 if modules else 0)  # one process for all of them
    assert sorted(word for line in calls for word in line.split()[1:] if not word.startswith("-")) == sorted(modules)
    if wanted is None:
        assert (run.finished, run.job) == (None, None)
    else:
        assert run.finished == "[ -e '/run/pyiscsi/booted' ]"
        assert run.job is not None and run.job.splitlines()[-1] == "/sbin/pyiscsi-boot"


@pytest.mark.parametrize(
    "cmdline",
    [
        f"root=iscsi:user:s3cr3t-value@10.0.2.2::3260:0:{IQN}",
        f"root=UUID=0a1b netroot=iscsi:user:s3cr3t-value:ruser:s3cr3t-value@10.0.2.2::::{IQN}",
        f"root=UUID=0a1b netroot=iscsi:u:s3cr3t-value@1.2.3.4::3260:{IQN} rd.iscsi.firmware",  # malformed, too
    ],
)
def test_hooks_name_the_option_never_its_value(sh_image: Image, cmdline: str) -> None:
    """A netroot= value may hold CHAP secrets: the hooks log and write key names only."""
    run = run_cmdline_hook(sh_image.root, cmdline, iscsiroot=True)
    assert run.wanted in {"root=iscsi:", "netroot=iscsi:"}
    timeout = chroot(
        sh_image.root, "/bin/sh", "-c", ". /lib/dracut-lib.sh; . $hookdir/initqueue/timeout/80-timeout-pyiscsi.sh"
    )
    for seen in (run.stdout, run.wanted, timeout.stdout + timeout.stderr):
        assert "s3cr3t" not in seen
    assert "not there yet (" + run.wanted + ")" in timeout.stdout + timeout.stderr


# A machine's network adapters as sysfs shows them: (PCI address, class, vendor, modalias). QEMU's virtio-net
# (transitional and modern), e1000 and e1000e, beside a SCSI controller and a bridge that are no adapters.
VIRTIO_LEGACY = ("0000:00:02.0", "0x020000", "0x1af4", "pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00")
VIRTIO_MODERN = ("0000:00:05.0", "0x020000", "0x1af4", "pci:v00001AF4d00001041sv00001AF4sd00001100bc02sc00i00")
E1000 = ("0000:00:03.0", "0x020000", "0x8086", "pci:v00008086d0000100Esv00001AF4sd00001100bc02sc00i00")
E1000E = ("0000:00:04.0", "0x020000", "0x8086", "pci:v00008086d000010D3sv00008086sd00000000bc02sc00i00")
SCSI = ("0000:00:06.0", "0x010000", "0x1af4", "pci:v00001AF4d00001004sv00001AF4sd00000008bc01sc00i00")
BRIDGE = ("0000:00:00.0", "0x060000", "0x8086", "pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00")
VIRTIO_NET = "virtio:d00000001v00001AF4"  # the virtio-net device's alias, which virtio_net's modules.alias matches


def fake_pci(sysfs: Path, devices: list[tuple[str, str, str, str]]) -> None:
    for address, klass, vendor, alias in devices:
        device = sysfs / "bus/pci/devices" / address
        device.mkdir(parents=True)
        for name, value in (("class", klass), ("vendor", vendor), ("modalias", alias)):
            (device / name).write_text(value + "\n")


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize(
    ("devices", "expected"),
    [
        ([VIRTIO_LEGACY, SCSI, BRIDGE], [VIRTIO_LEGACY[3], VIRTIO_NET]),
        ([E1000, VIRTIO_MODERN, VIRTIO_LEGACY], [VIRTIO_LEGACY[3], VIRTIO_NET, E1000[3], VIRTIO_MODERN[3]]),
        ([E1000, E1000E], [E1000[3], E1000E[3]]),
        ([SCSI, BRIDGE], []),
        ([], []),
    ],
)  # fmt: skip
def test_nic_aliases_name_every_network_adapter_and_its_virtio_device(
    tmp_path: Path, shell: str, devices: list[tuple[str, str, str, str]], expected: list[str]
) -> None:
    sysfs = tmp_path / "sys"
    fake_pci(sysfs, devices)
    script = f". {MODULE}/pyiscsi-lib.sh; PYISCSI_SYSFS={sysfs}; pyiscsi_nic_aliases; echo $_pyiscsi_aliases"
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    # sysfs lists the adapters by address; the virtio-net alias comes once, after the first virtio adapter
    assert result.stdout.split() == expected


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize("broken", ["class", "modalias", "vendor"])
def test_nic_aliases_skip_an_adapter_whose_files_cannot_be_read(tmp_path: Path, shell: str, broken: str) -> None:
    sysfs = tmp_path / "sys"
    fake_pci(sysfs, [VIRTIO_LEGACY, E1000])
    (sysfs / "bus/pci/devices" / VIRTIO_LEGACY[0] / broken).unlink()
    script = f". {MODULE}/pyiscsi-lib.sh; PYISCSI_SYSFS={sysfs}; pyiscsi_nic_aliases; echo $_pyiscsi_aliases"
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    # without its vendor the virtio adapter's own alias still comes (its driver is known), not the virtio-net one
    assert result.stdout.split() == ([VIRTIO_LEGACY[3], E1000[3]] if broken == "vendor" else [E1000[3]])


@pytest.mark.parametrize(
    ("cmdline", "loads"),
    [
        ("rd.iscsi.firmware=1", True),
        (f"root=UUID=0a1b netroot=iscsi:10.0.2.2::::{IQN}", True),
        ("root=/dev/vda1", False),  # not ours: udev loads the drivers, as without pyiscsi
        (f"root=iscsi:10.0.2.2::::{IQN} rd.pyiscsi=0", False),
    ],
)
def test_cmdline_hook_loads_the_nic_drivers_before_udev_only_for_our_root(
    sh_image: Image, cmdline: str, loads: bool
) -> None:
    """The adapters' drivers come in a modprobe of their own after the iSCSI one (an alias with no driver in the
    image is no warning: udev would find none either)."""
    sysfs = sh_image.root / "sys"
    fake_pci(sysfs, [VIRTIO_LEGACY, E1000, SCSI])
    try:
        run = run_cmdline_hook(sh_image.root, cmdline)
    finally:
        shutil.rmtree(sysfs / "bus", ignore_errors=True)
    calls = [line.split() for line in run.modprobe.splitlines()]
    if not loads:
        assert calls == []
        return
    assert len(calls) == 2
    assert "iscsi_tcp" in calls[0]
    assert calls[1] == ["modprobe", "-a", "-b", "-q", VIRTIO_LEGACY[3], VIRTIO_NET, E1000[3]]
    assert "warning" not in run.stdout.lower()


def test_cmdline_hook_warns_when_95iscsi_is_in_the_image_too(sh_image: Image) -> None:
    run = run_cmdline_hook(sh_image.root, f"root=iscsi:10.0.2.2::::{IQN}", iscsiroot=True)
    assert "dracut's iscsi module is in this image too" in run.stdout and "rd.pyiscsi=0" in run.stdout
    assert run.wanted is not None


@pytest.mark.parametrize(("booted", "stub_status", "expected"), [(True, 0, 0), (True, 4, 4), (False, 4, 0)])
def test_pre_pivot_hook_passes_the_status_on(sh_image: Image, booted: bool, stub_status: int, expected: int) -> None:
    root = sh_image.root
    wrapper = root / "usr/sbin/pyiscsi"
    saved = wrapper.read_bytes()
    shutil.rmtree(root / "run/pyiscsi", ignore_errors=True)
    (root / "run/pyiscsi").mkdir(parents=True)
    if booted:
        (root / "run/pyiscsi/booted").write_text("/dev/sda\n")
    wrapper.write_text(f'#!/bin/sh\necho "$@" > /run/pyiscsi/called\nexit {stub_status}\n')
    try:
        script = ". /lib/dracut-lib.sh; NEWROOT=/sysroot; . /usr/lib/dracut/hooks/pre-pivot/50-handover-pyiscsi.sh; "
        result = chroot(root, "/bin/sh", "-c", script + 'echo "status=$?"')
    finally:
        wrapper.write_bytes(saved)
    assert f"status={expected}" in result.stdout
    called = root / "run/pyiscsi/called"
    assert (called.read_text().strip() if called.exists() else None) == (
        "handover --sysroot /sysroot" if booted else None
    )
    if expected:
        assert "handover failed (exit 4)" in result.stdout + result.stderr


# A stand-in for the recovery agent: its comm is `pyiscsi-agent` (the script's name), it writes its pid file, and
# on SIGUSR1 it answers as boot.commands.agent.serve_handover does, waking the requester with SIGURG (or never,
# for "silent").
FAKE_AGENT = """#!/bin/sh
echo $$ > {state}/agent.pid
answer() {{
    {{ read -r where; read -r waiter; }} < {state}/handover.request
    echo "$where" > {state}/asked; echo {status} "$waiter" > {state}/handover.done; kill -URG "$waiter"
}}
[ {status} = silent ] || trap answer USR1
i=0
while [ $i -lt 200 ] && [ ! -e {state}/stop ]; do sleep 0.05; i=$((i + 1)); done
"""
WAIT_PID = "i=0; while [ ! -s {state}/agent.pid ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done; "


@pytest.mark.parametrize("shell", ["sh", "bash"])
@pytest.mark.parametrize(
    ("agent", "earlier", "expected", "asked", "called"),
    [
        ("0", None, 0, "/sysroot", None),  # the agent wrote the files: no interpreter started
        ("3", None, 3, "/sysroot", None),  # the agent failed (its cause went to the console): the status is passed on
        ("0", "5 1\n", 0, "/sysroot", None),  # an earlier request's answer is left in place, and overwritten
        ("silent", None, 4, "", "handover --sysroot /sysroot"),  # no answer within the bound: pyiscsi handover
        # an answer to another waiter (or one naming none) is not this step's: no answer, so pyiscsi handover
        ("silent", "0 1\n", 4, "", "handover --sysroot /sysroot"),
        ("silent", "0\n", 4, "", "handover --sysroot /sysroot"),
        (None, None, 4, "", "handover --sysroot /sysroot"),  # no agent (rd.pyiscsi.agent=0)
    ],
)
def test_the_handover_step_asks_the_agent_else_runs_pyiscsi_handover(
    tmp_path: Path, shell: str, agent: str | None, earlier: str | None, expected: int, asked: str, called: str | None
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if earlier is not None:
        (state / "handover.done").write_text(earlier)
    wrapper = tmp_path / "pyiscsi"
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {state}/called\nexit 4\n')
    wrapper.chmod(0o755)
    lib = (MODULE / "pyiscsi-lib.sh").read_text()
    lib = lib.replace("PYISCSI_STATE=/run/pyiscsi", f"PYISCSI_STATE={state}").replace("/usr/sbin/pyiscsi", str(wrapper))
    (tmp_path / "lib.sh").write_text(lib)
    fake = tmp_path / "pyiscsi-agent"
    fake.write_text(FAKE_AGENT.format(state=state, status=agent))
    fake.chmod(0o755)
    script = f"{fake} & {WAIT_PID.format(state=state)}" if agent is not None else ""
    script += (
        f". {tmp_path}/lib.sh; PYISCSI_HANDOVER_BOUND=1; pyiscsi_handover /sysroot; "
        f'echo "status=$?"; : > {state}/stop; wait'
    )
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert f"status={expected}" in result.stdout, result.stdout + result.stderr
    said = state / "asked"
    assert (said.read_text().strip() if said.exists() else "") == asked
    done = state / "called"
    assert (done.read_text().strip() if done.exists() else None) == called
    if agent == "silent":
        assert "the recovery agent did not answer within 1s; running pyiscsi handover" in result.stderr
    else:
        assert result.stderr == ""


@pytest.mark.parametrize("shell", ["sh", "bash"])
def test_the_agents_answer_ends_the_handover_steps_wait_at_once(tmp_path: Path, shell: str) -> None:
    """The step waits with one `sleep` per look, and the agent's SIGURG ends it: with looks of 300 s, the step
    returns the agent's status having started one sleep (it would otherwise sit out the look: the run's timeout)."""
    state = tmp_path / "state"
    state.mkdir()
    shims = tmp_path / "bin"
    shims.mkdir()
    (shims / "sleep").write_text(f'#!/bin/sh\necho "$@" >> {state}/sleeps\nexec /bin/sleep "$@"\n')
    (shims / "sleep").chmod(0o755)
    lib = (MODULE / "pyiscsi-lib.sh").read_text().replace("PYISCSI_STATE=/run/pyiscsi", f"PYISCSI_STATE={state}")
    assert "sleep 0.5 &" in lib
    (tmp_path / "lib.sh").write_text(lib.replace("sleep 0.5 &", "sleep 300 &"))
    fake = tmp_path / "pyiscsi-agent"
    # the stand-in answers only once the step has started its sleep (bounded): an answer that came before the
    # step's first look would end the wait without a sleep, and without testing the wake-up
    answer_when_asleep = (
        "answer() {{\n    j=0; while [ ! -e {state}/sleeps ] && [ $j -lt 200 ]; do sleep 0.05; j=$((j + 1)); done\n"
    )
    agent = FAKE_AGENT.replace("answer() {{\n", answer_when_asleep)
    fake.write_text(agent.replace("sleep 0.05", "/bin/sleep 0.05").format(state=state, status=0))
    fake.chmod(0o755)
    script = (
        f"{fake} & {WAIT_PID.replace('sleep', '/bin/sleep').format(state=state)}"
        f". {tmp_path}/lib.sh; PYISCSI_HANDOVER_BOUND=600; pyiscsi_handover /sysroot; "
        f'echo "status=$?"; : > {state}/stop; wait'
    )
    env = {**os.environ, "PATH": f"{shims}:{os.environ['PATH']}"}
    result = subprocess.run([shell, "-c", script], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert "status=0" in result.stdout, result.stdout + result.stderr
    assert (state / "sleeps").read_text() == "300\n"
    assert result.stderr == ""


# --- the module's functions, without building an image ------------------------------------------------------------


def call_module_function(
    function: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Source module-setup.sh in bash with dracut's helpers stubbed, call one function, print its status."""
    stubs = (
        'dinfo() { echo "info: $*" >&2; }; derror() { echo "error: $*" >&2; }; dwarning() { :; }\n'
        'require_binaries() { for b in "$@"; do command -v "$b" > /dev/null || return 1; done; }\n'
    )
    script = f'{stubs}. "{MODULE}/module-setup.sh"\n{function}\necho "status=$?"\n'
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )


@pytest.fixture
def moddirs(tmp_path: Path) -> tuple[Path, Path]:
    with_iscsi = tmp_path / "with"
    with_iscsi.mkdir()
    (with_iscsi / "modules.dep").write_text("kernel/drivers/scsi/iscsi_tcp.ko: kernel/drivers/scsi/libiscsi.ko\n")
    without = tmp_path / "without"
    without.mkdir()
    (without / "modules.dep").write_text("kernel/drivers/net/virtio_net.ko:\n")
    return with_iscsi, without


@pytest.mark.parametrize(
    ("python", "srcmods", "frozen", "status", "says"),
    [
        (sys.executable, "with", "", 255, ""),  # installable, but only when asked for
        ("/nonexistent/python3", "with", "", 1, ""),
        ("fake", "with", "", 1, "cannot import boot.freeze"),  # a python3 without pyiscsi
        (sys.executable, "without", "", 1, "no iscsi_tcp module"),
        ("/nonexistent/python3", "with", "prebuilt", 255, ""),  # a prebuilt tree needs no python3 at build time
        ("/nonexistent/python3", "with", "empty", 1, "holds no /usr/lib/pyiscsi/bin/python3"),
    ],
)
def test_check_is_opt_in_and_names_what_is_missing(
    moddirs: tuple[Path, Path], tmp_path: Path, python: str, srcmods: str, frozen: str, status: int, says: str
) -> None:
    if python == "fake":
        python = str(tmp_path / "python3")
        Path(python).write_text("#!/bin/sh\nexit 1\n")
        Path(python).chmod(0o755)
    tree = tmp_path / frozen if frozen else None
    if tree is not None:
        (tree / "usr/lib/pyiscsi/bin").mkdir(parents=True)
        if frozen == "prebuilt":
            (tree / "usr/lib/pyiscsi/bin/python3").write_text("")
            (tree / "usr/lib/pyiscsi/bin/python3").chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "pyiscsi_python": python,
        "srcmods": str(moddirs[0] if srcmods == "with" else moddirs[1]) + "/",
        "kernel": "6.1.0-test",
        "pyiscsi_frozen_tree": str(tree) if tree else "",
    }
    result = call_module_function("check", env, cwd=tmp_path)
    assert f"status={status}" in result.stdout, result.stderr
    assert says in result.stderr


def test_depends_names_nothing_network_related() -> None:
    result = call_module_function("depends", {"PATH": os.environ["PATH"]})
    assert result.stdout.split() == ["rootfs-block", "status=0"]


# --- the scripts themselves ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOURCED_HOOKS)
def test_sourced_hooks_return_and_never_exit(name: str) -> None:
    code = [line.split("#", 1)[0] for line in (MODULE / name).read_text().splitlines()]
    assert [line for line in code if re.search(r"(^|[;&|{]\s*)exit\b", line.strip())] == []


@pytest.mark.parametrize("name", sorted(p.name for p in MODULE.glob("*.sh")))
def test_scripts_parse_and_are_executable(name: str) -> None:
    shell = "bash" if name == "module-setup.sh" else "sh"  # hooks run under the image's /bin/sh (dash, busybox)
    result = subprocess.run([shell, "-n", str(MODULE / name)], capture_output=True, text=True, timeout=30, check=False)
    assert (result.returncode, result.stderr) == (0, "")
    assert (MODULE / name).stat().st_mode & 0o111


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed (Debian: shellcheck)")
@pytest.mark.parametrize("name", sorted(p.name for p in MODULE.glob("*.sh")))
def test_scripts_pass_shellcheck(name: str) -> None:
    dialect = "bash" if name == "module-setup.sh" else "sh"
    argv = ["shellcheck", "-s", dialect, str(MODULE / name)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout) == (0, "")


def test_a_failed_boot_service_goes_to_the_emergency_path_at_once() -> None:
    """A refused login is final: emergency.target (dracut's rd.shell / rd.emergency=) rather than rd.retry later."""
    unit = (MODULE / "pyiscsi-boot.service").read_text()
    assert "\nOnFailure=emergency.target\n" in unit
    assert "\nOnFailureJobMode=replace-irreversibly\n" in unit


def _installkernel_calls(env: dict[str, str]) -> list[str]:
    """installkernel() with dracut's instmods/dracut_instmods stubbed: one line per call, the arguments."""
    script = (
        f'instmods() {{ echo "instmods $*"; }}; dracut_instmods() {{ echo "dracut_instmods $*"; }}; '
        f'. "{MODULE / "module-setup.sh"}"; installkernel'
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env={**os.environ, **env}, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_net_drivers_setting_installs_only_those_nic_drivers() -> None:
    calls = _installkernel_calls({"pyiscsi_net_drivers": "virtio_net e1000"})
    assert calls[0].startswith("instmods iscsi_tcp iscsi_ibft")
    assert calls[1:] == ["instmods virtio_net e1000"]


def test_without_the_setting_every_wired_nic_driver_comes() -> None:
    calls = _installkernel_calls({"pyiscsi_net_drivers": ""})
    assert any(c.startswith("dracut_instmods ") and "=drivers/net" in c for c in calls)
    assert any("=drivers/net/ethernet" in c for c in calls)


# --- the generator, run in the unpacked systemd image -----------------------------------------------------------


@dataclass(frozen=True)
class GeneratorRun:
    output: str
    wanted: str | None
    modules: str | None  # /run/pyiscsi/modules, pyiscsi-modules.service's EnvironmentFile
    units: dict[str, str]  # what it wrote to the generator directory: path -> text (a link: "-> target")
    hook: str | None  # the cmdline hook it linked in for dracut-cmdline.service


def run_generator(
    root: Path, cmdline: str, devices: tuple[tuple[str, str, str, str], ...] = (), before: str = ""
) -> GeneratorRun:
    """/usr/lib/systemd/system-generators/pyiscsi-generator as systemd runs it (three directories), after the shell
    commands `before`, with the command line from /etc/cmdline.d (dracut's getarg reads it beside /proc/cmdline,
    which the chroot lacks). Its output is stdout, stderr and what it logged (the chroot's /dev/kmsg is a file)."""
    gen = root / "run/t/gen"
    hook = root / "usr/lib/dracut/hooks/cmdline/90-parse-pyiscsi.sh"
    kmsg = root / "dev/kmsg"
    for stale in (root / "run/pyiscsi", root / "run/t", root / "sys/bus"):
        shutil.rmtree(stale, ignore_errors=True)
    hook.unlink(missing_ok=True)
    kmsg.unlink(missing_ok=True)
    fake_pci(root / "sys", list(devices))
    (root / "etc/cmdline.d").mkdir(exist_ok=True)
    (root / "etc/cmdline.d/90-test.conf").write_text(cmdline + "\n")
    try:
        result = chroot(root, "/bin/sh", "-c", f"{before}\n/{GENERATOR} /run/t/gen /run/t/early /run/t/late")
        assert result.returncode == 0, result.stderr

        def read(path: Path) -> str | None:
            return path.read_text().strip() if path.exists() else None

        units = {
            str(p.relative_to(gen)): ("-> " + os.readlink(p)) if p.is_symlink() else p.read_text()
            for p in sorted(gen.rglob("*"))
            if p.is_symlink() or p.is_file()
        }
        return GeneratorRun(
            output=result.stdout + result.stderr + (kmsg.read_text() if kmsg.is_file() else ""),
            wanted=read(root / "run/pyiscsi/wanted"),
            modules=read(root / "run/pyiscsi/modules"),
            units=units,
            hook=os.readlink(hook) if hook.is_symlink() else None,
        )
    finally:
        (root / "etc/cmdline.d/90-test.conf").unlink()
        shutil.rmtree(root / "sys/bus", ignore_errors=True)
        kmsg.unlink(missing_ok=True)


def modules_line(*names: str) -> str:
    return f'PYISCSI_MODULES="{" ".join(names)}"'


SYSROOT = [  # what the generator writes for a root= that names no device
    "dev-pyiscsiroot.device.d/pyiscsi-timeout.conf",
    "initrd-root-fs.target.requires/sysroot.mount",
    "sysroot.mount",
]
CMDLINE_HOOK = "/lib/pyiscsi-cmdline.sh"


@pytest.mark.parametrize(
    ("cmdline", "wanted", "modules", "units", "hook"),
    [
        (f"root=iscsi:10.0.2.2::3260:0:{IQN}", "root=iscsi:", NET, SYSROOT, CMDLINE_HOOK),
        (f"root=UUID=0a1b netroot=iscsi:[fec0::2]::::{IQN}", "netroot=iscsi:", NET, [], None),
        ("rd.iscsi.firmware=1 root=UUID=0a1b", "iBFT", IBFT, [], None),  # the bench's and the demo's boot
        ("rd.iscsi.firmware=1", "iBFT", IBFT, SYSROOT, None),  # no root=: dracut-cmdline.service accepts it
        ("iscsi_firmware", "iBFT", IBFT, SYSROOT, None),
        ("rd.iscsi.ibft root=/dev/sda1", "iBFT", IBFT, [], None),
        ("root=/dev/vda1", None, None, [], None),
        (f"root=iscsi:10.0.2.2::::{IQN} rd.pyiscsi=0", None, None, [], None),  # left alone entirely
        ("netroot=nfs:10.0.2.2:/srv root=/dev/nfs", None, None, [], None),
        ("root=dhcp", "netroot=dhcp", NET, SYSROOT, CMDLINE_HOOK),
        ("netroot=dhcp root=UUID=0a1b ip=dhcp", "netroot=dhcp", NET, [], None),
        ("netroot=dhcp rd.pyiscsi=0", None, None, [], None),
        # dracut's getarg and getargbool, read in one pass: the last word of a name wins; 0, no, off are false
        (f"root=iscsi:10.0.2.2::::{IQN} root=/dev/vda1", None, None, [], None),
        (f"root=/dev/vda1 root=iscsi:10.0.2.2::::{IQN}", "root=iscsi:", NET, SYSROOT, CMDLINE_HOOK),
        ("rd.iscsi.firmware=0 root=UUID=0a1b", None, None, [], None),
        ("iscsi_firmware rd.iscsi.firmware=off root=UUID=0a1b", None, None, [], None),
        ("rd.iscsi.ibft=no rd.iscsi.firmware=yes root=UUID=0a1b", "iBFT", IBFT, [], None),
        (f"rd.pyiscsi=off root=iscsi:10.0.2.2::::{IQN}", None, None, [], None),
        (f"rd.pyiscsi=0 rd.pyiscsi root=iscsi:10.0.2.2::::{IQN}", "root=iscsi:", NET, SYSROOT, CMDLINE_HOOK),
        ("netroot=* root=/* rd.iscsi.firmware=[a]", "iBFT", IBFT, [], None),  # words, never file patterns
    ],
)  # fmt: skip
def test_generator_decides_who_owns_the_root(
    systemd_image: Image, cmdline: str, wanted: str | None, modules: list[str] | None, units: list[str],
    hook: str | None,
) -> None:  # fmt: skip
    run = run_generator(systemd_image.root, cmdline, (VIRTIO_LEGACY, E1000, SCSI))
    assert run.wanted == wanted
    # the iSCSI modules, then every adapter's driver (pyiscsi_nic_aliases), for one modprobe before the coldplug
    assert run.modules == (None if modules is None else modules_line(*modules, VIRTIO_LEGACY[3], VIRTIO_NET, E1000[3]))
    assert sorted(run.units) == units
    assert run.hook == hook
    assert "not found" not in run.output, run.output


def test_generator_writes_sysroot_mount_for_the_luns_udev_name(systemd_image: Image) -> None:
    """root=iscsi: names no device, and systemd's fstab generator skips it: ours writes the mount for
    /dev/pyiscsiroot (the name `pyiscsi boot` gives the LUN) into the generator directory, so no reload is needed.
    Boots once reached switch-root with nothing on /sysroot; a hook once said `grep: command not found`."""
    run = run_generator(systemd_image.root, f"root=iscsi:10.0.2.2::3260:1:{IQN} rootfstype=ext4 rw rd.timeout=45")
    unit = run.units["sysroot.mount"].splitlines()
    assert "Before=initrd-root-fs.target" in unit
    assert [line for line in unit if line.split("=")[0] in ("What", "Where", "Type", "Options")] == [
        "What=/dev/pyiscsiroot", "Where=/sysroot", "Options=rw", "Type=ext4",
    ]  # fmt: skip
    assert run.units["initrd-root-fs.target.requires/sysroot.mount"] == "-> ../sysroot.mount"
    # the device job waits as long as dracut's own would (rd.timeout), not systemd's default 90 s
    timeout = run.units["dev-pyiscsiroot.device.d/pyiscsi-timeout.conf"].splitlines()
    assert ("JobTimeoutSec=45" in timeout, "JobRunningTimeoutSec=45" in timeout) == (True, True)
    assert not any(name.endswith(".tmp") for name in run.units)


def test_generator_leaves_a_sysroot_mount_another_generator_wrote(systemd_image: Image) -> None:
    theirs = "[Mount]\nWhat=/dev/theirs\nWhere=/sysroot\n"
    before = f"mkdir -p /run/t/gen && printf '{theirs}' > /run/t/gen/sysroot.mount"
    run = run_generator(systemd_image.root, f"root=iscsi:10.0.2.2::::{IQN}", before=before)
    assert run.units["sysroot.mount"] == theirs


@pytest.mark.parametrize(
    "cmdline",
    [
        f"root=iscsi:user:s3cr3t-value@10.0.2.2::3260:0:{IQN}",
        f"root=UUID=0a1b netroot=iscsi:user:s3cr3t-value:ruser:s3cr3t-value@10.0.2.2::::{IQN}",
        f"root=UUID=0a1b netroot=iscsi:u:s3cr3t-value@1.2.3.4::3260:{IQN} rd.iscsi.firmware",  # malformed, too
    ],
)
def test_generator_names_the_option_never_its_value(systemd_image: Image, cmdline: str) -> None:
    """Its output includes the kernel log, where the generator's one line goes."""
    run = run_generator(systemd_image.root, cmdline)
    assert run.wanted in {"root=iscsi:", "netroot=iscsi:"}
    assert f"pyiscsi: the root is on iSCSI ({run.wanted})" in run.output
    for seen in (run.output, run.wanted, run.modules or "", *run.units.values()):
        assert "s3cr3t" not in seen


# dracut-cmdline as dracut-cmdline.service runs it, when it runs at all (another module's cmdline hook,
# rd.break=cmdline, resume=): systemctl is a stand-in, so that its `die` cannot reach a real one
DRACUT_CMDLINE = """
mkdir -p /tmp/t/bin; printf '#!/bin/sh\necho "systemctl $*" >> /tmp/t/systemctl\n' > /tmp/t/bin/systemctl
chmod +x /tmp/t/bin/systemctl
rm -f /dracut-state.sh
PATH=/tmp/t/bin:$PATH DRACUT_SYSTEMD=1 NEWROOT=/sysroot /bin/dracut-cmdline; echo "status=$?"
"""


@pytest.mark.parametrize(
    ("cmdline", "generator", "status", "root"),
    [
        (f"root=iscsi:10.0.2.2::3260:1:{IQN}", True, 0, "block:/dev/pyiscsiroot"),  # our hook, then dracut
        ("root=dhcp", True, 0, "block:/dev/pyiscsiroot"),
        ("rd.iscsi.firmware=1", True, 0, ""),  # dracut accepts no root= itself
        ("rd.iscsi.firmware=1 root=UUID=0a1b", True, 0, "block:/dev/disk/by-uuid/0a1b"),
        (f"root=iscsi:10.0.2.2::3260:1:{IQN}", False, 1, None),  # without the hook dracut refuses the root
    ],
)
def test_dracut_cmdline_still_accepts_our_root_when_it_runs(
    systemd_image: Image, cmdline: str, generator: bool, status: int, root: str | None
) -> None:
    image = systemd_image.root
    if generator:
        run_generator(image, cmdline)
    else:
        shutil.rmtree(image / "run/pyiscsi", ignore_errors=True)
        (image / "usr/lib/dracut/hooks/cmdline/90-parse-pyiscsi.sh").unlink(missing_ok=True)
    (image / "etc/cmdline.d/90-test.conf").write_text(cmdline + "\n")
    hooks = image / "usr/lib/dracut/hooks"
    try:
        result = chroot(image, "/bin/sh", "-c", DRACUT_CMDLINE)
        state, kmsg = image / "dracut-state.sh", image / "dev/kmsg"  # the chroot's /dev/kmsg is a plain file
        exported = state.read_text() if state.exists() else ""
        logged = kmsg.read_text() if kmsg.is_file() else ""
    finally:
        (image / "etc/cmdline.d/90-test.conf").unlink()
        (hooks / "cmdline/90-parse-pyiscsi.sh").unlink(missing_ok=True)
        for junk in (image / "dracut-state.sh", image / "dev/kmsg", image / "run/initramfs", image / "tmp/t"):
            shutil.rmtree(junk, ignore_errors=True) if junk.is_dir() else junk.unlink(missing_ok=True)
        (hooks / "emergency/01-die.sh").unlink(missing_ok=True)
    assert f"status={status}" in result.stdout, result.stdout + result.stderr
    if root is None:
        assert "Don't know how to handle" in logged + result.stdout + result.stderr
    else:
        assert f'export root="{root}"' in exported.splitlines(), exported[-300:]
