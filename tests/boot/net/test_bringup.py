"""bring_up against real peers: dnsmasq (DHCPv4) and radvd (RA) in a server namespace, our code in a client one.

Each case runs `bring_up` under `ip netns exec` (ns_runner.py) and checks what it reports and what the kernel
then holds. Failure cases use short bounds and check the exit status and that the message names the wait.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import netns
import pytest

pytestmark = pytest.mark.netns

RANGE = "--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,2m"
DHCP_OPTIONS = (
    RANGE,
    "--no-ping",  # dnsmasq otherwise pings each new address for ~3s before offering it
    "--dhcp-option=option:router,10.9.0.1",
    "--dhcp-option=option:dns-server,10.9.0.53,10.9.0.54",
    "--dhcp-option=option:domain-name,boot.test",
    "--dhcp-option=option:mtu,1400",
)


def addresses(ns: netns.Namespace, ifname: str, family: str) -> list[dict]:
    return [a for link in ns.ip_json(family, "addr", "show", "dev", ifname) for a in link.get("addr_info", [])]


def default_route(ns: netns.Namespace, family: str) -> list[dict]:
    return ns.ip_json(family, "route", "show", "default")


def test_dhcp_lease_applied(linked, workdir):
    client, server = linked
    resolv, state = f"{workdir}/resolv.conf", f"{workdir}/run/net.json"
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *DHCP_OPTIONS, workdir=workdir)):
        result = netns.run_bring_up(
            client,
            {
                "interfaces": [{"name": "c0", "method": "dhcp"}],
                "timeouts": {"dhcp": 15},
                "resolv": resolv,
                "state": state,
            },
        )
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["name"] == "c0" and iface["method"] == "dhcp"
    assert iface["mac"] == client.mac("c0")
    (address,) = iface["addresses"]
    assert address.startswith("10.9.0.") and address.endswith("/24")
    assert 100 <= int(address.split("/")[0].split(".")[-1]) <= 150
    assert iface["gateway"] == "10.9.0.1"
    assert iface["dns"] == ["10.9.0.53", "10.9.0.54"]
    assert iface["domain"] == "boot.test"
    assert iface["mtu"] == 1400
    assert iface["lease"]["server"] == "10.9.0.1" and iface["lease"]["lease_time"] == 120
    assert iface["warnings"] == []  # dnsmasq's options are all good ones
    assert 0 <= iface["seconds"] < 15
    assert result.document["iproute_imported"] is False  # boot.net.rtnl did it all
    kernel = addresses(client, "c0", "-4")
    assert [f"{a['local']}/{a['prefixlen']}" for a in kernel] == [address]
    assert kernel[0]["valid_life_time"] == 4294967295  # no lifetime: the address must outlive us
    assert default_route(client, "-4")[0]["gateway"] == "10.9.0.1"
    assert client.ip_json("link", "show", "dev", "c0")[0]["mtu"] == 1400
    assert Path(resolv).read_text().splitlines()[1:] == [
        "nameserver 10.9.0.53",
        "nameserver 10.9.0.54",
        "search boot.test",
    ]
    assert json.loads(Path(state).read_text())["interfaces"][0]["addresses"] == [address]


def test_static_ipv4_with_gateway_and_mtu(linked):
    client, _server = linked
    result = netns.run_bring_up(
        client,
        {
            "interfaces": [
                {
                    "name": "c0",
                    "method": "static",
                    "addresses": ["10.9.0.7/24"],
                    "gateway": "10.9.0.1",
                    "mtu": 1280,
                    "dns": ["10.9.0.53"],
                }
            ]
        },
    )
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["addresses"] == ["10.9.0.7/24"] and iface["gateway"] == "10.9.0.1" and iface["mtu"] == 1280
    assert [a["local"] for a in addresses(client, "c0", "-4")] == ["10.9.0.7"]
    assert default_route(client, "-4")[0]["gateway"] == "10.9.0.1"
    assert client.ping("10.9.0.1")


def test_static_ipv6_finishes_dad(linked):
    client, _server = linked
    result = netns.run_bring_up(
        client,
        {
            "interfaces": [
                {"name": "c0", "method": "static", "addresses": ["2001:db8:9::7/64"], "gateway6": "2001:db8:9::1"}
            ],
            "timeouts": {"ipv6dad": 5},
        },
    )
    assert result.status == 0, result
    assert result.document["interfaces"][0]["gateway6"] == "2001:db8:9::1"
    (address,) = [a for a in addresses(client, "c0", "-6") if a["scope"] == "global"]
    assert address["local"] == "2001:db8:9::7" and not address.get("tentative")
    assert default_route(client, "-6")[0]["gateway"] == "2001:db8:9::1"
    assert client.ping("2001:db8:9::1")


def test_dad_conflict_is_a_network_error(linked):
    client, _server = linked
    result = netns.run_bring_up(
        client,
        {
            "interfaces": [{"name": "c0", "method": "static", "addresses": ["2001:db8:9::1/64"]}],
            "timeouts": {"ipv6dad": 5},
        },
    )
    assert result.status == 3, result
    assert "c0: duplicate address detection failed for 2001:db8:9::1/64" in result.document["error"]
    assert all(a["local"] != "2001:db8:9::1" for a in addresses(client, "c0", "-6"))


def test_auto6_from_radvd(linked, workdir):
    client, server = linked
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    config = Path(workdir, "radvd.conf")
    config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))
    with netns.server_process(server, netns.radvd_cmd(str(config), workdir)):
        result = netns.run_bring_up(
            client, {"interfaces": [{"name": "c0", "method": "auto6"}], "timeouts": {"ipv6auto": 20}}
        )
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    (address,) = iface["addresses"]
    assert address.startswith("2001:db8:9:") and address.endswith("/64")
    assert iface["gateway6"].startswith("fe80::")
    assert default_route(client, "-6")[0]["dev"] == "c0"


DHCP6_OPTIONS = (
    "--dhcp-range=2001:db8:9::100,2001:db8:9::1ff,64,2m",
    "--enable-ra",  # the M flag, the on-link prefix and the default route: what DHCPv6 itself does not give
    "--ra-param=s0,3",
    "--dhcp-option=option6:dns-server,[2001:db8:9::53]",
    "--dhcp-option=option6:domain-search,boot.test",
)


def test_dhcp6_lease_applied(linked, workdir):
    """Stateful DHCPv6 from dnsmasq: the address as a /128 without DAD pending, DNS and domain from the Reply."""
    client, server = linked
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    resolv = f"{workdir}/resolv.conf"
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *DHCP6_OPTIONS, workdir=workdir), ready=1.0):
        result = netns.run_bring_up(
            client,
            {"interfaces": [{"name": "c0", "method": "dhcp6"}], "timeouts": {"dhcp6": 20}, "resolv": resolv},
        )
        reachable = client.ping("2001:db8:9::1")
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    (address,) = iface["addresses"]
    assert address.endswith("/128")
    assert 0x100 <= int(ipaddress.IPv6Interface(address).ip) & 0xFFFF <= 0x1FF
    assert iface["dns"] == ["2001:db8:9::53"]
    kernel = {a["local"]: a for a in addresses(client, "c0", "-6")}
    held = kernel[address.split("/")[0]]
    assert held["prefixlen"] == 128 and not held.get("tentative")
    assert "nameserver 2001:db8:9::53" in Path(resolv).read_text()
    assert "boot.test" in Path(resolv).read_text()
    assert reachable  # the on-link prefix came from the router advertisement
    assert iface["gateway6"].startswith("fe80::")


def test_either6_falls_back_to_dhcp6_when_slaac_gives_no_address(linked, workdir):
    """dnsmasq's RA here is stateful only (M flag, prefix not autonomous): no SLAAC address, so DHCPv6."""
    client, server = linked
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *DHCP6_OPTIONS, workdir=workdir), ready=1.0):
        result = netns.run_bring_up(
            client, {"interfaces": [{"name": "c0", "method": "either6"}], "timeouts": {"ipv6auto": 3, "dhcp6": 20}}
        )
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["method"] == "either6"
    assert [a for a in iface["addresses"] if a.endswith("/128")], iface
    assert iface["gateway6"].startswith("fe80::")


