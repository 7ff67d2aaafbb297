"""`pyiscsi probe` as a user runs it, against a real tgtd: LUN sizes, block 0, JSON shape, CHAP, refusals, bounds.

LUN 0 on tgt is its controller (not a disk); the disks the tests make are LUN 1, 2, ... with known sizes and
block-0 bytes, so every expected value is computed here from the files tgtd serves.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from tests.support.cli import pyiscsi
from tests.support.sockets import free_port, silent_listener
from tests.support.tgtd import LunSpec, Target, Tgtd, unavailable_reason

pytestmark = pytest.mark.tgt

INITIATOR = "iqn.2026-11.org.pyiscsi.test:probe"
IQN = "iqn.2026-11.org.pyiscsi.test"
DISK = f"{IQN}:disk"
SECRET = "initiator-secret-4711"
REVERSE_SECRET = "target-secret-0815x"
LUN_KEYS = {"lun", "vendor", "product", "block_size", "blocks", "size_bytes"}
TOP_KEYS = {"target", "portal", "tsih", "negotiated", "luns", "block0_sha256"}


def _probe(tgtd: Tgtd, target: str, *extra: str, env: dict[str, str] | None = None, portal: str | None = None):
    return pyiscsi(
        "probe", "--portal", portal or tgtd.portal, "--target", target, "--initiator", INITIATOR, *extra, env=env
    )


def _json(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def _refused(result: subprocess.CompletedProcess[str], status: int) -> None:
    assert result.returncode == status, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr


def _no_secrets(result: subprocess.CompletedProcess[str]) -> None:
    for secret in (SECRET, REVERSE_SECRET, "wrong-secret-12345"):
        assert secret not in result.stdout
        assert secret not in result.stderr


def _disks(tgtd: Tgtd) -> Target:
    return tgtd.add_target(
        DISK,
        [
            LunSpec(64 << 20),
            LunSpec(32 << 20, block_size=4096, vendor="PYISCSI", product="FOURK"),
            LunSpec(3 << 40, block0=bytes(range(256)) * 2, vendor="PYISCSI", product="HUGE"),  # > 2^32 blocks
        ],
    )


# -- LUNs, sizes, block 0, the JSON shape ---------------------------------------------------------------------


def test_json_shape_and_every_lun(tgtd: Tgtd) -> None:
    target = _disks(tgtd)
    report = _json(_probe(tgtd, DISK, "--json"))
    assert set(report) >= TOP_KEYS
    assert report["target"] == DISK
    assert report["portal"] == tgtd.portal
    assert isinstance(report["tsih"], int)
    assert report["tsih"] > 0
    assert report["negotiated"]["HeaderDigest"] == "None"
    assert report["negotiated"]["DataDigest"] == "None"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in report["negotiated"].items())
    for entry in report["luns"]:
        assert set(entry) >= LUN_KEYS  # absent values are null, never missing keys
    by_lun = {entry["lun"]: entry for entry in report["luns"]}
    assert sorted(by_lun) == [0, 1, 2, 3]  # 0: tgt's controller
    for number, lun in target.luns.items():
        assert by_lun[number] == {
            **by_lun[number],
            "lun": number,
            "vendor": lun.vendor,
            "product": lun.product,
            "block_size": lun.block_size,
            "blocks": lun.blocks,
            "size_bytes": lun.size,
        }
    assert by_lun[3]["blocks"] > 1 << 32  # READ CAPACITY(16), not (10)
    assert report["block0_sha256"] == target.luns[1].block0_sha256()  # default: the first disk


@pytest.mark.parametrize("lun", [1, 2, 3])
def test_lun_option_chooses_the_block_read(tgtd: Tgtd, lun: int) -> None:
    target = _disks(tgtd)
    report = _json(_probe(tgtd, DISK, "--json", "--lun", str(lun)))
    assert report["block0_sha256"] == target.luns[lun].block0_sha256()
    assert len({target.luns[n].block0_sha256() for n in target.luns}) == 3  # the choice is visible


def test_human_output_names_target_luns_and_hash(tgtd: Tgtd) -> None:
    target = _disks(tgtd)
    result = _probe(tgtd, DISK)
    assert result.returncode == 0, result.stderr
    assert DISK in result.stdout
    assert target.luns[1].block0_sha256() in result.stdout
    for lun in target.luns.values():
        assert str(lun.size) in result.stdout


def test_lun_that_does_not_exist(tgtd: Tgtd) -> None:
    _disks(tgtd)
    result = _probe(tgtd, DISK, "--lun", "9")
    assert result.returncode in (2, 4), result.stderr
    assert "--lun" in result.stderr
    assert "9" in result.stderr
    assert "Traceback" not in result.stderr


def test_lun_that_is_not_a_disk(tgtd: Tgtd) -> None:
    """LUN 0 is tgt's controller: it is described, and block 0 is absent (null), not invented."""
    _disks(tgtd)
    report = _json(_probe(tgtd, DISK, "--json", "--lun", "0"))
    assert report["block0_sha256"] is None
    assert {entry["lun"] for entry in report["luns"]} == {0, 1, 2, 3}


