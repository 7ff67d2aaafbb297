"""dracut's kernel command line, for everything the iSCSI root path touches: text in, a frozen `Cmdline` out.

Grammar (dracut.cmdline(7); `[...]` optional, `{a|b}` a choice; IPv6 addresses always in brackets):

    ip={dhcp|on|any|dhcp6|auto6|either6|link6|single-dhcp|ibft|none|off}
    ip=<interface>:{dhcp|on|any|dhcp6|auto6|either6|link6|ibft|none|off}[:[<mtu>][:<macaddr>]]
    ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<client_hostname>:<interface>:{none|off|dhcp|on|any|
       dhcp6|auto6|either6|link6|ibft}[:[<mtu>][:<macaddr>]]
    ip=<client-IP>:[<peer>]:<gateway-IP>:<netmask>:<client_hostname>:<interface>:<method>[:[<dns1>][:<dns2>]]
        <netmask> is a dotted mask or a prefix length; <macaddr> is aa:bb:cc:dd:ee:ff (its colons are
        recognised as the last six fields) or aa-bb-cc-dd-ee-ff; ip= may repeat (then each names an interface)
    ifname=<interface>:<MAC>                  vlan=<vlanname>:<phydevice>   (vlan0005, vlan5, eth0.0005, eth0.5)
    bond[=<bondname>[:<slaves>[:<options>[:<mtu>]]]]  (defaults bond0, eth0,eth1, mode=balance-rr; slaves and
        options comma-separated, several arp_ip_target addresses separated by ';')
    bridge[=<bridgename>:<ethnames>]  (default br0:eth0; ports comma-separated)   team=...  (refused)
    nameserver=<IP> (repeats)   bootdev=<interface>   BOOTIF=<MAC>   rd.neednet[=0|1]
    rd.net.timeout.{iflink,ifup,route,ipv6dad,ipv6auto,carrier,dhcp}=<seconds>   rd.timeout=<s>   rd.retry=<s>
    root=<device>   root=iscsi:...   netroot=iscsi:...  (repeats; bare `netroot=iscsi` means: from firmware)
    root=dhcp   netroot=dhcp   (the root path from DHCPv4 option 17)   root=dhcp6   netroot=dhcp6 (refused)
        iscsi:[<user>:<pass>[:<ruser>:<rpass>]@][<server>]:[<proto>]:[<port>][:[<iface>]:[<netdev>]]:[<lun>]:<target>
        The field count decides the form (as dracut's parse_iscsi_root): a target name starting iqn./eui./naa.
        is cut off at its last ":iqn." first; an empty target name means SendTargets discovery.
    rd.iscsi.initiator=   rd.iscsi.target.{name,ip,port,group}=   rd.iscsi.{username,password}=
    rd.iscsi.in.{username,password}=   rd.iscsi.firmware[=0|1]   rd.iscsi.ibft[=0|1]   rd.iscsi.mp[=0|1]
    rd.iscsi.waitnet=0|1   rd.iscsi.testroute=0|1   rd.iscsi.param=<key>=<value> (repeats)
    rd.iscsi.transport=tcp   rd.iscsi.login_retry_max=<n>
        (the old names iscsi_initiator=, iscsi_target_name=, ..., iscsi_firmware are accepted too)
    rd.pyiscsi.timeout=<s> (the whole boot)   rd.pyiscsi.timeout.<wait>=<s> (every wait of `explain`)
    rd.pyiscsi.loglevel=<level>

Words are split as the kernel's own parser does: on whitespace outside double quotes; a quote opening a word or
a value is dropped with its partner at the word's end (`"ip=a b"` and `ip="a b"` both give `a b`). For a key
given once, the last occurrence wins, as dracut's getarg. Every error quotes the whole word.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Callable

from boot.net.bond import check_options
from initiator.errors import CmdlineError
from initiator.record import record, replace
from initiator.secret import Secret

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_SECONDS = 7 * 86400.0
# patterns for re.fullmatch, which compiles one on its first use (and caches it): a boot that names no MAC,
# interface or host compiles none of them
MAC_PATTERN = r"[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}"
HEX_PAIR_PATTERN = r"[0-9a-fA-F]{2}"
IFNAME_PATTERN = r"[A-Za-z0-9_.@-]{1,15}"
HOSTNAME_PATTERN = r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?"
TARGET_PREFIXES = ("iqn.", "eui.", "naa.")
LOG_LEVELS = ("debug", "info", "warning", "error")


class IpMethod(enum.StrEnum):
    """ip= autoconf keywords after folding dracut's synonyms (on/any -> dhcp, off -> none)."""

    DHCP = "dhcp"
    SINGLE_DHCP = "single-dhcp"
    DHCP6 = "dhcp6"
    AUTO6 = "auto6"
    EITHER6 = "either6"
    LINK6 = "link6"
    IBFT = "ibft"
    NONE = "none"


