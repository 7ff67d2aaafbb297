"""Every dracut command-line option that concerns the network or an iSCSI root, and what pyiscsi does with it.

One row per option form: supported (as dracut.cmdline(7) documents it), supported with a difference (which), or
refused (the exact one-line message the boot fails with). `pyiscsi explain` prints the row of each option the
command line holds (`seen`); dracut/95pyiscsi/README.md shows the table (`render_markdown`), and
tests/boot/test_dracut_options.py checks that the README and this table agree and that every key boot.cmdline
parses has a row: nothing is parsed and then silently ignored.

Rows never hold a value from the command line, so what `explain` prints from here carries no secret.
"""

from __future__ import annotations

import enum
import re

from boot.cmdline import ALIASES, HEX_PAIR_PATTERN, split_fields, tokenize
from initiator.errors import CmdlineError
from initiator.record import record


class Status(enum.StrEnum):
    SUPPORTED = "supported"
    DIFFERENT = "supported with a difference"
    REFUSED = "refused"


@record
class OptionRow:
    """One option form. `key` is what boot.cmdline dispatches on ("": a form boot.cmdline does not read)."""

    form: str
    key: str
    status: Status
    detail: str  # what pyiscsi does; the difference; or, when refused, the exact message of the failed boot

    def to_json(self) -> dict[str, str]:
        return {"option": self.form, "status": self.status.value, "detail": self.detail}


S, D, R = Status.SUPPORTED, Status.DIFFERENT, Status.REFUSED

TEAM_REFUSED = "team=: not supported: team devices need teamd, which pyiscsi does not carry; use bond= instead"
DHCP6_ROOT_REASON = (
    "not supported: DHCPv6 has no root-path option (the root path is DHCPv4 option 17); "
    "use netroot=dhcp with ip=dhcp, or netroot=iscsi:[<address>]:... with ip=dhcp6 or auto6"
)
DHCP6_ROOT_REFUSED = f"netroot=dhcp6: {DHCP6_ROOT_REASON}"  # boot.planner raises it (field netroot=dhcp6)
TRANSPORT_REFUSED = "rd.iscsi.transport: only the tcp transport is supported (got '<the word>')"
NETROOT_ISCSI = "netroot=iscsi:[<user>:<pass>[:<ruser>:<rpass>]@]<server>:[<proto>]:[<port>][:...]:[<lun>]:<target>"
IP_LONG = "ip=<client-IP>:[<peer>]:<gateway>:<netmask>:<hostname>:<interface>:<method>[:...]"

