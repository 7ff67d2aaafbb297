"""The pure parts of harness.debroot and harness.realboot: names, keys, argv, files, guest scripts, verdicts.

No mmdebstrap and no QEMU here; the only tools run are `sh -n` (the guest scripts parse), `dpkg-deb` (the .deb
digest ignores timestamps) and, as root, `mount --bind` (a chroot step never leaves a mount behind).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import debroot, realboot
from harness.console import Marker
from harness.errors import HarnessError
from harness.paths import REPO

README_CONF = 'add_dracutmodules+=" pyiscsi "\nomit_dracutmodules+=" iscsi "'


def test_sources_file_is_the_first_that_exists(tmp_path):
    deb822, legacy = tmp_path / "debian.sources", tmp_path / "sources.list"
    legacy.write_text("deb http://example.invalid/debian bookworm main\n")
    assert debroot.sources_file((deb822, legacy)) == legacy
    deb822.write_text("Types: deb\n")
    assert debroot.sources_file((deb822, legacy)) == deb822


def test_no_sources_file_is_an_error_naming_where_it_looked(tmp_path):
    with pytest.raises(HarnessError, match=r"debian\.sources"):
        debroot.sources_file((tmp_path / "debian.sources",))


def test_the_dracut_conf_is_the_readmes_own():
    conf = debroot.readme_dracut_conf(debroot.README.read_text())
    assert 'add_dracutmodules+=" pyiscsi "' in conf.splitlines()
    assert all(line.startswith(("#", "add_", "omit_")) for line in conf.splitlines() if line.strip())


@pytest.mark.parametrize(
    ("readme", "expected"),
    [
        (f"x\n```\n# /etc/dracut.conf.d/pyiscsi.conf\n{README_CONF}\n```\n", README_CONF),
        (
            '```\n# /etc/dracut.conf.d/pyiscsi.conf\nadd_dracutmodules+=" pyiscsi "\n```',
            'add_dracutmodules+=" pyiscsi "',
        ),
        ("```sh\necho 'add_dracutmodules+=\" pyiscsi \"' > /etc/dracut.conf.d/pyiscsi.conf\ndracut -f\n```",
         'add_dracutmodules+=" pyiscsi "'),
        ("echo 'a=1' > /etc/dracut.conf.d/pyiscsi.conf\necho 'b=2' >> /etc/dracut.conf.d/pyiscsi.conf\n"
         "echo 'c=3' > /etc/dracut.conf.d/other.conf\n", "a=1\nb=2"),
        ("echo 'a=1' >> /etc/dracut.conf.d/pyiscsi.conf\necho 'b=2' > /etc/dracut.conf.d/pyiscsi.conf\n", "b=2"),
    ],
)  # fmt: skip
def test_readme_dracut_conf_takes_what_the_readme_writes_there(readme, expected):
    assert debroot.readme_dracut_conf(readme) == f"# from pyiscsi's README\n{expected}\n"


@pytest.mark.parametrize(
    "readme",
    [
        "",
        "# /etc/dracut.conf.d/other.conf\nx=1\n",
        "# /etc/dracut.conf.d/pyiscsi.conf\n```",
        "echo 'x=1' > /etc/dracut.conf.d/pyiscsi.conf.bak\n",
    ],
)
def test_readme_without_instructions_is_an_error(readme):
    with pytest.raises(HarnessError, match=r"pyiscsi\.conf"):
        debroot.readme_dracut_conf(readme)


@pytest.mark.parametrize(
    ("name", "fields"),
    [
        ("linux-image-6.1.0-50-amd64_6.1.176-1_amd64.deb", ("linux-image-6.1.0-50-amd64", "6.1.176-1")),
        ("pyiscsi_0.1.0_all.deb", ("pyiscsi", "0.1.0")),
        ("libfoo2_1%3a2.3-4+deb12u1_amd64.deb", ("libfoo2", "1:2.3-4+deb12u1")),
    ],
)
def test_deb_fields(name, fields):
    assert debroot.deb_fields(name) == fields


@pytest.mark.parametrize("name", ["pyiscsi.deb", "pyiscsi_0.1.0_all.tar", "Upper_1_all.deb", "a_b.deb", ""])
def test_deb_fields_refuses_other_names(name):
    with pytest.raises(HarnessError):
        debroot.deb_fields(name)


@pytest.mark.parametrize(
    ("field", "names"),
    [
        ("python3:any, dracut-core, python3-pyroute2, python3-pyudev",
         ("python3", "dracut-core", "python3-pyroute2", "python3-pyudev")),
        ("python3:any (>= 3.11~), libc6 (>= 2.34), a | b", ("python3", "libc6", "a")),
        ("foo [amd64], foo (<< 2)", ("foo",)),
        ("", ()),
    ],
)  # fmt: skip
def test_deb_depends_takes_first_alternatives_without_versions(field, names):
    assert debroot.deb_depends(field) == names


@given(st.text(min_size=1, max_size=40))
def test_root_uuid_is_a_fixed_version_4_uuid_per_key(key):
    made = debroot.root_uuid(key)
    assert made == debroot.root_uuid(key)
    assert uuid.UUID(made).version == 4
    assert made != debroot.root_uuid(key + "x")


def test_fstab_names_the_root_by_uuid_and_checks_it_first():
    line = [x for x in debroot.fstab("1234-abcd").splitlines() if not x.startswith("#")]
    assert line == ["UUID=1234-abcd / ext4 errors=remount-ro 0 1"]


@pytest.mark.parametrize("name", list(debroot.VARIANTS))
def test_packages_are_common_then_the_variants_then_extra_once_each(name):
    variant = debroot.VARIANTS[name]
    got = debroot.packages(variant, ("python3-pyudev", "systemd-sysv"))
    assert got[: len(debroot.COMMON_PACKAGES)] == debroot.COMMON_PACKAGES
    assert len(got) == len(set(got))
    assert set(variant.packages) <= set(got) and "python3-pyudev" in got
    for needed in ("systemd-sysv", "open-iscsi", "dracut", "dracut-core", "dracut-network"):
        assert needed in got


def test_each_variant_brings_its_network_manager():
    assert "network-manager" in debroot.VARIANTS["networkmanager"].packages
    assert {"ifupdown", "isc-dhcp-client"} <= set(debroot.VARIANTS["ifupdown"].packages)
    assert "systemd-networkd.service" in debroot.VARIANTS["networkd"].enable


def test_mmdebstrap_uses_this_machines_sources_file_and_shares_downloads(tmp_path):
    mirror, archives = Path("/etc/apt/sources.list.d/debian.sources"), tmp_path / "archives"
    argv = debroot.mmdebstrap_argv(debroot.VARIANTS["ifupdown"], tmp_path / "base.tar", mirror, archives, ("x",))
    assert argv[0] == "mmdebstrap" and argv[-3:] == ["bookworm", str(tmp_path / "base.tar"), str(mirror)]
    assert "--mode=root" in argv and "--variant=minbase" in argv
    include = next(a for a in argv if a.startswith("--include=")).removeprefix("--include=").split(",")
    assert set(debroot.packages(debroot.VARIANTS["ifupdown"], ("x",))) == set(include)
    assert f"--setup-hook=sync-in {archives} /var/cache/apt/archives" in argv
    assert f"--customize-hook=sync-out /var/cache/apt/archives {archives}" in argv
    assert not any("://" in a for a in argv)  # the mirror comes from the sources file, never from here


@pytest.mark.parametrize("name", list(debroot.VARIANTS))
def test_root_files(name):
    variant = debroot.VARIANTS[name]
    files = debroot.root_files(variant, "u-u-i-d", "CONF\n")
    assert files["etc/dracut.conf.d/pyiscsi.conf"] == ("CONF\n", 0o644)
    assert "UUID=u-u-i-d /" in files["etc/fstab"][0]
    assert files[debroot.TEST_SCRIPT][1] == files[debroot.FINAL_HOOK][1] == 0o755
    assert f"ExecStart=/{debroot.TEST_SCRIPT}" in files[f"etc/systemd/system/{debroot.TEST_UNIT}"][0]
    for path, text, mode in variant.files:
        assert files[path] == (text, mode)
    if name == "ifupdown":
        assert f"iface {debroot.GUEST_NIC} inet dhcp" in files["etc/network/interfaces"][0]


@pytest.mark.parametrize("name", list(debroot.VARIANTS))
def test_guest_scripts_are_filled_in_and_parse(name, tmp_path):
    script = debroot.guest_check(debroot.VARIANTS[name])
    assert re.findall(r"@[A-Z_]+@", script) == []
    assert f"variant={name}" in script
    for text in (script, debroot.GUEST_FINAL):
        path = tmp_path / "script"
        path.write_text(text)
        done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr


GOOD_LISTING = """\
dracut modules:
systemd
pyiscsi
rootfs-block
========================================================================
drwxr-xr-x  12 root root 0 Dec  2 09:01 .
-rwxr-xr-x   1 root root 99 Dec  2 09:01 usr/sbin/pyiscsi
-rwxr-xr-x   1 root root 6809944 Dec  2 09:01 usr/lib/pyiscsi/bin/python3
-rw-r--r--   1 root root 5461 Jan  1  1980 usr/lib/pyiscsi/lib/python3.11/boot/cli.pyc
========================================================================
"""


def test_check_lsinitrd_counts_the_runtime():
    assert debroot.check_lsinitrd(GOOD_LISTING) == 2
    assert debroot.initrd_modules(GOOD_LISTING) == ["systemd", "pyiscsi", "rootfs-block"]


@pytest.mark.parametrize(
    ("listing", "says"),
    [
        (GOOD_LISTING.replace("pyiscsi\nrootfs", "rootfs"), "no pyiscsi"),
        (GOOD_LISTING.replace("usr/lib/pyiscsi/lib/python3.11/boot/cli.pyc", "usr/lib/x.pyc"), "python3"),
        (GOOD_LISTING.replace("usr/lib/pyiscsi/bin/python3\n", "usr/lib/pyiscsi/bin/other\n"), "bin/python3"),
    ],
)
def test_check_lsinitrd_refuses_an_image_without_a_working_module(listing, says):
    with pytest.raises(HarnessError, match=says):
        debroot.check_lsinitrd(listing)


@pytest.mark.parametrize(
    ("output", "complaints"),
    [
        ("dracut: Generating /boot/initrd.img-6.1.0-50-amd64\n", 0),
        ("boot.freeze: frozen tree: ... ImportError: cannot import name 'IPRoute'\n", 1),
        ("dracut: pyiscsi: could not install the frozen runtime\ndracut: other\n", 1),
        ("dracut: Cannot find module 'foo'\n", 0),  # not ours
    ],
)
def test_pyiscsi_complaints(output, complaints):
    assert len(debroot.pyiscsi_complaints(output)) == complaints


def test_image_has_headroom_over_the_tree():
    assert debroot.image_mb(1 << 30) > 1024 + debroot.SLACK_MB
    assert debroot.image_mb(0) == debroot.SLACK_MB


def test_cache_key_depends_on_every_part_and_its_name():
    base = [("a", b"1"), ("b", b"2")]
    assert debroot.cache_key(base) == debroot.cache_key(list(base))
    assert debroot.cache_key(base) != debroot.cache_key([("a", b"1"), ("b", b"3")])
    assert debroot.cache_key(base) != debroot.cache_key([("a", b"1"), ("c", b"2")])


def _deb(tmp_path: Path, name: str, content: bytes, mtime: int) -> Path:
    tree = tmp_path / name
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text(
        "Package: probe\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example.invalid>\nDescription: d\n"
    )
    (tree / "usr/share/probe").mkdir(parents=True)
    (tree / "usr/share/probe/file").write_bytes(content)
    for path in tree.rglob("*"):
        os.utime(path, (mtime, mtime))
    out = tmp_path / f"{name}.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)], capture_output=True, check=True)
    return out


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb not installed")
def test_deb_digest_ignores_timestamps_but_not_contents(tmp_path):
    one = _deb(tmp_path, "one", b"same", 1_000_000_000)
    two = _deb(tmp_path, "two", b"same", 1_700_000_000)
    three = _deb(tmp_path, "three", b"other", 1_000_000_000)
    assert one.read_bytes() != two.read_bytes()
    assert debroot.deb_digest(one) == debroot.deb_digest(two)
    assert debroot.deb_digest(one) != debroot.deb_digest(three)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_chroot_mounts_are_gone_afterwards_even_on_failure(tmp_path):
    with pytest.raises(RuntimeError, match="inside"), debroot.chroot_mounts(tmp_path) as root:
        assert (root / "proc/self").exists() and (root / "dev/null").exists()
        assert len(debroot._mounts_under(root)) == 3
        raise RuntimeError("inside")
    assert debroot._mounts_under(tmp_path) == []
    assert not (tmp_path / "dev/null").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts need root")
def test_remove_tree_never_goes_through_a_mount(tmp_path):
    (tmp_path / "tree/dev").mkdir(parents=True)
    subprocess.run(["mount", "--bind", "/dev", str(tmp_path / "tree/dev")], check=True)
    try:
        with pytest.raises(HarnessError, match="mounts under it"):
            debroot._remove_tree(tmp_path / "tree")
    finally:
        subprocess.run(["umount", str(tmp_path / "tree/dev")], check=True)
    debroot._remove_tree(tmp_path / "tree")
    assert not (tmp_path / "tree").exists()


# --- realboot --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("detail", "parsed"),
    [
        ("total=2 root=1 data=1", {"total": "2", "root": "1", "data": "1"}),
        ("state=running target=active", {"state": "running", "target": "active"}),
        ("said=iscsiadm:_x=1;y plain words", {"said": "iscsiadm:_x=1;y"}),
        ("", {}),
    ],
)
def test_details(detail, parsed):
    assert realboot.details(Marker("m", 1.0, detail)) == parsed


LOG = """\
[   10.000001] sd 2:0:0:1: [sda] Attached SCSI disk
[   20.500000]  connection1:0: detected conn error (1020)
[   30.000000] blk_update_request: I/O error, dev sda, sector 123 op 0x1:(WRITE)
PYISCSI-MARK final 31.00 action=poweroff
[   40.000000] Buffer I/O error on dev sda, logical block 7
"""


@pytest.mark.parametrize(
    ("start", "end", "count"),
    [(0.0, 100.0, 3), (21.0, 35.0, 1), (0.0, 20.0, 0), (20.5, 20.6, 1), (31.0, 39.0, 0)],
)
def test_kernel_errors_between_two_uptimes(start, end, count):
    assert len(realboot.kernel_errors(LOG, start, end)) == count


CLEAN = "Filesystem state:         clean\nFilesystem features:      has_journal ext_attr extent\n"


@pytest.mark.parametrize(
    ("dump", "status", "verdict"),
    [
        (CLEAN, 0, "clean"),
        (CLEAN.replace("extent", "extent needs_recovery"), 0, "journal needs recovery"),
        (CLEAN.replace("clean", "not clean"), 0, "state not clean"),
        (CLEAN, 4, "e2fsck -fn exit 4"),
        ("", 0, "state unknown"),
    ],
)
def test_fs_verdict(dump, status, verdict):
    assert realboot.fs_verdict(dump, status) == verdict


def test_lab_cmdline_ibft_and_netroot(tmp_path, monkeypatch):
    monkeypatch.setattr(realboot, "CACHE", tmp_path)
    root = debroot.DebRoot("networkd", tmp_path, "6.1.0-50-amd64", "u-1", {})
    lab = realboot.Lab(root)
    try:
        lab.port = 3261
        ibft = lab.cmdline(realboot.Guest("a", action="reboot", phase="write"), "t0k")
        assert "rd.iscsi.firmware=1 root=UUID=u-1" in ibft and "netroot=" not in ibft
        assert f"pyiscsi.test.data={realboot.DATA_IQN}" in ibft and "pyiscsi.test.token=t0k" in ibft
        net = lab.cmdline(realboot.Guest("b", ipxe=False, data=False), "")
        assert f"netroot=iscsi:10.0.2.2::3261:1:{realboot.ROOT_IQN} ip=dhcp root=UUID=u-1" in net
        assert "rd.iscsi.firmware" not in net and "token" not in net
        assert f"pyiscsi.test.data={realboot.DATA_IQN}" in net  # the guest reports on it either way
    finally:
        lab.close()
    assert not list(tmp_path.glob(".realboot-*"))


@pytest.mark.parametrize(
    ("cmdline", "targets"),
    [
        ("ip=dhcp netroot=iscsi:192.168.77.1::3260:1:iqn.2026-12.org.pyiscsi:debian-root", 1),
        # two paths of the root and a data target: three targets, although `luns` names the root again
        ("ip=dhcp netroot=iscsi:10.0.2.2::3260:1:iqn.2026-12.org.pyiscsi:r netroot=iscsi:10.0.3.2::3260:1:"
         "iqn.2026-12.org.pyiscsi:r netroot=iscsi:10.0.2.2::3260:2:iqn.2026-12.org.pyiscsi:d", 3),
    ],
)  # fmt: skip
def test_the_guest_counts_the_targets_explain_names(cmdline: str, targets: int) -> None:
    """The `explain` mark's count is the guest check's own grep over real `pyiscsi explain` output."""
    pattern = re.search(r"grep -c '([^']+)'\)\"\n", debroot.GUEST_CHECK)
    assert pattern is not None
    explained = subprocess.run(
        [sys.executable, "-m", "boot", "explain", "--cmdline", cmdline, "--ibft", "none"],
        capture_output=True, text=True, timeout=60, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    counted = subprocess.run(["grep", "-c", pattern.group(1)], input=explained, capture_output=True, text=True)
    assert counted.stdout.strip() == str(targets), explained
