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


def test_startup_report_compares_with_iscsistart() -> None:
    results = {
        "ours: frozen": Summary(50.0, 55.0, 45.0, 60.0, 3),
        "stock: `iscsistart --version`": Summary(5.0, 6.0, 4.0, 7.0, 3),
    }
    lines = frozen.startup_report(results).splitlines()
    assert lines[2].endswith("10.00x")
    assert not lines[3].endswith("x")


def test_commands_run_the_frozen_interpreter_in_a_chroot_of_the_tree() -> None:
    cmds = frozen.commands(Path("/t"))
    chrooted = cmds["ours: frozen `pyiscsi --version` (chroot, as in the initramfs)"][0]
    assert chrooted[:3] == ["chroot", "/t", "/usr/lib/pyiscsi/bin/python3"] and chrooted[-3:] == [
        "-m",
        "boot",
        "--version",
    ]
    assert cmds["ours: frozen `pyiscsi --version` (tree, no chroot)"][0][0] == "/t/usr/lib/pyiscsi/bin/python3"
    assert any(argv[0] == "iscsistart" for argv, _ in cmds.values())
