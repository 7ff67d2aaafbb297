"""boot.freeze.lighter: the sources the tree carries in place of a library's module, run on the host."""

from __future__ import annotations

import ctypes.util
from pathlib import Path

import pytest

from boot.freeze.lighter import ctypes_util, ssl_absent


@pytest.mark.parametrize(
    ("files", "name", "expected"),
    [
        (["libudev.so.1", "libudev.so.1.7.5"], "udev", "libudev.so.1"),
        (["libc.so.6", "libcrypto.so.3"], "c", "libc.so.6"),  # lib<name>.so. exactly, not a longer name
        (["libcrypto.so.3"], "c", None),
        (["libfoo.so.1", "libfoo.so.2", "libfoo.so.2.0.1"], "foo", "libfoo.so.2"),  # the highest major
        (["libfoo.so"], "foo", None),  # the development link is no soname
        ([], "udev", None),
    ],
)
def test_find_library_answers_with_the_soname(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[str], name: str, expected: str | None
) -> None:
    for file in files:
        (tmp_path / file).touch()
    monkeypatch.setattr(ctypes_util, "_BASES", (str(tmp_path / "absent"), str(tmp_path)))
    monkeypatch.setattr(ctypes_util.sys.implementation, "_multiarch", "", raising=False)
    assert ctypes_util.find_library(name) == expected


@pytest.mark.parametrize("name", ["udev", "c"])
def test_find_library_agrees_with_the_stdlib_on_this_machine(name: str) -> None:
    """The stdlib asks ldconfig; ours looks in the directories: the same soname for what the tree opens."""
    assert ctypes_util.find_library(name) == ctypes.util.find_library(name) is not None


def test_the_ssl_stand_in_names_the_types_asyncio_reads_and_refuses_tls() -> None:
    assert issubclass(ssl_absent.SSLWantReadError, ssl_absent.SSLError)
    assert issubclass(ssl_absent.SSLSyscallError, OSError)
    assert ssl_absent.CERT_REQUIRED == 2
    for attempt in (ssl_absent.create_default_context, ssl_absent.SSLContext, ssl_absent.wrap_socket):
        with pytest.raises(ssl_absent.SSLError, match="no ssl module"):
            attempt()


UNITTEST_AS_FROZEN = """
import importlib.util, json, os, sys
real = os.path.dirname(importlib.util.find_spec("unittest").origin)
spec = importlib.util.spec_from_file_location("unittest", sys.argv[1], submodule_search_locations=[real])
package = importlib.util.module_from_spec(spec)
sys.modules["unittest"] = package
spec.loader.exec_module(package)
from unittest import mock
heavy = ("unittest.case", "unittest.loader", "unittest.main", "argparse", "difflib")
loaded = sorted(m for m in heavy if m in sys.modules)
probe = mock.Mock()
probe.call(1)
probe.call.assert_called_once_with(1)
names = {name: getattr(package, name).__module__ for name in sys.argv[2].split()}
try:
    package.no_such_name
except AttributeError as exc:
    missing = str(exc)
print(json.dumps({"loaded": loaded, "names": names, "missing": missing}))
"""


