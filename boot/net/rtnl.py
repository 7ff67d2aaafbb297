"""The bring-up's route netlink: links, addresses and routes over one NETLINK_ROUTE socket, without pyroute2's
IPRoute on the path every boot takes.

Why: importing pyroute2's IPRoute (0.9: asyncio, multiprocessing, its mock engine, the traffic-control classes)
was two thirds of `pyiscsi boot`'s import CPU on a host, and under emulation the boot's CPU is its critical path.
What a boot does to a link is small and fixed: dump the links, set one up (MTU, name, MAC, master), add or
delete an address, replace a route, ask the kernel for the route to the target. `Rtnl` does exactly that, with
IPRoute's call shapes (`link("set", index=..., state="up")`, `addr("replace", ...)`, `route("replace", ...)`), so
boot.net reads the same with either. Anything else (creating a VLAN, bond or bridge: `link("add", kind=...)`,
whose nested link info is pyroute2's to encode) goes to a pyroute2 IPRoute opened on first use; a boot without
virtual links never imports it.

Requests and replies are bytes in, records out (`*_request`, `parse_link`, `replies`), apart from the socket.
Every exchange is bounded: a reply must come within TIMEOUT, a dump stops after MAX_MESSAGES.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
from types import TracebackType

from boot.net.linkdump import (
    IFA_ADDRESS,
    IFADDRMSG,
    NETLINK_ROUTE,
    NLM_F_DUMP,
    NLMSG_DONE,
    NLMSG_ERROR,
    NLMSGHDR,
    RT_TABLE_MAIN,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_TABLE,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTMSG,
    DumpError,
    attribute,
    attributes,
    message,
    split_messages,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Iterator

NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_DELADDR = 21
IFF_UP = 0x1
IFLA_ADDRESS = 1
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_LINKINFO = 18
IFLA_INFO_KIND = 1
IFLA_CARRIER = 33
IFLA_MAX_MTU = 51
IFA_LOCAL = 2
IFA_BROADCAST = 4
RTPROT_STATIC = 4  # what IPRoute marks the routes it adds with; `ip route` shows "proto static"
RTN_UNICAST = 1
TIMEOUT = 5.0  # seconds the kernel has to answer one request (it answers at once; a bound all the same)
MAX_MESSAGES = 65536  # per dump: far more links than a machine has; a bound on the work all the same
RECV_BUFFER = 65536

_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_U32 = struct.Struct("=I")
_LINK_NAMES = {
    IFLA_ADDRESS: "IFLA_ADDRESS",
    IFLA_IFNAME: "IFLA_IFNAME",
    IFLA_MTU: "IFLA_MTU",
    IFLA_MASTER: "IFLA_MASTER",
    IFLA_CARRIER: "IFLA_CARRIER",
    IFLA_MAX_MTU: "IFLA_MAX_MTU",
}
_LINK_SET = frozenset({"index", "state", "mtu", "ifname", "address", "master"})


class NetlinkError(OSError):
    """The kernel refused a request (errno and its text, as pyroute2's NetlinkError: `args[1]` is the reason),
    or its answer could not be read."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(code, reason or os.strerror(code))
        self.code = code


class LinkInfo:
    """IFLA_LINKINFO: the link's kind (`get_attr("IFLA_INFO_KIND")`), as pyroute2's nested attribute reads."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind

    def get_attr(self, name: str) -> str | None:
        return self.kind if name == "IFLA_INFO_KIND" else None


class LinkMessage:
    """An RTM_NEWLINK record read the way boot.net reads pyroute2's ifinfmsg: `msg["index"]`, `msg["flags"]`,
    `msg["ifi_type"]` and `msg.get_attr("IFLA_...")` for the attributes the bring-up uses."""

    def __init__(self, header: dict[str, int], attrs: dict[str, object]) -> None:
        self._header = header
        self._attrs = attrs

    def __getitem__(self, key: str) -> int:
        return self._header[key]

    def get_attr(self, name: str) -> object:
        return self._attrs.get(name)

    def __repr__(self) -> str:
        return f"LinkMessage({self._header}, {self._attrs})"


# ---- requests ---------------------------------------------------------------------------------------------------


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if not raw:
        raise ValueError(f"not a link-layer address: {text!r}")
    return raw


def links_request(index: int = 0, sequence: int = 1) -> bytes:
    """RTM_GETLINK: every link (a dump), or link `index` alone."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    return message(RTM_GETLINK, sequence, body, NLM_F_DUMP if not index else 0)


def link_set_request(index: int, sequence: int = 1, **change: object) -> bytes:
    """RTM_NEWLINK changing link `index`: state ("up"/"down"), mtu, ifname, address (MAC), master (an index)."""
    unknown = set(change) - _LINK_SET
    if unknown:
        raise ValueError(f"link set: {', '.join(sorted(unknown))} not handled here")
    flags = mask = 0
    state = change.get("state")
    if state is not None:
        if state not in ("up", "down"):
            raise ValueError(f"link set: state {state!r}")
        mask = IFF_UP
        flags = IFF_UP if state == "up" else 0
    attrs = b""
    if change.get("ifname") is not None:
        attrs += attribute(IFLA_IFNAME, str(change["ifname"]).encode() + b"\0")
    if change.get("address") is not None:
        attrs += attribute(IFLA_ADDRESS, _mac(str(change["address"])))
    if change.get("mtu") is not None:
        attrs += attribute(IFLA_MTU, _U32.pack(int(change["mtu"])))  # type: ignore[call-overload]
    if change.get("master") is not None:
        attrs += attribute(IFLA_MASTER, _U32.pack(int(change["master"])))  # type: ignore[call-overload]
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, flags, mask) + attrs
    return message(RTM_NEWLINK, sequence, body, NLM_F_ACK)


