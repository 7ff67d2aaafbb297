"""boot.freeze.build: bad options are named before anything is written, and a tree that cannot boot is an error
of the build itself (dracut runs no separate verify)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from boot import freeze
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import fake_pyroute2, netcode_options, options


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"extras": ("nonesuch_module",)}, "extra"),
        ({"packages": ("boot.nonesuch",)}, "package"),
        ({"interpreter": Path("/nonexistent/python3")}, "interpreter"),
        ({"interpreter": Path("/bin/true")}, "interpreter"),  # runs, but is no Python of our bytecode's version
        ({"excludes": ("initiator",)}, "entry"),
    ],
)
def test_bad_options_are_named(tmp_path: Path, change: dict[str, object], field: str) -> None:
    with pytest.raises(BadInputError) as caught:
        freeze.build(options(tmp_path, copy_libraries=False, **change))
    assert caught.value.field == field


def test_the_fake_pyroute2_has_iproute_on_the_build_machine(tmp_path: Path) -> None:
    """The trap: where the build runs, the name is there (its distribution metadata is on sys.path)."""
    fake = fake_pyroute2(tmp_path / "site")
    code = "from pyroute2 import IPRoute; import pyroute2; print(IPRoute.__module__, pyroute2.__file__)"
    result = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(fake)!r}); {code}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout.split()) == (0, ["pyroute2.iproute", str(fake / "pyroute2/__init__.py")])


def test_a_name_the_tree_lacks_fails_the_build_naming_it(tmp_path: Path) -> None:
    """pyroute2 0.7.2's way: every module is carried, the name is not made without entry-point metadata."""
    site = fake_pyroute2(tmp_path / "site")
    with pytest.raises(BadInputError) as caught:
        freeze.build(netcode_options(tmp_path / "root", site))
    message = str(caught.value)
    assert (caught.value.field, caught.value.value) == ("frozen tree", "from pyroute2 import IPRoute")
    expected = "frozen tree: netcode runs it at boot; in the tree it fails: ImportError: cannot import name 'IPRoute'"
    assert message.startswith(f"{expected} from 'pyroute2'") and "\n" not in message


def test_a_module_the_tree_lacks_fails_the_build_naming_it(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        freeze.build(options(tmp_path, excludes=(*freeze.DEFAULT_EXCLUDES, "argparse"), copy_libraries=False))
    assert (caught.value.field, caught.value.value) == ("frozen tree", "import argparse")  # not boot.cli's importers
    assert str(caught.value).startswith(
        "frozen tree: boot.cli runs it at boot; in the tree it fails: ModuleNotFoundError: No module named 'argparse'"
    )


def test_check_imports_off_writes_the_tree_anyway(tmp_path: Path) -> None:
    site = fake_pyroute2(tmp_path / "site")
    built = freeze.build(netcode_options(tmp_path / "root", site, check_imports=False))
    assert (built.bytecode_dir / "netcode.pyc").is_file()
    assert built.imports == (freeze.RuntimeImport("pyroute2", "IPRoute", "netcode"),)
    with pytest.raises(BadInputError) as caught:
        freeze.check_imports(built)
    assert caught.value.value == "from pyroute2 import IPRoute"


def test_a_tree_whose_imports_all_work_builds(tmp_path: Path) -> None:
    site = fake_pyroute2(tmp_path / "site")
    (site / "pyroute2" / "__init__.py").write_text("from pyroute2.iproute import IPRoute\n")  # as 0.9 does
    built = freeze.build(netcode_options(tmp_path / "root", site))
    assert "pyroute2/iproute" in built.modules