METHOD_WORDS: dict[str, IpMethod] = {
    "dhcp": IpMethod.DHCP,
    "on": IpMethod.DHCP,
    "any": IpMethod.DHCP,
    "single-dhcp": IpMethod.SINGLE_DHCP,
    "dhcp6": IpMethod.DHCP6,
    "auto6": IpMethod.AUTO6,
    "either6": IpMethod.EITHER6,
    "link6": IpMethod.LINK6,
    "ibft": IpMethod.IBFT,
    "none": IpMethod.NONE,
    "off": IpMethod.NONE,
}


@record
class IpConfig:
    """One ip= option."""

    token: str
    method: IpMethod
    interface: str | None = None
    address: IPInterface | None = None
    peer: str | None = None
    gateway: IPAddress | None = None
    hostname: str | None = None
    mtu: int | None = None
    mac: str | None = None
    dns: tuple[IPAddress, ...] = ()


@record
class Vlan:
    name: str
    parent: str
    vid: int


@record
class Bond:
    """One bond= option: dracut's defaults filled in; `options` as given (checked by boot.net.bond)."""

    token: str
    name: str = "bond0"
    slaves: tuple[str, ...] = ("eth0", "eth1")
    options: tuple[tuple[str, str], ...] = (("mode", "balance-rr"),)
    mtu: int | None = None


@record
class Bridge:
    """One bridge= option (dracut's default: br0 over eth0)."""

    token: str
    name: str = "br0"
    ports: tuple[str, ...] = ("eth0",)


@record
class IscsiRoot:
    """One root=iscsi:/netroot=iscsi: spec. `target` None means SendTargets discovery at `server`."""

    server: str
    target: str | None
    port: int = 3260
    lun: int = 0
    iface_name: str | None = None
    netdev: str | None = None
    username: str | None = None
    password: Secret | None = None
    in_username: str | None = None
    in_password: Secret | None = None


@record
class Cmdline:
    """Everything read from one command line; the planner merges it with the iBFT."""

    ips: tuple[IpConfig, ...] = ()
    ifnames: tuple[tuple[str, str], ...] = ()  # (name, mac)
    vlans: tuple[Vlan, ...] = ()
    bonds: tuple[Bond, ...] = ()
    bridges: tuple[Bridge, ...] = ()
    nameservers: tuple[IPAddress, ...] = ()
    bootdev: str | None = None
    bootif: str | None = None  # BOOTIF= MAC, normalised
    neednet: bool = False
    net_timeouts: tuple[tuple[str, float], ...] = ()  # rd.net.timeout.<name>
    rd_timeout: float | None = None
    rd_retry: float | None = None
    root: str | None = None
    netroots: tuple[IscsiRoot, ...] = ()
    netroot_firmware: bool = False  # bare netroot=iscsi
    other_netroots: tuple[str, ...] = ()  # netroot=nfs:..., ...: not ours
    dhcp_root: str | None = None  # root=dhcp / netroot=dhcp (or dhcp6): the root path comes from the lease
    initiator: str | None = None
    target_name: str | None = None
    target_ip: str | None = None
    target_port: int | None = None
    target_group: int | None = None
    username: str | None = None
    password: Secret | None = None
    in_username: str | None = None
    in_password: Secret | None = None
    firmware: bool | None = None  # None: not given (the planner may still use a present iBFT); False: refused
    ibft: bool = False
    multipath: bool = False
    dm_multipath: bool = True  # rd.multipath=0: dracut's multipath module stays off
    waitnet: bool = True
    testroute: bool = True
    params: tuple[tuple[str, str | Secret], ...] = ()  # a password's value is a Secret
    transport: str = "tcp"
    login_retry_max: int | None = None
    pyiscsi_timeouts: tuple[tuple[str, float], ...] = ()  # rd.pyiscsi.timeout[.<name>]; "total" for the bare one
    log_level: str = "info"
    agent: bool = True  # rd.pyiscsi.agent: `pyiscsi boot` starts the recovery agent (boot.commands.agent)


# ---- words ----------------------------------------------------------------------------------------------------


KERNEL_SPACE = frozenset(" \t\n\v\f\r")  # the kernel's isspace() on ASCII; other bytes are word characters


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; double quotes group (and are kept here: `split_word` strips them)."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in KERNEL_SPACE:
            i += 1
        if i >= n:
            break
        start = i
        in_quote = False
        while i < n and (in_quote or text[i] not in KERNEL_SPACE):
            if text[i] == '"':
                in_quote = not in_quote
            i += 1
        words.append(text[start:i])
    return words


