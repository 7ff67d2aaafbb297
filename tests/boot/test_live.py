"""boot.live: where a discovered target is logged in to, and the kernel modules (the parts that need no kernel)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from boot.cmdline import parse_cmdline
from boot.live import FIRMWARE_MODULES, KERNEL_MODULES, LiveSteps, load_modules, module_state, usable_portal
from initiator.deadline import Deadline
from initiator.errors import NetworkError, WaitTimeout
from initiator.portal import Portal

ASKED = ("10.0.2.2", 3260)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        # tgtd on the host's 127.0.0.1, reached by a VM as 10.0.2.2: the first discovery boot logged in to
        # 127.0.0.1 and got `connection refused` until the login bound ran out
        ([Portal("127.0.0.1", 3260)], ASKED),
        ([Portal("127.0.0.1", 40000)], ASKED),
        ([Portal("::1", 3260)], ASKED),
        ([Portal("0.0.0.0", 3260)], ASKED),
        ([], ASKED),
        (None, ASKED),
        ([Portal("192.0.2.9", 3261)], ("192.0.2.9", 3261)),  # a real other portal is followed
        ([Portal("192.0.2.9", 3261), Portal("10.0.2.2", 3260)], ASKED),  # the one we asked, when listed
        ([Portal("127.0.0.1", 3260), Portal("192.0.2.9", 3260)], ("192.0.2.9", 3260)),
    ],
)
def test_usable_portal(reported, expected) -> None:
    assert usable_portal(reported, *ASKED) == expected


def test_loopback_is_kept_when_we_asked_loopback() -> None:
    assert usable_portal([Portal("127.0.0.1", 3261)], "127.0.0.1", 3260) == ("127.0.0.1", 3261)


# --- kernel modules: loaded once, and ready before they are used --------------------------------------------------


class FakeSys:
    """A /sys/module tree whose states a fake modprobe and the waits' sleeps change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.now = 0.0
        self.later: list[tuple[str, str]] = []  # states that come one per sleep

    def set(self, name: str, state: str | None) -> None:
        directory = self.root / name
        if state is None:
            if directory.exists():
                shutil.rmtree(directory)
            return
        directory.mkdir(parents=True, exist_ok=True)
        if state != "builtin":
            (directory / "initstate").write_text(f"{state}\n")

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.later:
            self.set(*self.later.pop(0))

    def deadline(self, bound: float = 1.0) -> Deadline:
        return Deadline("total", bound, clock=lambda: self.now)


@pytest.fixture
def sys_module(tmp_path: Path) -> FakeSys:
    return FakeSys(tmp_path / "module")


def _load(sysfs: FakeSys, modules=KERNEL_MODULES, optional=()) -> None:  # type: ignore[no-untyped-def]
    load_modules(sysfs.deadline(), modules, optional=optional, root=sysfs.root, sleep=sysfs.sleep)


@pytest.mark.parametrize(
    ("text", "state"), [("live", "live"), ("coming", "coming"), ("going", "going"), (None, "builtin"), ("", "absent")]
)
def test_module_state(sys_module: FakeSys, text: str | None, state: str) -> None:
    if text is None:
        sys_module.set("iscsi_tcp", "builtin")
    else:
        sys_module.set("iscsi_tcp", "live")
        (sys_module.root / "iscsi_tcp/initstate").write_text(text)
    assert module_state("iscsi_tcp", sys_module.root) == state
    assert module_state("not_there", sys_module.root) == "absent"


@pytest.mark.parametrize("ready", ["live", "builtin"])
def test_ready_modules_start_no_modprobe(sys_module: FakeSys, fp, ready: str) -> None:  # type: ignore[no-untyped-def]
    for name in ("iscsi_tcp", *FIRMWARE_MODULES):
        sys_module.set(name, ready)
    _load(sys_module, optional=FIRMWARE_MODULES)  # fp refuses any process not registered
    assert fp.call_count(["modprobe", fp.any()]) == 0


def test_one_modprobe_loads_only_the_absent_ones(sys_module: FakeSys, fp) -> None:  # type: ignore[no-untyped-def]
    sys_module.set("iscsi_boot_sysfs", "live")

    def loaded(process) -> None:  # type: ignore[no-untyped-def]
        for name in process.args[3:]:
            sys_module.set(name, "live")

    fp.register(["modprobe", "-a", "-q", "iscsi_tcp", "iscsi_ibft"], callback=loaded)
    _load(sys_module, optional=FIRMWARE_MODULES)
    assert fp.call_count(["modprobe", "-a", "-q", "iscsi_tcp", "iscsi_ibft"]) == 1


