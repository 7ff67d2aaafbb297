"""What each interface got: the `net --json` records, and the handover file the real root reads.

The handover file (`/run/pyiscsi/net.json` by default) says which interfaces carry the root disk and how they
were configured, so the real root's network manager keeps them and someone renews a DHCP lease in time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from boot.atomic import write_atomic
from initiator.errors import BadInputError
from initiator.printable import printable
from initiator.record import record

STATE_FILE = "/run/pyiscsi/net.json"
STATE_VERSION = 1


def shown_root_path(text: str | bytes) -> str:
    """A DHCP root path fit to print: it may carry CHAP credentials (`iscsi:user:secret@...`), so everything up to
    its last '@' is ***, and the rest is escaped (it came from the network)."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    at = text.rfind("@")
    return printable(text if at == -1 else "***" + text[at:])


@record
class LeaseInfo:
    """A DHCPv4 lease as the real root needs it to renew: who gave it, for how long, from when."""

    server: str
    lease_time: int | None  # seconds; None means infinite
    obtained_at: float  # wall-clock time (time.time()) of the ACK
    renewal_time: int | None = None  # T1
    rebinding_time: int | None = None  # T2

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "lease_time": self.lease_time,
            "obtained_at": self.obtained_at,
            "renewal_time": self.renewal_time,
            "rebinding_time": self.rebinding_time,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LeaseInfo:
        return cls(
            server=str(data["server"]),
            lease_time=_opt_int(data.get("lease_time")),
            obtained_at=float(data["obtained_at"]),
            renewal_time=_opt_int(data.get("renewal_time")),
            rebinding_time=_opt_int(data.get("rebinding_time")),
        )


@record
class InterfaceState:
    """One interface after bring-up. Addresses are 'address/prefix' strings in the order they were configured."""

    name: str
    mac: str
    method: str
    addresses: tuple[str, ...] = ()
    gateway: str | None = None
    gateway6: str | None = None
    dns: tuple[str, ...] = ()
    seconds: float = 0.0
    mtu: int | None = None
    vlan: int | None = None
    parent: str | None = None  # the link under a VLAN
    hostname: str | None = None
    domain: str | None = None
    lease: LeaseInfo | None = None
    warnings: tuple[str, ...] = ()  # what the bring-up dropped (a bad DHCP option...), each naming it; escaped
    root_path: str | None = None  # DHCPv4 option 17 of the lease (printable ASCII): netroot=dhcp's root; the JSON
    # (`net --json`, the state file) shows it without its credentials (shown_root_path)

    def to_json(self) -> dict[str, Any]:
        """The contract's `net --json` record, with extra keys after the contract's ones."""
        return {
            "name": self.name,
            "mac": self.mac,
            "method": self.method,
            "addresses": list(self.addresses),
            "gateway": self.gateway,
            "gateway6": self.gateway6,
            "dns": list(self.dns),
            "seconds": round(self.seconds, 3),
            "mtu": self.mtu,
            "vlan": self.vlan,
            "parent": self.parent,
            "hostname": self.hostname,
            "domain": self.domain,
            "lease": None if self.lease is None else self.lease.to_json(),
            "warnings": list(self.warnings),
            "root_path": None if self.root_path is None else shown_root_path(self.root_path),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InterfaceState:
        lease = data.get("lease")
        return cls(
            name=str(data["name"]),
            mac=str(data["mac"]),
            method=str(data["method"]),
            addresses=tuple(str(a) for a in data.get("addresses", [])),
            gateway=data.get("gateway"),
            gateway6=data.get("gateway6"),
            dns=tuple(str(d) for d in data.get("dns", [])),
            seconds=float(data.get("seconds", 0.0)),
            mtu=_opt_int(data.get("mtu")),
            vlan=_opt_int(data.get("vlan")),
            parent=data.get("parent"),
            hostname=data.get("hostname"),
            domain=data.get("domain"),
            lease=None if lease is None else LeaseInfo.from_json(lease),
            warnings=tuple(str(w) for w in data.get("warnings", [])),
            root_path=data.get("root_path"),
        )


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def net_json(states: tuple[InterfaceState, ...] | list[InterfaceState]) -> dict[str, Any]:
    """The whole `net --json` document."""
    return {"interfaces": [s.to_json() for s in states]}


def write_state_file(
    states: tuple[InterfaceState, ...] | list[InterfaceState], path: str | os.PathLike[str] = STATE_FILE
) -> Path:
    """The handover file, written atomically: the real root never reads half of it."""
    document = {"version": STATE_VERSION, **net_json(states)}
    return write_atomic(path, json.dumps(document, indent=2, sort_keys=False) + "\n", mode=0o644)


def read_state_file(path: str | os.PathLike[str] = STATE_FILE) -> tuple[InterfaceState, ...]:
    """Read the handover file back; a damaged file is bad input naming the file."""
    where = str(path)
    try:
        document = json.loads(Path(path).read_text())
        if document.get("version") != STATE_VERSION:
            raise BadInputError(where, document.get("version"), f"unknown state version (want {STATE_VERSION})")
        return tuple(InterfaceState.from_json(item) for item in document["interfaces"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInputError(where, None, f"not a pyiscsi network state file: {exc}") from exc