def test_ipv6_portal(tgtd: Tgtd) -> None:
    if not tgtd.ipv6:
        pytest.fail("::1 is not available on this host")
    target = _disks(tgtd)
    report = _json(_probe(tgtd, DISK, "--json", portal=tgtd.portal6))
    assert report["portal"] == tgtd.portal6
    assert report["block0_sha256"] == target.luns[1].block0_sha256()


def test_header_and_data_digests(tgtd: Tgtd) -> None:
    target = _disks(tgtd)
    tgtd.set_digests(target, "CRC32C", "CRC32C")
    report = _json(_probe(tgtd, DISK, "--json", "--lun", "2", "--header-digest", "CRC32C", "--data-digest", "CRC32C"))
    assert report["negotiated"]["HeaderDigest"] == "CRC32C"
    assert report["negotiated"]["DataDigest"] == "CRC32C"
    assert report["block0_sha256"] == target.luns[2].block0_sha256()  # a digested Data-In, checked and whole


# -- CHAP -----------------------------------------------------------------------------------------------------


def _chap_target(tgtd: Tgtd, *, mutual: bool = False) -> Target:
    target = tgtd.add_target(DISK, [LunSpec(8 << 20)])
    tgtd.add_chap(target, "probe-user", SECRET)
    if mutual:
        tgtd.add_mutual_chap(target, "the-target", REVERSE_SECRET)
    return target


def test_chap_right_secret(tgtd: Tgtd) -> None:
    target = _chap_target(tgtd)
    result = _probe(tgtd, DISK, "--json", "--username", "probe-user", "--password", SECRET)
    assert _json(result)["block0_sha256"] == target.luns[1].block0_sha256()
    _no_secrets(result)


def test_chap_wrong_secret(tgtd: Tgtd) -> None:
    _chap_target(tgtd)
    result = _probe(tgtd, DISK, "--username", "probe-user", "--password", "wrong-secret-12345")
    _refused(result, 4)
    assert "authentication" in result.stderr.lower()
    assert "0x0201" in result.stderr
    _no_secrets(result)


def test_chap_required_but_not_given(tgtd: Tgtd) -> None:
    _chap_target(tgtd)
    result = _probe(tgtd, DISK)
    _refused(result, 4)
    assert "authentication" in result.stderr.lower()


@pytest.mark.parametrize("source", ["file", "env"])
def test_secrets_off_the_command_line(tgtd: Tgtd, tmp_path, source: str) -> None:
    target = _chap_target(tgtd, mutual=True)
    args = ["--json", "--username", "probe-user", "--reverse-username", "the-target"]
    env: dict[str, str] = {}
    if source == "file":
        secrets = tmp_path / "chap"
        secrets.touch(mode=0o600)
        secrets.write_text(f"{SECRET}\n{REVERSE_SECRET}\n")
        args += ["--password-file", str(secrets)]
    else:
        env = {"PYISCSI_PASSWORD": SECRET, "PYISCSI_REVERSE_PASSWORD": REVERSE_SECRET}
    result = _probe(tgtd, DISK, *args, env=env)
    assert _json(result)["block0_sha256"] == target.luns[1].block0_sha256()
    _no_secrets(result)


def test_mutual_chap(tgtd: Tgtd) -> None:
    target = _chap_target(tgtd, mutual=True)
    result = _probe(
        tgtd,
        DISK,
        "--json",
        "--username",
        "probe-user",
        "--password",
        SECRET,
        "--reverse-username",
        "the-target",
        "--reverse-password",
        REVERSE_SECRET,
    )
    assert _json(result)["block0_sha256"] == target.luns[1].block0_sha256()
    _no_secrets(result)


def test_mutual_chap_target_proves_the_wrong_secret(tgtd: Tgtd) -> None:
    """We expect the target to know one secret and it answers with another: we refuse it, not it us."""
    _chap_target(tgtd, mutual=True)
    env = {"PYISCSI_PASSWORD": SECRET, "PYISCSI_REVERSE_PASSWORD": "wrong-secret-12345"}
    result = _probe(tgtd, DISK, "--username", "probe-user", "--reverse-username", "the-target", env=env)
    _refused(result, 4)
    assert "authentication" in result.stderr.lower()
    _no_secrets(result)


# -- refusals and bounds --------------------------------------------------------------------------------------


def test_target_that_does_not_exist(tgtd: Tgtd) -> None:
    _disks(tgtd)
    result = _probe(tgtd, f"{IQN}:nobody-home")
    _refused(result, 4)
    assert "0x0203" in result.stderr  # the login status, class 2 detail 3: not found


