"""`make demo`: a diskless VM boots through iPXE (sanhook, so an iBFT) and 95pyiscsi to its real root on iSCSI.

    python -m harness.demo [--flavour systemd|sh] [--uefi] [--no-recovery] [--timeout S]

Steps: the pinned kernel (cache/kernel), a real-root image (harness.rootimage: busybox + Debian's iscsid), the
initramfs (harness.initramfs, also left at build/initramfs-pyiscsi.img and build/vmlinuz), a private tgtd on
127.0.0.1 serving the root image, then QEMU: iPXE logs in with `sanhook`, leaves an iBFT and loads the kernel
and initramfs over HTTP; the kernel command line says only `rd.iscsi.firmware=1 root=UUID=...`. The real root
starts iscsid, which must adopt the session; then the host restarts tgtd and iscsid must recover it.
`--uefi` (`make demo UEFI=1`): the same through UEFI firmware (OVMF on q35), whose iPXE leaves the iBFT as an ACPI
table (/sys/firmware/acpi/tables/iBFT) instead of in low memory.

Prints a timeline in guest uptime and exits 0 only when the real root saw its session adopted.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import time

from harness import bootvm, initramfs, kernel, rootimage
from harness.errors import HarnessError
from harness.qemu import Firmware

STAMP = r"\[\s*(\d+\.\d+)\]"
ROWS = (
    # (label, marker name or None, log regex giving (uptime, detail) when no marker)
    ("kernel starts", None, STAMP + r" (Linux version \S+)"),
    ("pyiscsi boot starts", "start", None),
    ("iBFT read from", "firmware", None),
    ("link up, address", "address", None),
    ("iSCSI login + kernel handoff", "login", None),
    ("disk", "disk", None),
    ("root mounted", None, STAMP + r" EXT4-fs \((\w+)\): mounted"),
    ("handover (node records)", None, STAMP + r".*pyiscsi.*: (\d+ file\(s\) written for the real root)"),
    ("real root /sbin/init", "realroot", None),
    ("iscsid adopted the session", "adopted", None),
    ("connection broken by the host", "conn-lost", None),
    ("iscsid recovered it", "recovered", None),
)


def timeline(result: bootvm.BootResult) -> list[str]:
    console = result.console
    log = console.log()
    lines = []
    if "pyiscsi-ipxe: sanhooked" in log:
        uefi = result.boot.firmware == Firmware.UEFI
        label, where = ("firmware (OVMF, iPXE)", "ACPI table") if uefi else ("firmware (iPXE)", "low memory")
        lines.append(f"  {label:32} {'':>8}  DHCP, sanhook {result.boot.iqn}: iBFT written ({where})")
    for label, name, pattern in ROWS:
        when, detail = None, ""
        if name is not None:
            marker = console.marker(name)
            if marker is not None:
                when, detail = marker.uptime, marker.detail
                if name == "realroot":
                    detail = rootimage.readable_detail(detail)
        elif pattern is not None:
            found = re.search(pattern, log)
            if found:
                when, detail = float(found.group(1)), found.group(2)
        if when is not None:
            lines.append(f"  {label:32} {when:7.2f}s  {detail}")
    lines.append(f"  (guest uptimes; TCG. {console.wall_seconds:.0f}s wall for the whole boot; log {console.log_path})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--flavour", choices=sorted(initramfs.FLAVOURS), default=initramfs.DEFAULT_FLAVOUR)
    parser.add_argument("--uefi", action="store_true", help="boot through UEFI firmware (OVMF) instead of BIOS")
    parser.add_argument("--no-recovery", action="store_true", help="stop once iscsid adopted the session")
    parser.add_argument("--timeout", type=float, default=bootvm.BOUND, help="bound of the VM run, seconds")
    args = parser.parse_args(argv)
    firmware = Firmware.UEFI if args.uefi else Firmware.BIOS
    missing = bootvm.require_tools(firmware)
    if missing:
        print(f"demo: {missing} (run `make deps` as root)", file=sys.stderr)
        return 1
    started = time.monotonic()
    try:
        kern = kernel.require()
        print(f"demo: kernel {kern.release}")
        root = rootimage.build()
        print(f"demo: real-root image {root} (busybox, iscsid, iscsiadm)")
        image = initramfs.build(kern.release, kern.modules, args.flavour, log=lambda line: print(f"demo: {line}"))
        initramfs.OUT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image.path, initramfs.OUT)
        shutil.copyfile(kern.vmlinuz, initramfs.VMLINUZ)
        print(f"demo: initramfs {initramfs.OUT} ({image.flavour}, {initramfs.OUT.stat().st_size / 1e6:.1f} MB)")
        mode = " pyiscsi.test=adopt" if args.no_recovery else ""
        # loglevel=7: the kernel's banner and the root mount are info lines, the timeline reads their stamps
        spec = bootvm.Boot("demo", "rd.iscsi.firmware=1 root=UUID={uuid} loglevel=7" + mode, ipxe=True,
                           firmware=firmware)  # fmt: skip
        how = "UEFI (OVMF) and iPXE" if args.uefi else "iPXE"
        print(f"demo: booting QEMU through {how} sanhook (tgtd on 127.0.0.1; a few minutes under TCG) ...")
        result = bootvm.boot(spec, kern.vmlinuz, image.path, root, bound=args.timeout)
    except HarnessError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    print("demo: timeline")
    print("\n".join(timeline(result)))
    console = result.console
    failed = console.marker("realroot-fail") or console.marker("failed")
    if failed is not None or not console.has("adopted"):
        why = failed.detail if failed is not None else f"no adoption seen ({console.reason.value})"
        print(f"demo: FAILED: {why}", file=sys.stderr)
        print(console.summary(), file=sys.stderr)
        return 1
    print(f"demo: OK in {time.monotonic() - started:.0f}s: the real root's iscsid adopted the boot session")
    return 0


if __name__ == "__main__":
    sys.exit(main())
