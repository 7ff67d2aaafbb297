"""The packet-socket driver against hostile peers: malformed replies are ignored, named, and never end the wait
early; a real server beside a hostile one still gives the lease."""

from __future__ import annotations

import tempfile
from pathlib import Path

import netns
import pytest

pytestmark = pytest.mark.netns

HOSTILE = str(Path(__file__).with_name("hostile_dhcp.py"))


@pytest.fixture
def linked(ns_pair):
    client, server = ns_pair
    netns.veth(client, "c0", server, "s0")
    server.ip("addr", "add", "10.9.0.1/24", "dev", "s0")
    return client, server


@pytest.mark.parametrize(
    ("mode", "named"),
    [("bad-cookie", "DHCP magic cookie: not 63825363"), ("option-overflow", "DHCP options: option 3")],
)
def test_only_a_hostile_server_ends_in_a_named_timeout(linked, mode, named):
    client, server = linked
    with netns.server_process(server, [netns.PYTHON, HOSTILE, "s0", mode, "20"]):
        result = netns.run_bring_up(
            client, {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"dhcp": 3}}, timeout=20
        )
    assert result.status == 5, result
    error = result.document["error"]
    assert error.startswith("c0: wait 'dhcp' ran out after 3s"), error
    assert f"bad packet ignored: {named}" in error


def test_real_server_beside_a_hostile_one_still_gives_the_lease(linked):
    client, server = linked
    with tempfile.TemporaryDirectory() as workdir:
        dnsmasq = netns.dnsmasq_cmd(
            "s0", "--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,2m", "--no-ping", workdir=workdir
        )
        with (
            netns.server_process(server, [netns.PYTHON, HOSTILE, "s0", "option-overflow", "20"]),
            netns.server_process(server, dnsmasq),
        ):
            result = netns.run_bring_up(
                client, {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"dhcp": 10}}, timeout=20
            )
    assert result.status == 0, result
    assert result.document["interfaces"][0]["lease"]["server"] == "10.9.0.1"
