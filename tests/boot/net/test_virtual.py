"""dracut's link forms through `pyiscsi net` in namespaces: ifname= renames, ip=...:<mtu>:<macaddr>, bridge=,
bond= (active-backup with a dead slave, 802.3ad) and a VLAN on a bond, each taking a DHCP lease from dnsmasq.

The server side is a bridge `sb` over the peers s0 and s1 of the client's c0 and c1, dnsmasq on it. The bond cases
need the kernel's bonding driver (and the VLAN one 8021q): where the host kernel lacks them they skip naming the
module, and vm-tests/test_boot_bond.py runs this file in the lab VM's kernel, which has both.
"""

from __future__ import annotations

import json
from pathlib import Path

import netns
import pytest

pytestmark = pytest.mark.netns

RANGE = "--dhcp-range=10.8.0.100,10.8.0.150,255.255.255.0,2m"
WAITS = "rd.net.timeout.dhcp=20 rd.net.timeout.carrier=8 rd.net.timeout.iflink=3"


def bonding_unsupported() -> str | None:
    """None if the kernel makes bond links, else why not (the host kernel here has no bonding driver)."""
    with netns.namespace("pyibond") as ns:
        made = ns.ip("link", "add", "name", "b0", "type", "bond", check=False)
        if made.returncode:
            return f"this kernel cannot make bond links (bonding): {made.stderr.strip()}"
    return None


@pytest.fixture
def lan(ns_pair: tuple[netns.Namespace, netns.Namespace]) -> tuple[netns.Namespace, netns.Namespace]:
    """c0, c1 in the client; their peers s0, s1 on the server's bridge sb (10.8.0.1/24)."""
    client, server = ns_pair
    server.ip("link", "add", "name", "sb", "type", "bridge", "stp_state", "0", "forward_delay", "0")
    for n in (0, 1):
        netns.veth(client, f"c{n}", server, f"s{n}")
        server.ip("link", "set", f"s{n}", "master", "sb")
    server.ip("link", "set", "sb", "up")
    server.ip("addr", "add", "10.8.0.1/24", "dev", "sb")
    return client, server


def pyiscsi_net(client: netns.Namespace, cmdline: str, state: str | None = None) -> tuple[int, dict, str]:
    extra = ("--state-file", state) if state else ()
    return netns.pyiscsi_net(client, f"{cmdline} {WAITS}", *extra, timeout=90.0)


def dhcp_over(server: netns.Namespace, iface: str, workdir: str, cmdline: str, client: netns.Namespace):
    with netns.server_process(server, netns.dnsmasq_cmd(iface, RANGE, "--no-ping", workdir=workdir)):
        return pyiscsi_net(client, cmdline, f"{workdir}/net.json")


def test_ifname_renames_the_link_and_every_record_names_it(lan, workdir):
    client, server = lan
    mac = client.mac("c1")
    status, doc, stderr = dhcp_over(server, "sb", workdir, f"ifname=boot7:{mac} ip=boot7:dhcp", client)
    assert status == 0, stderr
    (iface,) = doc["interfaces"]
    assert (iface["name"], iface["mac"]) == ("boot7", mac) and iface["addresses"][0].startswith("10.8.0.")
    assert client.mac("boot7") == mac
    assert client.ip("link", "show", "dev", "c1", check=False).returncode != 0
    state = json.loads(Path(f"{workdir}/net.json").read_text())
    assert [i["name"] for i in state["interfaces"]] == ["boot7"]


def test_ifname_to_a_name_another_link_holds_is_one_line_naming_both(lan):
    client, _server = lan
    mac = client.mac("c0")
    status, _doc, stderr = pyiscsi_net(client, f"ifname=c1:{mac} ip=c1:dhcp")
    assert status == 3, stderr
    assert stderr.strip().count("\n") == 0
    assert f"cannot rename c0 ({mac}) to c1, the name is taken by another link (c1, MAC {client.mac('c1')})" in stderr


