"""Helpers for the boot.freeze tests: small builds from this checkout, and running a tree in a chroot."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from boot import freeze
from boot.freeze.closure import METADATA_MODULES

ENTRIES = ("boot.cli", "initiator.iscsi_if", "initiator.kernel")
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root (CI runs the suite as root)")


def options(out: Path, **changes: object) -> freeze.FreezeOptions:
    return dataclasses.replace(freeze.FreezeOptions(out=out, entries=ENTRIES), **changes)


def chroot(tree: freeze.FrozenTree, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["chroot", str(tree.root), *argv], capture_output=True, text=True, timeout=60, check=False)


def python(tree: freeze.FrozenTree, *args: str) -> subprocess.CompletedProcess[str]:
    return chroot(tree, str(tree.interpreter), "-I", "-S", "-B", *args)


def pyc_names(tree: freeze.FrozenTree) -> list[str]:
    """The tree's .pyc files, relative to its bytecode directory (`boot/cli.pyc`), sorted."""
    return [path.relative_to(tree.bytecode_dir).as_posix() for path in tree.bytecode_files()]


def fake_pyroute2(directory: Path) -> Path:
    """A pyroute2 that makes its public names as 0.7.2 does, from its distribution's entry points: the build
    machine sees `pyroute2.IPRoute`, a frozen tree (no distribution metadata) does not. Beside it `netcode`, a
    module that takes IPRoute from pyroute2's top level inside a function, as pyiscsi's steps import lazily."""
    files = {
        "pyroute2/__init__.py": """
            from importlib import metadata

            for _entry in metadata.entry_points(group="pyroute2"):
                globals()[_entry.name] = _entry.load()
        """,
        "pyroute2/iproute.py": "class IPRoute:\n    pass\n",
        "pyroute2-0.7.2.dist-info/METADATA": "Metadata-Version: 2.1\nName: pyroute2\nVersion: 0.7.2\n",
        "pyroute2-0.7.2.dist-info/entry_points.txt": "[pyroute2]\nIPRoute = pyroute2.iproute:IPRoute\n",
        "netcode.py": """
            def bring_up():
                from pyroute2 import IPRoute

                return IPRoute()
        """,
    }
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return directory


def netcode_options(out: Path, site: Path, **changes: object) -> freeze.FreezeOptions:
    """A tree of `netcode` over the fake pyroute2 alone, netcode's import statements checked as ours are."""
    settings: dict[str, object] = {
        "entries": ("netcode",),
        # the interpreter's start-up codecs, json for verify's probe, and the module pyroute2's entry point names
        # (carried, as the default build carries it)
        "extras": (*(n for n in freeze.DEFAULT_EXTRAS if n.startswith("encodings.")), "json", "pyroute2.iproute"),
        "packages": (),
        "search_path": (site, *freeze.default_search_path()),
        "own_packages": ("netcode",),
        "copy_libraries": False,
        "replacements": (),  # the fake pyroute2's own init, which makes IPRoute as 0.7.2's does
        # ... from importlib.metadata (which reads zips), left out of the default build: nothing at boot calls it
        "excludes": tuple(name for name in freeze.DEFAULT_EXCLUDES if name not in METADATA_MODULES),
    }
    return options(out, **{**settings, **changes})
