"""pyiscsi-vmtest without QEMU: arguments, placeholders, the console tracker, reports, and that no secret leaks."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from xml.etree import ElementTree

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness import vmtest
from harness.vmtest import DEFAULT_EXPECT, Outcome, Redactor, Tracker, UsageError

REPO = Path(__file__).resolve().parents[1]
SECRET, RSECRET = "Sup3rSecretXyz", "R3verseSecretQ"


@pytest.fixture
def files(tmp_path):
    for name in ("vmlinuz", "initrd.img", "root.ext4"):
        (tmp_path / name).write_bytes(b"x")
    return ["--kernel", str(tmp_path / "vmlinuz"), "--initrd", str(tmp_path / "initrd.img"),
            "--root", str(tmp_path / "root.ext4")]  # fmt: skip


# --- arguments ------------------------------------------------------------------------------------------------


def test_defaults_and_every_option(files, tmp_path):
    opts = vmtest.parse_args([*files, "--ibft"])
    assert (opts.ibft, opts.cmdline, opts.uefi, opts.lun, opts.timeout) == (True, None, False, 1, 300.0)
    assert (opts.chap, opts.reverse_chap, opts.expect, opts.junit, opts.json) == (
        None,
        None,
        DEFAULT_EXPECT,
        None,
        None,
    )
    opts = vmtest.parse_args([
        *files, "--cmdline", "netroot=iscsi:{host}::{port}:{lun}:{target}", "--uefi", "--chap", f"me:{SECRET}",
        "--reverse-chap", f"tgt:{RSECRET}", "--lun", "3", "--append", "quiet", "--timeout", "90", "--expect", "ok$",
        "--junit", str(tmp_path / "j.xml"), "--json", str(tmp_path / "t.json"), "--name", "n1",
    ])  # fmt: skip
    assert opts.cmdline == "netroot=iscsi:{host}::{port}:{lun}:{target}" and not opts.ibft and opts.uefi
    assert (opts.chap.user, opts.chap.secret.reveal()) == ("me", SECRET)
    assert (opts.reverse_chap.user, opts.reverse_chap.secret.reveal()) == ("tgt", RSECRET)
    assert (opts.lun, opts.append, opts.timeout, opts.expect, opts.name) == (3, "quiet", 90.0, "ok$", "n1")
    assert opts.junit == tmp_path / "j.xml" and opts.json == tmp_path / "t.json"
    assert opts.secrets() == (SECRET, RSECRET)


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        ([], "--ibft or --cmdline"),
        (["--ibft", "--lun", "0"], "--lun"),
        (["--ibft", "--timeout", "0"], "--timeout"),
        (["--ibft", "--expect", "(unclosed"], "--expect"),
        (["--ibft", "--chap", SECRET], "--chap"),
        (["--ibft", "--chap", f":{SECRET}"], "--chap"),
        (["--ibft", "--chap", "me:"], "--chap"),
        (["--ibft", "--reverse-chap", f"t:{RSECRET}"], "--reverse-chap"),
        (["--ibft", "--chap", f"same:{SECRET}", "--reverse-chap", f"same:{RSECRET}"], "--reverse-chap"),
        (["--ibft", "--lun", "x"], "--lun"),
        (["--ibft", "--chap"], "--chap"),
        (["--ibft", "--cha", f"me:{SECRET}"], "unrecognized"),  # no abbreviations: the secret scan knows the names
    ],
)
def test_bad_arguments_are_usage_errors_naming_the_option_not_the_secret(files, extra, names):
    with pytest.raises(UsageError) as caught:
        vmtest.parse_args([*files, *extra])
    assert names in str(caught.value)
    assert SECRET not in str(caught.value) and RSECRET not in str(caught.value)


def test_missing_files_are_named(tmp_path):
    argv = ["--kernel", str(tmp_path / "nope"), "--initrd", "x", "--root", "y", "--ibft"]
    with pytest.raises(UsageError, match="--kernel"):
        vmtest.parse_args(argv)


@given(st.text(st.characters(blacklist_characters=":\n\x00"), min_size=1), st.text(min_size=1))
def test_credentials_split_at_the_first_colon(user, secret):
    creds = vmtest.parse_credentials("--chap", f"{user}:{secret}")
    assert (creds.user, creds.secret.reveal()) == (user, secret)


# --- placeholders ---------------------------------------------------------------------------------------------

VALUES = {"portal": "10.0.2.2:3260", "host": "10.0.2.2", "port": "3260", "target": "iqn.x:t", "lun": "2", "uuid": "u"}


@pytest.mark.parametrize(
    ("template", "filled"),
    [
        ("", ""),
        ("ip=ibft", "ip=ibft"),
        ("netroot=iscsi:{host}::{port}:{lun}:{target}", "netroot=iscsi:10.0.2.2::3260:2:iqn.x:t"),
        ("rd.iscsi.target.portal={portal} root=UUID={uuid}", "rd.iscsi.target.portal=10.0.2.2:3260 root=UUID=u"),
        ("{lun}{lun}", "22"),
        ("{ not a placeholder }", "{ not a placeholder }"),
    ],
)
def test_substitute(template, filled):
    assert vmtest.substitute(template, VALUES) == filled


@pytest.mark.parametrize(("name", "hint"), [("prtal", ""), ("user", "--chap"), ("rsecret", "--reverse-chap")])
def test_unknown_placeholders_are_named(name, hint):
    with pytest.raises(UsageError, match=re.escape(f"{{{name}}}") + ".*" + re.escape(hint)):
        vmtest.substitute(f"a={{{name}}}", VALUES)


def test_kernel_args_order_and_credentials(files):
    opts = vmtest.parse_args([*files, "--ibft", "--chap", f"me:{SECRET}", "--append", "x={port}"])
    values = vmtest.placeholder_values(opts, 3260, "abcd")
    args = vmtest.kernel_args(opts, values)
    assert args == f"{vmtest.BASE_APPEND} rd.iscsi.firmware=1 ip=ibft root=UUID=abcd x=3260"
    assert (values["user"], values["secret"], values["portal"]) == ("me", SECRET, "10.0.2.2:3260")
    assert "ruser" not in values
    opts = vmtest.parse_args([*files, "--cmdline", "netroot=iscsi:{user}:{secret}@{host}::{port}:{lun}:{target}",
                              "--chap", f"me:{SECRET}"])  # fmt: skip
    assert vmtest.kernel_args(opts, vmtest.placeholder_values(opts, 99, "u")).endswith(
        f"netroot=iscsi:me:{SECRET}@10.0.2.2::99:1:{vmtest.TARGET_IQN}"
    )


# --- redaction ------------------------------------------------------------------------------------------------

SECRETS = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=12)


@given(st.lists(SECRETS, min_size=1, max_size=3), st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_redactor_leaves_no_secret(secrets, pieces):
    text = "".join(p + secrets[i % len(secrets)] for i, p in enumerate(pieces))
    out = Redactor(tuple(secrets))(text)
    assert not any(s in out for s in secrets if s not in vmtest.REDACTED and not _made_by_join(s, out))


def _made_by_join(secret: str, out: str) -> bool:
    """A secret can reappear across the seam of a replacement and the text around it only if it holds `*`."""
    return "*" in secret


@pytest.mark.parametrize(
    ("argv", "found"),
    [
        (["--chap", "u:s1"], ["s1"]),
        (["--chap=u:s:2"], ["s:2"]),
        (["--reverse-chap", "r:s3", "--chap", "u:s4"], ["s3", "s4"]),
        (["--append", "--chap"], []),
        (["--chap"], []),
    ],
)
def test_secrets_are_found_before_parsing(argv, found):
    assert vmtest._secrets_in(argv) == found


# --- the console ----------------------------------------------------------------------------------------------

OURS = """\
pyiscsi-ipxe: start
pyiscsi-ipxe: sanhooked
Probing EDD (edd=off to disable)... ok\x1b[?7l\x1b[2J[    0.000000] Linux version 6.1.0-50-amd64 (debian-kernel@)
[    3.059499] Run /init as init process
[    6.498058] iBFT detected.
[   10.714594] pyiscsi[196]: PYISCSI-MARK start 10.700[   10.679119] pyiscsi: PYISCSI-MARK start 10.700
[   10.879719] pyiscsi[196]: PYISCSI-MARK firmware 10.870 ibft=acpi:/sys/firmware/acpi/tables/iBFT
[   13.560498] pyiscsi[196]: PYISCSI-MARK address 13.550 eth0 10.0.2.15/24 (1.21s)
[   14.080464] scsi host0: iSCSI Initiator over TCP/IP
[   14.399521] pyiscsi[196]: PYISCSI-MARK login 14.390 iqn.2026-12.org.pyiscsi:root 10.0.2.2:40613 session 1
[   14.711071] sd 0:0:0:1: [sda] Attached SCSI disk
[   14.862188] pyiscsi[196]: PYISCSI-MARK disk 14.850 /dev/sda lun 1 of iqn.2026-12.org.pyiscsi:root
[   19.324778] EXT4-fs (sda): mounted filesystem with ordered data mode. Quota mode: none.
PYISCSI-MARK realroot 21.91 13 args
"""


def feed(text: str, expect: str = DEFAULT_EXPECT) -> tuple[Tracker, bool]:
    tracker = Tracker(re.compile(expect))
    done = False
    for wall, line in enumerate(text.splitlines()):
        done = tracker.feed(line, float(wall))
        if done:
            break
    return tracker, done


def test_our_console_gives_every_phase_from_the_marks():
    tracker, done = feed(OURS)
    assert done and tracker.matched == "PYISCSI-MARK realroot 21.91 13 args"
    assert [e.phase for e in tracker.events] == list(vmtest.PHASE_NAMES)
    got = {e.phase: (e.uptime, e.detail) for e in tracker.events}
    assert got["kernel"] == (0.0, "6.1.0-50-amd64")
    assert got["initramfs"] == (3.059499, "/init")  # the kernel's line came before pyiscsi's `start` mark
    assert got["login"] == (14.080464, "scsi host0")  # the kernel's line came first
    assert got["link"] == (13.55, "eth0 10.0.2.15/24 (1.21s)")
    assert got["disk"] == (14.711071, "sda")
    assert got["realroot"][0] == 21.91
    assert got["firmware"][0] is None


def test_a_failing_console_names_the_last_phase_reached():
    lines = OURS.split("[   14.080464]")[0]
    tracker, done = feed(lines + "[   15.0] pyiscsi: PYISCSI-MARK failed 15.0 exit 4: AuthenticationFailed\n")
    assert not done and tracker.matched is None
    assert tracker.causes == ["[   15.0] pyiscsi: PYISCSI-MARK failed 15.0 exit 4: AuthenticationFailed"]
    outcome = Outcome(False, "guest powered off", tuple(tracker.events), 20.0, tuple(tracker.tail), None)
    assert outcome.last_phase == "link"
    assert Outcome(False, "setup failed: x", (), 1.0, (), None).last_phase == "none"


@pytest.mark.parametrize(
    ("line", "real_root"),
    [
        ("PYISCSI-MARK realroot 21.91 13 args", True),
        ("[    1.5] Run /sbin/init as init process", True),
        ("[    1.5] Run /init as init process", False),
        ("Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!", True),
        ("Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm) dracut-059-4 (Initramfs)\x1b[0m!", False),
        ("debian login: ", True),
        ("[   4.5] systemd[1]: Running in initrd.", False),
        ("PYISCSI-MARK realroot-fail 3.0 no session", False),
    ],
)
def test_default_expect_is_the_real_roots_init_only(line, real_root):
    assert bool(re.search(DEFAULT_EXPECT, line)) == real_root


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("[   22.59] pyiscsi: PYISCSI-MARK failed 22.540 exit 4: AuthenticationFailed", True),
        (
            "[   22.56] pyiscsi[194]: pyiscsi boot: target 'iqn.x:r': login refused: authentication failed (0x0201)",
            True,
        ),
        ("[   22.60] pyiscsi: boot: target 'iqn.x:r': login refused: authentication failed (0x0201)", True),
        ("Could not open SAN device: Permission denied (http://ipxe.org/0216eb3c)", True),
        ("pyiscsi-ipxe: failed", True),
        ("Warning: Boot has failed. To debug this issue add rd.shell rd.debug", True),
        ("[    9.1] Kernel panic - not syncing: VFS: Unable to mount root fs", True),
        ("PYISCSI-MARK realroot-fail 3.0 no iSCSI session in sysfs after switch_root", True),
        ("[   14.7] sd 0:0:0:1: [sda] Attached SCSI disk", False),
        ("[    3.3] systemd[1]: Starting dracut-cmdline.service - dracut cmdline hook...", False),
    ],
)
def test_lines_naming_the_cause(line, cause):
    assert bool(vmtest.CAUSE_RE.search(line)) == cause


def test_split_lines_keeps_partial_lines():
    pending = bytearray()
    assert vmtest.split_lines(pending, b"a\nb") == ["a\n"]
    assert vmtest.split_lines(pending, b"c\n\xff\n") == ["bc\n", "\ufffd\n"]
    assert vmtest.split_lines(pending, b"x" * 10, limit=4) == ["xxxx", "xxxx"] and pending == b"xx"


def test_watch_redacts_the_console_and_stops_at_the_expected_line(tmp_path, files):
    opts = vmtest.parse_args([*files, "--ibft", "--chap", f"me:{SECRET}", "--expect", "^READY", "--timeout", "30"])
    script = f"echo 'Kernel command line: pw={SECRET}'; echo '[ 1.0] Linux version 6.1'; echo READY; sleep 30"
    tracker = Tracker(re.compile(opts.expect))
    log = tmp_path / "console.log"
    reason, wall = vmtest._watch(["sh", "-c", script], opts, tracker, log, Redactor(opts.secrets()))
    assert reason == "expected line seen" and wall < 20
    assert SECRET not in log.read_text() and "pw=***" in log.read_text()
    assert [e.phase for e in tracker.events] == ["kernel"]


def test_watch_reports_poweroff_and_timeout(tmp_path, files):
    opts = vmtest.parse_args([*files, "--ibft", "--timeout", "2"])
    tracker = Tracker(re.compile(opts.expect))
    assert vmtest._watch(["sh", "-c", "echo partial"], opts, tracker, tmp_path / "a", Redactor())[0] == (
        "guest powered off"
    )
    assert vmtest._watch(["sh", "-c", "exit 3"], opts, tracker, tmp_path / "b", Redactor())[0] == (
        "qemu exited with status 3"
    )
    assert vmtest._watch(["sleep", "20"], opts, tracker, tmp_path / "c", Redactor())[0] == "timeout"


# --- the root -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(not all(shutil.which(t) for t in ("mke2fs", "debugfs", "blkid", "tar")), reason="e2fsprogs")
@pytest.mark.parametrize("form", ["dir", "tar", "tar.gz", "image"])
def test_a_directory_or_tarball_becomes_an_ext4_image_and_an_image_is_copied(tmp_path, form):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hello").write_text("from the tree\n")
    given = {"dir": tree, "image": vmtest.ext4_from_tree(tree, tmp_path / "given.img")}.get(form)
    if given is None:
        given = tmp_path / f"root.{form}"
        subprocess.run(["tar", "-caf", str(given), "-C", str(tree), "."], check=True, timeout=60)
    work = tmp_path / "work"
    work.mkdir()
    disk = vmtest.prepare_root(given, work)
    assert disk.parent == work and disk != given
    cat = subprocess.run(["debugfs", "-R", "cat /etc/hello", str(disk)], capture_output=True, text=True, timeout=60)
    assert cat.stdout == "from the tree\n"
    assert vmtest._uuid(disk)


# --- reports --------------------------------------------------------------------------------------------------


def outcome(passed: bool, tail: tuple[str, ...] = ("last line",)) -> Outcome:
    tracker, _ = feed(OURS if passed else OURS.split("[   14.080464]")[0])
    return Outcome(passed, "expected line seen" if passed else "guest powered off", tuple(tracker.events), 42.5, tail,
                   Path("/tmp/console.log"), tracker.matched, "console=ttyS0 ...")  # fmt: skip


@pytest.mark.parametrize("passed", [True, False])
def test_junit_is_well_formed_with_one_case(files, passed):
    opts = vmtest.parse_args([*files, "--ibft", "--name", "my <boot> & co"])
    tail = ("\x1b[2J\x1b[?7lSeaBIOS \x00\x07 noise", "[ 1.0] <tag> & 'quote'")
    root = ElementTree.fromstring(vmtest.to_junit(outcome(passed, tail), opts))
    assert root.tag == "testsuites" and root.get("tests") == "1" and root.get("failures") == str(int(not passed))
    (suite,) = root
    (case,) = suite.findall("testcase")
    assert case.get("name") == "my <boot> & co" and case.get("time") == "42.50"
    failure = case.find("failure")
    if passed:
        assert failure is None
    else:
        assert failure.get("message") == "guest powered off; last phase reached: link"
        assert "[ 1.0] <tag> & 'quote'" in failure.text and "/tmp/console.log" in failure.text
        assert "lines naming the cause" not in failure.text  # none in this console
    assert "kernel starts" in case.find("system-out").text


@pytest.mark.parametrize("passed", [True, False])
def test_json_shape(files, passed):
    opts = vmtest.parse_args([*files, "--ibft", "--uefi", "--lun", "2"])
    data = json.loads(json.dumps(vmtest.to_json(outcome(passed), opts)))
    assert set(data) == {
        "tool", "name", "passed", "reason", "last_phase", "wall_seconds", "expect", "matched", "phases", "boot",
        "console_log", "console_tail", "causes",
    }  # fmt: skip
    assert data["passed"] is passed and data["last_phase"] == ("realroot" if passed else "link")
    assert data["boot"] == {"firmware": "uefi", "ibft": True, "lun": 2, "target": vmtest.TARGET_IQN, "chap": False,
                            "reverse_chap": False, "kernel_args": "console=ttyS0 ..."}  # fmt: skip
    for phase in data["phases"]:
        assert set(phase) == {"phase", "label", "wall", "uptime", "detail"} and phase["phase"] in vmtest.PHASE_NAMES
    assert data["console_tail"] == ["last line"] and data["console_log"] == "/tmp/console.log"


@pytest.mark.parametrize("passed", [True, False])
def test_main_never_shows_a_secret(files, tmp_path, monkeypatch, capsys, passed):
    """Whatever the boot saw (the console echoes the kernel line, which may carry {secret}), no output has it."""
    seen = (f"Kernel command line: netroot=iscsi:me:{SECRET}:tgt:{RSECRET}@10.0.2.2", f"pw {RSECRET} again")

    def fake_boot(opts, redact, say):
        say(f"chap secret is {SECRET}")
        base = outcome(passed, seen)
        return Outcome(base.passed, f"{base.reason} {SECRET}", base.events, base.wall, base.tail, base.log_path,
                       base.matched, f"x={SECRET} y={RSECRET}")  # fmt: skip

    monkeypatch.setattr(vmtest, "boot", fake_boot)
    monkeypatch.setattr(vmtest, "missing_tools", lambda uefi: None)
    junit, report = tmp_path / "r.xml", tmp_path / "r.json"
    argv = [*files, "--ibft", "--chap", f"me:{SECRET}", f"--reverse-chap=tgt:{RSECRET}", "--log", str(tmp_path / "l"),
            "--junit", str(junit), "--json", str(report)]  # fmt: skip
    status = vmtest.main(argv)
    out = capsys.readouterr()
    assert status == (0 if passed else 1)
    for text in (out.out, out.err, junit.read_text(), report.read_text()):
        assert SECRET not in text and RSECRET not in text
    assert "***" in junit.read_text() + report.read_text()
    if not passed:
        assert "last phase reached: link" in out.err


@pytest.mark.parametrize("passed", [True, False])
def test_main_prints_the_console_with_control_characters_escaped(files, monkeypatch, capsys, passed):
    """The console carries ANSI colours and firmware noise (systemd's bold 'Welcome to ...'): what the tool
    prints escapes them, so a CI log shows them as text and a terminal is not driven by the guest."""
    noisy = ("\x1b[2J\x1b]0;title\x07SeaBIOS", "Welcome to \x1b[1mDebian GNU/Linux 12\x1b[0m!")

    def fake_boot(opts, redact, say):
        base = outcome(passed, noisy)
        return Outcome(base.passed, base.reason, base.events, base.wall, base.tail, base.log_path, noisy[1],
                       base.cmdline)  # fmt: skip

    monkeypatch.setattr(vmtest, "boot", fake_boot)
    monkeypatch.setattr(vmtest, "missing_tools", lambda uefi: None)
    assert vmtest.main([*files, "--ibft"]) == (0 if passed else 1)
    out = capsys.readouterr()
    printed = out.out + out.err
    assert "\x1b" not in printed and "\x07" not in printed
    assert "\\x1b[1mDebian" in printed  # the matched line (passed) or the console tail (failed), as text
    assert ("\\x1b[2J\\x1b]0;title\\x07SeaBIOS" in printed) is not passed


def test_usage_errors_exit_2_without_the_secret(files, capsys):
    assert vmtest.main([*files, "--chap", f"me:{SECRET}"]) == 2
    assert vmtest.main([*files, "--ibft", "--chap", f"me:{SECRET}", "--bogus", SECRET]) == 2
    out = capsys.readouterr()
    assert "--ibft or --cmdline" in out.err and SECRET not in out.err + out.out


def test_setup_failures_are_reported_as_failures(files, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(vmtest, "missing_tools", lambda uefi: "tgtd not installed")
    report = tmp_path / "r.json"
    assert vmtest.main([*files, "--ibft", "--json", str(report)]) == 1
    data = json.loads(report.read_text())
    assert data["reason"] == "setup failed: tgtd not installed" and data["last_phase"] == "none"


# --- packaging ------------------------------------------------------------------------------------------------


def test_installed_command_points_at_main():
    scripts = {ep.name: ep.value for ep in metadata.entry_points(group="console_scripts")}
    if "pyiscsi-vmtest" not in scripts:
        pytest.skip("pyiscsi is not installed in this interpreter (make deps)")
    assert scripts["pyiscsi-vmtest"] == "harness.vmtest:main"
    assert (Path(sys.executable).parent / "pyiscsi-vmtest").exists()


@pytest.mark.parametrize("package", ["boot", "initiator"])
def test_the_product_never_imports_the_harness(package):
    for path in (REPO / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n == "harness" or n.startswith("harness.") for n in names), path
