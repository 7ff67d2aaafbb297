"""A private network for the VMs: its own namespace, a bridge, taps, dnsmasq and tgtd, instead of QEMU's NAT.

QEMU's user network fixes the lease time and shows the host's 127.0.0.1 to the guest as 10.0.2.2, so a target
advertises an address the guest cannot reach (why stock dracut's `netroot=` cannot boot under it). Here the
guest and its servers share one real network, made fresh in a network namespace for each use:

    namespace pyinetlab-<pid>-<n>    bridge br0: 192.168.77.1/24 and fd70:7969:7363:1::1/64 (AddressPlan)
      tap0 (tap1, ...) on br0        one per VM NIC; QEMU runs in the namespace (`ip netns exec`) on them
      dnsmasq on br0 only            DHCPv4 pool .100-.199 (lease as asked, option 17, iPXE's boot file),
                                     router advertisements and/or stateful DHCPv6 pool ::100-::1ff, no DNS
      HTTP on 192.168.77.1:<port>    serves `lab.www` (iPXE's script, kernel, initrd); a thread of this process
      tgtd on 192.168.77.1:3260      (and [fd70:7969:7363:1::1]:3260; only the IPv6 one when IPv4 is off)

Use:

    from harness.netlab import AddressPlan, LabConfig, NetLab, Stack
    plan = AddressPlan()
    config = LabConfig(stack=Stack.IPV4, lease_seconds=120, boot_file="boot.ipxe",
                       root_path=f"iscsi:{plan.server4}::3260:1:{IQN}")   # root_path: only when wanted
    with NetLab(config) as lab:
        target = lab.root_target(IQN, disk)         # tgtd in the namespace, `disk` (a file) as LUN 1
        (lab.www / "boot.ipxe").write_text(...)     # iPXE's ROM fetches lab.url("boot.ipxe") (dnsmasq names it)
        spec = lab.attach(VmSpec(kernel=..., initrd=..., append=...))  # QEMU in the namespace on the taps
        console = harness.qemu.run(spec, bound)     # the serial console is read as for any other run
        lab.dhcp_acks()                             # what dnsmasq handed out (from its log)

More: `lab.server` (the address for targets and URLs: IPv4, or IPv6 in an IPv6-only lab), `lab.plan`,
`lab.url(name)`, `lab.http_requests`, `lab.dhcp_log()`, `lab.workdir` (scratch space removed with the lab),
`lab.name` (the namespace). `lab.tgtd()` gives the `tests.support.tgtd.Tgtd` itself (started on first use) for
more targets, CHAP, ACLs. A stock dracut boot (bench/stock.py) needs nothing else: a direct-kernel VmSpec with
`netroot=iscsi:{lab.server}::3260:1:IQN ip=dhcp`, through `lab.attach()`; the target's TargetAddress is then the
address the guest logged in to. dnsmasq sends option 17 only to a client that asks for it (dhclient does).

Everything is torn down on exit, failure or not: processes in the namespace killed, the namespace deleted.
Namespaces of ours whose creating process is gone (a crashed run) are removed when the next lab starts
(`remove_stale()`; `lab_namespaces()` lists ours). Needs root, iproute2, dnsmasq, tgt, /dev/net/tun;
`unavailable_reason()` says what is missing.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import ipaddress
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import HarnessError
from harness.http import StaticServer
from harness.paths import CACHE, REPO
from harness.private import process_alive
from harness.qemu import VmSpec
from initiator.deadline import Deadline

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from tests.boot.net import netns  # dnsmasq's base argv, shared with the bring-up tests

if TYPE_CHECKING:
    from tests.support.tgtd import Target, Tgtd

PREFIX = "pyinetlab-"
BRIDGE = "br0"
QEMU_USER_NET = ipaddress.IPv4Network("10.0.2.0/24")  # QEMU's NAT: a lab subnet must never overlap it
ULA = ipaddress.IPv6Network("fd00::/8")
SUBNET4 = ipaddress.IPv4Network("192.168.77.0/24")  # a namespace of its own: only the guests see it
SUBNET6 = ipaddress.IPv6Network("fd70:7969:7363:1::/64")  # ULA, global id from "pyisc" in ASCII
ISCSI_PORT = 3260
MIN_LEASE = 120  # dnsmasq refuses shorter leases
RA_INTERVAL = 10  # seconds between unsolicited router advertisements
ROUTER_LIFETIME = 1800  # the guest takes the lab as its default router (pyiscsi's SLAAC waits for one)
START_BOUND = 10.0  # seconds for dnsmasq to hold its sockets
CMD_BOUND = 10.0
MAX_TAPS = 8
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_SAFE_OPTION = re.compile(r"^[A-Za-z0-9.:_/=+@\[\]-]+$")  # no comma (dnsmasq's separator), no blank, no quote
_counter = itertools.count()


class Stack(enum.Enum):
    IPV4 = "ipv4"
    IPV6 = "ipv6"
    DUAL = "dual"

    @property
    def v4(self) -> bool:
        return self is not Stack.IPV6

    @property
    def v6(self) -> bool:
        return self is not Stack.IPV4


@dataclass(frozen=True)
class AddressPlan:
    """The lab's subnets and who gets which address in them: the servers .1 / ::1, guests from the pools."""

    subnet4: ipaddress.IPv4Network = SUBNET4
    subnet6: ipaddress.IPv6Network = SUBNET6

    def __post_init__(self) -> None:
        if self.subnet4.prefixlen != 24 or not self.subnet4.is_private:
            raise HarnessError(f"netlab subnet4: expected a private /24, got {self.subnet4}")
        if self.subnet4.overlaps(QEMU_USER_NET) or self.subnet4.overlaps(ipaddress.IPv4Network("127.0.0.0/8")):
            raise HarnessError(f"netlab subnet4: {self.subnet4} overlaps {QEMU_USER_NET} or the loopback range")
        if self.subnet6.prefixlen != 64 or not self.subnet6.subnet_of(ULA):
            raise HarnessError(f"netlab subnet6: expected a /64 inside {ULA} (a ULA), got {self.subnet6}")

    @property
    def server4(self) -> ipaddress.IPv4Address:
        return self.subnet4.network_address + 1

    @property
    def server6(self) -> ipaddress.IPv6Address:
        return self.subnet6.network_address + 1

    @property
    def pool4(self) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
        return self.subnet4.network_address + 100, self.subnet4.network_address + 199

    @property
    def pool6(self) -> tuple[ipaddress.IPv6Address, ipaddress.IPv6Address]:
        return self.subnet6.network_address + 0x100, self.subnet6.network_address + 0x1FF

    def bridge_addresses(self, stack: Stack) -> list[str]:
        out = [f"{self.server4}/{self.subnet4.prefixlen}"] if stack.v4 else []
        return out + ([f"{self.server6}/{self.subnet6.prefixlen}"] if stack.v6 else [])


