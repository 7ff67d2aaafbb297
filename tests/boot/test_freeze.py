"""boot.freeze: build real frozen trees from this checkout and run them in a chroot."""

from __future__ import annotations

import dataclasses
import marshal
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from boot import freeze
from initiator import __version__
from initiator.errors import BadInputError

ENTRIES = ("boot.cli", "initiator.iscsi_if", "initiator.kernel")
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root (CI runs the suite as root)")


def options(out: Path, **changes: object) -> freeze.FreezeOptions:
    return dataclasses.replace(freeze.FreezeOptions(out=out, entries=ENTRIES), **changes)


def chroot(tree: freeze.FrozenTree, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(tree.root), *argv], capture_output=True, text=True, timeout=60, check=False)


def python(tree: freeze.FrozenTree, *args: str) -> subprocess.CompletedProcess[str]:
    return chroot(tree, str(tree.interpreter), "-I", "-S", "-B", *args)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> freeze.FrozenTree:
    built = freeze.build(options(tmp_path_factory.mktemp("frozen") / "root"))
    if os.geteuid() == 0:  # what an initramfs always has: subprocess (ctypes.util -> ldconfig) opens /dev/null
        (built.root / "dev").mkdir()
        os.mknod(built.root / "dev" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return built


def zip_names(tree: freeze.FrozenTree) -> list[str]:
    with zipfile.ZipFile(tree.zip_path) as archive:
        return archive.namelist()


# --- the tree runs on its own -------------------------------------------------------------------------------------


@ROOT_ONLY
def test_version_runs_in_a_chroot(tree: freeze.FrozenTree) -> None:
    result = python(tree, "-m", "boot", "--version")
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, f"pyiscsi {__version__}", "")


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
    assert [p for p in path if p] == [
        f"{freeze.PREFIX}/lib/{freeze.ZIP_NAME}",
        f"{freeze.PREFIX}/lib/python{freeze.PYVER}",
        f"{freeze.PREFIX}/lib/python{freeze.PYVER}/lib-dynload",
    ]


@ROOT_ONLY
def test_verify_imports_entries_and_extras_from_inside_the_tree(tree: freeze.FrozenTree) -> None:
    checked = freeze.verify(tree, runs=1)
    assert checked.loaded > 100  # pyroute2 and pyudev (probed extras) came along
    assert 0 < checked.startup_version_s < 5
    data = freeze.report(tree, checked)
    assert data["modules"] == len(tree.modules) and data["zip_bytes"] > 0
    assert data["tree_bytes"] > data["zip_bytes"]


@ROOT_ONLY
def test_pyroute2_and_pyudev_work_frozen(tree: freeze.FrozenTree) -> None:
    code = (
        "from pyroute2 import IPRoute\n"
        "with IPRoute() as ipr: names = [l.get_attr('IFLA_IFNAME') for l in ipr.get_links()]\n"
        "import pyudev; ctx = pyudev.Context()\n"
        "print('lo' in names, ctx.sys_path)"
    )
    result = python(tree, "-c", code)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "True /sys", "")


# --- the archive --------------------------------------------------------------------------------------------------


