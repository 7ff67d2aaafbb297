"""Network namespaces, veth pairs, dnsmasq and radvd for the bring-up tests; everything made here is removed.

Names carry the test process's pid and a counter, so parallel runs and other helpers' namespaces never collide.
Servers run inside a namespace made here and listen only on its interfaces. Every subprocess wait is bounded.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
_VENV_PYTHON = REPO / ".venv" / "bin" / "python"  # the running venv first (.venv-distro: Debian's pyroute2)
PYTHON = sys.executable if sys.prefix != sys.base_prefix or not _VENV_PYTHON.exists() else str(_VENV_PYTHON)
RUNNER = str(Path(__file__).with_name("ns_runner.py"))
CMD_TIMEOUT = 10.0
_counter = itertools.count()


def sh(*cmd: str, timeout: float = CMD_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 100000}x{next(_counter)}"


def can_make_namespaces() -> str | None:
    """None if this machine can run the tests, else the reason it cannot."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2's ip"
    name = unique("pyiprobe")
    try:
        sh("ip", "netns", "add", name)
    except (subprocess.SubprocessError, OSError) as exc:
        return f"cannot make a network namespace: {getattr(exc, 'stderr', '') or exc}"
    sh("ip", "netns", "del", name, check=False)
    return None


def vlan_unsupported() -> str | None:
    """None if the kernel can make 802.1Q VLAN links, else why not (some CI and container kernels lack 8021q)."""
    with namespace("pyivlan") as ns:
        sh("ip", "-n", ns.name, "link", "add", "name", "p0", "type", "veth", "peer", "name", "p1")
        made = sh(
            "ip", "-n", ns.name, "link", "add", "link", "p0", "name", "p0.2", "type", "vlan", "id", "2", check=False
        )
        if made.returncode:
            return f"this kernel cannot make VLAN links (8021q): {made.stderr.strip()}"
    return None


@dataclass
class Namespace:
    name: str

    def run(self, *cmd: str, timeout: float = CMD_TIMEOUT, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.name, *cmd, timeout=timeout, check=check)

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "-n", self.name, *args, check=check)

    def ip_json(self, *args: str) -> list[dict]:
        return json.loads(sh("ip", "-j", "-n", self.name, *args).stdout or "[]")

    def mac(self, ifname: str) -> str:
        return self.ip_json("link", "show", "dev", ifname)[0]["address"]

    def ping(self, address: str) -> bool:
        """One echo answered within 2s (busybox's ping: Debian's iputils-ping is not a dependency)."""
        return self.run("busybox", "ping", "-c1", "-W2", address, check=False).returncode == 0

    def sysctl(self, key: str, value: str) -> None:
        self.run("sysctl", "-q", "-w", f"{key}={value}")


@contextlib.contextmanager
def namespace(prefix: str = "pyi") -> Iterator[Namespace]:
    """A fresh namespace with lo up; on exit every process left in it is killed and the namespace deleted."""
    ns = Namespace(unique(prefix))
    sh("ip", "netns", "add", ns.name)
    try:
        ns.ip("link", "set", "lo", "up")
        yield ns
    finally:
        pids = sh("ip", "netns", "pids", ns.name, check=False).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        sh("ip", "netns", "del", ns.name, check=False)


def veth(a: Namespace, a_name: str, b: Namespace, b_name: str, *, up_b: bool = True) -> None:
    """A veth pair made directly in the two namespaces (never in the host's); `b`'s end up unless told not."""
    sh("ip", "-n", a.name, "link", "add", "name", a_name, "type", "veth", "peer", "name", b_name, "netns", b.name)
    if up_b:
        b.ip("link", "set", b_name, "up")


@contextlib.contextmanager
def server_process(ns: Namespace, cmd: Sequence[str], ready: float = 0.3) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` in `ns` in the foreground, check it did not die at once, and kill it on exit."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(["ip", "netns", "exec", ns.name, *cmd], stdout=log, stderr=subprocess.STDOUT)
        try:
            time.sleep(ready)
            if proc.poll() is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
                raise RuntimeError(f"{cmd[0]} exited at once ({proc.returncode}): {output}")
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def dnsmasq_cmd(iface: str, *extra: str, workdir: str) -> list[str]:
    """dnsmasq as a DHCP/RA server on `iface` only: no DNS service, no config files, leases in `workdir`."""
    return [
        "dnsmasq",
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--port=0",
        "--bind-interfaces",
        f"--interface={iface}",
        "--except-interface=lo",
        "--user=root",
        "--dhcp-authoritative",
        f"--dhcp-leasefile={workdir}/{iface}.leases",
        f"--pid-file={workdir}/{iface}.pid",
        "--log-facility=-",
        "--log-dhcp",
        *extra,
    ]


def radvd_config(iface: str, prefix: str) -> str:
    return (
        f"interface {iface} {{\n"
        "  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n  AdvDefaultLifetime 1800;\n"
        f"  prefix {prefix} {{ AdvOnLink on; AdvAutonomous on; }};\n"
        "};\n"
    )


def radvd_cmd(config: str, workdir: str) -> list[str]:
    return ["radvd", "--nodaemon", "-C", config, "-p", f"{workdir}/radvd.pid", "-m", "stderr", "-u", "root"]


@dataclass(frozen=True)
class RunResult:
    status: int
    document: dict
    stderr: str


def run_bring_up(ns: Namespace, spec: dict, timeout: float = 60.0) -> RunResult:
    """Run `boot.net.bringup.bring_up` inside `ns` (see ns_runner.py for `spec`), bounded by `timeout`."""
    proc = ns.run(PYTHON, RUNNER, json.dumps(spec), timeout=timeout, check=False)
    try:
        document = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except ValueError:
        document = {"unparsed": proc.stdout}
    return RunResult(proc.returncode, document, proc.stderr)


def pyiscsi_net(ns: Namespace, cmdline: str, *extra: str, timeout: float = 60.0) -> tuple[int, dict, str]:
    """`pyiscsi net --json` inside `ns` (no iBFT), bounded by `timeout`: status, its document, stderr."""
    argv = [PYTHON, "-m", "boot", "net", "--ibft", "none", "--json", "--cmdline", cmdline, *extra]
    proc = ns.run(*argv, timeout=timeout, check=False)
    return proc.returncode, json.loads(proc.stdout or "{}"), proc.stderr
