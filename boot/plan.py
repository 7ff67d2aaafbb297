"""The boot plan: what `pyiscsi boot` will do, decided before anything is touched.

These are plain frozen values shared by the planner (which builds them from the command line and the iBFT),
the network bring-up and the login. `to_json()` gives exactly the shape of the CLI contract's `explain --json`.
"""

from __future__ import annotations

import enum
import ipaddress
from typing import TYPE_CHECKING, Any

from initiator.credentials import Credentials
from initiator.record import field, fields, record
from initiator.secret import REDACTED, Secret

if TYPE_CHECKING:
    from initiator.credentials import Chap

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Method(enum.StrEnum):
    STATIC = "static"
    DHCP = "dhcp"
    DHCP6 = "dhcp6"
    AUTO6 = "auto6"
    EITHER6 = "either6"
    AUTO = "dhcp+auto6"  # no ip=: DHCPv4 and IPv6 (SLAAC, else DHCPv6) at once, the login over what is up first
    NONE = "none"


class Source(enum.StrEnum):
    CMDLINE = "cmdline"
    IBFT = "ibft"


@record
class InterfacePlan:
    """One interface to bring up. `name` or `mac` (or neither: the first link with carrier) selects the link."""

    name: str | None = None
    mac: str | None = None  # lower-case aa:bb:cc:dd:ee:ff
    vlan: int | None = None
    mtu: int | None = None
    method: Method = Method.DHCP
    addresses: tuple[IPInterface, ...] = ()
    gateway: ipaddress.IPv4Address | None = None
    gateway6: ipaddress.IPv6Address | None = None
    dns: tuple[IPAddress, ...] = ()
    hostname: str | None = None
    source: Source = Source.CMDLINE
    family: int | None = None  # Method.AUTO: the address family (4, 6) the root target needs; None: either
    set_mac: str | None = None  # ip=...:<macaddr>: the MAC address to give the link (not in the contract's JSON)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mac": self.mac,
            "vlan": self.vlan,
            "mtu": self.mtu,
            "method": self.method.value,
            "addresses": [str(a) for a in self.addresses],
            "gateway": None if self.gateway is None else str(self.gateway),
            "gateway6": None if self.gateway6 is None else str(self.gateway6),
            "dns": [str(d) for d in self.dns],
            "hostname": self.hostname,
            "source": self.source.value,
        }


@record
class TargetPlan:
    """One target to log into. `name` None means: find it by SendTargets discovery at `address`."""

    name: str | None
    address: str
    port: int = 3260
    lun: int = 0
    iface: str | None = None
    chap: Chap | None = None
    reverse_chap: Chap | None = None
    source: Source = Source.CMDLINE

    @property
    def credentials(self) -> Credentials | None:
        """The CHAP a login to it uses; UsageError when the plan has a reverse identity without a one-way one."""
        return Credentials.of(self.chap, self.reverse_chap)

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "port": self.port,
            "lun": self.lun,
            "iface": self.iface,
            "chap": None if self.chap is None else self.chap.to_json(show_secrets),
            "reverse_chap": None if self.reverse_chap is None else self.reverse_chap.to_json(show_secrets),
            "source": self.source.value,
        }


@record
class Timeouts:
    """Every bounded wait of a boot, in seconds. Names are stable: they appear in `explain` and in errors."""

    # Defaults: dracut's where dracut has one (dracut.cmdline(7)), ours otherwise. boot.planner fills them from
    # the command line; every one can be set with rd.pyiscsi.timeout.<name>=<seconds>.
    total: float = 180.0  # the whole of `pyiscsi boot` (rd.pyiscsi.timeout, else rd.retry; dracut's rd.retry: 180)
    iflink: float = 60.0  # the named link to appear (rd.net.timeout.iflink; dracut: 60)
    udev: float = 10.0  # udev to have handled (renamed) a link before it is set up; then a warning, and on
    carrier: float = 10.0  # carrier on a link that is up (rd.net.timeout.carrier; dracut: 10)
    dhcp: float = 30.0  # DHCPv4 lease (rd.net.timeout.dhcp; dracut leaves it to dhclient)
    ipv6dad: float = 50.0  # duplicate address detection of static IPv6 (rd.net.timeout.ipv6dad; dracut: 50)
    ipv6auto: float = 40.0  # SLAAC address and default route (rd.net.timeout.ipv6auto; dracut: 40)
    dhcp6: float = 30.0  # DHCPv6 lease
    arp: float = 0.3  # the ARP probe of a DHCPv4 address before it is used (RFC 5227; 0: no probe)
    connect: float = 10.0  # one TCP connect to a portal
    login: float = 20.0  # one login, connect to full feature phase (rd.iscsi.param=...login_timeout=)
    disk: float = 30.0  # the block device of the root LUN to appear (rd.timeout when > 0)
    replacement: float = 120.0  # how long the kernel queues I/O while a session recovers
    # (rd.iscsi.param=node.session.timeo.replacement_timeout=)

    def to_json(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in fields(self)}