def _family_address(family: int, text: str) -> bytes:
    if family == socket.AF_INET:
        return ipaddress.IPv4Address(text).packed
    if family == socket.AF_INET6:
        return ipaddress.IPv6Address(text).packed
    raise ValueError(f"address family {family}")


def addr_request(
    command: str,
    *,
    index: int,
    address: str,
    prefixlen: int,
    family: int,
    broadcast: str | None = None,
    sequence: int = 1,
) -> bytes:
    """RTM_NEWADDR ("replace": add, or refresh what is there) or RTM_DELADDR ("del") of one address on `index`.
    IPv4 carries the address as both IFA_LOCAL and IFA_ADDRESS, as `ip addr add` sends it."""
    if command not in ("replace", "add", "del"):
        raise ValueError(f"addr {command!r}")
    packed = _family_address(family, address)
    attrs = attribute(IFA_ADDRESS, packed)
    if family == socket.AF_INET:
        attrs = attribute(IFA_LOCAL, packed) + attrs
        if broadcast is not None:
            attrs += attribute(IFA_BROADCAST, _family_address(family, broadcast))
    body = IFADDRMSG.pack(family, prefixlen, 0, 0, index) + attrs
    if command == "del":
        return message(RTM_DELADDR, sequence, body, NLM_F_ACK)
    flags = NLM_F_ACK | NLM_F_CREATE | (NLM_F_REPLACE if command == "replace" else 0)
    return message(RTM_NEWADDR, sequence, body, flags)


def route_request(
    command: str,
    *,
    family: int,
    dst: str,
    dst_len: int | None = None,
    gateway: str | None = None,
    oif: int | None = None,
    scope: int = 0,
    sequence: int = 1,
) -> bytes:
    """RTM_NEWROUTE ("replace") in the main table, proto static, or RTM_GETROUTE ("get": the kernel's route to
    `dst`, as `ip route get`)."""
    if command == "get":
        length = 32 if family == socket.AF_INET else 128
        header = RTMSG.pack(family, length if dst_len is None else dst_len, 0, 0, 0, 0, 0, 0, 0)
        return message(RTM_GETROUTE, sequence, header + attribute(RTA_DST, _family_address(family, dst)), 0)
    if command != "replace":
        raise ValueError(f"route {command!r}")
    length = dst_len or 0
    header = RTMSG.pack(family, length, 0, 0, RT_TABLE_MAIN, RTPROT_STATIC, scope, RTN_UNICAST, 0)
    attrs = attribute(RTA_TABLE, _U32.pack(RT_TABLE_MAIN))
    if length:
        attrs += attribute(RTA_DST, _family_address(family, dst))
    if gateway is not None:
        attrs += attribute(RTA_GATEWAY, _family_address(family, gateway))
    if oif is not None:
        attrs += attribute(RTA_OIF, _U32.pack(oif))
    return message(RTM_NEWROUTE, sequence, header + attrs, NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)


# ---- replies ----------------------------------------------------------------------------------------------------


def _text(value: bytes) -> str:
    return value.split(b"\0", 1)[0].decode("utf-8", "replace")


def _l2(value: bytes) -> str:
    return ":".join(f"{byte:02x}" for byte in value)


def parse_link(payload: bytes) -> LinkMessage | None:
    """An RTM_NEWLINK body, or None if it is too short to be one."""
    if len(payload) < _IFINFOMSG.size:
        return None
    family, kind, index, flags, change = _IFINFOMSG.unpack_from(payload)
    attrs: dict[str, object] = {}
    for number, value in attributes(payload[_IFINFOMSG.size :]):
        name = _LINK_NAMES.get(number)
        if number == IFLA_LINKINFO:
            info = dict(attributes(value))
            attrs["IFLA_LINKINFO"] = LinkInfo(_text(info[IFLA_INFO_KIND]) if IFLA_INFO_KIND in info else None)
        elif name is None:
            continue
        elif number == IFLA_IFNAME:
            attrs[name] = _text(value)
        elif number == IFLA_ADDRESS:
            attrs[name] = _l2(value)
        elif number == IFLA_CARRIER:
            attrs[name] = value[0] if value else 0
        elif len(value) == 4:
            attrs[name] = _U32.unpack(value)[0]
    header = {"family": family, "ifi_type": kind, "index": index, "flags": flags, "change": change}
    return LinkMessage(header, attrs)


