"""Settings that stop the real root's network manager from tearing down the interface the root disk rides on.

Input is the `net --json` shape of each interface (name, mac, method, addresses, gateway, gateway6, dns), so this
module depends only on the contract, not on how the network was brought up. Output is a mapping of paths
(relative to the new root) to (text, mode); the caller writes them with `write_atomic`.

- systemd-networkd: a `.network` under /run/systemd/network that matches the interface and keeps what is
  configured (`KeepConfiguration=`): `static` for static addresses, `yes` for leases, so a restart of networkd
  does not drop the address while it renews the lease itself, as the same DHCP client (`ClientIdentifier=mac`).
- NetworkManager: a keyfile under /run/NetworkManager/system-connections (0600) describing the same settings, and
  the device's run state under /run/NetworkManager/devices/<ifindex> naming that profile (`connection-uuid=`),
  the hand-off NetworkManager's own initrd leaves: NM then takes the configured link over as that profile and
  renews its lease (with pyiscsi's client identifier, `dhcp-client-id=mac`) instead of calling it "connected
  (externally)" and running no DHCP client at all.
- Debian's initramfs-tools conventions: /run/net-<if>.conf and /run/initramfs/open-iscsi.interface, read by
  Debian's ifupdown and open-iscsi scripts to leave the interface alone at shutdown.
- ifupdown under systemd (Debian 12's default) reads neither: at shutdown `ifup@<if>.service` runs `ifdown` for
  an `allow-hotplug` interface and `networking.service` runs `ifdown -a`, pulling the root disk's network before
  the root is unmounted. Drop-ins under /run/systemd/system empty the first's ExecStop= and put the interfaces in
  the second's EXCLUDE_INTERFACES (which `ifdown -a --read-environment` honours).
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")

Files = dict[str, tuple[str, int]]


def _check_name(name: str) -> str:
    if not _IFNAME.match(name):
        raise ValueError(f"interface name: not a Linux interface name (got {name!r})")
    return name


def networkd_unit(iface: Mapping[str, Any]) -> str:
    name = _check_name(iface["name"])
    dynamic = iface["method"] in ("dhcp", "dhcp6", "auto6", "either6")
    lines = ["# Written by pyiscsi: the root disk rides on this interface.", "[Match]", f"Name={name}", "", "[Network]"]
    lines.append("KeepConfiguration=yes" if dynamic else "KeepConfiguration=static")
    if iface["method"] == "dhcp":
        lines.append("DHCP=ipv4")
    elif iface["method"] in ("dhcp6", "either6"):
        lines.append("DHCP=ipv6")
    if iface["method"] in ("auto6", "either6", "dhcp6"):
        lines.append("IPv6AcceptRA=yes")
    if not dynamic:
        lines += [f"Address={a}" for a in iface["addresses"]]
        lines += [f"Gateway={g}" for g in (iface.get("gateway"), iface.get("gateway6")) if g]
    lines += [f"DNS={d}" for d in iface.get("dns", [])]
    if iface["method"] == "dhcp":
        # the client identifier pyiscsi's DHCPv4 client sent (01 + MAC, boot.net.dhcp4), not networkd's default
        # DUID: to the server networkd is then the client that holds the root's lease, and renews that lease
        # instead of taking a second address while the first runs out (and is then refused, root disk and all)
        lines += ["", "[DHCPv4]", "ClientIdentifier=mac", "SendRelease=no"]
    return "\n".join(lines) + "\n"


# uuid5 names under this namespace: the same interface name gives the same profile UUID at every boot
NM_UUID_NAMESPACE = uuid.UUID("6a1f0b1e-5d2c-4f43-9a57-70797363736e")


def nm_uuid(name: str) -> str:
    return str(uuid.uuid5(NM_UUID_NAMESPACE, f"pyiscsi-{name}"))


def nm_device_state(name: str) -> str:
    """/run/NetworkManager/devices/<ifindex>: the link is managed and already runs the profile nm_keyfile names."""
    header = "# Written by pyiscsi: the root disk rides on this link.\n"
    return f"{header}[device]\nmanaged=true\nconnection-uuid={nm_uuid(name)}\n"


def nm_keyfile(iface: Mapping[str, Any]) -> str:
    name = _check_name(iface["name"])
    v4 = [a for a in iface["addresses"] if ipaddress.ip_interface(a).version == 4]
    v6 = [a for a in iface["addresses"] if ipaddress.ip_interface(a).version == 6]
    dns4 = [d for d in iface.get("dns", []) if ipaddress.ip_address(d).version == 4]
    dns6 = [d for d in iface.get("dns", []) if ipaddress.ip_address(d).version == 6]
    method = iface["method"]
    out = [
        "[connection]",
        f"id=pyiscsi-{name}",
        f"uuid={nm_uuid(name)}",
        "type=ethernet",
        f"interface-name={name}",
        "autoconnect=true",
        "autoconnect-priority=100",
        "",
        "[ethernet]",
    ]
    if iface.get("mac"):
        out.append(f"mac-address={iface['mac']}")
    out += ["", "[ipv4]"]
    if method == "dhcp":
        out += ["method=auto", "dhcp-client-id=mac", "dhcp-timeout=2147483647", "may-fail=false"]
    elif v4:
        out.append("method=manual")
        out += [f"address{i}={a}" for i, a in enumerate(v4, 1)]
        if iface.get("gateway"):
            out.append(f"gateway={iface['gateway']}")
    else:
        out.append("method=disabled")
    if dns4:
        out.append("dns=" + ";".join(dns4) + ";")
    out += ["", "[ipv6]"]
    if method in ("auto6", "either6"):
        out.append("method=auto")
    elif method == "dhcp6":
        out.append("method=dhcp")
    elif v6:
        out.append("method=manual")
        out += [f"address{i}={a}" for i, a in enumerate(v6, 1)]
        if iface.get("gateway6"):
            out.append(f"gateway={iface['gateway6']}")
    else:
        out.append("method=link-local" if method == "none" else "method=ignore")
    if dns6:
        out.append("dns=" + ";".join(dns6) + ";")
    return "\n".join(out) + "\n"


def debian_net_conf(iface: Mapping[str, Any]) -> str:
    """The shell-variable file Debian's initramfs-tools leaves in /run/net-<if>.conf."""
    name = _check_name(iface["name"])
    v4 = [ipaddress.ip_interface(a) for a in iface["addresses"] if ipaddress.ip_interface(a).version == 4]
    values = {"DEVICE": name, "PROTO": "dhcp" if iface["method"] == "dhcp" else "none"}
    if v4:
        values |= {"IPV4ADDR": str(v4[0].ip), "IPV4NETMASK": str(v4[0].netmask)}
    if iface.get("gateway"):
        values["IPV4GATEWAY"] = iface["gateway"]
    for i, d in enumerate(iface.get("dns", [])[:2]):
        values[f"IPV4DNS{i}"] = d
    return "".join(f"{k}='{v}'\n" for k, v in values.items())


