"""The bring-up's route netlink: requests byte by byte, replies from crafted and random bytes, the bounds on one
exchange, and the real kernel in a namespace read and changed through Rtnl, checked against pyroute2's IPRoute
and iproute2."""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import struct
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boot.net import rtnl
from boot.net.linkdump import NLM_F_REQUEST, attributes, split_messages
from boot.net.rtnl import (
    IFA_ADDRESS,
    IFA_BROADCAST,
    IFA_LOCAL,
    IFLA_ADDRESS,
    IFLA_CARRIER,
    IFLA_IFNAME,
    IFLA_LINKINFO,
    IFLA_MASTER,
    IFLA_MAX_MTU,
    IFLA_MTU,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_MULTI,
    NLM_F_REPLACE,
    NLMSG_DONE,
    NLMSG_ERROR,
    RTA_DST,
    RTA_GATEWAY,
    RTA_OIF,
    RTA_TABLE,
    RTM_DELADDR,
    RTM_GETLINK,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWROUTE,
    NetlinkError,
    Rtnl,
    addr_request,
    link_set_request,
    links_request,
    parse_link,
    replies,
    route_request,
)

from . import netns
from .nlbytes import nlmsg, rta

_HEADER = struct.Struct("=IHHII")


def decoded(request: bytes) -> tuple[int, int, int, bytes, dict[int, bytes]]:
    """(type, flags, sequence, fixed header, attributes) of one request."""
    length, kind, flags, sequence, _port = _HEADER.unpack_from(request)
    assert length == len(request)
    [(_kind, payload)] = list(split_messages(request))
    fixed = {RTM_GETLINK: 16, RTM_NEWLINK: 16, RTM_NEWADDR: 8, RTM_DELADDR: 8, RTM_NEWROUTE: 12, RTM_GETROUTE: 12}
    size = fixed[kind]
    return kind, flags, sequence, payload[:size], dict(attributes(payload[size:]))


def u32(value: int) -> bytes:
    return struct.pack("=I", value)


# ---- requests ---------------------------------------------------------------------------------------------------

LINK_SETS = [
    # (change, ifinfomsg flags, change mask, attributes)
    ({"state": "up"}, 1, 1, {}),
    ({"state": "down"}, 0, 1, {}),
    ({"mtu": 9000}, 0, 0, {IFLA_MTU: u32(9000)}),
    ({"ifname": "lan0"}, 0, 0, {IFLA_IFNAME: b"lan0\0"}),
    ({"address": "52:54:00:AB:cd:01"}, 0, 0, {IFLA_ADDRESS: bytes.fromhex("525400abcd01")}),
    ({"master": 7, "state": "up"}, 1, 1, {IFLA_MASTER: u32(7)}),
    ({"mtu": 1400, "state": "up"}, 1, 1, {IFLA_MTU: u32(1400)}),
]


@pytest.mark.parametrize(("change", "flags", "mask", "attrs"), LINK_SETS)
def test_a_link_change_is_one_acknowledged_newlink_for_that_index(change, flags, mask, attrs) -> None:
    kind, nl_flags, sequence, fixed, got = decoded(link_set_request(3, 9, **change))
    assert (kind, nl_flags, sequence) == (RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, 9)
    assert struct.unpack("=BxHiII", fixed) == (0, 0, 3, flags, mask)
    assert got == attrs


@pytest.mark.parametrize(
    "change", [{"kind": "vlan"}, {"state": "sideways"}, {"address": ""}, {"vlan_id": 5}, {"address": "zz"}]
)
def test_a_link_change_this_module_does_not_make_is_refused_before_anything_is_sent(change) -> None:
    with pytest.raises(ValueError):
        link_set_request(3, 1, **change)


def test_a_link_dump_and_one_link_are_asked_differently() -> None:
    kind, flags, _seq, fixed, _attrs = decoded(links_request())
    assert (kind, flags & NLM_F_DUMP) == (RTM_GETLINK, NLM_F_DUMP)
    assert struct.unpack("=BxHiII", fixed)[2] == 0
    kind, flags, _seq, fixed, _attrs = decoded(links_request(5))
    assert (kind, flags) == (RTM_GETLINK, NLM_F_REQUEST)
    assert struct.unpack("=BxHiII", fixed)[2] == 5