def split_word(word: str) -> tuple[str, str | None]:
    """(key, value) as the kernel's next_arg leaves them: the opening quote of the word or of the value goes,
    and so does a quote ending the word."""
    quoted = word.startswith('"')
    if quoted:
        word = word[1:]
    if "=" not in word:
        if quoted and word.endswith('"'):
            word = word[:-1]
        return word, None
    key, value = word.split("=", 1)
    if value.startswith('"'):
        value = value[1:]
        quoted = True
    if quoted and value.endswith('"'):
        value = value[:-1]
    return key, value


def tokenize(text: str) -> list[tuple[str, str | None, str]]:
    """(key, value, the whole word) for every word; `--` (the start of init's own arguments) is skipped."""
    return [(*split_word(w), w) for w in split_words(text) if w != "--"]


# ---- small value parsers --------------------------------------------------------------------------------------


def _err(key: str, token: str, reason: str) -> CmdlineError:
    return CmdlineError(key, token, reason)


def split_fields(value: str, key: str, token: str) -> list[str]:
    """Colon-separated fields where a [bracketed] IPv6 address is one field (brackets removed)."""
    fields: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "[":
            close = value.find("]", i)
            if close == -1:
                raise _err(key, token, "'[' without a closing ']'")
            if current:
                raise _err(key, token, "'[' in the middle of a field")
            current.append(value[i + 1 : close])
            i = close + 1
            if i < len(value) and value[i] not in ":/":
                raise _err(key, token, "']' must end a field")
            continue
        if c == "]":
            raise _err(key, token, "']' without an opening '['")
        if c == ":":
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    fields.append("".join(current))
    return fields


def parse_mac(text: str, key: str, token: str) -> str:
    if not re.fullmatch(MAC_PATTERN, text):
        raise _err(key, token, f"{text!r} is not a MAC address (aa:bb:cc:dd:ee:ff)")
    return text.replace("-", ":").lower()


def parse_address(text: str, key: str, token: str, what: str = "address") -> IPAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _err(key, token, f"{what} {text!r} is not an IP address") from None


def parse_ifname(text: str, key: str, token: str) -> str:
    if not re.fullmatch(IFNAME_PATTERN, text):
        raise _err(key, token, f"{text!r} is not an interface name (1-15 of A-Z a-z 0-9 _ . @ -)")
    return text


def parse_int(text: str, key: str, token: str, what: str, lo: int, hi: int) -> int:
    if not re.fullmatch(r"[0-9]{1,10}", text):
        raise _err(key, token, f"{what} {text!r} is not a decimal number")
    value = int(text)
    if not lo <= value <= hi:
        raise _err(key, token, f"{what} {value} is out of range {lo}..{hi}")
    return value


def parse_seconds(text: str | None, key: str, token: str) -> float:
    try:
        value = float(text or "")
    except ValueError:
        raise _err(key, token, "expected a number of seconds") from None
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        raise _err(key, token, f"seconds must be between 0 and {MAX_SECONDS:g}")
    return value


OFF = ("0", "no", "off", "false")


def parse_bool(value: str | None, key: str, token: str) -> bool:
    """dracut's getargbool: a bare key is true, 0/no/off false, 1/yes/on true."""
    if value is None or value.lower() in ("", "1", "yes", "on", "true"):
        return True
    if value.lower() in ("0", "no", "off", "false"):
        return False
    raise _err(key, token, "expected 0 or 1")


def _prefix_from_mask(mask: str, ip: IPAddress, key: str, token: str) -> int:
    limit = ip.max_prefixlen
    if re.fullmatch(r"[0-9]{1,3}", mask):  # ASCII digits only: str.isdigit() takes '²', which int() refuses
        prefix = int(mask)
        if prefix > limit:
            raise _err(key, token, f"prefix /{prefix} is longer than {limit} bits")
        return prefix
    try:
        value = int(ipaddress.ip_address(mask))
        if ipaddress.ip_address(mask).version != ip.version:
            raise ValueError(mask)
    except ValueError:
        raise _err(key, token, f"netmask {mask!r} is neither a prefix length nor a contiguous mask") from None
    inverted = ~value & ((1 << limit) - 1)
    if inverted & (inverted + 1):
        raise _err(key, token, f"netmask {mask!r} is neither a prefix length nor a contiguous mask")
    return limit - inverted.bit_length()


def _classful_prefix(ip: ipaddress.IPv4Address) -> int:
    """The kernel's ip= default when no netmask is given."""
    first = int(ip) >> 24
    return 8 if first < 128 else 16 if first < 192 else 24