def test_initiator_name_acl(tgtd: Tgtd) -> None:
    target = tgtd.add_target(DISK, [LunSpec(8 << 20)], allow=[])
    tgtd.allow_initiator_name(target, INITIATOR)
    assert _json(_probe(tgtd, DISK, "--json"))["block0_sha256"] == target.luns[1].block0_sha256()
    stranger = pyiscsi("probe", "--portal", tgtd.portal, "--target", DISK, "--initiator", f"{IQN}:stranger")
    _refused(stranger, 4)
    assert re.search(r"0x02[0-9a-f]{2}", stranger.stderr), stranger.stderr


def test_refused_port_is_a_network_error() -> None:
    port = free_port()
    result = pyiscsi("probe", "--portal", f"127.0.0.1:{port}", "--target", DISK, "--timeout", "10", timeout=30)
    _refused(result, 3)
    assert f"127.0.0.1:{port}" in result.stderr


def test_silent_peer_runs_out_the_named_wait() -> None:
    with silent_listener() as port:
        result = pyiscsi(
            "probe", "--portal", f"127.0.0.1:{port}", "--target", DISK, "--timeout", "2", "--initiator", INITIATOR,
            timeout=30,
        )  # fmt: skip
    _refused(result, 5)
    assert re.search(r"wait '[\w -]+' ran out after 2s", result.stderr), result.stderr


def test_target_that_hangs_mid_login(tgtd: Tgtd) -> None:
    """tgtd frozen (SIGSTOP): TCP connects, the login request is never answered; the bound names the wait."""
    _disks(tgtd)
    tgtd.pause()
    try:
        result = _probe(tgtd, DISK, "--timeout", "2")
    finally:
        tgtd.resume()
    _refused(result, 5)
    assert re.search(r"wait '[\w -]+' ran out after 2s", result.stderr), result.stderr


# -- redirect -------------------------------------------------------------------------------------------------


def test_redirect_is_followed(tgtd: Tgtd) -> None:
    """tgtd answers the login with a temporary redirect (0x0101) to a second tgtd that has the disk.

    tgt never redirects to the address the initiator reached it on, so the second one listens on 127.0.0.2.
    """
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    with Tgtd(host="127.0.0.2") as real:
        target = real.add_target(DISK, [LunSpec(16 << 20, block0=b"the redirected disk\n")])
        tgtd.redirect(tgtd.add_target(DISK, [LunSpec(16 << 20)]), "127.0.0.2", real.port)
        report = _json(_probe(tgtd, DISK, "--json"))
        assert report["block0_sha256"] == target.luns[1].block0_sha256()
        assert report["portal"] == real.portal  # where the session really is


def test_redirect_loop_is_bounded() -> None:
    """Two targets that send each other's logins back: the initiator gives up after a few hops.

    tgt skips a redirect to the initiator's own address (127.0.0.1 here), so the pair lives on .2 and .3.
    """
    if unavailable_reason():
        pytest.skip(unavailable_reason())
    with Tgtd(host="127.0.0.2") as two, Tgtd(host="127.0.0.3") as three:
        two.redirect(two.add_target(DISK, [LunSpec(8 << 20)]), "127.0.0.3", three.port)
        three.redirect(three.add_target(DISK, [LunSpec(8 << 20)]), "127.0.0.2", two.port)
        result = _probe(two, DISK, "--timeout", "20")
    _refused(result, 4)
    assert "redirect" in result.stderr.lower()
    assert "127.0.0.3" in result.stderr or "127.0.0.2" in result.stderr  # names where it was sent


# -- usage and bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "status", "named"),
    [
        (["--target", DISK], 1, "--portal"),
        (["--portal", "127.0.0.1:3260"], 1, "--target"),
        (["--portal", "127.0.0.1:x", "--target", DISK], 2, "portal"),
        (["--portal", "127.0.0.1:3260", "--target", "no spaces allowed"], 2, "--target"),
        (["--portal", "127.0.0.1:3260", "--target", DISK, "--lun", "-1"], 2, "--lun"),
        (["--portal", "127.0.0.1:3260", "--target", DISK, "--lun", "one"], 1, "--lun"),
        (["--portal", "127.0.0.1:3260", "--target", DISK, "--header-digest", "MD5"], 1, "--header-digest"),
        (["--portal", "127.0.0.1:3260", "--target", DISK, "--username", "u"], 1, "secret"),
    ],
)
def test_bad_input_and_usage(args: list[str], status: int, named: str) -> None:
    result = pyiscsi("probe", *args, timeout=30)
    _refused(result, status)
    assert named.lower() in result.stderr.lower()


def test_password_file_unreadable_names_the_file(tmp_path) -> None:
    missing = tmp_path / "absent"
    result = pyiscsi(
        "probe", "--portal", "127.0.0.1:3260", "--target", DISK, "--username", "u", "--password-file", str(missing),
        timeout=30,
    )  # fmt: skip
    _refused(result, 2)
    assert "--password-file" in result.stderr
    assert str(missing) in result.stderr
    assert not os.path.exists(missing)
