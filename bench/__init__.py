"""Benchmarks: pyiscsi against the stock stack on the same peers. `python -m bench [NAME ...]` (`make bench`).

One module per benchmark, registered by name in `bench/__main__.py`; each has `run() -> None` that prints
its own table and a module-level `RUNS` that `--runs N` overrides. `bench.stats` holds the shared summary and
table code. Nothing here asserts on time: the numbers are for people to read.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # `tests.support.*` (tgtd, iscsiadm) are shared with the tests
VM_TESTS = REPO / "vm-tests"
if str(VM_TESTS) not in sys.path:
    sys.path.insert(1, str(VM_TESTS))  # `harness.*` (kernel, images, qemu, initramfs) for the boot benchmarks