def _method(text: str, key: str, token: str) -> IpMethod:
    try:
        return METHOD_WORDS[text.lower()]
    except KeyError:
        raise _err(
            key, token, f"unknown method {text!r} (dhcp, on, any, dhcp6, auto6, either6, link6, ibft, none, off)"
        ) from None


def _looks_like_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# ---- ip= -------------------------------------------------------------------------------------------------------


def parse_ip(value: str | None, token: str) -> IpConfig:
    key = "ip"
    if not value:
        raise _err(key, token, "empty value")
    fields = split_fields(value, key, token)
    mac = None
    if len(fields) >= 8 and all(re.fullmatch(HEX_PAIR_PATTERN, f) for f in fields[-6:]):
        mac = ":".join(fields[-6:]).lower()
        fields = fields[:-6]
    if len(fields) == 1:
        if value.lower() in METHOD_WORDS:
            return IpConfig(token, _method(value, key, token))
        raise _err(key, token, f"unknown method {value!r}")
    if 2 <= len(fields) <= 4 and fields[1].lower() in METHOD_WORDS:
        return _ip_short(fields, mac, token)
    if len(fields) >= 7:
        return _ip_long(fields, mac, token)
    if value.endswith(":"):
        raise _err(key, token, "unexpected trailing colon")
    raise _err(
        key,
        token,
        "expected <method>, <interface>:<method>[:<mtu>[:<mac>]] or "
        "<client-IP>:[<peer>]:<gateway>:<netmask>:<hostname>:<interface>:<method>[:...]",
    )


def _mtu(text: str, token: str) -> int | None:
    return None if text == "" else parse_int(text, "ip", token, "MTU", 68, 65535)


def _ip_short(fields: list[str], mac: str | None, token: str) -> IpConfig:
    key = "ip"
    interface = parse_ifname(fields[0], key, token) if fields[0] else None
    mtu = _mtu(fields[2], token) if len(fields) > 2 else None
    if len(fields) > 3 and fields[3]:
        if mac is not None:
            raise _err(key, token, "two MAC addresses")
        mac = parse_mac(fields[3], key, token)
    return IpConfig(token, _method(fields[1], key, token), interface=interface, mtu=mtu, mac=mac)


def _ip_long(fields: list[str], mac: str | None, token: str) -> IpConfig:
    key = "ip"
    if len(fields) > 9:
        raise _err(key, token, f"{len(fields)} fields, at most 9")
    client, peer, gateway_text, mask, hostname, interface_text, method_text = fields[:7]
    extra = fields[7:]
    method = _method(method_text, key, token) if method_text else IpMethod.NONE
    address = None
    if client:
        if "/" in client:
            client, mask_in = client.split("/", 1)
            if mask:
                raise _err(key, token, "a prefix after the client address and a netmask field")
            mask = mask_in
        ip = parse_address(client, key, token, "client address")
        if mask:
            prefix = _prefix_from_mask(mask, ip, key, token)
        else:
            prefix = _classful_prefix(ip) if isinstance(ip, ipaddress.IPv4Address) else 64
        address = ipaddress.ip_interface(f"{ip}/{prefix}")
    elif mask:
        raise _err(key, token, "a netmask without a client address")
    gateway = parse_address(gateway_text, key, token, "gateway") if gateway_text else None
    if hostname and not re.fullmatch(HOSTNAME_PATTERN, hostname):
        raise _err(key, token, f"{hostname!r} is not a host name")
    interface = parse_ifname(interface_text, key, token) if interface_text else None
    mtu = None
    dns: list[IPAddress] = []
    if extra:
        if extra[0] and _looks_like_address(extra[0]):
            dns.append(ipaddress.ip_address(extra[0]))
            if len(extra) > 1 and extra[1]:
                dns.append(parse_address(extra[1], key, token, "second DNS server"))
        else:
            mtu = _mtu(extra[0], token)
            if len(extra) > 1 and extra[1]:
                if _looks_like_address(extra[1]):
                    dns.append(ipaddress.ip_address(extra[1]))
                else:
                    if mac is not None:
                        raise _err(key, token, "two MAC addresses")
                    mac = parse_mac(extra[1], key, token)
    return IpConfig(
        token,
        method,
        interface=interface,
        address=address,
        peer=peer or None,
        gateway=gateway,
        hostname=hostname or None,
        mtu=mtu,
        mac=mac,
        dns=tuple(dns),
    )


# ---- netroot=iscsi: --------------------------------------------------------------------------------------------


