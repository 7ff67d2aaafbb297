"""The packet-socket driver against hostile peers: malformed replies are ignored, named, and never end the wait
early; a real server beside a hostile one still gives the lease."""

from __future__ import annotations

import ipaddress
import json
import re
import tempfile
import time
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


SCRIPTED = str(Path(__file__).with_name("hostile_dhcp.py"))


def scripted(mode: str, *options: str, seconds: float = 40) -> list[str]:
    return [netns.PYTHON, SCRIPTED, "s0", mode, str(seconds), *options]


def dhcp(client, bound: float, **extra):
    spec = {"interfaces": [{"name": "c0", "method": "dhcp"}], "timeouts": {"dhcp": bound}, **extra}
    return netns.run_bring_up(client, spec, timeout=bound + 30)


def sent_counts(error: str) -> tuple[int, int]:
    match = re.search(r"(\d+) DISCOVER(?:,| and) (\d+) REQUEST", error)
    assert match, error
    return int(match[1]), int(match[2])


def test_a_server_that_naks_every_request_gets_a_handful_and_the_count_is_what_it_saw(linked, tmp_path):
    """~9,800 DISCOVER/REQUEST pairs in 5 s before the backoff; the NAK's text reaches the message escaped."""
    client, server = linked
    log = tmp_path / "seen.json"
    nak_text = b"no\x1b[31m\x07\x00".hex()
    with netns.server_process(server, scripted("nak", "--message", nak_text, "--log", str(log))):
        result = dhcp(client, 5)
        time.sleep(0.2)  # the last message on its way
        seen = json.loads(log.read_text())
    assert result.status == 5, result
    error = result.document["error"]
    assert error.startswith("c0: wait 'dhcp' ran out after 5s: restarting, "), error
    discovers, requests = sent_counts(error)
    assert (discovers, requests) == (seen.get("DISCOVER", 0), seen.get("REQUEST", 0)), (error, seen)
    assert 2 <= discovers + requests <= 6, error
    assert "NAK from 10.9.0.66: no\\x1b[31m\\x07\\x00" in error and "\x1b" not in error


def test_an_offer_never_acked_gives_way_to_the_offer_that_came_later(linked, tmp_path):
    client, server = linked
    log = tmp_path / "good.json"
    first = scripted("offer-only", "--source", "10.9.0.66", "--yiaddr", "10.9.0.77")
    later = scripted("good", "--source", "10.9.0.67", "--yiaddr", "10.9.0.88", "--delay", "0.3", "--log", str(log))
    with netns.server_process(server, first), netns.server_process(server, later):
        result = dhcp(client, 30)
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["addresses"] == ["10.9.0.88/24"] and iface["lease"]["server"] == "10.9.0.67"
    assert iface["seconds"] < 15  # two REQUESTs to the silent server (~6 s), then the other
    assert json.loads(log.read_text())["REQUEST_FOR_US"] == 1


def test_an_address_another_host_answers_for_is_declined_and_the_next_taken(linked, tmp_path):
    """The server's own link has 10.9.0.77 already: the client's ARP probe is answered, so it declines."""
    client, server = linked
    server.ip("addr", "add", "10.9.0.77/24", "dev", "s0")
    log = tmp_path / "seen.json"
    with netns.server_process(server, scripted("good", "--yiaddr", "10.9.0.77,10.9.0.78", "--log", str(log))):
        result = dhcp(client, 20)
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["addresses"] == ["10.9.0.78/24"]
    seen = json.loads(log.read_text())
    assert seen["DECLINE"] == 1 and seen["DISCOVER"] == 2, seen
    assert [a["local"] for a in client.ip_json("-4", "addr", "show", "dev", "c0")[0]["addr_info"]] == ["10.9.0.78"]


HOSTILE_DOMAIN = b"boot.test\x1b]0;owned\x07"
BAD_OPTIONS = (
    f"3={ipaddress.IPv4Address('255.255.255.255').packed.hex()}",
    f"6={(ipaddress.IPv4Address('224.0.0.1').packed + ipaddress.IPv4Address('10.9.0.53').packed).hex()}",
    f"15={HOSTILE_DOMAIN.hex()}",
    f"12={b'a..b'.hex()}",
    f"28={ipaddress.IPv4Address('10.9.0.77').packed.hex()}",
)


