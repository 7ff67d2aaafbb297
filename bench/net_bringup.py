"""Bench: time to a usable address per method, pyiscsi's bring-up against the stock tools in the same setup.

Each run makes a client and a server namespace joined by veth (servers: dnsmasq for DHCPv4, radvd for RA) and
times whole processes from start to exit, so both sides pay their start-up:
- dhcp: `bring_up` vs `dhclient -1` (isc-dhcp-client, the stock dracut DHCP path) with a minimal script that
  applies the lease the way dracut's dhclient-script does (ip addr add, default route); no resolv.conf.
- static6 (with DAD) and auto6: `bring_up` vs the loops dracut's net-lib runs (`ip -6 addr add`, then polling
  `ip -6 addr show ... tentative` / `scope global` and `ip -6 route show default` every 0.1s).
- static4: `bring_up` vs `ip addr add` + `ip route add` (nothing to wait for: shows our fixed cost).
- dhcp6 (`ip=dhcp6`, dnsmasq's stateful DHCPv6 + an RA with the M flag, the setup of tests/boot/net
  test_bringup's DHCP6_OPTIONS): `bring_up` vs `dhclient -1 -6` with a script that does what dracut's
  dhclient-script does for it (PREINIT6: link up, wait out link-local DAD; BOUND6: `ip -6 addr add` the lease),
  then the poll for a non-tentative global address and the RA's default route (what ours waits for too).
`python -m bench net6` runs the DHCPv6 row alone (`run(only=...)`).
Prints the median of a few runs. Run as root: `make bench` (or `python bench/net_bringup.py`).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "boot" / "net"))  # the namespace helpers the tests use

import netns  # noqa: E402

RUNS = 5
BOUND = 30.0

DHCLIENT_SCRIPT = """#!/bin/sh
# The part of dhclient-script that makes an address usable: address, prefix, default route.
case "$reason" in
BOUND|RENEW|REBIND|REBOOT)
    ip addr add "$new_ip_address/$new_subnet_mask" broadcast "$new_broadcast_address" dev "$interface"
    for r in $new_routers; do ip route replace default via "$r" dev "$interface"; break; done ;;
PREINIT) ip link set dev "$interface" up ;;
esac
exit 0
"""

DAD_LOOP = """
ip link set c0 up
ip -6 addr add 2001:db8:9::7/64 dev c0
while [ -n "$(ip -6 addr show dev c0 tentative)" ]; do sleep 0.1; done
"""

AUTO6_LOOP = """
sysctl -q -w net.ipv6.conf.c0.accept_ra=2 net.ipv6.conf.c0.autoconf=1
ip link set c0 up
while [ -z "$(ip -6 addr show dev c0 scope global -tentative)" ] || [ -z "$(ip -6 route show default dev c0)" ]; do
    sleep 0.1
done
"""

DHCLIENT6_SCRIPT = """#!/bin/sh
# dracut's dhclient-script for DHCPv6: link up and link-local DAD done before dhclient binds; apply the lease.
case "$reason" in
PREINIT6)
    ip link set dev "$interface" up
    while [ -n "$(ip -6 addr show dev "$interface" scope link tentative)" ]; do sleep 0.1; done ;;
BOUND6|RENEW6|REBIND6|REBOOT6)
    ip -6 addr replace "$new_ip6_address/${new_ip6_prefixlen:-128}" dev "$interface" ;;
esac
exit 0
"""

# after dhclient -1 -6 has exited: a usable address is a non-tentative global one and a default route (the RA's)
USABLE6_LOOP = """
while [ -z "$(ip -6 addr show dev c0 scope global -tentative)" ] || [ -z "$(ip -6 route show default dev c0)" ]; do
    sleep 0.1
