"""The DHCPv6 driver against scripted servers in namespaces: refusals back off and are counted truthfully, and a
Reply longer than 4 KB is read whole."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import netns
import pytest

pytestmark = pytest.mark.netns

SCRIPTED = str(Path(__file__).with_name("hostile_dhcp6.py"))


@pytest.fixture
def linked(ns_pair):
    """Client c0 <-> server s0; the server's replies come from fe80::547 (no DAD: it answers at once)."""
    client, server = ns_pair
    netns.veth(client, "c0", server, "s0")
    server.ip("-6", "addr", "add", "fe80::547/64", "dev", "s0", "nodad")
    server.ip("-6", "addr", "add", "2001:db8:9::1/64", "dev", "s0", "nodad")
    return client, server


def scripted(mode: str, *options: str, seconds: float = 40) -> list[str]:
    return [netns.PYTHON, SCRIPTED, "s0", mode, str(seconds), *options]


def dhcp6(client, timeouts: dict):
    spec = {"interfaces": [{"name": "c0", "method": "dhcp6"}], "timeouts": timeouts}
    return netns.run_bring_up(client, spec, timeout=60)


@pytest.mark.parametrize(
    ("mode", "refusal"),
    [
        ("unspec-fail", "last refusal: reply: UNSPEC_FAIL: sorry\\x1b[2J\\x07\\x00"),
        ("no-addrs", "last refusal: reply: NO_ADDRS_AVAIL: none left"),
    ],
)
def test_a_server_that_refuses_everything_gets_a_handful_and_the_count_is_what_it_saw(linked, tmp_path, mode, refusal):
    """~10,300 Solicit+Request pairs in 5 s before the backoff, and the message said 'after 1 Solicit(s)'."""
    client, server = linked
    log = tmp_path / "seen.json"
    message = b"sorry\x1b[2J\x07\x00".hex()
    with netns.server_process(server, scripted(mode, "--message", message, "--log", str(log))):
        result = dhcp6(client, {"dhcp6": 5})
        time.sleep(0.2)
        seen = json.loads(log.read_text())
    assert result.status == 5, result
    error = result.document["error"]
    assert error.startswith("c0: wait 'dhcp6' ran out after 5s: "), error
    match = re.search(r"after (\d+) Solicit\(s\) and (\d+) Request\(s\) in all", error)
    assert match, error
    solicits, requests = int(match[1]), int(match[2])
    assert (solicits, requests) == (seen.get("SOLICIT", 0), seen.get("REQUEST", 0)), (error, seen)
    assert 2 <= solicits + requests <= 8, error  # the link-local address's DAD takes ~1 s of the 5
    assert refusal in error and "\x1b" not in error


def test_a_reply_longer_than_4_kb_is_read_whole(linked, tmp_path):
    client, server = linked
    server.sysctl("net.ipv6.conf.all.forwarding", "1")
    config = tmp_path / "radvd.conf"
    config.write_text(netns.radvd_config("s0", "2001:db8:9::/64"))  # the on-link prefix DHCPv6 does not give
    radvd = netns.radvd_cmd(str(config), str(tmp_path))
    with netns.server_process(server, scripted("good", "--pad", "6000")), netns.server_process(server, radvd):
        result = dhcp6(client, {"dhcp6": 15, "ipv6auto": 15})
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert "2001:db8:9::77/128" in iface["addresses"]
    assert iface["lease"]["server"] == "duid:00030001020000000547"
