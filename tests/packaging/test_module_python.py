"""Which python3 dracut/95pyiscsi/module-setup.sh freezes pyiscsi with, and from where: a python that imports
boot.freeze by itself is used as it is (a venv: the checkout's test images); else an installed pyiscsi's private
directory goes on the path of pyiscsi_python= or /usr/bin/python3; the working directory never counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODULE = REPO / "dracut" / "95pyiscsi" / "module-setup.sh"
BASE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's python3 there cannot import pyiscsi by itself


def fake_pyiscsi(directory: Path, says: str) -> Path:
    """A boot package whose boot.freeze prints where it came from."""
    (directory / "boot").mkdir(parents=True)
    (directory / "boot" / "__init__.py").write_text("")
    (directory / "boot" / "freeze.py").write_text(f"print({says!r})\n")
    return directory


def choose(tmp_path: Path, env: dict[str, str]) -> tuple[int, str, str, str]:
    """(status of _pyiscsi_find_python, the python, its PYTHONPATH, what boot.freeze printed), run in tmp_path."""
    script = (
        f'. "{MODULE}"\n'
        "_pyiscsi_find_python; status=$?\n"
        'echo "status=$status"; echo "py=$_pyiscsi_py"; echo "path=$_pyiscsi_path"\n'
        '[ "$status" = 0 ] && echo "freeze=$(_pyiscsi_run_python -m boot.freeze)"\n'
    )
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False
    )
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    return int(values["status"]), values["py"], values["path"], values.get("freeze", "")


@pytest.fixture
def layout(tmp_path: Path) -> Path:
    """tmp_path holds a boot/ package of its own (the working directory) and an installed private directory."""
    fake_pyiscsi(tmp_path, "from the working directory")
    fake_pyiscsi(tmp_path / "private", "from the private directory")
    failing = tmp_path / "bin" / "python3"
    failing.parent.mkdir()
    failing.write_text("#!/bin/sh\nexit 1\n")
    failing.chmod(0o755)
    return tmp_path


@pytest.mark.parametrize(
    ("python", "private", "expected"),
    [
        # a venv with pyiscsi installed: itself, even with a private directory around
        ("venv", "private", (0, "venv", "", "")),
        # Debian's layout: no pyiscsi_python=, python3 on PATH cannot import it, the private directory can
        (None, "private", (0, "/usr/bin/python3", "private", "from the private directory")),
        # pyiscsi_python= that cannot import it by itself gets the private directory too
        ("/usr/bin/python3", "private", (0, "/usr/bin/python3", "private", "from the private directory")),
        # nothing installed: no python3 is found (the working directory's boot/ does not count)
        (None, "nonexistent", (1, "python3", "", "")),
        # a python3 that cannot run at all, private directory or not
        ("failing", "private", (1, "failing", "private", "")),
    ],
)
def test_the_python_and_path_the_module_freezes_with(
    layout: Path, python: str | None, private: str, expected: tuple[int, str, str, str]
) -> None:
    names = {"venv": sys.executable, "failing": str(layout / "bin" / "python3"), "private": str(layout / "private")}
    env = {"PATH": BASE_PATH, "pyiscsi_pythonpath": str(layout / private)}
    if python is not None:
        env["pyiscsi_python"] = names.get(python, python)
    status, py, path, said = choose(layout, env)
    want_status, want_py, want_path, want_said = expected
    assert (status, py, path) == (want_status, names.get(want_py, want_py), names.get(want_path, want_path))
    if python == "venv":  # the checkout's own boot.freeze (the real one) runs: it prints its usage, not the fake's
        assert "the working directory" not in said and "private" not in said
    else:
        assert said == want_said
