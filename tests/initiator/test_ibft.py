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
from tests.ibft_encoder import (
    control_slots,
    encode_ibft,
    fix_checksum,
    secret_values,
    set_slot,
    string_pairs,
    with_marker_secrets,
)

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
    assert list(out) == ["source", "oem_id", "oem_table_id", "initiator", "nics", "targets", "warnings"]
    assert out["warnings"] == []
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
    assert "\\x01" not in str(caught.value) and "byte" not in str(caught.value)  # not even where or what


# ---- secrets: no string, error or warning ever shows a secret's bytes -------------------------------------------

MARKER = "JKQVWXZ"  # secrets are written in these letters only, which nothing else in any output uses
NAME_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789.:-"
SECRET_FIELDS = ("chap_secret", "reverse_chap_secret")


def leaked(text: str, secrets: list[bytes]) -> str | None:
    """The first 4-character piece of a secret found in `text`, if any."""
    for secret in secrets:
        plain = secret.decode("utf-8", "replace")
        for i in range(len(plain) - 3):
            if plain[i : i + 4] in text:
                return plain[i : i + 4]
    return None


def everything_printed(table: Ibft) -> str:
    """All a parsed table can show without --show-secrets: repr, JSON and warnings."""
    return "\n".join([repr(table), json.dumps(table.to_json(), ensure_ascii=False), *table.warnings])


names = st.text(NAME_CHARS, min_size=1, max_size=40)
marker_secrets = st.text(MARKER, min_size=4, max_size=24)


@st.composite
def chap_tables(draw) -> bytes:
    """Random tables where every target has CHAP (half of them mutual), secrets in MARKER letters."""
    nic_count = draw(st.integers(1, 3))
    nics = [_nic(i, hostname=draw(st.none() | names)) for i in range(nic_count)]
    targets = []
    for i in range(draw(st.integers(1, 3))):
        mutual = draw(st.booleans())
        targets.append(
            _target(
                i,
                name=draw(names),
                nic_index=draw(st.integers(0, nic_count - 1)),
                chap_type=ChapType.MUTUAL if mutual else ChapType.CHAP,
                chap_name=draw(names),
                chap_secret=Secret(draw(marker_secrets)),
                reverse_chap_name=draw(names) if mutual else None,
                reverse_chap_secret=Secret(draw(marker_secrets)) if mutual else None,
            )
        )
    return encode_ibft(IbftInitiator(0, BOTH, draw(names)), nics, targets)


REAL_MARKED = [with_marker_secrets(p.read_bytes()) for p in ALL_TABLES]
tables_with_secrets = st.one_of(chap_tables(), st.sampled_from(REAL_MARKED))


def _is_secret(field: str) -> bool:
    return field.endswith(SECRET_FIELDS)


@st.composite
def mutated_tables(draw, mode: str) -> tuple[bytes, bytes]:
    """(original, mutated): u16 length/offset fields moved by a little or set to anything, checksum fixed.

    mode "names": any number of the non-secret strings' pairs; "one": exactly one field of any kind (a secret's
    pair, a control slot, a structure length); "any": up to six fields of any kind.
    """
    raw = draw(tables_with_secrets)
    out = bytearray(raw)
    pairs = string_pairs(raw)
    fields = {f"{name}.{part}": at + (2 if part == "offset" else 0) for name, at in pairs.items()
              for part in ("length", "offset")}  # fmt: skip
    if mode != "names":
        offsets = control_slots(raw)
        fields |= {f"control.slot{i}": CONTROL + 8 + 2 * i for i in range(len(offsets))}
        fields |= {f"slot{i}.structure_length": o + 2 for i, o in enumerate(offsets) if o}
    else:
        fields = {f: at for f, at in fields.items() if not _is_secret(f.rsplit(".", 1)[0])}
    count = 1 if mode == "one" else draw(st.integers(1, 6 if mode == "any" else 4))
    for _ in range(count):
        at = fields[draw(st.sampled_from(sorted(fields)))]
        old = struct.unpack_from("<H", out, at)[0]
        new = draw(st.integers(-24, 24).map(lambda d, old=old: old + d) | st.integers(0, len(raw) + 64))
        struct.pack_into("<H", out, at, new % 0x10000)
    return raw, fix_checksum(out)