done
"""

DHCP6_OPTIONS = (  # tests/boot/net/test_bringup.py's, without DNS (neither side writes resolv.conf here)
    "--dhcp-range=2001:db8:9::100,2001:db8:9::1ff,64,2m",
    "--enable-ra",
    "--ra-param=s0,3",
)

STATIC4 = "ip link set c0 up; ip addr add 10.9.0.7/24 dev c0; ip route replace default via 10.9.0.1 dev c0"


def _ours(ns: netns.Namespace, interface: dict) -> tuple[float, float]:
    """(whole process, inside bring_up): the difference is Python's start-up and imports."""
    spec = {"interfaces": [interface], "timeouts": {k: BOUND for k in ("dhcp", "dhcp6", "ipv6auto", "ipv6dad")}}
    started = time.monotonic()
    result = netns.run_bring_up(ns, spec, timeout=BOUND + 10)
    took = time.monotonic() - started
    if result.status != 0:
        raise RuntimeError(f"pyiscsi bring-up failed: {result.document or result.stderr}")
    return took, result.document["interfaces"][0]["seconds"]


def _shell(ns: netns.Namespace, script: str) -> float:
    started = time.monotonic()
    ns.run("timeout", str(BOUND), "sh", "-ec", script, timeout=BOUND + 10)
    return time.monotonic() - started


def dhclient_argv(family: str, workdir: str) -> tuple[list[str], list[str]]:
    """(start, stop) argv of dhclient for `family` 4|6: once (-1), our script, our lease and pid files."""
    files = [
        "-sf",
        f"{workdir}/dhclient{family}-script",
        "-lf",
        f"{workdir}/dhclient{family}.leases",
        "-pf",
        f"{workdir}/dhclient{family}.pid",
    ]
    return ["dhclient", "-1", f"-{family}", *files, "c0"], ["dhclient", f"-{family}", "-x", *files]


def _dhclient(ns: netns.Namespace, workdir: str, family: str = "4") -> float:
    start, stop = dhclient_argv(family, workdir)
    script = Path(workdir, f"dhclient{family}-script")
    script.write_text(DHCLIENT_SCRIPT if family == "4" else DHCLIENT6_SCRIPT)
    script.chmod(0o755)
    lease = Path(workdir, f"dhclient{family}.leases")
    lease.unlink(missing_ok=True)  # no remembered lease (nor DUID): a first boot, like ours
    started = time.monotonic()
    # -1: try once and exit non-zero on failure; on success the parent exits once the lease is applied.
    ns.run(*start, timeout=BOUND + 10)
    if family == "6":
        ns.run("timeout", str(BOUND), "sh", "-ec", USABLE6_LOOP, timeout=BOUND + 10)
    took = time.monotonic() - started
    ns.run(*stop, check=False)
    return took


def _reset(client: netns.Namespace) -> None:
    client.ip("link", "set", "c0", "down")
    client.ip("addr", "flush", "dev", "c0")
    client.ip("-6", "route", "flush", "dev", "c0", check=False)


def _median(samples: list[float]) -> str:
    return f"{statistics.median(samples):.3f}"


def _measure(
    name: str, setup: Callable[[netns.Namespace, str], list[list[str]]], ours: dict, stock: Callable, label: str
) -> tuple[str, str, str, str, str]:
    with (
        netns.namespace("pyibc") as client,
        netns.namespace("pyibs") as server,
        tempfile.TemporaryDirectory(prefix="pyiscsi-bench-") as workdir,
    ):
        netns.veth(client, "c0", server, "s0")
        server.ip("addr", "add", "10.9.0.1/24", "dev", "s0")
        server.ip("-6", "addr", "add", "2001:db8:9::1/64", "dev", "s0", "nodad")
        with contextlib.ExitStack() as servers:
            for command in setup(server, workdir):
                servers.enter_context(netns.server_process(server, command))
            ours_s, inner_s, stock_s = [], [], []
            for run_index in range(RUNS):
                for turn in ("ours", "stock") if run_index % 2 == 0 else ("stock", "ours"):  # neither always first
                    _reset(client)
                    if turn == "ours":
                        whole, inner = _ours(client, ours)
                        ours_s.append(whole)
                        inner_s.append(inner)
                    else:
                        stock_s.append(stock(client, workdir))
    return name, _median(ours_s), _median(inner_s), _median(stock_s), label