@dataclass(frozen=True)
class LabConfig:
    """What the lab's network offers. IPv6: `ra` router advertisements (with the prefix autonomous when `slaac`),
    `dhcp6` stateful DHCPv6; `slaac` without `dhcp6` is dnsmasq's ra-only. `boot_file`: a name in `lab.www`
    (served over HTTP) or a URL, handed out as the DHCPv4 boot file (iPXE's ROM runs it)."""

    stack: Stack = Stack.DUAL
    lease_seconds: int = 3600
    ra: bool = True
    slaac: bool = True
    dhcp6: bool = False
    root_path: str | None = None  # DHCPv4 option 17, e.g. iscsi:192.168.77.1::3260:1:<iqn>
    boot_file: str | None = None
    taps: int = 1
    plan: AddressPlan = field(default_factory=AddressPlan)

    def __post_init__(self) -> None:
        if self.lease_seconds < MIN_LEASE:
            raise HarnessError(f"netlab lease_seconds: dnsmasq's minimum is {MIN_LEASE}, got {self.lease_seconds}")
        if not 1 <= self.taps <= MAX_TAPS:
            raise HarnessError(f"netlab taps: expected 1 to {MAX_TAPS}, got {self.taps}")
        if self.stack.v6:
            if self.slaac and not self.ra:
                raise HarnessError("netlab slaac: SLAAC needs router advertisements (ra=True)")
            if not (self.slaac or self.dhcp6):
                raise HarnessError("netlab: an IPv6 lab needs an address source (slaac=True or dhcp6=True)")
        for name in ("root_path", "boot_file"):
            value = getattr(self, name)
            if value is None:
                continue
            if not self.stack.v4:
                raise HarnessError(f"netlab {name}: a DHCPv4 option, but this lab has no IPv4")
            if not _SAFE_OPTION.match(value):
                raise HarnessError(f"netlab {name}: characters dnsmasq would split or mangle in {value!r}")


