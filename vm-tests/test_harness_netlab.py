"""harness.netlab: the address plan, dnsmasq's argv per mode, QEMU on the taps, stale namespaces, dnsmasq's log
(pure); then a real lab with a client namespace on its bridge in place of a VM (root, `netns` marker)."""

from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import netlab
from harness.errors import HarnessError
from harness.netlab import AddressPlan, LabConfig, NetLab, Stack
from harness.qemu import VmSpec, build_command
from tests.boot.net import netns

WORK = Path("/w")
IQN = "iqn.2026-12.org.pyiscsi:root"


def argv_of(config: LabConfig, boot_url: str | None = None) -> list[str]:
    return netlab.dnsmasq_argv(config, WORK, boot_url)


def options(argv: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in argv if arg.startswith(f"--{name}=")]


# --- the address plan ------------------------------------------------------------------------------------------


def test_default_plan():
    plan = AddressPlan()
    assert (str(plan.server4), str(plan.server6)) == ("192.168.77.1", "fd70:7969:7363:1::1")
    assert [str(a) for a in plan.pool4] == ["192.168.77.100", "192.168.77.199"]
    assert [str(a) for a in plan.pool6] == ["fd70:7969:7363:1::100", "fd70:7969:7363:1::1ff"]
    assert plan.bridge_addresses(Stack.DUAL) == ["192.168.77.1/24", "fd70:7969:7363:1::1/64"]
    assert plan.bridge_addresses(Stack.IPV4) == ["192.168.77.1/24"]
    assert plan.bridge_addresses(Stack.IPV6) == ["fd70:7969:7363:1::1/64"]


@pytest.mark.parametrize(
    ("subnet4", "subnet6", "field"),
    [
        ("10.0.2.0/24", "fd00::/64", "subnet4"),  # QEMU's NAT
        ("10.0.0.0/16", "fd00::/64", "subnet4"),  # not a /24 (and it would hold 10.0.2.0/24)
        ("8.8.8.0/24", "fd00::/64", "subnet4"),  # public
        ("127.0.5.0/24", "fd00::/64", "subnet4"),  # loopback
        ("192.168.1.0/24", "2001:db8::/64", "subnet6"),  # not a ULA
        ("192.168.1.0/24", "fc00::/64", "subnet6"),  # fc00::/8 is not for local assignment
        ("192.168.1.0/24", "fd00::/48", "subnet6"),
    ],
)
def test_plan_refuses_subnets_that_could_clash(subnet4, subnet6, field):
    with pytest.raises(HarnessError, match=f"netlab {field}"):
        AddressPlan(ipaddress.IPv4Network(subnet4), ipaddress.IPv6Network(subnet6))


@given(
    st.one_of(
        st.tuples(st.just(192), st.just(168), st.integers(0, 255)),
        st.tuples(st.just(10), st.integers(1, 255), st.integers(0, 255)),
    ),
    st.integers(0, (1 << 56) - 1),
)
def test_any_valid_plan_keeps_servers_and_pools_inside_and_apart(octets, ula_bits):
    subnet4 = ipaddress.IPv4Network("{}.{}.{}.0/24".format(*octets))
    subnet6 = ipaddress.IPv6Network(((0xFD << 120) | (ula_bits << 64), 64))
    plan = AddressPlan(subnet4, subnet6)
    for server, (first, last), subnet in ((plan.server4, plan.pool4, subnet4), (plan.server6, plan.pool6, subnet6)):
        assert server in subnet and first in subnet and last in subnet
        assert first < last and not first <= server <= last
    assert not subnet4.overlaps(netlab.QEMU_USER_NET)