def test_a_module_another_modprobe_still_loads_is_waited_for(sys_module: FakeSys, fp) -> None:  # type: ignore[no-untyped-def]
    """dracut's hook or udev may be loading iscsi_ibft: modprobe returns at once, its sysfs tree is not made yet."""
    sys_module.set("iscsi_tcp", "live")
    sys_module.set("iscsi_boot_sysfs", "live")
    sys_module.set("iscsi_ibft", "coming")
    sys_module.later = [("iscsi_ibft", "coming"), ("iscsi_ibft", "live")]
    _load(sys_module, optional=FIRMWARE_MODULES)
    assert module_state("iscsi_ibft", sys_module.root) == "live" and sys_module.later == []


def test_an_optional_module_that_does_not_load_is_left_out(sys_module: FakeSys, fp) -> None:  # type: ignore[no-untyped-def]
    fp.register(["modprobe", fp.any()], callback=lambda process: sys_module.set("iscsi_tcp", "live"), returncode=1)
    _load(sys_module, optional=FIRMWARE_MODULES)
    assert module_state("iscsi_ibft", sys_module.root) == "absent"


@pytest.mark.parametrize(
    ("register", "message"),
    [
        ({"returncode": 1, "stderr": "modprobe: FATAL: Module iscsi_tcp not found"}, "modprobe iscsi_tcp failed: "
         "modprobe: FATAL: Module iscsi_tcp not found"),
        ({"returncode": 0}, "modprobe iscsi_tcp failed: exit status 0"),
    ],
)  # fmt: skip
def test_a_needed_module_that_does_not_load_is_one_error_naming_it(
    sys_module: FakeSys,
    fp,
    register: dict,
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    fp.register(["modprobe", fp.any()], **register)
    with pytest.raises(NetworkError) as caught:
        _load(sys_module, optional=FIRMWARE_MODULES)
    assert str(caught.value).endswith(message)


def test_no_modprobe_is_one_error(sys_module: FakeSys, fp) -> None:  # type: ignore[no-untyped-def]
    def missing(process) -> None:  # type: ignore[no-untyped-def]
        raise FileNotFoundError(2, "No such file or directory", "modprobe")

    fp.register(["modprobe", fp.any()], callback=missing)
    with pytest.raises(NetworkError, match="modprobe not found: cannot load iscsi_tcp"):
        _load(sys_module)


def test_a_module_that_never_finishes_loading_runs_out_the_bound(sys_module: FakeSys) -> None:
    sys_module.set("iscsi_tcp", "coming")
    with pytest.raises(WaitTimeout) as caught:
        _load(sys_module)
    assert "kernel module iscsi_tcp to finish loading" in str(caught.value)
    assert sys_module.now == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("cmdline", "optional"),
    [("netroot=iscsi:10.0.2.2::::iqn.2026-12.org.pyiscsi:r", ("sd_mod",)),
     ("rd.iscsi.firmware", (*FIRMWARE_MODULES, "sd_mod")), ("rd.iscsi.ibft=1", (*FIRMWARE_MODULES, "sd_mod")),
     ("iscsi_firmware", (*FIRMWARE_MODULES, "sd_mod")), ("rd.iscsi.firmware=0", ("sd_mod",))],
)  # fmt: skip
def test_the_boot_loads_the_firmware_modules_when_the_command_line_asks_and_the_disk_driver(
    monkeypatch: pytest.MonkeyPatch, cmdline: str, optional: tuple[str, ...]
) -> None:
    calls: list[tuple[tuple[str, ...], tuple[str, ...], float]] = []
    monkeypatch.setattr(
        "boot.live.load_modules",
        lambda deadline, modules, optional=(): calls.append((modules, optional, deadline.bound)),
    )
    LiveSteps(in_initramfs=True).load_modules_for(parse_cmdline(cmdline + " rd.pyiscsi.timeout=42"))
    LiveSteps(in_initramfs=False).load_modules_for(parse_cmdline(cmdline))  # outside the initramfs: nothing
    assert calls == [(KERNEL_MODULES, optional, 42.0)]
