"""root=dhcp / netroot=dhcp through the real pieces: `pyiscsi net` in a namespace takes a lease from dnsmasq that
carries option 17, and the boot's targets come from it (boot.orchestrate.dhcp_targets); and rd.iscsi.waitnet=0
ends the bring-up once an interface is ready while a slower one is still coming up."""

from __future__ import annotations

import threading

import netns
import pytest

from boot.net import bringup
from boot.net.state import InterfaceState
from boot.orchestrate import dhcp_targets
from boot.plan import BootPlan, InterfacePlan, Timeouts
from boot.planner import load_plan
from initiator.deadline import Deadline
from initiator.errors import CmdlineError, NetworkError

IQN = "iqn.2026-11.test:dhcproot"
RANGE = "--dhcp-range=10.9.0.100,10.9.0.150,255.255.255.0,2m"


@pytest.mark.netns
@pytest.mark.parametrize(
    ("root_path", "outcome"),
    [
        (f"iscsi:10.9.0.1::3261:2:{IQN}", (IQN, "10.9.0.1", 3261, 2)),
        (None, "no DHCP lease carried a root path (option 17) (c0)"),
        ("10.9.0.1:/srv/nfsroot", "is not an iscsi: root"),
    ],
)
def test_the_root_path_from_dnsmasq_becomes_the_target(linked, workdir, root_path, outcome):
    client, server = linked
    extra = [RANGE, "--no-ping"] + ([f"--dhcp-option=option:root-path,{root_path}"] if root_path else [])
    line = "netroot=dhcp ip=c0:dhcp rd.net.timeout.dhcp=15"
    with netns.server_process(server, netns.dnsmasq_cmd("s0", *extra, workdir=workdir)):
        status, document, stderr = netns.pyiscsi_net(client, line)
    assert status == 0, stderr
    (iface,) = document["interfaces"]
    assert iface["root_path"] == root_path and iface["warnings"] == []
    plan = load_plan(line, "none")
    states = tuple(InterfaceState.from_json(i) for i in document["interfaces"])
    if isinstance(outcome, tuple):
        (target,) = dhcp_targets(plan, states)
        assert (target.name, target.address, target.port, target.lun) == outcome
    else:
        with pytest.raises((NetworkError, CmdlineError)) as info:
            dhcp_targets(plan, states)
        assert outcome in str(info.value) and "\n" not in str(info.value)


def test_waitnet_0_returns_once_one_interface_is_enough(monkeypatch):
    """The fast interface is up, the slow one waits on an event no one sets until after bring_up returned."""
    release = threading.Event()

    def fake_bring_up_one(iplan, timeouts, deadline, **_kw):
        if iplan.name == "slow":
            release.wait(30)
        return InterfaceState(name=iplan.name, mac="52:54:00:00:00:01", method="dhcp"), None

    monkeypatch.setattr(bringup, "bring_up_one", fake_bring_up_one)
    plan = BootPlan(None, interfaces=(InterfacePlan(name="slow"), InterfacePlan(name="fast")), timeouts=Timeouts())
    try:
        states = bringup.bring_up(plan, Deadline("total", 60.0), enough=lambda up: any(s.name == "fast" for s in up))
        assert [s.name for s in states] == ["fast"]
    finally:
        release.set()


def test_waitnet_1_waits_for_every_interface(monkeypatch):
    order: list[str] = []

    def fake_bring_up_one(iplan, timeouts, deadline, **_kw):
        order.append(iplan.name)
        return InterfaceState(name=iplan.name, mac="52:54:00:00:00:01", method="dhcp"), None

    monkeypatch.setattr(bringup, "bring_up_one", fake_bring_up_one)
    plan = BootPlan(None, interfaces=(InterfacePlan(name="a"), InterfacePlan(name="b")), timeouts=Timeouts())
    assert [s.name for s in bringup.bring_up(plan, Deadline("total", 60.0))] == ["a", "b"]


def test_waitnet_0_never_satisfied_still_reports_every_interface(monkeypatch):
    def fake_bring_up_one(iplan, timeouts, deadline, **_kw):
        return InterfaceState(name=iplan.name, mac="52:54:00:00:00:01", method="dhcp"), None

    monkeypatch.setattr(bringup, "bring_up_one", fake_bring_up_one)
    plan = BootPlan(None, interfaces=(InterfacePlan(name="a"), InterfacePlan(name="b")), timeouts=Timeouts())
    states = bringup.bring_up(plan, Deadline("total", 60.0), enough=lambda up: False)
    assert [s.name for s in states] == ["a", "b"]


@pytest.mark.netns
def test_testroute_asks_the_kernels_routing_table(linked):
    """LiveSteps.has_route answers as `ip route get`: on-link and default-routed addresses yes, others no."""
    client, _server = linked
    client.ip("addr", "add", "10.9.0.7/24", "dev", "c0")
    client.ip("link", "set", "c0", "up")
    code = (
        "from boot.live import LiveSteps; s = LiveSteps(in_initramfs=False); "
        "print([s.has_route(a) for a in ('10.9.0.1', '192.0.2.1', 'fd00::1')])"
    )
    assert client.run(netns.PYTHON, "-c", code).stdout.split() == ["[True,", "False,", "False]"]
    client.ip("route", "add", "default", "via", "10.9.0.1")
    assert client.run(netns.PYTHON, "-c", code).stdout.split() == ["[True,", "True,", "False]"]