def test_dhcp6_without_router_advertisements_names_the_wait(linked, workdir):
    """A lease alone reaches nothing (a /128, no on-link prefix): the 'ipv6auto' bound runs out and says why."""
    client, server = linked
    options = [o for o in DHCP6_OPTIONS if not o.startswith(("--enable-ra", "--ra-param"))]
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *options, workdir=workdir), ready=1.0):
        result = netns.run_bring_up(
            client, {"interfaces": [{"name": "c0", "method": "dhcp6"}], "timeouts": {"dhcp6": 20, "ipv6auto": 3}}
        )
    assert result.status == 5, result
    assert result.document["error"].startswith(
        "c0: wait 'ipv6auto' ran out after 3s: no router advertisement gave an on-link prefix or a default route"
    ), result.document


def test_vlan_dhcp(linked, workdir):
    client, server = linked
    reason = netns.vlan_unsupported()
    if reason:
        pytest.skip(reason)
    server.ip("link", "add", "link", "s0", "name", "s0.42", "type", "vlan", "id", "42")
    server.ip("link", "set", "s0.42", "up")
    server.ip("addr", "add", "10.42.0.1/24", "dev", "s0.42")
    cmd = netns.dnsmasq_cmd(
        "s0.42", "--dhcp-range=10.42.0.100,10.42.0.150,255.255.255.0,2m", "--no-ping", workdir=workdir
    )
    with netns.server_process(server, cmd):
        result = netns.run_bring_up(
            client, {"interfaces": [{"name": "c0", "vlan": 42, "method": "dhcp"}], "timeouts": {"dhcp": 15}}
        )
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert (iface["name"], iface["vlan"], iface["parent"]) == ("c0.42", 42, "c0")
    assert iface["addresses"][0].startswith("10.42.0.")
    link = client.ip_json("-d", "link", "show", "dev", "c0.42")[0]
    assert link["linkinfo"]["info_kind"] == "vlan" and link["linkinfo"]["info_data"]["id"] == 42
    assert client.ping("10.42.0.1")


