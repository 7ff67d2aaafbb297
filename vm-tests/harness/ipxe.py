"""iPXE scripts: network settings, CHAP, initiator name, one `sanhook` per target, then kernel/initrd/boot.

A `SanPaths` is one drive with several URIs (`sanhook uri1 uri2`: iPXE's multipath SAN device, the paths of
one LUN); iPXE writes one iBFT target per path it logged in to.

`sanhook` logs in to the target and leaves an iBFT describing it (and the NIC and initiator) in low memory,
which is exactly what a firmware-booted machine hands Linux. Values go into the script verbatim, so they are
checked here: iPXE would split on whitespace and expand `${...}`.

Under UEFI (`efi=True`) iPXE's `sanhook` installs the iBFT as an ACPI table instead, and the kernel's EFI stub
loads the initrd itself, by the name on the kernel line (`initrd=<name>`) from iPXE's file system: the script
names the image (`initrd --name`) and puts that name on the kernel line.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import HarnessError
from initiator.secret import Secret

_SAFE = re.compile(r"^[A-Za-z0-9.:_/=,+@-]*$")


def _check(field_name: str, value: str, secret: bool = False) -> str:
    if not _SAFE.match(value):
        shown = "***" if secret else repr(value)
        raise HarnessError(f"ipxe {field_name}: characters iPXE would mangle in {shown}")
    return value


@dataclass(frozen=True)
class StaticNet:
    """`set net0/ip ...` instead of DHCP (QEMU user networking's own numbers by default)."""

    ip: str = "10.0.2.15"
    netmask: str = "255.255.255.0"
    gateway: str = "10.0.2.2"
    dns: str = "10.0.2.3"


@dataclass(frozen=True)
class SanTarget:
    """One `sanhook`: iscsi:<server>:<proto>:<port>:<lun>:<iqn> (proto empty = TCP, 6)."""

    server: str
    port: int
    lun: int
    iqn: str

    @classmethod
    def parse(cls, uri: str) -> SanTarget:
        """The inverse of `uri()`; only TCP (empty or "6" protocol) is meant here."""
        parts = uri.split(":", 5)
        if len(parts) != 6 or parts[0] != "iscsi" or parts[2] not in ("", "6"):
            raise HarnessError(f"sanhook uri: expected iscsi:<server>::<port>:<lun>:<iqn>, got {uri!r}")
        _, server, _, port, lun, iqn = parts
        try:
            return cls(server, int(port or 3260), int(lun or 0), iqn)
        except ValueError as exc:
            raise HarnessError(f"sanhook uri: port and lun must be numbers in {uri!r}") from exc

    def uri(self) -> str:
        return f"iscsi:{_check('server', self.server)}::{self.port}:{self.lun}:{_check('iqn', self.iqn)}"


@dataclass(frozen=True)
class SanPaths:
    """One `sanhook` with several URIs: the paths of one LUN (e.g. two portals of one target)."""

    paths: tuple[SanTarget, ...]

    def __post_init__(self) -> None:
        if not self.paths:
            raise HarnessError("sanhook paths: at least one URI")

    def uri(self) -> str:
        return " ".join(path.uri() for path in self.paths)


@dataclass(frozen=True)
class Chap:
    username: str
    password: Secret
    reverse_username: str | None = None
    reverse_password: Secret | None = None


@dataclass(frozen=True)
class IpxeScript:
    """What the script does, top to bottom."""

    targets: tuple[SanTarget | SanPaths, ...]  # one sanhook (one drive) each
    kernel_url: str
    initrd_url: str | None = None
    cmdline: str = ""
    initiator_iqn: str | None = None
    chap: Chap | None = None
    static: StaticNet | None = None
    keep_san: bool = True
    extra: tuple[str, ...] = field(default=())
    efi: bool = False  # UEFI iPXE: the initrd is named, and `initrd=<name>` goes on the kernel line
    initrd_name: str = "initrd.img"

    def kernel_args(self) -> str:
        """The kernel line's arguments: `cmdline`, plus `initrd=<initrd_name>` under EFI when it is not there yet."""
        if not (self.efi and self.initrd_url):
            return self.cmdline
        wanted = f"initrd={_check('initrd-name', self.initrd_name)}"
        given = [word for word in self.cmdline.split() if word.startswith("initrd=")]
        if given and given != [wanted]:
            raise HarnessError(f"ipxe cmdline: {' '.join(given)} does not name the initrd {self.initrd_name!r}")
        return self.cmdline if given else f"{self.cmdline} {wanted}".strip()

    def render(self) -> str:
        """The script text. It holds CHAP secrets: write it 0600 (see `write`)."""
        lines = ["#!ipxe", "echo pyiscsi-ipxe: start"]
        if self.static is None:
            lines.append("dhcp net0 || goto failed")
        else:
            s = self.static
            lines += ["ifclose net0 || echo", f"set net0/ip {_check('ip', s.ip)}", f"set net0/netmask {s.netmask}"]
            lines += [f"set net0/gateway {s.gateway}", f"set net0/dns {s.dns}", "ifopen net0 || goto failed"]
        if self.initiator_iqn:
            lines.append(f"set initiator-iqn {_check('initiator-iqn', self.initiator_iqn)}")
        if self.chap is not None:
            c = self.chap
            lines.append(f"set username {_check('username', c.username)}")
            lines.append(f"set password {_check('password', c.password.reveal(), secret=True)}")
            if c.reverse_username is not None and c.reverse_password is not None:
                lines.append(f"set reverse-username {_check('reverse-username', c.reverse_username)}")
                lines.append(
                    f"set reverse-password {_check('reverse-password', c.reverse_password.reveal(), secret=True)}"
                )
        if self.keep_san:
            lines.append("set keep-san 1")
        for index, target in enumerate(self.targets):
            drive = f"--drive 0x{0x80 + index:02x} " if index else ""
            lines.append(f"sanhook {drive}{target.uri()} || goto failed")
        lines.append("echo pyiscsi-ipxe: sanhooked")
        lines += list(self.extra)
        lines.append(f"kernel {self.kernel_url} {self.kernel_args()}".rstrip() + " || goto failed")
        if self.initrd_url:
            name = f"--name {self.initrd_name} " if self.efi else ""
            lines.append(f"initrd {name}{self.initrd_url} || goto failed")
        lines += ["boot || goto failed", ":failed", "echo pyiscsi-ipxe: failed", "poweroff"]
        return "\n".join(lines) + "\n"

    def write(self, path: Path) -> Path:
        """Write the script 0600 from the first byte: it may carry CHAP secrets."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)
            out.write(self.render())
        return path
