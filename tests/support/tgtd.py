"""A real iSCSI target for tests and benchmarks: one private `tgtd` (Debian's tgt) on 127.0.0.1 and a free port.

Each instance has its own management port (`tgtd -C N`, a unix socket /run/tgtd/socket.N), so several run at
once, and its own iSCSI portal bound to 127.0.0.1:PORT (and [::1]:PORT when asked), never 0.0.0.0. tgtd keeps
running when it cannot bind a portal, so start() checks that this very process listens on the port, and tries
another port otherwise. Every configuration command is remembered, so restart() brings the same targets,
LUNs, accounts and ACLs back on the same port (a target that went away and came back, for recovery tests).

tgt facts the callers should know:
- LUN 0 of every target is tgt's controller (peripheral type 0x0c) and cannot be removed; disks start at 1.
- A target answers no initiator until an ACL allows it: add_target() allows ALL unless told otherwise.
- Incoming CHAP (the initiator proves itself) is an account bound to the target; mutual CHAP adds an
  outgoing account (the target proves itself). tgt accounts are global to the daemon.
- Redirect: target parameters RedirectAddress/RedirectPort/RedirectReason (Temporary|Permanent); a login to
  that target is then answered with status 0x0101/0x0102 and TargetAddress.
- tgtd ignores SIGTERM while idle; stop() kills its process group, which is also what a crashed target is;
  pause()/resume() freeze and thaw it (a target that hangs with its connections open).
- tgt never redirects a login to the address the initiator itself has: redirect tests put the second tgtd on
  127.0.0.2 (`Tgtd(host="127.0.0.2")`), the rest of 127.0.0.0/8 works without setup.
- `add_portal()` makes tgtd listen on a second port of the same host: every target is then reachable at two
  portals (two paths to one LUN, for multipath tests); restart() brings it back on the same port.
- `Tgtd(host=ADDR, netns=NS)` runs tgtd inside network namespace NS (`ip netns exec`; harness.netlab makes one)
  with its portal on ADDR:3260 there, so it advertises the address the initiator really reaches; its control
  socket is a file under /run/tgtd, so tgtadm works from the host as usual.

Usage: `with Tgtd() as tgt: t = tgt.add_target("iqn...:disk", [LunSpec(64 << 20)]); tgt.portal ...`
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from initiator.deadline import Deadline

TGTD = "tgtd"
TGTADM = "tgtadm"
CONTROL_DIR = Path("/run/tgtd")
START_BOUND = 10.0  # seconds for tgtd to answer tgtadm and listen on its portal
TGTADM_BOUND = 10.0
BIND_FAILED = b"failed to create/bind to portal"  # tgtd's log line; it keeps running without that portal
ATTEMPTS = 5  # ports or control ports taken by someone else between our choice and tgtd's bind
ISCSI_PORT = 3260  # the portal port in a namespace of our own: nobody else can hold it there


class TgtdError(RuntimeError):
    """tgtd could not be started or refused a configuration command (a broken test setup, not a test result)."""


def unavailable_reason() -> str | None:
    """Why tgtd cannot run here (for a pytest skip), or None when it can."""
    for program in (TGTD, TGTADM):
        if shutil.which(program) is None:
            return f"{program} not installed (Debian package tgt)"
    if os.geteuid() != 0:
        return "tgtd needs root (its control socket lives in /run/tgtd)"
    return None


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class LunSpec:
    """What a LUN should look like: its size, block size, the bytes at its start, and INQUIRY strings."""

    size: int
    block0: bytes | None = None  # None: a text naming the target and LUN, so every LUN's block 0 differs
    block_size: int = 512
    vendor: str | None = None  # tgt's defaults: "IET", "VIRTUAL-DISK"
    product: str | None = None


@dataclass(frozen=True)
class LunFile:
    """A LUN tgtd serves, backed by a sparse file."""

    lun: int
    path: Path
    size: int
    block_size: int
    vendor: str
    product: str

    @property
    def blocks(self) -> int:
        return self.size // self.block_size

    def block0(self) -> bytes:
        with self.path.open("rb") as backing:
            return backing.read(self.block_size)

    def block0_sha256(self) -> str:
        """sha256 of the first logical block, read back from the backing file."""
        return hashlib.sha256(self.block0()).hexdigest()


@dataclass
class Target:
    tid: int
    name: str
    luns: dict[int, LunFile] = field(default_factory=dict)

    def disk_luns(self) -> list[LunFile]:
        return [self.luns[n] for n in sorted(self.luns)]


class Tgtd:
    """One private tgtd. Use as a context manager (or call close()): the process group and files always go."""

    def __init__(
        self,
        workdir: Path | str | None = None,
        *,
        ipv6: bool = False,
        host: str = "127.0.0.1",
        netns: str | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = Path(tempfile.mkdtemp(prefix="pyiscsi-tgtd-") if workdir is None else workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.ipv6 = ipv6
        self.netns = netns
        self.port = 0
        self.control_port = 0
        self.targets: dict[str, Target] = {}
        self.extra_ports: list[int] = []  # add_portal(): more portals on host, every target behind each
        self._journal: list[tuple[str, ...]] = []
        self._accounts: set[str] = set()
        self._process: subprocess.Popen[bytes] | None = None
        self._log = self.workdir / "tgtd.log"
        self._log_start = 0
        self._owns_control = False

    # -- addresses -----------------------------------------------------------------------------------------
    @property
    def portal(self) -> str:
        """`ADDR:PORT` of the main portal (as `pyiscsi discover` takes it; `[ADDR]:PORT` for an IPv6 host)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def portal6(self) -> str:
        if not self.ipv6:
            raise TgtdError("this tgtd was started without ipv6=True")
        return f"[::1]:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    # -- life cycle ----------------------------------------------------------------------------------------
    def __enter__(self) -> Tgtd:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> Tgtd:
        """Start on a fresh free port (or the current one, for restart) and wait until it serves."""
        if self.running:
            raise TgtdError("tgtd already running")
        keep_port = self.port != 0
        failures: list[str] = []
        for _ in range(ATTEMPTS):
            port = self.port if keep_port else _free_port(self.host, both_families=self.ipv6, netns=self.netns)
            control = _free_control_port()
            problem = self._spawn(port, control)
            if problem is None:
                self._replay()
                self._wait_extra_portals()
                return self
            failures.append(problem)
        raise TgtdError("tgtd did not start: " + "; ".join(failures))

    def stop(self) -> None:
        """Kill tgtd (its whole process group) and wait for it; the port is free afterwards. Config is kept."""
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=TGTADM_BOUND)
        if self._owns_control:  # never another instance's socket (a control port two of us picked at once)
            self._owns_control = False
            for leftover in (f"socket.{self.control_port}", f"socket.{self.control_port}.lock"):
                with contextlib.suppress(FileNotFoundError):
                    (CONTROL_DIR / leftover).unlink()

    def pause(self) -> None:
        """Freeze tgtd (SIGSTOP): connections stay open and nothing answers, a hung target for bounded-wait tests."""
        if not self.running or self.pid is None:
            raise TgtdError("pause: tgtd is not running")
        os.killpg(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Stop, then start again on the same portal port with the same targets, LUNs, accounts and ACLs."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def _spawn(self, port: int, control: int) -> str | None:
        """Start tgtd; None when it serves on port, else what went wrong (it is killed again then)."""
        portal = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"  # not self.portal: port
        self._log_start = self._log.stat().st_size if self._log.exists() else 0
        inside = ("ip", "netns", "exec", self.netns) if self.netns else ()
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [*inside, TGTD, "-f", "-C", str(control), "--iscsi", f"portal={portal}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() kills everything it forked
                preexec_fn=_die_with_parent,
            )
        self.port, self.control_port = port, control
        deadline = Deadline("tgtd start", START_BOUND)
        problem = self._wait_serving(deadline)
        if problem is None and self.ipv6 and ":" not in self.host:  # an IPv6 host has its portal already
            self._tgtadm_raw("--op", "new", "--mode", "portal", "--param", f"portal=[::1]:{port}")
            problem = self._wait_listening(deadline, port, socket.AF_INET6)
        if problem is not None:
            problem = f"{problem} (port {port}, control port {control}): {self.log_tail(5)!r}"
            self.stop()
        return problem

    def _wait_serving(self, deadline: Deadline) -> str | None:
        """Our tgtd holds its control socket (not a namesake's), answers tgtadm, and listens on its portal."""
        control = f"tgtd/socket.{self.control_port}"
        while not _process_holds_unix_socket(self.pid or 0, control):
            if not self.running:
                return "tgtd exited (control port taken?)"
            if deadline.expired():
                return f"tgtd did not open {control} within {deadline.bound:g}s"
            time.sleep(0.02)
        self._owns_control = True
        while True:
            answer = subprocess.run(
                [TGTADM, "-C", str(self.control_port), "--lld", "iscsi", "--mode", "target", "--op", "show"],
                capture_output=True,
                timeout=max(deadline.remaining(), 0.5),
                check=False,
            )
            if answer.returncode == 0:
                break
            if not self.running:
                return "tgtd exited"
            if deadline.expired():
                return f"tgtadm got no answer within {deadline.bound:g}s"
            time.sleep(0.02)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        return self._wait_listening(deadline, self.port, family)

    def _wait_listening(self, deadline: Deadline, port: int, family: socket.AddressFamily) -> str | None:
        while not _process_listens(self.pid or 0, port, family):
            if not self.running:
                return "tgtd exited"
            if BIND_FAILED in self._log.read_bytes()[self._log_start :]:
                return "tgtd could not bind its portal"  # it would carry on without it
            if deadline.expired():
                return f"tgtd did not listen on port {port} within {deadline.bound:g}s"
            time.sleep(0.02)
        return None

    def _replay(self) -> None:
        for command in self._journal:
            self._tgtadm_raw(*command)

    def _wait_extra_portals(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        deadline = Deadline("tgtd portal", START_BOUND)
        for port in self.extra_ports:
            problem = self._wait_listening(deadline, port, family)
            if problem is not None:
                raise TgtdError(f"extra portal {self.host}:{port}: {problem}")

    def add_portal(self, port: int | None = None) -> int:
        """Listen on one more port of host (a free one unless given); returns it. Every target is served there too."""
        if not self.running:
            raise TgtdError("add_portal: tgtd is not running")
        if port is None:  # in our own namespace nothing else listens: the ports after iSCSI's own
            port = ISCSI_PORT + 1 + len(self.extra_ports) if self.netns else _free_port(self.host, both_families=False)
        address = f"[{self.host}]:{port}" if ":" in self.host else f"{self.host}:{port}"
        self.tgtadm("--op", "new", "--mode", "portal", "--param", f"portal={address}")
        self.extra_ports.append(port)
        self._wait_extra_portals()
        return port

    # -- configuration -------------------------------------------------------------------------------------
    def tgtadm(self, *args: str) -> str:
        """Run one tgtadm command against this tgtd and remember it for restart(); returns its stdout."""
        output = self._tgtadm_raw(*args)
        self._journal.append(tuple(args))
        return output

    def _tgtadm_raw(self, *args: str) -> str:
        if not self.running:
            raise TgtdError(f"tgtadm {' '.join(args)}: tgtd is not running")
        command = [TGTADM, "-C", str(self.control_port), "--lld", "iscsi", *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=TGTADM_BOUND, check=False)
        if result.returncode != 0:
            raise TgtdError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}")
        return result.stdout

    def show(self) -> str:
        return self._tgtadm_raw("--mode", "target", "--op", "show")

    def add_target(self, name: str, luns: Sequence[LunSpec | int] = (), *, allow: Iterable[str] = ("ALL",)) -> Target:
        """A target with disks at LUN 1, 2, ... (an int is a size in bytes); `allow` lists initiator addresses."""
        tid = len(self.targets) + 1
        self.tgtadm("--mode", "target", "--op", "new", "--tid", str(tid), "--targetname", name)
        target = Target(tid, name)
        self.targets[name] = target
        for number, spec in enumerate(luns, start=1):
            self.add_lun(target, number, spec if isinstance(spec, LunSpec) else LunSpec(spec))
        for address in allow:
            self.allow(target, address)
        return target

    def add_lun(self, target: Target, lun: int, spec: LunSpec) -> LunFile:
        """Back LUN `lun` with a sparse file of spec.size bytes whose first bytes are spec.block0."""
        if lun < 1:
            raise TgtdError("LUN 0 is tgt's controller; disks start at LUN 1")
        if spec.size % spec.block_size:
            raise TgtdError(f"size {spec.size} is not a multiple of block size {spec.block_size}")
        block0 = spec.block0 if spec.block0 is not None else f"pyiscsi test {target.name} lun {lun}\n".encode()
        path = self.workdir / f"t{target.tid}-lun{lun}.img"
        with path.open("wb") as backing:
            backing.write(block0)
            backing.truncate(spec.size)  # sparse: gigabytes cost nothing
        args = ["--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", str(lun)]
        args += ["--backing-store", str(path)]
        if spec.block_size != 512:
            args += ["--blocksize", str(spec.block_size)]
        self.tgtadm(*args)
        params = [f"vendor_id={spec.vendor}"] if spec.vendor else []
        params += [f"product_id={spec.product}"] if spec.product else []
        if params:
            self.tgtadm(
                "--mode", "logicalunit", "--op", "update", "--tid", str(target.tid), "--lun", str(lun),
                "--params", ",".join(params),
            )  # fmt: skip
        made = LunFile(lun, path, spec.size, spec.block_size, spec.vendor or "IET", spec.product or "VIRTUAL-DISK")
        target.luns[lun] = made
        return made

    def allow(self, target: Target, address: str = "ALL") -> None:
        """Accept initiators from `address` (an IP, a subnet like 127.0.0.0/8, or ALL)."""
        self.tgtadm("--mode", "target", "--op", "bind", "--tid", str(target.tid), "--initiator-address", address)

    def disallow(self, target: Target, address: str = "ALL") -> None:
        self.tgtadm("--mode", "target", "--op", "unbind", "--tid", str(target.tid), "--initiator-address", address)

    def allow_initiator_name(self, target: Target, initiator: str) -> None:
        self.tgtadm("--mode", "target", "--op", "bind", "--tid", str(target.tid), "--initiator-name", initiator)

    def add_chap(self, target: Target, username: str, password: str) -> None:
        """Require CHAP from initiators: they must log in as username/password (tgt's IncomingUser)."""
        self._account(username, password)
        self.tgtadm("--mode", "account", "--op", "bind", "--tid", str(target.tid), "--user", username)

    def add_mutual_chap(self, target: Target, username: str, password: str) -> None:
        """The target proves itself as username/password when the initiator asks (tgt's OutgoingUser)."""
        self._account(username, password)
        self.tgtadm("--mode", "account", "--op", "bind", "--tid", str(target.tid), "--user", username, "--outgoing")

    def _account(self, username: str, password: str) -> None:
        if username in self._accounts:
            raise TgtdError(f"account {username!r} exists already (tgt accounts are global to the daemon)")
        self.tgtadm("--mode", "account", "--op", "new", "--user", username, "--password", password)
        self._accounts.add(username)

    def set_param(self, target: Target, name: str, value: str) -> None:
        """Set a target's iSCSI parameter (HeaderDigest, MaxRecvDataSegmentLength, RedirectAddress, ...)."""
        self.tgtadm("--mode", "target", "--op", "update", "--tid", str(target.tid), "--name", name, "--value", value)

    def set_digests(self, target: Target, header: str = "CRC32C", data: str = "CRC32C") -> None:
        """What the target accepts for HeaderDigest/DataDigest (e.g. "CRC32C", "None", "CRC32C,None")."""
        self.set_param(target, "HeaderDigest", header)
        self.set_param(target, "DataDigest", data)

    def redirect(self, target: Target, address: str, port: int, *, permanent: bool = False) -> None:
        """Answer logins to target with a redirect to address:port (login status 0x0101, or 0x0102)."""
        self.set_param(target, "RedirectAddress", address)
        self.set_param(target, "RedirectPort", str(port))
        self.set_param(target, "RedirectReason", "Permanent" if permanent else "Temporary")


PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL tgtd when the test process dies, even by SIGKILL (no orphaned targets).

    Linux ties this to the thread that started tgtd: start Tgtd from a thread that outlives it (the main one).
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        os._exit(126)


def _free_port(host: str, *, both_families: bool, netns: str | None = None) -> int:
    """A port free on host (and on ::1 as well when both_families), chosen by the kernel; in a namespace of our
    own, where nothing else listens, iSCSI's own port."""
    if netns is not None:
        return ISCSI_PORT
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(50):
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if not both_families:
            return port
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as other:
                other.bind(("::1", port))
        except OSError:
            continue
        return port
    raise TgtdError(f"no port free on both {host} and ::1")


def _free_control_port() -> int:
    """A tgtd management port whose socket nobody holds (tgtd itself exits if the lock is taken)."""
    for _ in range(100):
        candidate = random.randint(2000, 32767)  # tgtd takes a signed short
        if not (CONTROL_DIR / f"socket.{candidate}").exists():
            return candidate
    raise TgtdError(f"no free tgtd control port under {CONTROL_DIR}")


def _socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process pid holds open (from /proc/PID/fd)."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:
        return set()
    return inodes


def _process_listens(pid: int, port: int, family: socket.AddressFamily) -> bool:
    """Does process pid hold a TCP socket listening on port? (/proc/net/tcp* joined with /proc/PID/fd)."""
    inodes = _socket_inodes(pid)
    table = Path(f"/proc/{pid}/net/tcp6" if family == socket.AF_INET6 else f"/proc/{pid}/net/tcp")  # its netns
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:  # gone already
        return False
    for line in lines:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port and inode in inodes:
            return True
    return False


def _process_holds_unix_socket(pid: int, path_suffix: str) -> bool:
    """Does process pid hold the unix socket bound at a path ending in path_suffix? (/proc/net/unix)."""
    inodes = _socket_inodes(pid)
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]  # the list is per network namespace
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[7].endswith("/" + path_suffix) and fields[6] in inodes:
            return True
    return False