def test_vlan_without_kernel_support_is_a_network_error(linked):
    client, _server = linked
    if netns.vlan_unsupported() is None:
        pytest.skip("this kernel makes VLAN links: test_vlan_dhcp covers it")
    result = netns.run_bring_up(client, {"interfaces": [{"name": "c0", "vlan": 42, "method": "dhcp"}]})
    assert result.status == 3, result
    assert result.document["error"].startswith("c0: cannot create VLAN 42 as c0.42"), result.document
    assert result.document["iproute_imported"] is True  # the VLAN is pyroute2's to make


def test_link_found_by_mac(linked):
    client, server = linked
    netns.veth(client, "decoy", server, "s1")
    mac = client.mac("c0")
    result = netns.run_bring_up(
        client, {"interfaces": [{"mac": mac, "method": "static", "addresses": ["10.9.0.8/24"]}]}
    )
    assert result.status == 0, result
    assert result.document["interfaces"][0]["name"] == "c0"
    assert [a["local"] for a in addresses(client, "c0", "-4")] == ["10.9.0.8"]
    assert addresses(client, "decoy", "-4") == []


def test_any_link_takes_the_first_with_carrier(linked):
    client, server = linked
    netns.veth(client, "nocarrier", server, "s1", up_b=False)
    result = netns.run_bring_up(client, {"interfaces": [{"method": "static", "addresses": ["10.9.0.9/24"]}]})
    assert result.status == 0, result
    assert result.document["interfaces"][0]["name"] == "c0"
    assert "UP" not in client.ip_json("link", "show", "dev", "nocarrier")[0]["flags"]  # set back down


def test_two_interfaces_at_once(linked, workdir):
    client, server = linked
    netns.veth(client, "c1", server, "s1")
    server.ip("addr", "add", "10.10.0.1/24", "dev", "s1")
    first = netns.dnsmasq_cmd("s0", *DHCP_OPTIONS, workdir=workdir)
    second = netns.dnsmasq_cmd(
        "s1", "--dhcp-range=10.10.0.100,10.10.0.150,255.255.255.0,2m", "--no-ping", workdir=workdir
    )
    with netns.server_process(server, first), netns.server_process(server, second):
        result = netns.run_bring_up(
            client,
            {
                "interfaces": [{"name": "c0", "method": "dhcp"}, {"name": "c1", "method": "dhcp"}],
                "timeouts": {"dhcp": 15},
            },
        )
    assert result.status == 0, result
    got = {i["name"]: i["addresses"][0] for i in result.document["interfaces"]}
    assert got["c0"].startswith("10.9.0.") and got["c1"].startswith("10.10.0.")


@pytest.mark.parametrize(
    ("spec", "status", "message"),
    [
        pytest.param(
            {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"dhcp": 2}},
            5,
            "c0: wait 'dhcp' ran out after 2s: selecting",
            id="no-dhcp-server",
        ),
        pytest.param(
            {"interfaces": [{"name": "nope0", "method": "dhcp"}], "timeouts": {"iflink": 1}},
            5,
            "nope0: wait 'iflink' ran out after 1s: no link named nope0",
            id="no-such-interface",
        ),
        pytest.param(
            {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"dhcp": 30, "total": 2}},
            5,
            "c0: wait 'total' ran out after 2s",
            id="overall-deadline-wins",
        ),
        pytest.param(
            {"interfaces": [{"name": "c0", "method": "dhcp6"}], "timeouts": {"dhcp6": 4}},
            5,
            "c0: wait 'dhcp6' ran out after 4s: no usable Advertise after",
            id="no-dhcp6-server",
        ),
    ],
)
def test_failures_are_bounded_and_named(linked, spec, status, message):
    client, _ = linked
    result = netns.run_bring_up(client, spec, timeout=20)
    assert result.status == status, result
    assert result.document["error"].startswith(message), result.document


def test_no_carrier(ns_pair):
    client, server = ns_pair
    netns.veth(client, "c0", server, "s0", up_b=False)
    result = netns.run_bring_up(
        client, {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"carrier": 1}}, timeout=20
    )
    assert result.status == 5, result
    assert result.document["error"].startswith("c0: wait 'carrier' ran out after 1s: no carrier")


def test_one_failure_among_two_names_the_failing_interface(linked, workdir):
    client, server = linked
    netns.veth(client, "c1", server, "s1", up_b=False)
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *DHCP_OPTIONS, workdir=workdir)):
        spec = {
            "interfaces": [{"name": "c0", "method": "dhcp"}, {"name": "c1", "method": "dhcp"}],
            "timeouts": {"dhcp": 10, "carrier": 1},
        }
        strict = netns.run_bring_up(client, spec, timeout=30)
        lenient = netns.run_bring_up(client, {**spec, "require_all": False}, timeout=30)
    assert strict.status == 5 and strict.document["error"].startswith("c1: wait 'carrier'"), strict
    assert lenient.status == 0, lenient
    assert [i["name"] for i in lenient.document["interfaces"]] == ["c0"]
