"""boot.planner: the merge rules of its docstring, one table row each, plus waits, the initiator name and load_plan."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot.cmdline import parse_cmdline
from boot.plan import BondPlan, BootPlan, BridgePlan, InterfacePlan, Method, RenamePlan, Source, TargetPlan, Timeouts
from boot.planner import build_plan, load_plan
from initiator.credentials import Chap
from initiator.errors import BadInputError, CmdlineError, ExitStatus, IbftError
from initiator.ibft import ChapType, Ibft, IbftFlags, IbftInitiator, IbftNic, IbftTarget, Origin, parse_ibft
from initiator.initiator_name import default_initiator_name, generated_name, validate_name
from initiator.secret import Secret
from tests.ibft_encoder import encode_ibft

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ibft"
IPXE = parse_ibft((FIXTURES / "ipxe-chap.bin").read_bytes(), "ipxe-chap.bin")
IP = ipaddress.ip_address
IFACE = ipaddress.ip_interface
T0 = "iqn.2026-11.test:root"
MAC = "52:54:00:12:34:56"
BOTH = IbftFlags.VALID | IbftFlags.BOOT_SELECTED


@pytest.fixture
def plan_of(tmp_path):
    """build_plan with no initiator file and a fixed machine id, so the name is predictable."""
    (tmp_path / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")

    def make(text: str, ibft: Ibft | None = None, multipathd: bool = True) -> BootPlan:
        return build_plan(
            parse_cmdline(text),
            ibft,
            initiator_file=str(tmp_path / "absent"),
            machine_id_path=str(tmp_path / "machine-id"),
            multipathd=multipathd,
        )

    return make


def _nic(index: int = 0, **kw) -> IbftNic:
    base = dict(index=index, flags=BOTH, ip=IP("192.0.2.10"), prefix=24, origin=Origin.MANUAL,
                gateway=IP("192.0.2.1"), dns=(IP("192.0.2.53"),), dhcp_server=None, vlan=0,
                mac=f"52:54:00:00:00:{index:02x}", pci_bdf=None, hostname=None)  # fmt: skip
    base.update(kw)
    return IbftNic(**base)


def _tgt(index: int = 0, **kw) -> IbftTarget:
    base = dict(index=index, flags=BOTH, ip=IP("192.0.2.1"), port=3260, lun=0, name=f"iqn.2026-11.fw:t{index}",
                nic_index=0, chap_type=ChapType.NONE)  # fmt: skip
    base.update(kw)
    return IbftTarget(**base)


def _ibft(nics, targets, name="iqn.2026-11.fw:init") -> Ibft:
    initiator = IbftInitiator(0, BOTH, name) if name else None
    return parse_ibft(encode_ibft(initiator, nics, targets), "test")


# ---- interfaces from the command line --------------------------------------------------------------------------

INTERFACE_CASES = [
    ("ip=eth0:dhcp netroot=iscsi:10.0.2.2::::" + T0, [InterfacePlan(name="eth0")]),
    ("ip=dhcp netroot=iscsi:10.0.2.2::::" + T0, [InterfacePlan()]),
    ("ip=eth0:on:9000", [InterfacePlan(name="eth0", mtu=9000)]),
    ("ip=eth0:single-dhcp", [InterfacePlan(name="eth0")]),
    ("ip=eth0:dhcp6 ip=eth1:auto6 ip=eth2:either6",
     [InterfacePlan(name="eth0", method=Method.DHCP6), InterfacePlan(name="eth1", method=Method.AUTO6),
      InterfacePlan(name="eth2", method=Method.EITHER6)]),
    ("ip=eth0:link6", [InterfacePlan(name="eth0", method=Method.NONE)]),
    ("ip=10.0.2.15::10.0.2.2:24:client:eth0:none:10.0.2.3",
     [InterfacePlan(name="eth0", method=Method.STATIC, addresses=(IFACE("10.0.2.15/24"),), gateway=IP("10.0.2.2"),
                    dns=(IP("10.0.2.3"),), hostname="client")]),
    ("ip=[2001:db8::5]::[2001:db8::1]:64::eth0:none",
     [InterfacePlan(name="eth0", method=Method.STATIC, addresses=(IFACE("2001:db8::5/64"),),
                    gateway6=IP("2001:db8::1"))]),
    ("ip=10.0.2.15:::24::eth0:dhcp", [InterfacePlan(name="eth0")]),  # DHCP wins; the address is noted
    ("ip=:::::eth0:none", [InterfacePlan(name="eth0", method=Method.NONE)]),
    ("ip=none", []),
    # vlan= turns what ip= names into its parent and id; an ifname= name stays (the link is renamed to it)
    ("vlan=eth0.5:eth0 ip=eth0.5:dhcp", [InterfacePlan(name="eth0", vlan=5)]),
    ("vlan=vlan0042:eth1 ip=vlan0042:auto6", [InterfacePlan(name="eth1", vlan=42, method=Method.AUTO6)]),
    (f"ifname=bootnet:{MAC} ip=bootnet:dhcp", [InterfacePlan(name="bootnet")]),
    (f"ifname=bootnet:{MAC} vlan=vlan7:bootnet ip=vlan7:dhcp", [InterfacePlan(name="bootnet", vlan=7)]),
    # ip=...:<macaddr>: the MAC to set on the link that ip= configures (named or not)
    (f"ip=eth0:dhcp:1400:{MAC}", [InterfacePlan(name="eth0", mtu=1400, set_mac=MAC)]),
    (f"ip=eth0:dhcp::{MAC.replace(':', '-')}", [InterfacePlan(name="eth0", set_mac=MAC)]),
    (f"ip=10.0.2.15::10.0.2.2:24::eth0:none:1500:{MAC}",
     [InterfacePlan(name="eth0", method=Method.STATIC, addresses=(IFACE("10.0.2.15/24"),), gateway=IP("10.0.2.2"),
                    mtu=1500, set_mac=MAC)]),
    (f"ip=10.0.2.15::10.0.2.2:24:::none:1500:{MAC}",
     [InterfacePlan(method=Method.STATIC, addresses=(IFACE("10.0.2.15/24"),), gateway=IP("10.0.2.2"), mtu=1500,
                    set_mac=MAC)]),
    # bond= / bridge=: the interface is the master; no ip=: the first bridge, else the first bond
    ("bond=bond0:eth0,eth1:mode=active-backup ip=bond0:dhcp", [InterfacePlan(name="bond0")]),
    ("bond vlan=bond0.5:bond0 ip=bond0.5:dhcp", [InterfacePlan(name="bond0", vlan=5)]),
    ("bond=bond0:eth0,eth1 netroot=iscsi:10.0.2.2::::" + T0,
     [InterfacePlan(name="bond0", method=Method.AUTO, family=4)]),
    ("bond bridge=br0:bond0 netroot=iscsi:10.0.2.2::::" + T0,
     [InterfacePlan(name="br0", method=Method.AUTO, family=4)]),
    ("bond=bond0:eth0,eth1 ip=dhcp", [InterfacePlan(name="bond0")]),
    ("bond=bond0:eth0,eth1 ip=dhcp bootdev=eth2", [InterfacePlan(name="eth2")]),
    # name servers go to every interface, after its own
    ("ip=10.0.2.15::10.0.2.2:24::eth0:none:10.0.2.3 ip=eth1:dhcp nameserver=1.1.1.1 nameserver=10.0.2.3",
     [InterfacePlan(name="eth0", method=Method.STATIC, addresses=(IFACE("10.0.2.15/24"),), gateway=IP("10.0.2.2"),
                    dns=(IP("10.0.2.3"), IP("1.1.1.1"))),
      InterfacePlan(name="eth1", dns=(IP("1.1.1.1"), IP("10.0.2.3")))]),
    # no ip=: DHCP for a network root (named by bootdev= or BOOTIF=), nothing without one unless rd.neednet
    # no ip=: DHCPv4 and IPv6 at once, the boot waiting for the root target's family (none for a host name)
    ("netroot=iscsi:10.0.2.2::::" + T0, [InterfacePlan(method=Method.AUTO, family=4)]),
    ("netroot=iscsi:[fd00::2]::::" + T0, [InterfacePlan(method=Method.AUTO, family=6)]),
    ("netroot=iscsi:san.example.test::::" + T0, [InterfacePlan(method=Method.AUTO)]),
    ("bootdev=eth1 netroot=iscsi:10.0.2.2::::" + T0, [InterfacePlan(name="eth1", method=Method.AUTO, family=4)]),
    ("BOOTIF=01-52-54-00-12-34-56 netroot=iscsi:10.0.2.2::::" + T0,
     [InterfacePlan(mac=MAC, method=Method.AUTO, family=4)]),
    ("ip=dhcp netroot=iscsi:[fd00::2]::::" + T0, [InterfacePlan()]),  # an explicit ip= keeps dracut's meaning
    ("ip=dhcp bootdev=eth3", [InterfacePlan(name="eth3")]),
    ("nameserver=9.9.9.9 rd.neednet", [InterfacePlan(method=Method.AUTO, dns=(IP("9.9.9.9"),))]),
    ("root=/dev/sda1", []),
]  # fmt: skip


@pytest.mark.parametrize(("text", "interfaces"), INTERFACE_CASES, ids=[c[0][:70] for c in INTERFACE_CASES])
def test_interfaces_from_the_command_line(plan_of, text, interfaces):
    assert list(plan_of(text).interfaces) == interfaces


@pytest.mark.parametrize(
    ("text", "note"),
    [
        ("ip=eth0:link6", "IPv6 link-local address only"),
        ("ip=10.0.2.15:::24::eth0:dhcp", "the address is ignored"),
        ("ip=10.0.0.1:10.0.0.2::32::ppp0:none", "peer is ignored"),
        ("bond=bond0:eth0,eth1:mode=4 ip=bond0:dhcp", "bond bond0: 802.3ad over eth0, eth1"),
        ("bond ip=bond0:dhcp", "bond bond0: balance-rr over eth0, eth1"),
        ("netroot=iscsi:10.0.2.2::::" + T0, "DHCPv4 and IPv6 (SLAAC, else DHCPv6) at once, the login waiting for IPv4"),
        ("netroot=iscsi:[fd00::2]::::" + T0, "at once, the login waiting for IPv6 on the first link with carrier"),
        ("netroot=nfs:10.0.0.1:/srv", "not an iSCSI root"),
        ("rd.iscsi.target.ip=10.0.0.1 rd.iscsi.target.group=3", "portal group"),
        ("netroot=dhcp", "the target comes from DHCP option 17 (root-path) of the lease, known only at boot"),
        ("root=dhcp ip=dhcp", "the target comes from DHCP option 17"),
        ("netroot=dhcp netroot=iscsi:10.0.2.2::::" + T0, "the command line names the target"),
        ("rd.iscsi.initiator=iqn.2026-11.a:b", "initiator name from rd.iscsi.initiator"),
        ("", "initiator name from generated (no rd.iscsi.initiator, iBFT or"),
    ],
)
def test_notes(plan_of, text, note):
    assert any(note in n for n in plan_of(text).notes), plan_of(text).notes


@pytest.mark.parametrize(
    "value", ["cifs://bob:Hunter2pw@10.0.0.5/share", "nfs:Hunter2pw@10.0.0.1:/srv", "nbd:10.0.0.1:Hunter2pw"]
)
def test_a_root_that_is_not_ours_is_named_by_its_scheme_only(plan_of, value):
    """Another module's root may carry credentials of its own: the note says which kind it is, nothing more."""
    notes = plan_of(f"netroot={value}").notes
    scheme = value.split(":", 1)[0]
    assert f"netroot={scheme}:...: not an iSCSI root, ignored" in notes
    assert not any("Hunter2pw" in n for n in notes), notes


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        ("ip=dhcp ip=eth1:dhcp", "ip", "several ip= options need an interface name each"),
        ("bond=bond0:eth0,eth1 ip=eth0:dhcp", "ip", "eth0 is a slave or port of bond0: configure bond0"),
        ("bridge=br0:eth0 vlan=eth0.5:eth0 ip=eth0.5:dhcp", "ip", "eth0 is a slave or port of br0"),
        ("bond=b0:eth0 bond=b0:eth1", "bond", "b0 is already made by bond=b0:eth0"),
        ("bond=b0:eth0 bridge=b0:eth1", "bridge", "b0 is already made by bond=b0:eth0"),
        ("bond=b0:eth0 bond=b1:eth0,eth1", "bond", "eth0 is already enslaved to b0"),
        (f"ifname=lan0:{MAC} bond=lan0:eth0", "bond", "lan0 is also an ifname= name"),
        (f"ifname=lan0:{MAC} ifname=lan0:52:54:00:00:00:99", "ifname", f"lan0 is already given to {MAC}"),
        (f"ifname=lan0:{MAC} ifname=lan1:{MAC}", "ifname", f"the link with MAC {MAC} is already named lan0"),
        ("team=team0:eth0,eth1 ip=team0:dhcp", "team=", "not supported: team devices need teamd"),
        ("rd.iscsi.target.name=" + T0, "rd.iscsi.target.name", "needs rd.iscsi.target.ip"),
        ("rd.iscsi.username=u rd.iscsi.target.ip=10.0.0.1", "rd.iscsi.username", "needs its password"),
        (
            "rd.iscsi.in.username=t rd.iscsi.in.password=x rd.iscsi.target.ip=10.0.0.1",
            "rd.iscsi.in.username",
            "mutual CHAP needs",
        ),
        ("rd.iscsi.initiator=notaname", "rd.iscsi.initiator", "not an iSCSI name"),
        ("rd.iscsi.param=node.session.timeo.replacement_timeout=soon", "rd.iscsi.param", "number of seconds"),
        ("rd.iscsi.param=node.session.timeo.replacement_timeout=-5", "rd.iscsi.param", "out of range"),
        ("netroot=dhcp6 ip=dhcp6", "netroot=dhcp6", "DHCPv6 has no root-path option"),
        ("root=dhcp6", "netroot=dhcp6", "not supported"),
        ("netroot=dhcp ip=eth0:auto6", "netroot=dhcp", "no ip= asks for DHCP"),
        ("netroot=dhcp ip=10.0.0.5::10.0.0.1:24::eth0:none", "netroot=dhcp", "no ip= asks for DHCP"),
    ],
)
def test_command_line_conflicts_are_errors(plan_of, text, field, reason):
    with pytest.raises(CmdlineError) as caught:
        plan_of(text)
    assert caught.value.field == field
    assert reason in str(caught.value)
    assert caught.value.exit_status == ExitStatus.BAD_INPUT


