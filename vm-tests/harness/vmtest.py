"""`pyiscsi-vmtest`: boot any kernel + initramfs to an iSCSI root in QEMU and say how far it got, for CI.

    pyiscsi-vmtest --kernel VMLINUZ --initrd INITRD --root IMAGE|DIR|TARBALL (--ibft | --cmdline '...')
                   [--uefi] [--chap USER:SECRET [--reverse-chap USER:SECRET]] [--lun N] [--append '...']
                   [--timeout S] [--expect REGEX] [--junit FILE] [--json FILE] [--log FILE] [--name NAME]

A private tgtd on 127.0.0.1 serves a copy of the root (a directory or tarball becomes an ext4 image first, with
`mke2fs -d`) as LUN N; QEMU (user networking: the host is 10.0.2.2 from inside) boots either through iPXE, whose
`sanhook` logs in and leaves an iBFT (`--ibft`), or straight into the kernel (`--cmdline` only). The kernel line
is `BASE_APPEND`, then `--cmdline` (with `--ibft` alone: `IBFT_CMDLINE`), then `--append`; placeholders
`{portal}` (10.0.2.2:PORT), `{host}`, `{port}`, `{target}`, `{lun}`, `{uuid}` (the root filesystem's),
`{initiator}`, `{user}`/`{secret}`, `{ruser}`/`{rsecret}` are filled in. The run ends when a console line matches
`--expect` (default `DEFAULT_EXPECT`: the real root's init has started), when the guest powers off, or at the
timeout. Exit status 0 only when the expected line appeared.

Secrets given with --chap/--reverse-chap are replaced by `***` in everything the tool writes: its output, the
reports and the console log it keeps.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from harness.errors import HarnessError
from harness.paths import CACHE, REPO
from initiator.printable import printable
from initiator.secret import Secret

PROG = "pyiscsi-vmtest"
DESCRIPTION = "Boot a kernel + initramfs in QEMU to an iSCSI root on a private tgtd; report how far it got."
TARGET_IQN = "iqn.2026-12.org.pyiscsi:vmtest-root"
INITIATOR_IQN = "iqn.2026-12.org.pyiscsi:vmtest-client"
GUEST_HOST = "10.0.2.2"  # QEMU user networking's view of the host's 127.0.0.1
# a failing boot powers off instead of waiting in a shell; loglevel=7 shows the kernel lines the timeline reads
BASE_APPEND = "console=ttyS0 rw loglevel=7 rd.shell=0 rd.emergency=poweroff panic=-1 rd.retry=60"
IBFT_CMDLINE = "rd.iscsi.firmware=1 ip=ibft root=UUID={uuid}"
# The real root's init has started: our test root's first line; a kernel that ran /sbin/init itself; systemd's
# welcome outside the initramfs (dracut's initrd-release names itself "(Initramfs)"); a login prompt.
DEFAULT_EXPECT = (
    r"PYISCSI-MARK realroot |Run /sbin/init as init process"
    r"|Welcome to (?!.*\(Initramfs\)).*!|^\S+ login: ?$"
)
DEFAULT_TIMEOUT = 300.0
REDACTED = "***"
TAIL_LINES = 40
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
PLACEHOLDER_RE = re.compile(r"\{(\w+)\}")
STAMP_RE = re.compile(r"\[\s*(\d+\.\d+)\]")
MARK_RE = re.compile(r"PYISCSI-MARK (?P<name>[\w.:-]+) (?P<uptime>\d+\.\d+)(?: (?P<detail>.*))?$")
# lines that say why a boot failed (pyiscsi's, iPXE's, dracut's, the kernel's, open-iscsi's): shown with a failure
CAUSE_RE = re.compile(
    r"PYISCSI-MARK (?:failed|realroot-fail) |pyiscsi(?:\[\d+\])?: (?:pyiscsi )?boot: |pyiscsi-ipxe: failed|Could not "
    r"|Boot has failed|Kernel panic|No bootable device|iscsiadm: .*(?:fail|error)|iscsistart: .*(?:fail|error)"
)
MAX_CAUSES = 6
# characters XML 1.0 cannot carry (the console has ANSI escapes and firmware noise)
XML_INVALID_RE = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class UsageError(ValueError):
    """A command-line value the tool cannot use; the message names the option, never a secret."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing: main() redacts every message it shows."""

    def error(self, message: str):  # type: ignore[override]
        head, sep, words = message.partition("unrecognized arguments: ")
        if sep:  # the values could be anything, a mistyped `--chap USER:SECRET` too: name only the options
            message = head + sep + " ".join(w.split("=", 1)[0] for w in words.split() if w.startswith("-"))
        raise UsageError(message)


