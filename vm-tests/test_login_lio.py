"""Our login against the Linux kernel's own iSCSI target (LIO), in the lab VM with the pinned kernel.

tgt is the target of the host-side tests; LIO is the other one every deployment meets, with its own CHAP
(SHA-256/SHA3-256/SHA-1/MD5), its own key order and its TargetAlias. `lio_login_guest.py` sets LIO up through
configfs and runs each login case inside the guest; this file checks what each case printed.
"""

from __future__ import annotations

import json

import pytest

from harness.lab import run_in_lab
from harness.paths import REPO

pytestmark = pytest.mark.vm

LAB_BOUND = 300.0  # TCG on a busy machine: boot, module loads, about twenty logins, four `pyiscsi discover` runs


@pytest.fixture(scope="module")
def lio_cases(pinned_kernel) -> dict[str, dict]:
    result = run_in_lab(
        [str(REPO / ".venv/bin/python"), str(REPO / "vm-tests/lio_login_guest.py")],
        bound=LAB_BOUND,
        env={"LIO_MODULE_ROOT": str(pinned_kernel.root)},
    )
    assert result.status == 0, result.stderr + result.console.summary()
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line.pop("case"): line for line in lines}


@pytest.mark.parametrize(
    ("case", "algorithm"),
    [
        ("chap-7,8,6,5", 7),  # LIO takes the first of our list: SHA-256
        ("mutual-7,8,6,5", 7),
        ("chap-8", 8),
        ("mutual-8", 8),
        ("chap-7", 7),
        ("mutual-7", 7),
        ("chap-6", 6),
        ("mutual-6", 6),
        ("chap-5", 5),
        ("mutual-5", 5),
    ],
)
def test_chap_every_algorithm_one_way_and_mutual(lio_cases, case: str, algorithm: int) -> None:
    info = lio_cases[case]
    assert info["outcome"] == "LoggedIn", info
    assert (info["auth_method"], info["chap_algorithm"]) == ("CHAP", algorithm)
    assert info["ping"] and info["logout"]


@pytest.mark.parametrize("case", ["plain", "digests"])
def test_full_feature_phase_after_login(lio_cases, case: str) -> None:
    info = lio_cases[case]
    assert info["outcome"] == "LoggedIn", info
    assert info["tsih"] > 0
    assert info["ping"] and info["logout"]
    assert info["leftover"] == 0
    negotiated = info["negotiated"]
    digest = "CRC32C" if case == "digests" else "None"
    assert (negotiated["HeaderDigest"], negotiated["DataDigest"]) == (digest, digest)
    assert negotiated["TargetPortalGroupTag"] == "1"
    assert negotiated["TargetAlias"] == "LIO Target"
    assert negotiated["MaxRecvDataSegmentLength"] == "262144"
    assert info["target_max_recv"] >= 512


def test_discovery_session(lio_cases) -> None:
    info = lio_cases["discovery"]
    assert info["outcome"] == "LoggedIn", info
    assert "MaxBurstLength" not in info["negotiated"]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("not-found", "ServiceUnavailable", "0x0301"),  # LIO's answer for an unknown target name
        ("chap-wrong-secret", "AuthenticationFailed", "authentication failed (0x0201)"),
        ("mutual-wrong-reverse", "MutualAuthenticationFailed", "wrong CHAP_R"),
    ],
)
def test_refusals_are_typed(lio_cases, case: str, error: str, message: str) -> None:
    info = lio_cases[case]
    assert (info["outcome"], info["error"]) == ("error", error), info
    assert message in info["message"]
    assert not any(s in info["message"] for s in ("wrongsecret1", "nope-nope-12", "bobsecret123", "carolsecret1"))


TARGETS = ["iqn.2026-11.test:lio-plain", "iqn.2026-11.test:lio-chap", "iqn.2026-11.test:lio-mutual"]


@pytest.mark.parametrize("case", ["cli-discover", "cli-discover-chap", "cli-discover-mutual"])
def test_discover_through_the_cli(lio_cases, case: str) -> None:
    """`pyiscsi discover` against LIO, with and without discovery CHAP: LIO rejects any PDU but Text and Logout
    in a discovery session (a NOP-Out made it close the connection), so this fails if we ever send one."""
    info = lio_cases[case]
    assert info["status"] == 0, info
    lines = info["stdout"].splitlines()
    assert sorted(line.split()[-1] for line in lines) == sorted(TARGETS), info
    assert all(line.startswith("127.0.0.1:3260,1 ") for line in lines), info


def test_discover_with_a_wrong_secret_is_refused_without_echo(lio_cases) -> None:
    info = lio_cases["cli-discover-chap-wrong"]
    assert info["status"] == 4, info
    assert "authentication failed (0x0201)" in info["stderr"], info
    assert "wrongsecret1" not in info["stderr"] + info["stdout"]
