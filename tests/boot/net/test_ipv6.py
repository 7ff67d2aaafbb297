from __future__ import annotations

import ipaddress
from pathlib import Path

import netns
import pytest

from boot.net import ipv6
from boot.net.waits import InterfaceError


@pytest.mark.parametrize(
    ("slaac", "expected"),
    [(False, {"disable_ipv6": "0"}), (True, {"disable_ipv6": "0", "accept_ra": "2", "autoconf": "1"})],
    ids=["static", "slaac"],
)
def test_prepare_writes_the_settings(tmp_path, slaac, expected):
    (tmp_path / "eth0").mkdir()
    for key in ("disable_ipv6", "accept_ra", "autoconf"):
        (tmp_path / "eth0" / key).write_text("untouched")
    ipv6.prepare("eth0", slaac=slaac, root=str(tmp_path))
    got = {p.name: p.read_text() for p in (tmp_path / "eth0").iterdir() if p.read_text() != "untouched"}
    assert got == expected


def test_missing_ipv6_stack_names_the_link_and_the_setting(tmp_path):
    with pytest.raises(InterfaceError, match=r"^eth0: cannot set disable_ipv6=0"):
        ipv6.prepare("eth0", slaac=False, root=str(tmp_path))


@pytest.mark.parametrize(
    ("flags", "tentative", "failed"), [(0x80, False, False), (0xC0, True, False), (0xC8, True, True)]
)
def test_address_flags(flags, tentative, failed):
    addr = ipv6.Addr6(ipaddress.IPv6Interface("2001:db8::1/64"), flags, 0)
    assert (addr.tentative, addr.dad_failed) == (tentative, failed)


@pytest.mark.parametrize(
    ("address", "scope", "routable"),
    [("2001:db8::5/64", 0, True), ("fec0::5054:ff:fe12:3456/64", 200, True), ("fe80::1/64", 253, False),
     ("::1/128", 254, False)],
)  # fmt: skip
def test_site_local_counts_as_a_slaac_address(address, scope, routable):
    """QEMU's user network gives fec0::/64, which the kernel scopes `site`: the VM boot waited 40 s for a
    'global address' it already had."""
    assert ipv6.Addr6(ipaddress.IPv6Interface(address), 0, scope).routable is routable


# ---- the waits against a big routing table and a flood of router advertisements (namespaces) -----------------

ROUTES_ELSEWHERE = 20_000
MARGIN = 1.0  # seconds a wait may run past its bound: one poll, one netlink read; the old code overran by 10-50 s
MAX_RSS_KB = 120_000  # the runner's peak memory; pyroute2's full dumps took 560-930 MB


def _fill_routes(ns, ifname: str, count: int, tmp_path) -> None:
    """`count` /64 routes out of `ifname` (another link than the one under test), added in one `ip -batch`."""
    batch = tmp_path / "routes.batch"
    batch.write_text(
        "".join(f"route add 2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64 dev {ifname}\n" for i in range(count))
    )
    ns.ip("-6", "-batch", str(batch))


@pytest.fixture
def linked(ns_pair):
    """Client c0 <-> server s0 (2001:db8:9::1/64), and in the client a second link x0 (a veth to x1)."""
    client, server = ns_pair
    server.sysctl("net.ipv6.conf.default.accept_dad", "0")  # the router's link-local at once: radvd answers sooner
    netns.veth(client, "c0", server, "s0")
    server.ip("-6", "addr", "add", "2001:db8:9::1/64", "dev", "s0", "nodad")
    server.ip("-6", "addr", "add", "fe80::f10d/64", "dev", "s0", "nodad")  # the flood's router
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    client.ip("link", "add", "x0", "type", "veth", "peer", "name", "x1")
    for ifname in ("x0", "x1"):
        client.ip("link", "set", ifname, "up")
    return client, server


def _auto6(client, bound: float):
    return netns.run_bring_up(
        client, {"interfaces": [{"name": "c0", "method": "auto6"}], "timeouts": {"ipv6auto": bound}}, timeout=60
    )