# ---- targets from the command line -------------------------------------------------------------------------------

TARGET_CASES = [
    ("netroot=iscsi:10.0.2.2::3261:1:" + T0, [TargetPlan(T0, "10.0.2.2", port=3261, lun=1)]),
    ("root=iscsi:[fec0::2]::::" + T0, [TargetPlan(T0, "fec0::2")]),
    ("netroot=iscsi:u:p@10.0.2.2::::" + T0 + " rd.iscsi.username=other rd.iscsi.password=x",
     [TargetPlan(T0, "10.0.2.2", chap=Chap("u", Secret("p")))]),
    ("netroot=iscsi:10.0.2.2::::" + T0 + " rd.iscsi.username=u rd.iscsi.password=p:a@ss "
     "rd.iscsi.in.username=t rd.iscsi.in.password=q",
     [TargetPlan(T0, "10.0.2.2", chap=Chap("u", Secret("p:a@ss")), reverse_chap=Chap("t", Secret("q")))]),
    ("netroot=iscsi:u:p:ru:rp@10.0.2.2:::eth1:0:" + T0,
     [TargetPlan(T0, "10.0.2.2", iface="eth1", chap=Chap("u", Secret("p")), reverse_chap=Chap("ru", Secret("rp")))]),
    ("netroot=iscsi:10.0.2.2:::: netroot=iscsi:10.0.2.3::::" + T0,
     [TargetPlan(None, "10.0.2.2"), TargetPlan(T0, "10.0.2.3")]),
    ("rd.iscsi.target.ip=10.0.0.1 rd.iscsi.target.port=3262", [TargetPlan(None, "10.0.0.1", port=3262)]),
    ("rd.iscsi.target.ip=10.0.0.1 rd.iscsi.target.name=" + T0 + " rd.iscsi.username=u rd.iscsi.password=p",
     [TargetPlan(T0, "10.0.0.1", chap=Chap("u", Secret("p")))]),
    ("rd.iscsi.target.name=ignored netroot=iscsi:10.0.2.2::::" + T0, [TargetPlan(T0, "10.0.2.2")]),
    (f"root=iscsi:10.0.2.2::::{T0} netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:10.0.2.2:::1:{T0}",
     [TargetPlan(T0, "10.0.2.2"), TargetPlan(T0, "10.0.2.2", lun=1)]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "targets"), TARGET_CASES, ids=[c[0][:70] for c in TARGET_CASES])
