"""boot.net.virtual against udev's coldplug, with fakes (tests/boot/net/fakelinks.py): ifname= renames and bond=
or bridge= members are matched only once udev has named the link, so that udev's own rename cannot take a name
away from a link we renamed or are enslaving (the real bonds and renames: test_virtual.py, in namespaces)."""

from __future__ import annotations

import re

import pytest
from fakelinks import FakeIPRoute, FakeMsg, udev_tree

from boot.net import virtual
from boot.net.waits import InterfaceWaitTimeout
from boot.plan import BondPlan, RenamePlan
from initiator.deadline import Deadline, FakeClock

MACS = ("52:54:00:00:00:02", "52:54:00:00:00:03")


def two_nics():
    return FakeIPRoute([FakeMsg(2, "eth0", MACS[0]), FakeMsg(3, "eth1", MACS[1], carrier=1)])


def udev_names_later(ipr, clock, root, names, after=0.3):
    """A sleep during which udev's coldplug runs: after `after` seconds it renames each link of `names` to its slot
    name and handles it, and handles a link made meanwhile (a bond) as it is. Records, for every netlink call,
    whether udev had handled the link it changes and the master it enslaves that link to."""
    seen = []
    calls = ipr.link

    def handled(index):
        return index is None or (root / "data" / f"n{index}").exists()

    def link(command, **kwargs):
        seen.append((kwargs, handled(kwargs.get("index")) and handled(kwargs.get("master"))))
        return calls(command, **kwargs)

    ipr.link = link

    def sleep(seconds):
        clock.advance(max(seconds, 0.01))
        if clock.now - 1000.0 >= after:
            for index, msg in ipr.msgs.items():
                if not handled(index) and (index in names or msg.attrs["IFLA_LINKINFO"]):
                    msg.attrs["IFLA_IFNAME"] = names.get(index, msg.attrs["IFLA_IFNAME"])
                    if msg.attrs["IFLA_LINKINFO"]:  # MACAddressPolicy=persistent, from this boot's machine-id
                        msg.attrs["IFLA_ADDRESS"] = f"7a:{index:02x}:{int(clock.now * 100) % 256:02x}:00:00:01"
                    (root / "data" / f"n{index}").write_text(f"E:ID_NET_NAME_SLOT={msg.attrs['IFLA_IFNAME']}\n")

    return sleep, seen


@pytest.mark.parametrize("udev_late", [False, True], ids=["udev-names-first", "udev-never-answers"])
def test_ifname_renames_only_after_udev_named_the_link(tmp_path, udev_late):
    """udev names eth1 ens3 a moment after we find it: our rename takes ens3 to nic1 once that is done, and
    nothing touches the link before. If udev never handles it, the rename goes ahead when 'udev' runs out, with
    the warning naming the link."""
    ipr, clock = two_nics(), FakeClock()
    root, proc = udev_tree(tmp_path)
    sleep, seen = udev_names_later(ipr, clock, root, {} if udev_late else {3: "ens3"})
    settle = virtual.udev_settle(ipr, Deadline("udev", 2, clock=clock), sleep, udev_root=root, proc=proc)
    link, warnings = virtual.rename(ipr, RenamePlan("nic1", MACS[1]), Deadline("iflink", 5, clock=clock), settle, sleep)
    assert link.name == "nic1" and link.up and ipr.msgs[3].attrs["IFLA_IFNAME"] == "nic1"
    assert [handled for _, handled in seen] == [not udev_late] * len(seen) and seen
    assert [w.split(": udev had not handled ")[1].split()[0] for w in warnings] == (["eth1"] if udev_late else [])


@pytest.mark.parametrize(
    ("slaves", "outcome"),
    [
        (("ens2", "ens3"), ["ens2", "ens3"]),  # the names udev gives: enslaved once it has given them
        (("eth0", "ens3"), ["ens3"]),  # eth0 is gone when udev is done: the bond is made over ens3, with a warning
        (("eth0", "eth1"), "none of its links appeared (eth0, eth1)"),  # both renamed away by udev
    ],
)
def test_bond_members_are_matched_after_udev_named_them(tmp_path, slaves, outcome):
    """bond= names its slaves as udev leaves them: a kernel name that udev is about to replace is not enslaved
    (udev would rename it while it is down to be enslaved), and no link, the bond included, is changed or enslaved
    to before udev handled it. The bond takes its first slave's MAC address, not the one udev gave it."""
    ipr, clock = two_nics(), FakeClock()
    root, proc = udev_tree(tmp_path)
    sleep, seen = udev_names_later(ipr, clock, root, {2: "ens2", 3: "ens3"})
    settle = virtual.udev_settle(ipr, Deadline("udev", 2, clock=clock), sleep, udev_root=root, proc=proc)
    plan = BondPlan("bond0", slaves, (("mode", "active-backup"),))
    if isinstance(outcome, str):
        with pytest.raises(InterfaceWaitTimeout, match=re.escape(f"bond0: wait 'iflink' ran out after 1s: {outcome}")):
            virtual.make_bond(ipr, plan, Deadline("iflink", 1, clock=clock), settle, sleep)
        assert seen == []
        return
    warnings = virtual.make_bond(ipr, plan, Deadline("iflink", 1, clock=clock), settle, sleep)
    bond = next(m for m in ipr.msgs.values() if m.attrs["IFLA_IFNAME"] == "bond0")
    enslaved = [m.attrs["IFLA_IFNAME"] for m in ipr.msgs.values() if m.attrs["IFLA_MASTER"] == bond["index"]]
    assert enslaved == outcome
    assert bond.attrs["IFLA_ADDRESS"] == ipr.msgs[2 if outcome[0] == "ens2" else 3].attrs["IFLA_ADDRESS"]
    enslaving = [handled for kwargs, handled in seen if "master" in kwargs]
    assert len(enslaving) == len(outcome) and all(handled for _, handled in seen)
    assert warnings == ([] if len(outcome) == 2 else ["bond0: eth0 did not appear; made over ens3"])
