"""The harness's own failure type: a broken test environment, not a pyiscsi error."""

from __future__ import annotations


class HarnessError(RuntimeError):
    """The harness could not do its job (download failed, a tool is missing, QEMU would not start)."""