def test_targets_from_the_command_line(plan_of, text, targets):
    assert list(plan_of(text).targets) == targets


P = "rd.iscsi.param=node.session.auth."


@pytest.mark.parametrize(
    ("text", "chaps"),
    [
        (f"rd.iscsi.firmware {P}username=pu {P}password=pp",
         [(Chap("pu", Secret("pp")), None)]),
        (f"rd.iscsi.firmware {P}password=only",
         [(Chap("bootuser", Secret("only")), None)]),
        (f"rd.iscsi.firmware {P}username_in=ru {P}password_in=rp",
         [(Chap("bootuser", Secret("Secret-12345")), Chap("ru", Secret("rp")))]),
        (f"rd.iscsi.firmware {P}authmethod=None", [(None, None)]),
        (f"rd.iscsi.firmware {P}authmethod=CHAP {P}username=x {P}password=y", [(Chap("x", Secret("y")), None)]),
        (f"netroot=iscsi:10.0.2.9::::{T0} {P}username=pu {P}password=pp", [(Chap("pu", Secret("pp")), None)]),
    ],
)  # fmt: skip
def test_auth_parameters_apply_to_every_target(plan_of, text, chaps):
    plan = plan_of(text, IPXE)
    assert [(t.chap, t.reverse_chap) for t in plan.targets] == chaps
    assert any("node.session.auth" in n for n in plan.notes)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (f"netroot=iscsi:10.0.2.9::::{T0} {P}username=pu", "needs its password"),
        (f"netroot=iscsi:10.0.2.9::::{T0} {P}authmethod=Kerberos", "expected None or CHAP"),
    ],
)
def test_bad_auth_parameters(plan_of, text, reason):
    with pytest.raises(CmdlineError, match=reason):
        plan_of(text)