ADDRS = [
    # (command, arguments, message type, netlink flags, attributes)
    (
        "replace",
        {"address": "10.0.2.15", "prefixlen": 24, "family": socket.AF_INET, "broadcast": "10.0.2.255"},
        RTM_NEWADDR,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        {
            IFA_LOCAL: bytes([10, 0, 2, 15]),
            IFA_ADDRESS: bytes([10, 0, 2, 15]),
            IFA_BROADCAST: bytes([10, 0, 2, 255]),
        },
    ),
    (
        "replace",
        {"address": "192.0.2.7", "prefixlen": 32, "family": socket.AF_INET},
        RTM_NEWADDR,
        NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        {IFA_LOCAL: bytes([192, 0, 2, 7]), IFA_ADDRESS: bytes([192, 0, 2, 7])},
    ),
    (
        "add",
        {"address": "2001:db8::5", "prefixlen": 64, "family": socket.AF_INET6},
        RTM_NEWADDR,
        NLM_F_ACK | NLM_F_CREATE,
        {IFA_ADDRESS: ipaddress.IPv6Address("2001:db8::5").packed},
    ),
    (
        "del",
        {"address": "2001:db8::5", "prefixlen": 128, "family": socket.AF_INET6},
        RTM_DELADDR,
        NLM_F_ACK,
        {IFA_ADDRESS: ipaddress.IPv6Address("2001:db8::5").packed},
    ),
]


@pytest.mark.parametrize(("command", "arguments", "kind", "flags", "attrs"), ADDRS)
def test_an_address_request_carries_what_ip_addr_sends(command, arguments, kind, flags, attrs) -> None:
    got_kind, got_flags, _seq, fixed, got = decoded(addr_request(command, index=4, **arguments))
    assert (got_kind, got_flags) == (kind, NLM_F_REQUEST | flags)
    assert struct.unpack("=BBBBI", fixed) == (arguments["family"], arguments["prefixlen"], 0, 0, 4)
    assert got == attrs


@pytest.mark.parametrize(
    "arguments",
    [
        {"command": "flush", "address": "10.0.0.1", "family": socket.AF_INET},
        {"command": "replace", "address": "10.0.0.1", "family": socket.AF_INET6},
        {"command": "replace", "address": "fe80::1", "family": socket.AF_INET},
        {"command": "replace", "address": "10.0.0.1", "family": 17},
    ],
)
def test_an_address_request_that_does_not_fit_is_refused(arguments) -> None:
    with pytest.raises(ValueError):
        addr_request(arguments.pop("command"), index=1, prefixlen=24, **arguments)


def test_a_default_route_is_replaced_in_the_main_table_without_a_destination() -> None:
    request = route_request("replace", family=socket.AF_INET, dst="0.0.0.0", dst_len=0, gateway="10.0.2.2", oif=2)
    kind, flags, _seq, fixed, attrs = decoded(request)
    assert (kind, flags) == (RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE)
    family, dst_len, _src, _tos, table, protocol, scope, rtype, _flags = struct.unpack("=BBBBBBBBI", fixed)
    assert (family, dst_len, table, protocol, scope, rtype) == (socket.AF_INET, 0, 254, 4, 0, 1)
    assert attrs == {RTA_TABLE: u32(254), RTA_GATEWAY: bytes([10, 0, 2, 2]), RTA_OIF: u32(2)}


def test_a_host_route_to_an_off_subnet_gateway_is_link_scoped() -> None:
    request = route_request("replace", family=socket.AF_INET, dst="198.51.100.1", dst_len=32, oif=3, scope=253)
    _kind, _flags, _seq, fixed, attrs = decoded(request)
    assert struct.unpack("=BBBBBBBBI", fixed)[1] == 32
    assert struct.unpack("=BBBBBBBBI", fixed)[6] == 253
    assert attrs == {RTA_TABLE: u32(254), RTA_DST: bytes([198, 51, 100, 1]), RTA_OIF: u32(3)}


