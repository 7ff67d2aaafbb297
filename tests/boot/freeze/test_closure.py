"""boot.freeze.closure: the entries' closure, the modules imported by name, and nothing the boot never runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from boot import freeze
from boot.freeze.closure import excluded
from initiator.errors import BadInputError
from tests.boot.freeze.frozen import ROOT_ONLY, options, pyc_names, python


@pytest.mark.parametrize(
    "package", ["test", "idlelib", "tkinter", "ensurepip", "pydoc_data", "lib2to3", "distutils", "pyroute2/fixtures"]
)
def test_excluded_packages_are_absent(tree: freeze.FrozenTree, package: str) -> None:
    assert [n for n in pyc_names(tree) if n == f"{package}.pyc" or n.startswith(f"{package}/")] == []


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
    assert member in pyc_names(tree)


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


@ROOT_ONLY
def test_the_trees_pyroute2_is_the_modules_the_boot_uses_without_the_librarys_init(tree: freeze.FrozenTree) -> None:
    """Our package init: the library's version and logger, none of its public classes (NDB, sqlite3...)."""
    import pyroute2

    code = (
        "import sys\n"
        "from pyroute2.iproute.linux import IPRoute\n"
        "from pyroute2.netlink.exceptions import NetlinkError\n"
        "import pyroute2\n"
        "print(pyroute2.__version__, hasattr(pyroute2, 'NDB'), 'sqlite3' in sys.modules)"
    )
    result = python(tree, "-c", code)
    expected = f"{pyroute2.__version__} False False"  # the same version the library's own init reports
    assert (result.returncode, result.stdout.strip(), result.stderr) == (0, expected, "")


def test_the_tree_carries_no_openssl_and_no_sqlite(tree: freeze.FrozenTree) -> None:
    names = pyc_names(tree)
    assert [n for n in names if n.startswith(("sqlite3", "pyroute2/ndb/"))] == []
    assert not {"_ssl", "_sqlite3", "_hashlib"} & set(tree.extensions)
    assert [lib for lib in tree.libraries if Path(lib).name.startswith(("libssl", "libcrypto", "libsqlite3"))] == []


def test_the_tree_carries_no_distribution_metadata_mail_or_zip(tree: freeze.FrozenTree) -> None:
    """importlib.metadata brought email, csv, calendar and zipfile; nothing at boot reads metadata (the
    pyroute2 and pyudev test above runs both libraries without it)."""
    names = pyc_names(tree)
    unwanted = ("importlib/metadata/", "importlib/resources/", "importlib/readers", "email/", "zipfile", "csv")
    assert [n for n in names if n.startswith(unwanted)] == []


@ROOT_ONLY
def test_the_ssl_stand_in_lets_asyncio_import_and_refuses_tls(tree: freeze.FrozenTree) -> None:
    code = (
        "import asyncio, ssl\n"
        "for attempt in (ssl.create_default_context, ssl.SSLContext, ssl.MemoryBIO):\n"
        "    try: attempt()\n"
        "    except ssl.SSLError as exc: print(type(exc).__name__, exc)\n"
    )
    result = python(tree, "-c", code)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("SSLError TLS is not available") for line in lines)


