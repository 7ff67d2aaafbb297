"""initiator.ibft: real iPXE tables, encoder round trips for what iPXE does not write, and hostile bytes."""

from __future__ import annotations

import ipaddress
import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import IbftError
from initiator.ibft import (
    ChapType,
    Ibft,
    IbftFlags,
    IbftInitiator,
    IbftNic,
    IbftTarget,
    Origin,
    address_from_bytes,
    format_pci_bdf,
    lun_from_bytes,
    lun_to_bytes,
    parse_ibft,
)
from initiator.secret import Secret
from tests.ibft_encoder import encode_ibft, fix_checksum

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ibft"
ALL_TABLES = sorted(FIXTURES.glob("*.bin"))
IP = ipaddress.ip_address
BOTH = IbftFlags.VALID | IbftFlags.BOOT_SELECTED


def test_the_fixture_directory_has_the_ipxe_tables():
    assert {p.name for p in ALL_TABLES} >= {"ipxe-dhcp.bin", "ipxe-chap.bin"}


@pytest.mark.parametrize("path", ALL_TABLES, ids=lambda p: p.name)
def test_every_captured_table_parses(path):
    table = parse_ibft(path.read_bytes(), str(path))
    assert table.initiator is not None and table.initiator.name
    assert table.nics and table.targets
    assert all(t.name for t in table.targets)


def _matches(expected: object, actual: object, where: str) -> int:
    """Compare the sidecar's values with ours where the keys agree; returns how many leaves were compared."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        return sum(_matches(v, actual[k], f"{where}.{k}") for k, v in expected.items() if k in actual)
    if isinstance(expected, list) and isinstance(actual, list):
        assert len(expected) == len(actual), where
        return sum(_matches(e, a, f"{where}[{i}]") for i, (e, a) in enumerate(zip(expected, actual, strict=True)))
    assert expected == actual, where
    return 1


def sidecar_expectations(doc: dict) -> dict:
    """The sidecar of vm-tests/harness/capture_ibft.py (what the iPXE script set) in our JSON's terms."""
    out = {k: doc[k] for k in ("initiator", "targets") if k in doc}
    nic = doc.get("nic")
    if nic:
        dns = nic.get("dns")
        out["nics"] = [
            {
                "ip": nic.get("ip"),
                "prefix": ipaddress.IPv4Network(f"0.0.0.0/{nic['netmask']}").prefixlen if nic.get("netmask") else None,
                "gateway": nic.get("gateway"),
                "dns": [dns] if isinstance(dns, str) else dns,
                "origin": {"dhcp": Origin.DHCP, "static": Origin.MANUAL}[nic["origin"]],
            }
        ]
    return out


SIDECARS = [p for p in ALL_TABLES if p.with_suffix(".json").exists()]


@pytest.mark.parametrize("path", SIDECARS or [None], ids=lambda p: getattr(p, "name", "-"))
def test_captured_tables_match_their_sidecars(path):
    if path is None:
        pytest.skip("no sidecar *.json next to the captured tables yet (vm-tests/harness/capture_ibft.py)")
    expected = sidecar_expectations(json.loads(path.with_suffix(".json").read_text()))
    actual = parse_ibft(path.read_bytes(), str(path)).to_json(show_secrets=True)
    assert _matches(expected, actual, path.name) >= 4


IPXE_DHCP_TARGET = IbftTarget(
    index=0,
    flags=BOTH,
    ip=IP("10.0.2.2"),
    port=3260,
    lun=1,
    name="iqn.2026-11.test:root",
    nic_index=0,
    chap_type=ChapType.NONE,
    lun_bytes=bytes([0, 1, 0, 0, 0, 0, 0, 0]),
)
IPXE_NIC = IbftNic(
    index=0,
    flags=BOTH,
    ip=IP("10.0.2.15"),
    prefix=24,
    origin=Origin.DHCP,
    gateway=IP("10.0.2.2"),
    dns=(IP("10.0.2.3"),),
    dhcp_server=IP("10.0.2.2"),
    vlan=0,
    mac="52:54:00:12:34:56",
    pci_bdf="00:03.0",
    hostname=None,
)


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("ipxe-dhcp.bin", IPXE_DHCP_TARGET),
        (
            "ipxe-chap.bin",
            IbftTarget(
                index=0,
                flags=BOTH,
                ip=IP("10.0.2.2"),
                port=3260,
                lun=1,
                name="iqn.2026-11.test:chap",
                nic_index=0,
                chap_type=ChapType.CHAP,
                chap_name="bootuser",
                chap_secret=Secret("Secret-12345"),
                lun_bytes=bytes([0, 1, 0, 0, 0, 0, 0, 0]),
            ),
        ),
    ],
)
def test_ipxe_tables_field_by_field(name, target):
    table = parse_ibft((FIXTURES / name).read_bytes(), name)
    assert (table.oem_id, table.oem_table_id, table.source) == ("FENSYS", "iPXE", name)
    assert table.initiator == IbftInitiator(index=0, flags=BOTH, name="iqn.2026-11.test:client")
    assert table.nics == (IPXE_NIC,)
    assert table.targets == (target,)
    assert table.nic(0) == IPXE_NIC and table.nic(1) is None