@pytest.mark.parametrize(("family", "dst", "length"), [(socket.AF_INET, "10.1.2.3", 32), (socket.AF_INET6, "::1", 128)])
def test_a_route_lookup_asks_for_one_host(family, dst, length) -> None:
    kind, flags, _seq, fixed, attrs = decoded(route_request("get", family=family, dst=dst))
    assert (kind, flags) == (RTM_GETROUTE, NLM_F_REQUEST)
    assert struct.unpack("=BBBBBBBBI", fixed)[:2] == (family, length)
    assert attrs == {RTA_DST: ipaddress.ip_address(dst).packed}


# ---- replies ----------------------------------------------------------------------------------------------------


def link_body(index: int, flags: int = 0, *attrs: bytes, kind: int = 1) -> bytes:
    return struct.pack("=BxHiII", 0, kind, index, flags, 0) + b"".join(attrs)


def test_a_link_record_reads_as_the_bring_up_reads_pyroute2s() -> None:
    body = link_body(
        2,
        0x1043,
        rta(IFLA_IFNAME, b"ens2\0"),
        rta(IFLA_ADDRESS, bytes.fromhex("525400123456")),
        rta(IFLA_MTU, u32(1500)),
        rta(IFLA_MAX_MTU, u32(65535)),
        rta(IFLA_CARRIER, b"\1"),
        rta(IFLA_MASTER, u32(9)),
        rta(IFLA_LINKINFO | 0x8000, rta(1, b"vlan\0") + rta(2, b"ignored")),
        rta(99, b"unknown attributes are skipped"),
    )
    link = parse_link(body)
    assert link is not None
    assert (link["index"], link["flags"], link["ifi_type"]) == (2, 0x1043, 1)
    assert link.get_attr("IFLA_IFNAME") == "ens2"
    assert link.get_attr("IFLA_ADDRESS") == "52:54:00:12:34:56"
    assert (link.get_attr("IFLA_MTU"), link.get_attr("IFLA_MAX_MTU")) == (1500, 65535)
    assert (link.get_attr("IFLA_CARRIER"), link.get_attr("IFLA_MASTER")) == (1, 9)
    assert link.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND") == "vlan"
    assert link.get_attr("IFLA_OPERSTATE") is None


def test_a_link_without_attributes_has_none_and_a_short_body_is_no_link() -> None:
    bare = parse_link(link_body(5))
    assert bare is not None and bare.get_attr("IFLA_IFNAME") is None and bare.get_attr("IFLA_LINKINFO") is None
    assert parse_link(b"\0" * 15) is None


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=256))
def test_any_bytes_parse_to_a_link_or_none_and_nothing_else(data: bytes) -> None:
    link = parse_link(data)
    if link is not None:
        for name in ("IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_CARRIER", "IFLA_MASTER", "IFLA_MAX_MTU"):
            link.get_attr(name)


def error(code: int, sequence: int = 1) -> bytes:
    return nlmsg(NLMSG_ERROR, struct.pack("=i", -code) + b"\0" * 16, sequence=sequence)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (error(errno.ENODEV), errno.ENODEV),
        (error(errno.EEXIST), errno.EEXIST),
        (nlmsg(NLMSG_DONE, struct.pack("=i", -errno.EINTR)), errno.EINTR),
        (nlmsg(NLMSG_ERROR, struct.pack("=i", 5)), errno.EBADMSG),  # a positive code is no errno
        (nlmsg(NLMSG_ERROR, b""), errno.EBADMSG),
    ],
)
def test_the_kernels_refusal_is_a_netlink_error_with_its_errno_and_reason(data: bytes, code: int) -> None:
    with pytest.raises(NetlinkError) as caught:
        list(replies(data))
    assert caught.value.code == code
    assert caught.value.args[1] == os.strerror(code)  # what boot.net's messages quote