def _dnsmasq(server: netns.Namespace, workdir: str) -> list[list[str]]:
    return [
        netns.dnsmasq_cmd(
            "s0",
            "--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,2m",
            "--no-ping",
            "--dhcp-option=option:router,10.9.0.1",
            workdir=workdir,
        )
    ]


def _radvd(server: netns.Namespace, workdir: str) -> list[list[str]]:
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    config = Path(workdir, "radvd.conf")
    config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))
    return [netns.radvd_cmd(str(config), workdir)]


def _dnsmasq6(server: netns.Namespace, workdir: str) -> list[list[str]]:
    server.sysctl("net.ipv6.conf.all.forwarding", "1")  # dnsmasq's RA says "router" only on a forwarding host
    return [netns.dnsmasq_cmd("s0", *DHCP6_OPTIONS, workdir=workdir)]


def _nothing(server: netns.Namespace, workdir: str) -> list[list[str]]:
    return []


def rows_to_measure() -> dict[str, tuple]:
    """name -> the _measure arguments after the name: server setup, our interface, the stock side, its label."""
    return {
        "dhcp": (_dnsmasq, {"name": "c0", "method": "dhcp"}, _dhclient, "dhclient -1 (isc-dhcp-client)"),
        "static6+DAD": (
            _nothing,
            {"name": "c0", "method": "static", "addresses": ["2001:db8:9::7/64"]},
            lambda ns, _w: _shell(ns, DAD_LOOP),
            "ip -6 addr add + tentative poll (dracut)",
        ),
        "auto6": (
            _radvd,
            {"name": "c0", "method": "auto6"},
            lambda ns, _w: _shell(ns, AUTO6_LOOP),
            "accept_ra + global/default poll (dracut)",
        ),
        # no ip= on an IPv6-only link: pyiscsi starts DHCPv4 and IPv6 at once and is done when IPv6 is; the stock
        # stack without ip= runs DHCPv4 alone (no address here), so its side is the classic advice, ip=auto6
        "no-ip=,v6-only": (
            _radvd,
            {"name": "c0", "method": "dhcp+auto6"},
            lambda ns, _w: _shell(ns, AUTO6_LOOP),
            "ip=auto6 advice: accept_ra + poll (dracut)",
        ),
        "dhcp6": (
            _dnsmasq6,
            {"name": "c0", "method": "dhcp6"},
            lambda ns, w: _dhclient(ns, w, "6"),
            "dhclient -1 -6 + global/default poll (dracut)",
        ),
        "static4": (
            _nothing,
            {"name": "c0", "method": "static", "addresses": ["10.9.0.7/24"], "gateway": "10.9.0.1"},
            lambda ns, _w: _shell(ns, STATIC4),
            "ip addr add + ip route (no wait)",
        ),
    }


def run(only: tuple[str, ...] | None = None) -> None:
    reason = netns.can_make_namespaces()
    if reason:
        print(f"net_bringup: skipped: {reason}")
        return
    plan = rows_to_measure()
    rows = [_measure(name, *plan[name]) for name in plan if only is None or name in only]
    print(f"network bring-up: seconds to a usable address, median of {RUNS} runs (whole processes, veth + netns)")
    header = ("method", "pyiscsi", "(in bring_up)", "stock", "ours/stock", "stock tool")
    rows = [(name, ours, inner, stock, _ratio(ours, stock), label) for name, ours, inner, stock, label in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _ratio(ours: str, stock: str) -> str:
    return f"{float(ours) / float(stock):.2f}x" if float(stock) > 0 else "n/a"


if __name__ == "__main__":
    if os.geteuid() != 0:
        sys.exit("net_bringup bench: run as root (it makes network namespaces)")
    run()
