"""boot.net.link_events: a link wait sleeps on the kernel's link messages (in a namespace of its own)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from boot.net import link_events, links
from boot.net.waits import InterfaceWaitTimeout
from initiator.deadline import Deadline, FakeClock

REPO = Path(__file__).resolve().parents[3]

# In the namespace: quiet, then a link made by `ip` (what udev's rename or a new NIC sends) ends the sleep early,
# then a flood of changes is drained in one wake-up and the next sleep is quiet again.
IN_NAMESPACE = """
import json, subprocess, sys
sys.path.insert(0, sys.argv[1])
from boot.net.link_events import LinkEvents
seen = {}
with LinkEvents() as events:
    seen["quiet"] = events(0.2)
    subprocess.run(["ip", "link", "add", "name", "ev0", "type", "veth", "peer", "name", "ev1"], check=True)
    seen["new link"] = events(60.0)
    subprocess.run(["ip", "link", "set", "ev0", "name", "ev2"], check=True)
    seen["rename"] = events(60.0)
    for _ in range(20):
        subprocess.run(["ip", "link", "set", "ev2", "mtu", str(1400 + _)], check=True)
    seen["flood"] = events(60.0)
    seen["after the flood"] = events(0.2)
print(json.dumps(seen))
"""


def test_a_link_message_ends_the_sleep(ns_pair) -> None:  # type: ignore[no-untyped-def]
    client, _server = ns_pair
    done = client.run(sys.executable, "-c", IN_NAMESPACE, str(REPO), timeout=120)
    assert json.loads(done.stdout) == {
        "quiet": False, "new link": True, "rename": True, "flood": True, "after the flood": False,
    }  # fmt: skip


def test_the_real_clock_gets_link_messages_a_fake_clock_its_own_sleep() -> None:
    with link_events.link_waits(time.sleep) as sleep:
        assert isinstance(sleep, link_events.LinkEvents)
        assert sleep(0) is False  # nothing to wait for: no select at all

    def fake(seconds: float) -> None:
        pass

    with link_events.link_waits(fake) as sleep:
        assert sleep is fake


def test_no_netlink_socket_falls_back_to_the_plain_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(link_events, "LinkEvents", refused)
    with link_events.link_waits(time.sleep) as sleep:
        assert sleep is time.sleep


class PeriodSleep:
    """A sleep that wakes on link messages itself: the waits sleep its period, never past their deadline."""

    period = 0.5

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(round(seconds, 3))
        self.clock.now += seconds


@pytest.mark.parametrize(("bound", "asked"), [(2.0, [0.5, 0.5, 0.5, 0.5]), (0.7, [0.5, 0.2])])
def test_a_wait_sleeps_the_period_of_a_sleep_that_wakes_on_messages(bound: float, asked: list[float]) -> None:
    clock = FakeClock(1000.0)
    sleep = PeriodSleep(clock)
    deadline = Deadline("iflink", bound, clock=clock)
    with pytest.raises(InterfaceWaitTimeout):
        links.find_link(FakeIpr(), name="ens3", mac=None, deadline=deadline, sleep=sleep)
    assert sleep.asked == asked


class FakeIpr:
    def get_links(self, *index: int) -> list[object]:
        return []
