"""Link selection and waits, against a fake netlink handle and a FakeClock (the real kernel: test_bringup.py)."""

from __future__ import annotations

import pytest
from fakelinks import FakeIPRoute, FakeMsg, machine, sleeper, udev_tree

from boot.net import links
from boot.net.waits import InterfaceWaitTimeout
from initiator.deadline import Deadline, FakeClock


@pytest.mark.parametrize(
    ("name", "mac", "found"),
    [
        ("eth1", None, "eth1"),
        (None, "52:54:00:00:00:03", "eth1"),  # the VLAN on top shares the MAC but is never chosen
        (None, "52:54:00:00:00:02".upper(), "dead0"),
        ("eth1", "52:54:00:00:00:03", "eth1"),
    ],
    ids=["name", "mac-skips-vlan", "mac-any-case", "both"],
)
def test_find_link(name, mac, found):
    clock = FakeClock()
    assert links.find_link(machine(), name=name, mac=mac, deadline=Deadline("iflink", 1, clock=clock)).name == found


@pytest.mark.parametrize(
    ("name", "mac", "message"),
    [
        ("eth9", None, "eth9: wait 'iflink' ran out after 3s: no link named eth9"),
        (None, "52:54:00:00:00:99", "52:54:00:00:00:99: wait 'iflink' ran out after 3s: no link with MAC"),
        ("dead0", "52:54:00:00:00:03", "dead0: wait 'iflink' ran out after 3s: no link named dead0 with MAC"),
        ("e\x1b[2J", None, "e\\x1b[2J: wait 'iflink' ran out after 3s: no link named e\\x1b[2J"),  # escaped
    ],
    ids=["no-name", "no-mac", "name-and-mac-disagree", "control-characters"],
)
def test_find_link_waits_its_bound_then_names_it(name, mac, message):
    clock = FakeClock()
    with pytest.raises(InterfaceWaitTimeout) as caught:
        links.find_link(
            machine(), name=name, mac=mac, deadline=Deadline("iflink", 3, clock=clock), sleep=sleeper(clock)
        )
    assert str(caught.value).startswith(message) and "\x1b" not in str(caught.value)
    assert 3 <= clock.now - 1000 <= 3.1  # waited the bound, and not much more


def test_link_that_appears_late_is_found():
    clock = FakeClock()
    ipr = machine()

    def sleep(seconds):
        clock.advance(seconds)
        if clock.now - 1000 > 0.5:
            ipr.msgs[9] = FakeMsg(9, "late0", "52:54:00:00:00:09")

    link = links.find_link(ipr, name="late0", mac=None, deadline=Deadline("iflink", 2, clock=clock), sleep=sleep)
    assert link.index == 9


def test_carrier_wait_is_bounded():
    clock = FakeClock()
    ipr = machine()
    dead = links.set_up(ipr, links.get_link(ipr, 2))
    with pytest.raises(InterfaceWaitTimeout, match=r"^dead0: wait 'carrier' ran out after 2s: no carrier"):
        links.wait_carrier(ipr, dead, Deadline("carrier", 2, clock=clock), sleep=sleeper(clock))


@pytest.mark.parametrize(
    ("kind", "members", "said"),
    [
        ("bond", [("nic0", True, 0), ("nic1", False, 0)], "its slaves: nic0 up, no carrier; nic1 down, no carrier"),
        ("bond", [("nic0", True, 1)], "its slaves: nic0 up"),
        ("bond", [], "its slaves: none"),
        ("bridge", [("p\x1b0", True, 0)], "its ports: p\\x1b0 up, no carrier"),
    ],
)
def test_a_master_without_carrier_names_the_state_of_its_members(kind, members, said):
    """A bond or bridge that never gets carrier: the one line says which slave or port is down or dark."""
    clock = FakeClock()
    master = FakeMsg(10, "m0", "52:54:00:00:00:10", kind=kind, up=True)
    msgs = [master] + [
        FakeMsg(11 + i, name, f"52:54:00:00:00:{11 + i}", up=up, carrier=carrier, master=10)
        for i, (name, up, carrier) in enumerate(members)
    ]
    ipr = FakeIPRoute([*msgs, FakeMsg(20, "other0", "52:54:00:00:00:20", up=True)])
    with pytest.raises(InterfaceWaitTimeout) as caught:
        links.wait_carrier(ipr, links.get_link(ipr, 10), Deadline("carrier", 1, clock=clock), sleep=sleeper(clock))
    assert str(caught.value) == f"m0: wait 'carrier' ran out after 1s: no carrier; {said}"


def test_any_link_takes_the_first_with_carrier_and_sets_the_rest_back_down():
    clock = FakeClock()
    ipr = machine()
    chosen = links.first_with_carrier(ipr, Deadline("carrier", 2, clock=clock), sleep=sleeper(clock))
    assert chosen.name == "eth1"
    assert not ipr.msgs[2]["flags"] & 1 and ipr.msgs[3]["flags"] & 1
    assert ("set", {"index": 4, "state": "up"}) not in ipr.calls  # stacked links are not candidates


def test_set_up_sets_mtu_then_up():
    ipr = machine()
    link = links.set_up(ipr, links.get_link(ipr, 3), mtu=9000)
    assert ipr.calls == [("set", {"index": 3, "mtu": 9000}), ("set", {"index": 3, "state": "up"})]
    assert link.mtu == 9000 and link.up


@pytest.mark.parametrize(
    ("parent", "vid", "name"),
    [("eth0", 100, "eth0.100"), ("enp0s31f6", 4094, "enp0s31f6.4094"), ("enx0123456789ab", 5, "vlan0005")],
)
def test_vlan_name(parent, vid, name):
    assert links.vlan_name(parent, vid) == name