@pytest.mark.parametrize("mode", ["names", "one", "any"])
@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_mutated_lengths_and_offsets_never_show_a_secret(mode, data):
    original, raw = data.draw(mutated_tables(mode))
    secrets = secret_values(original)
    assert secrets or original in REAL_MARKED
    try:
        table = parse_ibft(raw)
    except IbftError as exc:
        assert exc.field and leaked(str(exc), secrets) is None, str(exc)
        return
    if mode == "any":
        # Several fields at once can orphan a secret (move its pair away) and aim a name at its old bytes: the
        # table then says those bytes are a name, and no parser can know better. What it declares a secret
        # still prints as *** only.
        for target in table.to_json()["targets"]:
            assert {target["chap_secret"], target["reverse_chap_secret"]} <= {"***", None}
        return
    assert leaked(everything_printed(table), secrets) is None


@pytest.mark.parametrize("raw", REAL_MARKED, ids=[p.name for p in ALL_TABLES])
def test_every_string_running_into_its_neighbour_is_refused_by_name(raw):
    """The class of the reported defect on the real iPXE layouts: each non-secret string's length one, two, ...
    40 bytes too long, or its offset a few bytes off. Each parses to the same value (the NUL terminator is
    dropped) or fails naming that string, and no secret byte is shown."""
    secrets = secret_values(raw)
    for field, at in string_pairs(raw).items():
        length, offset = struct.unpack_from("<HH", raw, at)
        if _is_secret(field) or not length:
            continue
        for new_length, new_offset in [(length + d, offset) for d in range(1, 41)] + [
            (length, offset + d) for d in range(-8, 9) if d
        ]:
            bad = bytearray(raw)
            struct.pack_into("<HH", bad, at, new_length, new_offset)
            try:
                table = parse_ibft(fix_checksum(bad))
            except IbftError as exc:
                assert exc.field.startswith(field), (field, str(exc))
                assert leaked(str(exc), secrets) is None, str(exc)
                assert f"{new_offset:#x}" in str(exc) or "past the table's end" in str(exc), str(exc)
                continue
            assert leaked(everything_printed(table), secrets) is None


@pytest.mark.parametrize("field", ["target0.name", "target0.chap_name", "target0.reverse_chap_name"])
def test_a_string_over_a_secret_is_refused_naming_both(field):
    target = _target(0, chap_type=ChapType.MUTUAL, chap_name="user", chap_secret=Secret("QZXJKQZXJK"),
                     reverse_chap_name="tgt", reverse_chap_secret=Secret("WVWVWVWVWVWV"))  # fmt: skip
    raw = encode_ibft(INITIATOR, [_nic(0)], [target])
    pairs = string_pairs(raw)
    secret_length, secret_offset = struct.unpack_from("<HH", raw, pairs["target0.chap_secret"])
    bad = bytearray(raw)
    struct.pack_into("<HH", bad, pairs[field], secret_length, secret_offset)  # exactly the secret: valid text
    with pytest.raises(IbftError) as caught:
        parse_ibft(fix_checksum(bad))
    assert caught.value.field == field
    assert "overlap target0.chap_secret" in str(caught.value) and f"{secret_offset:#x}" in str(caught.value)
    assert "QZXJ" not in str(caught.value)


def test_the_reported_case_chap_name_one_byte_into_the_secret():
    raw = with_marker_secrets((FIXTURES / "ipxe-chap.bin").read_bytes())
    at = string_pairs(raw)["target0.chap_name"]
    length, offset = struct.unpack_from("<HH", raw, at)
    bad = bytearray(raw)
    struct.pack_into("<H", bad, at, length + 2)  # "bootuser", its NUL, and the secret's first byte
    with pytest.raises(IbftError) as caught:
        parse_ibft(fix_checksum(bad))
    assert str(caught.value) == (
        f"target0.chap_name: the {length + 2} bytes at offset {offset:#x} overlap target0.chap_secret "
        f"(at {offset + length + 1:#x}); check target0.chap_name_length and target0.chap_name_offset"
    )