@pytest.mark.netns
def test_a_full_routing_table_elsewhere_neither_slows_nor_bloats_the_wait(linked, tmp_path):
    client, _server = linked
    _fill_routes(client, "x0", ROUTES_ELSEWHERE, tmp_path)
    result = _auto6(client, 3)
    assert result.status == 5, result
    document = result.document
    assert document["error"] == (
        "c0: wait 'ipv6auto' ran out after 3s: no router advertisement gave a global address or a default route"
    )
    assert 3 <= document["elapsed"] <= 3 + MARGIN, document
    assert document["maxrss_kb"] < MAX_RSS_KB, document


@pytest.mark.netns
def test_a_flood_of_router_advertisements_leaves_the_wait_bounded(linked):
    client, server = linked
    flood = [netns.PYTHON, str(Path(__file__).with_name("ra_flood.py")), "s0", "fe80::f10d", "6", "200"]
    with netns.server_process(server, flood, ready=1.0):
        result = _auto6(client, 3)
        routes = len(client.ip("-6", "route", "show", "dev", "c0").stdout.splitlines())
    assert routes > 5_000, f"the flood made only {routes} routes"  # the test tests something
    assert result.status == 5, result
    document = result.document
    assert document["error"].startswith("c0: wait 'ipv6auto' ran out after 3s: no router advertisement gave")
    assert 3 <= document["elapsed"] <= 3 + MARGIN, document
    assert document["maxrss_kb"] < MAX_RSS_KB, document


@pytest.mark.netns
def test_slaac_succeeds_through_a_flood_and_a_full_table(linked, tmp_path):
    client, server = linked
    _fill_routes(client, "x0", ROUTES_ELSEWHERE, tmp_path)
    config = tmp_path / "radvd.conf"
    config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))
    flood = [netns.PYTHON, str(Path(__file__).with_name("ra_flood.py")), "s0", "fe80::f10d", "20", "200"]
    with (
        netns.server_process(server, flood, ready=1.0),
        netns.server_process(server, netns.radvd_cmd(str(config), str(tmp_path))),
    ):
        result = _auto6(client, 15)
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    (address,) = iface["addresses"]
    assert address.startswith("2001:db8:9:") and address.endswith("/64")
    router = client.ip_json("-6", "route", "show", "default")[0]
    assert iface["gateway6"] == router["gateway"] != "fe80::f10d" and router["gateway"].startswith("fe80::")
    assert iface["seconds"] < 15
    assert result.document["maxrss_kb"] < MAX_RSS_KB, result.document


def eui64(prefix: str, mac: str) -> ipaddress.IPv6Interface:
    raw = bytearray(bytes.fromhex(mac.replace(":", "")))
    raw[0] ^= 0x02
    iid = bytes(raw[:3]) + b"\xff\xfe" + bytes(raw[3:])
    network = ipaddress.IPv6Network(prefix)
    return ipaddress.IPv6Interface((int(network.network_address) | int.from_bytes(iid, "big"), network.prefixlen))


@pytest.mark.netns
def test_a_slaac_address_that_fails_dad_is_named(linked, tmp_path):
    """Another host (the router itself here) already has the address SLAAC makes: the kernel drops it, and the
    timeout says so instead of 'no router advertisement gave a global address'."""
    client, server = linked
    taken = eui64("2001:db8:9::/64", client.mac("c0"))
    server.ip("-6", "addr", "add", str(taken), "dev", "s0", "nodad")
    config = tmp_path / "radvd.conf"
    config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))
    with netns.server_process(server, netns.radvd_cmd(str(config), str(tmp_path))):
        result = _auto6(client, 8)
    assert result.status == 5, result
    assert result.document["error"] == (
        f"c0: wait 'ipv6auto' ran out after 8s: duplicate address detection failed for {taken}: "
        "another host already uses it"
    )


A = ipaddress.IPv6Interface("2001:db8::5/64")
GW = ipaddress.IPv6Address("fe80::1")


@pytest.mark.parametrize(
    ("found", "failed", "router", "why"),
    [
        ((), [], None, "no router advertisement gave a global address or a default route"),
        ((A,), [], None, "no router advertisement gave a default route"),
        ((), [], GW, "no router advertisement gave a global address"),
        ((), [A], GW, "duplicate address detection failed for 2001:db8::5/64: another host already uses it"),
        (
            (),
            [A],
            None,
            "duplicate address detection failed for 2001:db8::5/64: another host already uses it; "
            "no router advertisement gave a default route",
        ),
    ],
)
def test_what_slaac_still_misses(found, failed, router, why):
    assert ipv6.slaac_missing(found, failed, router) == why
