"""`pyiscsi discover` as a user runs it, against a real tgtd: the contract's line format and exit statuses."""

from __future__ import annotations

import re

import pytest

from tests.support.cli import pyiscsi
from tests.support.sockets import free_port, silent_listener
from tests.support.tgtd import Tgtd

pytestmark = pytest.mark.tgt

INITIATOR = "iqn.2026-11.org.pyiscsi.test:discover"
IQN = "iqn.2026-11.org.pyiscsi.test"


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def test_several_targets_one_line_each(tgtd: Tgtd) -> None:
    for name in ("alpha", "beta", "gamma"):
        tgtd.add_target(f"{IQN}:{name}", [1 << 20])
    result = pyiscsi("discover", tgtd.portal, "--initiator", INITIATOR)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        f"127.0.0.1:{tgtd.port},1 {IQN}:alpha",
        f"127.0.0.1:{tgtd.port},1 {IQN}:beta",
        f"127.0.0.1:{tgtd.port},1 {IQN}:gamma",
    ]
    _no_traceback(result)


def test_targets_the_acl_hides_are_not_listed(tgtd: Tgtd) -> None:
    tgtd.add_target(f"{IQN}:open", [1 << 20])
    tgtd.add_target(f"{IQN}:elsewhere", [1 << 20], allow=["192.0.2.7"])
    result = pyiscsi("discover", tgtd.portal, "--initiator", INITIATOR)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"127.0.0.1:{tgtd.port},1 {IQN}:open"]


def test_ipv6_portal_in_brackets(tgtd: Tgtd) -> None:
    if not tgtd.ipv6:
        pytest.fail("::1 is not available on this host")
    tgtd.add_target(f"{IQN}:six", [1 << 20])
    tgtd.add_target(f"{IQN}:seven", [1 << 20])
    result = pyiscsi("discover", tgtd.portal6, "--initiator", INITIATOR)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == [
        f"[::1]:{tgtd.port},1 {IQN}:seven",
        f"[::1]:{tgtd.port},1 {IQN}:six",
    ]


def test_a_long_answer(tgtd: Tgtd) -> None:
    """120 targets with 200-byte names: a SendTargets answer of about 27 KB, every name intact."""
    names = [f"{IQN}:{'n' * 180}-{n:03d}" for n in range(120)]
    for name in names:
        tgtd.add_target(name)
    result = pyiscsi("discover", tgtd.portal, "--initiator", INITIATOR)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.splitlines()) == sorted(f"127.0.0.1:{tgtd.port},1 {name}" for name in names)


def test_same_lines_as_stock_iscsiadm(tgtd: Tgtd) -> None:
    """The contract says: as `iscsiadm -m discovery -t st` prints. Compare with the real thing."""
    from tests.support import iscsiadm

    reason = iscsiadm.unavailable_reason()
    if reason:
        pytest.skip(reason)
    for name in ("one", "two"):
        tgtd.add_target(f"{IQN}:{name}", [1 << 20])
    with iscsiadm.iscsid_stand_in():
        stock = iscsiadm.sendtargets(tgtd.portal, INITIATOR)
    assert stock.returncode == 0, stock.stderr
    ours = pyiscsi("discover", tgtd.portal, "--initiator", INITIATOR)
    assert ours.returncode == 0, ours.stderr
    assert sorted(ours.stdout.splitlines()) == sorted(stock.stdout.splitlines())


def test_digests_demanded_where_the_target_has_none(tgtd: Tgtd) -> None:
    """tgt's discovery sessions accept only HeaderDigest=None: demanding CRC32C is refused, naming the key."""
    tgtd.add_target(f"{IQN}:d", [1 << 20])
    result = pyiscsi("discover", tgtd.portal, "--initiator", INITIATOR, "--header-digest", "CRC32C")
    assert result.returncode == 4, result.stderr
    assert "HeaderDigest" in result.stderr
    assert result.stdout == ""
    _no_traceback(result)


def test_refused_port_is_a_network_error() -> None:
    port = free_port()
    result = pyiscsi("discover", f"127.0.0.1:{port}", "--initiator", INITIATOR, "--timeout", "10", timeout=30)
    assert result.returncode == 3, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr  # names the portal
    assert result.stdout == ""
    _no_traceback(result)


def test_silent_peer_runs_out_the_named_wait() -> None:
    with silent_listener() as port:
        result = pyiscsi("discover", f"127.0.0.1:{port}", "--initiator", INITIATOR, "--timeout", "2", timeout=30)
    assert result.returncode == 5, result.stderr
    assert re.search(r"wait '[\w -]+' ran out after \d+(\.\d+)?s", result.stderr), result.stderr
    assert result.stdout == ""
    _no_traceback(result)


@pytest.mark.parametrize(
    ("args", "status", "named"),
    [
        (["127.0.0.1:notaport"], 2, "portal"),
        (["127.0.0.1:70000"], 2, "portal"),
        (["[::1"], 2, "portal"),
        (["", "--initiator", INITIATOR], 2, "portal"),
        (["127.0.0.1:3260", "--initiator", "not an iqn"], 2, "--initiator"),
        (["127.0.0.1:3260", "--timeout", "0"], 2, "--timeout"),
        (["127.0.0.1:3260", "--timeout", "nan"], 2, "--timeout"),
        ([], 1, "portal"),
        (["127.0.0.1:3260", "--password", "s3cret-in-argv"], 1, "username"),
    ],
)
def test_bad_input_and_usage(args: list[str], status: int, named: str) -> None:
    result = pyiscsi("discover", *args, timeout=30)
    assert result.returncode == status, result.stderr
    assert named.lower() in result.stderr.lower()
    assert "s3cret-in-argv" not in result.stderr + result.stdout
    _no_traceback(result)


# What a by-hand discover no longer imports (issue 13's start-up diet): each was a measurable part of its start-up,
# and a change that brings one back (an enum in the protocol core, a regex, argparse for a plain command line)
# should be a decision, not an accident. Where each went: initiator.codes, initiator.alphabet, _socket in the
# transport, boot.argv, TYPE_CHECKING-only imports.
LEFT_OUT = (
    "argparse",
    "collections",
    "contextlib",
    "dataclasses",
    "enum",
    "functools",
    "importlib",
    "inspect",
    "re",
    "selectors",
    "socket",
    "struct",
    "typing",
)


@pytest.mark.parametrize(
    "options",
    [
        pytest.param([], id="plain"),
        pytest.param(["--header-digest", "None", "--timeout=20"], id="options"),
    ],
)
def test_a_discovery_by_hand_imports_none_of_the_left_out_modules(tgtd: Tgtd, options: list[str]) -> None:
    import subprocess
    import sys
    from pathlib import Path

    tgtd.add_target(f"{IQN}:diet", [1 << 20])
    repo = Path(__file__).resolve().parents[2]
    argv = ["discover", tgtd.portal, "--initiator", INITIATOR, *options]
    code = (
        f"import sys; sys.path.insert(0, {str(repo)!r}); import boot.cli as cli;"
        f"status = cli.main({argv!r});"
        f"print(status, sorted(set(sys.modules) & set({LEFT_OUT!r})))"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"127.0.0.1:{tgtd.port},1 {IQN}:diet", "0 []"]
