from __future__ import annotations

import configparser

import pytest

from boot.keepnet import keep_network_files, networkd_unit, nm_keyfile, nm_uuid

DHCP = {
    "name": "eth0",
    "mac": "52:54:00:12:34:56",
    "method": "dhcp",
    "addresses": ["10.0.2.15/24"],
    "gateway": "10.0.2.2",
    "gateway6": None,
    "dns": ["10.0.2.3"],
}
STATIC6 = {
    "name": "eth1",
    "mac": None,
    "method": "static",
    "addresses": ["2001:db8::5/64", "192.0.2.5/24"],
    "gateway": "192.0.2.1",
    "gateway6": "2001:db8::1",
    "dns": ["2001:db8::53"],
}


def _ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


@pytest.mark.parametrize(
    ("iface", "keep", "present", "absent"),
    [
        # ClientIdentifier=mac: 01 + MAC, what pyiscsi's DHCPv4 client sent, so networkd renews the root's own lease
        (DHCP, "yes", ["DHCP=ipv4", "DNS=10.0.2.3", "ClientIdentifier=mac", "SendRelease=no"], ["Address="]),
        (STATIC6, "static", ["Address=2001:db8::5/64", "Gateway=2001:db8::1", "Gateway=192.0.2.1"], ["DHCP="]),
    ],
)
def test_networkd_keeps_configuration(iface, keep, present, absent):
    unit = networkd_unit(iface)
    assert f"KeepConfiguration={keep}" in unit.splitlines()
    assert f"Name={iface['name']}" in unit.splitlines()
    for line in present:
        assert line in unit
    for line in absent:
        assert line not in unit


def test_nm_keyfile_parses_and_matches_the_interface():
    dhcp = _ini(nm_keyfile(DHCP))
    assert dhcp["connection"]["interface-name"] == "eth0"
    assert dhcp["ipv4"]["method"] == "auto" and dhcp["ipv4"]["may-fail"] == "false"
    assert dhcp["ethernet"]["mac-address"] == "52:54:00:12:34:56"
    static = _ini(nm_keyfile(STATIC6))
    assert static["ipv4"]["address1"] == "192.0.2.5/24"
    assert static["ipv6"]["address1"] == "2001:db8::5/64" and static["ipv6"]["gateway"] == "2001:db8::1"


def test_files_and_modes():
    files = keep_network_files([DHCP])
    assert files["run/NetworkManager/system-connections/pyiscsi-eth0.nmconnection"][1] == 0o600
    assert files["run/initramfs/open-iscsi.interface"] == ("eth0\n", 0o644)
    assert "IPV4NETMASK='255.255.255.0'" in files["run/net-eth0.conf"][0]
    assert keep_network_files([]) == {}


def test_ifupdown_under_systemd_leaves_the_root_interfaces_up_at_shutdown():
    """Debian 12's ifupdown: ifup@<if>.service's ExecStop (ifdown) emptied, networking.service excluding them."""
    files = keep_network_files([DHCP, {**DHCP, "name": "ens3"}])
    for name in ("eth0", "ens3"):
        text, mode = files[f"run/systemd/system/ifup@{name}.service.d/50-pyiscsi.conf"]
        parser = configparser.ConfigParser(strict=False, interpolation=None, comment_prefixes=("#",))
        parser.read_string(text)
        assert parser["Service"]["ExecStop"] == "" and mode == 0o644
    text, _ = files["run/systemd/system/networking.service.d/50-pyiscsi.conf"]
    assert 'Environment="EXCLUDE_INTERFACES=eth0 ens3"' in text.splitlines()


@pytest.mark.parametrize("bad", ["eth0\n[Match]", "", "x" * 16, "../etc"])
def test_hostile_interface_names_are_refused(bad):
    with pytest.raises(ValueError, match="interface name"):
        keep_network_files([{**DHCP, "name": bad}])


def test_networkd_identifies_itself_as_pyiscsi_did():
    """networkd's `ClientIdentifier=mac` sends 01 + the link's MAC (RFC 2132's hardware type 1): exactly the
    option 61 pyiscsi's DHCPv4 client sent, so the server sees one client and one lease for the root."""
    import random

    from boot.net.dhcp4 import Dhcp4Client, Dhcp4Option, decode_message

    mac = bytes.fromhex("525400123456")
    discover = decode_message(Dhcp4Client(mac, rng=random.Random(1)).start(0.0))
    assert discover.options[Dhcp4Option.CLIENT_ID] == b"\x01" + mac
    assert "ClientIdentifier=mac" in networkd_unit(DHCP).splitlines()


def test_nm_takes_the_link_over_as_pyiscsis_profile():
    """NetworkManager's run state for the link names the keyfile's UUID (the same at every boot), so NM runs that
    profile on the configured link, DHCP and all, with the client identifier pyiscsi's lease was taken with."""
    files = keep_network_files([DHCP], {"eth0": 3})
    profile = _ini(files["run/NetworkManager/system-connections/pyiscsi-eth0.nmconnection"][0])
    state = _ini(files["run/NetworkManager/devices/3"][0])
    assert state["device"]["managed"] == "true"
    assert state["device"]["connection-uuid"] == profile["connection"]["uuid"] == nm_uuid("eth0")
    assert nm_uuid("eth0") != nm_uuid("ens3") and nm_uuid("eth0") == nm_uuid("eth0")
    assert profile["ipv4"]["dhcp-client-id"] == "mac"
    assert files["run/NetworkManager/devices/3"][1] == 0o644
    assert "run/NetworkManager/devices/3" not in keep_network_files([DHCP])