def parse_iscsi_root(value: str, key: str, token: str) -> IscsiRoot:
    """One `iscsi:...` spec (the part after `key=`)."""
    if not value.startswith("iscsi:"):
        raise _err(key, token, "not an iscsi: root")
    rest = value[len("iscsi:") :]
    username = password = in_username = in_password = None
    # Credentials end at the last '@' before the target name (`_credentials_end`: a password may hold '@', and
    # dracut lets a target name hold one). Every error below quotes `token`, which the caller has redacted
    # (`redact_iscsi_root`), and never a sub-field: a field next to a password must not carry part of it.
    at = _credentials_end(rest)
    if at != -1:
        auth, rest = rest[:at], rest[at + 1 :]
    if at != -1 and auth:
        parts = auth.split(":")
        if len(parts) not in (2, 4):
            raise _err(key, token, "credentials must be <user>:<password>[:<reverse user>:<reverse password>]")
        if not parts[0] or not parts[1]:
            raise _err(key, token, "empty CHAP user name or password")
        username, password = parts[0], Secret(parts[1])
        if len(parts) == 4:
            if not parts[2] or not parts[3]:
                raise _err(key, token, "empty reverse CHAP user name or password")
            in_username, in_password = parts[2], Secret(parts[3])
    if rest.startswith("["):
        close = rest.find("]")
        if close == -1:
            raise _err(key, token, "'[' without a closing ']' around the server")
        server = rest[1:close]
        if not rest[close + 1 :].startswith(":"):
            raise _err(key, token, "expected ':' after the bracketed server address")
        rest = rest[close + 2 :]
        try:
            ipaddress.IPv6Address(server)
        except ValueError:
            raise _err(key, token, f"{server!r} in brackets is not an IPv6 address") from None
    else:
        if ":" not in rest:
            raise _err(key, token, "expected <server>:[<proto>]:[<port>]:[<lun>]:<target>")
        server, rest = rest.split(":", 1)
        if not server:
            raise _err(key, token, "no server address (iSNS/SLP discovery is not supported)")
        if not _looks_like_address(server) and not re.fullmatch(HOSTNAME_PATTERN, server):
            raise _err(key, token, f"server {server!r} is neither an IP address nor a host name")
    target: str | None = None
    cut = max(rest.rfind(":" + p) for p in TARGET_PREFIXES)
    if cut != -1:
        target, rest = rest[cut + 1 :], rest[:cut]
    fields = rest.split(":")
    if len(fields) < 2:
        raise _err(key, token, "expected <server>:[<proto>]:[<port>]:[<lun>]:<target>")
    proto, port_text, *more = fields
    if proto not in ("", "6"):
        raise _err(key, token, f"protocol {proto!r}: only TCP (6) is supported")
    port = parse_int(port_text, key, token, "port", 1, 65535) if port_text else 3260
    iface_name = netdev = None
    if target is not None:
        if len(more) == 3:
            iface_name, netdev, lun_text = more
        elif len(more) == 2:
            netdev, lun_text = more
        elif len(more) == 1:
            (lun_text,) = more
        else:
            raise _err(key, token, f"{len(more)} fields between the port and the target name, expected 1 to 3")
    else:
        if len(more) == 4 and (more[0] or more[1]):
            iface_name, netdev = more[0], more[1]
            more = more[2:]
        if len(more) != 2:
            raise _err(key, token, "expected [<iface>:<netdev>:]<lun>:<target> after the port")
        lun_text, name = more
        target = name or None
    if netdev:
        parse_ifname(netdev, key, token)
    lun = _lun(lun_text, key, token)
    if target is not None and any(c.isspace() or ord(c) < 0x20 for c in target):
        raise _err(key, token, "target name contains white space or control characters")
    return IscsiRoot(
        server=server,
        target=target,
        port=port,
        lun=lun,
        iface_name=iface_name or None,
        netdev=netdev or None,
        username=username,
        password=password,
        in_username=in_username,
        in_password=in_password,
    )


def _lun(text: str, key: str, token: str) -> int:
    if text == "":
        return 0
    if re.fullmatch(r"0[xX][0-9a-fA-F]{1,16}", text):
        return int(text, 16)
    return parse_int(text, key, token, "LUN", 0, 0xFFFF_FFFF)


# ---- the other keys --------------------------------------------------------------------------------------------


def parse_vlan(value: str | None, token: str) -> Vlan:
    key = "vlan"
    if not value or value.count(":") != 1:
        raise _err(key, token, "expected <vlanname>:<phydevice>")
    name, parent = value.split(":")
    parse_ifname(name, key, token)
    parse_ifname(parent, key, token)
    match = re.fullmatch(r"vlan0*([0-9]{1,4})", name) or re.fullmatch(r".+\.0*([0-9]{1,4})", name)
    if match is None:
        raise _err(key, token, f"cannot read a VLAN id from {name!r} (vlan0005, vlan5, eth0.0005 or eth0.5)")
    vid = int(match.group(1))
    if not 1 <= vid <= 4094:
        raise _err(key, token, f"VLAN id {vid} is out of range 1..4094")
    return Vlan(name, parent, vid)


