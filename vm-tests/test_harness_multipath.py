"""harness.multipath's pure parts: the guest's path counting, the phase figures, and that the variant stays apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import debroot, multipath
from harness.realboot import Guest


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("0 2097152 multipath 2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16 A 0", (2, 2)),
        ("0 2097152 multipath 2 0 0 0 1 1 A 0 2 0 8:0 A 0 8:16 F 1", (1, 2)),
        ("0 2097152 multipath 2 0 0 0 1 1 A 0 1 0 8:0 A 0", (1, 1)),
        ("0 2097152 multipath 2 0 0 0 2 1 A 0 1 0 8:0 F 3 E 0 1 0 8:16 A 0", (1, 2)),
        ("", (0, 0)),
    ],
)
def test_dm_active_paths(status, expected):
    assert multipath.dm_active_paths(status) == expected


@given(st.lists(st.booleans(), max_size=8))
def test_dm_active_paths_counts_every_path(states):
    entries = " ".join(f"8:{16 * i} {'A' if up else 'F'} {0 if up else 1}" for i, up in enumerate(states))
    status = f"0 8 multipath 2 0 0 0 1 1 A 0 {len(states)} 0 {entries}"
    assert multipath.dm_active_paths(status) == (sum(states), len(states))


def test_phase_figures_take_each_phase_its_own_marks():
    marks = [
        ("paths", {"phase": "boot", "active": "2"}),
        ("restore", {"phase": "agent", "lost": "12.5"}),
        ("recovered", {"phase": "agent", "after": "4.0"}),
        ("phase-end", {"phase": "agent", "writes": "80", "failed": "0", "maxgap": "14.20"}),
        ("restore", {"phase": "iscsid", "lost": "none"}),
        ("recovered", {"phase": "iscsid", "after": "none"}),
        ("phase-end", {"phase": "iscsid", "writes": "7", "failed": "1", "maxgap": "bad"}),
    ]
    assert multipath.phase_figures("agent", marks) == multipath.Phase("agent", 80, 0, 14.2, 12.5, 4.0)
    assert multipath.phase_figures("iscsid", marks) == multipath.Phase("iscsid", 7, 1, None, None, None)
    assert multipath.phase_figures("other", marks) == multipath.Phase("other", 0, 0, None, None, None)


def test_the_variant_stays_out_of_every_variant_and_replaces_the_check():
    """The real-root tests and benches boot every debroot.VARIANTS entry; this root is booted by test_multipath."""
    assert multipath.VARIANT.name not in debroot.VARIANTS
    files = debroot.root_files(multipath.VARIANT, "00000000-0000-4000-8000-000000000000", "# conf\n")
    assert files[debroot.TEST_SCRIPT][0] == multipath.guest_check()
    assert not re.search(r"@[A-Z_]+@", multipath.guest_check())  # every placeholder filled
    assert 'add_dracutmodules+=" multipath "' in files["etc/dracut.conf.d/50-multipath.conf"][0]
    assert "find_multipaths greedy" in files["etc/multipath.conf"][0]
    assert "UUID=00000000-0000-4000-8000-000000000000 /" in files["etc/fstab"][0]


def test_the_kernel_line_names_each_path_through_its_own_nic():
    lab = multipath.MultipathLab.__new__(multipath.MultipathLab)
    lab.root = debroot.DebRoot("multipath", debroot.CACHE, "6.1", "u-u-i-d", {})
    lab.ports = (3261, 3262)
    line = lab.cmdline(Guest("x", ipxe=False, data=False))
    assert "ip=ens2:dhcp ip=ens3:dhcp" in line
    assert "netroot=iscsi:10.0.2.2::3261:1:" in line and "netroot=iscsi:10.0.3.2::3262:1:" in line
    assert "root=UUID=u-u-i-d" in line


def test_bench_rows_have_one_column_per_run_and_a_dash_for_what_was_not_measured():
    from bench import multipath as bench_multipath

    rows = bench_multipath.rows([{"multiuser": 41.26, "paths": 2.0, "agent_io": 14.0}, {"poweroff": 5.04}])
    assert rows[0] == ["multi-user (s)", "41.3", "-"]
    assert rows[1] == ["dm paths at boot", "2", "-"]
    assert rows[2] == ["agent: longest pause in the writes (s)", "14.0", "-"]
    assert rows[-1] == ["power-off (s)", "-", "5.0"]
    assert all(len(row) == 3 for row in rows)


def test_the_readme_gives_the_dracut_configuration_the_test_root_uses() -> None:
    """README *A multipath root* is what a Debian user copies: the same lines the VM test's root is built with."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [line for line in multipath.DRACUT_MULTIPATH.splitlines() if line and not line.startswith("#")]
    assert lines and all(f"\n{line}\n" in readme for line in lines), lines
    for line in multipath.SOCKET_DROPIN.splitlines()[1:]:
        assert f"`{line}`" in readme, line
    for setting in ("find_multipaths greedy", "polling_interval 2", "no_path_retry 30"):
        assert setting in multipath.MULTIPATH_CONF and f"`{setting}`" in readme, setting
