"""Kernel pin parsing, the archive fallback and the cache stamp, with apt and dpkg faked by pytest-subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import kernel
from harness.errors import HarnessError
from harness.kernel import Pin
from harness.paths import PIN_FILE

PIN = Pin("linux-image-6.1.0-50-amd64", "6.1.176-1", "linux-image-amd64")


def test_the_repository_pin_parses():
    pin = kernel.read_pin(PIN_FILE)
    assert pin.package.startswith("linux-image-") and pin.package.endswith("-amd64")
    assert pin.fallback == "linux-image-amd64"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("package=a\nversion=1\n", "missing \\['fallback'\\]"),
        ("package a\n", "without '='"),
    ],
)
def test_bad_pin_files_are_named(text, match):
    with pytest.raises(HarnessError, match=match):
        Pin.parse(text)


def test_pin_ignores_comments_and_blank_lines():
    assert Pin.parse("# c\n\npackage = p\nversion=v\nfallback=f\n") == Pin("p", "v", "f")


def _fake_tree(root: Path, release: str) -> None:
    (root / "boot").mkdir(parents=True)
    (root / "boot" / f"vmlinuz-{release}").write_bytes(b"MZ")
    (root / "lib" / "modules" / release).mkdir(parents=True)


def test_cached_kernel_needs_no_subprocess(fp, tmp_path):
    root = tmp_path / PIN.key
    _fake_tree(root, "6.1.0-50-amd64")
    (root / ".complete").write_text("x\n")
    got = kernel.fetch(PIN, tmp_path)
    assert got.release == "6.1.0-50-amd64"
    assert got.vmlinuz.is_file()
    assert len(fp.calls) == 0


def test_half_unpacked_tree_without_stamp_is_not_trusted(tmp_path):
    _fake_tree(tmp_path / PIN.key, "6.1.0-50-amd64")
    assert kernel.cached(PIN, tmp_path) is None


APT_SHOW = """Package: linux-image-amd64
Version: 6.1.192-2
Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)
"""


def test_resolve_fallback_reads_the_metapackage_dependency(fp):
    fp.register(["apt-cache", "show", "--no-all-versions", "linux-image-amd64"], stdout=APT_SHOW)
    assert kernel.resolve_fallback("linux-image-amd64") == ("linux-image-6.1.0-56-amd64", "6.1.192-2")


def test_resolve_fallback_without_dependency_is_an_error(fp):
    fp.register(["apt-cache", "show", fp.any()], stdout="Package: x\n")
    with pytest.raises(HarnessError, match="no linux-image dependency"):
        kernel.resolve_fallback("linux-image-amd64")


def test_fetch_falls_back_when_the_archive_dropped_the_pinned_version(fp, tmp_path):
    """apt no longer has the pin (even after update): use what the metapackage depends on, and remember it."""
    new_pkg, new_ver, release = "linux-image-6.1.0-56-amd64", "6.1.192-2", "6.1.0-56-amd64"
    messages: list[str] = []

    def make_deb(process):
        Path(process.kwargs["cwd"], f"{new_pkg}_{new_ver}_amd64.deb").write_bytes(b"deb")

    def unpack(process):
        _fake_tree(Path(process.args[3]), release)

    fp.register(["apt-get", "download", f"{PIN.package}={PIN.version}"], returncode=100, occurrences=2)
    fp.register(["apt-get", "update", "-qq"])
    fp.register(["apt-cache", "show", "--no-all-versions", "linux-image-amd64"], stdout=APT_SHOW)
    fp.register(["apt-get", "download", f"{new_pkg}={new_ver}"], callback=make_deb)
    fp.register(["dpkg-deb", "-x", fp.any(min=2, max=2)], callback=unpack)
    fp.register(["depmod", "-b", fp.any(min=1, max=1), release])
    got = kernel.fetch(PIN, tmp_path, log=messages.append)
    assert got.release == release
    assert got.root == tmp_path / f"{new_pkg}_{new_ver}"
    assert (tmp_path / "current").read_text().strip() == f"{new_pkg}_{new_ver}"
    assert "no longer in the archive" in messages[0]
    assert kernel.cached(PIN, tmp_path) == got  # the next call finds the fallback without apt
