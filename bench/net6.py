"""Bench: `python -m bench net6`: bench.net_bringup's DHCPv6 row alone (ip=dhcp6: pyiscsi vs dhclient -6)."""

from __future__ import annotations

import bench  # noqa: F401  (repository root on sys.path)
from bench import net_bringup

RUNS = net_bringup.RUNS
ONLY = ("dhcp6",)


def run() -> None:
    net_bringup.RUNS = RUNS  # python -m bench sets ours (--runs, --quick)
    net_bringup.run(only=ONLY)