# --- the configuration -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lease_seconds": 119}, "lease_seconds"),
        ({"taps": 0}, "taps"),
        ({"taps": 9}, "taps"),
        ({"stack": Stack.IPV6, "ra": False, "slaac": True}, "slaac"),
        ({"stack": Stack.IPV6, "slaac": False, "dhcp6": False}, "address source"),
        ({"root_path": f"iscsi:192.168.77.1::3260:1:{IQN},x"}, "root_path"),  # a comma splits dnsmasq's option
        ({"root_path": "iscsi:192.168.77.1 ::3260"}, "root_path"),
        ({"root_path": '"iscsi:192.168.77.1::3260:1:x"'}, "root_path"),
        ({"stack": Stack.IPV6, "root_path": f"iscsi:[fd00::1]::3260:1:{IQN}"}, "root_path"),  # DHCPv4 only
        ({"stack": Stack.IPV6, "boot_file": "boot.ipxe"}, "boot_file"),
    ],
)
def test_config_refuses(kwargs, message):
    with pytest.raises(HarnessError, match=message):
        LabConfig(**kwargs)


def test_config_without_ipv6_ignores_the_ipv6_switches():
    assert LabConfig(stack=Stack.IPV4, ra=False, slaac=False, dhcp6=False).stack is Stack.IPV4


# --- dnsmasq's argv per mode -----------------------------------------------------------------------------------


def test_dnsmasq_serves_the_bridge_only_and_no_dns():
    for config in (LabConfig(stack=Stack.IPV4), LabConfig(stack=Stack.IPV6), LabConfig(dhcp6=True)):
        argv = argv_of(config)
        assert argv[0] == "dnsmasq"
        for flag in ("--port=0", "--bind-interfaces", "--interface=br0", "--except-interface=lo", "--no-ping"):
            assert flag in argv, (flag, argv)
        assert "--conf-file=/dev/null" in argv and "--keep-in-foreground" in argv
        assert options(argv, "dhcp-leasefile") == ["/w/br0.leases"]
        assert not [a for a in argv if "0.0.0.0" in a or a.endswith("=::")]


V4_RANGE = "192.168.77.100,192.168.77.199,255.255.255.0,{lease}"
V6_RANGE = "fd70:7969:7363:1::100,fd70:7969:7363:1::1ff{mode},64,{lease}"
RA = ["--enable-ra", "--ra-param=br0,10,1800"]


@pytest.mark.parametrize(
    ("config", "ranges", "ra"),
    [
        (LabConfig(stack=Stack.IPV4, lease_seconds=120), [V4_RANGE.format(lease=120)], False),
        (LabConfig(stack=Stack.IPV6), ["fd70:7969:7363:1::,ra-only,64"], True),  # SLAAC only
        (LabConfig(stack=Stack.IPV6, slaac=False, dhcp6=True), [V6_RANGE.format(mode="", lease=3600)], True),
        (LabConfig(stack=Stack.IPV6, dhcp6=True, lease_seconds=600), [V6_RANGE.format(mode=",slaac", lease=600)], True),
        (LabConfig(stack=Stack.IPV6, ra=False, slaac=False, dhcp6=True), [V6_RANGE.format(mode="", lease=3600)], False),
        (LabConfig(), [V4_RANGE.format(lease=3600), "fd70:7969:7363:1::,ra-only,64"], True),
        (
            LabConfig(dhcp6=True, lease_seconds=120),
            [V4_RANGE.format(lease=120), V6_RANGE.format(mode=",slaac", lease=120)],
            True,
        ),
    ],
    ids=["v4", "v6-slaac", "v6-dhcp6", "v6-slaac-dhcp6", "v6-dhcp6-no-ra", "dual", "dual-dhcp6"],
)
def test_dnsmasq_ranges_and_router_advertisements_per_mode(config, ranges, ra):
    argv = argv_of(config)
    assert options(argv, "dhcp-range") == ranges
    assert all(flag in argv for flag in RA) if ra else not [a for a in argv if a.startswith(("--enable-ra", "--ra-"))]
    assert options(argv, "dhcp-option") == [] and options(argv, "dhcp-boot") == []


def test_dnsmasq_root_path_and_boot_file():
    root_path = f"iscsi:192.168.77.1::3260:1:{IQN}"
    argv = argv_of(LabConfig(stack=Stack.IPV4, root_path=root_path), "http://192.168.77.1:8080/boot.ipxe")
    assert options(argv, "dhcp-option") == [f"option:root-path,{root_path}"]
    assert options(argv, "dhcp-boot") == ["http://192.168.77.1:8080/boot.ipxe"]