# ---- control characters in strings ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b", "\x1b]0;owned\x07", "\x1b[2J", "\n", "\x7f", "\x85", "\x9b"])
@pytest.mark.parametrize("where", ["initiator.name", "nic0.hostname", "target0.name", "target0.chap_name"])
def test_control_characters_are_refused_naming_field_and_byte(bad, where):
    text = "abc" + bad + "def"
    nic = _nic(0, hostname=text if where == "nic0.hostname" else None)
    initiator = IbftInitiator(0, BOTH, text if where == "initiator.name" else "iqn.x")
    target = _target(0, chap_type=ChapType.CHAP, chap_name=text if where == "target0.chap_name" else "u",
                     chap_secret=Secret("QZXJ"), **({"name": text} if where == "target0.name" else {}))  # fmt: skip
    raw = encode_ibft(initiator, [nic], [target])
    with pytest.raises(IbftError) as caught:
        parse_ibft(raw)
    message = str(caught.value)
    assert caught.value.field == where
    length, offset = struct.unpack_from("<HH", raw, string_pairs(raw)[where])
    expected = f"the {length} bytes at offset {offset:#x} hold a control character ({ord(bad[0]):#04x} at byte 3)"
    assert expected in message
    assert "abc" not in message and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in message)


# ---- consistency warnings ---------------------------------------------------------------------------------------

ONE_NIC = encode_ibft(INITIATOR, [_nic(0)], [_target(0)])
SLOTS = struct.unpack_from("<5H", ONE_NIC, CONTROL + 8)  # initiator, nic0, target0, nic1, target1


@pytest.mark.parametrize(
    ("raw", "warnings"),
    [
        (encode_ibft(INITIATOR, [_nic(0)], [_target(0), _target(1, name="iqn.2026-11.test:t0")]),
         ["target1: the same target (name, address, port and LUN) as target0"]),
        (encode_ibft(INITIATOR, [_nic(0)], [_target(0, nic_index=3)]),
         ["target0.nic_index: 3 names no NIC in the table (its NIC indexes: 0)"]),
        (encode_ibft(INITIATOR, [_nic(0), _nic(1, flags=IbftFlags(0))], [_target(0, nic_index=1)]),
         ["target0.nic_index: 1 names a NIC not marked valid or boot-selected"]),
        (encode_ibft(INITIATOR, [], [_target(0)]), ["target0.nic_index: 0 names no NIC: the table has none in use"]),
        (encode_ibft(INITIATOR, [_nic(0), _nic(0, mac="52:54:00:00:00:01")], [_target(0)]),
         ["nic1.index: 0, the same as nic0's; a target's NIC index 0 means nic0"]),
        (encode_ibft(INITIATOR, [_nic(0)], [_target(0), _target(0, name="iqn.2026-11.test:other")]),
         ["target1.index: 0, the same as target0's"]),
        (set_slot(set_slot(ONE_NIC, 1, SLOTS[2]), 2, SLOTS[1]),
         ["control.offset1: points to a target structure in a slot meant for a NIC; read as a target",
          "control.offset2: points to a NIC structure in a slot meant for a target; read as a NIC"]),
        (set_slot(ONE_NIC, 3, SLOTS[0]),
         ["control.offset3: a second initiator structure (the first is at control.initiator_offset); ignored"]),
        (set_slot(ONE_NIC, 4, SLOTS[2]),  # the same structure listed twice
         ["target1: the same target (name, address, port and LUN) as target0", "target1.index: 0, the same as "
          "target0's"]),
        (encode_ibft(INITIATOR, [_nic(0)], [_target(0), _target(1, flags=IbftFlags(0), nic_index=9,
                                                                 name="iqn.2026-11.test:t0")]), []),  # unused
    ],
)  # fmt: skip
def test_inconsistent_tables_parse_with_warnings_naming_the_field(raw, warnings):
    table = parse_ibft(raw)
    assert list(table.warnings) == warnings
    assert table.to_json()["warnings"] == warnings


def test_misplaced_structures_are_still_read():
    table = parse_ibft(set_slot(set_slot(ONE_NIC, 1, SLOTS[2]), 2, SLOTS[1]))
    assert (len(table.nics), len(table.targets)) == (1, 1)
    assert table.targets[0] == _target(0) and table.nics[0] == _nic(0)


@pytest.mark.parametrize("raw", [p.read_bytes() for p in ALL_TABLES] + [
    encode_ibft(INITIATOR, *VARIANTS[v]) for v in sorted(VARIANTS)
], ids=[p.name for p in ALL_TABLES] + sorted(VARIANTS))  # fmt: skip
def test_consistent_tables_have_no_warnings(raw):
    assert parse_ibft(raw).warnings == ()


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
