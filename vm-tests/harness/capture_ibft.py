"""Boot through iPXE `sanhook` to our tgtd and read back the iBFT iPXE left: the raw table and the kernel's view.

The guest is the pinned kernel with a busybox initramfs fetched by iPXE over HTTP. It dumps the legacy-BIOS
search region 0x80000-0xFFFFF from /dev/mem (gzip + base64 between marker lines) and prints every file under
/sys/firmware/ibft after loading iscsi_ibft. The host finds the 16-byte-aligned "iBFT" signature, takes the
length field, checks the checksum and keeps the table.

    python -m harness.capture_ibft [--out tests/fixtures/ibft] [NAME ...]

writes NAME.bin plus NAME.json (what the script set, and what the guest kernel saw) for the scenarios below.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import images, kernel
from harness.console import ConsoleResult
from harness.errors import HarnessError
from harness.http import GUEST_HOST, StaticServer
from harness.ipxe import Chap, IpxeScript, SanPaths, SanTarget, StaticNet
from harness.paths import CACHE, REPO
from harness.qemu import VmSpec, run
from initiator.secret import Secret

BOOT_BOUND = 180.0
LOW_START, LOW_END = 0x80000, 0x100000
FIXTURES = REPO / "tests" / "fixtures" / "ibft"
GUEST_APPEND = "console=ttyS0 panic=-1 quiet loglevel=3"

IBFT_INIT = """\
modprobe iscsi_ibft || echo "modprobe iscsi_ibft failed"
mark modules
echo PYISCSI-BEGIN lowmem
dd if=/dev/mem bs=4096 skip=128 count=128 2>/dev/null | gzip -c | base64
echo PYISCSI-END lowmem
for f in $(find /sys/firmware/ibft -type f 2>/dev/null | sort); do
    printf 'PYISCSI-SYSFS %s=%s\\n' "${f#/sys/firmware/ibft/}" "$(tr '\\n' ' ' < $f 2>/dev/null | sed 's/ *$//')"
done
mark done
poweroff -f
sleep 5
"""


@dataclass(frozen=True)
class TargetSetup:
    iqn: str
    lun: int = 1  # tgt's LUN 0 is its controller; the first disk is LUN 1
    paths: int = 1  # >1: tgtd listens on that many ports and one `sanhook` names the LUN at each (multipath)


@dataclass(frozen=True)
class Scenario:
    """What iPXE is told; the sidecar JSON repeats it so a parser test can compare field by field."""

    name: str
    targets: tuple[TargetSetup, ...]
    initiator_iqn: str = "iqn.2026-11.org.pyiscsi:initiator"
    chap: Chap | None = None
    static: StaticNet | None = None
    description: str = ""


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "ipxe-mutual-chap",
            (TargetSetup("iqn.2026-11.org.pyiscsi:mutual"),),
            chap=Chap("pyiscsi-user", Secret("initiatorsecret1"), "pyiscsi-target", Secret("targetsecret22")),
            description="DHCP, one target, mutual CHAP (username/password and reverse-username/password)",
        ),
        Scenario(
            "ipxe-static",
            (TargetSetup("iqn.2026-11.org.pyiscsi:static"),),
            static=StaticNet(),
            description=(
                "static net0/ip, netmask, gateway, dns set in the script; no CHAP. iPXE's autoboot still ran DHCP"
                " to fetch the script over TFTP, so the NIC's DHCP-server field is 10.0.2.2 while origin is manual"
            ),
        ),
        Scenario(
            "ipxe-two-paths",
            (TargetSetup("iqn.2026-11.org.pyiscsi:paths", paths=2),),
            description="DHCP, one LUN at two portals (tgtd on two ports), one sanhook with both URIs, no CHAP",
        ),
        Scenario(
            "ipxe-two-targets",
            (TargetSetup("iqn.2026-11.org.pyiscsi:first"), TargetSetup("iqn.2026-11.org.pyiscsi:second")),
            description="DHCP, two sanhooks (the second with --drive 0x81), no CHAP",
        ),
    )
}


@dataclass(frozen=True)
class IbftCapture:
    """One sanhook boot: the table (None if not found), the guest kernel's sysfs view, the console."""

    table: bytes | None
    sysfs: dict[str, str]
    console: ConsoleResult
    portal_port: int
    http_requests: tuple[str, ...] = field(default=())
    portal_ports: tuple[int, ...] = field(default=())  # every port tgtd listened on, the main one first


def find_ibft(region: bytes, base: int = LOW_START) -> tuple[int, bytes] | None:
    """(physical address, table) of the first 16-byte-aligned iBFT with a sane length and a zero checksum."""
    for offset in range(0, len(region) - 48, 16):
        if region[offset : offset + 4] != b"iBFT":
            continue
        (length,) = struct.unpack_from("<I", region, offset + 4)
        if length < 48 or offset + length > len(region):
            continue
        table = region[offset : offset + length]
        if sum(table) & 0xFF == 0:
            return base + offset, table
    return None


def lowmem_from_log(log: str) -> bytes | None:
    """The gzip+base64 block between the PYISCSI-BEGIN/END lowmem lines, decoded (kernel lines skipped)."""
    inside, chunks = False, []
    for raw in log.splitlines():
        line = raw.strip().replace("\r", "")
        if line.endswith("PYISCSI-BEGIN lowmem"):
            inside, chunks = True, []
        elif line.endswith("PYISCSI-END lowmem"):
            if not inside:
                return None
            try:
                return gzip.decompress(base64.b64decode("".join(chunks)))
            except (ValueError, OSError) as exc:
                raise HarnessError(f"lowmem dump: undecodable ({exc})") from exc
        elif inside and line and not line.startswith("["):
            chunks.append(line)
    return None


