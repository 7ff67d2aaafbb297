"""`python -m bench [NAME ...] [--runs N] [--quick]`: run the named benchmarks (all of them without a name)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

import bench  # noqa: F401  (puts the repository root on sys.path)

QUICK_ENV = "PYISCSI_BENCH_QUICK"  # benchmarks read it too (fewer sizes, boots)

# name -> (module, what it measures). A new benchmark is one module with run() and RUNS, and one line here.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "login": ("bench.login_latency", "iSCSI login and discovery latency: pyiscsi vs open-iscsi's iscsiadm, on tgtd"),
    "net": ("bench.net_bringup", "network bring-up per method: pyiscsi vs dhclient and dracut's shell loops"),
    "net6": ("bench.net6", "network bring-up, DHCPv6 alone: pyiscsi (ip=dhcp6) vs dhclient -6, dnsmasq DHCPv6 + RA"),
    "storm": ("bench.storm", "boot storm: N logins at once to one tgtd (N = 50, 200), pyiscsi vs iscsiadm discovery"),
    "frozen": (
        "bench.frozen",
        "frozen runtime: size of boot.freeze's tree and its .pyc files, start-up of pyiscsi --version vs iscsistart",
    ),
    "size": ("bench.initramfs_size", "initramfs size (raw, zstd): base, + pyiscsi, + stock iscsi/network-legacy"),
    "boot": ("bench.boot", "whole boots in QEMU, iBFT and cmdline: root disk and real-root uptime, failure time"),
    "nodhcp": ("bench.nodhcp", "whole boots in QEMU with ip=dhcp and no DHCP answer: time to a clear failure"),
    "recovery": ("bench.recovery", "whole iBFT boots in QEMU, tgtd restarted under the real root: time to I/O again"),
    "realroot": (
        "bench.realroot",
        "a real Debian root over netlab (netroot=): multi-user and power-off, its own dracut's stock image vs ours",
    ),
    "multipath": (
        "bench.multipath",
        "a multipath Debian root (two portals, two NICs): boot, and path loss to I/O again under the agent and iscsid",
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}")
    parser.add_argument("--runs", type=int, metavar="N", help="samples per measurement (default: each one's own)")
    parser.add_argument(
        "--quick", action="store_true", help=f"fewer repetitions and sizes (each one's QUICK_RUNS; also ${QUICK_ENV}=1)"
    )
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    quick = args.quick or bool(os.environ.get(QUICK_ENV))
    if quick:
        os.environ[QUICK_ENV] = "1"
    for name in args.names or list(BENCHMARKS):
        module_name, summary = BENCHMARKS[name]
        print(f"== {name}: {summary}", flush=True)
        module = importlib.import_module(module_name)
        if args.runs is not None:
            module.RUNS = args.runs
        elif quick:
            module.RUNS = getattr(module, "QUICK_RUNS", min(module.RUNS, 3))
        started = time.monotonic()
        module.run()
        print(f"== {name}: done in {time.monotonic() - started:.1f}s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