OPTIONS: tuple[OptionRow, ...] = (
    # ---- interfaces and addresses
    OptionRow("ip=<method>", "ip", D,
              "dhcp, on, any, single-dhcp: DHCPv4 on bootdev=, BOOTIF= or the first link with carrier (dracut: on "
              "every link); dhcp6, auto6, either6, link6 (link-local only), ibft, none/off as documented"),
    OptionRow("(no ip=)", "", D,
              "with no ip= and no iBFT NIC: DHCPv4 and IPv6 (SLAAC, else DHCPv6) at once on bootdev=, BOOTIF= or "
              "the first link with carrier; the login waits only for the root target's family, the other "
              "family failing is a warning (dracut: DHCPv4 only); root=dhcp: DHCPv4 only"),
    OptionRow("ip=<interface>:<method>[:<mtu>[:<macaddr>]]", "ip", S, "the MTU and the MAC address are set"),
    OptionRow(IP_LONG, "ip", D,
              "as documented, but the point-to-point <peer> is ignored (a note)"),
    OptionRow("ifname=<interface>:<MAC>", "ifname", S,
              "the link with that MAC is renamed to <interface>, once udev has named it"),
    OptionRow("bootdev=<interface>", "bootdev", S, "the interface of a plan without ip=<interface>"),
    OptionRow("BOOTIF=<MAC>", "BOOTIF", S, "pxelinux's 01-<mac> form too: the link with that MAC"),
    OptionRow("rd.bootif=0", "", D, "not read: BOOTIF= is always used when given"),
    OptionRow("vlan=<vlanname>:<phydevice>", "vlan", S, "vlan0005, vlan5, eth0.0005, eth0.5 names; on a bond too"),
    OptionRow("bond=<bondname>[:<slaves>[:<options>[:<mtu>]]]", "bond", S,
              "created with pyroute2: mode (balance-rr, active-backup, balance-xor, broadcast, 802.3ad, "
              "balance-tlb, balance-alb), miimon, primary, lacp_rate, xmit_hash_policy, updelay, downdelay, "
              "arp_interval, arp_ip_target; slaves by the names udev (or ifname=) gave them; a slave whose link "
              "is down does not fail the boot"),
    OptionRow("bridge=<bridgename>:<ethnames>", "bridge", S, "created with pyroute2, the address on the bridge"),
    OptionRow("team=<teammaster>:<teamslaves>", "team", R, TEAM_REFUSED),
    OptionRow("nameserver=<IP>", "nameserver", S, "after the interface's own (ip= dns fields, DHCP, iBFT)"),
    OptionRow("rd.peerdns=0", "", D, "not read: name servers from DHCP are always used"),
    OptionRow("biosdevname=0|1", "", D, "not read: links keep the names udev gives them unless ifname= renames them"),
    OptionRow("rd.route=<net>/<netmask>:<gateway>[:<interface>]", "", D,
              "not read: only the default routes of ip= gateways, DHCP and router advertisements are set"),
    OptionRow("rd.neednet=0|1", "rd.neednet", S, "=1 brings the network up even without an iSCSI target"),
    OptionRow("rd.net.dhcp.retry=<cnt>", "", D, "not read: DHCP retries as long as the 'dhcp' bound allows"),
    OptionRow("rd.net.timeout.iflink=<s>", "rd.net.timeout.iflink", S, "the 'iflink' wait"),
    OptionRow("rd.net.timeout.carrier=<s>", "rd.net.timeout.carrier", S, "the 'carrier' wait"),
    OptionRow("rd.net.timeout.dhcp=<s>", "rd.net.timeout.dhcp", S, "the 'dhcp' wait (dracut leaves it to dhclient)"),
    OptionRow("rd.net.timeout.ipv6dad=<s>", "rd.net.timeout.ipv6dad", S, "the 'ipv6dad' wait"),
    OptionRow("rd.net.timeout.ipv6auto=<s>", "rd.net.timeout.ipv6auto", S, "the 'ipv6auto' wait"),
    OptionRow("rd.net.timeout.ifup=<s>", "rd.net.timeout.ifup", D,
              "accepted; no wait of pyiscsi matches it: the whole bring-up is under 'total' and its own waits"),
    OptionRow("rd.net.timeout.route=<s>", "rd.net.timeout.route", D,
              "accepted; no wait of pyiscsi matches it: routes come with the address (DHCP, RA, ip= gateway)"),
    # ---- the root
    OptionRow("root=iscsi:...", "root", S, "the whole LUN is the root (/dev/pyiscsiroot)"),
    OptionRow(NETROOT_ISCSI, "netroot", S,
              "repeats; an empty target name: SendTargets discovery; the first is the root's; the same target "
              "and LUN at another portal is another path of the root (every path logs in at once; one that fails "
              "is a warning, dracut: the first failing aborts)"),
    OptionRow("netroot=iscsi", "netroot", S, "the targets of the iBFT (as rd.iscsi.firmware=1)"),
    OptionRow("root=dhcp", "root", S, "the root path from DHCPv4 option 17 must be iscsi:...; its whole LUN is root"),
    OptionRow("netroot=dhcp", "netroot", S,
              "the target is DHCPv4 option 17 of the lease, parsed as netroot=<it>; not an iscsi: root path, or "
              "a lease without one: the boot fails with one line naming it"),
    OptionRow("root=dhcp6", "root", R, DHCP6_ROOT_REFUSED),
    OptionRow("netroot=dhcp6", "netroot", R, DHCP6_ROOT_REFUSED),
    OptionRow("netroot=<other>:...", "netroot", D, "not an iSCSI root (nfs:, nbd:...): left to its own module"),
    OptionRow("root=<device>", "root", S, "mounted by dracut once pyiscsi has the disk"),
    OptionRow("rd.retry=<s>", "rd.retry", S, "the 'total' bound of the boot"),
    OptionRow("rd.timeout=<s>", "rd.timeout", D, "the 'disk' wait; 0 (dracut: no limit) keeps the default bound"),
    # ---- iSCSI
    OptionRow("rd.iscsi.initiator=<name>", "rd.iscsi.initiator", S, "old spelling iscsi_initiator="),
    OptionRow("rd.iscsi.target.name=<name>", "rd.iscsi.target.name", S, "old spelling iscsi_target_name="),
    OptionRow("rd.iscsi.target.ip=<address>", "rd.iscsi.target.ip", S, "old spelling iscsi_target_ip="),
    OptionRow("rd.iscsi.target.port=<port>", "rd.iscsi.target.port", S, "old spelling iscsi_target_port="),
    OptionRow("rd.iscsi.target.group=<group>", "rd.iscsi.target.group", D,
              "accepted; the portal group is the one the target reports (a note)"),
    OptionRow("rd.iscsi.username=<user>", "rd.iscsi.username", S, "CHAP for targets whose spec has none"),
    OptionRow("rd.iscsi.password=<secret>", "rd.iscsi.password", S, "never printed (***)"),
    OptionRow("rd.iscsi.in.username=<user>", "rd.iscsi.in.username", S, "mutual CHAP"),
    OptionRow("rd.iscsi.in.password=<secret>", "rd.iscsi.in.password", S, "never printed (***)"),
    OptionRow("rd.iscsi.firmware[=0|1]", "rd.iscsi.firmware", S, "old spelling iscsi_firmware; =0 refuses the iBFT"),
    OptionRow("rd.iscsi.ibft[=0|1]", "rd.iscsi.ibft", S, "the iBFT's NICs are configured"),
    OptionRow("rd.iscsi.mp[=0|1]", "rd.iscsi.mp", S, "every iBFT NIC, not only those of the boot targets"),
    OptionRow("rd.multipath=0|default", "rd.multipath", S,
              "dracut's multipath module reads it; =0 (or no multipathd in the image): a LUN's paths keep the "
              "plain replacement timeout, as no dm-multipath device joins them"),
    OptionRow("rd.iscsi.waitnet=0|1", "rd.iscsi.waitnet", D,
              "default 1, as dracut.cmdline(7) says (dracut 059's script defaults to 0): all interfaces up "
              "before the first login; =0 logs in once an interface that reaches the root target is up"),
    OptionRow("rd.iscsi.testroute=0|1", "rd.iscsi.testroute", S,
              "default 1: a target the routing table does not reach is not tried (the root's: the boot fails)"),
    OptionRow("rd.iscsi.login_retry_max=<n>", "rd.iscsi.login_retry_max", D,
              "at most <n> login attempts per target (0: no count), always within the 'login' bound; not "
              "given: as many as the bound allows (dracut: 3)"),
    OptionRow("rd.iscsi.param=<param>=<value>", "rd.iscsi.param", D,
              "acts on node.session.timeo.replacement_timeout, node.conn[0].timeo.login_timeout, "
              "node.session.auth.*, node.conn[0].iscsi.HeaderDigest/DataDigest, "
              "node.session.initial_login_retry_max; any other parameter is named in a note and not used"),
    OptionRow("rd.iscsi.transport=<name>", "rd.iscsi.transport", D, f"tcp only; another: {TRANSPORT_REFUSED}"),
    # ---- pyiscsi's own
    OptionRow(
        "rd.pyiscsi=0", "", S, "pyiscsi's own: leave the root to another module (the cmdline hook, the generator)"
    ),
    OptionRow("rd.pyiscsi.timeout=<s>", "rd.pyiscsi.timeout", S, "pyiscsi's own: the 'total' bound"),
    OptionRow("rd.pyiscsi.timeout.<wait>=<s>", "rd.pyiscsi.timeout.", S,
              "pyiscsi's own: any wait `explain` lists"),
    OptionRow("rd.pyiscsi.timeout.udev=<s>", "rd.pyiscsi.timeout.udev", S,
              "pyiscsi's own: how long a link waits for udev to handle (rename) it before it is set up (10 s); "
              "then one warning naming the link and the wait, and on"),
    OptionRow("rd.pyiscsi.loglevel=<level>", "rd.pyiscsi.loglevel", S, "pyiscsi's own (also rd.pyiscsi.log=)"),
    OptionRow("rd.pyiscsi.agent=0|1", "rd.pyiscsi.agent", S, "pyiscsi's own: the recovery agent"),
)  # fmt: skip

