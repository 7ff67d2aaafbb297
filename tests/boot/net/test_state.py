from __future__ import annotations

import json

import pytest

from boot.keepnet import networkd_unit
from boot.net.state import InterfaceState, LeaseInfo, net_json, read_state_file, write_state_file
from initiator.errors import BadInputError

CONTRACT_KEYS = ["name", "mac", "method", "addresses", "gateway", "gateway6", "dns", "seconds"]

DHCP = InterfaceState(
    name="eth0",
    mac="52:54:00:12:34:56",
    method="dhcp",
    addresses=("10.0.2.15/24",),
    gateway="10.0.2.2",
    dns=("10.0.2.3",),
    seconds=1.23456,
    mtu=1500,
    lease=LeaseInfo(server="10.0.2.2", lease_time=86400, obtained_at=1.7e9, renewal_time=43200),
    warnings=("option 3 (router) 224.0.0.1 dropped: a multicast address",),
)
STATIC6 = InterfaceState(
    name="eth1.42",
    mac="52:54:00:12:34:57",
    method="static",
    addresses=("2001:db8::5/64",),
    gateway6="2001:db8::1",
    vlan=42,
    parent="eth1",
)


def test_net_json_has_the_contract_keys_first_and_no_missing_values():
    document = net_json([DHCP, STATIC6])
    for item in document["interfaces"]:
        assert list(item)[: len(CONTRACT_KEYS)] == CONTRACT_KEYS
    assert document["interfaces"][0]["seconds"] == 1.235
    assert document["interfaces"][1]["gateway"] is None and document["interfaces"][1]["lease"] is None
    assert document["interfaces"][0]["warnings"] == list(DHCP.warnings) and document["interfaces"][1]["warnings"] == []
    json.dumps(document)  # plain JSON all the way down


@pytest.mark.parametrize("state", [DHCP, STATIC6], ids=["dhcp", "static6-vlan"])
def test_state_file_round_trip(tmp_path, state):
    path = write_state_file([state], tmp_path / "run" / "net.json")
    (back,) = read_state_file(path)
    assert back == InterfaceState.from_json(state.to_json())
    assert back.lease == state.lease and back.addresses == state.addresses and back.warnings == state.warnings


def test_state_file_feeds_keepnet(tmp_path):
    path = write_state_file([DHCP], tmp_path / "net.json")
    unit = networkd_unit(json.loads(path.read_text())["interfaces"][0])
    assert "Name=eth0" in unit and "KeepConfiguration=yes" in unit


@pytest.mark.parametrize(
    "text",
    ['{"version": 99, "interfaces": []}', "not json", '{"version": 1}', '{"version": 1, "interfaces": [{}]}', "[]"],
    ids=["future-version", "not-json", "no-interfaces", "empty-record", "a-list"],
)
def test_damaged_state_file_is_bad_input_naming_the_file(tmp_path, text):
    path = tmp_path / "net.json"
    path.write_text(text)
    with pytest.raises(BadInputError, match=str(path)):
        read_state_file(path)