def _param_value(key: str, value: str | Secret, show_secrets: bool) -> str:
    """An rd.iscsi.param value as `explain` shows it: a password (a Secret, or a key naming one) as ***."""
    if not show_secrets and (isinstance(value, Secret) or "password" in key.lower()):
        return REDACTED
    return value.reveal() if isinstance(value, Secret) else value


@record
class DhcpRootPlan:
    """root=dhcp / netroot=dhcp: the target comes from DHCPv4 option 17 at boot, parsed as a netroot= value;
    the CHAP it gets when the root path carries none (rd.iscsi.username/password and .in.) is decided now."""

    chap: Chap | None = None
    reverse_chap: Chap | None = None


@record
class RenamePlan:
    """ifname=<name>:<mac>: the link with that MAC takes that name before anything else touches it."""

    name: str
    mac: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mac": self.mac}


@record
class BondPlan:
    """bond=: a bond made over `slaves` (by name, after the renames) before the interfaces come up; `options` are
    dracut's name=value pairs, already checked (boot.net.bond)."""

    name: str
    slaves: tuple[str, ...]
    options: tuple[tuple[str, str], ...] = (("mode", "balance-rr"),)
    mtu: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "slaves": list(self.slaves), "options": dict(self.options), "mtu": self.mtu}


@record
class BridgePlan:
    """bridge=: a bridge made over `ports` (links or bonds) before the interfaces come up."""

    name: str
    ports: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ports": list(self.ports)}


@record
class BootPlan:
    initiator_name: str | None
    interfaces: tuple[InterfacePlan, ...] = ()
    targets: tuple[TargetPlan, ...] = ()
    timeouts: Timeouts = field(default_factory=Timeouts)
    root: str | None = None
    # Beyond the contract's explain shape (to_json leaves them out; `explain` prints them under "options"/"notes"):
    log_level: str = "info"  # rd.pyiscsi.loglevel
    waitnet: bool = True  # rd.iscsi.waitnet: all interfaces up before the first login
    testroute: bool = True  # rd.iscsi.testroute: skip a target without a route to it
    iscsi_params: tuple[tuple[str, str | Secret], ...] = ()  # rd.iscsi.param=<key>=<value>, in order
    login_retry_max: int | None = None  # rd.iscsi.login_retry_max
    agent: bool = True  # rd.pyiscsi.agent: the recovery agent owns recovery from `pyiscsi boot` to iscsid
    header_digest: str = "None"  # rd.iscsi.param=node.conn[0].iscsi.HeaderDigest= (None, CRC32C, CRC32C,None...)
    data_digest: str = "None"  # rd.iscsi.param=node.conn[0].iscsi.DataDigest=
    notes: tuple[str, ...] = ()  # what the planner decided or ignored, in words (unsupported options, conflicts)
    replacement_given: bool = False  # the command line set the replacement timeout (paths keep it: boot.paths)
    # the image carries dm-multipath (multipathd) and rd.multipath is not 0: the real root joins a LUN's paths
    dm_multipath: bool = False
    dhcp_root: DhcpRootPlan | None = None  # root=dhcp / netroot=dhcp: targets come from the lease's option 17
    renames: tuple[RenamePlan, ...] = ()  # ifname=, done first
    bonds: tuple[BondPlan, ...] = ()  # bond=, made after the renames
    bridges: tuple[BridgePlan, ...] = ()  # bridge=, made after the bonds (a bond may be a port)

    def links_json(self) -> dict[str, Any]:
        """The link phase `explain --json` shows under "links": renames, bonds, bridges, MAC addresses to set."""
        return {
            "renames": [r.to_json() for r in self.renames],
            "bonds": [b.to_json() for b in self.bonds],
            "bridges": [b.to_json() for b in self.bridges],
            "set_macs": [{"interface": i.name, "mac": i.set_mac} for i in self.interfaces if i.set_mac is not None],
        }

    def options_json(self, show_secrets: bool = False) -> dict[str, Any]:
        """The extras as `explain` prints them; an iscsiadm parameter naming a password shows as ***."""
        return {
            "log_level": self.log_level,
            "waitnet": self.waitnet,
            "testroute": self.testroute,
            "iscsi_params": {k: _param_value(k, v, show_secrets) for k, v in self.iscsi_params},
            "login_retry_max": self.login_retry_max,
            "agent": self.agent,
            "header_digest": self.header_digest,
            "data_digest": self.data_digest,
            "dhcp_root": self.dhcp_root is not None,
        }

    def to_json(self, show_secrets: bool = False) -> dict[str, Any]:
        return {
            "initiator_name": self.initiator_name,
            "interfaces": [i.to_json() for i in self.interfaces],
            "targets": [t.to_json(show_secrets) for t in self.targets],
            "timeouts": self.timeouts.to_json(),
            "root": self.root,
        }
