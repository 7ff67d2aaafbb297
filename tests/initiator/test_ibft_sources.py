"""initiator.ibft_sources: the sysfs directory as iscsi_ibft writes it, a memory image scanned like /dev/mem,
and the order in which sources are tried."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from initiator.errors import IbftError
from initiator.ibft import ChapType, Ibft, IbftFlags, IbftNic, IbftTarget, Origin, parse_ibft
from initiator.ibft_sources import (
    SCAN_START,
    find_ibft,
    find_in_memory,
    load_ibft,
    memory_candidates,
    parse_sysfs_lun,
    read_source,
    read_sysfs,
    scan_memory,
)
from initiator.record import replace
from initiator.secret import Secret
from tests.ibft_encoder import encode_ibft, fix_checksum

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ibft"
CHAP_TABLE = (FIXTURES / "ipxe-chap.bin").read_bytes()
IP = ipaddress.ip_address


# ---- a sysfs tree written the way drivers/firmware/iscsi_ibft.c prints it --------------------------------------


def _addr(address) -> str:
    # %pI4 for IPv4-mapped addresses, %pI6 (eight groups, zero-padded) for the rest
    return f"{address}\n" if address.version == 4 else f"{address.exploded}\n"


def write_sysfs(table: Ibft, root: Path) -> None:
    def put(directory: Path, name: str, text: str | None) -> None:
        if text is not None:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / name).write_text(text)

    header = root / "acpi_header"
    put(header, "signature", "iBFT\n")
    put(header, "oem_id", f"{table.oem_id}\n")
    put(header, "oem_table_id", f"{table.oem_table_id}\n")
    if table.initiator is not None:
        d = root / "initiator"
        put(d, "index", f"{table.initiator.index}\n")
        put(d, "flags", f"{int(table.initiator.flags)}\n")
        put(d, "initiator-name", f"{table.initiator.name}\n" if table.initiator.name else None)
    for nic in table.nics:
        d = root / f"ethernet{nic.index}"
        put(d, "index", f"{nic.index}\n")
        put(d, "flags", f"{int(nic.flags)}\n")
        if nic.ip is not None:
            put(d, "ip-addr", _addr(nic.ip))
            put(d, "prefix-len", f"{nic.prefix}\n")
            if nic.ip.version == 4:
                mask = ipaddress.IPv4Network(f"0.0.0.0/{nic.prefix}").netmask
                put(d, "subnet-mask", str(mask))  # no newline: the kernel's quirk
        put(d, "origin", f"{nic.origin}\n")
        put(d, "gateway", _addr(nic.gateway) if nic.gateway else None)
        for name, address in zip(("primary-dns", "secondary-dns"), nic.dns, strict=False):
            put(d, name, _addr(address))
        put(d, "dhcp", _addr(nic.dhcp_server) if nic.dhcp_server else None)
        put(d, "vlan", f"{nic.vlan}\n")
        put(d, "mac", f"{nic.mac}\n")
        put(d, "hostname", f"{nic.hostname}\n" if nic.hostname else None)
    for t in table.targets:
        d = root / f"target{t.index}"
        put(d, "index", f"{t.index}\n")
        put(d, "flags", f"{int(t.flags)}\n")
        put(d, "ip-addr", _addr(t.ip) if t.ip else None)
        put(d, "port", f"{t.port}\n")
        put(d, "lun", "".join(f"{b:x}" for b in t.lun_bytes) + "\n")
        put(d, "nic-assoc", f"{t.nic_index}\n")
        put(d, "chap-type", f"{int(t.chap_type)}\n")
        put(d, "target-name", f"{t.name}\n" if t.name else None)
        put(d, "chap-name", f"{t.chap_name}\n" if t.chap_name else None)
        put(d, "chap-secret", f"{t.chap_secret.reveal()}\n" if t.chap_secret else None)
        put(d, "rev-chap-name", f"{t.reverse_chap_name}\n" if t.reverse_chap_name else None)
        put(d, "rev-chap-name-secret", f"{t.reverse_chap_secret.reveal()}\n" if t.reverse_chap_secret else None)


def _lossless(table: Ibft, source: str) -> Ibft:
    """What sysfs keeps of a table: no PCI address, no LUN bytes, no revision."""
    return replace(
        table,
        source=source,
        nics=tuple(replace(n, pci_bdf=None) for n in table.nics),
        targets=tuple(replace(t, lun_bytes=bytes(8)) for t in table.targets),
        revision=1,
    )


def _lun_free(table: Ibft) -> Ibft:
    return replace(table, targets=tuple(replace(t, lun_bytes=bytes(8)) for t in table.targets))


BOTH = IbftFlags.VALID | IbftFlags.BOOT_SELECTED
RICH_BYTES = encode_ibft(
        parse_ibft(CHAP_TABLE).initiator,
        [
            IbftNic(0, BOTH, IP("192.0.2.10"), 24, Origin.MANUAL, IP("192.0.2.1"), (IP("192.0.2.53"), IP("192.0.2.54")),
                    None, 7, "52:54:00:aa:bb:cc", "00:03.0", "client.example"),
            IbftNic(1, BOTH, IP("2001:db8::10"), 64, Origin.MANUAL, IP("2001:db8::1"), (IP("2001:db8::53"),), None, 0,
                    "52:54:00:aa:bb:cd", None, None),
        ],
        [
            IbftTarget(0, BOTH, IP("192.0.2.1"), 3260, 1, "iqn.2026-11.test:a", 0, ChapType.MUTUAL, "u",
                       Secret("pw:@x"), "t", Secret("rpw")),
            IbftTarget(1, BOTH, IP("2001:db8::1"), 3261, 0x4005, "iqn.2026-11.test:b", 1, ChapType.NONE),
        ],
    )  # fmt: skip
RICH = parse_ibft(RICH_BYTES)


@pytest.mark.parametrize("table", [parse_ibft(CHAP_TABLE), RICH], ids=["ipxe-chap", "rich"])
def test_sysfs_tree_reads_back_what_the_table_holds(tmp_path, table):
    write_sysfs(table, tmp_path)
    assert _lun_free(read_sysfs(str(tmp_path))) == _lossless(table, str(tmp_path))


def test_sysfs_subnet_mask_without_prefix_len(tmp_path):
    write_sysfs(parse_ibft(CHAP_TABLE), tmp_path)
    (tmp_path / "ethernet0" / "prefix-len").unlink()
    assert read_sysfs(str(tmp_path)).nics[0].prefix == 24


@pytest.mark.parametrize(
    ("text", "lun"),
    [
        ("00000000", 0),
        ("01000000", 1),
        ("0f000000", 15),
        ("010000000", 16),
        ("0ff000000", 255),
        ("405000000", 0x4005),
        ("4010000000", 0x4010),
        ("0001000000000000", 1),
    ],
)
def test_sysfs_lun_as_the_kernel_prints_it(text, lun):
    assert parse_sysfs_lun(text) == lun


@pytest.mark.parametrize("text", ["", "xyz", "1234567", "ff0000"])
def test_sysfs_lun_ambiguous_or_bad(text):
    with pytest.raises(IbftError):
        parse_sysfs_lun(text)


@pytest.mark.parametrize(
    ("directory", "name", "content", "reason"),
    [
        ("ethernet0", "mac", "52:54:00\n", "not a MAC"),
        ("ethernet0", "ip-addr", "10.0.2\n", "not an IP address"),
        ("ethernet0", "vlan", "abc\n", "not a decimal"),
        ("ethernet0", "prefix-len", "40\n", "prefix longer"),
        ("target0", "chap-type", "7\n", "must be 0, 1 or 2"),
        ("target0", "port", "70000\n", "out of range"),
        ("target0", "lun", "zz\n", "not hexadecimal"),
        ("initiator", "initiator-name", b"\xff\xfe\n", "not valid UTF-8"),
    ],
)
def test_sysfs_bad_files_name_the_path(tmp_path, directory, name, content, reason):
    write_sysfs(parse_ibft(CHAP_TABLE), tmp_path)
    path = tmp_path / directory / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(IbftError) as caught:
        read_sysfs(str(tmp_path))
    assert caught.value.field == str(path)
    assert reason in str(caught.value)


def test_sysfs_chap_secret_never_in_an_error(tmp_path):
    write_sysfs(parse_ibft(CHAP_TABLE), tmp_path)
    table = read_sysfs(str(tmp_path))
    assert "Secret-12345" not in repr(table)
    assert table.targets[0].chap_secret == Secret("Secret-12345")


@pytest.mark.parametrize("name", ["initiator/initiator-name", "ethernet0/hostname", "target0/target-name",
                                  "target0/chap-name", "acpi_header/oem_id"])  # fmt: skip
@pytest.mark.parametrize("bad", ["\x1b]0;owned\x07", "\x1b[2J", "\x9b2J", "\x85", "\nb", "\x7f", "\x00"])
def test_sysfs_strings_with_control_characters_are_refused(tmp_path, name, bad):
    write_sysfs(parse_ibft(CHAP_TABLE), tmp_path)
    (tmp_path / name).write_text(f"abc{bad}\n")
    with pytest.raises(IbftError) as caught:
        read_sysfs(str(tmp_path))
    message = str(caught.value)
    assert caught.value.field == str(tmp_path / name)
    assert f"holds a control character ({ord(bad[0]):#04x} at character 3)" in message
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in message)


MARKER = "JKQVWXZ"


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["chap-secret", "rev-chap-name-secret"]),
    st.lists(st.sampled_from([*MARKER, "\x1b", "\x00", "\x85", "\n", "\udc80", "\ufffd"]), min_size=4, max_size=40),
)
def test_sysfs_secret_files_never_show_in_an_error(name, pieces):
    """Whatever is wrong with a secret file (control characters, bytes that are not UTF-8), the error names the
    file and shows none of it: not the value, not where or which byte is bad."""
    import tempfile

    raw = "".join(pieces).encode("utf-8", "surrogateescape")
    with tempfile.TemporaryDirectory() as tmp:
        write_sysfs(parse_ibft(CHAP_TABLE), Path(tmp))
        (Path(tmp) / "target0" / name).write_bytes(raw)
        try:
            table = read_sysfs(tmp)
        except IbftError as exc:
            message = str(exc)
            assert exc.field == str(Path(tmp) / "target0" / name)
            assert "byte" not in message and "character (" not in message
            secret = "".join(pieces)
            assert not any(secret[i : i + 4] in message for i in range(len(secret) - 3) if secret[i : i + 4].isalpha())
            return
        assert "JKQ" not in repr(table) and "JKQ" not in str(table.to_json())


def test_sysfs_inconsistencies_are_warnings_naming_the_file(tmp_path):
    nic = IbftNic(0, BOTH, IP("192.0.2.10"), 24, Origin.MANUAL, None, (), None, 0, "52:54:00:aa:bb:cc", None, None)
    same = IbftTarget(0, BOTH, IP("192.0.2.1"), 3260, 0, "iqn.2026-11.test:a", 0, ChapType.NONE)
    table = replace(RICH, nics=(nic,), targets=(same, replace(same, index=1, nic_index=4)), warnings=())
    write_sysfs(table, tmp_path)
    assert read_sysfs(str(tmp_path)).warnings == (
        f"{tmp_path}/target1/nic-assoc: 4 names no NIC in the table (its NIC indexes: 0)",
        f"{tmp_path}/target1: the same target (name, address, port and LUN) as {tmp_path}/target0",
    )


# ---- /dev/mem ----------------------------------------------------------------------------------------------------


def _image(tmp_path: Path, placements: dict[int, bytes], size: int = 0x100000) -> Path:
    path = tmp_path / "mem"
    with open(path, "wb") as f:
        f.truncate(size)
        for address, data in placements.items():
            f.seek(address)
            f.write(data)
    return path


@pytest.mark.parametrize(
    ("address", "found"),
    [
        (0x9F000, True),  # where iPXE puts it under QEMU
        (0x80000, True),
        (0xFFF00 - 0x240, True),
        (0x9F008, False),  # not 16-byte aligned
        (0xA4000, False),  # inside the VGA hole
        (0x7FF00, False),  # below the window
    ],
)
def test_memory_scan(tmp_path, address, found):
    path = _image(tmp_path, {address: CHAP_TABLE})
    table = scan_memory(str(path))
    if found:
        assert table is not None and table.targets[0].name == "iqn.2026-11.test:chap"
        assert table.source == str(path)
    else:
        assert table is None


def test_memory_scan_skips_a_stray_signature_for_the_real_table(tmp_path):
    stray = b"iBFT" + (0x30).to_bytes(4, "little") + bytes(8)
    path = _image(tmp_path, {0x80010: stray, 0x9F000: CHAP_TABLE})
    assert scan_memory(str(path)).oem_id == "FENSYS"


def test_memory_scan_reports_a_corrupt_table(tmp_path):
    bad = bytearray(CHAP_TABLE)
    bad[0x100] ^= 0xFF
    path = _image(tmp_path, {0x9F000: bytes(bad)})
    with pytest.raises(IbftError) as caught:
        scan_memory(str(path))
    assert caught.value.field == "checksum"


def test_memory_scan_of_a_short_image(tmp_path):
    path = _image(tmp_path, {0x90000: CHAP_TABLE}, size=0x90000 + len(CHAP_TABLE))
    assert scan_memory(str(path)) is not None
    assert find_in_memory(bytes(64), SCAN_START) is None


BAIT = b"iBFT" + (0xFFF0).to_bytes(4, "little") + bytes(8)  # a signature claiming 64 KiB, nothing behind it


@pytest.mark.parametrize("real_at", [None, 0xE0000, 0xFFF00 - 0x240])
def test_a_memory_full_of_signatures_is_scanned_whole_and_quickly(tmp_path, real_at):
    """A signature every 16 bytes of the window, each claiming 64 KiB: 24K candidates, which summed one by one
    would be 1.5 GB of additions. Every one is looked at, and a real table behind them all is still found."""
    import time

    placements = {0x80000: BAIT * (0x20000 // 16), 0xC0000: BAIT * (0x40000 // 16)}
    if real_at is not None:
        placements[real_at] = CHAP_TABLE
    path = _image(tmp_path, placements)
    started = time.monotonic()
    if real_at is None:
        with pytest.raises(IbftError):  # some bait sums to 0 mod 256, and is reported for what is wrong with it
            scan_memory(str(path))
    else:
        assert scan_memory(str(path)).targets[0].name == "iqn.2026-11.test:chap"
    assert time.monotonic() - started < 5


def _bogus(length: int, control_id: int = 1) -> bytes:
    """A header that claims `length` bytes, and a control structure id, with nothing sensible behind it."""
    return b"iBFT" + length.to_bytes(4, "little") + bytes(40) + bytes([control_id])


def test_many_bogus_signatures_do_not_hide_the_real_table(tmp_path):
    # 200 aligned signatures with plausible lengths and wrong checksums, all below the table
    placements = {0x80000 + 0x100 * i: _bogus(0x200 + i) for i in range(200)}
    path = _image(tmp_path, placements | {0x9F000: CHAP_TABLE})
    assert scan_memory(str(path)).oem_id == "FENSYS"


def _with_valid_checksums(image: bytearray, positions: list[int]) -> None:
    """Fix the checksum byte of the candidate at each position, highest first (a lower one's range may cover
    the higher ones)."""
    for pos in sorted(positions, reverse=True):
        length = int.from_bytes(image[pos + 4 : pos + 8], "little")
        image[pos + 9] = 0
        image[pos + 9] = -sum(image[pos : pos + length]) % 256


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, (0x9F000 - SCAN_START) // 16 - 4), st.integers(66, 0x4000), st.booleans()),
        max_size=100,
        unique_by=lambda c: c[0],
    )
)
def test_the_first_valid_table_is_found_behind_any_bogus_ones(bogus):
    """Bogus candidates (wrong checksum, or a right checksum over bytes that do not parse) before the table."""
    image = bytearray(0x100000 - SCAN_START)
    real = 0x9F000 - SCAN_START
    image[real : real + len(CHAP_TABLE)] = CHAP_TABLE
    fixed = []
    for block, length, valid in bogus:
        image[16 * block : 16 * block + 49] = _bogus(length, control_id=7)
        if valid:
            fixed.append(16 * block)
    _with_valid_checksums(image, fixed)
    found = find_in_memory(bytes(image), SCAN_START, source="mem")
    assert found is not None and found.targets[0].name == "iqn.2026-11.test:chap"


def test_memory_candidates_checksums_match_a_plain_sum():
    image = bytearray(0x2000)
    for address, length in [(0x0, 0x100), (0x40, 0x1F0F), (0x800, 66), (0x1000, 0x1000), (0x1FB0, 0x60)]:
        image[address : address + 8] = b"iBFT" + length.to_bytes(4, "little")
        image[address + 20 : address + 60] = bytes(range(address % 200, address % 200 + 40))
    _with_valid_checksums(image, [0x800, 0x1000])
    found = memory_candidates(bytes(image), 0x90000)
    assert [(a, n) for a, n, _ in found] == [(0x90000, 0x100), (0x90040, 0x1F0F), (0x90800, 66), (0x91000, 0x1000)]
    for address, length, ok in found:  # 0x91fb0 is left out: its length runs past the image
        assert ok == (sum(image[address - 0x90000 : address - 0x90000 + length]) % 256 == 0)
    assert [ok for *_, ok in found] == [False, False, True, True]


def test_length_running_past_the_window_is_not_taken(tmp_path):
    table = bytearray(CHAP_TABLE)
    table[4:8] = (0x100000).to_bytes(4, "little")
    path = _image(tmp_path, {0xFFF00: bytes(fix_checksum(table))[:0x100]})
    assert scan_memory(str(path)) is None


# ---- choosing a source -----------------------------------------------------------------------------------------


def test_order_acpi_then_sysfs_then_memory(tmp_path):
    acpi = tmp_path / "iBFT"
    sysfs = tmp_path / "ibft"
    mem = _image(tmp_path, {0x9F000: CHAP_TABLE})
    write_sysfs(parse_ibft(CHAP_TABLE), sysfs)
    acpi.write_bytes(encode_ibft(None, oem_id="ACPI"))
    paths = dict(acpi_path=str(acpi), sysfs_path=str(sysfs), mem_path=str(mem))
    assert find_ibft(**paths).source == str(acpi)
    acpi.unlink()
    assert find_ibft(**paths).source == str(sysfs)
    for p in sorted(sysfs.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    assert find_ibft(**paths).source == str(mem)
    mem.unlink()
    assert find_ibft(**paths) is None
    with pytest.raises(IbftError, match="no iBFT found"):
        load_ibft(None, **paths)


def test_named_sources(tmp_path):
    table = tmp_path / "t.bin"
    table.write_bytes(CHAP_TABLE)
    write_sysfs(parse_ibft(CHAP_TABLE), tmp_path / "dir")
    assert read_source(str(table)).oem_id == "FENSYS"
    assert read_source(str(tmp_path / "dir")).source == str(tmp_path / "dir")
    with pytest.raises(IbftError, match="cannot open"):
        load_ibft(str(tmp_path / "missing"))


def test_memory_image_as_named_source(tmp_path, monkeypatch):
    from initiator import ibft_sources

    empty = _image(tmp_path, {})
    monkeypatch.setattr(ibft_sources, "DEV_MEM", str(empty))  # read_source scans what is named like /dev/mem
    with pytest.raises(IbftError, match="no iBFT signature"):
        load_ibft(str(empty))
    empty.unlink()
    full = _image(tmp_path, {0x9F000: CHAP_TABLE})
    assert load_ibft(str(full)).source == str(full)


# ---- a real kernel: QEMU hands it the table as ACPI, iscsi_ibft shows it in sysfs ---------------------------------

LAB_SCRIPT = """
import json, subprocess
from initiator.ibft_sources import load_ibft
subprocess.run(["modprobe", "iscsi_ibft"], check=True)
acpi = load_ibft("/sys/firmware/acpi/tables/iBFT").to_json(show_secrets=True)
sysfs = load_ibft("/sys/firmware/ibft").to_json(show_secrets=True)
auto = load_ibft(None).source
plan = subprocess.run([".venv/bin/pyiscsi", "explain", "--json"], capture_output=True, text=True)
mem = subprocess.run([".venv/bin/pyiscsi", "ibft", "/dev/mem"], capture_output=True, text=True)
print(json.dumps({"acpi": acpi, "sysfs": sysfs, "auto": auto, "explain": plan.stdout, "err": plan.stderr,
                  "mem": [mem.returncode, mem.stderr]}))