@dataclass(frozen=True)
class Phase:
    """One step of a boot, seen as a `PYISCSI-MARK <marker>` (pyiscsi's image) or a console line (any image)."""

    name: str
    label: str
    marker: str | None = None
    pattern: str | None = None


# In boot order; the last one seen is "the phase reached". Markers are pyiscsi's; the patterns are the kernel's
# and our iPXE script's own lines, which the stock stack's boots show too.
PHASES = (
    Phase("firmware", "firmware ran the iPXE script", pattern=r"pyiscsi-ipxe: start"),
    Phase("sanhook", "iPXE logged in, iBFT written", pattern=r"pyiscsi-ipxe: sanhooked"),
    Phase("kernel", "kernel starts", pattern=r"Linux version (\S+)"),
    Phase("initramfs", "initramfs init runs", marker="start", pattern=r"Run (/init) as init process"),
    Phase("ibft", "iBFT read", marker="firmware", pattern=r"(iBFT detected)"),
    Phase("link", "link up, address", marker="address", pattern=r"ADDRCONF\(NETDEV_CHANGE\): (\S+): link becomes"),
    Phase("login", "iSCSI login", marker="login", pattern=r"(scsi host\d+): iSCSI Initiator over TCP/IP"),
    Phase("disk", "disk attached", marker="disk", pattern=r"\[(sd[a-z]+)\] Attached SCSI disk"),
    Phase("rootfs", "root file system mounted", pattern=r"(?:EXT4-fs|XFS) \((\S+)\): (?:mounted|Ending clean)"),
    Phase("realroot", "real root's init started", marker="realroot", pattern=DEFAULT_EXPECT),
)
PHASE_NAMES = tuple(p.name for p in PHASES)


@dataclass(frozen=True)
class Credentials:
    user: str
    secret: Secret


@dataclass(frozen=True)
class Options:
    kernel: Path
    initrd: Path
    root: Path
    ibft: bool = False
    cmdline: str | None = None
    uefi: bool = False
    chap: Credentials | None = None
    reverse_chap: Credentials | None = None
    lun: int = 1
    append: str = ""
    timeout: float = DEFAULT_TIMEOUT
    expect: str = DEFAULT_EXPECT
    junit: Path | None = None
    json: Path | None = None
    log: Path | None = None
    name: str = "boot"
    memory_mb: int = 1024

    def secrets(self) -> tuple[str, ...]:
        given = (self.chap, self.reverse_chap)
        return tuple(c.secret.reveal() for c in given if c is not None)


@dataclass(frozen=True)
class Event:
    """A phase seen: host seconds since QEMU started, the guest's uptime if the line had one, what it said."""

    phase: str
    label: str
    wall: float
    uptime: float | None
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    passed: bool
    reason: str  # "expected line seen", "guest powered off", "timeout", "qemu failed", "setup failed: ..."
    events: tuple[Event, ...]
    wall: float
    tail: tuple[str, ...]
    log_path: Path | None
    matched: str | None = None
    cmdline: str = ""
    causes: tuple[str, ...] = ()

    @property
    def last_phase(self) -> str:
        return self.events[-1].phase if self.events else "none"


# --- arguments ------------------------------------------------------------------------------------------------


