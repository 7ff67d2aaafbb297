"""bench.nodhcp, bench.recovery, bench.net_bringup's DHCPv6 row: scenario definitions, the boots' arguments (a fake
harness.bootvm.boot), console parsing, tables, dhclient command lines and script (a fake `ip`). No timing asserts."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import __main__ as bench_main
from bench import boot, net6, net_bringup, nodhcp, recovery
from boot.plan import Method


def test_new_benchmarks_are_registered() -> None:
    assert {"nodhcp", "recovery", "net6"} <= set(bench_main.BENCHMARKS)
    assert net6.ONLY == ("dhcp6",) and "dhcp6" in net_bringup.rows_to_measure()
    rows = net_bringup.rows_to_measure()
    assert {"dhcp", "auto6", "no-ip=,v6-only", "dhcp6", "static6+DAD", "static4"} == set(rows)
    # the no-ip= row is the planner's own method for a command line without ip=, on a network with only an RA
    assert rows["no-ip=,v6-only"][1]["method"] == Method.AUTO.value
    assert rows["no-ip=,v6-only"][0] is rows["auto6"][0]


def test_scenario_command_lines() -> None:
    values = {"uuid": "U", "host": "10.0.2.2", "port": "3261", "lun": "1", "iqn": "iqn.x:r", "initiator": "iqn.y:c"}
    nodhcp_line = boot.append_for(nodhcp.SCENARIO, values)
    assert "netroot=iscsi:10.0.2.2::3261:1:iqn.x:r ip=dhcp" in nodhcp_line
    assert "rd.net.timeout.dhcp=30" in nodhcp_line and "root=UUID=U" in nodhcp_line
    recovery_line = boot.append_for(recovery.SCENARIO, values)
    assert "rd.iscsi.firmware=1 ip=ibft" in recovery_line and "netroot" not in recovery_line


class FakeBoot:
    """Stands in for harness.bootvm.boot: records the Boot it got, answers with a canned console."""

    def __init__(self, log: Path, reason: str = "poweroff", marks: tuple = ()) -> None:
        self.log, self.reason, self.marks, self.specs = log, reason, marks, []

    def __call__(self, spec, vmlinuz, initrd, root, bound):
        self.specs.append((spec, bound))
        console = SimpleNamespace(
            log=lambda: self.log.read_text(),
            marker=lambda name: next((m for m in self.marks if m.name == name), None),
            reason=SimpleNamespace(value=self.reason),
            wall_seconds=42.0,
            log_path=self.log,
        )
        return SimpleNamespace(console=console)


@pytest.fixture
def fake_boot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    from harness import bootvm, kernel

    log = tmp_path / "console.log"
    log.write_text(OURS_NODHCP)
    fake = FakeBoot(log)
    monkeypatch.setattr(bootvm, "boot", fake)
    monkeypatch.setattr(kernel, "require", lambda: SimpleNamespace(vmlinuz=Path("/k")))
    return fake


def test_nodhcp_boot_gets_the_dead_nic_and_runs_to_poweroff(fake_boot: FakeBoot) -> None:
    from harness import bootvm

    sample = boot.boot_once("ours", Path("/i"), nodhcp.SCENARIO, Path("/r"), bound=9.0, netdev=bootvm.DEAD_NETDEV)
    spec, bound = fake_boot.specs[0]
    assert spec.netdev == bootvm.DEAD_NETDEV and "udp=" in spec.netdev and not spec.ipxe and bound == 9.0
    assert "ip=dhcp" in spec.cmdline and spec.stop_on == "realroot"  # the boot never gets there: ends at poweroff
    assert sample.realroot is None and boot.clear_failure(sample) and sample.last_stamp == pytest.approx(58.786509)


def test_recovery_boot_uses_ipxe_and_stops_at_recovered(fake_boot: FakeBoot) -> None:
    boot.boot_once("stock", Path("/i"), recovery.SCENARIO, Path("/r"), stop_on="recovered")
    spec, _ = fake_boot.specs[0]
    assert spec.ipxe and spec.stop_on == "recovered" and spec.netdev is None and spec.target_up


OURS_NODHCP = """\
[    0.103800] Kernel command line: console=ttyS0 ip=dhcp rd.net.timeout.dhcp=30
[   24.071614] pyiscsi[196]: PYISCSI-MARK start 24.050
[   55.282351] pyiscsi[196]: PYISCSI-MARK failed 55.260 exit 5: WaitTimeout
[   55.297722] pyiscsi[196]: pyiscsi boot: wait 'dhcp' ran out after 30s: eth0: no DHCPOFFER
[   58.786509] reboot: Power down
"""

STOCK_NODHCP = """\
[    0.000000] Command line: console=ttyS0 rd.emergency=poweroff ip=dhcp
[    0.103800] Kernel command line: console=ttyS0 rd.emergency=poweroff ip=dhcp
[   20.100000] dhclient[300]: DHCPDISCOVER on ens2 to 255.255.255.255 port 67 interval 3
[  157.405610] dracut-initqueue[283]: Warning: dracut-initqueue: timeout, still waiting for following initqueue hooks:
[  157.511995] dracut-initqueue[283]: Warning: /lib/dracut/hooks/initqueue/finished/dhclient-ens2.sh: "[ -f x ]"
[  194.430000] dracut-initqueue[283]: Warning: dracut-initqueue: starting timeout scripts
"""


def test_failure_lines() -> None:
    secs, line = nodhcp.failure_line("ours", OURS_NODHCP)
    assert secs == pytest.approx(55.297722) and line.startswith("pyiscsi[196]: pyiscsi boot: wait 'dhcp'")
    secs, line = nodhcp.failure_line("stock", STOCK_NODHCP)
    assert secs == pytest.approx(157.40561) and "timeout, still waiting" in line
    assert nodhcp.failure_line("stock", "[ 1.0] dhclient[1]: DHCPDISCOVER on ens2\n") == (None, "")
    real = "[ 56.5] dracut-initqueue[334]: Warning: rd.net.timeout.dhcp has no effect because dhclient does not ...\n"
    real += "[ 119.737158] dracut-initqueue[334]: Warning: dhcp for interface ens2 failed\n"
    assert nodhcp.failure_line("stock", real) == (
        pytest.approx(119.737158),
        "dracut-initqueue[334]: Warning: dhcp for interface ens2 failed",
    )
    assert nodhcp.failure_line("ours", "[ 1.0] pyiscsi boot: wait 'login' ran out\n") == (None, "")


def _boot_sample(stack: str, reason: str, stamp: float, wall: float) -> boot.Sample:
    return boot.Sample(stack, "nodhcp", None, None, wall, stamp, reason, Path("/l"))


def test_nodhcp_report_ratio_and_cut_off_stock() -> None:
    ours = [
        nodhcp.from_sample(_boot_sample("ours", "poweroff, no real root", 58.8, 64.0), OURS_NODHCP),
        nodhcp.from_sample(_boot_sample("ours", "poweroff, no real root", 60.8, 66.0), OURS_NODHCP),
    ]
    stock_timeout = nodhcp.from_sample(_boot_sample("stock", "timeout, no real root", 194.4, 200.1), STOCK_NODHCP)
    assert (
        stock_timeout.cut_off
        and stock_timeout.gave_up is None
        and stock_timeout.line_uptime == pytest.approx(157.41, abs=0.01)
    )
    lines = nodhcp.report([*ours, stock_timeout]).splitlines()
    first = next(line for line in lines if line.startswith("failure line"))
    assert first.split()[-3:] == ["55.30", "157.41", "0.35x"]
    gives_up = next(line for line in lines if line.startswith("guest gives up (poweroff)"))
    assert gives_up.split()[-3:] == ["59.80", ">194", "-"]  # the cut-off boot's last stamp
    wall = next(line for line in lines if line.startswith("guest gives up, host wall"))
    assert wall.split()[-3:] == ["65.00", ">200", "-"]
    assert any(line.startswith("ours: failed clearly") and "2/2" in line for line in lines)
    assert any(line.startswith("stock: failed clearly") and "0/1" in line for line in lines)
    silent = nodhcp.from_sample(_boot_sample("stock", "timeout, no real root", 190.0, 200.0), "[ 1.0] nothing\n")
    assert nodhcp.report([silent]).splitlines()[2].split()[-2] == ">190"


RECOVERY_LOG = """\
PYISCSI-MARK realroot 45.10 30 args
PYISCSI-MARK iscsid 47.00
iscsid: Kernel reported iSCSI connection 1:0 error (1020 - ISCSI_ERR_TCP_CONN_CLOSE: TCP connection closed) state (1)
[   47.500000]  connection1:0: detected conn error (1020)
pyiscsi-agent[90]: root: recovered after 0.4s (1 attempt(s))
PYISCSI-MARK adopted 48.50 session1 iqn.2026-12.org.pyiscsi:root
PYISCSI-MARK await-failure 49.00
[   49.812345]  connection1:0: detected conn error (1020)
PYISCSI-MARK conn-lost 50.00 connection1:0: detected conn error (1020)
iscsid: connection1:0 is operational after recovery (2 attempts)
PYISCSI-MARK recovered 53.30 session1 LOGGED_IN, /dev/sda reads
[   54.000000] reboot: Power down
"""


def test_recovery_parse_and_owner() -> None:
    got = recovery.parse("stock", RECOVERY_LOG, "real root", Path("/l"))
    assert got.adopted == pytest.approx(48.5) and got.conn_error == pytest.approx(49.812345)
    assert got.recovered == pytest.approx(53.3) and got.restart == pytest.approx(49.0)
    assert got.seconds == pytest.approx(4.3)  # from the restart, not from adoption's own reconnect at 47.5
    assert got.owners == ("iscsid",) and got.failed == ""  # the agent line before await-failure does not count
    agent = RECOVERY_LOG.replace("iscsid: connection1:0 is operational after recovery (2 attempts)\n", "")
    agent += "pyiscsi-agent[90]: root: recovered after 3.1s (2 attempt(s))\n"
    assert recovery.parse("ours", agent, "real root", Path("/l")).owners == ("pyiscsi agent",)


def test_recovery_failed_boot() -> None:
    log = RECOVERY_LOG.split("PYISCSI-MARK recovered")[0]
    log += "PYISCSI-MARK realroot-fail 140.00 iscsid did not recover session1 within 90s (state FAILED)\n"
    got = recovery.parse("ours", log, "real root", Path("/l"))
    assert got.seconds is None and got.failed.startswith("iscsid did not recover")
    assert recovery.parse("ours", "", "timeout, no real root", Path("/l")).failed == "timeout, no real root"


def test_recovery_report() -> None:
    good = recovery.parse("stock", RECOVERY_LOG, "real root", Path("/l"))
    ours_log = RECOVERY_LOG.replace("53.30", "51.15")  # 2.15 s after the restart
    ours = recovery.parse("ours", ours_log, "real root", Path("/l"))
    lines = recovery.report([ours, good]).splitlines()
    row = next(line for line in lines if line.startswith("tgtd restart"))
    assert row.split()[-3:] == ["2.15", "4.30", "0.50x"]
    assert any(line.startswith("stock: recovered (iscsid)") and "1/1" in line for line in lines)


def test_dhclient_command_lines(tmp_path: Path) -> None:
    start, stop = net_bringup.dhclient_argv("6", str(tmp_path))
    assert start[:3] == ["dhclient", "-1", "-6"] and start[-1] == "c0"
    assert start[start.index("-sf") + 1] == f"{tmp_path}/dhclient6-script"
    assert stop[:3] == ["dhclient", "-6", "-x"] and stop[3:] == start[3:-1]
    assert net_bringup.dhclient_argv("4", str(tmp_path))[0][2] == "-4"


def _run_script(tmp_path: Path, env: dict[str, str]) -> list[str]:
    """net_bringup.DHCLIENT6_SCRIPT with a fake `ip` that logs its arguments and shows no tentative address."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    fake = bindir / "ip"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/ip.log\n')
    fake.chmod(0o755)
    script = tmp_path / "script"
    script.write_text(net_bringup.DHCLIENT6_SCRIPT)
    script.chmod(0o755)
    run_env = {"PATH": f"{bindir}:{os.environ['PATH']}", "interface": "c0", **env}
    subprocess.run([str(script)], env=run_env, check=True, timeout=10)
    log = tmp_path / "ip.log"
    return log.read_text().splitlines() if log.exists() else []


