"""The numbers the issue asks for (sizes, module counts, start-up times), as JSON-ready data."""

from __future__ import annotations

from pathlib import Path

from boot.freeze.layout import FrozenTree
from boot.freeze.verify import Verification


def tree_size(root: Path) -> int:
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def report(tree: FrozenTree, checked: Verification | None) -> dict[str, object]:
    """The numbers the issue asks for, as JSON-ready data."""
    data: dict[str, object] = {
        "modules": len(tree.modules),
        "bytecode_bytes": tree.bytecode_bytes(),
        "tree_bytes": tree_size(tree.root),
        "extensions": list(tree.extensions),
        "libraries": list(tree.libraries),
        "entries": list(tree.entries),
        "missing_entries": list(tree.missing_entries),
        "unresolved_imports": len(tree.unresolved),
    }
    if checked is not None:
        data["loaded_modules"] = checked.loaded
        data["startup_version_ms"] = round(checked.startup_version_s * 1000, 1)
        data["import_entries_ms"] = round(checked.import_entries_s * 1000, 1)
    return data
