"""pyiscsi-vmtest end to end, as a CI job runs it: the installed command, real images, QEMU under TCG.

Ours (harness.initramfs) and the stock stack's (bench.stock: Debian's dracut with 95iscsi and the fixes it needs)
both boot from an iPXE iBFT to the real root (harness.rootimage, cached); a wrong CHAP secret must come back as a
failure that names the phase it reached. No secret may show in the command's output, reports or console log.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

from harness import bootvm, rootimage

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

SECRET = "Ci5ecretValue9"
COMMAND = Path(sys.executable).parent / "pyiscsi-vmtest"
BOUND = 420  # host seconds for the whole command: one TCG boot is ~60 s (ours) to ~90 s (stock) here


@pytest.fixture(scope="session")
def root_image():
    return rootimage.build()


@pytest.fixture(scope="session")
def stock_image(pinned_kernel):
    from bench import stock

    return stock.build_image("stock", "systemd")


def run_tool(tmp_path: Path, *args: str) -> tuple[int, str, dict, ElementTree.Element, str]:
    if not COMMAND.exists():
        pytest.skip(f"{COMMAND} not installed (make deps)")
    junit, report, log = tmp_path / "junit.xml", tmp_path / "timeline.json", tmp_path / "console.log"
    argv = [str(COMMAND), *args, "--junit", str(junit), "--json", str(report), "--log", str(log)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=BOUND, check=False)
    output = done.stdout + done.stderr
    print(output)
    texts = (output, junit.read_text(), report.read_text(), log.read_text())
    assert not [t for t in texts if SECRET in t], "a secret leaked"
    return done.returncode, output, json.loads(report.read_text()), ElementTree.fromstring(junit.read_text()), texts[3]


def assert_passed(status, output, data, junit):
    assert status == 0, output
    assert data["passed"] and data["last_phase"] == "realroot", output
    phases = [p["phase"] for p in data["phases"]]
    for wanted in ("firmware", "sanhook", "kernel", "login", "disk", "realroot"):
        assert wanted in phases, output
    assert junit.find("testsuite/testcase/failure") is None
    assert "PASSED" in output


def test_ours_from_an_ibft_with_chap(tmp_path, pinned_kernel, systemd_image, root_image):
    status, output, data, junit, _ = run_tool(
        tmp_path, "--kernel", str(pinned_kernel.vmlinuz), "--initrd", str(systemd_image), "--root", str(root_image),
        "--ibft", "--chap", f"ci-user:{SECRET}", "--name", "ours-ibft",
    )  # fmt: skip
    assert_passed(status, output, data, junit)
    assert "link" in [p["phase"] for p in data["phases"]]  # pyiscsi's own `address` mark


def test_stock_stack_from_an_ibft(tmp_path, pinned_kernel, stock_image, root_image):
    status, output, data, junit, _ = run_tool(
        tmp_path, "--kernel", str(pinned_kernel.vmlinuz), "--initrd", str(stock_image), "--root", str(root_image),
        "--ibft", "--chap", f"ci-user:{SECRET}", "--name", "stock-ibft",
    )  # fmt: skip
    assert_passed(status, output, data, junit)


def test_a_wrong_chap_secret_is_a_failure_naming_the_phase_reached(tmp_path, pinned_kernel, systemd_image, root_image):
    cmdline = "netroot=iscsi:{user}:wrongsecret77@{host}::{port}:{lun}:{target} ip=dhcp root=UUID={uuid}"
    status, output, data, junit, log = run_tool(
        tmp_path, "--kernel", str(pinned_kernel.vmlinuz), "--initrd", str(systemd_image), "--root", str(root_image),
        "--cmdline", cmdline, "--chap", f"ci-user:{SECRET}", "--name", "wrong-secret",
    )  # fmt: skip
    assert status == 1, output
    assert not data["passed"] and data["reason"] == "guest powered off", output
    assert data["last_phase"] == "link", output  # an address, then no login
    failure = junit.find("testsuite/testcase/failure")
    assert failure is not None and failure.get("message") == "guest powered off; last phase reached: link"
    assert "last phase reached: link" in output and f"console log kept: {tmp_path / 'console.log'}" in output
    assert "PYISCSI-MARK failed" in log
    assert any("authentication failed" in line for line in data["causes"]), output  # the cause, not just the tail
    assert "netroot=iscsi:ci-user:wrongsecret77@10.0.2.2::" in data["boot"]["kernel_args"]