_BY_FORM = {row.form: row for row in OPTIONS}
_UNREAD = {row.form.split("=", 1)[0]: row for row in OPTIONS if not row.key}  # rd.bootif, rd.peerdns, ...


def _root_form(key: str, value: str | None) -> str:
    value = value or ""
    if value.startswith("iscsi:"):
        return "root=iscsi:..." if key == "root" else NETROOT_ISCSI
    if value == "iscsi" and key == "netroot":
        return "netroot=iscsi"
    if value in ("dhcp", "dhcp6"):
        return f"{key}={value}"
    return "root=<device>" if key == "root" else "netroot=<other>:..."


def _ip_form(value: str | None) -> str:
    """Which ip= form a value is, by its field count as boot.cmdline.parse_ip tells them apart."""
    text = value or ""
    try:
        fields = split_fields(text, "ip", text)
    except CmdlineError:
        return "ip=<method>"  # the planner refuses it, naming the word
    if len(fields) >= 8 and all(re.fullmatch(HEX_PAIR_PATTERN, f) for f in fields[-6:]):
        fields = fields[:-6]  # a MAC address written with colons
    if len(fields) == 1:
        return "ip=<method>"
    return IP_LONG if len(fields) >= 7 else "ip=<interface>:<method>[:<mtu>[:<macaddr>]]"


