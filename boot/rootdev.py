"""Give the root LUN the name the root= option waits for (dracut's `/dev/root` for `root=iscsi:`).

A plain symlink would satisfy a shell but not systemd, which waits for `dev-root.device`, a udev-made name; so
we add a udev rule matching the disk's kernel name for this boot and ask udev to re-process the disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from boot.atomic import write_atomic
from initiator.errors import BadInputError

RULES_DIR = Path("/run/udev/rules.d")
RULE_FILE = "99-pyiscsi-root.rules"
_KERNEL_NAME = re.compile(r"^[a-z][a-z0-9]{0,31}$")
_LINK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,63}$")


def root_rule(device: str, link: str) -> str:
    name = device.removeprefix("/dev/")
    if not _KERNEL_NAME.match(name):
        raise BadInputError("root device", device, "not a kernel block device name")
    link = link.removeprefix("/dev/")
    if not _LINK.match(link) or ".." in link:
        raise BadInputError("root link", link, "not a name under /dev")
    return f'# written by pyiscsi boot: the root LUN\nSUBSYSTEM=="block", KERNEL=="{name}", SYMLINK+="{link}"\n'


LINK_WAIT = 5.0  # seconds for udev to make the link before we make it ourselves
UDEVADM_BOUND = 10.0


def _reload_udev_rules() -> None:
    """udevd notices a new rules file only when it checks its directories again: tell it (as 95iscsi does)."""
    import subprocess  # root=iscsi: only (a rule for the root's udev name)

    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(["udevadm", "control", "--reload"], capture_output=True, timeout=UDEVADM_BOUND, check=False)


def link_root(
    device: str,
    link: str,
    rules_dir: Path = RULES_DIR,
    sysfs: Path = Path("/sys"),
    dev: Path = Path("/dev"),
    wait: float = LINK_WAIT,
    reload: Callable[[], None] = _reload_udev_rules,
) -> None:
    """The udev rule, a reload, a change event; if udev has not made the link within `wait` seconds (an
    initramfs whose udevd kept its old rules), a plain symlink, which dracut's sh init is content with."""
    write_atomic(rules_dir / RULE_FILE, root_rule(device, link))
    reload()
    uevent = sysfs / "class" / "block" / device.removeprefix("/dev/") / "uevent"
    uevent.write_text("change")
    target = dev / link.removeprefix("/dev/")
    end = time.monotonic() + wait
    while not os.path.lexists(target):
        if time.monotonic() >= end:
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                target.symlink_to(device if device.startswith("/") else f"/dev/{device}")
            return
        time.sleep(0.1)