@pytest.mark.parametrize(
    ("config", "ports"),
    [
        (LabConfig(stack=Stack.IPV4), [("udp", 67)]),
        (LabConfig(stack=Stack.IPV6), [("raw6", 58)]),
        (LabConfig(stack=Stack.IPV6, ra=False, slaac=False, dhcp6=True), [("udp6", 547)]),
        (LabConfig(dhcp6=True), [("udp", 67), ("udp6", 547), ("raw6", 58)]),
    ],
)
def test_what_dnsmasq_must_hold_before_a_guest_asks(config, ports):
    assert netlab.dnsmasq_ports(config) == ports


# --- the bridge, the taps and QEMU -----------------------------------------------------------------------------


def test_bridge_commands_two_taps_dual_stack():
    cmds = netlab.bridge_commands(LabConfig(taps=2))
    assert cmds[0][:5] == ["link", "add", "name", "br0", "type"] and "stp_state" in cmds[0]
    assert ["addr", "add", "192.168.77.1/24", "dev", "br0"] in cmds
    assert ["addr", "add", "fd70:7969:7363:1::1/64", "dev", "br0", "nodad"] in cmds  # usable at once
    for tap in ("tap0", "tap1"):
        assert ["tuntap", "add", "dev", tap, "mode", "tap"] in cmds
        assert ["link", "set", tap, "master", "br0", "up"] in cmds
    assert cmds[-1] == ["link", "set", "br0", "up"]


def test_qemu_runs_in_the_namespace_with_one_nic_per_tap():
    lab = NetLab(LabConfig(taps=2))  # not started: attach() only shapes the spec
    spec = lab.attach(VmSpec(kernel=Path("/k"), initrd=Path("/i"), append="console=ttyS0"))
    argv = build_command(spec, "tcg")
    assert argv[:5] == ["ip", "netns", "exec", lab.name, "qemu-system-x86_64"]
    netdevs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-netdev"]
    devices = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-device"]
    assert netdevs == [
        "tap,ifname=tap0,script=no,downscript=no,id=n0",
        "tap,ifname=tap1,script=no,downscript=no,id=n1",
    ]
    assert devices == ["virtio-net-pci,netdev=n0", "virtio-net-pci,netdev=n1"]
    assert not [arg for arg in argv if arg.startswith("user,")]


def test_a_lab_netboot_needs_no_bootfile_but_a_user_network_one_still_does():
    lab = NetLab()
    argv = build_command(lab.attach(VmSpec()), "tcg")
    assert "-boot" in argv and "-kernel" not in argv
    with pytest.raises(HarnessError, match="nothing to boot"):
        build_command(VmSpec(), "tcg")


def test_user_network_unchanged_without_netdevs():
    argv = build_command(VmSpec(kernel=Path("/k")), "tcg")
    assert argv[0] == "qemu-system-x86_64"
    assert argv[argv.index("-netdev") + 1] == "user,id=n0,net=10.0.2.0/24"
    assert argv.count("-netdev") == 1 and argv[argv.index("-device") + 1] == "virtio-net-pci,netdev=n0"


# --- names and leftovers ---------------------------------------------------------------------------------------


def test_namespace_names_carry_their_maker():
    name = netlab.namespace_name(4242, 7)
    assert name == "pyinetlab-4242-7" and netlab.namespace_owner(name) == 4242
    assert netlab.namespace_owner("pyis25528x2") is None
    assert netlab.namespace_owner("pyinetlab-x-1") is None


def test_stale_namespaces_are_ours_whose_maker_is_gone():
    names = ["pyinetlab-10-0", "pyinetlab-11-3", "pyinetlab-junk", "pyis25528x2", "expns", "pyinetlab-12-1"]
    alive = {11, 12}
    assert netlab.stale_namespaces(names, lambda pid: pid in alive) == ["pyinetlab-10-0", "pyinetlab-junk"]


def test_parse_netns_list():
    assert netlab.parse_netns_list("pyinetlab-1-0 (id: 3)\nexpns\n\n") == ["pyinetlab-1-0", "expns"]