def _fake_library(site: Path) -> Path:
    """`lib`, whose package init imports a heavy module its submodule never needs; and `netcode`, which uses
    lib.sub and a plain module `plain`."""
    files = {
        "lib/__init__.py": "import heavy\n",
        "lib/sub.py": "VALUE = 1\n",
        "heavy.py": "WEIGHT = 1\n",
        "plain.py": "import heavy\nNAME = 'library'\n",
        "netcode.py": "import lib.sub\nimport plain\n",
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    return site


@pytest.mark.parametrize(
    ("replaced", "expected_stems", "absent_stems"),
    [
        ((), {"lib/__init__", "lib/sub", "heavy", "plain"}, set()),
        (("lib",), {"lib/__init__", "lib/sub", "plain", "heavy"}, set()),  # plain still imports heavy
        (("lib", "plain"), {"lib/__init__", "lib/sub", "plain"}, {"heavy"}),
        (("plain",), {"lib/__init__", "lib/sub", "plain", "heavy"}, set()),  # lib's own init imports heavy
    ],
)
def test_a_replaced_module_is_carried_from_our_source_and_its_imports_are_not_followed(
    tmp_path: Path, replaced: tuple[str, ...], expected_stems: set[str], absent_stems: set[str]
) -> None:
    site = _fake_library(tmp_path / "site")
    ours = tmp_path / "ours"
    ours.mkdir()
    (ours / "light_init.py").write_text("LIGHT = True\n")
    (ours / "light_plain.py").write_text("NAME = 'ours'\n")
    sources = {"lib": ours / "light_init.py", "plain": ours / "light_plain.py"}
    opts = options(
        tmp_path / "root",
        entries=("netcode",),
        extras=(),
        packages=(),
        search_path=(site, *freeze.default_search_path()),
        replacements=tuple((name, sources[name]) for name in replaced),
        copy_libraries=False,
        check_imports=False,
    )
    finder, _ = freeze.find_closure(opts)
    stems = freeze.collect_sources(finder, opts.excludes)
    assert expected_stems <= set(stems) and not absent_stems & set(stems)
    for name in replaced:
        stem = "lib/__init__" if name == "lib" else name
        assert stems[stem] == sources[name]
    assert stems["lib/sub"] == site / "lib" / "sub.py"  # a replaced package's submodules are the library's


@pytest.mark.parametrize("order", [("first", "second"), ("second", "first")])
def test_excluding_one_packages_relative_import_keeps_another_packages_module_of_that_name(
    tmp_path: Path, order: tuple[str, str]
) -> None:
    """modulefinder files a failed relative import under its bare name: excluding multiprocessing.queues made it
    skip asyncio's own `.queues` too, and asyncio.queues was missing from the tree."""
    site = tmp_path / "site"
    files = {
        "first/__init__.py": "from .queues import Queue\n",
        "first/queues.py": "Queue = 1\n",
        "second/__init__.py": "from .queues import *\n",
        "second/queues.py": "LIFO = 1\n",
        "entry.py": "".join(f"import {name}\n" for name in order),
    }
    for name, text in files.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(text)
    opts = options(
        tmp_path / "root",
        entries=("entry",),
        extras=(),
        packages=(),
        excludes=("first.queues",),
        search_path=(site, *freeze.default_search_path()),
        replacements=(),
        copy_libraries=False,
        check_imports=False,
    )
    finder, _ = freeze.find_closure(opts)
    stems = set(freeze.collect_sources(finder, opts.excludes))
    assert "second/queues" in stems and "first/queues" not in stems


def test_the_tree_leaves_out_multiprocessings_process_and_ipc_parts_and_keeps_the_package(
    tree: freeze.FrozenTree,
) -> None:
    names = pyc_names(tree)
    carried = {n for n in names if n.startswith(("multiprocessing/", "concurrent/futures/"))}
    assert {"multiprocessing/__init__.pyc", "multiprocessing/context.pyc", "concurrent/futures/thread.pyc"} <= carried
    left_out = {"multiprocessing/pool.pyc", "multiprocessing/managers.pyc", "concurrent/futures/process.pyc"}
    assert not left_out & carried
    assert "asyncio/queues.pyc" in names  # the relative import of the same name in another package


def test_a_replacement_that_does_not_exist_is_named(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as caught:
        freeze.find_closure(options(tmp_path, replacements=(("pyroute2", tmp_path / "nonesuch.py"),)))
    assert (caught.value.field, caught.value.value) == ("replacement", "pyroute2")


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


@ROOT_ONLY
def test_argparse_in_the_tree_translates_nothing_and_loads_no_locale(tree: freeze.FrozenTree) -> None:
    """The tree's gettext is the stand-in: a parser's messages are argparse's own text, and building one looks
    for no catalog (no locale module, no language directories)."""
    code = (
        "import argparse, sys\n"
        "p = argparse.ArgumentParser(prog='x', exit_on_error=False)\n"
        "p.add_argument('--n', type=int)\n"
        "try: p.parse_args(['--n', 'seven'])\n"
        "except argparse.ArgumentError as exc: print(exc)\n"
        "print('locale' in sys.modules, hasattr(sys.modules['gettext'], '_expand_lang'))"
    )
    result = python(tree, "-c", code)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == ["argument --n: invalid int value: 'seven'", "False False"]