def parse_ifname_option(value: str | None, token: str) -> tuple[str, str]:
    key = "ifname"
    if not value or ":" not in value:
        raise _err(key, token, "expected <interface>:<MAC>")
    name, mac = value.split(":", 1)
    return parse_ifname(name, key, token), parse_mac(mac, key, token)


def _device_list(text: str, key: str, token: str, what: str) -> tuple[str, ...]:
    names = tuple(text.split(","))
    if not text or any(not n for n in names):
        raise _err(key, token, f"empty name in the {what} list")
    for name in names:
        parse_ifname(name, key, token)
    if len(set(names)) != len(names):
        raise _err(key, token, f"a name repeats in the {what} list")
    return names


def parse_bond(value: str | None, token: str) -> Bond:
    """dracut's parse-bond: one to four fields, the missing ones its defaults; options are checked by name."""
    key = "bond"
    if value is None or value == "":
        return Bond(token)
    fields = value.split(":")
    if len(fields) > 4:
        raise _err(key, token, "expected <bondname>[:<slaves>[:<options>[:<mtu>]]]")
    name = parse_ifname(fields[0], key, token)
    bond = Bond(token, name)
    if len(fields) > 1:
        bond = replace(bond, slaves=_device_list(fields[1], key, token, "slave"))
    if len(fields) > 2 and fields[2]:
        pairs = []
        for option in fields[2].split(","):
            opt_name, eq, opt_value = option.partition("=")
            if not opt_name or not eq or not opt_value:
                raise _err(key, token, f"bond option {option!r} is not <name>=<value>")
            pairs.append((opt_name, opt_value))
        bond = replace(bond, options=tuple(pairs))
    if len(fields) > 3 and fields[3]:
        bond = replace(bond, mtu=parse_int(fields[3], key, token, "MTU", 68, 65535))
    if name in bond.slaves:
        raise _err(key, token, f"{name} cannot be its own slave")
    check_options(bond.options, bond.slaves, token)
    return bond


def parse_bridge(value: str | None, token: str) -> Bridge:
    """dracut's parse-bridge: nothing (br0 over eth0) or exactly <bridgename>:<ethnames>."""
    key = "bridge"
    if value is None or value == "":
        return Bridge(token)
    fields = value.split(":")
    if len(fields) != 2:
        raise _err(key, token, "expected <bridgename>:<ethnames>")
    name = parse_ifname(fields[0], key, token)
    ports = _device_list(fields[1], key, token, "port")
    if name in ports:
        raise _err(key, token, f"{name} cannot be its own port")
    return Bridge(token, name, ports)


TEAM_REASON = "not supported: team devices need teamd, which pyiscsi does not carry; use bond= instead"


def _team(state: dict, key: str, value: str | None, token: str) -> None:
    raise CmdlineError("team=", None, TEAM_REASON)  # one line, the same for every team= form


Handler = Callable[[dict, str, str | None, str], None]


def _once(attr: str, convert: Callable[[str | None, str, str], object]) -> Handler:
    def handle(state: dict, key: str, value: str | None, token: str) -> None:
        state[attr] = convert(value, key, token)

    return handle


def _append(state: dict, attr: str, item: object) -> None:
    """Repeated options collect in lists (tuples at the end): a 1 MiB command line stays linear."""
    state.setdefault(attr, []).append(item)


def _many(attr: str, convert: Callable[[str | None, str, str], object]) -> Handler:
    def handle(state: dict, key: str, value: str | None, token: str) -> None:
        _append(state, attr, convert(value, key, token))

    return handle


def _text(value: str | None, key: str, token: str) -> str:
    if not value:
        raise _err(key, token, "empty value")
    return value


def _secret(value: str | None, key: str, token: str) -> Secret:
    if not value:
        raise CmdlineError(key, None, "empty value")  # the word holds a secret: never echo it
    return Secret(value)


def _ip_handler(state: dict, key: str, value: str | None, token: str) -> None:
    _append(state, "ips", parse_ip(value, token))


def _root(state: dict, key: str, value: str | None, token: str) -> None:
    if value and value.startswith("iscsi:"):
        _append(state, "netroots", parse_iscsi_root(value, key, redact_iscsi_root(token)))
        state["root"] = None
    elif value in DHCP_ROOTS:
        state["dhcp_root"] = value
        state["root"] = None  # dracut's root=dhcp: the whole LUN of the root path is the root
    else:
        state["root"] = value or None