def keep_network_files(interfaces: Sequence[Mapping[str, Any]], ifindexes: Mapping[str, int] | None = None) -> Files:
    """Every file the real root needs so no network manager takes the root disk's interface down. `ifindexes`
    (name -> the link's index, which switch_root keeps) adds NetworkManager's device state for each link in it."""
    files: Files = {}
    for iface in interfaces:
        name = _check_name(iface["name"])
        files[f"run/systemd/network/10-pyiscsi-{name}.network"] = (networkd_unit(iface), 0o644)
        files[f"run/NetworkManager/system-connections/pyiscsi-{name}.nmconnection"] = (nm_keyfile(iface), 0o600)
        index = (ifindexes or {}).get(name)
        if index is not None:
            files[f"run/NetworkManager/devices/{int(index)}"] = (nm_device_state(name), 0o644)
        files[f"run/net-{name}.conf"] = (debian_net_conf(iface), 0o644)
        files[f"run/systemd/system/ifup@{name}.service.d/50-pyiscsi.conf"] = (IFUP_KEEP, 0o644)
    if interfaces:
        names = " ".join(_check_name(i["name"]) for i in interfaces)
        files["run/initramfs/open-iscsi.interface"] = ("".join(f"{i['name']}\n" for i in interfaces), 0o644)
        files["run/systemd/system/networking.service.d/50-pyiscsi.conf"] = (networking_keep(names), 0o644)
    return files


IFUP_KEEP = (
    "# Written by pyiscsi: the root disk rides on this interface; no ifdown at shutdown.\n[Service]\nExecStop=\n"
)


def networking_keep(names: str) -> str:
    """networking.service's `ifdown -a --read-environment` at shutdown leaves these interfaces up."""
    return (
        "# Written by pyiscsi: the root disk rides on these interfaces.\n"
        f'[Service]\nEnvironment="EXCLUDE_INTERFACES={names}"\n'
    )
