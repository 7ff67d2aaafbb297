"""Give the root LUN the name the root= option waits for (dracut's `/dev/root` for `root=iscsi:`).

A plain symlink would satisfy a shell but not systemd, which waits for `dev-root.device`, a udev-made name; so
we add a udev rule matching the disk's kernel name for this boot and ask udev to re-process the disk.
"""

from __future__ import annotations

import re
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


def link_root(device: str, link: str, rules_dir: Path = RULES_DIR, sysfs: Path = Path("/sys")) -> None:
    write_atomic(rules_dir / RULE_FILE, root_rule(device, link))
    uevent = sysfs / "class" / "block" / device.removeprefix("/dev/") / "uevent"
    uevent.write_text("change")