def replies(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of the messages of one read. The end of a dump is (NLMSG_DONE, b""), an acknowledgement
    (NLMSG_ERROR, b""); an error (NLMSG_ERROR, or a dump's NLMSG_DONE, with a code) raises NetlinkError."""
    for kind, payload in split_messages(data):
        if kind in (NLMSG_ERROR, NLMSG_DONE):
            code = -struct.unpack_from("=i", payload)[0] if len(payload) >= 4 else 0
            if code < 0 or (kind == NLMSG_ERROR and len(payload) < 4):
                code = errno.EBADMSG
            if code:
                raise NetlinkError(code)
            yield kind, b""
        else:
            yield kind, payload


def _sequence_of(data: bytes) -> int:
    return NLMSGHDR.unpack_from(data)[3] if len(data) >= NLMSGHDR.size else -1


# ---- the socket -------------------------------------------------------------------------------------------------


class Rtnl:
    """One NETLINK_ROUTE socket with the part of IPRoute's API that a bring-up uses; a context manager."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        try:
            self._sock.bind((0, 0))
            self._sock.settimeout(timeout)
        except OSError:
            self._sock.close()
            raise
        self._sequence = 0
        self._full: object = None  # pyroute2's IPRoute, for what this class does not do (opened on first use)

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()
        if self._full is not None:
            self._full.close()  # type: ignore[attr-defined]
            self._full = None

    def _next(self) -> int:
        self._sequence += 1
        return self._sequence

    def _exchange(self, request: bytes, sequence: int) -> list[tuple[int, bytes]]:
        """Send one request and read its answer: the records of a dump up to NLMSG_DONE, one record, or the
        acknowledgement. A reply to another sequence (an earlier request cut short) is skipped."""
        try:
            self._sock.sendall(request)
        except OSError as exc:
            raise NetlinkError(exc.errno or errno.EIO, exc.strerror) from exc
        out: list[tuple[int, bytes]] = []
        while len(out) < MAX_MESSAGES:
            try:
                data = self._sock.recv(RECV_BUFFER)
            except TimeoutError:
                bound = self._sock.gettimeout()
                raise NetlinkError(errno.ETIMEDOUT, f"no answer from the kernel within {bound:g}s") from None
            except OSError as exc:
                raise NetlinkError(exc.errno or errno.EIO, exc.strerror) from exc
            if _sequence_of(data) != sequence:
                continue
            try:
                for kind, payload in replies(data):
                    if kind in (NLMSG_DONE, NLMSG_ERROR):
                        return out
                    out.append((kind, payload))
            except DumpError as exc:  # a length that does not fit: the kernel never sends one
                raise NetlinkError(errno.EBADMSG, exc.reason) from exc
            if not NLMSGHDR.unpack_from(data)[2] & NLM_F_MULTI:  # one record, not a dump: that was all
                return out
        return out

    def _pyroute2(self) -> object:
        if self._full is None:
            from pyroute2.iproute.linux import IPRoute

            self._full = IPRoute()
        return self._full

    def _delegate(self, method: str, *args: object, **kwargs: object) -> object:
        from pyroute2.netlink.exceptions import NetlinkError as Pyroute2Error

        try:
            return getattr(self._pyroute2(), method)(*args, **kwargs)
        except Pyroute2Error as exc:
            code = exc.code if isinstance(exc.code, int) and exc.code > 0 else errno.EINVAL
            raise NetlinkError(code, str(exc.args[1]) if len(exc.args) > 1 else None) from exc

    # ---- IPRoute's calls ----

    def get_links(self, index: int = 0) -> list[LinkMessage]:
        """Every link, or link `index` alone (a list of one, as IPRoute's)."""
        sequence = self._next()
        answer = self._exchange(links_request(index, sequence), sequence)
        return [link for kind, payload in answer if kind == RTM_NEWLINK and (link := parse_link(payload))]

    def link_lookup(self, *, ifname: str) -> list[int]:
        return [link["index"] for link in self.get_links() if link.get_attr("IFLA_IFNAME") == ifname]

    def link(self, command: str, **kwargs: object) -> object:
        if command != "set" or set(kwargs) - _LINK_SET or "index" not in kwargs:
            return self._delegate("link", command, **kwargs)
        index = int(kwargs.pop("index"))  # type: ignore[call-overload]
        sequence = self._next()
        return self._exchange(link_set_request(index, sequence, **kwargs), sequence)

    def addr(self, command: str, **kwargs: object) -> object:
        sequence = self._next()
        return self._exchange(addr_request(command, sequence=sequence, **kwargs), sequence)  # type: ignore[arg-type]

    def route(self, command: str, **kwargs: object) -> object:
        if "family" not in kwargs:  # IPRoute's default: the destination's family
            kwargs["family"] = socket.AF_INET6 if ":" in str(kwargs.get("dst", "")) else socket.AF_INET
        sequence = self._next()
        return self._exchange(route_request(command, sequence=sequence, **kwargs), sequence)  # type: ignore[arg-type]


__all__ = ["LinkMessage", "NetlinkError", "Rtnl", "addr_request", "link_set_request", "parse_link", "route_request"]
