"""initiator.kernel's sysfs helpers (the netlink driver itself needs a kernel: see the VM tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from initiator.kernel import connection_dir, scan_host, session_dir


def test_scan_writes_wildcards(tmp_path: Path) -> None:
    scan = tmp_path / "class" / "scsi_host" / "host4" / "scan"
    scan.parent.mkdir(parents=True)
    scan_host(4, tmp_path)
    assert scan.read_text() == "- - -"


def test_scan_of_a_missing_host_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        scan_host(9, tmp_path)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (session_dir(3, Path("/s")), "/s/class/iscsi_session/session3"),
        (connection_dir(3, 0, Path("/s")), "/s/class/iscsi_connection/connection3:0"),
        (session_dir(12), "/sys/class/iscsi_session/session12"),
    ],
)
def test_sysfs_directories(path: Path, expected: str) -> None:
    assert path.as_posix() == expected
