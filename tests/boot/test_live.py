"""boot.live: where a discovered target is logged in to (the parts that need no kernel)."""

from __future__ import annotations

import pytest

from boot.live import usable_portal
from initiator.portal import Portal

ASKED = ("10.0.2.2", 3260)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        # tgtd on the host's 127.0.0.1, reached by a VM as 10.0.2.2: the first discovery boot logged in to
        # 127.0.0.1 and got `connection refused` until the login bound ran out
        ([Portal("127.0.0.1", 3260)], ASKED),
        ([Portal("127.0.0.1", 40000)], ASKED),
        ([Portal("::1", 3260)], ASKED),
        ([Portal("0.0.0.0", 3260)], ASKED),
        ([], ASKED),
        (None, ASKED),
        ([Portal("192.0.2.9", 3261)], ("192.0.2.9", 3261)),  # a real other portal is followed
        ([Portal("192.0.2.9", 3261), Portal("10.0.2.2", 3260)], ASKED),  # the one we asked, when listed
        ([Portal("127.0.0.1", 3260), Portal("192.0.2.9", 3260)], ("192.0.2.9", 3260)),
    ],
)
def test_usable_portal(reported, expected) -> None:
    assert usable_portal(reported, *ASKED) == expected


def test_loopback_is_kept_when_we_asked_loopback() -> None:
    assert usable_portal([Portal("127.0.0.1", 3261)], "127.0.0.1", 3260) == ("127.0.0.1", 3261)
