"""boot.freeze.interpreter: the tree carries the real binary behind this venv, or one that runs our bytecode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from boot import freeze
from boot.freeze.interpreter import check_magic
from initiator.errors import BadInputError


def test_the_default_is_the_binary_behind_the_venv() -> None:
    found = freeze.host_interpreter()
    assert found.is_file() and not found.is_symlink()
    assert found.name.startswith("python3")
    assert found == Path(getattr(sys, "_base_executable", sys.executable)).resolve()


def test_the_host_interpreter_passes_without_running() -> None:
    check_magic(freeze.host_interpreter())


@pytest.mark.parametrize(
    ("interpreter", "reason"),
    [
        (Path("/nonexistent/python3"), "does not run"),
        (Path("/bin/true"), f"is not the Python {freeze.PYVER}"),  # runs, but prints no magic number
    ],
)
def test_an_interpreter_of_other_bytecode_is_named(interpreter: Path, reason: str) -> None:
    with pytest.raises(BadInputError) as caught:
        check_magic(interpreter)
    assert (caught.value.field, caught.value.value) == ("interpreter", str(interpreter))
    assert reason in caught.value.reason