def parse_credentials(option: str, text: str) -> Credentials:
    """`USER:SECRET` (the secret may hold colons); errors name the option, not the value."""
    user, sep, secret = text.partition(":")
    if not sep or not user or not secret:
        raise UsageError(f"{option}: expected USER:SECRET with both parts non-empty")
    return Credentials(user, Secret(secret))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description=DESCRIPTION, allow_abbrev=False)
    add = parser.add_argument
    add("--kernel", type=Path, required=True, help="the kernel (bzImage) to boot")
    add("--initrd", type=Path, required=True, help="the initramfs to boot")
    add("--root", type=Path, required=True, help="the root: an ext4 image, a directory or a tarball")
    add("--ibft", action="store_true", help="boot through iPXE sanhook, which leaves an iBFT")
    add("--cmdline", help="kernel arguments, with {portal} {host} {port} {target} {lun} {uuid} ... filled in")
    add("--uefi", action="store_true", help="UEFI firmware (OVMF on q35) instead of legacy BIOS")
    add("--chap", metavar="USER:SECRET", help="the target requires CHAP; iPXE and {user}/{secret} get it")
    add("--reverse-chap", metavar="USER:SECRET", help="the target proves itself (mutual CHAP) as USER:SECRET")
    add("--lun", type=int, default=1, help="the root's LUN (blank LUNs fill the ones before it; default 1)")
    add("--append", default="", help="more kernel arguments, after everything else")
    add("--timeout", type=float, default=DEFAULT_TIMEOUT, help="bound of the QEMU run, seconds (default 300)")
    add("--expect", default=DEFAULT_EXPECT, help="console regex that means success (default: the real root's init)")
    add("--junit", type=Path, help="write a JUnit XML report here")
    add("--json", type=Path, help="write the timeline as JSON here")
    add("--log", type=Path, help="keep the console log here (default: under the cache, kept only on failure)")
    add("--name", default="boot", help="the test case's name in the reports")
    add("--memory", type=int, default=1024, dest="memory_mb", help="guest memory, MiB")
    return parser


def parse_args(argv: Sequence[str]) -> Options:
    """The options, checked; raises UsageError (argparse's own errors exit 2 as usual)."""
    args = build_parser().parse_args(argv)
    if not args.ibft and args.cmdline is None:
        raise UsageError("--ibft or --cmdline: say how the initramfs finds its root")
    if args.lun < 1:
        raise UsageError("--lun: LUN 0 is tgt's controller; the root's LUN must be 1 or more")
    if args.timeout <= 0:
        raise UsageError("--timeout: must be more than 0 seconds")
    try:
        re.compile(args.expect)
    except re.error as exc:
        raise UsageError(f"--expect: not a regular expression ({exc})") from None
    chap = parse_credentials("--chap", args.chap) if args.chap else None
    reverse = parse_credentials("--reverse-chap", args.reverse_chap) if args.reverse_chap else None
    if reverse is not None and chap is None:
        raise UsageError("--reverse-chap: needs --chap (mutual CHAP is on top of the initiator's)")
    if chap is not None and reverse is not None and chap.user == reverse.user:
        raise UsageError("--reverse-chap: its USER must differ from --chap's (tgt's accounts are one namespace)")
    for option, path in (("--kernel", args.kernel), ("--initrd", args.initrd), ("--root", args.root)):
        if not path.exists():
            raise UsageError(f"{option}: {path} does not exist")
    fields = {f.name for f in dataclasses.fields(Options)}
    values = {k: v for k, v in vars(args).items() if k in fields and k not in ("chap", "reverse_chap")}
    return Options(**values, chap=chap, reverse_chap=reverse)


def placeholder_values(opts: Options, port: int, uuid: str) -> dict[str, str]:
    values = {
        "portal": f"{GUEST_HOST}:{port}",
        "host": GUEST_HOST,
        "port": str(port),
        "target": TARGET_IQN,
        "lun": str(opts.lun),
        "uuid": uuid,
        "initiator": INITIATOR_IQN,
    }
    if opts.chap is not None:
        values |= {"user": opts.chap.user, "secret": opts.chap.secret.reveal()}
    if opts.reverse_chap is not None:
        values |= {"ruser": opts.reverse_chap.user, "rsecret": opts.reverse_chap.secret.reveal()}
    return values


