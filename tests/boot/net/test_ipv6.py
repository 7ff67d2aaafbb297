from __future__ import annotations

import ipaddress

import pytest

from boot.net import ipv6
from boot.net.waits import InterfaceError


@pytest.mark.parametrize(
    ("slaac", "expected"),
    [(False, {"disable_ipv6": "0"}), (True, {"disable_ipv6": "0", "accept_ra": "2", "autoconf": "1"})],
    ids=["static", "slaac"],
)
def test_prepare_writes_the_settings(tmp_path, slaac, expected):
    (tmp_path / "eth0").mkdir()
    for key in ("disable_ipv6", "accept_ra", "autoconf"):
        (tmp_path / "eth0" / key).write_text("untouched")
    ipv6.prepare("eth0", slaac=slaac, root=str(tmp_path))
    got = {p.name: p.read_text() for p in (tmp_path / "eth0").iterdir() if p.read_text() != "untouched"}
    assert got == expected


def test_missing_ipv6_stack_names_the_link_and_the_setting(tmp_path):
    with pytest.raises(InterfaceError, match=r"^eth0: cannot set disable_ipv6=0"):
        ipv6.prepare("eth0", slaac=False, root=str(tmp_path))


@pytest.mark.parametrize(
    ("flags", "tentative", "failed"), [(0x80, False, False), (0xC0, True, False), (0xC8, True, True)]
)
def test_address_flags(flags, tentative, failed):
    addr = ipv6.Addr6(ipaddress.IPv6Interface("2001:db8::1/64"), flags, 0)
    assert (addr.tentative, addr.dad_failed) == (tentative, failed)


@pytest.mark.parametrize(
    ("address", "scope", "routable"),
    [("2001:db8::5/64", 0, True), ("fec0::5054:ff:fe12:3456/64", 200, True), ("fe80::1/64", 253, False),
     ("::1/128", 254, False)],
)  # fmt: skip
def test_site_local_counts_as_a_slaac_address(address, scope, routable):
    """QEMU's user network gives fec0::/64, which the kernel scopes `site`: the VM boot waited 40 s for a
    'global address' it already had."""
    assert ipv6.Addr6(ipaddress.IPv6Interface(address), 0, scope).routable is routable
