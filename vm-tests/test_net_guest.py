"""Namespace bring-up tests that need what the host kernel here lacks (8021q), run inside the lab VM's kernel."""

from __future__ import annotations

import pytest

from harness.lab import run_in_lab
from harness.paths import REPO

pytestmark = pytest.mark.vm

GUEST_BOUND = 300.0  # pytest's start-up over 9p under TCG dominates; an idle run takes about a minute


def test_vlan_bring_up_passes_in_the_guest_kernel(pinned_kernel):
    """tests/boot/net's VLAN case (dnsmasq on the VLAN of a veth pair) against the pinned Debian kernel."""
    argv = [
        "sh",
        "-c",
        'modprobe veth && modprobe 8021q && exec "$@"',
        "sh",
        str(REPO / ".venv/bin/python"),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-rA",
        "tests/boot/net/test_bringup.py",
        "-k",
        "vlan",
    ]
    result = run_in_lab(argv, bound=GUEST_BOUND)
    assert result.status == 0, result.stdout[-3000:] + result.stderr[-2000:] + result.console.summary()
    assert "PASSED tests/boot/net/test_bringup.py::test_vlan_dhcp" in result.stdout
