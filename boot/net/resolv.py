"""/etc/resolv.conf for the initramfs, written whole or not at all (temp file + rename)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from boot.atomic import write_atomic
from boot.net.names import checked_name, name_problem
from initiator.errors import BadInputError
from initiator.printable import printable

RESOLV_CONF = "/etc/resolv.conf"
MAX_NAMESERVERS = 3  # glibc's MAXNS: further lines are ignored by the resolver


def render(nameservers: Iterable[str], search: Iterable[str] = ()) -> str:
    """resolv.conf text: deduplicated name servers in order (at most 3), then one `search` line."""
    servers: list[str] = []
    for server in nameservers:
        text = str(ipaddress.ip_address(server))
        if text not in servers:
            servers.append(text)
    domains: list[str] = []
    for domain in search:
        problem = name_problem(domain)
        if problem:  # the DHCP clients drop such names where they parse them: this is the last line of defence
            raise BadInputError("dns search domain", printable(domain), f"not a domain name: {problem}")
        if checked_name(domain) not in domains:
            domains.append(checked_name(domain))
    lines = ["# Written by pyiscsi from the boot network's settings."]
    lines += [f"nameserver {s}" for s in servers[:MAX_NAMESERVERS]]
    if domains:
        lines.append("search " + " ".join(domains))
    return "\n".join(lines) + "\n"


def write_resolv_conf(
    nameservers: Iterable[str], search: Iterable[str] = (), path: str | os.PathLike[str] = RESOLV_CONF
) -> Path:
    """Replace `path` atomically; a symlink at `path` (systemd-resolved's stub) is replaced, not followed."""
    return write_atomic(path, render(nameservers, search), mode=0o644)
