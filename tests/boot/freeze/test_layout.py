"""boot.freeze.layout: the tree runs on its own from its private prefix, through the wrapper too."""

from __future__ import annotations

import shutil
import subprocess
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
    assert lines[-1] == f"exec {prefix}/bin/python3 -s -P -S -B -c '{freeze.WRAPPER_CODE}' \"$@\""


def _preamble(
    variables: tuple[str, ...], environment: dict[str, str], shell: list[str], uuid_source: str | None = None
) -> dict[str, str]:
    """The PYTHON... variables the interpreter would get: the wrapper's lines but its exec, run by `shell`
    (reading its seed from `uuid_source` instead of the kernel's, when given)."""
    script = freeze.wrapper_script(PurePosixPath("/x"), variables)
    if uuid_source is not None:
        script = script.replace(freeze.layout.UUID_SOURCE, uuid_source)
    done = subprocess.run(
        [*shell, "-c", "\n".join([*script.splitlines()[:-1], "env"])],
        env=environment,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    assert done.stderr == ""
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if line.startswith("PYTHON"))


@pytest.mark.parametrize("shell", [["dash"], ["busybox", "sh"]], ids=["dash", "busybox"])
def test_wrapper_keeps_only_a_fresh_hash_seed_from_the_environment(shell: list[str]) -> None:
    if not shutil.which(shell[0]):
        pytest.skip(f"{shell[0]} is not installed")  # tests/conftest.py turns this into a failure under CI=true
    hostile = {"PATH": "/usr/bin:/bin", "PYTHONPATH": "/evil", "PYTHONINSPECT": "1", "PYTHONHASHSEED": "0"}
    seeds = set()
    for _ in range(5):
        seen = _preamble(("PYTHONINSPECT", "PYTHONPATH"), hostile, shell)
        assert set(seen) == {"PYTHONHASHSEED"}  # the user's PYTHONPATH and PYTHONINSPECT are gone
        assert 0 <= int(seen["PYTHONHASHSEED"]) <= 4294967295  # the interpreter's range
        seeds.add(seen["PYTHONHASHSEED"])
    assert len(seeds) == 5  # a new seed per start, not the user's 0


def test_wrapper_without_a_uuid_source_leaves_the_seed_to_python(tmp_path: Path) -> None:
    environment = {"PYTHONHASHSEED": "7", "PATH": "/usr/bin:/bin"}
    assert _preamble(("PYTHONPATH",), environment, ["sh"], uuid_source=str(tmp_path / "none")) == {}


def test_interpreter_variables_are_the_names_in_its_binary_but_the_seed(tmp_path: Path) -> None:
    binary = tmp_path / "python3"
    binary.write_bytes(b"\x7fELF\0PYTHONPATH\0PYTHONHASHSEED\0xxPYTHONFOO_9\0python\0")
    found = freeze.interpreter_variables(binary)
    assert {"PYTHONPATH", "PYTHONFOO_9", *freeze.layout.STDLIB_VARIABLES} == set(found)
    host = freeze.interpreter_variables(freeze.host_interpreter())
    assert {"PYTHONWARNINGS", "PYTHONSAFEPATH", "PYTHONHOME", "PYTHONSTARTUP"} <= set(host)
    assert "PYTHONHASHSEED" not in host and list(host) == sorted(host)


def test_tree_paths_follow_the_prefix(tmp_path: Path) -> None:
    built = freeze.FrozenTree(tmp_path, PurePosixPath("/opt/x"), (), (), (), (), (), ())
    assert built.interpreter == PurePosixPath("/opt/x/bin/python3")
    assert built.bytecode_dir == tmp_path / "opt/x/lib" / f"python{freeze.PYVER}"