def test_bad_options_are_dropped_and_named_and_the_boot_goes_on(linked, tmp_path):
    client, server = linked
    resolv = tmp_path / "resolv.conf"
    options = [part for option in BAD_OPTIONS for part in ("--option", option)]
    with netns.server_process(server, scripted("good", *options)):
        result = dhcp(client, 15, resolv=str(resolv))
    assert result.status == 0, result
    (iface,) = result.document["interfaces"]
    assert iface["addresses"] == ["10.9.0.77/24"]
    assert (iface["gateway"], iface["dns"], iface["domain"], iface["hostname"]) == (None, ["10.9.0.53"], None, None)
    warnings = iface["warnings"]
    assert len(warnings) == 5 and all(w.isprintable() for w in warnings), warnings
    assert "option 3 (router) 255.255.255.255 dropped: the limited broadcast address" in warnings
    assert "option 6 (domain name server) 224.0.0.1 dropped: a multicast address" in warnings
    assert any(w.startswith("option 15 (domain name) 'boot.test\\x1b]0;owned\\x07' dropped") for w in warnings)
    assert "option 28 (broadcast address) 10.9.0.77 dropped: our own address" in warnings
    assert resolv.read_text().splitlines()[1:] == ["nameserver 10.9.0.53"]
    assert "\x1b" not in json.dumps(result.document, ensure_ascii=False)


def test_a_lease_of_the_servers_own_address_is_refused_naming_the_field(linked):
    client, server = linked
    with netns.server_process(server, scripted("good", "--yiaddr", "10.9.0.66")):
        result = dhcp(client, 3)
    assert result.status == 5, result
    assert "bad packet ignored: DHCP yiaddr: the server's own address (option 54)" in result.document["error"]


PROBE_WITH_WARMUP = """
import json, sys, time
sys.path.insert(0, {repo!r})
from boot import warmup
from boot.net import dhcp4_socket
from initiator.deadline import Deadline
import ipaddress

steps = []
def importer(name):
    steps.append(name)
    time.sleep({step_seconds})
warmup._armed = warmup.Warmup([f"not.imported.{{i}}" for i in range(20)], importer=importer)
mac = bytes.fromhex(open("/sys/class/net/c0/address").read().strip().replace(":", ""))
owner = dhcp4_socket.probe_address("c0", mac, ipaddress.IPv4Address({address!r}), Deadline("dhcp", 10), {seconds})
print(json.dumps({{"owner": owner, "steps": len(steps)}}))
"""


@pytest.mark.parametrize(
    ("address", "step_seconds", "owned", "steps"),
    [
        pytest.param("10.9.0.77", 0.06, True, None, id="answer-read-between-imports"),
        pytest.param("10.9.0.77", 0.8, True, 1, id="answer-during-an-import-past-the-end-still-read"),
        pytest.param("10.9.0.99", 0.06, False, None, id="free-address-imports-fill-the-wait"),
    ],
)
def test_the_arp_probe_imports_while_it_waits_and_misses_no_answer(linked, address, step_seconds, owned, steps):
    """The boot's warm-up runs in the probe's idle time (boot.warmup); an owner's answer that comes while a
    module is imported, even one that ends past the probe's end, is still read and the address still refused."""
    client, server = linked
    server.ip("addr", "add", "10.9.0.77/24", "dev", "s0")
    client.ip("link", "set", "c0", "up")
    repo = str(Path(__file__).resolve().parents[3])
    code = PROBE_WITH_WARMUP.format(repo=repo, address=address, step_seconds=step_seconds, seconds=0.5)
    done = client.run(netns.PYTHON, "-c", code, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["owner"] == server.mac("s0")) is owned
    if steps is not None:
        assert seen["steps"] == steps
    elif not owned:  # the whole wait was import steps (0.5 s at 0.06 s, less the gaps too short for one)
        assert 4 <= seen["steps"] <= 9, seen
    else:
        assert seen["steps"] >= 1, seen
