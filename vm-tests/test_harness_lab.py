"""Lab mode's host side: the command script and the VM it asks for (the real run is in test_boot_lab.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness import lab
from harness.kernel import Kernel
from harness.paths import REPO


@pytest.mark.parametrize(
    "argv",
    [
        ["true"],
        ["python3", "-c", "import sys; print(sys.argv)", "a b", "it's", "$HOME", "`id`"],
        ["sh", "-c", 'exit "$0"', "7"],
    ],
)
def test_command_script_runs_the_argv_unchanged(tmp_path, argv):
    script = lab.command_script(["printf", "%s\\n", *argv], tmp_path, {"X": "1 2"})
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10, check=False)
    assert proc.stdout.splitlines() == argv


def test_command_script_sets_cwd_env_and_passes_the_status(tmp_path):
    script = lab.command_script(["sh", "-c", 'pwd; echo "$X|$PYTHONPATH"; exit 7'], tmp_path, {"X": "a b"})
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=10, check=False)
    assert proc.returncode == 7
    assert proc.stdout.splitlines() == [str(tmp_path), f"a b|{REPO}"]


def test_lab_spec_shares_host_root_read_only_and_the_run_dir_writable(tmp_path):
    kern = Kernel(Path("/k"), "6.1.0-50-amd64")
    spec = lab.lab_spec(kern, Path("/i.img"), tmp_path, acpi_tables=[Path("/t.bin")], append="x=1")
    assert spec.kernel == Path("/k/boot/vmlinuz-6.1.0-50-amd64")
    assert spec.append.endswith("x=1") and "console=ttyS0" in spec.append
    assert [(v.tag, v.path, v.readonly) for v in spec.virtfs] == [
        ("hostroot", Path("/"), True),
        ("labrun", tmp_path, False),
    ]
    assert spec.acpi_tables == (Path("/t.bin"),)


def test_lab_init_reports_the_exit_status_and_powers_off():
    assert "mark exit $status" in lab.LAB_INIT
    assert "poweroff -f" in lab.LAB_INIT


def test_share_table_names_each_share_by_tag():
    assert lab.share_table([Path("/a"), Path("/b/c")]) == "share0 /a\nshare1 /b/c\n"
    assert lab.share_table([]) == ""


@pytest.mark.parametrize("path", [Path("rel"), Path("/with space")])
def test_share_table_refuses_paths_the_guest_cannot_read_back(path):
    with pytest.raises(ValueError, match="absolute path without whitespace"):
        lab.share_table([path])


def test_lab_spec_adds_writable_shares_after_the_fixed_ones(tmp_path):
    spec = lab.lab_spec(Kernel(Path("/k"), "r"), Path("/i"), tmp_path, shares=[Path("/out")])
    assert [(v.tag, v.path, v.readonly) for v in spec.virtfs][2:] == [("share0", Path("/out"), False)]