def test_dhclient6_script_applies_the_lease(tmp_path: Path) -> None:
    calls = _run_script(
        tmp_path, {"reason": "BOUND6", "new_ip6_address": "2001:db8:9::123", "new_ip6_prefixlen": "128"}
    )
    assert calls == ["-6 addr replace 2001:db8:9::123/128 dev c0"]


def test_dhclient6_script_preinit_brings_the_link_up_and_waits_for_dad(tmp_path: Path) -> None:
    calls = _run_script(tmp_path, {"reason": "PREINIT6"})
    assert calls == ["link set dev c0 up", "-6 addr show dev c0 scope link tentative"]
    other = tmp_path / "other"
    other.mkdir()
    assert _run_script(other, {"reason": "EXPIRE6"}) == []  # other reasons: nothing to do


def test_dhcp6_server_options_give_the_m_flag_and_a_range() -> None:
    assert any(o.startswith("--dhcp-range=2001:db8:9::") for o in net_bringup.DHCP6_OPTIONS)
    assert "--enable-ra" in net_bringup.DHCP6_OPTIONS
    assert "scope global -tentative" in net_bringup.USABLE6_LOOP and "route show default" in net_bringup.USABLE6_LOOP


def test_net_table_ratio() -> None:
    assert net_bringup._ratio("1.000", "4.000") == "0.25x"
    assert net_bringup._ratio("1.000", "0.000") == "n/a"