DNSMASQ_LOG = """\
dnsmasq-dhcp[29252]: 30229667 DHCPDISCOVER(br0) 82:6b:36:91:19:3a
dnsmasq-dhcp[29252]: 30229667 DHCPOFFER(br0) 192.168.77.153 82:6b:36:91:19:3a
dnsmasq-dhcp[29252]: 30229667 DHCPREQUEST(br0) 192.168.77.153 82:6b:36:91:19:3a
dnsmasq-dhcp[29252]: 30229667 DHCPACK(br0) 192.168.77.153 82:6b:36:91:19:3a
dnsmasq-dhcp[29252]: 3189747 DHCPREPLY(br0) fd70:7969:7363:1::1e3 00:03:00:01:82:6b:36:91:19:3a
dnsmasq-dhcp[29252]: 3189747 sent size: 24 option: 25 ia-na  IAID=1 T1=60 T2=105
dnsmasq-dhcp[29252]: RTR-ADVERT(br0) fd70:7969:7363:1::
dnsmasq-dhcp[29252]: DHCPACK(br0) 192.168.77.154 52:54:00:12:34:56 guest
"""


def test_dhcp_acks_from_the_log():
    acks = netlab.dhcp_acks(DNSMASQ_LOG)
    assert [(str(a.address), a.client, a.iface) for a in acks] == [
        ("192.168.77.153", "82:6b:36:91:19:3a", "br0"),
        ("fd70:7969:7363:1::1e3", "00:03:00:01:82:6b:36:91:19:3a", "br0"),
        ("192.168.77.154", "52:54:00:12:34:56", "br0"),
    ]


# --- a real lab, a client namespace in place of the VM ---------------------------------------------------------

REASON = netlab.unavailable_reason() or (None if Path("/bin/busybox").exists() else "no busybox (udhcpc, wget)")


def plug(lab: NetLab, client: netns.Namespace) -> None:
    """A veth from `client` (c0) into the lab's bridge: on the wire, the same as a VM's tap."""
    netns.sh("ip", "-n", client.name, "link", "add", "c0", "type", "veth", "peer", "name", "p0", "netns", lab.name)
    netns.sh("ip", "-n", lab.name, "link", "set", "p0", "master", netlab.BRIDGE, "up")
    client.ip("link", "set", "c0", "up")


def discover(client: netns.Namespace, portal: str) -> str:
    done = client.run(netns.PYTHON, "-m", "boot", "discover", portal, "--initiator", f"{IQN}-client", check=False,
                      timeout=30)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.netns
@pytest.mark.tgt
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_real_lab_ipv4_lease_root_path_boot_file_http_and_target(tmp_path):
    root_path = f"iscsi:192.168.77.1::3260:1:{IQN}"
    config = LabConfig(stack=Stack.IPV4, lease_seconds=120, root_path=root_path, boot_file="boot.ipxe")
    events = tmp_path / "events"
    script = tmp_path / "event.sh"
    script.write_text(f'#!/bin/sh\necho "$1 $ip $lease $rootpath $boot_file $router" >> {events}\n')
    script.chmod(0o755)
    with NetLab(config) as lab, netns.namespace("pyinlc") as client:
        disk = lab.workdir / "disk.img"
        disk.write_bytes(b"netlab disk\n" + bytes(1 << 20))
        lab.root_target(IQN, disk)
        (lab.www / "boot.ipxe").write_text("#!ipxe\necho netlab\n")
        plug(lab, client)
        udhcpc = ["busybox", "udhcpc", "-f", "-q", "-n", "-i", "c0", "-t", "5", "-T", "2", "-O", "rootpath"]
        client.run(*udhcpc, "-s", str(script), timeout=30)
        bound = [line.split() for line in events.read_text().splitlines() if line.startswith("bound")]
        assert len(bound) == 1
        _, address, lease, got_root_path, boot_file, router = bound[0]
        assert ipaddress.ip_address(address) in config.plan.subnet4 and lease == "120"
        assert (got_root_path, boot_file, router) == (root_path, lab.url("boot.ipxe"), "192.168.77.1")
        client.ip("addr", "add", f"{address}/24", "dev", "c0")
        fetched = client.run("busybox", "wget", "-q", "-O", "-", boot_file, timeout=20)
        assert fetched.stdout == "#!ipxe\necho netlab\n" and lab.http_requests == ["/boot.ipxe"]
        # the target advertises the address the client really reached, not a loopback one
        assert discover(client, "192.168.77.1:3260").split() == ["192.168.77.1:3260,1", IQN]
        acks = lab.dhcp_acks()
        assert [str(a.address) for a in acks] == [address]
        pids = [lab._dnsmasq.pid, lab.tgtd().pid]
        name = lab.name
    assert name not in netlab.lab_namespaces()
    assert not [pid for pid in pids if pid is not None and Path(f"/proc/{pid}").exists()]