def test_two_builds_give_byte_identical_zips(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    again = freeze.build(options(tmp_path / "again", copy_libraries=False))
    assert again.zip_path.read_bytes() == tree.zip_path.read_bytes()


def test_a_build_in_another_process_gives_the_same_zip(tree: freeze.FrozenTree, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "boot.freeze", "--out", str(tmp_path), "--no-libs"]
    result = subprocess.run(
        argv + [f"--entry={name}" for name in ENTRIES], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / freeze._rel(freeze.PREFIX / "lib" / freeze.ZIP_NAME)).read_bytes() == tree.zip_path.read_bytes()


def test_entries_are_sorted_dated_1980_with_fixed_modes(tree: freeze.FrozenTree) -> None:
    with zipfile.ZipFile(tree.zip_path) as archive:
        infos = archive.infolist()
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    assert {(i.date_time, i.external_attr >> 16) for i in infos} == {(freeze.FIXED_DATE, 0o100644)}
    assert all(i.filename.endswith(".pyc") for i in infos)


@pytest.mark.parametrize("member", ["boot/cli.pyc", "pyroute2/iproute/linux.pyc", "json/__init__.pyc"])
def test_pycs_are_unchecked_hash_based_with_relative_filenames(tree: freeze.FrozenTree, member: str) -> None:
    with zipfile.ZipFile(tree.zip_path) as archive:
        data = archive.read(member)
    assert int.from_bytes(data[4:8], "little") == 0b01  # hash-based, check_source off
    code = marshal.loads(data[16:])
    assert code.co_filename == member[:-1]  # "boot/cli.py": nothing of the build machine's paths


@pytest.mark.parametrize(
    "package", ["test", "idlelib", "tkinter", "ensurepip", "pydoc_data", "lib2to3", "distutils", "pyroute2/fixtures"]
)
def test_excluded_packages_are_absent(tree: freeze.FrozenTree, package: str) -> None:
    assert [n for n in zip_names(tree) if n == f"{package}.pyc" or n.startswith(f"{package}/")] == []


@pytest.mark.parametrize(
    "member",
    [
        "boot/__main__.pyc",  # python3 -m boot
        "encodings/utf_8.pyc",  # interpreter start-up
        "pyroute2/netlink/rtnl/ifinfmsg/plugins/vlan.pyc",  # found by listing the package at run time
        "pyudev/core.pyc",
        "encodings/idna.pyc",  # socket encodes every host name with it, from C: no import statement to see
    ],
)
def test_dynamic_imports_are_carried(tree: freeze.FrozenTree, member: str) -> None:
    assert member in zip_names(tree)


@ROOT_ONLY
def test_socket_connects_by_host_name_frozen(tree: freeze.FrozenTree) -> None:
    """The first boot died with `LookupError: unknown encoding: idna` in socket.create_connection."""
    code = "import socket; print(socket.getaddrinfo('127.0.0.1', 3260, type=socket.SOCK_STREAM)[0][4])"
    result = python(tree, "-c", code)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert "127.0.0.1" in result.stdout


def test_extension_modules_and_their_libraries(tree: freeze.FrozenTree) -> None:
    dynload = tree.root / freeze._rel(freeze.PREFIX / "lib" / f"python{freeze.PYVER}" / "lib-dynload")
    carried = sorted(p.name.split(".")[0] for p in dynload.iterdir())
    assert carried == list(tree.extensions)
    assert "_ctypes" in carried and not [n for n in carried if n.startswith("_test")]
    assert any(Path(lib).name.startswith("libffi.so") for lib in tree.libraries)  # _ctypes needs it
    assert any(Path(lib).name == "libudev.so.1" for lib in tree.libraries)  # pyudev dlopens it
    for library in tree.libraries:
        assert os.path.lexists(tree.root / library.lstrip("/")), library


@ROOT_ONLY
def test_libraries_resolve_inside_the_tree(tree: freeze.FrozenTree) -> None:
    code = "import os, sys; print([p for p in sys.argv[1:] if not os.path.isfile(p)])"
    result = python(tree, "-c", code, *tree.libraries)
    assert (result.returncode, result.stdout.strip()) == (0, "[]")


def test_dlopened_library_comes_only_with_the_module_that_opens_it(tmp_path: Path) -> None:
    extras = tuple(name for name in freeze.DEFAULT_EXTRAS if name not in ("pyudev", "ctypes.util"))
    built = freeze.build(options(tmp_path, extras=extras, ldconfig=False))
    assert "pyudev" not in {m.split("/")[0] for m in built.modules}
    assert [lib for lib in built.libraries if "libudev" in lib] == []


def test_host_files_never_land_outside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "usr/lib").mkdir(parents=True)
    (root / "lib").symlink_to("/usr/lib")  # absolute, as a staging tree may have it: means root/usr/lib here
    libc = next(lib for lib in freeze.shared_libraries(freeze.host_interpreter()) if "/libc.so" in lib)
    before = Path(libc).stat().st_mtime_ns
    freeze.install_host_file(libc, root)
    expected = root / "usr/lib" / libc.split("/lib/", 1)[1] if libc.startswith("/lib/") else root / libc.lstrip("/")
    assert expected.is_file() and not expected.is_symlink()
    assert Path(libc).stat().st_mtime_ns == before  # the host's own file was not written through the link


# --- failures name what is wrong ----------------------------------------------------------------------------------


@ROOT_ONLY
def test_a_module_missing_from_the_closure_fails_verification(tmp_path: Path) -> None:
    broken = freeze.build(options(tmp_path, excludes=(*freeze.DEFAULT_EXCLUDES, "argparse")))
    with pytest.raises(BadInputError) as caught:
        freeze.verify(broken, runs=1)
    message = str(caught.value)
    assert "boot.cli" in message and "No module named 'argparse'" in message and "--extra" in message


def test_verify_runs_without_a_chroot_too(tree: freeze.FrozenTree) -> None:
    assert freeze.verify(tree, chroot=False, runs=1).loaded > 100


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
        options(
            tmp_path / "root", entries=("boot.cli", "sneaky"), search_path=(sources, *freeze.default_search_path())
        )
    )
    with pytest.raises(BadInputError) as caught:
        freeze.verify(built, chroot=use_chroot, runs=1)
    assert caught.value.value == "stray" and "was loaded from outside" in str(caught.value)


def test_a_missing_entry_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        freeze.build(options(tmp_path, entries=("boot.cli", "boot.commands.nonesuch")))
    assert caught.value.field == "entry" and caught.value.value == "boot.commands.nonesuch"
    assert not (tmp_path / freeze._rel(freeze.PREFIX)).exists()  # nothing half-written


def test_skip_missing_reports_the_entry_and_builds_the_rest(tmp_path: Path) -> None:
    built = freeze.build(
        options(tmp_path, entries=("boot.cli", "boot.nonesuch"), skip_missing=True, copy_libraries=False)
    )
    assert (built.entries, built.missing_entries) == (("boot.cli",), ("boot.nonesuch",))


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


def test_command_line_exit_status_and_message_for_a_missing_entry(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "boot.freeze", "--out", str(tmp_path), "--entry", "initiator.nonesuch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "entry: no such module on the search path" in result.stderr and "initiator.nonesuch" in result.stderr
