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