def test_root_device_and_options_pass_through(plan_of):
    plan = plan_of(
        "root=LABEL=root netroot=iscsi:10.0.2.2::::" + T0 + " rd.iscsi.waitnet=0 rd.iscsi.testroute=0 "
        "rd.iscsi.param=node.session.nr_sessions=2 rd.pyiscsi.loglevel=debug rd.iscsi.login_retry_max=4"
    )
    assert plan.root == "LABEL=root"
    assert (plan.waitnet, plan.testroute, plan.log_level, plan.login_retry_max) == (False, False, "debug", 4)
    assert plan.options_json()["iscsi_params"] == {"node.session.nr_sessions": "2"}
    assert plan_of("root=iscsi:10.0.2.2::::" + T0).root is None


# ---- the iBFT --------------------------------------------------------------------------------------------------

IPXE_TARGET = TargetPlan(
    "iqn.2026-11.test:chap", "10.0.2.2", lun=1, chap=Chap("bootuser", Secret("Secret-12345")), source=Source.IBFT
)
IPXE_NIC = InterfacePlan(mac=MAC, method=Method.DHCP, dns=(IP("10.0.2.3"),), source=Source.IBFT)


@pytest.mark.parametrize(
    ("text", "interfaces", "targets"),
    [
        # firmware asked for, or nothing on the command line: the iBFT decides
        ("rd.iscsi.firmware=1", [IPXE_NIC], [IPXE_TARGET]),
        ("netroot=iscsi", [IPXE_NIC], [IPXE_TARGET]),
        ("", [IPXE_NIC], [IPXE_TARGET]),
        ("ip=ibft", [IPXE_NIC], [IPXE_TARGET]),
        ("rd.iscsi.ibft", [IPXE_NIC], [IPXE_TARGET]),
        # the command line's network wins over the iBFT's
        ("rd.iscsi.firmware ip=eth0:dhcp", [InterfacePlan(name="eth0")], [IPXE_TARGET]),
        ("rd.iscsi.firmware ip=bootnet:ibft", [InterfacePlan(name="bootnet", mac=MAC, dns=(IP("10.0.2.3"),),
                                                             source=Source.IBFT)], [IPXE_TARGET]),
        # a command-line target without rd.iscsi.firmware: the iBFT is not used at all
        ("netroot=iscsi:10.0.2.9::::" + T0, [InterfacePlan(method=Method.AUTO, family=4)],
         [TargetPlan(T0, "10.0.2.9")]),
        # both: command line first; the iBFT's twin of a command-line target is dropped
        ("rd.iscsi.firmware netroot=iscsi:10.0.2.9::::" + T0, [IPXE_NIC],
         [TargetPlan(T0, "10.0.2.9"), IPXE_TARGET]),
        ("rd.iscsi.firmware netroot=iscsi:10.0.2.2:::2:iqn.2026-11.test:chap", [IPXE_NIC],
         [TargetPlan("iqn.2026-11.test:chap", "10.0.2.2", lun=2)]),
    ],
)  # fmt: skip
def test_merging_with_the_ipxe_table(plan_of, text, interfaces, targets):
    plan = plan_of(text, IPXE)
    assert list(plan.interfaces) == interfaces
    assert list(plan.targets) == targets
    assert plan.initiator_name == "iqn.2026-11.test:client"


@pytest.mark.parametrize(
    ("text", "macs", "targets"),
    [
        ("rd.iscsi.firmware=0", [], []),
        ("rd.iscsi.firmware=0 ip=ibft", [MAC], []),
        ("rd.iscsi.firmware=0 netroot=iscsi:10.0.2.9::::" + T0, [None], [T0]),
    ],
)
def test_firmware_refused(plan_of, text, macs, targets):
    plan = plan_of(text, IPXE)
    assert [i.mac for i in plan.interfaces] == macs
    assert [t.name for t in plan.targets] == targets


def test_command_line_target_wins_over_its_ibft_twin_with_a_note(plan_of):
    plan = plan_of("rd.iscsi.firmware netroot=iscsi:10.0.2.2::::iqn.2026-11.test:chap", IPXE)
    assert any("the command line's wins" in n for n in plan.notes)


@pytest.mark.parametrize("text", ["", "rd.iscsi.firmware"])
def test_a_target_listed_twice_in_the_ibft_is_said_so_not_blamed_on_the_command_line(plan_of, text):
    table = _ibft([_nic(0)], [_tgt(0), _tgt(1, name="iqn.2026-11.fw:t0")])
    plan = plan_of(text, table)
    assert [t.name for t in plan.targets] == ["iqn.2026-11.fw:t0"]
    assert not any("the command line's wins" in n for n in plan.notes)
    assert any("listed twice in the iBFT" in n for n in plan.notes)
    assert any(n.startswith("iBFT: ") for n in plan.notes)  # the table's own warning is passed on


def test_planning_many_netroots_keeps_each_once_in_order(plan_of):
    words = [f"netroot=iscsi:10.0.{i // 250}.{i % 250 + 1}::3260:{i % 3}:iqn.2026-11.test:t{i}" for i in range(3000)]
    plan = plan_of("ip=dhcp " + " ".join(words + words[:100]))
    assert [t.name for t in plan.targets] == [f"iqn.2026-11.test:t{i}" for i in range(3000)]
    assert sum("given twice" in n for n in plan.notes) == 100