def substitute(template: str, values: dict[str, str]) -> str:
    """Fill `{name}` placeholders; an unknown one is an error naming it (a typo must not reach the kernel)."""

    def one(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in values:
            hint = " (needs --chap)" if name in ("user", "secret") else ""
            hint = " (needs --reverse-chap)" if name in ("ruser", "rsecret") else hint
            raise UsageError(f"--cmdline/--append: unknown placeholder {{{name}}}{hint}")
        return values[name]

    return PLACEHOLDER_RE.sub(one, template)


def kernel_args(opts: Options, values: dict[str, str]) -> str:
    middle = opts.cmdline if opts.cmdline is not None else IBFT_CMDLINE
    return " ".join(part for part in (BASE_APPEND, substitute(middle, values), substitute(opts.append, values)) if part)


# --- redaction ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Redactor:
    """Replaces every given secret by `***`; longest first, so a secret inside another goes with it."""

    secrets: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for secret in sorted((s for s in self.secrets if s), key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text


# --- reading the console --------------------------------------------------------------------------------------


@dataclass
class Tracker:
    """Sans-I/O: feed console lines with the host's clock; it collects phases and watches for the expected line."""

    expect: re.Pattern[str]
    events: list[Event] = field(default_factory=list)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    matched: str | None = None
    causes: list[str] = field(default_factory=list)
    _compiled: tuple[tuple[Phase, re.Pattern[str] | None], ...] = ()

    def __post_init__(self) -> None:
        self._compiled = tuple((p, re.compile(p.pattern) if p.pattern else None) for p in PHASES)

    def seen(self, phase: str) -> Event | None:
        return next((e for e in self.events if e.phase == phase), None)

    def feed(self, line: str, wall: float) -> bool:
        """True once the expected line has appeared."""
        line = line.rstrip("\r\n").replace("\r", "")
        self.tail.append(line)
        if len(self.causes) < MAX_CAUSES and CAUSE_RE.search(line) and line not in self.causes:
            self.causes.append(line)
        mark = MARK_RE.search(line)
        stamp = STAMP_RE.search(line)
        seen = {e.phase for e in self.events}
        for phase, pattern in self._compiled:
            if phase.name in seen:
                continue
            if mark and phase.marker == mark.group("name"):
                detail = (mark.group("detail") or "").strip()
                self._add(phase, wall, float(mark.group("uptime")), detail)
            elif pattern is not None and (found := pattern.search(line)):
                detail = found.group(1) if found.groups() and found.group(1) else ""
                self._add(phase, wall, float(stamp.group(1)) if stamp else None, detail)
        if self.matched is None and self.expect.search(line):
            self.matched = line
        return self.matched is not None

    def _add(self, phase: Phase, wall: float, uptime: float | None, detail: str) -> None:
        self.events.append(Event(phase.name, phase.label, round(wall, 2), uptime, detail))
        # phases in boot order, whatever order the console showed them in (pyiscsi echoes its marks twice)
        self.events.sort(key=lambda e: PHASE_NAMES.index(e.phase))


def split_lines(pending: bytearray, chunk: bytes, limit: int = 64 * 1024) -> list[str]:
    pending.extend(chunk)
    lines = []
    while (cut := pending.find(b"\n")) >= 0 or len(pending) >= limit:
        cut = cut if cut >= 0 else limit - 1
        lines.append(bytes(pending[: cut + 1]).decode("utf-8", errors="replace"))
        del pending[: cut + 1]
    return lines


# --- reports --------------------------------------------------------------------------------------------------


def timeline_lines(outcome: Outcome) -> list[str]:
    rows = [f"  {'phase':10} {'label':30} {'host s':>7} {'guest s':>8}  detail"]
    for e in outcome.events:
        uptime = f"{e.uptime:8.2f}" if e.uptime is not None else f"{'-':>8}"
        rows.append(f"  {e.phase:10} {e.label:30} {e.wall:7.1f} {uptime}  {e.detail}".rstrip())
    return rows


def to_json(outcome: Outcome, opts: Options) -> dict:
    return {
        "tool": PROG,
        "name": opts.name,
        "passed": outcome.passed,
        "reason": outcome.reason,
        "last_phase": outcome.last_phase,
        "wall_seconds": round(outcome.wall, 2),
        "expect": opts.expect,
        "matched": outcome.matched,
        "phases": [dataclasses.asdict(e) for e in outcome.events],
        "boot": {
            "firmware": "uefi" if opts.uefi else "bios",
            "ibft": opts.ibft,
            "lun": opts.lun,
            "target": TARGET_IQN,
            "chap": opts.chap is not None,
            "reverse_chap": opts.reverse_chap is not None,
            "kernel_args": outcome.cmdline,
        },
        "console_log": str(outcome.log_path) if outcome.log_path else None,
        "causes": list(outcome.causes),
        "console_tail": list(outcome.tail),
    }


def _xml_text(text: str) -> str:
    return XML_INVALID_RE.sub("?", text)


def to_junit(outcome: Outcome, opts: Options) -> bytes:
    """One test suite with one test case; a failure element names the last phase and carries the console tail."""
    failures = "0" if outcome.passed else "1"
    suites = ElementTree.Element("testsuites", tests="1", failures=failures, time=f"{outcome.wall:.2f}")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=PROG,
        tests="1",
        failures=failures,
        errors="0",
        skipped="0",
        time=f"{outcome.wall:.2f}",
    )
    case = ElementTree.SubElement(
        suite, "testcase", classname=PROG, name=_xml_text(opts.name), time=f"{outcome.wall:.2f}"
    )
    if not outcome.passed:
        message = f"{outcome.reason}; last phase reached: {outcome.last_phase}"
        failure = ElementTree.SubElement(case, "failure", type="BootFailed", message=_xml_text(message))
        log = f"console log: {outcome.log_path}\n" if outcome.log_path else ""
        causes = "".join(f"{line}\n" for line in outcome.causes)
        causes = f"--- lines naming the cause ---\n{causes}" if causes else ""
        failure.text = _xml_text(f"{message}\n{log}{causes}--- console tail ---\n" + "\n".join(outcome.tail))
    out = ElementTree.SubElement(case, "system-out")
    out.text = _xml_text("\n".join(timeline_lines(outcome)))
    return ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True)


