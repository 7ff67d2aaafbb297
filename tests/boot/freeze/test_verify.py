"""boot.freeze.verify: the tree is run on its own (a chroot when root) and any module or name it cannot import,
or loads from outside its prefix, is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from boot import freeze
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import ROOT_ONLY, fake_pyroute2, netcode_options, options


@ROOT_ONLY
def test_verify_imports_entries_and_extras_from_inside_the_tree(tree: freeze.FrozenTree) -> None:
    checked = freeze.verify(tree, runs=1)
    assert checked.loaded > 100  # pyroute2 and pyudev (probed extras) came along
    assert 0 < checked.startup_version_s < 5
    data = freeze.report(tree, checked)
    assert data["modules"] == len(tree.modules) and data["bytecode_bytes"] > 0
    assert data["tree_bytes"] > data["bytecode_bytes"]


def test_verify_runs_without_a_chroot_too(tree: freeze.FrozenTree) -> None:
    assert freeze.verify(tree, chroot=False, runs=1).loaded > 100


@ROOT_ONLY
def test_a_module_missing_from_the_closure_fails_verification(tmp_path: Path) -> None:
    broken = freeze.build(options(tmp_path, excludes=(*freeze.DEFAULT_EXCLUDES, "argparse"), check_imports=False))
    with pytest.raises(BadInputError) as caught:
        freeze.verify(broken, runs=1)
    message = str(caught.value)
    assert "No module named 'argparse'" in message and "--extra" in message
    # named: the module that did not import, or our statement that imports it
    assert caught.value.value in (*broken.entries, *freeze.DEFAULT_EXTRAS, "import argparse")


@ROOT_ONLY
def test_a_tree_that_cannot_run_dash_m_boot_fails_verification(tmp_path: Path) -> None:
    """`python3 -m boot` is how the agent starts when a fork is not safe: every import working is not enough."""
    extras = tuple(name for name in freeze.DEFAULT_EXTRAS if name != "boot.__main__")
    broken = freeze.build(options(tmp_path, excludes=(*freeze.DEFAULT_EXCLUDES, "boot.__main__"), extras=extras))
    with pytest.raises(BadInputError) as caught:
        freeze.verify(broken, runs=1)
    assert caught.value.value == "python3 -m boot --version"
    assert "boot.__main__" in str(caught.value)


@pytest.mark.parametrize("use_chroot", [pytest.param(True, marks=ROOT_ONLY), False])
def test_a_name_missing_from_a_carried_module_fails_verification(tmp_path: Path, use_chroot: bool) -> None:
    """The real-system failure: `ImportError: cannot import name 'IPRoute' from 'pyroute2'` at boot, though
    pyroute2 and all its modules were in the tree; verify names the statement before an image is made."""
    site = fake_pyroute2(tmp_path / "site")
    built = freeze.build(netcode_options(tmp_path / "root", site, check_imports=False, copy_libraries=use_chroot))
    assert "pyroute2/iproute" in built.modules  # carried: the finder did its part
    with pytest.raises(BadInputError) as caught:
        freeze.verify(built, chroot=use_chroot, runs=1)
    where = "chroot" if use_chroot else "tree"
    assert caught.value.value == "from pyroute2 import IPRoute"
    assert f"in the {where} it fails: ImportError: cannot import name 'IPRoute' from 'pyroute2'" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("use_chroot", [pytest.param(True, marks=ROOT_ONLY), False])
def test_a_module_loaded_from_outside_the_tree_is_named(tmp_path: Path, use_chroot: bool) -> None:
    sources = tmp_path / "src"
    sources.mkdir()
    outside = tmp_path / "root" / "elsewhere"  # inside the chroot, outside the prefix
    outside.mkdir(parents=True)
    (outside / "stray.py").write_text("")
    where = "/elsewhere" if use_chroot else str(outside)
    (sources / "sneaky.py").write_text(f"import sys\nsys.path.append({where!r})\nimport stray\n")
    built = freeze.build(
        options(tmp_path / "root", entries=("boot.cli", "sneaky"), search_path=(sources, *freeze.default_search_path()))
    )
    with pytest.raises(BadInputError) as caught:
        freeze.verify(built, chroot=use_chroot, runs=1)
    assert caught.value.value == "stray" and "was loaded from outside" in str(caught.value)


def test_verify_of_a_tree_with_no_interpreter_names_the_tree(tmp_path: Path) -> None:
    built = freeze.build(options(tmp_path / "root", copy_libraries=False, check_imports=False))
    (built.root / freeze._rel(built.interpreter)).unlink()
    with pytest.raises(BadInputError) as caught:
        freeze.verify(built, chroot=False, runs=1)
    assert caught.value.field == "frozen tree" and "does not run" in str(caught.value)
