from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boot.paths import MULTIPATH_REPLACEMENT, group_paths, plan_notes, replacement_for
from boot.plan import BootPlan, TargetPlan, Timeouts
from initiator.record import replace

R = "iqn.2026-11.test:root"
D = "iqn.2026-11.test:data"


def t(name: str | None, address: str, port: int = 3260, lun: int = 1) -> TargetPlan:
    return TargetPlan(name=name, address=address, port=port, lun=lun)


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        ([], []),
        ([t(R, "10.0.0.1")], [(R, 1, ["10.0.0.1:3260"])]),
        # one name and LUN at two portals: two paths of one LUN
        ([t(R, "10.0.0.1"), t(R, "10.0.1.1")], [(R, 1, ["10.0.0.1:3260", "10.0.1.1:3260"])]),
        ([t(R, "10.0.0.1"), t(R, "10.0.0.1", 3261)], [(R, 1, ["10.0.0.1:3260", "10.0.0.1:3261"])]),
        ([t(R, "10.0.0.1"), t(R, "fd00::1")], [(R, 1, ["10.0.0.1:3260", "[fd00::1]:3260"])]),
        # another LUN of the same target, or another target: another LUN
        ([t(R, "10.0.0.1"), t(R, "10.0.1.1", lun=2)], [(R, 1, ["10.0.0.1:3260"]), (R, 2, ["10.0.1.1:3260"])]),
        ([t(R, "10.0.0.1"), t(D, "10.0.1.1")], [(R, 1, ["10.0.0.1:3260"]), (D, 1, ["10.0.1.1:3260"])]),
        # the order of first appearance; paths in plan order
        (
            [t(D, "10.0.0.1"), t(R, "10.0.0.2"), t(D, "10.0.0.3")],
            [(D, 1, ["10.0.0.1:3260", "10.0.0.3:3260"]), (R, 1, ["10.0.0.2:3260"])],
        ),
        # the same target at the same portal twice: one path
        ([t(R, "10.0.0.1"), t(R, "10.0.0.1")], [(R, 1, ["10.0.0.1:3260"])]),
        # discovery entries: not named yet, never paths of anything
        ([t(None, "10.0.0.1"), t(None, "10.0.1.1")], [(None, 1, ["10.0.0.1:3260"]), (None, 1, ["10.0.1.1:3260"])]),
        ([t(R, "10.0.0.1"), t(None, "10.0.0.1")], [(R, 1, ["10.0.0.1:3260"]), (None, 1, ["10.0.0.1:3260"])]),
    ],
)
def test_grouping(targets, expected):
    assert [(lun.name, lun.lun, list(lun.portals())) for lun in group_paths(targets)] == expected


names = st.sampled_from([R, D, None])
targets = st.builds(t, names, st.sampled_from(["10.0.0.1", "10.0.0.2", "fd00::1"]), st.sampled_from([3260, 3261]),
                    st.integers(0, 2))  # fmt: skip


@given(st.lists(targets, max_size=8))
def test_every_target_is_in_exactly_one_lun_once_per_portal(given_targets):
    luns = group_paths(given_targets)
    for target in given_targets:
        holding = [lun for lun in luns if any((p.address, p.port) == (target.address, target.port) for p in lun.paths)
                   and lun.name == target.name and lun.lun == target.lun]  # fmt: skip
        assert len(holding) == 1
    for lun in luns:
        assert len({(p.address, p.port) for p in lun.paths}) == len(lun.paths)
        assert lun.name is not None or len(lun.paths) == 1


@pytest.mark.parametrize(
    ("paths", "given_", "dm", "planned", "expected"),
    [
        (1, False, True, 120.0, 120.0),
        (2, False, True, 120.0, MULTIPATH_REPLACEMENT),
        (3, False, True, 86400.0, MULTIPATH_REPLACEMENT),
        (2, True, True, 30.0, 30.0),  # set on the command line: kept for every path
        (1, True, True, 30.0, 30.0),
        # no dm-multipath to fail over to (no multipathd in the image, or rd.multipath=0): the root is one path's
        # disk, which must ride out an outage as a single path does
        (2, False, False, 120.0, 120.0),
        (3, True, False, 30.0, 30.0),
    ],
)
def test_replacement_timeout_of_a_path(paths, given_, dm, planned, expected):
    plan = BootPlan(
        initiator_name="iqn.x:y", timeouts=Timeouts(replacement=planned), replacement_given=given_, dm_multipath=dm
    )
    assert replacement_for(plan, paths) == expected


def test_notes_name_each_multipath_lun_and_its_timeout():
    targets = (t(R, "10.0.0.1"), t(D, "10.0.0.1"), t(R, "fd00::1"))
    plan = BootPlan(initiator_name="iqn.x:y", targets=targets, dm_multipath=True)
    assert plan_notes(plan) == [
        f"target {R} lun 1: 2 paths (10.0.0.1:3260, [fd00::1]:3260), logged in at once; each session's replacement "
        "timeout is 5s (so dm-multipath fails I/O over quickly)"
    ]
    assert plan_notes(replace(plan, dm_multipath=False)) == [
        f"target {R} lun 1: 2 paths (10.0.0.1:3260, [fd00::1]:3260), logged in at once; each session's replacement "
        "timeout is 120s (no dm-multipath in this image (or rd.multipath=0): the root is one path's disk)"
    ]
    given_plan = BootPlan(initiator_name="iqn.x:y", targets=plan.targets, timeouts=Timeouts(replacement=60),
                          replacement_given=True, dm_multipath=True)  # fmt: skip
    assert plan_notes(given_plan)[0].endswith("replacement timeout is 60s (as set on the command line)")
    assert plan_notes(BootPlan(initiator_name="iqn.x:y", targets=(t(R, "10.0.0.1"),))) == []


def test_notes_escape_a_name_with_control_characters():
    plan = BootPlan(initiator_name="iqn.x:y", targets=(t("iqn.x:\x1b[2J", "10.0.0.1"), t("iqn.x:\x1b[2J", "10.0.0.2")))
    assert "\x1b" not in plan_notes(plan)[0]