def write_reports(outcome: Outcome, opts: Options, redact: Redactor) -> None:
    """JUnit and JSON, both passed through `redact` as text (so no field can carry a secret)."""
    if opts.junit is not None:
        opts.junit.parent.mkdir(parents=True, exist_ok=True)
        opts.junit.write_text(redact(to_junit(outcome, opts).decode("utf-8")), encoding="utf-8")
    if opts.json is not None:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(redact(json.dumps(to_json(outcome, opts), indent=2)) + "\n", encoding="utf-8")


# --- the boot -------------------------------------------------------------------------------------------------


def _run(argv: list[str], what: str, timeout: float = 600) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise HarnessError(f"{what}: {done.stderr.strip()[-500:]}")
    return done.stdout


def _tree_size(root: Path) -> int:
    return int(_run(["du", "-sb", "--apparent-size", str(root)], "du").split()[0])


def ext4_from_tree(tree: Path, out: Path) -> Path:
    """`mke2fs -d` of a directory, sized for its contents with room to spare (sparse, so it costs nothing)."""
    size_mb = max(64, (_tree_size(tree) * 3 // 2) // (1 << 20) + 64)
    _run(["mke2fs", "-q", "-F", "-t", "ext4", "-L", "vmtest-root", "-d", str(tree), str(out), f"{size_mb}M"], "mke2fs")
    return out


def prepare_root(root: Path, tmp: Path) -> Path:
    """A private image of `root` that the boot may write to: a sparse copy of an image, or a new ext4 from a
    directory or a tarball (unpacked as root, owners and modes kept)."""
    disk = tmp / "root.img"
    if root.is_dir():
        return ext4_from_tree(root, disk)
    if tarfile_like(root):
        tree = tmp / "root-tree"
        tree.mkdir()
        _run(["tar", "-x", "-p", "--numeric-owner", "-f", str(root), "-C", str(tree)], f"tar -x {root}")
        return ext4_from_tree(tree, disk)
    _run(["cp", "--sparse=always", str(root), str(disk)], "cp")
    return disk


def tarfile_like(path: Path) -> bool:
    return any(path.name.endswith(s) for s in (".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.zst", ".tar.bz2"))


def _uuid(image: Path) -> str:
    done = subprocess.run(["blkid", "-o", "value", "-s", "UUID", str(image)], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    return done.stdout.strip()


def _watch(argv: list[str], opts: Options, tracker: Tracker, log_path: Path, redact: Redactor) -> tuple[str, float]:
    """Run QEMU, copy its console (redacted) to the log, feed the tracker; why it ended and the wall seconds."""
    import select

    from harness.qemu import stop

    started = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    pending = bytearray()
    reason = "timeout"
    try:
        with log_path.open("w", encoding="utf-8") as log:
            while (left := opts.timeout - (time.monotonic() - started)) > 0:
                ready, _, _ = select.select([fd], [], [], min(left, 1.0))
                if not ready:
                    continue
                chunk = os.read(fd, 65536)
                lines = (
                    split_lines(pending, chunk)
                    if chunk
                    else [bytes(pending).decode("utf-8", "replace")] * bool(pending)
                )
                done = False
                for line in lines:
                    line = redact(line)
                    log.write(line)
                    if tracker.feed(line, time.monotonic() - started):
                        reason, done = "expected line seen", True
                        break
                log.flush()
                if done:
                    break
                if not chunk:
                    reason = "guest powered off"
                    break
    finally:
        returncode = stop(proc)
    if reason == "guest powered off" and returncode not in (0, None):
        reason = f"qemu exited with status {returncode}"
    with log_path.open("a", encoding="utf-8") as log:
        log.write(f"\n# {PROG}: {redact(shlex.join(argv))}\n")
    return reason, time.monotonic() - started


def boot(opts: Options, redact: Redactor, say: Callable[[str], None]) -> Outcome:
    """One boot: tgtd with the root, then QEMU (through iPXE for --ibft); tgtd and QEMU always stopped after."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from harness.http import StaticServer
    from harness.ipxe import Chap, IpxeScript, SanTarget
    from harness.qemu import Firmware, VmSpec, build_command, choose_accel, uefi_vars
    from tests.support.tgtd import LunSpec, Tgtd

    firmware = Firmware.UEFI if opts.uefi else Firmware.BIOS
    log_path = opts.log or CACHE / "logs" / f"vmtest-{opts.name}-{os.getpid()}-{time.monotonic_ns()}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    tracker = Tracker(re.compile(opts.expect))
    with tempfile.TemporaryDirectory(dir=CACHE, prefix=".vmtest-") as tmp_name, Tgtd() as tgt:
        tmp = Path(tmp_name)
        tmp.chmod(0o755)
        say(f"root: preparing a private copy of {opts.root}")
        disk = prepare_root(opts.root, tmp)
        disk.chmod(0o600)
        target = tgt.add_target(TARGET_IQN, [])
        for lun in range(1, opts.lun):
            tgt.add_lun(target, lun, LunSpec(8 << 20))
        tgt.tgtadm("--mode", "logicalunit", "--op", "new", "--tid", str(target.tid), "--lun", str(opts.lun),
                   "--backing-store", str(disk))  # fmt: skip
        if opts.chap is not None:
            tgt.add_chap(target, opts.chap.user, opts.chap.secret.reveal())
        if opts.reverse_chap is not None:
            tgt.add_mutual_chap(target, opts.reverse_chap.user, opts.reverse_chap.secret.reveal())
        values = placeholder_values(opts, tgt.port, _uuid(disk))
        append = kernel_args(opts, values)
        accel = choose_accel(opts.kernel)
        ovmf_vars = uefi_vars(tmp / "OVMF_VARS.fd") if opts.uefi else None
        say(f"tgtd on 127.0.0.1:{tgt.port} serves {TARGET_IQN} lun {opts.lun}; QEMU ({accel}, {firmware.value})")
        if not opts.ibft:
            vm = VmSpec(kernel=opts.kernel, initrd=opts.initrd, append=append, memory_mb=opts.memory_mb,
                        firmware=firmware, uefi_vars=ovmf_vars)  # fmt: skip
            reason, wall = _watch(build_command(vm, accel), opts, tracker, log_path, redact)
        else:
            shutil.copyfile(opts.kernel, tmp / "vmlinuz")
            shutil.copyfile(opts.initrd, tmp / "initrd.img")
            with StaticServer(tmp) as http:
                chap = None
                if opts.chap is not None:
                    rev = opts.reverse_chap
                    chap = Chap(
                        opts.chap.user, opts.chap.secret, rev.user if rev else None, rev.secret if rev else None
                    )
                script = IpxeScript(
                    targets=(SanTarget(GUEST_HOST, tgt.port, opts.lun, TARGET_IQN),),
                    kernel_url=http.guest_url("vmlinuz"),
                    initrd_url=http.guest_url("initrd.img"),
                    cmdline=append if opts.uefi else append + " initrd=initrd.img",
                    initiator_iqn=INITIATOR_IQN,
                    chap=chap,
                    efi=opts.uefi,
                )
                script.write(tmp / "boot.ipxe")
                vm = VmSpec(tftp_dir=tmp, bootfile="boot.ipxe", memory_mb=opts.memory_mb, firmware=firmware,
                            uefi_vars=ovmf_vars)  # fmt: skip
                reason, wall = _watch(build_command(vm, accel), opts, tracker, log_path, redact)
    passed = tracker.matched is not None
    return Outcome(passed, reason, tuple(tracker.events), wall, tuple(tracker.tail), log_path, tracker.matched,
                   redact(append), tuple(tracker.causes))  # fmt: skip


def missing_tools(uefi: bool) -> str | None:
    from harness.qemu import OVMF_CODE, OVMF_VARS

    for tool in ("qemu-system-x86_64", "tgtd", "tgtadm", "mke2fs", "blkid", "tar"):
        if shutil.which(tool) is None:
            return f"{tool} not installed"
    if uefi and not (OVMF_CODE.is_file() and OVMF_VARS.is_file()):
        return f"{OVMF_CODE} not installed (Debian package ovmf)"
    if os.geteuid() != 0:
        return "tgtd needs root"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # secrets are known before anything is printed, even when the arguments turn out to be wrong
    redact = Redactor(tuple(_secrets_in(argv)))

    def shown(text: str) -> str:
        """Redacted, then with the console's control characters (ANSI colours, firmware noise) escaped."""
        return printable(redact(text))

    def say(text: str, err: bool = False) -> None:
        print(f"{PROG}: {shown(text)}", file=sys.stderr if err else sys.stdout, flush=True)

    try:
        opts = parse_args(argv)
    except UsageError as exc:
        say(f"error: {exc}", err=True)
        return EXIT_USAGE
    started = time.monotonic()
    missing = missing_tools(opts.uefi)
    try:
        if missing:
            raise HarnessError(missing)
        outcome = boot(opts, redact, say)
    except (HarnessError, UsageError, OSError, RuntimeError, subprocess.SubprocessError) as exc:
        outcome = Outcome(False, f"setup failed: {exc}", (), time.monotonic() - started, (), None)
    write_reports(outcome, opts, redact)
    say("timeline (host seconds since QEMU started; guest uptime from the console):")
    for line in timeline_lines(outcome):
        print(shown(line))
    if outcome.passed:
        if opts.log is None and outcome.log_path is not None:
            outcome.log_path.unlink(missing_ok=True)
        say(f"PASSED in {outcome.wall:.0f}s: {outcome.matched}")
        return EXIT_OK
    say(f"FAILED: {outcome.reason}; last phase reached: {outcome.last_phase}", err=True)
    if outcome.causes:
        say("lines naming the cause:", err=True)
        for line in outcome.causes:
            print(f"  ! {shown(line)}", file=sys.stderr)
    say("console tail:", err=True)
    for line in outcome.tail[-15:]:
        print(f"  | {shown(line)}", file=sys.stderr)
    if outcome.log_path is not None:
        say(f"console log kept: {outcome.log_path}", err=True)
    return EXIT_FAILED


def _secrets_in(argv: Sequence[str]) -> list[str]:
    """The SECRET parts of --chap/--reverse-chap, in either `--opt V` or `--opt=V` form."""
    found = []
    for index, word in enumerate(argv):
        for option in ("--chap", "--reverse-chap"):
            value = None
            if word == option and index + 1 < len(argv):
                value = argv[index + 1]
            elif word.startswith(option + "="):
                value = word[len(option) + 1 :]
            if value is not None and ":" in value:
                found.append(value.partition(":")[2])
    return found


if __name__ == "__main__":
    sys.exit(main())