def test_json_is_the_contracts_shape_and_hides_secrets():
    table = parse_ibft((FIXTURES / "ipxe-chap.bin").read_bytes(), "x")
    out = table.to_json()
    assert list(out) == ["source", "oem_id", "oem_table_id", "initiator", "nics", "targets"]
    assert list(out["initiator"]) == ["name", "flags"]
    assert list(out["nics"][0]) == [
        "index", "flags", "ip", "prefix", "origin", "gateway", "dns", "dhcp_server", "vlan", "mac", "pci_bdf",
        "hostname",
    ]  # fmt: skip
    assert list(out["targets"][0]) == [
        "index", "flags", "ip", "port", "lun", "name", "nic_index", "chap_type", "chap_name", "chap_secret",
        "reverse_chap_name", "reverse_chap_secret",
    ]  # fmt: skip
    assert out["targets"][0]["chap_secret"] == "***"
    assert "Secret-12345" not in json.dumps(out)
    assert table.to_json(show_secrets=True)["targets"][0]["chap_secret"] == "Secret-12345"
    assert out["targets"][0]["reverse_chap_secret"] is None


# ---- encoder round trips: what iPXE never writes ---------------------------------------------------------------


def _nic(index: int, **kw) -> IbftNic:
    base = dict(
        index=index,
        flags=BOTH,
        ip=IP("192.0.2.10"),
        prefix=24,
        origin=Origin.MANUAL,
        gateway=IP("192.0.2.1"),
        dns=(IP("192.0.2.53"),),
        dhcp_server=None,
        vlan=0,
        mac=f"52:54:00:00:00:{index:02x}",
        pci_bdf=None,
        hostname=None,
    )
    base.update(kw)
    return IbftNic(**base)


def _target(index: int, **kw) -> IbftTarget:
    lun = kw.pop("lun", 0)
    base = dict(
        index=index,
        flags=BOTH,
        ip=IP("192.0.2.1"),
        port=3260,
        lun=lun,
        lun_bytes=lun_to_bytes(lun),
        name=f"iqn.2026-11.test:t{index}",
        nic_index=0,
        chap_type=ChapType.NONE,
    )
    base.update(kw)
    return IbftTarget(**base)


INITIATOR = IbftInitiator(index=0, flags=BOTH, name="iqn.2026-11.test:init")
VARIANTS = {
    "ipv6-static": ([_nic(0, ip=IP("2001:db8::5"), prefix=64, gateway=IP("2001:db8::1"), dns=(IP("2001:db8::53"),))],
                    [_target(0, ip=IP("2001:db8::1"))]),
    "vlan-hostname-pci": ([_nic(0, vlan=42, hostname="client.example", pci_bdf="02:1f.7")], [_target(0)]),
    "mutual-chap": ([_nic(0)], [_target(0, chap_type=ChapType.MUTUAL, chap_name="u", chap_secret=Secret("s:@1"),
                                       reverse_chap_name="t", reverse_chap_secret=Secret("r" * 16))]),
    "two-nics-three-targets": (
        [_nic(0), _nic(1, ip=None, prefix=None, origin=Origin.DHCP, gateway=None, dns=())],
        [_target(0, lun=1), _target(1, nic_index=1, port=3261, lun=0x4005), _target(2, flags=IbftFlags(0))],
    ),
    "dhcp-ipv6-dns-only": ([_nic(0, ip=None, prefix=None, origin=Origin.DHCP, gateway=None,
                                 dns=(IP("2001:db8::53"), IP("192.0.2.53")))], [_target(0)]),
    "boot-selected-only": ([_nic(0, flags=IbftFlags.BOOT_SELECTED)], [_target(0, flags=IbftFlags.BOOT_SELECTED)]),
}  # fmt: skip


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_encoder_round_trip(variant):
    nics, targets = VARIANTS[variant]
    raw = encode_ibft(INITIATOR, nics, targets)
    table = parse_ibft(raw, "enc")
    assert table == Ibft(
        source="enc",
        oem_id="PYISCS",
        oem_table_id="TESTS",
        initiator=INITIATOR,
        nics=tuple(nics),
        targets=tuple(targets),
    )


def test_old_bift_signature_and_missing_initiator():
    table = parse_ibft(encode_ibft(None, [_nic(0)], [_target(0)], signature=b"BIFT"))
    assert table.initiator is None and table.to_json()["initiator"] is None
    assert len(table.nics) == 1


def test_trailing_bytes_after_the_table_are_ignored():
    raw = encode_ibft(INITIATOR, [_nic(0)], [_target(0)])
    assert parse_ibft(raw + b"\xff" * 100) == parse_ibft(raw)


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        (bytes(16), None),
        (bytes(10) + b"\xff\xff" + bytes(4), None),
        (bytes(10) + b"\xff\xff" + bytes([10, 0, 2, 15]), IP("10.0.2.15")),
        (IP("fe80::1").packed, IP("fe80::1")),
    ],
)
def test_addresses(raw, address):
    assert address_from_bytes(raw) == address