@pytest.mark.parametrize(
    ("nic", "expected"),
    [
        (_nic(), InterfacePlan(mac="52:54:00:00:00:00", method=Method.STATIC, addresses=(IFACE("192.0.2.10/24"),),
                               gateway=IP("192.0.2.1"), dns=(IP("192.0.2.53"),), source=Source.IBFT)),
        (_nic(ip=IP("2001:db8::10"), prefix=64, gateway=IP("2001:db8::1"), dns=(), vlan=0x2005, hostname="h"),
         InterfacePlan(mac="52:54:00:00:00:00", vlan=5, method=Method.STATIC, addresses=(IFACE("2001:db8::10/64"),),
                       gateway6=IP("2001:db8::1"), hostname="h", source=Source.IBFT)),
        (_nic(origin=Origin.DHCP, ip=IP("2001:db8::10"), prefix=128, gateway=None, dns=()),
         InterfacePlan(mac="52:54:00:00:00:00", method=Method.DHCP6, source=Source.IBFT)),
        (_nic(origin=Origin.ROUTER_ADVERTISEMENT, ip=IP("2001:db8::10"), prefix=64, gateway=None, dns=()),
         InterfacePlan(mac="52:54:00:00:00:00", method=Method.AUTO6, source=Source.IBFT)),
        (_nic(ip=None, prefix=None, origin=Origin.OTHER, gateway=None, dns=(), vlan=100),
         InterfacePlan(mac="52:54:00:00:00:00", vlan=100, method=Method.DHCP, source=Source.IBFT)),
    ],
)  # fmt: skip
def test_ibft_nics_become_interfaces(plan_of, nic, expected):
    plan = plan_of("rd.iscsi.firmware", _ibft([nic], [_tgt()]))
    assert plan.interfaces == (expected,)


def test_ibft_nics_used_by_the_targets_unless_multipath(plan_of):
    table = _ibft([_nic(0), _nic(1), _nic(2, flags=IbftFlags(0))], [_tgt(0, nic_index=1)])
    assert [i.mac for i in plan_of("rd.iscsi.firmware", table).interfaces] == ["52:54:00:00:00:01"]
    assert [i.mac for i in plan_of("rd.iscsi.firmware rd.iscsi.mp", table).interfaces] == [
        "52:54:00:00:00:00",
        "52:54:00:00:00:01",
    ]


def test_ibft_targets_not_in_use_or_without_address_are_skipped(plan_of):
    table = _ibft(
        [_nic()],
        [_tgt(0, flags=IbftFlags(0)), _tgt(1, ip=None), _tgt(2, flags=IbftFlags.BOOT_SELECTED, name=None, port=0)],
    )
    assert plan_of("rd.iscsi.firmware", table).targets == (TargetPlan(None, "192.0.2.1", source=Source.IBFT),)


def test_ibft_mutual_chap(plan_of):
    table = _ibft(
        [_nic()],
        [_tgt(chap_type=ChapType.MUTUAL, chap_name="u", chap_secret=Secret("s"), reverse_chap_name="t",
              reverse_chap_secret=Secret("r"))],
    )  # fmt: skip
    (target,) = plan_of("rd.iscsi.firmware", table).targets
    assert (target.chap, target.reverse_chap) == (Chap("u", Secret("s")), Chap("t", Secret("r")))


@pytest.mark.parametrize(
    ("target", "field"),
    [
        (_tgt(chap_type=ChapType.CHAP, chap_name="u"), "target0.chap_name"),
        (_tgt(chap_type=ChapType.MUTUAL, chap_name="u", chap_secret=Secret("s")), "target0.reverse_chap_name"),
    ],
)
def test_ibft_chap_without_secret_is_an_error(plan_of, target, field):
    with pytest.raises(IbftError) as caught:
        plan_of("rd.iscsi.firmware", _ibft([_nic()], [target]))
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("text", "ibft", "reason"),
    [
        ("rd.iscsi.firmware", None, "asks for the iBFT but none was found"),
        ("netroot=iscsi", None, "asks for the iBFT but none was found"),
        ("ip=ibft", None, "there is no iBFT"),
        ("ip=ibft", _ibft([_nic(flags=IbftFlags(0))], []), "no NIC marked valid or boot-selected"),
        ("ip=eth0:ibft", _ibft([_nic(0), _nic(1)], []), "has 2 NICs"),
    ],
)
def test_missing_firmware_is_an_error(plan_of, text, ibft, reason):
    with pytest.raises(BadInputError, match=reason):
        plan_of(text, ibft)


# ---- the initiator name ------------------------------------------------------------------------------------------


def test_initiator_name_order(tmp_path):
    file = tmp_path / "initiatorname.iscsi"
    file.write_text("## written by hand\n\nInitiatorName=iqn.2026-11.test:from-file\n")
    machine = tmp_path / "machine-id"
    machine.write_text("abc\n")

    def name(text: str, ibft: Ibft | None, path: Path = file) -> str | None:
        return build_plan(
            parse_cmdline(text), ibft, initiator_file=str(path), machine_id_path=str(machine)
        ).initiator_name

    with_name = _ibft([_nic()], [_tgt()])
    nameless = _ibft([_nic()], [_tgt()], name=None)
    assert name("rd.iscsi.initiator=iqn.2026-11.test:cmd", with_name) == "iqn.2026-11.test:cmd"
    assert name("", with_name) == "iqn.2026-11.fw:init"
    assert name("", nameless) == "iqn.2026-11.test:from-file"
    assert name("", None) == "iqn.2026-11.test:from-file"
    generated = name("", None, tmp_path / "absent")
    assert generated == generated_name(str(machine))
    assert generated.startswith("iqn.2026-11.org.pyiscsi:") and len(generated.rsplit(":", 1)[1]) == 12


