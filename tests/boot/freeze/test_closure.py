"""boot.freeze.closure: the entries' closure, the modules imported by name, and nothing the boot never runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from boot import freeze
from boot.freeze.closure import excluded
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import ROOT_ONLY, options, python, zip_names


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


@ROOT_ONLY
def test_pyroute2_and_pyudev_work_frozen(tree: freeze.FrozenTree) -> None:
    code = (  # IPRoute from the module the extra carries: pyroute2 0.7.2 makes the top-level name only from metadata
        "from pyroute2.iproute import IPRoute\n"
        "with IPRoute() as ipr: names = [l.get_attr('IFLA_IFNAME') for l in ipr.get_links()]\n"
        "import pyudev; ctx = pyudev.Context()\n"
        "print('lo' in names, ctx.sys_path)"
    )
    result = python(tree, "-c", code)
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, "True /sys", "")


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
    ("name", "excludes", "expected"),
    [
        ("test", ("test",), True),
        ("test.support", ("test",), True),
        ("testing", ("test",), False),  # a prefix of the name, not a package of it
        ("pyroute2.fixtures.x", ("pyroute2.fixtures",), True),
        ("pyroute2", ("pyroute2.fixtures",), False),
        ("anything", (), False),
    ],
)
def test_excludes_cover_a_package_and_its_modules(name: str, excludes: tuple[str, ...], expected: bool) -> None:
    assert excluded(name, excludes) is expected


def test_search_path_starts_with_our_source_root() -> None:
    root = Path(freeze.__file__).resolve().parents[2]
    path = freeze.default_search_path()
    assert path[0] == root and (root / "boot" / "cli.py").is_file()
    assert len({p.resolve() for p in path}) == len(path)  # no directory twice


def test_every_subcommand_is_an_entry_of_the_image() -> None:
    """A subcommand typed in the emergency shell (`discover`, `probe`) runs from the image, never an internal error
    (70) for a module the freeze left out: each module of the CLI's registry is an entry of the default build."""
    from boot.cli import COMMANDS
    from boot.freeze.closure import DEFAULT_ENTRIES

    assert {module for module, _ in COMMANDS.values()} | {"boot.cli"} == set(DEFAULT_ENTRIES)