@pytest.mark.netns
@pytest.mark.tgt
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
@pytest.mark.parametrize("method", ["auto6", "dhcp6"])
def test_real_lab_ipv6_only_slaac_and_dhcp6_with_pyiscsi_bring_up(method):
    config = LabConfig(stack=Stack.IPV6, slaac=method == "auto6", dhcp6=method == "dhcp6")
    with NetLab(config) as lab, netns.namespace("pyinlc") as client:
        lab.root_target(IQN, _blank(lab))
        plug(lab, client)
        result = netns.run_bring_up(client, {"interfaces": [{"name": "c0", "method": method}]})
        assert result.status == 0, (result.document, result.stderr, lab.dhcp_log()[-2000:])
        (interface,) = result.document["interfaces"]
        (address,) = interface["addresses"]
        assert ipaddress.ip_interface(address).ip in config.plan.subnet6, address
        assert interface["gateway6"] and interface["gateway6"].startswith("fe80::")
        if method == "dhcp6":
            first, last = config.plan.pool6
            assert first <= ipaddress.ip_interface(address).ip <= last
            assert interface["lease"]["lease_time"] == 3600
        assert discover(client, "[fd70:7969:7363:1::1]:3260").split() == ["[fd70:7969:7363:1::1]:3260,1", IQN]


@pytest.mark.netns
@pytest.mark.tgt
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_dual_stack_target_listens_on_both_lab_addresses_only():
    with NetLab(LabConfig(dhcp6=True)) as lab:
        lab.root_target(IQN, _blank(lab))
        listening = subprocess.run(["ip", "netns", "exec", lab.name, "ss", "-Hltn"], capture_output=True, text=True,
                                   timeout=10, check=True).stdout  # fmt: skip
    local = sorted(line.split()[3] for line in listening.splitlines())
    assert [a for a in local if a.endswith(":3260")] == ["192.168.77.1:3260", "[fd70:7969:7363:1::1]:3260"]
    assert not [a for a in local if a.startswith(("0.0.0.0", "*", "[::]"))]


@pytest.mark.netns
@pytest.mark.skipif(REASON is not None, reason=REASON or "")
def test_teardown_on_failure_and_stale_namespaces_removed_at_start():
    dead = _dead_pid()
    stale = netlab.namespace_name(dead, 0)
    netns.sh("ip", "netns", "add", stale)
    try:
        with pytest.raises(RuntimeError, match="test failed inside"), NetLab(LabConfig(stack=Stack.IPV4)) as lab:
            assert stale not in netlab.lab_namespaces()  # a crashed run's leftover went when this lab started
            name, pid = lab.name, lab._dnsmasq.pid
            raise RuntimeError("test failed inside the lab")
    finally:
        netns.sh("ip", "netns", "del", stale, check=False)
    assert name not in netlab.lab_namespaces()
    assert not Path(f"/proc/{pid}").exists()


def _blank(lab: NetLab) -> Path:
    assert lab.workdir is not None
    disk = lab.workdir / "blank.img"
    with disk.open("wb") as out:
        out.truncate(8 << 20)
    return disk


def _dead_pid() -> int:
    """A pid no process can have: one above the kernel's pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text()) + 1