@pytest.mark.parametrize("machine_id", ["0123456789abcdef0123456789abcdef\n", "abc\n", "  x  "])
@pytest.mark.parametrize("file_text", [None, "# none here\n", "InitiatorName=iqn.1993-08.org.debian:01:ab\n"])
def test_the_cli_and_the_plan_default_to_the_same_name(tmp_path, machine_id, file_text):
    """`probe`/`discover` and `boot`/`explain` must present the same name to a target's ACL."""
    machine, initiator_file = tmp_path / "machine-id", tmp_path / "initiatorname.iscsi"
    machine.write_text(machine_id)
    if file_text is not None:
        initiator_file.write_text(file_text)
    plan = build_plan(parse_cmdline(""), None, initiator_file=str(initiator_file), machine_id_path=str(machine))
    assert plan.initiator_name == default_initiator_name(initiator_file, machine)


@pytest.mark.parametrize(
    ("cmdline", "name"),
    [
        ("rd.iscsi.initiator=IQN.1991-05.COM.Microsoft:Host", "IQN.1991-05.COM.Microsoft:Host"),
        ("rd.iscsi.initiator=eui.02004567a425678d", "eui.02004567a425678d"),
        ("rd.iscsi.initiator=eui.02004567A425678D", "eui.02004567A425678D"),
    ],
)
def test_initiator_names_in_either_case(cmdline, name, tmp_path):
    plan = build_plan(parse_cmdline(cmdline), None, initiator_file=str(tmp_path / "none"))
    assert plan.initiator_name == name == validate_name(name, "--initiator")


def test_initiator_file_with_a_bad_name(tmp_path):
    path = tmp_path / "initiatorname.iscsi"
    path.write_text("InitiatorName=not a name\n")
    with pytest.raises(CmdlineError, match="not an iSCSI name") as caught:
        build_plan(parse_cmdline(""), None, initiator_file=str(path))
    assert caught.value.field == str(path)
    path.write_text("# nothing\n")
    assert build_plan(parse_cmdline(""), None, initiator_file=str(path)).initiator_name.startswith("iqn.2026-11.")


def test_generated_name_without_machine_id_is_still_valid(tmp_path):
    name = generated_name(str(tmp_path / "none"))
    assert validate_name(name) == name


# ---- waits -----------------------------------------------------------------------------------------------------

TIMEOUT_CASES = [
    ("", {}),
    ("rd.retry=60", {"total": 60.0}),
    ("rd.retry=60 rd.pyiscsi.timeout=90", {"total": 90.0}),
    ("rd.timeout=0", {}),
    ("rd.timeout=45", {"disk": 45.0}),
    ("rd.net.timeout.iflink=5 rd.net.timeout.carrier=3 rd.net.timeout.dhcp=12 rd.net.timeout.ipv6dad=2 "
     "rd.net.timeout.ipv6auto=9 rd.net.timeout.ifup=99 rd.net.timeout.route=99",
     {"iflink": 5.0, "carrier": 3.0, "dhcp": 12.0, "ipv6dad": 2.0, "ipv6auto": 9.0}),
    ("rd.iscsi.param=node.session.timeo.replacement_timeout=86400 rd.iscsi.param=node.conn[0].timeo.login_timeout=15",
     {"replacement": 86400.0, "login": 15.0}),
    ("rd.iscsi.param=node.conn[0].timeo.login_timeout=15 rd.pyiscsi.timeout.login=7 rd.pyiscsi.timeout.connect=2 "
     "rd.pyiscsi.timeout.dhcp6=4 rd.pyiscsi.timeout.disk=1 rd.net.timeout.dhcp=3 rd.pyiscsi.timeout.dhcp=8",
     {"login": 7.0, "connect": 2.0, "dhcp6": 4.0, "disk": 1.0, "dhcp": 8.0}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "changed"), TIMEOUT_CASES, ids=[c[0][:60] or "defaults" for c in TIMEOUT_CASES])
def test_waits(plan_of, text, changed):
    assert plan_of(text).timeouts == Timeouts(**changed)


DIGEST_CASES = [
    ("", "None", "None"),
    ("rd.iscsi.param=node.conn[0].iscsi.HeaderDigest=CRC32C", "CRC32C", "None"),
    ("rd.iscsi.param=node.conn[0].iscsi.DataDigest=CRC32C,None", "None", "CRC32C,None"),
    ("rd.iscsi.param=node.conn[0].iscsi.HeaderDigest=None rd.iscsi.param=node.conn[0].iscsi.HeaderDigest=CRC32C",
     "CRC32C", "None"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "header", "data"), DIGEST_CASES)
def test_digests_from_iscsistart_params(plan_of, text, header, data):
    plan = plan_of(f"netroot=iscsi:10.0.2.2::::iqn.2026-01.org.example:t {text}")
    assert (plan.header_digest, plan.data_digest) == (header, data)


@pytest.mark.parametrize("value", ["crc32c", "CRC32C,CRC32C", "MD5", ""])
def test_a_digest_param_that_is_no_offer_names_itself(plan_of, value):
    with pytest.raises(CmdlineError) as info:
        plan_of(f"rd.iscsi.param=node.conn[0].iscsi.DataDigest={value} netroot=iscsi:10.0.2.2::::iqn.2026-01.a:t")
    assert f"node.conn[0].iscsi.DataDigest={value}" in str(info.value)
    assert info.value.exit_status == ExitStatus.BAD_INPUT


def test_default_waits_are_dracuts_where_dracut_has_them():
    defaults = Timeouts()
    assert (defaults.total, defaults.iflink, defaults.carrier, defaults.ipv6dad, defaults.ipv6auto) == (
        180.0,
        60.0,
        10.0,
        50.0,
        40.0,
    )


# ---- load_plan: the I/O around build_plan ------------------------------------------------------------------------


