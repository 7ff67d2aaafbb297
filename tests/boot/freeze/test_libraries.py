"""boot.freeze.libraries: the extension modules' and the interpreter's shared libraries, and libudev that pyudev
dlopen()s, land at their host paths inside the tree and never outside it."""

from __future__ import annotations

import os
from pathlib import Path

from boot import freeze
from tests.boot.freeze.frozen import ROOT_ONLY, options, python


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
    built = freeze.build(options(tmp_path, extras=extras))
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


def test_a_static_executable_needs_no_library() -> None:
    assert freeze.shared_libraries(Path("/sbin/ldconfig")) == []  # Debian's ldconfig is static, as an initramfs wants