DHCP_ROOTS = ("dhcp", "dhcp6")  # dracut's root=/netroot= forms whose root path comes from DHCP


def _netroot(state: dict, key: str, value: str | None, token: str) -> None:
    if value == "iscsi":
        state["netroot_firmware"] = True
    elif value and value.startswith("iscsi:"):
        _append(state, "netroots", parse_iscsi_root(value, key, redact_iscsi_root(token)))
    elif value in DHCP_ROOTS:
        state["dhcp_root"] = value
    elif value:
        _append(state, "other_netroots", value)
    else:
        raise _err(key, token, "empty value")


def _credentials_end(spec: str) -> int:
    """Index of the '@' that ends the credentials of an iscsi: spec (the part after `iscsi:`), or -1.

    Normally the last '@' before the target name (which starts at the last ':iqn.'/':eui.'/':naa.'). With no '@'
    before that, a later '@' still ends credentials when a spec follows it (a password such as 'eui.x' made the
    name seem to start early); a bare 'name@word' at the end is part of the target name, as dracut allows.
    """
    cut = max(spec.rfind(":" + p) for p in TARGET_PREFIXES)
    before = spec.rfind("@", 0, cut if cut != -1 else len(spec))
    if before != -1 or cut == -1:
        return before
    last = spec.rfind("@")
    return last if last != -1 and ":" in spec[last + 1 :] else -1


def redact_iscsi_root(token: str) -> str:
    """A root=iscsi: word fit for an error message: everything from `iscsi:` up to its last '@' is replaced by
    ***, wherever the parser would have ended the credentials (a malformed word must not leak a password)."""
    head, sep, rest = token.partition("iscsi:")
    at = rest.rfind("@") if sep else -1
    if at == -1:
        return token
    return f"{head}{sep}***@{rest[at + 1 :]}"


def secret_param(name: str) -> bool:
    """An iscsiadm parameter whose value is a secret (node.session.auth.password, ...password_in, discovery's)."""
    return "password" in name.lower()


def _param(value: str | None, key: str, token: str) -> tuple[str, str | Secret]:
    """One rd.iscsi.param=<name>=<value>; a password's value is a `Secret` from here on."""
    if not value or "=" not in value:
        raise _err(key, token, "expected <key>=<value>")
    name, setting = value.split("=", 1)
    if not re.fullmatch(r"[A-Za-z0-9_.\[\]]+", name):
        raise _err(key, token, "the parameter name is not an iscsiadm parameter name")
    return name, Secret(setting) if secret_param(name) else setting


NET_TIMEOUTS = ("iflink", "ifup", "route", "ipv6dad", "ipv6auto", "carrier", "dhcp")  # dracut's rd.net.timeout.*


def _net_timeout(state: dict, key: str, value: str | None, token: str) -> None:
    name = key[len("rd.net.timeout.") :]
    if name not in NET_TIMEOUTS:
        raise _err(key, token, "unknown rd.net.timeout (iflink, ifup, route, ipv6dad, ipv6auto, carrier, dhcp)")
    _append(state, "net_timeouts", (name, parse_seconds(value, key, token)))


PYISCSI_WAITS = ("total", "iflink", "udev", "carrier", "dhcp", "ipv6dad", "ipv6auto", "dhcp6", "arp", "connect",
                 "login", "disk", "replacement")  # fmt: skip


def _pyiscsi(state: dict, key: str, value: str | None, token: str) -> None:
    if key == "rd.pyiscsi.timeout":
        name = "total"
    elif key.startswith("rd.pyiscsi.timeout."):
        name = key[len("rd.pyiscsi.timeout.") :]
        if name not in PYISCSI_WAITS:
            raise _err(key, token, f"unknown wait {name!r} ({', '.join(PYISCSI_WAITS)})")
    elif key in ("rd.pyiscsi.loglevel", "rd.pyiscsi.log"):
        level = (value or "").lower()
        if level not in LOG_LEVELS:
            raise _err(key, token, f"log level must be one of {', '.join(LOG_LEVELS)}")
        state["log_level"] = level
        return
    elif key == "rd.pyiscsi.agent":
        state["agent"] = parse_bool(value, key, token)
        return
    else:
        raise _err(
            key, token, "unknown rd.pyiscsi option (rd.pyiscsi.timeout[.<wait>], rd.pyiscsi.loglevel, rd.pyiscsi.agent)"
        )
    _append(state, "pyiscsi_timeouts", (name, parse_seconds(value, key, token)))


def _transport(value: str | None, key: str, token: str) -> str:
    if (value or "").lower() != "tcp":
        raise _err(key, token, "only the tcp transport is supported")
    return "tcp"


