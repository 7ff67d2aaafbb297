"""boot.freeze.report: the sizes and times the issue asks for."""

from __future__ import annotations

from pathlib import Path

from boot import freeze


def test_tree_size_counts_files_once_and_no_links(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"x" * 10)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b").write_bytes(b"y" * 5)
    (tmp_path / "link").symlink_to("a")
    assert freeze.tree_size(tmp_path) == 15


def test_report_without_verification_has_only_sizes(tree: freeze.FrozenTree) -> None:
    data = freeze.report(tree, None)
    assert data == {
        "modules": len(tree.modules),
        "bytecode_bytes": sum(path.stat().st_size for path in tree.bytecode_dir.rglob("*.pyc")),
        "tree_bytes": freeze.tree_size(tree.root),
        "extensions": list(tree.extensions),
        "libraries": list(tree.libraries),
        "entries": list(tree.entries),
        "missing_entries": [],
        "unresolved_imports": len(tree.unresolved),
    }


def test_report_times_are_milliseconds(tree: freeze.FrozenTree) -> None:
    checked = freeze.Verification(loaded=7, startup_version_s=0.01234, import_entries_s=0.5)
    data = freeze.report(tree, checked)
    assert (data["loaded_modules"], data["startup_version_ms"], data["import_entries_ms"]) == (7, 12.3, 500.0)
