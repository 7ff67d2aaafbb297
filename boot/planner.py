"""The planner: one frozen `BootPlan` from the command line and the iBFT, decided before anything is touched.

Rules where the two inputs meet (the command line wins, except where dracut lets the firmware decide):

| question                    | answer                                                                          |
|-----------------------------|---------------------------------------------------------------------------------|
| which targets               | every netroot=/root=iscsi: spec and rd.iscsi.target.ip, in command-line order;   |
|                             | then the iBFT's targets (valid or boot-selected) when rd.iscsi.firmware=1,        |
|                             | bare netroot=iscsi, ip=ibft/rd.iscsi.ibft, or when the command line names no      |
|                             | target at all. A firmware target equal to a command-line one (address, port,      |
|                             | name) is dropped: the command line's CHAP and LUN win. rd.iscsi.firmware=0       |
|                             | refuses the iBFT's targets even then.                                            |
| CHAP of a command-line      | the netroot spec's own user:pass@, else rd.iscsi.username/password (and .in.)   |
| target                      |                                                                                 |
| rd.iscsi.param=node.session | applied to every target over its CHAP, as iscsistart --param does              |
| .auth.*                     |                                                                                 |
| which interfaces            | every ip= in order (ip=ibft / <if>:ibft expands to the iBFT's NICs); no ip= and  |
|                             | firmware targets or rd.iscsi.ibft: the iBFT's NICs (dracut's `iscsistart -N`);    |
|                             | no ip= otherwise: DHCPv4 + IPv6 at once (dhcp+auto6) on bootdev= / BOOTIF= /     |
|                             | the first link with carrier, waiting for the root target's family               |
| an iBFT NIC's method        | origin DHCP: dhcp (dhcp6 for an IPv6 address); router advertisement: auto6;      |
|                             | otherwise its address, prefix and gateway as static; no address: dhcp           |
| interface names             | vlan=<name>:<parent> turns ip=<name>:... into <parent> with that VLAN id;        |
|                             | ifname=<name>:<mac> renames the link with that MAC first (dracut's rename)      |
| bond= / bridge=             | made after the renames (bonds, then bridges), before the interfaces; a slave or |
|                             | port is not configured by its own ip=; no ip=: the first bridge, else bond      |
| name servers                | the interface's own (ip= dns fields, iBFT DNS), then every nameserver=           |
| initiator name              | rd.iscsi.initiator, else the iBFT's, else /etc/iscsi/initiatorname.iscsi, else    |
|                             | generated (iqn.2026-11.org.pyiscsi:<12 hex from /etc/machine-id>, stable)        |
| waits                       | `boot.plan.Timeouts` defaults (dracut's where it has them), then rd.retry /      |
|                             | rd.timeout / rd.net.timeout.* / rd.iscsi.param timeouts, then rd.pyiscsi.timeout* |

| root=dhcp / netroot=dhcp    | no target on the command line: the target is DHCPv4 option 17 of the lease,      |
|                             | parsed at boot as netroot=<it> (`targets_from_root_path`); netroot=dhcp6 refused |

Things dracut accepts that pyiscsi cannot do (see boot.dracut_options) are errors when the boot depends on them
and notes otherwise; `explain` prints the notes.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from pathlib import Path

from boot import paths
from boot.cmdline import Cmdline, IpConfig, IpMethod, IscsiRoot, parse_cmdline, parse_iscsi_root, redact_iscsi_root
from boot.dracut_options import DHCP6_ROOT_REASON
from boot.net.bond import mode_of as bond_mode_of
from boot.plan import (
    BondPlan,
    BootPlan,
    BridgePlan,
    DhcpRootPlan,
    InterfacePlan,
    Method,
    RenamePlan,
    Source,
    TargetPlan,
    Timeouts,
)
from initiator import initiator_name
from initiator.credentials import Chap
from initiator.errors import BadInputError, CmdlineError, IbftError, PyiscsiError
from initiator.ibft import ChapType, Ibft, IbftNic, IbftTarget, Origin
from initiator.negotiation import digest_offer
from initiator.printable import printable
from initiator.record import fields, replace
from initiator.secret import Secret

PROC_CMDLINE = "/proc/cmdline"
CMDLINE_D = "/etc/cmdline.d"
INITIATOR_FILE = str(initiator_name.OPEN_ISCSI_NAME_FILE)
MACHINE_ID = str(initiator_name.MACHINE_ID_FILE)
NO_IBFT = "none"  # --ibft none: do not look for firmware

PARAM_TIMEOUTS = {
    "node.session.timeo.replacement_timeout": "replacement",
    "node.conn[0].timeo.login_timeout": "login",
}


# ---- interfaces ------------------------------------------------------------------------------------------------


def _interface_from_ip(ip: IpConfig, notes: list[str]) -> InterfacePlan:
    method = {
        IpMethod.DHCP: Method.DHCP,
        IpMethod.SINGLE_DHCP: Method.DHCP,
        IpMethod.DHCP6: Method.DHCP6,
        IpMethod.AUTO6: Method.AUTO6,
        IpMethod.EITHER6: Method.EITHER6,
        IpMethod.LINK6: Method.NONE,
        IpMethod.NONE: Method.NONE,
    }[ip.method]
    addresses: tuple = ()
    gateway = gateway6 = None
    if ip.method is IpMethod.LINK6:
        notes.append(f"{ip.token}: IPv6 link-local address only")
    if method is Method.NONE and ip.address is not None:
        method = Method.STATIC
        addresses = (ip.address,)
    elif ip.address is not None:
        notes.append(f"{ip.token}: the address is ignored, the method {ip.method.value} configures the interface")
    if ip.gateway is not None:
        if ip.gateway.version == 4:
            gateway = ip.gateway
        else:
            gateway6 = ip.gateway
    if ip.peer is not None:
        notes.append(f"{ip.token}: the point-to-point peer is ignored")
    return InterfacePlan(
        name=ip.interface,
        mtu=ip.mtu,
        method=method,
        addresses=addresses,
        gateway=gateway,
        gateway6=gateway6,
        dns=ip.dns,
        hostname=ip.hostname,
        source=Source.CMDLINE,
        set_mac=ip.mac,  # dracut's ifup sets it on whichever link this ip= configures
    )


def interface_from_nic(nic: IbftNic) -> InterfacePlan:
    """An iBFT NIC as the bring-up wants it: found by MAC, redoing DHCP when the firmware used DHCP."""
    addresses: tuple = ()
    gateway = gateway6 = None
    origin = nic.origin_kind
    if origin is Origin.DHCP or nic.ip is None:
        method = Method.DHCP6 if nic.ip is not None and nic.ip.version == 6 else Method.DHCP
    elif origin is Origin.ROUTER_ADVERTISEMENT:
        method = Method.AUTO6
    else:
        method = Method.STATIC
        addresses = (
            ipaddress.ip_interface(f"{nic.ip}/{nic.prefix if nic.prefix is not None else nic.ip.max_prefixlen}"),
        )
        if nic.gateway is not None:
            if nic.gateway.version == 4:
                gateway = nic.gateway
            else:
                gateway6 = nic.gateway
    vlan = nic.vlan & 0x0FFF  # the low 12 bits of the tag are the id; the rest is priority
    return InterfacePlan(
        mac=nic.mac,
        vlan=vlan or None,
        method=method,
        addresses=addresses,
        gateway=gateway,
        gateway6=gateway6,
        dns=nic.dns,
        hostname=nic.hostname,
        source=Source.IBFT,
    )


def _firmware_nics(ibft: Ibft, targets_used: list[IbftTarget], multipath: bool) -> list[IbftNic]:
    """The NICs the firmware booted through (all of them with rd.iscsi.mp), in table order."""
    nics = [n for n in ibft.nics if n.in_use]
    if multipath or not targets_used:
        return nics
    wanted = {t.nic_index for t in targets_used}
    chosen = [n for n in nics if n.index in wanted]
    return chosen or nics


def _rename(plan: InterfacePlan, cmdline: Cmdline, notes: list[str]) -> InterfacePlan:
    """Apply vlan= to an interface named on the command line (an ifname= name stays: the link is renamed to it
    before the interfaces come up, see plan_links)."""
    if plan.name is None:
        return plan
    for vlan in cmdline.vlans:
        if vlan.name == plan.name:
            plan = replace(plan, name=vlan.parent, vlan=vlan.vid)
            break
    return plan


def plan_links(
    cmdline: Cmdline, interfaces: tuple[InterfacePlan, ...], notes: list[str]
) -> tuple[tuple[RenamePlan, ...], tuple[BondPlan, ...], tuple[BridgePlan, ...]]:
    """ifname= renames, bond= and bridge= devices, in the order the bring-up makes them; one name per device,
    and a bond slave or bridge port is not also configured by an ip= of its own (the master carries the address)."""
    renames: dict[str, RenamePlan] = {}
    by_mac: dict[str, str] = {}
    for name, mac in cmdline.ifnames:
        token = f"ifname={name}:{mac}"
        if renames.get(name, RenamePlan(name, mac)).mac != mac:
            raise CmdlineError("ifname", token, f"{name} is already given to {renames[name].mac}")
        if by_mac.get(mac, name) != name:
            raise CmdlineError("ifname", token, f"the link with MAC {mac} is already named {by_mac[mac]}")
        renames[name], by_mac[mac] = RenamePlan(name, mac), name
    made: dict[str, str] = {}  # device name -> the option that makes it
    owner: dict[str, str] = {}  # slave or port name -> its master
    bonds = [BondPlan(b.name, b.slaves, b.options, b.mtu) for b in cmdline.bonds]
    bridges = [BridgePlan(b.name, b.ports) for b in cmdline.bridges]
    for device, token, members in [(b.name, c.token, b.slaves) for b, c in zip(bonds, cmdline.bonds, strict=True)] + [
        (b.name, c.token, b.ports) for b, c in zip(bridges, cmdline.bridges, strict=True)
    ]:
        key = token.partition("=")[0]
        if device in made:
            raise CmdlineError(key, token, f"{device} is already made by {made[device]}")
        if device in renames:
            raise CmdlineError(key, token, f"{device} is also an ifname= name")
        made[device] = token
        for member in members:
            if member in owner:
                raise CmdlineError(key, token, f"{member} is already enslaved to {owner[member]}")
            owner[member] = device
    for plan in interfaces:
        if plan.name in owner:
            raise CmdlineError(
                "ip", plan.name, f"{plan.name} is a slave or port of {owner[plan.name]}: configure {owner[plan.name]}"
            )
    for bond in bonds:
        notes.append(f"bond {bond.name}: {bond_mode_of(bond.options)} over {', '.join(bond.slaves)}")
    return tuple(renames.values()), tuple(bonds), tuple(bridges)


def plan_interfaces(
    cmdline: Cmdline, ibft: Ibft | None, firmware_nics: bool, firmware_targets: list[IbftTarget], notes: list[str]
) -> tuple[InterfacePlan, ...]:
    plans: list[InterfacePlan] = []
    unnamed = [ip for ip in cmdline.ips if ip.interface is None]
    if len(cmdline.ips) > 1 and unnamed:
        raise CmdlineError("ip", unnamed[0].token, "several ip= options need an interface name each")

    def nic_plans(name: str | None, token: str) -> list[InterfacePlan]:
        if ibft is None:
            raise IbftError("ibft", None, f"{token} asks for the iBFT's network settings but there is no iBFT")
        nics = _firmware_nics(ibft, firmware_targets, cmdline.multipath)
        if not nics:
            raise IbftError("ibft nics", None, f"{token}: the iBFT has no NIC marked valid or boot-selected")
        out = [interface_from_nic(n) for n in nics]
        if name is not None:
            if len(out) > 1:
                raise CmdlineError("ip", token, f"the iBFT has {len(out)} NICs; name none or use ip=ibft")
            out = [replace(out[0], name=name)]
        return out

    for ip in cmdline.ips:
        if ip.method is IpMethod.IBFT:
            plans += nic_plans(ip.interface, ip.token)
        elif ip.method is IpMethod.NONE and ip.address is None and ip.interface is None:
            notes.append(f"{ip.token}: no network configuration")
        else:
            plans.append(_rename(_interface_from_ip(ip, notes), cmdline, notes))
    if not cmdline.ips and firmware_nics:
        plans += nic_plans(None, "rd.iscsi.ibft" if cmdline.ibft else "rd.iscsi.firmware")
    # an unnamed interface: bootdev= names it, else BOOTIF= selects it by MAC
    for i, plan in enumerate(plans):
        if plan.name is None and plan.mac is None and plan.source is Source.CMDLINE:
            if cmdline.bootdev:
                plans[i] = _rename(replace(plan, name=cmdline.bootdev), cmdline, notes)
            elif cmdline.bootif:
                plans[i] = replace(plan, mac=cmdline.bootif)
    if cmdline.nameservers:
        plans = [replace(p, dns=p.dns + tuple(d for d in cmdline.nameservers if d not in p.dns)) for p in plans]
    return tuple(plans)


def _family(address: str) -> int | None:
    try:
        return ipaddress.ip_address(address).version
    except ValueError:
        return None  # a host name: whichever family comes up first


def _default_interface(cmdline: Cmdline, targets: list[TargetPlan], notes: list[str]) -> InterfacePlan:
    """No ip=: DHCPv4 and IPv6 at once (Method.AUTO), the boot waiting for the family of the root target (a
    network that has only the other one costs no 'dhcp' bound); DHCPv4 alone for root=dhcp (option 17)."""
    if cmdline.dhcp_root is not None:
        plan = InterfacePlan(method=Method.DHCP, source=Source.CMDLINE)
        where = "DHCP"
    else:
        family = _family(targets[0].address) if targets else None
        plan = InterfacePlan(method=Method.AUTO, source=Source.CMDLINE, family=family)
        where = "DHCPv4 and IPv6 (SLAAC, else DHCPv6) at once"
        if family is not None:
            where += f", the login waiting for IPv{family}"
    if cmdline.bootdev:
        return _rename(replace(plan, name=cmdline.bootdev), cmdline, notes)
    if cmdline.bootif:
        return replace(plan, mac=cmdline.bootif)
    notes.append(f"no ip=: {where} on the first link with carrier")
    return plan


# ---- targets ---------------------------------------------------------------------------------------------------


def _chap(user: str | None, password: Secret | None, key: str) -> Chap | None:
    if user is None and password is None:
        return None
    if not user or not password:
        raise CmdlineError(key, None, "a CHAP user name needs its password and a password its user name")
    return Chap(user, password)


ChapPair = tuple[Chap | None, Chap | None]  # one-way CHAP, and the reverse (mutual) one


def _cmdline_chap(cmdline: Cmdline) -> ChapPair:
    """rd.iscsi.username/password and rd.iscsi.in.*: the CHAP of a target whose spec names none."""
    chap = _chap(cmdline.username, cmdline.password, "rd.iscsi.username")
    reverse = _chap(cmdline.in_username, cmdline.in_password, "rd.iscsi.in.username")
    if reverse is not None and chap is None:
        raise CmdlineError("rd.iscsi.in.username", None, "mutual CHAP needs the one-way CHAP user too")
    return chap, reverse


def _target_from_root(root: IscsiRoot, default_chap: Callable[[], ChapPair]) -> TargetPlan:
    """A netroot=iscsi: spec as a target: its own CHAP, else `default_chap()` (asked only then)."""
    if root.username is not None:
        chap = _chap(root.username, root.password, "netroot")
        reverse = _chap(root.in_username, root.in_password, "netroot")
        if reverse is not None and chap is None:
            raise CmdlineError("rd.iscsi.in.username", None, "mutual CHAP needs the one-way CHAP user too")
    else:
        chap, reverse = default_chap()
    return TargetPlan(
        name=root.target,
        address=root.server,
        port=root.port,
        lun=root.lun,
        iface=root.netdev,
        chap=chap,
        reverse_chap=reverse,
        source=Source.CMDLINE,
    )


def target_from_ibft(target: IbftTarget) -> TargetPlan:
    field = f"target{target.index}"
    chap = reverse = None
    if target.chap_type in (ChapType.CHAP, ChapType.MUTUAL):
        if not target.chap_name or not target.chap_secret:
            raise IbftError(f"{field}.chap_name", target.chap_name, "CHAP is on but the name or secret is missing")
        chap = Chap(target.chap_name, target.chap_secret)
    if target.chap_type is ChapType.MUTUAL:
        if not target.reverse_chap_name or not target.reverse_chap_secret:
            raise IbftError(
                f"{field}.reverse_chap_name", target.reverse_chap_name, "mutual CHAP but no reverse name or secret"
            )
        reverse = Chap(target.reverse_chap_name, target.reverse_chap_secret)
    assert target.ip is not None
    return TargetPlan(
        name=target.name,
        address=str(target.ip),
        port=target.port or 3260,
        lun=target.lun,
        iface=None,
        chap=chap,
        reverse_chap=reverse,
        source=Source.IBFT,
    )


def usable_ibft_targets(ibft: Ibft) -> list[IbftTarget]:
    return [t for t in ibft.targets if t.in_use and t.ip is not None]


def plan_cmdline_targets(cmdline: Cmdline) -> list[TargetPlan]:
    targets = [_target_from_root(root, lambda: _cmdline_chap(cmdline)) for root in cmdline.netroots]
    if cmdline.target_ip is not None:
        root = IscsiRoot(server=cmdline.target_ip, target=cmdline.target_name, port=cmdline.target_port or 3260)
        targets.append(_target_from_root(root, lambda: _cmdline_chap(cmdline)))
    elif (cmdline.target_name or cmdline.target_port) and not cmdline.netroots:
        raise CmdlineError("rd.iscsi.target.name", cmdline.target_name, "needs rd.iscsi.target.ip (the portal)")
    return targets


def plan_dhcp_root(cmdline: Cmdline, cmd_targets: list[TargetPlan], notes: list[str]) -> DhcpRootPlan | None:
    """root=dhcp / netroot=dhcp: the target from the lease's root path, as dracut's 40network dispatches it;
    a target named on the command line wins (as 95iscsi prefers netroot=iscsi: over netroot=dhcp)."""
    if cmdline.dhcp_root is None:
        return None
    key = f"netroot={cmdline.dhcp_root}"
    if cmd_targets:
        notes.append(f"{key}: the command line names the target, the DHCP root path is not used")
        return None
    if cmdline.dhcp_root == "dhcp6":
        raise CmdlineError(key, None, DHCP6_ROOT_REASON)
    chap, reverse = _cmdline_chap(cmdline)
    notes.append(f"{key}: the target comes from DHCP option 17 (root-path) of the lease, known only at boot")
    return DhcpRootPlan(chap=chap, reverse_chap=reverse)


def targets_from_root_path(plan: BootPlan, root_path: str, where: str) -> tuple[TargetPlan, ...]:
    """The targets of a DHCP root path, as if it had been given as netroot=<it>: the same parser and errors
    (exit 2), the command line's CHAP when the path has none, rd.iscsi.param's auth over it."""
    token = printable(redact_iscsi_root(f"netroot={root_path}"))
    if not root_path.startswith("iscsi:"):
        raise CmdlineError("netroot", token, f"the DHCP root path (option 17, from {where}) is not an iscsi: root")
    root = parse_iscsi_root(root_path, "netroot", token)
    dhcp = plan.dhcp_root or DhcpRootPlan()
    target = _target_from_root(root, lambda: (dhcp.chap, dhcp.reverse_chap))  # as if netroot=<it> had been given
    return tuple(apply_auth_params([target], plan.iscsi_params, []))


AUTH_PARAMS = ("node.session.auth.authmethod", "node.session.auth.username", "node.session.auth.password",
               "node.session.auth.username_in", "node.session.auth.password_in")  # fmt: skip


RETRY_PARAM = "node.session.initial_login_retry_max"
USED_PARAMS = frozenset({*PARAM_TIMEOUTS, *AUTH_PARAMS, RETRY_PARAM, "node.conn[0].iscsi.HeaderDigest",
                         "node.conn[0].iscsi.DataDigest"})  # fmt: skip


def plan_login_retry_max(cmdline: Cmdline, notes: list[str]) -> int | None:
    """Login attempts per target: rd.iscsi.param=node.session.initial_login_retry_max wins over
    rd.iscsi.login_retry_max (as 95iscsi adds the latter only without the former); every rd.iscsi.param that
    pyiscsi does not act on is named in a note, never dropped in silence."""
    value = cmdline.login_retry_max
    for name, given in cmdline.params:
        if name == RETRY_PARAM:
            text = given.reveal() if isinstance(given, Secret) else given
            if not text.isascii() or not text.isdigit() or int(text) > 10000:
                raise CmdlineError("rd.iscsi.param", f"{name}={printable(text)}", "expected 0 to 10000 attempts")
            value = int(text)
        elif name not in USED_PARAMS:
            notes.append(f"rd.iscsi.param={printable(name)}: not used by pyiscsi (shown here only)")
    return value


def plan_digest(params: tuple[tuple[str, str], ...], key: str) -> str:
    """rd.iscsi.param=node.conn[0].iscsi.<key>=<offer>, the last one winning (iscsistart --param's order)."""
    value = "None"
    for name, given in params:
        if name == f"node.conn[0].iscsi.{key}":
            try:
                digest_offer(key, given)
            except BadInputError:
                raise CmdlineError("rd.iscsi.param", f"{name}={given}", "expected None, CRC32C or both") from None
            value = given
    return value


def apply_auth_params(
    targets: list[TargetPlan], params: tuple[tuple[str, str], ...], notes: list[str]
) -> list[TargetPlan]:
    """rd.iscsi.param=node.session.auth.* as iscsistart applies them: to every node, over what it had."""
    auth = {k: v for k, v in params if k in AUTH_PARAMS}
    if not auth or not targets:
        return targets
    method = auth.get("node.session.auth.authmethod", "").upper()
    if method not in ("", "NONE", "CHAP"):
        raise CmdlineError("rd.iscsi.param", f"node.session.auth.authmethod={method}", "expected None or CHAP")
    if method == "NONE":
        notes.append("rd.iscsi.param=node.session.auth.authmethod=None: no CHAP for any target")
        return [replace(t, chap=None, reverse_chap=None) for t in targets]
    out = []
    for target in targets:
        chap, reverse = target.chap, target.reverse_chap
        if "node.session.auth.username" in auth or "node.session.auth.password" in auth:
            chap = _chap(
                auth.get("node.session.auth.username", chap.username if chap else None),
                Secret(auth["node.session.auth.password"]) if "node.session.auth.password" in auth else
                (chap.password if chap else None),
                "rd.iscsi.param",
            )  # fmt: skip
        if "node.session.auth.username_in" in auth or "node.session.auth.password_in" in auth:
            reverse = _chap(
                auth.get("node.session.auth.username_in", reverse.username if reverse else None),
                Secret(auth["node.session.auth.password_in"]) if "node.session.auth.password_in" in auth else
                (reverse.password if reverse else None),
                "rd.iscsi.param",
            )  # fmt: skip
        out.append(replace(target, chap=chap, reverse_chap=reverse))
    notes.append("rd.iscsi.param=node.session.auth.*: CHAP of every target set from the parameters")
    return out


def _identity(t: TargetPlan) -> tuple[str, int, str | None]:
    """What makes two planned targets one: the portal and the name (a set of these keeps planning linear)."""
    return (t.address, t.port, t.name)


# ---- initiator name and waits ----------------------------------------------------------------------------------


def resolve_initiator(
    cmdline: Cmdline, ibft: Ibft | None, initiator_file: str, machine_id_path: str
) -> tuple[str, str]:
    """(name, where it came from). The name checks and the default are initiator.initiator_name's, so `probe`
    and `discover` use the same name; a bad name here is a CmdlineError, as every other input of the plan."""
    try:
        if cmdline.initiator:
            return initiator_name.validate_name(cmdline.initiator, "rd.iscsi.initiator"), "rd.iscsi.initiator"
        if ibft is not None and ibft.initiator is not None and ibft.initiator.name:
            return ibft.initiator.name, "the iBFT"
        name, from_file = initiator_name.default_name(initiator_file, machine_id_path)
    except BadInputError as exc:
        raise CmdlineError(exc.field, exc.value, exc.reason) from None
    return name, from_file or f"generated (no rd.iscsi.initiator, iBFT or {initiator_file})"


def plan_timeouts(cmdline: Cmdline) -> Timeouts:
    values: dict[str, float] = {}
    if cmdline.rd_retry is not None:
        values["total"] = cmdline.rd_retry
    if cmdline.rd_timeout:  # 0 is dracut's "forever"; every wait of ours is bounded, so the default stays
        values["disk"] = cmdline.rd_timeout
    known = set(fields(Timeouts))
    for name, seconds in cmdline.net_timeouts:
        if name in known:
            values[name] = seconds
    for key, value in cmdline.params:
        wait = PARAM_TIMEOUTS.get(key)
        if wait is not None:
            try:
                seconds = float(value)
            except ValueError:
                raise CmdlineError("rd.iscsi.param", f"{key}={value}", "expected a number of seconds") from None
            if not 0 <= seconds <= 7 * 86400:
                raise CmdlineError("rd.iscsi.param", f"{key}={value}", "seconds out of range")
            values[wait] = seconds
    for name, seconds in cmdline.pyiscsi_timeouts:
        values[name] = seconds
    return Timeouts(**values)


# ---- the plan --------------------------------------------------------------------------------------------------


def build_plan(
    cmdline: Cmdline,
    ibft: Ibft | None,
    *,
    initiator_file: str = INITIATOR_FILE,
    machine_id_path: str = MACHINE_ID,
    notes: tuple[str, ...] = (),
    multipathd: bool = False,
) -> BootPlan:
    """Merge by the rules in this module's docstring. Pure: no I/O beyond the two small name files.
    `multipathd`: the image carries dm-multipath's daemon (load_plan looks)."""
    notes_out = list(notes)
    for other in cmdline.other_netroots:
        # only the scheme: another module's root may carry its own credentials (cifs://user:password@...)
        scheme = other.split(":", 1)[0][:16]
        notes_out.append(f"netroot={printable(scheme)}:...: not an iSCSI root, ignored")
    cmd_targets = plan_cmdline_targets(cmdline)
    dhcp_root = plan_dhcp_root(cmdline, cmd_targets, notes_out)
    ibft_wanted = (
        bool(cmdline.firmware)
        or cmdline.netroot_firmware
        or cmdline.ibft
        or any(ip.method is IpMethod.IBFT for ip in cmdline.ips)
    )
    firmware_targets: list[IbftTarget] = []
    if ibft is None:
        if cmdline.firmware or cmdline.netroot_firmware:
            raise IbftError("ibft", None, "rd.iscsi.firmware (or netroot=iscsi) asks for the iBFT but none was found")
    elif cmdline.firmware is not False and (ibft_wanted or (not cmd_targets and dhcp_root is None)):
        firmware_targets = usable_ibft_targets(ibft)
        if not cmd_targets and not ibft_wanted and firmware_targets:
            notes_out.append("no target on the command line: using the iBFT's")
    targets: list[TargetPlan] = []
    seen: set[tuple[str, int, str | None, int]] = set()  # (address, port, name, lun): linear in the words given
    for target in cmd_targets:  # root=iscsi: and netroot= naming the same LUN log in once
        key = (*_identity(target), target.lun)
        if key in seen:
            notes_out.append(
                f"target {printable(str(target.name))} at {target.address}:{target.port} lun {target.lun}: given twice"
            )
            continue
        seen.add(key)
        targets.append(target)
    from_cmdline = {_identity(t) for t in targets}
    from_firmware: set[tuple[str, int, str | None]] = set()
    for target in firmware_targets:
        plan = target_from_ibft(target)
        where = f"iBFT target {printable(str(plan.name))} at {plan.address}:{plan.port}"
        if _identity(plan) in from_cmdline:
            notes_out.append(f"{where}: the command line's wins")
            continue
        if _identity(plan) in from_firmware:
            notes_out.append(f"{where}: listed twice in the iBFT, logged in to once")
            continue
        from_firmware.add(_identity(plan))
        targets.append(plan)
    if ibft is not None:
        notes_out.extend(f"iBFT: {warning}" for warning in ibft.warnings)

    if dhcp_root is not None and targets:
        notes_out.append(f"netroot={cmdline.dhcp_root}: the iBFT names the target, the DHCP root path is not used")
        dhcp_root = None
    targets = apply_auth_params(targets, cmdline.params, notes_out)
    firmware_nics = bool(firmware_targets) or cmdline.ibft
    interfaces = plan_interfaces(cmdline, ibft, firmware_nics, firmware_targets, notes_out)
    if not interfaces and not cmdline.ips and (targets or cmdline.neednet or dhcp_root is not None):
        interfaces = (_default_interface(cmdline, targets, notes_out),)
        if cmdline.nameservers:
            interfaces = (replace(interfaces[0], dns=cmdline.nameservers),)
    master = ([b.name for b in cmdline.bridges] + [b.name for b in cmdline.bonds])[:1]
    if master:  # dracut's ifup gives an ip= without a name (or no ip=) to the master, never to its slaves
        interfaces = tuple(
            replace(i, name=master[0]) if i.name is None and i.mac is None and i.source is Source.CMDLINE
            else i
            for i in interfaces
        )  # fmt: skip
    renames, bonds, bridges = plan_links(cmdline, interfaces, notes_out)
    if dhcp_root is not None and not any(i.method is Method.DHCP for i in interfaces):
        raise CmdlineError(
            f"netroot={cmdline.dhcp_root}", None, "the root path comes from a DHCPv4 lease, but no ip= asks for DHCP"
        )
    initiator_name, initiator_from = resolve_initiator(cmdline, ibft, initiator_file, machine_id_path)
    notes_out.append(f"initiator name from {initiator_from}")
    if cmdline.target_group is not None:
        notes_out.append(f"rd.iscsi.target.group={cmdline.target_group}: the portal group is taken from the target")
    plan = BootPlan(
        initiator_name=initiator_name,
        interfaces=interfaces,
        targets=tuple(targets),
        timeouts=plan_timeouts(cmdline),
        root=cmdline.root,
        log_level=cmdline.log_level,
        waitnet=cmdline.waitnet,
        testroute=cmdline.testroute,
        iscsi_params=cmdline.params,
        login_retry_max=plan_login_retry_max(cmdline, notes_out),
        agent=cmdline.agent,
        header_digest=plan_digest(cmdline.params, "HeaderDigest"),
        data_digest=plan_digest(cmdline.params, "DataDigest"),
        notes=tuple(notes_out),
        dhcp_root=dhcp_root,
        renames=renames,
        bonds=bonds,
        bridges=bridges,
        replacement_given=replacement_given(cmdline),
        dm_multipath=multipathd and cmdline.dm_multipath,
    )
    return replace(plan, notes=plan.notes + tuple(paths.plan_notes(plan)))


def replacement_given(cmdline: Cmdline) -> bool:
    """Whether the command line sets the replacement timeout (then a multipath LUN's sessions keep it too)."""
    return any(PARAM_TIMEOUTS.get(key) == "replacement" for key, _ in cmdline.params) or any(
        name == "replacement" for name, _ in cmdline.pyiscsi_timeouts
    )


# ---- the I/O around it -----------------------------------------------------------------------------------------


# where dracut's multipath module (and Debian's multipath-tools) put the daemon that joins a LUN's paths
MULTIPATHD = ("/sbin/multipathd", "/usr/sbin/multipathd")


def read_cmdline(path: str = PROC_CMDLINE, cmdline_d: str | None = CMDLINE_D) -> str:
    """/proc/cmdline, then every /etc/cmdline.d/*.conf (as dracut reads them in the initramfs)."""
    try:
        parts = [Path(path).read_text(errors="replace")[: 1 << 20]]
    except OSError as exc:
        raise CmdlineError("cmdline", path, f"cannot read: {exc.strerror}") from None
    if cmdline_d and os.path.isdir(cmdline_d):
        for conf in sorted(Path(cmdline_d).glob("*.conf")):
            try:
                parts.append(conf.read_text(errors="replace")[: 1 << 20])
            except OSError:
                continue
    return " ".join(" ".join(p.splitlines()) for p in parts)


def load_plan(
    cmdline: str | None = None,
    ibft_source: str | None = None,
    *,
    cmdline_path: str = PROC_CMDLINE,
    cmdline_d: str | None = CMDLINE_D,
    initiator_file: str = INITIATOR_FILE,
    machine_id_path: str = MACHINE_ID,
    multipathd_paths: tuple[str, ...] | None = None,
    before_firmware: Callable[[Cmdline], None] | None = None,
) -> BootPlan:
    """The boot plan. `cmdline` None reads /proc/cmdline (+ /etc/cmdline.d); `ibft_source` None finds the
    firmware's table if there is one ("none": do not look). `before_firmware` gets the parsed command line before
    the firmware is read (`pyiscsi boot` loads the kernel modules it asks for). Raises CmdlineError/IbftError
    (exit 2)."""
    from initiator.ibft_sources import find_ibft, load_ibft

    text = read_cmdline(cmdline_path, cmdline_d) if cmdline is None else cmdline
    parsed = parse_cmdline(text)
    if before_firmware is not None:
        before_firmware(parsed)
    notes: list[str] = []
    ibft: Ibft | None
    if ibft_source == NO_IBFT:
        ibft = None
    elif ibft_source is not None:
        ibft = load_ibft(ibft_source)
    else:
        needed = bool(parsed.firmware) or parsed.netroot_firmware or parsed.ibft
        needed = needed or any(ip.method is IpMethod.IBFT for ip in parsed.ips)
        try:
            ibft = find_ibft()
        except PyiscsiError as exc:
            if needed:
                raise
            notes.append(f"iBFT ignored: {exc}")
            ibft = None
    return build_plan(
        parsed,
        ibft,
        initiator_file=initiator_file,
        machine_id_path=machine_id_path,
        notes=tuple(notes),
        multipathd=any(os.path.exists(p) for p in (MULTIPATHD if multipathd_paths is None else multipathd_paths)),
    )
