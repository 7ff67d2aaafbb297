"""`pyiscsi probe` / `pyiscsi discover` through the CLI entry point: option errors and their exit statuses, the
human-readable form. (The contract against a real target: test_cli_{discover,probe}_tgt.py.)"""

from __future__ import annotations

import time

import pytest

from boot.cli import main
from boot.commands.probe import human
from tests.support.sockets import free_port, silent_listener

IQN = "iqn.2026-11.org.example:disk"


@pytest.mark.parametrize(
    ("argv", "status", "words"),
    [
        (["probe", "--portal", "127.0.0.1"], 1, "--target"),
        (["probe", "--target", IQN], 1, "--portal"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--lun", "x"], 1, "--lun"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--header-digest", "md5"], 1, "--header-digest"),
        (["probe", "--portal", "10.0.0.256", "--target", IQN], 2, "portal"),
        (["probe", "--portal", "127.0.0.1", "--target", "not-a-name"], 2, "--target"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--lun", "-1"], 2, "--lun"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--initiator", "bad name"], 2, "--initiator"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--timeout", "0"], 2, "--timeout"),
        (["probe", "--portal", "127.0.0.1", "--target", IQN, "--password", "p"], 1, "--username"),
        (["discover"], 1, "PORTAL"),
        (["discover", "[::1"], 2, "portal"),
    ],
)
def test_option_errors(capsys, argv: list[str], status: int, words: str) -> None:
    assert main(argv) == status
    err = capsys.readouterr().err
    assert words in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["discover", "probe"])
def test_refused_port_is_exit_3_and_names_the_portal(capsys, command: str) -> None:
    port = free_port()
    argv = [command, f"127.0.0.1:{port}"] if command == "discover" else [command, "--portal", f"127.0.0.1:{port}"]
    if command == "probe":
        argv += ["--target", IQN]
    assert main([*argv, "--timeout", "5"]) == 3
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["discover", "probe"])
def test_silent_target_is_exit_5_naming_the_wait(capsys, command: str) -> None:
    with silent_listener() as port:
        argv = [command, f"127.0.0.1:{port}"] if command == "discover" else [command, "--portal", f"127.0.0.1:{port}"]
        if command == "probe":
            argv += ["--target", IQN]
        started = time.monotonic()
        assert main([*argv, "--timeout", "0.5"]) == 5
        assert time.monotonic() - started < 3
    err = capsys.readouterr().err
    assert f"wait '{command}' ran out after 0.5s" in err and "login" in err


def test_secret_never_printed(capsys) -> None:
    with silent_listener() as port:
        argv = ["probe", "--portal", f"127.0.0.1:{port}", "--target", IQN, "--username", "u"]
        assert main([*argv, "--password", "s3cr3t-value", "--timeout", "0.3"]) == 5
    out = capsys.readouterr()
    assert "s3cr3t-value" not in out.out + out.err


def test_human_form() -> None:
    report = {
        "target": IQN,
        "portal": "127.0.0.1:3260",
        "tsih": 3,
        "negotiated": {"HeaderDigest": "None", "DataDigest": "CRC32C"},
        "luns": [
            {
                "lun": 0,
                "vendor": "IET",
                "product": "Controller",
                "block_size": None,
                "blocks": None,
                "size_bytes": None,
            },
            {
                "lun": 1,
                "vendor": "IET",
                "product": "VIRTUAL-DISK",
                "block_size": 512,
                "blocks": 2048,
                "size_bytes": 1048576,
            },
        ],
        "block0_sha256": "ab" * 32,
        "lun": 1,
    }
    text = human(report)
    assert f"target      {IQN}" in text
    assert "negotiated  HeaderDigest=None DataDigest=CRC32C" in text
    assert "LUN 0       IET Controller  (not a disk)" in text
    assert "LUN 1       IET VIRTUAL-DISK  2048 blocks of 512 bytes = 1048576 bytes (1.0 MiB)" in text
    assert f"block 0     LUN 1: sha256 {'ab' * 32}" in text


@pytest.mark.tgt
def test_probe_of_a_lun_the_target_lacks_is_bad_input_and_logs_out(capsys, tgtd) -> None:
    from tests.support.tgtd import LunSpec

    tgtd.add_target(IQN, [LunSpec(1 << 20)])
    assert main(["probe", "--portal", tgtd.portal, "--target", IQN, "--lun", "9", "--timeout", "10"]) == 2
    assert "--lun: the target reports no such LUN (it has: 0, 1) (got 9)" in capsys.readouterr().err
    # The session was closed by a logout, so a new login with the same name and a fresh ISID is served at once.
    assert main(["probe", "--portal", tgtd.portal, "--target", IQN, "--json", "--timeout", "10"]) == 0


HOSTILE = "\x1b]0;owned\x07\x1b[2J\nforged line\x9b"


def test_discover_escapes_what_the_target_named(capsys) -> None:
    """A target's names reach the terminal with every control character escaped (an OSC or CSI sequence would
    retitle the window or clear the screen; a newline would forge a line)."""
    from tests.initiator.scripted_target import Script, scripted_portal

    answer = f"TargetName=iqn.2026-11.test:{HOSTILE}\x00TargetAddress=127.0.0.1:3260,1\x00".encode()
    with scripted_portal(Script(send_targets=answer)) as (portal, _):
        assert main(["discover", f"{portal.address}:{portal.port}", "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1, out
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out.rstrip("\n")), out
    assert "\\x1b]0;owned\\x07" in out


def test_probe_escapes_every_value_from_the_target() -> None:
    from boot.commands.probe import render

    report = {
        "target": IQN,
        "portal": "127.0.0.1:3260",
        "tsih": 1,
        "negotiated": {"TargetAlias": HOSTILE, f"X-{HOSTILE}": "1"},
        "luns": [{"lun": 0, "vendor": HOSTILE, "product": "disk\r\n", "blocks": None}],
        "block0_sha256": None,
        "lun": None,
    }
    text = render(report, as_json=False)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text.replace("\n", "")), text
    assert len(text.splitlines()) == len(
        human(report | {"negotiated": {}, "luns": [report["luns"][0] | {"vendor": "v", "product": "p"}]}).splitlines()
    )
    as_json = render(report, as_json=True)
    assert all(0x20 <= ord(c) < 0x7F for c in as_json.replace("\n", "")), as_json
