"""iPXE script rendering: network, CHAP, initiator name, sanhooks with drive numbers, kernel/initrd/boot."""

from __future__ import annotations

import stat

import pytest

from harness.errors import HarnessError
from harness.ipxe import Chap, IpxeScript, SanPaths, SanTarget, StaticNet
from initiator.secret import Secret

T1 = SanTarget("10.0.2.2", 3260, 1, "iqn.2026-11.org.pyiscsi:a")
T2 = SanTarget("10.0.2.2", 3261, 2, "iqn.2026-11.org.pyiscsi:b")


def _lines(script: IpxeScript) -> list[str]:
    return script.render().splitlines()


def test_dhcp_script_hooks_then_boots_the_kernel_over_http():
    lines = _lines(IpxeScript((T1,), "http://10.0.2.2:8000/vmlinuz", "http://10.0.2.2:8000/initrd.img", "quiet"))
    assert lines[0] == "#!ipxe"
    assert "dhcp net0 || goto failed" in lines
    hook = lines.index("sanhook iscsi:10.0.2.2::3260:1:iqn.2026-11.org.pyiscsi:a || goto failed")
    kernel = lines.index("kernel http://10.0.2.2:8000/vmlinuz quiet || goto failed")
    assert hook < kernel < lines.index("initrd http://10.0.2.2:8000/initrd.img || goto failed")
    assert lines[-4:] == ["boot || goto failed", ":failed", "echo pyiscsi-ipxe: failed", "poweroff"]
    assert not any(line.startswith("set username") for line in lines)


def test_static_script_sets_net0_and_never_runs_dhcp():
    lines = _lines(IpxeScript((T1,), "http://h/k", static=StaticNet()))
    assert "dhcp net0 || goto failed" not in lines
    for expected in [
        "set net0/ip 10.0.2.15",
        "set net0/netmask 255.255.255.0",
        "set net0/gateway 10.0.2.2",
        "set net0/dns 10.0.2.3",
    ]:
        assert expected in lines
    assert lines.index("set net0/dns 10.0.2.3") < lines.index("ifopen net0 || goto failed")


def test_second_target_gets_its_own_drive_number():
    lines = [line for line in _lines(IpxeScript((T1, T2), "http://h/k")) if line.startswith("sanhook")]
    assert lines == [
        "sanhook iscsi:10.0.2.2::3260:1:iqn.2026-11.org.pyiscsi:a || goto failed",
        "sanhook --drive 0x81 iscsi:10.0.2.2::3261:2:iqn.2026-11.org.pyiscsi:b || goto failed",
    ]


@pytest.mark.parametrize(
    ("chap", "expected", "absent"),
    [
        (Chap("u", Secret("s3cretsecret")), ["set username u", "set password s3cretsecret"], "set reverse-username"),
        (
            Chap("u", Secret("s3cretsecret"), "t", Secret("tgtsecretsecret")),
            ["set reverse-username t", "set reverse-password tgtsecretsecret"],
            None,
        ),
    ],
)
def test_chap_settings_precede_the_sanhook(chap, expected, absent):
    lines = _lines(IpxeScript((T1,), "http://h/k", chap=chap, initiator_iqn="iqn.2026-11.org.pyiscsi:i"))
    hook = next(i for i, line in enumerate(lines) if line.startswith("sanhook"))
    for line in [*expected, "set initiator-iqn iqn.2026-11.org.pyiscsi:i"]:
        assert lines.index(line) < hook
    assert absent is None or not any(line.startswith(absent) for line in lines)


@pytest.mark.parametrize(
    "script",
    [
        IpxeScript((SanTarget("10.0.2.2", 3260, 1, "iqn.x:${evil}"),), "http://h/k"),
        IpxeScript((T1,), "http://h/k", chap=Chap("user name", Secret("s"))),
        IpxeScript((T1,), "http://h/k", chap=Chap("u", Secret("pass word"))),
    ],
)
def test_values_ipxe_would_mangle_are_refused(script):
    with pytest.raises(HarnessError, match="iPXE would mangle"):
        script.render()


def test_refusal_never_shows_a_password():
    with pytest.raises(HarnessError) as err:
        IpxeScript((T1,), "http://h/k", chap=Chap("u", Secret("pass word"))).render()
    assert "pass word" not in str(err.value)