def dnsmasq_argv(config: LabConfig, workdir: Path, boot_url: str | None = None) -> list[str]:
    """dnsmasq for `config` on the lab's bridge only (no DNS: --port=0). Pure."""
    plan, lease = config.plan, config.lease_seconds
    extra = ["--no-ping"]  # dnsmasq would otherwise ping each new address for ~3 s before offering it
    if config.stack.v4:
        first, last = plan.pool4
        extra.append(f"--dhcp-range={first},{last},{plan.subnet4.netmask},{lease}")
        if config.root_path is not None:
            extra.append(f"--dhcp-option=option:root-path,{config.root_path}")
        if boot_url is not None:
            extra.append(f"--dhcp-boot={boot_url}")
    if config.stack.v6:
        if config.dhcp6:
            first6, last6 = plan.pool6
            mode = ",slaac" if config.slaac else ""
            extra.append(f"--dhcp-range={first6},{last6}{mode},{plan.subnet6.prefixlen},{lease}")
        else:
            extra.append(f"--dhcp-range={plan.subnet6.network_address},ra-only,{plan.subnet6.prefixlen}")
        if config.ra:
            extra += ["--enable-ra", f"--ra-param={BRIDGE},{RA_INTERVAL},{ROUTER_LIFETIME}"]
    return netns.dnsmasq_cmd(BRIDGE, *extra, workdir=str(workdir))


def dnsmasq_ports(config: LabConfig) -> list[tuple[str, int]]:
    """The (proc table, port) dnsmasq must hold before a client may ask: udp 67, udp6 547, raw6 ICMPv6 for RA."""
    wanted = [("udp", 67)] if config.stack.v4 else []
    if config.stack.v6 and config.dhcp6:
        wanted.append(("udp6", 547))
    if config.stack.v6 and config.ra:
        wanted.append(("raw6", 58))  # a raw socket's "port" column is its protocol
    return wanted


def bridge_commands(config: LabConfig) -> list[list[str]]:
    """`ip` argument lists (run with -n NS) that make the bridge, its addresses and the taps. Pure."""
    cmds = [["link", "add", "name", BRIDGE, "type", "bridge", "stp_state", "0", "forward_delay", "0",
             "mcast_snooping", "0"]]  # fmt: skip
    for address in config.plan.bridge_addresses(config.stack):
        cmds.append(["addr", "add", address, "dev", BRIDGE, *(["nodad"] if ":" in address else [])])
    for tap in tap_names(config):
        cmds.append(["tuntap", "add", "dev", tap, "mode", "tap"])
        cmds.append(["link", "set", tap, "master", BRIDGE, "up"])
    cmds.append(["link", "set", BRIDGE, "up"])
    return cmds


def tap_names(config: LabConfig) -> list[str]:
    return [f"tap{index}" for index in range(config.taps)]


def tap_netdevs(config: LabConfig) -> tuple[str, ...]:
    """QEMU -netdev values (harness.qemu adds the ids): one tap per NIC, no host scripts."""
    return tuple(f"tap,ifname={tap},script=no,downscript=no" for tap in tap_names(config))


def namespace_name(pid: int, serial: int) -> str:
    return f"{PREFIX}{pid}-{serial}"


def namespace_owner(name: str) -> int | None:
    """The pid that made namespace `name` (ours by its prefix), None when the name is not one of ours."""
    match = re.fullmatch(re.escape(PREFIX) + r"(\d+)-\d+", name)
    return int(match.group(1)) if match else None


def stale_namespaces(names: Iterable[str], alive: Callable[[int], bool]) -> list[str]:
    """Our namespaces whose maker is gone. Pure: `alive(pid)` is asked, nothing is touched."""
    out = []
    for name in names:
        if not name.startswith(PREFIX):
            continue
        owner = namespace_owner(name)
        if owner is None or not alive(owner):
            out.append(name)
    return out


