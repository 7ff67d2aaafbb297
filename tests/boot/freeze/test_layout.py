"""boot.freeze.layout: the tree runs on its own from its private prefix, through the wrapper too."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from boot import freeze
from initiator import __version__
from tests.boot.freeze.frozen import ROOT_ONLY, chroot, python


@ROOT_ONLY
def test_version_runs_in_a_chroot(tree: freeze.FrozenTree) -> None:
    result = python(tree, "-m", "boot", "--version")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"pyiscsi {__version__}", "")


@ROOT_ONLY
@pytest.mark.parametrize(
    ("argv", "status", "out", "err"),
    [
        (["--version"], 0, f"pyiscsi {__version__}", ""),
        (["--version", "x"], 0, f"pyiscsi {__version__}", ""),  # argparse's version action ends the parse
        (["nosuch"], 1, "", "pyiscsi: argument COMMAND: invalid choice: 'nosuch'"),
    ],
)
def test_wrapper_code_runs_the_cli_like_dash_m(tree: freeze.FrozenTree, argv, status, out, err) -> None:
    for how in (["-c", freeze.WRAPPER_CODE], ["-m", "boot"]):
        result = python(tree, *how, *argv)
        assert (result.returncode, result.stdout.strip()) == (status, out)
        assert result.stderr.startswith(err)


@ROOT_ONLY
def test_wrapper_execs_the_frozen_interpreter(tree: freeze.FrozenTree) -> None:
    freeze.install_host_file("/bin/sh", tree.root)  # an initramfs brings a shell; lend the host's to the bare tree
    for library in freeze.shared_libraries(Path("/bin/sh")):
        freeze.install_host_file(library, tree.root)
    result = chroot(tree, str(freeze.WRAPPER), "--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"pyiscsi {__version__}")


@ROOT_ONLY
def test_search_path_is_inside_the_prefix_with_no_warning(tree: freeze.FrozenTree) -> None:
    result = python(tree, "-c", "import sys; print(sys.prefix, sys.exec_prefix); print(*sys.path, sep='\\n')")
    assert result.stderr == ""  # getpath found prefix and exec_prefix: no "Could not find platform ..." line
    prefix, *path = result.stdout.split("\n")
    assert prefix == f"{freeze.PREFIX} {freeze.PREFIX}"
    zip_entry = f"lib/python{freeze.PYVER.replace('.', '')}.zip"  # getpath's; the tree has none: nothing to read
    assert not (tree.root / freeze.rel(freeze.PREFIX) / zip_entry).exists()
    assert [p for p in path if p] == [
        f"{freeze.PREFIX}/{zip_entry}",
        f"{freeze.PREFIX}/lib/python{freeze.PYVER}",
        f"{freeze.PREFIX}/lib/python{freeze.PYVER}/lib-dynload",
    ]


@pytest.mark.parametrize(
    ("path", "relative"),
    [("/usr/lib/pyiscsi", "usr/lib/pyiscsi"), ("/", ""), ("/usr/sbin/pyiscsi", "usr/sbin/pyiscsi")],
)
def test_rel_is_the_path_under_the_root(path: str, relative: str) -> None:
    assert freeze.rel(PurePosixPath(path)) == relative == freeze._rel(PurePosixPath(path))


@pytest.mark.parametrize("prefix", ["/usr/lib/pyiscsi", "/opt/p y"])
def test_wrapper_runs_the_prefix_interpreter_isolated(prefix: str) -> None:
    lines = freeze.wrapper_script(PurePosixPath(prefix)).splitlines()
    assert lines[0] == "#!/bin/sh"
    assert lines[-1] == f"exec {prefix}/bin/python3 -I -S -B -c '{freeze.WRAPPER_CODE}' \"$@\""


def test_tree_paths_follow_the_prefix(tmp_path: Path) -> None:
    built = freeze.FrozenTree(tmp_path, PurePosixPath("/opt/x"), (), (), (), (), (), ())
    assert built.interpreter == PurePosixPath("/opt/x/bin/python3")
    assert built.bytecode_dir == tmp_path / "opt/x/lib" / f"python{freeze.PYVER}"