def test_load_plan_reads_proc_cmdline_and_cmdline_d(tmp_path):
    proc = tmp_path / "cmdline"
    proc.write_text("BOOT_IMAGE=/vmlinuz ip=eth0:dhcp\n")
    conf = tmp_path / "cmdline.d"
    conf.mkdir()
    (conf / "90-iscsi.conf").write_text(f"netroot=iscsi:10.0.2.2::::{T0}\nrd.iscsi.initiator=iqn.2026-11.t:x\n")
    (conf / "ignored.txt").write_text("ip=eth9:dhcp")
    plan = load_plan(None, "none", cmdline_path=str(proc), cmdline_d=str(conf))
    assert [i.name for i in plan.interfaces] == ["eth0"]
    assert [t.name for t in plan.targets] == [T0]
    assert plan.initiator_name == "iqn.2026-11.t:x"


def test_load_plan_with_an_ibft_source():
    plan = load_plan("rd.iscsi.firmware", str(FIXTURES / "ipxe-chap.bin"))
    assert plan.targets == (IPXE_TARGET,)


def test_load_plan_unreadable_cmdline(tmp_path):
    with pytest.raises(CmdlineError, match="cannot read"):
        load_plan(None, "none", cmdline_path=str(tmp_path / "missing"))


def test_load_plan_finds_firmware_itself(monkeypatch):
    from initiator import ibft_sources

    monkeypatch.setattr(ibft_sources, "find_ibft", lambda: IPXE)
    assert load_plan("", None).targets == (IPXE_TARGET,)


def test_a_corrupt_firmware_table_only_matters_when_it_is_needed(monkeypatch):
    from initiator import ibft_sources

    def broken():
        raise IbftError("checksum", 7, "bytes sum to 0x07 mod 256, not 0")

    monkeypatch.setattr(ibft_sources, "find_ibft", broken)
    plan = load_plan(f"ip=eth0:dhcp netroot=iscsi:10.0.2.2::::{T0}", None)
    assert any("iBFT ignored: checksum" in n for n in plan.notes)
    with pytest.raises(IbftError, match="checksum"):
        load_plan("rd.iscsi.firmware", None)


# ---- random command lines against the planner: a plan or exit 2 ---------------------------------------------------

WORDS = [
    "ip=dhcp", "ip=eth0:dhcp", "ip=eth1:auto6", "ip=ibft", "ip=eth0:ibft", "ip=10.0.2.15::10.0.2.2:24::eth0:none",
    "ip=[2001:db8::5]::[2001:db8::1]:64::eth0:none", "ip=none", "vlan=eth0.5:eth0", "ip=eth0.5:dhcp",
    f"ifname=eth0:{MAC}", "bond=bond0:eth0", "ip=bond0:dhcp", "bridge=br0:eth1", "ip=br0:dhcp", "bond",
    "ip=eth0:dhcp::52:54:00:00:00:07", "nameserver=10.0.2.3", "bootdev=eth0",
    "BOOTIF=01-52-54-00-12-34-56", "rd.neednet", f"netroot=iscsi:10.0.2.2::::{T0}", "netroot=iscsi:10.0.2.2::::",
    "netroot=iscsi", "root=/dev/sda1", "rd.iscsi.firmware", "rd.iscsi.ibft", "rd.iscsi.mp", "rd.iscsi.username=u",
    "rd.iscsi.password=p", "rd.iscsi.in.username=t", "rd.iscsi.in.password=q", "rd.iscsi.target.ip=10.0.0.1",
    "rd.iscsi.target.name=" + T0, "rd.iscsi.initiator=iqn.2026-11.a:b", "rd.retry=5", "rd.timeout=0",
    "rd.pyiscsi.timeout=1", "rd.iscsi.param=node.session.timeo.replacement_timeout=5", "ip=eth0:dhcp:bad",
]  # fmt: skip
TABLES = [None, IPXE, _ibft([_nic(0), _nic(1)], [_tgt(0), _tgt(1, nic_index=1)]), _ibft([], [], name=None)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=8), st.sampled_from(TABLES))
def test_random_combinations_plan_or_exit_2(tmp_path_factory, words, table):
    try:
        plan = build_plan(parse_cmdline(" ".join(words)), table, initiator_file="/nonexistent")
    except BadInputError as exc:
        assert exc.exit_status == ExitStatus.BAD_INPUT and str(exc)
    else:
        assert isinstance(plan, BootPlan)
        plan.to_json()


# ---- root=dhcp / netroot=dhcp ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "root", "interfaces"),
    [
        ("netroot=dhcp", None, [InterfacePlan(method=Method.DHCP)]),
        ("root=dhcp", None, [InterfacePlan(method=Method.DHCP)]),
        ("netroot=dhcp root=UUID=1234 ip=dhcp", "UUID=1234", [InterfacePlan(method=Method.DHCP)]),
        ("netroot=dhcp ip=eth1:dhcp", None, [InterfacePlan(name="eth1", method=Method.DHCP)]),
        ("netroot=dhcp bootdev=eth2", None, [InterfacePlan(name="eth2", method=Method.DHCP)]),
    ],
)
def test_dhcp_root_plans_dhcp_and_no_target_yet(plan_of, text, root, interfaces):
    plan = plan_of(text)
    assert plan.dhcp_root is not None and plan.targets == () and plan.root == root
    assert list(plan.interfaces) == interfaces
    assert plan.options_json()["dhcp_root"] is True


def test_dhcp_root_keeps_the_command_lines_chap_for_the_boot(plan_of):
    plan = plan_of("netroot=dhcp rd.iscsi.username=u rd.iscsi.password=pw-1 rd.iscsi.in.username=t "
                   "rd.iscsi.in.password=pw-2")  # fmt: skip
    assert plan.dhcp_root.chap == Chap("u", Secret("pw-1"))
    assert plan.dhcp_root.reverse_chap == Chap("t", Secret("pw-2"))


def test_dhcp_root_leaves_a_present_ibft_alone_unless_asked(plan_of, tmp_path):
    ibft = _ibft([_nic()], [_tgt()])
    plain = build_plan(parse_cmdline("netroot=dhcp"), ibft, initiator_file=str(tmp_path / "x"))
    assert plain.targets == () and plain.dhcp_root is not None
    asked = build_plan(parse_cmdline("netroot=dhcp rd.iscsi.firmware=1"), ibft, initiator_file=str(tmp_path / "x"))
    assert [t.source for t in asked.targets] == [Source.IBFT]


