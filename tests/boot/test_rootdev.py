from __future__ import annotations

import os

import pytest

from boot.rootdev import link_root, root_rule
from initiator.errors import BadInputError


def test_rule_names_the_disk_and_the_link(tmp_path):
    (tmp_path / "sys/class/block/sdb").mkdir(parents=True)
    (tmp_path / "sys/class/block/sdb/uevent").write_text("")
    reloads = []
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/root").symlink_to("sdb")  # udev made it
    link_root("/dev/sdb", "/dev/root", rules_dir=tmp_path / "rules", sysfs=tmp_path / "sys", dev=tmp_path / "dev",
              reload=lambda: reloads.append(1))  # fmt: skip
    rule = (tmp_path / "rules/99-pyiscsi-root.rules").read_text()
    assert 'KERNEL=="sdb", SYMLINK+="root"' in rule
    assert (tmp_path / "sys/class/block/sdb/uevent").read_text() == "change"
    assert reloads == [1]
    assert os.readlink(tmp_path / "dev/root") == "sdb"


def test_without_udev_the_link_is_made_after_the_wait(tmp_path):
    """dracut's sh init (udevd with the rules it started with) never made /dev/pyiscsiroot: the boot waited for
    it until rd.retry ran out."""
    (tmp_path / "sys/class/block/sdb").mkdir(parents=True)
    (tmp_path / "sys/class/block/sdb/uevent").write_text("")
    link_root("/dev/sdb", "pyiscsiroot", rules_dir=tmp_path / "rules", sysfs=tmp_path / "sys", dev=tmp_path / "dev",
              wait=0.2, reload=lambda: None)  # fmt: skip
    assert os.readlink(tmp_path / "dev/pyiscsiroot") == "/dev/sdb"


@pytest.mark.parametrize(
    "device, link, field",
    [
        ('/dev/sda", RUN+="/bin/sh', "root", "root device"),
        ("/dev/sda", "../etc/passwd", "root link"),
        ("/dev/sda", 'root" RUN+="x', "root link"),
        ("", "root", "root device"),
    ],
)
def test_names_that_would_break_the_rule_are_refused(device, link, field):
    with pytest.raises(BadInputError) as info:
        root_rule(device, link)
    assert info.value.field == field
