"""bench.frozen: ldd parsing, the tables, and the commands it times (no timing asserts)."""

from __future__ import annotations

from pathlib import Path

from bench import frozen
from bench.stats import Summary

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibisns.so.0 => /lib/x86_64-linux-gnu/libisns.so.0 (0x00007f1)
\tlibcrypto.so.3 => /lib/x86_64-linux-gnu/libcrypto.so.3 (0x00007f2)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f3)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f4)
\tlibgone.so.1 => not found
"""


def test_ldd_libraries_leave_out_libc_and_unresolved() -> None:
    assert frozen.ldd_libraries(LDD) == ["/lib/x86_64-linux-gnu/libisns.so.0", "/lib/x86_64-linux-gnu/libcrypto.so.3"]


def test_size_report_ratios() -> None:
    text = frozen.size_report(4 << 20, 1 << 20, 100, 2 << 20, 5)
    lines = text.splitlines()
    assert "4.00" in lines[2] and "2.00x" in lines[2]
    assert "100 modules" in lines[3] and "0.50x" in lines[3]
    assert "5 files" in lines[4]


def test_size_report_like_for_like_row_leaves_libc_out(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/libc.so.6").write_bytes(b"c" * 3000)
    (tmp_path / "lib/libm.so.6").write_bytes(b"m" * 1000)
    (tmp_path / "lib/libcrypto.so.3").write_bytes(b"x" * 500)
    (tmp_path / "lib/libc.so").symlink_to("libc.so.6")  # a link is not counted
    assert frozen.libc_family_bytes(tmp_path) == 4000
    lines = frozen.size_report(4 << 20, 1 << 20, 100, 2 << 20, 5, libc_bytes=2 << 20).splitlines()
    assert "less libc" in lines[3] and "2.00" in lines[3] and "1.00x" in lines[3]
    assert "100 modules" in lines[4]


def test_startup_report_compares_with_iscsistart() -> None:
    results = {
        "ours: frozen": Summary(50.0, 55.0, 45.0, 60.0, 3),
        "stock: `iscsistart --version`": Summary(5.0, 6.0, 4.0, 7.0, 3),
    }
    lines = frozen.startup_report(results).splitlines()
    assert lines[2].endswith("10.00x")
    assert not lines[3].endswith("x")


def test_startup_report_gives_each_median_against_the_floor() -> None:
    results = {
        "ours: frozen discover": Summary(30.0, 33.0, 28.0, 40.0, 3),
        frozen.FLOOR: Summary(10.0, 11.0, 9.0, 12.0, 3),
        "stock: `iscsistart --version`": Summary(5.0, 6.0, 4.0, 7.0, 3),
    }
    rows = [line.split() for line in frozen.startup_report(results).splitlines()[2:5]]
    assert rows[0][-2:] == ["3.00x", "6.00x"]  # ours: 3x the floor, 6x iscsistart
    assert rows[1][-1] == "2.00x" and "1.00x" not in rows[1]  # the floor is not compared with itself
    assert rows[2][-1] == "0.50x"  # iscsistart against the floor; no ratio with itself


def test_discover_rows_only_with_a_portal() -> None:
    assert not any("discover" in name for name in frozen.commands(Path("/t")))
    cmds = frozen.commands(Path("/t"), "127.0.0.1:3260")
    argv, expect = cmds["ours: frozen `pyiscsi discover` (chroot, local tgtd)"]
    assert argv[:3] == ["chroot", "/t", "/usr/lib/pyiscsi/bin/python3"]
    assert argv[-4:] == ["discover", "127.0.0.1:3260", "--initiator", frozen.DISCOVER_INITIATOR]
    assert expect == frozen.DISCOVER_TARGET
    assert frozen.FLOOR in cmds


def test_commands_run_the_frozen_interpreter_in_a_chroot_of_the_tree() -> None:
    cmds = frozen.commands(Path("/t"))
    chrooted = cmds["ours: frozen `pyiscsi --version` (chroot, as in the initramfs)"][0]
    assert chrooted[:3] == ["chroot", "/t", "/usr/lib/pyiscsi/bin/python3"]
    assert chrooted[-3:] == ["-c", "from boot.cli import entry; entry()", "--version"]
    assert cmds["ours: frozen `python3 -m boot --version` (chroot)"][0][-3:] == ["-m", "boot", "--version"]
    assert cmds["ours: frozen `pyiscsi --version` (tree, no chroot)"][0][0] == "/t/usr/lib/pyiscsi/bin/python3"
    assert any(argv[0] == "iscsistart" for argv, _ in cmds.values())


def test_bytecode_packages_sum_by_top_level_package() -> None:
    members = [("boot/__init__.pyc", 10), ("boot/cli.pyc", 5), ("typing.pyc", 7), ("pyroute2/", 0),
               ("pyroute2/netlink/__init__.pyc", 3)]  # fmt: skip
    parts = {part.name: part for part in frozen.bytecode_packages(members)}
    assert {name: (p.kind, p.modules, p.size) for name, p in parts.items()} == {
        "boot": ("bytecode", 2, 15),
        "typing": ("bytecode", 1, 7),
        "pyroute2": ("bytecode", 1, 3),
    }


def test_tree_parts_and_report(tmp_path: Path) -> None:
    prefix = tmp_path / "usr/lib/pyiscsi"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib/python3.11/lib-dynload").mkdir(parents=True)
    (tmp_path / "lib").mkdir()
    (prefix / "bin/python3").write_bytes(b"p" * 4000)
    (prefix / "lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so").write_bytes(b"s" * 300)
    (tmp_path / "lib/libcrypto.so.3").write_bytes(b"c" * 2000)
    (tmp_path / "lib/libz.so.1").symlink_to("libcrypto.so.3")  # a link is not counted twice
    bytecode = prefix / "lib/python3.11"
    (bytecode / "boot").mkdir()
    (bytecode / "boot/cli.pyc").write_bytes(b"x" * 100)
    (bytecode / "enum.pyc").write_bytes(b"y" * 50)
    parts = frozen.tree_parts(tmp_path, bytecode)
    assert [(p.name, p.kind) for p in parts] == [
        ("python3", "interpreter"),
        ("libcrypto.so.3", "library"),
        ("_ssl", "extension"),
        ("boot", "bytecode"),
        ("enum", "bytecode"),
    ]
    lines = frozen.parts_report(parts, stock_bytes=6450, top=2).splitlines()
    assert lines[2].split()[0] == "python3" and lines[2].split()[-1] == "0.62x"
    assert lines[4].split()[:2] == ["(3", "more)"] and lines[4].split()[2] == "2"  # the two .pyc files
    assert lines[-1].split()[:2] == ["total", "2"] and lines[-1].split()[-2:] == ["100.0", "1.00x"]