def row_for(key: str, value: str | None = None) -> OptionRow | None:
    """The row of one command-line word (`key`, `value` as boot.cmdline.tokenize gives them), or None when the
    word concerns neither the network nor the iSCSI root."""
    key = ALIASES.get(key, key)
    if key in ("root", "netroot"):
        return _BY_FORM[_root_form(key, value)]
    if key == "ip":
        return _BY_FORM[_ip_form(value)]
    if key == "rd.pyiscsi.log":
        key = "rd.pyiscsi.loglevel"
    for row in OPTIONS:
        if row.key == key:
            return row
    if key.startswith("rd.pyiscsi.timeout."):  # a wait without a row of its own
        return _BY_FORM["rd.pyiscsi.timeout.<wait>=<s>"]
    return _UNREAD.get(key)


def seen(text: str) -> list[OptionRow]:
    """The rows of the options on a command line, each once, in the order they first appear."""
    rows: list[OptionRow] = []
    for key, value, _word in tokenize(text):
        row = row_for(key, value)
        if row is not None and row not in rows:
            rows.append(row)
    return rows


def render_markdown() -> list[str]:
    """The table as dracut/95pyiscsi/README.md shows it (one line per row)."""
    lines = ["| option | status | what pyiscsi does |", "|---|---|---|"]
    for row in OPTIONS:
        form, detail = (text.replace("|", "\\|") for text in (row.form, row.detail))
        lines.append(f"| `{form}` | {row.status.value} | {detail} |")
    return lines


__all__ = ["OPTIONS", "TEAM_REFUSED", "OptionRow", "Status", "render_markdown", "row_for", "seen"]
