"""udev_seen: whether udev has handled a link, against a fake /run/udev tree and a fake /proc (netns by inode)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from boot.net import udev_seen
from initiator.deadline import Deadline, FakeClock

HANDLED = "I:4012345\nE:ID_NET_NAME_PATH=enp0s2\nE:ID_NET_NAME_SLOT=ens2\nG:systemd\nQ:systemd\nV:1\n"
RENAMING = "I:4012345\nE:ID_NET_NAME_SLOT=ens2\nE:ID_RENAMING=1\nG:systemd\n"


def tree(
    tmp: Path, *, control: bool = True, same_netns: bool = True, entries: dict[int, str] | None = None
) -> tuple[Path, Path]:
    """A /run/udev (`control` when udevd runs, data/n<index> for each entry) and a /proc whose self and 1 are in
    one network namespace (one inode, hard-linked) or two."""
    root, proc = tmp / "udev", tmp / "proc"
    (root / "data").mkdir(parents=True, exist_ok=True)
    if control:
        (root / "control").write_text("")
    for index, text in (entries or {}).items():
        (root / "data" / f"n{index}").write_text(text)
    for pid in ("self", "1"):
        (proc / pid / "ns").mkdir(parents=True, exist_ok=True)
    (proc / "self" / "ns" / "net").write_text("")
    if same_netns:
        os.link(proc / "self" / "ns" / "net", proc / "1" / "ns" / "net")
    else:
        (proc / "1" / "ns" / "net").write_text("")
    return root, proc


def sleeper(clock: FakeClock, calls: list[float], then=None):
    def sleep(seconds: float) -> None:
        calls.append(seconds)
        clock.advance(max(seconds, 0.01))
        if then is not None:
            then(clock.now)

    return sleep


@pytest.mark.parametrize(
    ("control", "same_netns", "entries", "asked", "late", "waits"),
    [
        (False, True, {}, (2,), (), False),  # no udevd (a container, the sh flavour's own wait): no wait
        (True, False, {}, (2,), (), False),  # udevd runs but our links are in another namespace (the tests')
        (True, True, {2: HANDLED}, (2,), (), False),  # handled already
        (True, True, {}, (), (), False),  # nothing asked
        (True, True, {}, (2,), (2,), True),  # never handled: the bound runs out, the link is returned
        (True, True, {2: RENAMING}, (2,), (2,), True),  # the entry is there, but udev is renaming the link
        (True, True, {3: HANDLED}, (2, 3), (2,), True),  # only the one not handled is returned
    ],
    ids=["no-udevd", "other-netns", "handled", "none-asked", "never", "renaming", "one-of-two"],
)
def test_wait_handled(tmp_path, control, same_netns, entries, asked, late, waits):
    root, proc = tree(tmp_path, control=control, same_netns=same_netns, entries=entries)
    clock, calls = FakeClock(), []
    deadline = Deadline("udev", 2, clock=clock)
    got = udev_seen.wait_handled(
        asked, deadline, root=root, proc=proc, sleep=sleeper(clock, calls), sys_net=tmp_path / "no-sysfs"
    )
    assert got == late
    assert bool(calls) == waits
    assert clock.now - deadline.started <= 2 + udev_seen.POLL  # never past the bound


@pytest.mark.parametrize(
    "steps",
    [(RENAMING, HANDLED), (HANDLED,)],
    ids=["renamed-then-move-handled", "written-once"],
)
def test_the_wait_ends_when_the_entry_says_handled(tmp_path, steps):
    """udev writes the entry with ID_RENAMING before it renames, and without it once the move is handled."""
    root, proc = tree(tmp_path)
    clock, calls = FakeClock(), []
    start = clock.now
    seen: list[bool] = []

    def udev_works(now: float) -> None:
        step = int((now - start) / 0.3)
        if 1 <= step <= len(steps):
            (root / "data" / "n2").write_text(steps[step - 1])
        seen.append(udev_seen.handled(2, root, tmp_path / "no-sysfs"))

    got = udev_seen.wait_handled([2], Deadline("udev", 10, clock=clock), root=root, proc=proc,
                                 sleep=sleeper(clock, calls, udev_works), sys_net=tmp_path / "no-sysfs")  # fmt: skip
    assert got == ()
    assert clock.now - start == pytest.approx(0.3 * len(steps), abs=2 * udev_seen.POLL)
    assert seen[-1] is True and seen.count(True) == 1  # it stopped at the first look that saw it handled


LINES = st.lists(st.from_regex(r"[A-Z]:[A-Za-z0-9_=:. -]{0,40}", fullmatch=True), max_size=20)


@given(before=LINES, after=LINES, renaming=st.booleans())
def test_handled_unless_a_line_says_renaming(tmp_path_factory, before, after, renaming):
    root = tmp_path_factory.mktemp("udev")
    (root / "data").mkdir()
    lines = [*before, *(["E:ID_RENAMING=1"] if renaming else []), *after]
    (root / "data" / "n7").write_text("\n".join(lines) + "\n")
    says_renaming = renaming or any(line.startswith("E:ID_RENAMING=") for line in before + after)
    assert udev_seen.handled(7, root, root / "no-sysfs") is not says_renaming


@given(st.binary(max_size=2000))
def test_any_entry_content_is_a_yes_or_a_no(tmp_path_factory, content):
    """A damaged or foreign entry is read without an exception."""
    root = tmp_path_factory.mktemp("udev")
    (root / "data").mkdir()
    (root / "data" / "n7").write_bytes(content)
    assert udev_seen.handled(7, root, root / "no-sysfs") in (True, False)


def test_an_unreadable_entry_is_not_handled(tmp_path):
    root, _ = tree(tmp_path)
    (root / "data" / "n4").mkdir()  # a directory where the entry should be: reading fails
    assert udev_seen.handled(4, root, tmp_path / "no-sysfs") is False
    assert udev_seen.handled(5, root, tmp_path / "no-sysfs") is False


def sysfs(tmp: Path, links: dict[str, tuple[str, str | None]]) -> Path:
    """A fake /sys/class/net: name -> (ifindex, name_assign_type; None: reading it fails, as for type 0)."""
    net = tmp / "sys-class-net"
    net.mkdir(exist_ok=True)
    for name, (index, kind) in links.items():
        (net / name).mkdir()
        (net / name / "ifindex").write_text(index + "\n")
        if kind is None:
            (net / name / "name_assign_type").mkdir()  # read fails, like the kernel's EINVAL
        else:
            (net / name / "name_assign_type").write_text(kind + "\n")
    return net


@pytest.mark.parametrize(
    ("entry", "links", "want"),
    [
        (None, {"ens2": ("2", "4")}, False),  # no entry: udev has not run its rules, renamed or not
        (HANDLED, {}, True),  # the move handled: sysfs is not read
        (RENAMING, {}, False),  # renaming, and no sysfs entry for the link
        (RENAMING, {"eth0": ("2", "1")}, False),  # still the kernel's name (NET_NAME_ENUM)
        (RENAMING, {"ens2": ("2", "4")}, True),  # renamed: the move event is not waited for
        (RENAMING, {"ens2": ("2", None)}, False),  # the kernel does not say
        (RENAMING, {"ens2": ("12", "4"), "eth0": ("2", "1")}, False),  # another link (index 12) was renamed
        (RENAMING, {"ens3": ("3", "4"), "ens2": ("2", "4")}, True),
    ],
    ids=["no-entry", "handled", "no-sysfs", "kernel-name", "renamed", "unknown-type", "other-link", "two-links"],
)
def test_a_link_udev_is_renaming_is_handled_once_the_kernel_says_renamed(tmp_path, entry, links, want):
    root, _ = tree(tmp_path, entries={} if entry is None else {2: entry})
    assert udev_seen.handled(2, root, sysfs(tmp_path, links)) is want
    assert udev_seen.renamed(2, tmp_path / "absent") is False