def test_the_unittest_init_stand_in_loads_the_framework_only_when_asked() -> None:
    """`from unittest import mock` (pyroute2 0.9) loads no test case, loader, runner or argparse; every public name
    of the stdlib's init still resolves, from the submodule the stdlib takes it from."""
    import json
    import subprocess
    import sys
    import unittest

    public = [name for name in unittest.__all__ if name != "IsolatedAsyncioTestCase"]
    source = Path(__file__).resolve().parents[3] / "boot/freeze/lighter/unittest_init.py"
    done = subprocess.run(
        [sys.executable, "-I", "-c", UNITTEST_AS_FROZEN, str(source), " ".join(public)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    assert seen["loaded"] == []
    assert seen["names"] == {name: getattr(unittest, name).__module__ for name in public}
    assert seen["missing"] == "module 'unittest' has no attribute 'no_such_name'"


DATETIME_AS_FROZEN = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("datetime", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["datetime"] = module
spec.loader.exec_module(module)
import _datetime
names = sorted(n for n in dir(module) if not n.startswith("_"))
same = all(getattr(module, n) is getattr(_datetime, n) for n in names)
stamp = module.datetime(2026, 12, 3, 20, 1, tzinfo=module.timezone.utc) + module.timedelta(minutes=2)
print(json.dumps({"names": names, "same": same, "all": list(module.__all__), "stamp": stamp.isoformat()}))
"""


def test_the_datetime_stand_in_is_the_c_implementation_under_the_stdlibs_names() -> None:
    """Every public name the stdlib's datetime ends up with, as the same _datetime objects (datetime_CAPI too,
    which C extensions import through `datetime`), and no pure-Python definitions of its own."""
    import datetime
    import json
    import subprocess
    import sys

    source = Path(__file__).resolve().parents[3] / "boot/freeze/lighter/datetime_c.py"
    done = subprocess.run(
        [sys.executable, "-I", "-c", DATETIME_AS_FROZEN, str(source)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen = json.loads(done.stdout)
    public = sorted(n for n in dir(datetime) if not n.startswith("_") and n != "sys")  # sys: an import of its own
    assert seen["names"] == public
    assert "datetime_CAPI" in seen["names"] and seen["same"]
    assert sorted(seen["all"]) == sorted(datetime.__all__)
    assert seen["stamp"] == "2026-12-03T20:03:00+00:00"


# calls whose answers the stand-in must share with the stdlib's gettext where no catalog is found
GETTEXT_CALLS = [
    ("gettext", ("usage: ",)),
    ("ngettext", ("expected one argument", "expected %s arguments", 1)),
    ("ngettext", ("expected one argument", "expected %s arguments", 2)),
    ("ngettext", ("one", "many", 0)),
    ("pgettext", ("context", "message")),
    ("npgettext", ("context", "one", "many", 3)),
    ("dgettext", ("argparse", "options")),
    ("dngettext", ("argparse", "one", "many", 1)),
    ("dpgettext", ("argparse", "context", "message")),
    ("dnpgettext", ("argparse", "context", "one", "many", 5)),
    ("find", ("pyiscsi-no-such-domain",)),
]


@pytest.mark.parametrize(("name", "args"), GETTEXT_CALLS)
def test_the_gettext_stand_in_answers_as_the_stdlib_does_without_catalogs(
    monkeypatch: pytest.MonkeyPatch, name: str, args: tuple[object, ...]
) -> None:
    import gettext

    from boot.freeze.lighter import gettext_untranslated

    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert getattr(gettext_untranslated, name)(*args) == getattr(gettext, name)(*args)


def test_the_gettext_stand_in_has_the_stdlibs_names_and_no_catalog() -> None:
    import gettext

    from boot.freeze.lighter import gettext_untranslated as ours

    assert sorted(ours.__all__) == sorted(gettext.__all__)
    assert all(callable(getattr(ours, name)) for name in ours.__all__)
    assert ours.find("messages", all=True) == gettext.find("pyiscsi-no-such-domain", all=True) == []
    assert ours.translation("messages", fallback=True).gettext("x") == "x"
    with pytest.raises(FileNotFoundError) as theirs:
        gettext.translation("pyiscsi-no-such-domain")
    with pytest.raises(FileNotFoundError) as caught:
        ours.translation("pyiscsi-no-such-domain")
    assert (caught.value.errno, caught.value.args) == (theirs.value.errno, theirs.value.args)


# iproute2 map files as the tests lay them out: (directory index, relative path) -> text
RT_FILES = {
    (0, "rt_tables"): "# comment\n\n255\tlocal\n254 main\n0x10 hexed\n254 again\n",  # the first name of an id wins
    (0, "rt_tables.d/extra.conf"): "100 vpn\n",
    (0, "rt_tables.d/notes.txt"): "101 ignored\n",  # only .conf files of the .d directory
    (1, "rt_tables"): "7 shadowed\n",  # the first directory that has the file is the only one read
    (1, "tc_cls"): "1:10 web\n:5 low\n",  # tc handles: major:minor in hex
    (1, "group"): "0 default\n",
}
RT_LOOKUPS = [
    ("RtTablesFile", "rt_tables", {255: "local", 254: "main", 16: "hexed", 100: "vpn"}),
    ("TcClsFile", "tc_cls", {0x10010: "web", 5: "low"}),
    ("GroupFile", "group", {0: "default"}),
    ("RtProtosFile", "rt_protos", {}),
]


def _rt_tree(tmp_path: Path) -> tuple[Path, Path]:
    dirs = (tmp_path / "etc", tmp_path / "usr")
    for (index, name), text in RT_FILES.items():
        path = dirs[index] / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return dirs


def _rt_modules() -> list[object]:
    """Ours, and the library's own where this pyroute2 has the module (0.9; Debian's 0.7.2 has none)."""
    from boot.freeze.lighter import pyroute2_rt_files

    try:
        from pyroute2.netlink import rt_files
    except ImportError:
        return [pyroute2_rt_files]
    return [pyroute2_rt_files, rt_files]


@pytest.mark.parametrize(("cls", "filename", "expected"), RT_LOOKUPS)
def test_the_rt_files_stand_in_reads_iproute2_maps_as_the_library_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cls: str, filename: str, expected: dict[int, str]
) -> None:
    """The same maps from the same files, and the same answers to the lookups pyroute2's requests make."""
    dirs = _rt_tree(tmp_path)
    answers = []
    for module in _rt_modules():
        klass = getattr(module, cls)
        monkeypatch.setattr(module.IPRouteRtFile, "DIRECTORIES", dirs)
        table = klass()
        assert dict(table) == table.id2name == expected
        assert table.name2id == {name: number for number, name in expected.items()}
        answers.append(
            (
                klass.get_rt_filename(),
                table.get_rt_id(3),
                table.get_rt_id("42"),
                table.get_rt_id("nosuch", 9),
                table.get_rt_name(255),
                table.get_rt_name(77),
                table.get_rt_name(77, "dflt"),
                table.get_rt_name("named"),
                repr(table),
                table == klass(),
            )
        )
        with pytest.raises(KeyError):
            table.get_rt_id("nosuch")
    assert answers[0][:4] == (filename, 3, 42, 9)
    assert all(answer == answers[0] for answer in answers)


def test_the_rt_files_stand_in_refuses_what_the_library_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "rt_protos").write_text("12 too many words\n")
    for module in _rt_modules():
        monkeypatch.setattr(module.IPRouteRtFile, "DIRECTORIES", (tmp_path,))
        with pytest.raises(ValueError, match="too many values to unpack"):
            module.RtProtosFile()


def test_the_rt_files_stand_in_has_every_class_the_library_has() -> None:
    from boot.freeze.lighter import pyroute2_rt_files as ours

    library = _rt_modules()[-1]
    theirs = {name for name, value in vars(library).items() if isinstance(value, type) and name.endswith("File")}
    assert theirs <= set(ours.__all__)
    assert all(issubclass(getattr(ours, name), ours.IPRouteRtFile) for name in ours.__all__)