def test_an_acknowledgement_and_the_end_of_a_dump_end_the_answer() -> None:
    data = nlmsg(RTM_NEWLINK, link_body(1)) + nlmsg(NLMSG_DONE, u32(0)) + error(0)
    assert [kind for kind, _payload in replies(data)] == [RTM_NEWLINK, NLMSG_DONE, NLMSG_ERROR]


# ---- the exchange's bounds (a socket pair stands in for the kernel) ----------------------------------------------


class Peer:
    """Rtnl over one end of a datagram socket pair; the test plays the kernel on the other."""

    def __init__(self, timeout: float = 0.2) -> None:
        self.rtnl = Rtnl(timeout=timeout)
        self.rtnl._sock.close()
        self.rtnl._sock, self.kernel = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.rtnl._sock.settimeout(timeout)

    def close(self) -> None:
        self.rtnl.close()
        self.kernel.close()


def test_a_kernel_that_never_answers_is_a_named_timeout_not_a_hang() -> None:
    peer = Peer()
    try:
        with pytest.raises(NetlinkError) as caught:
            peer.rtnl.link("set", index=1, state="up")
        assert caught.value.code == errno.ETIMEDOUT
        assert "no answer from the kernel" in caught.value.args[1]
    finally:
        peer.close()


def test_a_dump_that_never_ends_stops_after_max_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rtnl, "MAX_MESSAGES", 50)
    peer = Peer()
    try:
        for _ in range(60):
            peer.kernel.send(nlmsg(RTM_NEWLINK, link_body(1, 0, rta(IFLA_IFNAME, b"x\0")), flags=NLM_F_MULTI))
        assert len(peer.rtnl.get_links()) == 50
    finally:
        peer.close()


def test_replies_to_an_earlier_request_are_skipped() -> None:
    peer = Peer()
    try:
        peer.kernel.send(error(errno.ENODEV, sequence=77))  # an answer nobody waits for any more
        peer.kernel.send(error(0, sequence=1))
        peer.rtnl.link("set", index=1, mtu=1400)
    finally:
        peer.close()


def test_a_reply_whose_length_does_not_fit_is_a_netlink_error() -> None:
    peer = Peer()
    try:
        peer.kernel.send(struct.pack("=IHHII", 400, RTM_NEWLINK, 0, 1, 0) + b"\0" * 8)
        with pytest.raises(NetlinkError) as caught:
            peer.rtnl.get_links(1)
        assert caught.value.code == errno.EBADMSG
    finally:
        peer.close()


# ---- the real kernel --------------------------------------------------------------------------------------------

READ_BOTH = textwrap.dedent(
    """
    import json, socket
    from pyroute2.iproute.linux import IPRoute
    from boot.net.rtnl import NetlinkError, Rtnl

    def view(msg):
        info = msg.get_attr("IFLA_LINKINFO")
        return {
            "index": msg["index"], "flags": msg["flags"], "type": msg["ifi_type"],
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
            **{name: msg.get_attr(name) for name in (
                "IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_CARRIER", "IFLA_MAX_MTU", "IFLA_MASTER")},
        }

    out = {}
    with IPRoute() as ipr:
        out["pyroute2"] = sorted((view(m) for m in ipr.get_links()), key=lambda v: v["index"])
    with Rtnl() as r:
        out["rtnl"] = sorted((view(m) for m in r.get_links()), key=lambda v: v["index"])
        [p0] = r.link_lookup(ifname="p0")
        out["one"] = view(r.get_links(p0)[0])
        out["missing"] = []
        for call in (lambda: r.get_links(99999), lambda: r.route("get", dst="203.0.113.9")):
            try:
                call()
            except NetlinkError as exc:
                out["missing"].append([exc.code, exc.args[1]])
        r.link("set", index=p0, mtu=1400)
        r.link("set", index=p0, address="52:54:00:aa:bb:cc")
        r.link("set", index=p0, ifname="lan0")
        r.link("set", index=p0, state="up")
        r.addr("replace", index=p0, address="10.9.0.1", prefixlen=24, family=socket.AF_INET, broadcast="10.9.0.255")
        r.addr("replace", index=p0, address="10.9.0.1", prefixlen=24, family=socket.AF_INET, broadcast="10.9.0.255")
        r.addr("replace", index=p0, address="2001:db8:9::1", prefixlen=64, family=socket.AF_INET6)
        r.addr("replace", index=p0, address="2001:db8:9::2", prefixlen=64, family=socket.AF_INET6)
        r.addr("del", index=p0, address="2001:db8:9::2", prefixlen=64, family=socket.AF_INET6)
        r.route("replace", dst="198.51.100.1", dst_len=32, oif=p0, scope=253, family=socket.AF_INET)
        r.route("replace", dst="0.0.0.0", dst_len=0, gateway="198.51.100.1", oif=p0, family=socket.AF_INET)
        r.route("replace", dst="::", dst_len=0, gateway="2001:db8:9::fe", oif=p0, family=socket.AF_INET6)
        out["reachable"] = bool(r.route("get", dst="203.0.113.9"))
        r.link("add", ifname="v0", kind="veth", peer="v1")  # pyroute2's, opened on first use
        try:
            r.link("add", ifname="x0", kind="no-such-kind")
        except NetlinkError as exc:
            out["delegated_error"] = exc.code
    print(json.dumps(out))
    """
)