"""


@pytest.mark.vm
def test_real_kernel_acpi_table_and_iscsi_ibft_sysfs_agree(tmp_path):
    import json
    import sys

    repo = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(repo / "vm-tests"))
    from harness.lab import run_in_lab

    table = tmp_path / "ibft.bin"
    table.write_bytes(RICH_BYTES)
    result = run_in_lab(
        [str(repo / ".venv/bin/python"), "-c", LAB_SCRIPT],
        bound=240,
        cwd=repo,
        acpi_tables=[table],
        append="rd.iscsi.firmware rd.iscsi.mp rd.pyiscsi.timeout=77",
    )
    assert result.status == 0, result.stderr + result.console.summary()
    seen = json.loads(result.stdout)
    expected = RICH.to_json(show_secrets=True)
    assert seen["acpi"] | {"source": None} == expected | {"source": None}
    # sysfs loses only what the kernel does not print (the PCI address)
    expected_sysfs = expected | {"nics": [n | {"pci_bdf": None} for n in expected["nics"]]}
    assert seen["sysfs"] | {"source": None, "oem_id": None, "oem_table_id": None} == expected_sysfs | {
        "source": None, "oem_id": None, "oem_table_id": None,
    }  # fmt: skip
    assert seen["auto"] == "/sys/firmware/acpi/tables/iBFT"
    plan = json.loads(seen["explain"])
    assert plan["timeouts"]["total"] == 77
    assert [t["name"] for t in plan["targets"]] == ["iqn.2026-11.test:a", "iqn.2026-11.test:b"]
    assert [i["mac"] for i in plan["interfaces"]] == ["52:54:00:aa:bb:cc", "52:54:00:aa:bb:cd"]
    # the legacy window reads fine through the real /dev/mem; QEMU's -acpitable puts no table there
    assert seen["mem"] == [2, "pyiscsi ibft: ibft source: no iBFT signature in 0x80000-0xfffff (got '/dev/mem')\n"]


# ---- what a real kernel printed for the captured iPXE tables (the sidecars' linux_sysfs) ----------------------------

SYSFS_SIDECARS = [p for p in sorted(FIXTURES.glob("*.json")) if p.with_suffix(".bin").exists()]


@pytest.mark.parametrize("sidecar", SYSFS_SIDECARS or [None], ids=lambda p: getattr(p, "name", "-"))
def test_real_kernel_sysfs_reads_as_the_table(tmp_path, sidecar):
    import json

    if sidecar is None:
        pytest.skip("no captured sidecar with linux_sysfs yet (vm-tests/harness/capture_ibft.py)")
    files = json.loads(sidecar.read_text()).get("linux_sysfs") or {}
    if not files:
        pytest.skip(f"{sidecar.name} holds no linux_sysfs")
    for relative, value in files.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value if relative.endswith("subnet-mask") else f"{value}\n")
    table = parse_ibft(sidecar.with_suffix(".bin").read_bytes())
    assert _lun_free(read_sysfs(str(tmp_path))) == _lossless(table, str(tmp_path))


SYSFS_FILES = [
    "initiator/index", "initiator/flags", "initiator/initiator-name", "initiator/isns-server", "ethernet0/ip-addr",
    "ethernet0/prefix-len", "ethernet0/subnet-mask", "ethernet0/origin", "ethernet0/gateway", "ethernet0/vlan",
    "ethernet0/mac", "ethernet0/hostname", "ethernet0/index", "target0/ip-addr", "target0/port", "target0/lun",
    "target0/chap-type", "target0/nic-assoc", "target0/target-name", "target0/chap-secret", "target0/flags",
]  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SYSFS_FILES), st.binary(max_size=80))
def test_random_sysfs_file_contents_read_or_raise_ibft_error(name, content):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        write_sysfs(parse_ibft(CHAP_TABLE), Path(tmp))
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            read_sysfs(tmp)
        except IbftError as exc:
            assert str(exc)