@pytest.mark.parametrize("kernel_says_renamed", [True, False], ids=["sysfs-renamed", "no-sysfs"])
def test_after_udev_returns_the_link_under_the_name_udev_gave_it(tmp_path, kernel_says_renamed):
    """udev writes its entry (renaming), renames eth1 to ens3, then handles the move: the link comes back
    renamed, still down, without a warning, and nothing was set up meanwhile. Where sysfs says the name came
    from a rename, the wait ends at the rename, not at the move's entry (which waits in udev's queue)."""
    ipr, clock = machine(), FakeClock()
    root, proc = udev_tree(tmp_path)
    sys_net = tmp_path / "sys-class-net"
    sys_net.mkdir()
    eth1 = links.find_link(ipr, name=None, mac="52:54:00:00:00:03", deadline=Deadline("iflink", 1, clock=clock))
    steps = iter(["E:ID_RENAMING=1\n", None, "E:ID_NET_NAME_SLOT=ens3\n"])
    looks = []

    def sleep(seconds):
        clock.advance(max(seconds, 0.01))
        looks.append(clock.now)
        step = next(steps, "E:ID_NET_NAME_SLOT=ens3\n")
        if step is None:
            ipr.msgs[3].attrs["IFLA_IFNAME"] = "ens3"
            if kernel_says_renamed:
                (sys_net / "ens3").mkdir()
                (sys_net / "ens3" / "ifindex").write_text("3\n")
                (sys_net / "ens3" / "name_assign_type").write_text("4\n")
        else:
            (root / "data" / "n3").write_text(step)

    found, warnings = links.after_udev(
        ipr, [eth1], Deadline("udev", 5, clock=clock), sleep, udev_root=root, proc=proc, sys_net=sys_net
    )
    assert ([link.name for link in found], warnings, found[0].up) == (["ens3"], [], False)
    assert ipr.calls == []
    assert len(looks) == (2 if kernel_says_renamed else 3)


@pytest.mark.parametrize(
    ("handled", "bound", "warned"),
    [((2, 3), 2, []), ((3,), 2, ["dead0"]), ((), 0, ["dead0", "eth1"])],
    ids=["all-handled", "one-late", "none-zero-bound"],
)
def test_after_udev_warns_once_per_late_link_naming_it_and_the_wait(tmp_path, handled, bound, warned):
    ipr, clock = machine(), FakeClock()
    root, proc = udev_tree(tmp_path, handled)
    found = [links.get_link(ipr, 2), links.get_link(ipr, 3)]
    _, warnings = links.after_udev(
        ipr, found, Deadline("udev", bound, clock=clock), sleeper(clock), udev_root=root, proc=proc
    )
    assert len(warnings) == len(warned)
    for name, line in zip(warned, warnings, strict=True):
        assert line.startswith(f"wait 'udev' ran out after {bound:g}s: udev had not handled {name} ")
        assert "\n" not in line
    assert clock.now - 1000.0 <= bound + links.POLL


@pytest.mark.parametrize(("appears_after", "found"), [(None, []), (0.0, ["eth1"]), (0.4, ["eth1"])])
def test_wait_candidates_waits_for_a_nic_driver_to_load(appears_after, found):
    """With udev still loading drivers, an 'any' plan waits (under 'iflink') for an Ethernet link to exist."""
    clock = FakeClock()
    ipr = FakeIPRoute([FakeMsg(1, "lo", "00:00:00:00:00:00", ifi_type=772, up=True, carrier=1)])

    def sleep(seconds):
        clock.advance(max(seconds, 0.01))
        if appears_after is not None and clock.now - 1000.0 >= appears_after:
            ipr.msgs[3] = FakeMsg(3, "eth1", "52:54:00:00:00:03")

    if appears_after == 0.0:
        ipr.msgs[3] = FakeMsg(3, "eth1", "52:54:00:00:00:03")
    got = links.wait_candidates(ipr, Deadline("iflink", 1, clock=clock), sleep)
    assert [link.name for link in got] == found
    assert clock.now - 1000.0 <= 1 + links.POLL


@pytest.mark.parametrize(
    ("second_handled", "warned"), [(True, []), (False, ["eth2"])], ids=["both-handled", "second-late"]
)
def test_candidates_after_udev_waits_also_for_a_nic_that_appeared_meanwhile(tmp_path, second_handled, warned):
    """eth1 exists, udev handles it; meanwhile eth2 appears: it is waited for too, and nothing is set up."""
    clock = FakeClock()
    ipr = FakeIPRoute([FakeMsg(1, "lo", "00:00:00:00:00:00", ifi_type=772, up=True, carrier=1),
                       FakeMsg(3, "eth1", "52:54:00:00:00:03")])  # fmt: skip
    root, proc = udev_tree(tmp_path)

    def sleep(seconds):
        clock.advance(max(seconds, 0.01))
        if 5 not in ipr.msgs:
            ipr.msgs[5] = FakeMsg(5, "eth2", "52:54:00:00:00:05")
            (root / "data" / "n3").write_text("")
        elif second_handled:
            (root / "data" / "n5").write_text("")

    warnings = links.candidates_after_udev(
        ipr, Deadline("iflink", 5, clock=clock), Deadline("udev", 2, clock=clock), sleep, udev_root=root, proc=proc
    )
    assert [line.split("udev had not handled ")[1].split()[0] for line in warnings] == warned
    assert ipr.calls == []
    assert clock.now - 1000.0 <= 2 + links.POLL