def test_ip_sets_the_mtu_and_the_mac_address(lan, workdir):
    client, server = lan
    line = "ip=c0:dhcp:1400:02:00:5e:10:00:07"
    status, doc, stderr = dhcp_over(server, "sb", workdir, line, client)
    assert status == 0, stderr
    (iface,) = doc["interfaces"]
    assert (iface["mac"], iface["mtu"]) == ("02:00:5e:10:00:07", 1400)
    link = client.ip_json("link", "show", "dev", "c0")[0]
    assert (link["address"], link["mtu"]) == ("02:00:5e:10:00:07", 1400)
    assert "02:00:5e:10:00:07" in Path(f"{workdir}/sb.leases").read_text()  # dnsmasq leased to the new MAC


def test_bridge_gets_the_address(lan, workdir):
    client, server = lan
    status, doc, stderr = dhcp_over(server, "sb", workdir, "bridge=br0:c0 ip=br0:dhcp", client)
    assert status == 0, stderr
    (iface,) = doc["interfaces"]
    assert iface["name"] == "br0" and iface["addresses"][0].startswith("10.8.0.")
    br = client.ip_json("-d", "link", "show", "dev", "br0")[0]
    assert br["linkinfo"]["info_kind"] == "bridge"
    assert client.ip_json("link", "show", "dev", "c0")[0]["master"] == "br0"
    assert client.ping("10.8.0.1")


def _bond(client: netns.Namespace, name: str) -> dict:
    return client.ip_json("-d", "link", "show", "dev", name)[0]["linkinfo"]["info_data"]


def _needs_bonding() -> None:
    reason = bonding_unsupported()
    if reason:
        pytest.skip(reason)


def test_active_backup_bond_comes_up_over_the_live_slave(lan, workdir):
    """The first slave's peer is down: no carrier on c0; the bond takes c1 and the lease comes over it. bond0 is
    there already, in balance-rr, as loading the bonding driver leaves it: it gets the options asked for."""
    _needs_bonding()
    client, server = lan
    server.ip("link", "set", "s0", "down")
    client.ip("link", "add", "name", "bond0", "type", "bond")
    line = "bond=bond0:c0,c1:mode=active-backup,miimon=100:1400 ip=bond0:dhcp"
    status, doc, stderr = dhcp_over(server, "sb", workdir, line, client)
    assert status == 0, stderr
    (iface,) = doc["interfaces"]
    assert (iface["name"], iface["mtu"]) == ("bond0", 1400) and iface["addresses"][0].startswith("10.8.0.")
    data = _bond(client, "bond0")
    assert (data["mode"], data["miimon"], data["active_slave"]) == ("active-backup", 100, "c1")
    assert {link["ifname"]: link.get("master") for link in client.ip_json("link", "show")}.get("c0") == "bond0"
    assert client.ping("10.8.0.1")


def test_802_3ad_bond_with_its_options(lan, workdir):
    _needs_bonding()
    client, server = lan
    line = "bond=bond0:c0,c1:mode=802.3ad,miimon=100,lacp_rate=fast,xmit_hash_policy=layer3+4,updelay=0 ip=bond0:dhcp"
    status, doc, stderr = dhcp_over(server, "sb", workdir, line, client)
    assert status == 0, stderr
    data = _bond(client, "bond0")
    assert (data["mode"], data["ad_lacp_rate"], data["xmit_hash_policy"]) == ("802.3ad", "fast", "layer3+4")
    assert doc["interfaces"][0]["addresses"][0].startswith("10.8.0.")


def test_vlan_on_a_bond(lan, workdir):
    _needs_bonding()
    if reason := netns.vlan_unsupported():
        pytest.skip(reason)
    client, server = lan
    server.ip("link", "add", "link", "sb", "name", "sb.5", "type", "vlan", "id", "5")
    server.ip("link", "set", "sb.5", "up")
    server.ip("addr", "add", "10.8.5.1/24", "dev", "sb.5")
    cmd = netns.dnsmasq_cmd("sb.5", "--dhcp-range=10.8.5.100,10.8.5.150,255.255.255.0,2m", "--no-ping", workdir=workdir)
    line = "bond=bond0:c0,c1:mode=active-backup,miimon=100 vlan=bond0.5:bond0 ip=bond0.5:dhcp"
    with netns.server_process(server, cmd):
        status, doc, stderr = pyiscsi_net(client, line)
    assert status == 0, stderr
    (iface,) = doc["interfaces"]
    assert (iface["name"], iface["vlan"], iface["parent"]) == ("bond0.5", 5, "bond0")
    assert iface["addresses"][0].startswith("10.8.5.")