def _target_ip(value: str | None, key: str, token: str) -> str:
    text = _text(value, key, token)
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if not _looks_like_address(text) and not re.fullmatch(HOSTNAME_PATTERN, text):
        raise _err(key, token, f"{text!r} is neither an IP address nor a host name")
    return text


HANDLERS: dict[str, Handler] = {
    "ip": _ip_handler,
    "ifname": _many("ifnames", lambda v, k, t: parse_ifname_option(v, t)),
    "vlan": _many("vlans", lambda v, k, t: parse_vlan(v, t)),
    "bond": _many("bonds", lambda v, k, t: parse_bond(v, t)),
    "team": _team,
    "bridge": _many("bridges", lambda v, k, t: parse_bridge(v, t)),
    "nameserver": _many("nameservers", lambda v, k, t: parse_address((v or "").strip("[]"), k, t, "name server")),
    "bootdev": _once("bootdev", lambda v, k, t: parse_ifname(v or "", k, t)),
    "BOOTIF": _once("bootif", lambda v, k, t: parse_mac(re.sub(r"^01-", "", v or ""), k, t)),
    "rd.neednet": _once("neednet", parse_bool),
    "rd.timeout": _once("rd_timeout", parse_seconds),
    "rd.retry": _once("rd_retry", parse_seconds),
    "root": _root,
    "netroot": _netroot,
    "rd.iscsi.initiator": _once("initiator", _text),
    "rd.iscsi.target.name": _once("target_name", _text),
    "rd.iscsi.target.ip": _once("target_ip", _target_ip),
    "rd.iscsi.target.port": _once("target_port", lambda v, k, t: parse_int(v or "", k, t, "port", 1, 65535)),
    "rd.iscsi.target.group": _once("target_group", lambda v, k, t: parse_int(v or "", k, t, "group", 0, 65535)),
    "rd.iscsi.username": _once("username", _text),
    "rd.iscsi.password": _once("password", _secret),
    "rd.iscsi.in.username": _once("in_username", _text),
    "rd.iscsi.in.password": _once("in_password", _secret),
    "rd.iscsi.firmware": _once("firmware", parse_bool),
    "rd.iscsi.ibft": _once("ibft", parse_bool),
    "rd.iscsi.mp": _once("multipath", parse_bool),
    "rd.multipath": _once("dm_multipath", lambda value, key, token: (value or "").lower() not in OFF),
    "rd.iscsi.waitnet": _once("waitnet", parse_bool),
    "rd.iscsi.testroute": _once("testroute", parse_bool),
    "rd.iscsi.param": _many("params", _param),
    "rd.iscsi.transport": _once("transport", _transport),
    "rd.iscsi.login_retry_max": _once("login_retry_max", lambda v, k, t: parse_int(v or "", k, t, "retries", 0, 1000)),
}
# dracut's deprecated spellings (its getarg -d alternatives)
ALIASES = {
    "iscsi_initiator": "rd.iscsi.initiator",
    "iscsi_target_name": "rd.iscsi.target.name",
    "iscsi_target_ip": "rd.iscsi.target.ip",
    "iscsi_target_port": "rd.iscsi.target.port",
    "iscsi_target_group": "rd.iscsi.target.group",
    "iscsi_username": "rd.iscsi.username",
    "iscsi_password": "rd.iscsi.password",
    "iscsi_in_username": "rd.iscsi.in.username",
    "iscsi_in_password": "rd.iscsi.in.password",
    "iscsi_firmware": "rd.iscsi.firmware",
    "iscsi_param": "rd.iscsi.param",
}
SECRET_KEYS = frozenset({"rd.iscsi.password", "rd.iscsi.in.password"})


def parse_cmdline(text: str) -> Cmdline:
    """Every option this module knows, from one command line; other words are ignored."""
    state: dict = {}
    for raw_key, value, word in tokenize(text):
        key = ALIASES.get(raw_key, raw_key)
        handler = HANDLERS.get(key)
        if handler is None:
            if key.startswith("rd.net.timeout."):
                handler = _net_timeout
            elif key.startswith("rd.pyiscsi."):
                handler = _pyiscsi
            else:
                continue
        secret = key in SECRET_KEYS or (key == "rd.iscsi.param" and "auth" in (value or "").lower())
        token = f"{raw_key}=***" if secret else word
        handler(state, key, value, token)
    return replace(Cmdline(), **{k: tuple(v) if isinstance(v, list) else v for k, v in state.items()})


__all__ = [
    "Bond",
    "Bridge",
    "Cmdline",
    "IpConfig",
    "IpMethod",
    "IscsiRoot",
    "Vlan",
    "parse_cmdline",
    "parse_ip",
    "parse_iscsi_root",
    "split_word",
    "split_words",
    "tokenize",
]