def parse_netns_list(text: str) -> list[str]:
    """Names from `ip netns list` ("name" or "name (id: N)" per line)."""
    return [line.split()[0] for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class DhcpAck:
    """One address dnsmasq confirmed: DHCPACK (v4) or DHCPREPLY (v6) in its log."""

    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    client: str  # the MAC (v4) or the client's DUID (v6) as dnsmasq logs it
    iface: str


_ACK_RE = re.compile(r"\b(?:DHCPACK|DHCPREPLY)\((?P<iface>[^)]+)\) (?P<address>[0-9A-Fa-f.:]+)(?: (?P<client>\S+))?")


def dhcp_acks(log: str) -> list[DhcpAck]:
    """Every lease dnsmasq acknowledged, in the order of its log."""
    out = []
    for line in log.splitlines():
        found = _ACK_RE.search(line)
        if found is None:
            continue
        try:
            address = ipaddress.ip_address(found.group("address"))
        except ValueError:
            continue
        out.append(DhcpAck(address, found.group("client") or "", found.group("iface")))
    return out


# ---- I/O ------------------------------------------------------------------------------------------------------


def unavailable_reason() -> str | None:
    """Why a lab cannot be made here (for a pytest skip), or None."""
    if os.geteuid() != 0:
        return "netlab needs root (network namespaces, taps)"
    for tool in ("ip", "dnsmasq", "tgtd", "tgtadm"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun (taps)"
    return None


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CMD_BOUND, check=False)
    if check and done.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: {done.stderr.strip() or done.returncode}")
    return done


def remove_namespace(name: str) -> None:
    """Kill every process in namespace `name` (by pid), wait for them a moment, delete the namespace."""
    pids = [int(p) for p in _run("ip", "netns", "pids", name, check=False).stdout.split() if p.isdigit()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = Deadline("netlab teardown", 5.0)
    while any(process_alive(pid) for pid in pids) and not deadline.expired():
        time.sleep(0.05)
    _run("ip", "netns", "del", name, check=False)


def lab_namespaces() -> list[str]:
    """Every namespace that carries our prefix now, whoever made it."""
    names = parse_netns_list(_run("ip", "netns", "list", check=False).stdout)
    return [name for name in names if name.startswith(PREFIX)]


def remove_stale() -> list[str]:
    """Remove our namespaces left by runs that died; their names."""
    stale = stale_namespaces(lab_namespaces(), process_alive)
    for name in stale:
        remove_namespace(name)
    return stale


def call_in_netns(name: str, fn: Callable[[], object]) -> object:
    """Run `fn` in a short-lived thread that joined namespace `name` (setns moves only the calling thread);
    sockets it makes stay in that namespace, whichever thread uses them afterwards."""
    result: dict[str, object] = {}

    def body() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    errno = ctypes.get_errno()
                    raise OSError(errno, f"setns into {name}: {os.strerror(errno)}")
            finally:
                os.close(fd)
            result["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=body, name=f"netns-{name}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result.get("value")


def _die_with_parent() -> None:
    """In the child before exec: killed when the test process dies, however it dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(126)


def _holds(pid: int, table: str, port: int) -> bool:
    """Does process pid hold a socket in /proc/PID/net/<table> whose local port (raw: protocol) is `port`?"""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    try:
        lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) > 9 and int(fields[1].rsplit(":", 1)[1], 16) == port and fields[9] in inodes:
            return True
    return False


class NetLab:
    """One lab (see the module docstring). A context manager; `close()` is safe to call twice."""

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig()
        self.plan = self.config.plan
        self.name = namespace_name(os.getpid(), next(_counter))
        self.workdir: Path | None = None
        self._made = False
        self._http: StaticServer | None = None
        self._dnsmasq: subprocess.Popen[bytes] | None = None
        self._tgtd: Tgtd | None = None

    # -- life cycle -------------------------------------------------------------------------------------------
    def __enter__(self) -> NetLab:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise HarnessError(f"netlab: {reason}")
        remove_stale()
        (CACHE / "netlab").mkdir(parents=True, exist_ok=True)
        self.workdir = Path(tempfile.mkdtemp(dir=CACHE / "netlab", prefix=f"{self.name}-"))
        self.www.mkdir()
        self.www.chmod(0o755)
        _run("ip", "netns", "add", self.name)
        self._made = True
        _run("ip", "-n", self.name, "link", "set", "lo", "up")
        for args in bridge_commands(self.config):
            _run("ip", "-n", self.name, *args)
        if self.config.stack.v4:
            server = call_in_netns(self.name, lambda: StaticServer(self.www, host=str(self.plan.server4)))
            assert isinstance(server, StaticServer)
            self._http = server.__enter__()
        self._start_dnsmasq()

    def close(self) -> None:
        """Stop tgtd, dnsmasq and HTTP, kill whatever else runs in the namespace, delete it and the workdir."""
        tgt, self._tgtd = self._tgtd, None
        if tgt is not None:
            tgt.close()
        proc, self._dnsmasq = self._dnsmasq, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        http, self._http = self._http, None
        if http is not None:
            http.close()
        if self._made:
            self._made = False
            remove_namespace(self.name)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _start_dnsmasq(self) -> None:
        assert self.workdir is not None
        boot_url = None
        if self.config.boot_file is not None:
            boot_url = self.config.boot_file if "://" in self.config.boot_file else self.url(self.config.boot_file)
        argv = dnsmasq_argv(self.config, self.workdir, boot_url)
        with self.dnsmasq_log_path.open("ab") as log:
            self._dnsmasq = subprocess.Popen(
                ["ip", "netns", "exec", self.name, *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        deadline = Deadline("dnsmasq start", START_BOUND)
        for table, port in dnsmasq_ports(self.config):
            while not _holds(self._dnsmasq.pid, table, port):
                if self._dnsmasq.poll() is not None or deadline.expired():
                    raise HarnessError(f"dnsmasq did not open {table} {port}: {self.dhcp_log()[-2000:]!r}")
                time.sleep(0.05)

    # -- what the caller uses ---------------------------------------------------------------------------------
    @property
    def www(self) -> Path:
        """The directory the lab's HTTP server serves (iPXE scripts, kernels, initrds)."""
        if self.workdir is None:
            raise HarnessError("netlab: not started")
        return self.workdir / "www"

    @property
    def dnsmasq_log_path(self) -> Path:
        if self.workdir is None:
            raise HarnessError("netlab: not started")
        return self.workdir / "dnsmasq.log"

    @property
    def server(self) -> str:
        """The address targets and servers use: the IPv4 one, the IPv6 one in an IPv6-only lab."""
        return str(self.plan.server4 if self.config.stack.v4 else self.plan.server6)

    def url(self, name: str) -> str:
        """How the guest fetches `lab.www / name`."""
        if self._http is None:
            raise HarnessError("netlab url: the HTTP server runs only in labs with IPv4")
        return f"http://{self.plan.server4}:{self._http.port}/{name}"

    @property
    def http_requests(self) -> list[str]:
        return [] if self._http is None else self._http.requests

    def attach(self, spec: VmSpec) -> VmSpec:
        """`spec` with its NICs on the lab's taps and QEMU run inside the lab's namespace."""
        return replace(spec, netdevs=tap_netdevs(self.config), netns=self.name)

    def tgtd(self) -> Tgtd:
        """The lab's tgtd, started on first use: portal server4:3260 (and [server6]:3260), in the namespace."""
        if self._tgtd is None:
            from tests.support.tgtd import Tgtd

            tgt = Tgtd(host=self.server, netns=self.name)
            self._tgtd = tgt  # before start: close() must find it even if the start fails half-way
            tgt.start()
            if self.config.stack is Stack.DUAL:
                tgt.tgtadm("--mode", "portal", "--op", "new", "--param", f"portal=[{self.plan.server6}]:{tgt.port}")
        return self._tgtd

    def root_target(self, iqn: str, disk: Path, lun: int = 1) -> Target:
        """A target `iqn` on the lab's tgtd with the file `disk` as LUN `lun` (blank 8 MiB LUNs before it)."""
        from tests.support.tgtd import LunSpec

        tgt = self.tgtd()
        target = tgt.add_target(iqn, [])
        for blank in range(1, lun):
            tgt.add_lun(target, blank, LunSpec(8 << 20))
        tgt.tgtadm(
            "--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", str(lun),
            "--backing-store", str(disk),
        )  # fmt: skip
        return target

    def dhcp_log(self) -> str:
        try:
            return self.dnsmasq_log_path.read_text(errors="replace")
        except (OSError, HarnessError):
            return ""

    def dhcp_acks(self) -> list[DhcpAck]:
        return dhcp_acks(self.dhcp_log())
