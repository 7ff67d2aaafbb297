"""The bond options dracut's `bond=` passes through, as the kernel's netlink attributes (IFLA_BOND_*) want them.

dracut writes each `<name>=<value>` of bond= to /sys/class/net/<bond>/bonding/<name>, which takes a word or its
number; we create the bond over netlink instead (pyroute2's `bond_<name>` keywords, the same in 0.7 and 0.9), so
each word is turned into its number here. Pure: the command-line parser checks options with it, before anything is
touched, and boot.net.virtual hands the result to pyroute2.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping

from initiator.errors import CmdlineError
from initiator.record import record

# The kernel's names for the values of the enumerated options (Documentation/networking/bonding.rst).
WORDS: dict[str, tuple[str, ...]] = {
    "mode": ("balance-rr", "active-backup", "balance-xor", "broadcast", "802.3ad", "balance-tlb", "balance-alb"),
    "lacp_rate": ("slow", "fast"),
    "xmit_hash_policy": ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac"),
    "arp_validate": ("none", "active", "backup", "all", "filter", "filter_active", "filter_backup"),
    "arp_all_targets": ("any", "all"),
    "primary_reselect": ("always", "better", "failure"),
    "fail_over_mac": ("none", "active", "follow"),
    "ad_select": ("stable", "bandwidth", "count"),
}
INT_MAX = 2**31 - 1
# name -> (the pyroute2 keyword, the largest number it takes); the kernel holds these as ints
NUMBERS: dict[str, tuple[str, int]] = {
    "miimon": ("bond_miimon", INT_MAX),
    "updelay": ("bond_updelay", INT_MAX),
    "downdelay": ("bond_downdelay", INT_MAX),
    "arp_interval": ("bond_arp_interval", INT_MAX),
    "resend_igmp": ("bond_resend_igmp", 255),
    "num_grat_arp": ("bond_num_peer_notif", 255),
    "num_unsol_na": ("bond_num_peer_notif", 255),
    "all_slaves_active": ("bond_all_slaves_active", 1),
    "min_links": ("bond_min_links", INT_MAX),
    "lp_interval": ("bond_lp_interval", INT_MAX),
    "packets_per_slave": ("bond_packets_per_slave", 65535),
    "use_carrier": ("bond_use_carrier", 1),
    "tlb_dynamic_lb": ("bond_tlb_dynamic_lb", 1),
    "ad_actor_sys_prio": ("bond_ad_actor_sys_prio", 65535),
    "ad_user_port_key": ("bond_ad_user_port_key", 1023),
}
ENUM_KEYWORDS = {"lacp_rate": "bond_ad_lacp_rate"}  # the others are bond_<name>
OTHER = ("primary", "arp_ip_target")
KNOWN = (*WORDS, *NUMBERS, *OTHER)
MAX_ARP_TARGETS = 16  # BOND_MAX_ARP_TARGETS


@record
class BondOption:
    """One checked option: the pyroute2 keyword and its value (`primary` still a slave's name)."""

    name: str
    keyword: str
    value: int | str | tuple[str, ...]


def _fail(token: str, reason: str) -> CmdlineError:
    return CmdlineError("bond", token, reason)


def _enum(name: str, text: str, token: str) -> int:
    words = WORDS[name]
    if text in words:
        return words.index(text)
    if re.fullmatch(r"[0-9]{1,2}", text) and int(text) < len(words):
        return int(text)
    raise _fail(token, f"bond option {name}={text!r}: expected one of {', '.join(words)} (or 0-{len(words) - 1})")


def _number(name: str, text: str, token: str) -> int:
    top = NUMBERS[name][1]
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > top:
        raise _fail(token, f"bond option {name}={text!r}: expected a number 0-{top}")
    return int(text)


def _targets(text: str, token: str) -> tuple[str, ...]:
    parts = tuple(text.split(";"))
    if len(parts) > MAX_ARP_TARGETS:
        raise _fail(token, f"bond option arp_ip_target: at most {MAX_ARP_TARGETS} addresses")
    for part in parts:
        try:
            ipaddress.IPv4Address(part)
        except ValueError:
            raise _fail(token, f"bond option arp_ip_target: {part!r} is not an IPv4 address") from None
    return parts


def check_option(name: str, text: str, slaves: tuple[str, ...], token: str) -> BondOption:
    """One `<name>=<value>` of bond=, or a CmdlineError naming the option (an unknown one names the known)."""
    if name in WORDS:
        return BondOption(name, ENUM_KEYWORDS.get(name, f"bond_{name}"), _enum(name, text, token))
    if name in NUMBERS:
        return BondOption(name, NUMBERS[name][0], _number(name, text, token))
    if name == "primary":
        if text not in slaves:
            raise _fail(token, f"bond option primary={text!r}: not one of the slaves ({', '.join(slaves)})")
        return BondOption(name, "bond_primary", text)
    if name == "arp_ip_target":
        return BondOption(name, "bond_arp_ip_target", _targets(text, token))
    raise _fail(token, f"unknown bond option {name!r} (known: {', '.join(KNOWN)})")


def check_options(options: tuple[tuple[str, str], ...], slaves: tuple[str, ...], token: str) -> tuple[BondOption, ...]:
    checked = tuple(check_option(name, value, slaves, token) for name, value in options)
    names = [o.name for o in checked]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise _fail(token, f"bond option {twice} given twice")
    return checked


def netlink_options(
    options: tuple[tuple[str, str], ...], slaves: tuple[str, ...], index_of: Callable[[str], int], token: str = ""
) -> Mapping[str, object]:
    """The pyroute2 keywords for `IPRoute.link('add', kind='bond', ...)`; `index_of` turns primary's name into
    the slave's ifindex (the attribute is an index; the slave must exist by then)."""
    out: dict[str, object] = {}
    for option in check_options(options, slaves, token):
        value = option.value
        if option.name == "primary":
            value = index_of(str(value))
        elif option.name == "arp_ip_target":
            value = list(value)  # type: ignore[arg-type]
        out[option.keyword] = value
    return out


def mode_of(options: tuple[tuple[str, str], ...]) -> str:
    """The bond's mode as the kernel names it (dracut's default, balance-rr, when none is given)."""
    for name, value in options:
        if name == "mode":
            return WORDS["mode"][int(value)] if value.isdigit() else value
    return "balance-rr"


__all__ = ["KNOWN", "BondOption", "check_option", "check_options", "mode_of", "netlink_options"]
