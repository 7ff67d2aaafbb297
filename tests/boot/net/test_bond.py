"""boot.net.bond: dracut's bond option words to the kernel's IFLA_BOND_* numbers (pyroute2's bond_* keywords)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boot.net.bond import KNOWN, check_option, mode_of, netlink_options
from initiator.errors import CmdlineError

SLAVES = ("eth0", "eth1")
INDEX = {"eth0": 2, "eth1": 3}


@pytest.mark.parametrize(
    ("options", "kwargs"),
    [
        ((("mode", "balance-rr"),), {"bond_mode": 0}),
        ((("mode", "active-backup"), ("miimon", "100"), ("primary", "eth1")),
         {"bond_mode": 1, "bond_miimon": 100, "bond_primary": 3}),
        ((("mode", "802.3ad"), ("lacp_rate", "fast"), ("xmit_hash_policy", "layer3+4"), ("ad_select", "count")),
         {"bond_mode": 4, "bond_ad_lacp_rate": 1, "bond_xmit_hash_policy": 1, "bond_ad_select": 2}),
        ((("mode", "4"), ("lacp_rate", "0")), {"bond_mode": 4, "bond_ad_lacp_rate": 0}),
        ((("updelay", "200"), ("downdelay", "400"), ("min_links", "1")),
         {"bond_updelay": 200, "bond_downdelay": 400, "bond_min_links": 1}),
        ((("arp_interval", "250"), ("arp_ip_target", "10.0.0.1;10.0.0.2"), ("arp_validate", "all"),
          ("arp_all_targets", "all")),
         {"bond_arp_interval": 250, "bond_arp_ip_target": ["10.0.0.1", "10.0.0.2"], "bond_arp_validate": 3,
          "bond_arp_all_targets": 1}),
        ((("fail_over_mac", "active"), ("primary_reselect", "failure"), ("num_grat_arp", "3")),
         {"bond_fail_over_mac": 1, "bond_primary_reselect": 2, "bond_num_peer_notif": 3}),
        ((), {}),
    ],
)  # fmt: skip
def test_options_become_netlink_keywords(options, kwargs):
    assert netlink_options(options, SLAVES, INDEX.__getitem__) == kwargs


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("mode", "active_backup", "bond option mode='active_backup': expected one of balance-rr, active-backup"),
        ("miimon", "1e3", "bond option miimon='1e3': expected a number 0-2147483647"),
        ("use_carrier", "2", "bond option use_carrier='2': expected a number 0-1"),
        ("primary", "eth9", "bond option primary='eth9': not one of the slaves (eth0, eth1)"),
        ("arp_ip_target", ";".join(["10.0.0.1"] * 17), "at most 16 addresses"),
        ("max_bonds", "2", "unknown bond option 'max_bonds' (known: mode,"),
    ],
)
def test_bad_options_name_the_option(name, value, reason):
    with pytest.raises(CmdlineError) as caught:
        check_option(name, value, SLAVES, "bond=bond0:eth0,eth1:x")
    assert caught.value.field == "bond" and reason in str(caught.value) and "\n" not in str(caught.value)


@given(st.sampled_from(KNOWN), st.text(max_size=20))
def test_any_value_is_an_option_or_one_error(name, value):
    try:
        check_option(name, value, SLAVES, "bond=x")
    except CmdlineError as exc:
        assert exc.field == "bond" and "\n" not in str(exc).replace(repr(value), "")


@pytest.mark.parametrize(
    ("options", "mode"), [((), "balance-rr"), ((("mode", "1"),), "active-backup"), ((("mode", "802.3ad"),), "802.3ad")]
)
def test_mode_of(options, mode):
    assert mode_of(options) == mode
