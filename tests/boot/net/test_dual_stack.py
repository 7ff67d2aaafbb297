"""No ip= (method dhcp+auto6): DHCPv4 and IPv6 at once on the link, the bring-up done when the family the root
target needs is up. Real peers: dnsmasq for DHCPv4, radvd for SLAAC, dnsmasq's stateful DHCPv6 with its RA."""

from __future__ import annotations

import contextlib
from pathlib import Path

import netns
import pytest

pytestmark = pytest.mark.netns

DHCP4 = ("--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,2m", "--no-ping", "--dhcp-option=option:router,10.9.0.1")
DHCP6 = ("--dhcp-range=2001:db8:9::100,2001:db8:9::1ff,64,2m", "--enable-ra", "--ra-param=s0,3")


@pytest.fixture
def linked(linked: tuple[netns.Namespace, netns.Namespace]) -> tuple[netns.Namespace, netns.Namespace]:
    """conftest's pair, the server forwarding IPv6: its router advertisements make it the default router."""
    client, server = linked
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    return client, server


def servers(server: netns.Namespace, workdir: str, *, v4: bool, slaac: bool = False, dhcp6: bool = False):
    """The server side as asked: dnsmasq (DHCPv4 and/or DHCPv6 with its RA) and/or radvd (SLAAC)."""
    stack = contextlib.ExitStack()
    options = [*(DHCP4 if v4 else ()), *(DHCP6 if dhcp6 else ())]
    if options:
        stack.enter_context(netns.server_process(server, netns.dnsmasq_cmd("s0", *options, workdir=workdir), ready=1.0))
    if slaac:
        config = Path(workdir, "radvd.conf")
        config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))
        stack.enter_context(netns.server_process(server, netns.radvd_cmd(str(config), workdir)))
    return stack


def bring_up(client: netns.Namespace, family: int | None, **timeouts: float) -> netns.RunResult:
    spec = {"interfaces": [{"name": "c0", "method": "dhcp+auto6", "family": family}],
            "timeouts": {"dhcp": 20, "ipv6auto": 20, "dhcp6": 20, **timeouts}}  # fmt: skip
    return netns.run_bring_up(client, spec)


def global6(ns: netns.Namespace) -> list[str]:
    links = ns.ip_json("-6", "addr", "show", "dev", "c0")
    return [a["local"] for link in links for a in link.get("addr_info", []) if a.get("scope") == "global"]


def families(addresses: list[str]) -> set[int]:
    return {6 if ":" in a else 4 for a in addresses}


@pytest.mark.parametrize(
    ("network", "family", "got", "address_prefix"),
    [
        ("ipv6-slaac", 6, {6}, "2001:db8:9:"),  # an IPv6-only link: no wait for the DHCPv4 that never answers
        ("ipv6-slaac", None, {6}, "2001:db8:9:"),  # a host name: whatever comes first
        ("ipv4", 4, {4}, "10.9.0."),  # an IPv4-only link: no wait for router advertisements
        ("ipv4", None, {4}, "10.9.0."),
    ],
)
def test_the_family_that_is_there_is_enough(linked, workdir, network, family, got, address_prefix):
    client, server = linked
    with servers(server, workdir, v4=network == "ipv4", slaac=network == "ipv6-slaac"):
        result = bring_up(client, family)
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["method"] == ("dhcp" if got == {4} else "auto6")  # what it got: the handover keeps it so
    assert families(iface["addresses"]) == got and iface["addresses"][0].startswith(address_prefix)
    assert all(address_prefix in a or "fe80" in a for a in iface["addresses"])
    if got == {6}:
        assert iface["gateway6"].startswith("fe80::")
    else:
        assert iface["gateway"] == "10.9.0.1" and iface["lease"]["server"] == "10.9.0.1"


def test_both_families_an_ipv4_target_gets_its_lease_and_ipv6_comes_too(linked, workdir):
    client, server = linked
    with servers(server, workdir, v4=True, slaac=True):
        result = bring_up(client, 4)
        assert result.status == 0, result
        (iface,) = result.document["interfaces"]
        assert 4 in families(iface["addresses"]) and iface["gateway"] == "10.9.0.1"
        seen6: list[str] = []
        for _ in range(40):  # the kernel goes on with SLAAC on its own (bounded: 40 polls)
            seen6 = global6(client)
            if seen6:
                break
            client.run("sleep", "0.5")
        assert any(a.startswith("2001:db8:9:") for a in seen6)


def test_stateful_dhcpv6_when_router_advertisements_give_no_address(linked, workdir):
    client, server = linked
    with servers(server, workdir, v4=False, dhcp6=True):
        result = bring_up(client, 6, ipv6auto=6)
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert any(a.startswith("2001:db8:9::") and a.endswith("/128") for a in iface["addresses"])
    assert iface["method"] == "dhcp6"


@pytest.mark.parametrize(
    ("network", "family", "wait"),
    [
        ("ipv6-slaac", 4, "'dhcp'"),  # an IPv4 target on an IPv6-only link: the DHCPv4 wait, named
        ("ipv4", 6, "'dhcp6'"),  # an IPv6 target on an IPv4-only link: SLAAC, then DHCPv6, both ran out
    ],
)
def test_the_family_the_target_needs_failing_is_the_failure(linked, workdir, network, family, wait):
    client, server = linked
    with servers(server, workdir, v4=network == "ipv4", slaac=network == "ipv6-slaac"):
        result = bring_up(client, family, dhcp=4, ipv6auto=3, dhcp6=3)
    assert result.status == 5, result
    assert "c0" in result.document["error"] and wait in result.document["error"]