def test_script_with_secrets_is_written_0600(tmp_path):
    path = IpxeScript((T1,), "http://h/k", chap=Chap("u", Secret("s3cretsecret"))).write(tmp_path / "boot.ipxe")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "set password s3cretsecret" in path.read_text()


@pytest.mark.parametrize(
    ("uri", "target"),
    [
        ("iscsi:10.0.2.2::3260:1:iqn.a:b", SanTarget("10.0.2.2", 3260, 1, "iqn.a:b")),
        ("iscsi:10.0.2.2:6::0:iqn.a:b:c", SanTarget("10.0.2.2", 3260, 0, "iqn.a:b:c")),
    ],
)
def test_sanhook_uri_round_trips(uri, target):
    assert SanTarget.parse(uri) == target
    assert SanTarget.parse(target.uri()) == target


@pytest.mark.parametrize("uri", ["iscsi:1.2.3.4::x:1:iqn.a", "nfs:1::1:1:i", "iscsi:1.2.3.4::1:1", "iscsi:h:17:1:1:i"])
def test_bad_sanhook_uris_are_named(uri):
    with pytest.raises(HarnessError, match="sanhook uri"):
        SanTarget.parse(uri)


def test_efi_script_names_the_initrd_and_puts_the_name_on_the_kernel_line():
    script = IpxeScript((T1,), "http://h/vmlinuz", "http://h/initrd.img", "rd.iscsi.firmware=1 quiet", efi=True)
    lines = _lines(script)
    assert "kernel http://h/vmlinuz rd.iscsi.firmware=1 quiet initrd=initrd.img || goto failed" in lines
    assert "initrd --name initrd.img http://h/initrd.img || goto failed" in lines
    named = _lines(IpxeScript((T1,), "http://h/k", "http://h/i.gz", "quiet initrd=boot.img", efi=True,
                              initrd_name="boot.img"))  # fmt: skip
    assert "kernel http://h/k quiet initrd=boot.img || goto failed" in named  # given once, not added twice
    assert "initrd --name boot.img http://h/i.gz || goto failed" in named


@pytest.mark.parametrize(
    ("script", "kernel_line"),
    [
        (IpxeScript((T1,), "http://h/k", "http://h/i", "quiet"), "kernel http://h/k quiet || goto failed"),
        (IpxeScript((T1,), "http://h/k", None, "quiet", efi=True), "kernel http://h/k quiet || goto failed"),
    ],
    ids=["bios", "efi-without-initrd"],
)
def test_no_initrd_name_without_efi_or_without_an_initrd(script, kernel_line):
    lines = _lines(script)
    assert kernel_line in lines and not any("--name" in line for line in lines)


@pytest.mark.parametrize(
    ("cmdline", "name"),
    [("quiet initrd=other.img", "initrd.img"), ("initrd=initrd.img initrd=x", "initrd.img"), ("q", "bad name")],
)
def test_efi_initrd_name_that_cannot_work_is_refused(cmdline, name):
    with pytest.raises(HarnessError, match="initrd"):
        IpxeScript((T1,), "http://h/k", "http://h/i", cmdline, efi=True, initrd_name=name).render()


def test_paths_of_one_lun_share_one_sanhook_and_one_drive():
    """iPXE's multipath SAN device: `sanhook uri1 uri2`; a second drive still gets its own number."""
    first_path = SanTarget("10.0.2.2", 3261, 1, "iqn.2026-11.org.pyiscsi:a")
    script = IpxeScript((SanPaths((T1, first_path)), T2), "http://h/k")
    hooks = [line for line in _lines(script) if line.startswith("sanhook")]
    assert hooks == [
        "sanhook iscsi:10.0.2.2::3260:1:iqn.2026-11.org.pyiscsi:a iscsi:10.0.2.2::3261:1:iqn.2026-11.org.pyiscsi:a"
        " || goto failed",
        "sanhook --drive 0x81 iscsi:10.0.2.2::3261:2:iqn.2026-11.org.pyiscsi:b || goto failed",
    ]


def test_paths_need_at_least_one_uri_and_are_checked_like_one():
    with pytest.raises(HarnessError, match="at least one"):
        SanPaths(())
    with pytest.raises(HarnessError, match="iqn"):
        IpxeScript((SanPaths((T1, SanTarget("10.0.2.2", 3261, 1, "iqn x"))),), "http://h/k").render()
