"""Lab mode for real: boot the pinned kernel under QEMU, run commands in the host's files, get status and output."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from harness.console import ExitReason
from harness.lab import run_in_lab
from harness.paths import REPO

pytestmark = pytest.mark.vm

LAB_BOUND = 150.0  # TCG on a busy 2-core machine; an idle run takes about 6 s


def test_lab_runs_a_command_and_returns_status_stdout_and_stderr(pinned_kernel):
    result = run_in_lab(
        ["sh", "-c", 'uname -r; echo "to stderr" >&2; modprobe target_core_mod && echo modprobed; exit 3'],
        bound=LAB_BOUND,
    )
    assert result.status == 3, result.console.summary()
    assert result.stdout.splitlines() == [pinned_kernel.release, "modprobed"]  # the whole module tree is there
    assert result.stderr == "to stderr\n"
    assert result.console.reason is ExitReason.POWEROFF
    names = [m.name for m in result.console.markers]
    assert names == ["init", "modules", "net", "chroot", "exit"]
    assert result.console.marker("exit").detail == "3"


def test_lab_runs_the_project_python_with_the_guest_kernel_iscsi_transport(pinned_kernel):
    """The checkout and its venv are visible, iscsi_tcp is loaded, modules are the guest kernel's own."""
    code = (
        "import os, boot.cli, pyroute2;"
        "print(sorted(os.listdir('/sys/class/iscsi_transport')));"
        "print(os.path.isdir('/lib/modules/' + os.uname().release + '/kernel'));"
        "open('/etc/written-in-guest', 'w').write('x')"
    )
    result = run_in_lab([str(REPO / ".venv/bin/python"), "-c", code], bound=LAB_BOUND)
    assert result.status == 0, result.stderr + result.console.summary()
    assert result.stdout.splitlines() == ["['tcp']", "True"]
    assert not Path("/etc/written-in-guest").exists()  # writes stayed in the guest overlay


def test_lab_hands_an_acpi_ibft_to_the_guest_and_shares_a_writable_dir(pinned_kernel, tmp_path):
    """The UEFI-style path: QEMU's -acpitable with a captured iBFT; iscsi_ibft and NETLINK_ISCSI answer."""
    fixture = REPO / "tests/fixtures/ibft/ipxe-two-targets.bin"
    script = (
        f"modprobe iscsi_ibft && cat /sys/firmware/ibft/target1/target-name > {tmp_path}/name && "
        f"cmp /sys/firmware/acpi/tables/iBFT {fixture} && "
        "python3 -c 'import socket; s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 8); s.bind((0, 0))'"
    )
    result = run_in_lab(["sh", "-c", script], bound=LAB_BOUND, acpi_tables=[fixture], shares=[tmp_path])
    assert result.status == 0, result.stderr + result.console.summary()
    assert (tmp_path / "name").read_text() == "iqn.2026-11.org.pyiscsi:second\n"


def test_lab_through_ipxe_sanhook_sees_the_firmware_ibft_of_a_live_target(pinned_kernel):
    """The legacy-BIOS path for the lead's boot tests: iPXE logs in to our tgtd, Linux finds its iBFT."""
    from harness.ipxe import SanTarget
    from harness.lab import LabSanhook
    from tests.support.tgtd import LunSpec, Tgtd

    iqn = "iqn.2026-11.org.pyiscsi:lab-sanhook"
    with Tgtd() as tgt:
        tgt.add_target(iqn, [LunSpec(16 << 20)])
        hook = LabSanhook((SanTarget("10.0.2.2", tgt.port, 1, iqn),), "iqn.2026-11.org.pyiscsi:lab")
        script = "modprobe iscsi_ibft && cat /sys/firmware/ibft/target0/target-name /sys/firmware/ibft/target0/port"
        result = run_in_lab(["sh", "-c", script], bound=LAB_BOUND, sanhook=hook)
    assert result.status == 0, result.stderr + result.console.summary()
    assert result.stdout.splitlines() == [iqn, str(tgt.port)]
    assert "pyiscsi-ipxe: sanhooked" in result.console.log()


def test_lab_guest_reaches_a_host_loopback_service_as_10_0_2_2(pinned_kernel):
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(LAB_BOUND)
        port = server.getsockname()[1]
        got: list[bytes] = []

        def accept_one():
            conn, _ = server.accept()
            with conn:
                got.append(conn.recv(64))

        thread = threading.Thread(target=accept_one, daemon=True)
        thread.start()
        code = f"import socket; socket.create_connection(('10.0.2.2', {port}), timeout=10).sendall(b'from-guest')"
        result = run_in_lab(["python3", "-c", code], bound=LAB_BOUND)
        thread.join(timeout=5)
    assert result.status == 0, result.stderr + result.console.summary()
    assert got == [b"from-guest"]


def test_lab_without_net_leaves_eth0_down_for_our_own_bring_up(pinned_kernel):
    result = run_in_lab(["ip", "-4", "-o", "addr", "show", "dev", "eth0"], bound=LAB_BOUND, configure_net=False)
    assert result.status == 0, result.stderr + result.console.summary()
    assert result.stdout == ""
