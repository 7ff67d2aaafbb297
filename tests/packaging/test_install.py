"""`make install DESTDIR=... PREFIX=...`, for packagers other than Debian: the same private layout as the .deb, with
every path that names the prefix (the wrapper, the dracut module's default) following PREFIX."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from initiator import __version__

REPO = Path(__file__).resolve().parents[2]


def make_install(destdir: Path, prefix: str) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "install", f"DESTDIR={destdir}", f"PREFIX={prefix}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("prefix", ["/usr", "/opt/pyiscsi"])
def test_install_lays_out_the_private_directory_under_prefix(tmp_path: Path, prefix: str) -> None:
    make_install(tmp_path, prefix)
    root = tmp_path / prefix.lstrip("/")
    private = f"{prefix}/lib/pyiscsi/python"
    wrapper = (root / "sbin/pyiscsi").read_text()
    assert f"PYTHONPATH={private}\n" in wrapper and "exec /usr/bin/python3 -s -P -m boot " in wrapper
    setup = (root / "lib/dracut/modules.d/95pyiscsi/module-setup.sh").read_text()
    assert f"\nPYISCSI_PYTHONPATH_DEFAULT={private}\n" in setup
    assert (root / "share/man/man8/pyiscsi.8").is_file()
    installed = {
        str(p.relative_to(tmp_path / private.lstrip("/"))) for p in (tmp_path / private.lstrip("/")).rglob("*")
    }
    sources = {str(p.relative_to(REPO)) for pkg in ("boot", "initiator") for p in (REPO / pkg).rglob("*.py")}
    assert {name for name in installed if name.endswith(".py")} == sources
    assert [name for name in installed if "__pycache__" in name] == []
    assert not list(tmp_path.rglob("dist-packages")) and not list(tmp_path.rglob("site-packages"))


def test_the_installed_wrapper_runs_from_its_prefix(tmp_path: Path) -> None:
    """A DESTDIR install moved to where it points: DESTDIR=/ would be a real install, so the prefix is the tmp dir."""
    prefix = str(tmp_path / "prefix")
    make_install(Path("/"), prefix)
    result = subprocess.run(
        ["sh", f"{prefix}/sbin/pyiscsi", "--version"], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"pyiscsi {__version__}"), result.stderr