def sysfs_from_log(log: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for raw in log.splitlines():
        _, sep, rest = raw.replace("\r", "").partition("PYISCSI-SYSFS ")
        if sep:
            key, _, value = rest.partition("=")
            found[key] = value
    return found


def ibft_initramfs(kern: kernel.Kernel) -> Path:
    return images.build_initramfs(kern, IBFT_INIT)


def boot_scenario(scenario: Scenario, bound: float = BOOT_BOUND) -> IbftCapture:
    """Start tgtd with the scenario's targets and accounts, serve kernel+initrd, iPXE-boot, collect the iBFT."""
    if str(REPO) not in sys.path:  # tests.support lives at the repo root
        sys.path.insert(0, str(REPO))
    from tests.support.tgtd import LunSpec, Tgtd

    kern = kernel.require()
    initrd = ibft_initramfs(kern)
    (CACHE / "ipxe").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE / "ipxe", prefix=f"{scenario.name}-") as tmp, Tgtd() as tgt:
        serve = Path(tmp)
        serve.chmod(0o755)
        shutil.copy(kern.vmlinuz, serve / "vmlinuz")
        shutil.copy(initrd, serve / "initrd.img")
        ports = [tgt.port]
        while len(ports) < max(t.paths for t in scenario.targets):
            ports.append(tgt.add_portal())
        for setup in scenario.targets:
            target = tgt.add_target(setup.iqn, [LunSpec(16 << 20)])
            if scenario.chap is not None:
                tgt.add_chap(target, scenario.chap.username, scenario.chap.password.reveal())
                if scenario.chap.reverse_username and scenario.chap.reverse_password:
                    tgt.add_mutual_chap(target, scenario.chap.reverse_username, scenario.chap.reverse_password.reveal())
        with StaticServer(serve) as http:
            script = IpxeScript(
                targets=tuple(_hook(t, ports) for t in scenario.targets),
                kernel_url=http.guest_url("vmlinuz"),
                initrd_url=http.guest_url("initrd.img"),
                cmdline=GUEST_APPEND,
                initiator_iqn=scenario.initiator_iqn,
                chap=scenario.chap,
                static=scenario.static,
            )
            script.write(serve / "boot.ipxe")
            spec = VmSpec(tftp_dir=serve, bootfile="boot.ipxe", memory_mb=512)
            log_path = CACHE / "ipxe" / f"{serve.name}.log"
            console = run(spec, bound, name=f"ipxe {scenario.name}", log_path=log_path, probe_kernel=kern.vmlinuz)
            requests = tuple(http.requests)
    log = console.log()
    region = lowmem_from_log(log)
    found = find_ibft(region) if region else None
    table = found[1] if found else None
    return IbftCapture(table, sysfs_from_log(log), console, tgt.port, requests, tuple(ports))


def _hook(setup: TargetSetup, ports: list[int]) -> SanTarget | SanPaths:
    if setup.paths == 1:
        return SanTarget(GUEST_HOST, ports[0], setup.lun, setup.iqn)
    return SanPaths(tuple(SanTarget(GUEST_HOST, port, setup.lun, setup.iqn) for port in ports[: setup.paths]))


def sidecar(scenario: Scenario, capture: IbftCapture) -> dict:
    """What was set (secrets included: they are test values the parser must decode) and what Linux saw."""
    chap = scenario.chap
    net = (
        {"origin": "static", **vars(scenario.static)}
        if scenario.static
        else {"origin": "dhcp", "ip": "10.0.2.15", "netmask": "255.255.255.0", "gateway": "10.0.2.2", "dns": "10.0.2.3"}
    )
    return {
        "description": scenario.description,
        "made_by": "vm-tests/harness/capture_ibft.py",
        "firmware": _versions(),
        "initiator": {"name": scenario.initiator_iqn},
        "nic": net,
        "targets": [
            {
                "name": t.iqn,
                "ip": GUEST_HOST,
                "port": port,
                "lun": t.lun,
                "chap_name": chap.username if chap else None,
                "chap_secret": chap.password.reveal() if chap else None,
                "reverse_chap_name": chap.reverse_username if chap else None,
                "reverse_chap_secret": chap.reverse_password.reveal() if chap and chap.reverse_password else None,
            }
            for t in scenario.targets
            for port in capture.portal_ports[: t.paths]
        ],
        "table_length": len(capture.table) if capture.table else None,
        "linux_sysfs": capture.sysfs,
    }


def _versions() -> dict[str, str]:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}=${Version}\\n", "ipxe-qemu", "qemu-system-x86"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.capture_ibft", description="Capture iBFT fixtures from iPXE.")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--timeout", type=float, default=BOOT_BOUND)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - SCENARIOS.keys())
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {sorted(SCENARIOS)}")
    failed = 0
    for name in args.names or list(SCENARIOS):
        scenario = SCENARIOS[name]
        capture = boot_scenario(scenario, args.timeout)
        if capture.table is None:
            print(f"{name}: no iBFT found; {capture.console.summary()}", file=sys.stderr)
            failed += 1
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"{name}.bin").write_bytes(capture.table)
        (args.out / f"{name}.json").write_text(json.dumps(sidecar(scenario, capture), indent=2) + "\n")
        print(f"{name}: {len(capture.table)} bytes, {capture.console.wall_seconds:.0f}s -> {args.out}/{name}.bin")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