@pytest.mark.parametrize(
    ("text", "retry_max"),
    [
        ("", None),
        ("rd.iscsi.login_retry_max=5", 5),
        ("rd.iscsi.login_retry_max=0", 0),
        # 95iscsi adds rd.iscsi.login_retry_max only when the parameter itself is not given: the parameter wins
        ("rd.iscsi.login_retry_max=5 rd.iscsi.param=node.session.initial_login_retry_max=2", 2),
        ("rd.iscsi.param=node.session.initial_login_retry_max=7", 7),
    ],
)
def test_login_retry_max(plan_of, text, retry_max):
    assert plan_of(text).login_retry_max == retry_max


def test_an_iscsi_param_pyiscsi_does_not_use_is_named_not_dropped(plan_of):
    plan = plan_of("rd.iscsi.param=node.session.nr_sessions=2 rd.iscsi.param=node.session.timeo.replacement_timeout=9")
    assert [n for n in plan.notes if n.startswith("rd.iscsi.param=")] == [
        "rd.iscsi.param=node.session.nr_sessions: not used by pyiscsi (shown here only)"
    ]


def test_a_bad_initial_login_retry_max_is_bad_input(plan_of):
    with pytest.raises(CmdlineError, match="expected 0 to 10000 attempts"):
        plan_of("rd.iscsi.param=node.session.initial_login_retry_max=many")


def test_link_phase_of_the_plan(plan_of):
    """ifname= renames, bonds and bridges in the plan in command-line order, with dracut's defaults filled in."""
    plan = plan_of(
        f"ifname=lan0:{MAC} ifname=lan1:52:54:00:00:00:02 bond=bond0:lan0,lan1:mode=active-backup,miimon=100:9000 "
        "bridge=br0:bond0 ip=br0:dhcp"
    )
    assert plan.renames == (RenamePlan("lan0", MAC), RenamePlan("lan1", "52:54:00:00:00:02"))
    assert plan.bonds == (BondPlan("bond0", ("lan0", "lan1"), (("mode", "active-backup"), ("miimon", "100")), 9000),)
    assert plan.bridges == (BridgePlan("br0", ("bond0",)),)
    (bond,) = plan.links_json()["bonds"]
    assert bond == {"name": "bond0", "slaves": ["lan0", "lan1"], "mtu": 9000,
                    "options": {"mode": "active-backup", "miimon": "100"}}  # fmt: skip
    assert plan_of("bond").bonds == (BondPlan("bond0", ("eth0", "eth1")),)
    assert plan_of("bridge").bridges == (BridgePlan("br0", ("eth0",)),)


# ---- paths of one LUN (boot.paths) -------------------------------------------------------------------------------

TWO_PATHS = f"ip=dhcp netroot=iscsi:10.0.2.2::::{T0} netroot=iscsi:10.0.3.2::::{T0}"


@pytest.mark.parametrize(
    ("extra", "given_", "replacement"),
    [
        ("", False, 120.0),
        ("rd.iscsi.param=node.session.timeo.replacement_timeout=60", True, 60.0),
        ("rd.pyiscsi.timeout.replacement=45", True, 45.0),
        ("rd.iscsi.param=node.conn[0].timeo.login_timeout=9", False, 120.0),
        ("rd.pyiscsi.timeout.login=9", False, 120.0),
    ],
)
def test_the_plan_knows_whether_the_replacement_timeout_was_set(plan_of, extra, given_, replacement):
    plan = plan_of(f"{TWO_PATHS} {extra}")
    assert (plan.replacement_given, plan.timeouts.replacement) == (given_, replacement)
    (note,) = [n for n in plan.notes if "paths" in n]
    assert note.startswith(f"target {T0} lun 0: 2 paths (10.0.2.2:3260, 10.0.3.2:3260), logged in at once")
    why = "as set on the command line" if given_ else "so dm-multipath fails I/O over quickly"
    assert note.endswith(f"replacement timeout is {replacement if given_ else 5:g}s ({why})")


@pytest.mark.parametrize(
    ("multipathd", "extra", "dm"),
    [(True, "", True), (True, "rd.multipath=default", True), (True, "rd.multipath=0", False), (False, "", False)],
)
def test_dm_multipath_needs_multipathd_in_the_image_and_no_rd_multipath_0(plan_of, multipathd, extra, dm):
    plan = plan_of(f"{TWO_PATHS} {extra}", multipathd=multipathd)
    assert plan.dm_multipath is dm
    (note,) = [n for n in plan.notes if "paths" in n]
    assert note.endswith("5s (so dm-multipath fails I/O over quickly)" if dm else "the root is one path's disk)")


def test_load_plan_looks_for_multipathd(tmp_path):
    daemon = tmp_path / "multipathd"
    daemon.write_text("")
    kw = {"initiator_file": str(tmp_path / "absent"), "machine_id_path": str(tmp_path / "absent")}
    assert load_plan(TWO_PATHS, "none", multipathd_paths=(str(tmp_path / "no"), str(daemon)), **kw).dm_multipath
    assert not load_plan(TWO_PATHS, "none", multipathd_paths=(str(tmp_path / "no"),), **kw).dm_multipath


def test_two_ibft_targets_for_one_lun_are_two_paths(plan_of):
    ibft = _ibft([_nic(0)], [_tgt(0, name=T0), _tgt(1, name=T0, ip=IP("192.0.2.2"))])
    plan = plan_of("rd.iscsi.firmware", ibft)
    assert [(t.name, t.address) for t in plan.targets] == [(T0, "192.0.2.1"), (T0, "192.0.2.2")]
    assert any(n.startswith(f"target {T0} lun 0: 2 paths (192.0.2.1:3260, 192.0.2.2:3260)") for n in plan.notes)


def test_one_path_makes_no_note(plan_of):
    assert not [n for n in plan_of(f"ip=dhcp netroot=iscsi:10.0.2.2::::{T0}").notes if "paths" in n]