@pytest.mark.parametrize(
    ("raw", "lun"),
    [
        (bytes(8), 0),
        (bytes([0, 1, 0, 0, 0, 0, 0, 0]), 1),
        (bytes([0, 0xFF, 0, 0, 0, 0, 0, 0]), 255),
        (bytes([0x40, 0x05, 0, 0, 0, 0, 0, 0]), 0x4005),
        (bytes([0, 1, 0, 2, 0, 0, 0, 0]), 0x0002_0001),
    ],
)
def test_lun_conversions(raw, lun):
    assert lun_from_bytes(raw) == lun
    assert lun_to_bytes(lun) == raw


@pytest.mark.parametrize(("value", "text"), [(0, None), (0x18, "00:03.0"), (0x02FF, "02:1f.7")])
def test_pci_bdf(value, text):
    assert format_pci_bdf(value) == text


# ---- corrupt tables --------------------------------------------------------------------------------------------

GOOD = encode_ibft(INITIATOR, [_nic(0, hostname="h")], [_target(0, chap_type=ChapType.CHAP, chap_name="u",
                                                                  chap_secret=Secret("s"))])  # fmt: skip
CONTROL = 48
INIT_OFF = struct.unpack_from("<H", GOOD, CONTROL + 8)[0]
NIC_OFF = struct.unpack_from("<H", GOOD, CONTROL + 10)[0]
TGT_OFF = struct.unpack_from("<H", GOOD, CONTROL + 12)[0]


def _poke(offset: int, value: bytes, table: bytes = GOOD, checksum: bool = True) -> bytes:
    out = bytearray(table)
    out[offset : offset + len(value)] = value
    return fix_checksum(out) if checksum else bytes(out)


def _u16(v: int) -> bytes:
    return struct.pack("<H", v)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "header"),
        (GOOD[:47], "header"),
        (b"ABCD" + GOOD[4:], "signature"),
        (_poke(4, struct.pack("<I", 50)), "length"),
        (_poke(4, struct.pack("<I", len(GOOD) + 1)), "length"),
        (_poke(20, b"\x01", checksum=False), "checksum"),
        (_poke(10, b"\x07"), "oem_id"),
        (_poke(CONTROL, b"\x02"), "control.id"),
        (_poke(CONTROL + 2, _u16(17)), "control.length"),
        (_poke(CONTROL + 2, _u16(2000)), "control.length"),
        (_poke(CONTROL + 8, _u16(10)), "control.initiator_offset"),
        (_poke(CONTROL + 10, _u16(len(GOOD) - 3)), "control.offset1"),
        (_poke(CONTROL + 10, _u16(len(GOOD) + 10)), "control.offset1"),
        (_poke(NIC_OFF, b"\x09"), "control.offset1 -> id"),
        (_poke(NIC_OFF + 2, _u16(100)), "nic0.length"),
        (_poke(TGT_OFF + 2, _u16(56)), "target0.length"),
        (_poke(INIT_OFF + 2, _u16(70)), "initiator.length"),
        (_poke(INIT_OFF + 70, _u16(4000)), "initiator.name_offset"),
        (_poke(INIT_OFF + 72, _u16(len(GOOD) - 2)), "initiator.name_offset"),
        (_poke(INIT_OFF + 72, _u16(4)), "initiator.name_offset"),
        (_poke(TGT_OFF + 32, b"\x03"), "target0.chap_type"),
        (_poke(NIC_OFF + 22, b"\x21"), "nic0.prefix"),
        (_poke(NIC_OFF + 100, _u16(48)), "nic0.hostname"),  # the header's bytes: "PYISCS..." then NULs/controls
    ],
)
def test_corrupt_tables_name_the_field(raw, field):
    with pytest.raises(IbftError) as caught:
        parse_ibft(raw)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_too_many_structures_is_refused_before_any_is_read():
    nics = [_nic(i) for i in range(33)]
    with pytest.raises(IbftError) as caught:
        parse_ibft(encode_ibft(INITIATOR, nics, [_target(i) for i in range(33)]))
    assert caught.value.field == "control.length"
    assert "67 structures listed, at most 65" in str(caught.value)
    assert len(parse_ibft(encode_ibft(INITIATOR, nics[:32], [_target(i) for i in range(32)])).targets) == 32


def test_secret_never_in_an_error():
    target = _target(0, chap_type=ChapType.CHAP, chap_name="u", chap_secret=Secret("s\x01zqzq"))
    with pytest.raises(IbftError) as caught:
        parse_ibft(encode_ibft(INITIATOR, [_nic(0)], [target]))
    assert caught.value.field == "target0.chap_secret"
    assert "zqzq" not in str(caught.value)


# ---- hostile bytes ---------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_parse_or_raise_ibft_error(raw):
    try:
        parse_ibft(b"iBFT" + raw)
    except IbftError as exc:
        assert str(exc)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mutated_tables_parse_or_raise_ibft_error(pokes):
    raw = bytearray(GOOD)
    for offset, value in pokes:
        raw[offset] = value
    try:
        parse_ibft(fix_checksum(raw))
    except IbftError as exc:
        assert exc.field
