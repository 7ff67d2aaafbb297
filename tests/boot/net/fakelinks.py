"""Fakes of the link layer for the unit tests of boot.net.links and boot.net.virtual: pyroute2-shaped link
messages, a netlink handle that records and applies what it is asked, and a fake /run/udev and /proc."""

from __future__ import annotations

import os

from initiator.deadline import FakeClock


class FakeNla(dict):
    get_attr = dict.get


class FakeMsg(dict):
    """Enough of pyroute2's ifinfmsg: item access for header fields, get_attr() for attributes."""

    def __init__(self, index, name, mac, *, kind=None, carrier=0, up=False, ifi_type=1, mtu=1500, master=0):
        super().__init__(index=index, flags=1 if up else 0, ifi_type=ifi_type)
        self.attrs = {
            "IFLA_IFNAME": name,
            "IFLA_ADDRESS": mac,
            "IFLA_MTU": mtu,
            "IFLA_CARRIER": carrier,
            "IFLA_LINKINFO": FakeNla(IFLA_INFO_KIND=kind) if kind else None,
            "IFLA_MASTER": master,
        }

    def get_attr(self, key, default=None):
        return self.attrs.get(key, default)


class FakeIPRoute:
    def __init__(self, msgs):
        self.msgs = {m["index"]: m for m in msgs}
        self.calls = []

    def get_links(self, *indexes):
        return [self.msgs[i] for i in indexes] if indexes else list(self.msgs.values())

    def link(self, command, **kwargs):
        self.calls.append((command, kwargs))
        if command == "add":  # a bond or bridge: its options are not kept
            index = max(self.msgs) + 1
            self.msgs[index] = FakeMsg(index, kwargs["ifname"], "52:54:00:00:00:ff", kind=kwargs["kind"])
            return
        msg = self.msgs[kwargs["index"]]
        if "ifname" in kwargs:
            msg.attrs["IFLA_IFNAME"] = kwargs["ifname"]
        if "master" in kwargs:
            msg.attrs["IFLA_MASTER"] = kwargs["master"]
        if "address" in kwargs:
            msg.attrs["IFLA_ADDRESS"] = kwargs["address"]
        if kwargs.get("state") == "up":
            msg["flags"] |= 1
            msg.attrs["IFLA_CARRIER"] = 1 if msg.attrs["IFLA_IFNAME"] != "dead0" else 0
        if kwargs.get("state") == "down":
            msg["flags"] &= ~1
        if "mtu" in kwargs:
            msg.attrs["IFLA_MTU"] = kwargs["mtu"]


def machine():
    return FakeIPRoute(
        [
            FakeMsg(1, "lo", "00:00:00:00:00:00", ifi_type=772, up=True, carrier=1),
            FakeMsg(2, "dead0", "52:54:00:00:00:02"),
            FakeMsg(3, "eth1", "52:54:00:00:00:03"),
            FakeMsg(4, "eth1.7", "52:54:00:00:00:03", kind="vlan"),
        ]
    )


def sleeper(clock: FakeClock):
    return lambda seconds: clock.advance(max(seconds, 0.01))


def udev_tree(tmp_path, handled=()):
    """A fake /run/udev with udevd running, and a /proc whose self and 1 share one network namespace."""
    root, proc = tmp_path / "udev", tmp_path / "proc"
    (root / "data").mkdir(parents=True)
    (root / "control").write_text("")
    for index in handled:
        (root / "data" / f"n{index}").write_text("E:ID_NET_NAME_SLOT=ens2\n")
    for pid in ("self", "1"):
        (proc / pid / "ns").mkdir(parents=True)
    (proc / "self" / "ns" / "net").write_text("")
    os.link(proc / "self" / "ns" / "net", proc / "1" / "ns" / "net")
    return root, proc