@pytest.fixture
def namespace():
    reason = netns.can_make_namespaces()
    if reason:
        pytest.skip(reason)
    with netns.namespace("pyirtnl") as ns:
        ns.ip("link", "add", "name", "p0", "type", "veth", "peer", "name", "p1")
        ns.ip("link", "set", "p1", "up")
        yield ns


def test_rtnl_reads_and_changes_the_kernels_links_as_iproute_does(namespace) -> None:
    ran = namespace.run(netns.PYTHON, "-c", READ_BOTH, check=False, timeout=60)
    assert ran.returncode == 0, ran.stderr
    out = json.loads(ran.stdout)
    assert out["rtnl"] == out["pyroute2"]  # every link, every field the bring-up reads
    assert {link["IFLA_IFNAME"] for link in out["rtnl"]} >= {"lo", "p0", "p1"}
    assert out["one"] == next(link for link in out["rtnl"] if link["IFLA_IFNAME"] == "p0")
    assert out["missing"] == [
        [errno.ENODEV, os.strerror(errno.ENODEV)],
        [errno.ENETUNREACH, os.strerror(errno.ENETUNREACH)],
    ]
    assert out["reachable"] is True
    assert out["delegated_error"] > 0  # pyroute2's refusal, as our NetlinkError

    [lan] = namespace.ip_json("-d", "link", "show", "dev", "lan0")
    assert (lan["mtu"], lan["address"], "UP" in lan["flags"]) == (1400, "52:54:00:aa:bb:cc", True)
    addresses = {
        (a["local"], a["prefixlen"], a.get("broadcast"))
        for a in namespace.ip_json("addr", "show", "dev", "lan0")[0]["addr_info"]
    }
    assert ("10.9.0.1", 24, "10.9.0.255") in addresses
    assert ("2001:db8:9::1", 64, None) in addresses
    assert not any(local == "2001:db8:9::2" for local, _len, _brd in addresses)
    routes = namespace.ip_json("route", "show", "table", "main")
    assert {"dst": "default", "gateway": "198.51.100.1", "dev": "lan0", "protocol": "static", "flags": []} in [
        {k: r.get(k) for k in ("dst", "gateway", "dev", "protocol", "flags")} for r in routes
    ]
    assert any(r["dst"] == "198.51.100.1" and r.get("scope") == "link" for r in routes)
    [default6] = [r for r in namespace.ip_json("-6", "route", "show", "default")]
    assert (default6["gateway"], default6["dev"], default6["protocol"]) == ("2001:db8:9::fe", "lan0", "static")
    assert {link["ifname"] for link in namespace.ip_json("link", "show")} >= {"v0", "v1"}
