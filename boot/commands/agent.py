"""`pyiscsi agent`: own the recovery of the sessions `pyiscsi boot` handed to the kernel, until told to stop.

    pyiscsi agent [--sessions FILE] [--pid-file FILE] [--daemon] [--cmdline ... | --cmdline-file F] [--ibft S]
    pyiscsi agent --stop [--pid-file FILE] [--timeout S]

It reads the sessions file (boot.sessions, default /run/pyiscsi/sessions.json) and reloads the boot plan exactly
as `pyiscsi handover` does (same command line and iBFT) for the CHAP secrets, which are never stored
(`plan_secrets`). It then listens on NETLINK_ISCSI group 1 and recovers each session whose connection fails
(initiator.recovery): stop with recover, wait DefaultTime2Wait, reconnect with backoff, login through the kernel
(same ISID, TSIH 0), bind, set, start, rescan, within the plan's replacement timeout, one log line per step
(the `log` it passes writes to the console and, through boot.console, to the kernel log).

Ownership protocol: exactly one owner of recovery at any time.
 1. Taking ownership. The agent subscribes to the event group *before* it writes its pid file; the pid file
    existing means "an agent is listening". Whoever starts it (`pyiscsi boot`'s caller in the initramfs) keeps
    its own ownership until then: `pyiscsi agent --daemon` returns (status 0) only once the child is listening
    and the pid file is written, so the caller just runs it and waits for its exit status. A second agent
    refuses to start while the pid file names a live process (status 1). A session that failed before the
    agent listened (its error reached no one) is found FAILED in sysfs when the agent starts, and recovered.
 2. Taking it over from `pyiscsi boot`. At the end of a successful boot (sessions file written, before
    `booted`) `pyiscsi boot` forks the agent (`daemonize`: the child marks its argv[0] with '@', boot.argv0,
    and owns the sessions the boot holds in memory, secrets included, so it needs no interpreter, imports or
    plan of its own) and waits (bounded) until it listens; with another thread still running (a fork copies
    only the calling one) it starts `@pyiscsi-agent -s -P -S -B -m boot agent --daemon` instead and waits for its
    exit status. A failure is one warning line, not a failed boot.
    `rd.pyiscsi.agent=0` / `pyiscsi boot --no-agent` leave it out (`explain` prints the choice).
 3. Keeping it across switch_root. The pid file lives in /run, which moves into the real root. systemd kills
    initramfs processes at switch_root unless argv[0] starts with '@' (systemd's root-storage-daemon rule).
    switch_root also deletes the initramfs's files, the frozen tree's .pyc files included, and each import opens
    its file: the agent imports every module it can reach (PRELOAD), warms the codecs and the CHAP digests and
    changes to '/' before it listens, or, forked by `pyiscsi boot` (whose dracut step before switch_root asks it
    for the handover and waits for the answer), right after it listens and before it serves any request: that
    work is then not on the way to `booted`. It keeps a descriptor of the /run mount and, once '/run' is no longer
    that mount (its root is still the emptied initramfs), changes its root to the parent of where the mount
    went: the real root, where /run, /sys and /dev are again.
 4. Passing it on. `pyiscsi agent --stop` (or SIGTERM/SIGINT to the pid in the pid file) asks the agent to stop.
    It stops listening only when told. A recovery already under way is finished first (bounded by the
    replacement timeout), so the next owner never meets a half-done re-login; then it closes its netlink
    sockets, removes the pid file and exits 0. `--stop` returns only after the pid file is gone (bounded by
    --timeout; status 5 if not). The next owner starts right after: open-iscsi's iscsid, whose start-up sync
    stops with recover and re-logs every session it finds in sysfs, so even a connection error that came in the
    short gap between (reported to no listener, the connection stays failed) is recovered by it. The real
    root has no pyiscsi: `pyiscsi handover` writes `etc/systemd/system/iscsid.service.d/50-pyiscsi.conf`, whose
    `ExecStartPre=-/bin/sh -c '...'` (boot.handover.STOP_AGENT_SH) does what `--stop` does: SIGTERM, then wait
    until the pid file is gone, bounded by the replacement timeout + 30 s.
 The agent never logs out or destroys a session, least of all the root one.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import signal
import stat
import sys
import time
from pathlib import Path

from boot.console import KMSG_INFO, KMSG_WARNING, to_kmsg
from initiator.errors import BadInputError, NetworkError, UsageError, WaitTimeout

TYPE_CHECKING = False  # typing.TYPE_CHECKING's value, without typing: argparse is imported only by boot.cli,
if TYPE_CHECKING:  # and only when a command line has options to parse
    import argparse

KMSG = True
SESSIONS_FILE = "/run/pyiscsi/sessions.json"
PID_FILE = "/run/pyiscsi/agent.pid"
STOP_TIMEOUT = 150.0  # longer than the default replacement timeout: a recovery under way is finished first
READY_TIMEOUT = 15.0
DEFAULT_TIME2WAIT = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from boot.commands.plan_args import add_plan_arguments

    parser.add_argument(
        "--sessions",
        default=SESSIONS_FILE,
        metavar="FILE",
        help=f"what `pyiscsi boot` recorded (default {SESSIONS_FILE})",
    )
    parser.add_argument("--pid-file", default=PID_FILE, metavar="FILE", help=f"(default {PID_FILE})")
    parser.add_argument("--daemon", action="store_true", help="go to the background once listening")
    parser.add_argument("--stop", action="store_true", help="tell the running agent to stop, wait until it has")
    parser.add_argument(
        "--timeout",
        type=float,
        default=STOP_TIMEOUT,
        metavar="S",
        help=f"bound of --stop, seconds (default {STOP_TIMEOUT:g})",
    )
    add_plan_arguments(parser)


def log(line: str, warning: bool = False) -> None:
    with contextlib.suppress(OSError, ValueError):  # a console or journal stream gone at switch_root: kmsg stays
        print(f"pyiscsi agent: {line}", file=sys.stderr if warning else sys.stdout, flush=True)
    to_kmsg(f"agent: {line}", KMSG_WARNING if warning else KMSG_INFO)


# -- surviving switch_root ---------------------------------------------------------------------------------------

# Every module the listening agent can reach. switch_root deletes the initramfs's files while the agent runs, and
# each import opens the module's .pyc file (an extension module is a file too), so all of them are
# imported before the initramfs can go: before the agent reports listening, or (handover_first) before it serves
# the handover request that the step before switch_root waits for; a later import would fail mid-recovery.
PRELOAD = (
    "initiator.recovery",
    "initiator.recovery_policy",
    "initiator.held_session",
    "initiator.credentials",
    "initiator.kernel",
    "initiator.kernel_login",
    "initiator.login",
    "initiator.chap",
    "initiator.client",
    "initiator.transport",
    "initiator.handoff",
    "initiator.negotiation",
    "initiator.portal",
    "initiator.pdu",
    "initiator.status",
    "boot.console",
    "initiator.errors",
    "initiator.secret",
    "boot.atomic",
    "hmac",
    "hashlib",
    "base64",
    "binascii",
    "select",
    "socket",
    "errno",
    "random",
    "traceback",
    "linecache",
    "encodings.idna",
    "encodings.utf_8",
    "encodings.ascii",
    "encodings.latin_1",
    "stringprep",
    "unicodedata",
)


def prepare_for_switch_root(modules=PRELOAD) -> None:  # type: ignore[no-untyped-def]
    """Import what the agent can reach, warm what is looked up lazily (codecs, the CHAP digests: OpenSSL reads
    its configuration at the first digest), and keep no directory of the initramfs as the working one."""
    import codecs
    import hashlib
    import hmac
    import importlib

    for name in modules:
        importlib.import_module(name)
    from initiator.chap import ChapAlgorithm

    for codec in ("idna", "utf-8", "ascii", "latin-1"):
        codecs.lookup(codec)
    "pyiscsi.example".encode("idna")  # socket.getaddrinfo encodes every str host with it
    from initiator.chap import _new_hash

    for algorithm in ChapAlgorithm:
        _new_hash(algorithm).update(b"warm")
    hmac.new(b"k", b"m", hashlib.sha256).digest()
    os.chdir("/")


class RunFollower:
    """Keeps the agent's /sys, /run and /dev after switch_root.

    switch_root moves /run (and /sys, /proc, /dev) into the real root and changes the root of PID 1 only: the
    agent's root stays the emptied initramfs, where /run/pyiscsi/agent.pid and /sys/class/iscsi_session no
    longer exist. It holds a descriptor of the /run mount; once "/run" is no longer that mount, it changes its
    root to the parent of where the mount went (the real root), with `..` from the held directory."""

    def __init__(self, run_dir: str = "/run") -> None:
        self.run_dir = run_dir
        self.fd: int | None = None
        with contextlib.suppress(OSError):
            self.fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def _same(self) -> bool:
        assert self.fd is not None
        held = os.fstat(self.fd)
        try:
            seen = os.stat(self.run_dir)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (seen.st_dev, seen.st_ino)

    def check(self) -> bool:
        """True when it just followed /run into a new root."""
        if self.fd is None or self._same():
            return False
        try:
            os.fchdir(self.fd)
            os.chroot("..")
            os.chdir("/")
        except OSError as exc:
            log(f"switch_root seen, but following {self.run_dir} into the new root failed: {exc}", warning=True)
            self.close()
            return False
        if self._same():
            log(f"switch_root seen: followed {self.run_dir} into the real root")
        else:
            log(f"switch_root seen: the new root has no {self.run_dir} of ours", warning=True)
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# -- the pid file ---------------------------------------------------------------------------------------------


def read_pid(path: Path) -> int | None:
    try:
        return parse_pid(path.read_text())
    except OSError:
        return None


def parse_pid(text: str) -> int | None:
    """A process id written as plain ASCII digits (around whitespace), else None. Never 0 or negative, which
    os.kill would take for a process group or for every process."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) <= 0:
        return None
    return int(text)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_agent(path: Path) -> int | None:
    pid = read_pid(path)
    return pid if pid is not None and alive(pid) else None


def stop_agent(path: Path, timeout: float, sleep=time.sleep, clock=time.monotonic) -> int:  # type: ignore[no-untyped-def]
    pid = running_agent(path)
    if pid is None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a stale file from a dead agent
        print("pyiscsi agent: no agent running; nothing to stop")
        return 0
    os.kill(pid, signal.SIGTERM)
    end = clock() + timeout
    while path.exists() and alive(pid):
        if clock() >= end:
            raise WaitTimeout("agent stop", timeout, f"agent pid {pid} still owns recovery")
        sleep(0.1)
    print(f"pyiscsi agent: agent pid {pid} stopped; recovery is no longer ours")
    return 0


# -- sessions + plan -> what recovery needs -------------------------------------------------------------------


def plan_secrets(plan):  # type: ignore[no-untyped-def]
    """For `read_sessions`: a recorded session's CHAP credentials from the plan entry it came from (matched by
    target name, the exact portal first, then a discovery entry by portal), checked against the user names it
    logged in with. A session that used no CHAP gets none, whatever the plan says."""
    from initiator.credentials import Credentials

    def secrets(s, username, username_in):  # type: ignore[no-untyped-def]
        portal = (s.portal.address, s.portal.port)
        candidates = [t for t in plan.targets if t.name == s.target] or [
            t for t in plan.targets if t.name is None and (t.address, t.port) == portal
        ]
        exact = [t for t in candidates if (t.address, t.port) == portal]
        target = (exact or candidates or [None])[0]
        chap = target.chap if target is not None else None
        reverse = target.reverse_chap if target is not None else None
        if username is not None and (chap is None or chap.username != username):
            raise BadInputError(
                "plan", s.target, f"session {s.sid} logged in as CHAP user {username!r}; the plan has no secret"
            )
        if username_in is not None and (reverse is None or reverse.username != username_in):
            raise BadInputError(
                "plan", s.target, f"session {s.sid} used mutual CHAP as {username_in!r}; the plan has no secret"
            )
        return Credentials.of(chap if username is not None else None, reverse if username_in is not None else None)

    return secrets


def owned_sessions(sessions, plan, time2wait: float = DEFAULT_TIME2WAIT):  # type: ignore[no-untyped-def]
    """OwnedSession for each recorded session (read with `plan_secrets(plan)`, so with its CHAP secrets)."""
    from initiator.recovery import OwnedSession

    planned = float(plan.timeouts.replacement)  # a path of a multipath LUN recorded its own (boot.paths)
    return [
        OwnedSession(row.session, float(row.replacement_timeout(planned)), time2wait, root=row.root) for row in sessions
    ]


# -- run -----------------------------------------------------------------------------------------------------


def resume_collection() -> None:
    """The agent runs for the system's life, so its cyclic garbage collector runs too. The process's entry
    (boot.cli.entry) and `pyiscsi boot` turn it off while they start; what they made is frozen first, so the
    agent's collections never scan it again (nor write to the pages a fork shares with its parent)."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _serve(  # type: ignore[no-untyped-def]
    owned, pid_file: Path, ready_fd: int | None, plan=None, handover_first: bool = False
) -> int:
    """Listen and recover until told to stop. `handover_first`: the caller's step before switch_root asks for
    the handover and waits for its answer (pyiscsi boot's fork under our dracut module), so with a plan the
    imports for after switch_root are made once the agent listens, before it serves anything, and not while the
    boot waits for it to listen."""
    from boot.atomic import write_atomic
    from initiator.kernel import NetlinkIscsi
    from initiator.recovery import RecoveryLoop

    resume_collection()
    stop_r, stop_w = os.pipe()
    os.set_blocking(stop_w, False)

    def on_signal(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.write(stop_w, b"x")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    asked_r, asked_w = os.pipe()
    os.set_blocking(asked_w, False)
    os.set_blocking(asked_r, False)

    def on_request(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            os.write(asked_w, b"h")

    if plan is not None:  # before anyone can read the pid file: SIGUSR1's default action would end the agent
        signal.signal(signal.SIGUSR1, on_request)
    with contextlib.suppress(OSError):  # what the step before switch_root checks before it signals (ps shows it)
        Path("/proc/self/comm").write_text(COMM)
    deferred = handover_first and plan is not None
    if not deferred:
        prepare_for_switch_root()
    state_dir = pid_file.parent
    follower = RunFollower("/" + pid_file.resolve().parts[1] if len(pid_file.resolve().parts) > 1 else "/run")
    switched = []

    class Loop(RecoveryLoop):
        def step(self, timeout: float, stop_fd: int | None = None) -> bool:
            if follower.check():
                switched.append(True)
            return super().step(timeout, stop_fd)

    def asked() -> None:
        with contextlib.suppress(OSError):
            os.read(asked_r, 64)
        serve_handover(state_dir, plan, bool(switched))

    try:
        with NetlinkIscsi() as netlink:  # subscribed from here on: only now may the pid file say "listening"
            write_atomic(pid_file, f"{os.getpid()}\n", mode=0o644)
            labels = ", ".join(f"{s.sid}{' (root)' if s.root else ''}" for s in owned) or "none"
            log(f"listening for connection errors; owning recovery of session(s) {labels} (pid {os.getpid()})")
            if ready_fd is not None:
                os.write(ready_fd, b"ok")
                os.close(ready_fd)
            loop = Loop(netlink, owned, lambda line: log(line))
            if deferred:  # an error that comes meanwhile waits in the subscribed socket
                prepare_for_switch_root()
            if plan is not None:  # the step before switch_root may ask for the handover (HANDOVER_REQUEST)
                loop.also_wait[asked_r] = asked
                prepare_handover()
            loop.run(stop_r)
    finally:  # the netlink sockets are closed: only now may the pid file go (the next owner waits for that)
        follower.check()
        follower.close()
        if read_pid(pid_file) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                pid_file.unlink()
    log("stopped listening: recovery is now the next owner's")
    return 0


# -- the handover, on request ---------------------------------------------------------------------------------

# The step before switch_root (pyiscsi-lib.sh's pyiscsi_handover) writes the real root's path here, and on a
# second line its own pid, then sends the agent SIGUSR1 and waits (bounded) for HANDOVER_DONE: the agent writes
# the real root's files with the plan it holds, so no third interpreter starts, and wakes the waiter with
# HANDOVER_WAKE. Without an agent (or no answer) the step runs `pyiscsi handover`.
COMM = "pyiscsi-agent"  # /proc/<pid>/comm of a listening agent, however it was started
HANDOVER_REQUEST = "handover.request"
# "<exit status> <the waiter's pid>\n" once the files are written (0) or the cause was logged: the pid, the request's
# second line, tells the waiter the answer is to its own request, with no need to remove an earlier answer first
HANDOVER_DONE = "handover.done"
# Why SIGURG: the waiting shell traps it, and every other process ignores it by default (systemd's PID 1 too,
# where SIGWINCH would start kbrequest.target), so a pid that is no longer the waiter's is left unharmed.
HANDOVER_WAKE = signal.SIGURG


def prepare_handover() -> None:
    """Import what the handover needs while the boot is mounting the root, not when it is asked."""
    import boot.commands.handover
    import boot.handover
    import boot.keepnet
    import boot.net.state  # noqa: F401


def serve_handover(state_dir: Path, plan, switched: bool) -> int:  # type: ignore[no-untyped-def]
    """Carry out one request: write the real root's files, log what `pyiscsi handover` prints, then write the
    status to HANDOVER_DONE (the requester waits for that file). Returns the status."""
    from boot.atomic import write_atomic
    from boot.commands.handover import hand_over
    from initiator.errors import PyiscsiError
    from initiator.printable import printable

    status = 1
    waiter = ""
    try:
        if switched:
            raise UsageError("asked after switch_root: the handover is the initramfs's step")
        given, _, waiter = (state_dir / HANDOVER_REQUEST).read_text(errors="replace").partition("\n")
        given = given.strip()
        sysroot = Path(given)
        if not sysroot.is_absolute() or not sysroot.is_dir():
            raise BadInputError("--sysroot", printable(given), "not a directory (is the real root mounted?)")
        for line in hand_over(sysroot, state_dir, Path("/"), plan, lambda line: log(f"handover: {line}", True)):
            log(f"handover: {line}")
        status = 0
    except PyiscsiError as exc:
        log(f"handover failed: {exc}", warning=True)
    except OSError as exc:
        log(f"handover failed: {exc.filename or ''}: {exc.strerror}", warning=True)
    answered = parse_pid(waiter)  # the waiter's pid, named in the answer and signalled
    try:
        text = f"{status} {answered}\n" if answered is not None else f"{status}\n"
        write_atomic(state_dir / HANDOVER_DONE, text, mode=0o644)
    except OSError as exc:
        log(f"handover: cannot write {HANDOVER_DONE}: {exc.strerror}", warning=True)
    wake_waiter(answered)
    return status


def wake_waiter(pid: int | None) -> None:
    """Signal the requester whose pid the request's second line gave (none on a request without one)."""
    if pid is not None:
        with contextlib.suppress(OSError):  # gone: it looks for HANDOVER_DONE by itself within its bound
            os.kill(pid, HANDOVER_WAKE)


def _detach_stdio() -> None:
    """A daemon must not hold its caller's pipes open (`out=$(pyiscsi agent --daemon)` would never return):
    stdin from /dev/null; stdout/stderr to /dev/null when they are pipes (the kernel-log copy of every line
    remains), kept when they are a console or a file."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    fifo = {}
    for fd in (1, 2):
        try:
            fifo[fd] = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except OSError:
            fifo[fd] = True
    for fd in (1, 2):
        if fifo[fd]:  # `pyiscsi boot` reads the starter's stderr through a pipe: warnings go where stdout goes
            os.dup2(1 if fd == 2 and not fifo[1] else null, fd)
    os.close(null)


def run(args: argparse.Namespace) -> int:
    from boot.commands.plan_args import plan_from_args
    from boot.sessions import read_sessions

    pid_file = Path(args.pid_file)
    if args.stop:
        if args.daemon:
            raise UsageError("--stop and --daemon exclude each other")
        return stop_agent(pid_file, args.timeout)
    other = running_agent(pid_file)
    if other is not None:
        raise UsageError(f"agent pid {other} already owns recovery ({pid_file}); stop it first with --stop")
    plan = functools.cache(lambda: plan_from_args(args))  # loaded once every record is checked, as ever
    rows = read_sessions(args.sessions, lambda s, user, user_in: plan_secrets(plan())(s, user, user_in))
    owned = owned_sessions(rows, plan())
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    if not args.daemon:
        return _serve(owned, pid_file, None, plan)
    child = daemonize(owned, pid_file, plan=plan)
    print(f"pyiscsi agent: pid {child} listening; pid file {pid_file}")
    return 0


def daemonize(  # type: ignore[no-untyped-def]
    owned, pid_file: Path, storage_daemon: bool = False, plan=None, handover_first: bool = False
) -> int:
    """Fork the listening agent and return its pid once it listens (step 1 of the ownership protocol); raises
    with the cause otherwise. `storage_daemon`: the child marks its argv[0] with '@' (boot.argv0) itself, for a
    fork of `pyiscsi boot`, whose argv is the interpreter's. `handover_first`: see _serve."""
    ready_r, ready_w = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - exercised in subprocesses and the VM tests
        os.close(ready_r)
        os.setsid()
        status = 1
        try:
            if storage_daemon:
                from boot.argv0 import mark_storage_daemon

                if not mark_storage_daemon():
                    raise NetworkError("cannot mark argv[0] with '@': systemd would kill the agent at switch_root")
            _detach_stdio()
            status = _serve(owned, pid_file, ready_w, plan, handover_first)
        except BaseException as exc:  # the child must never return into the parent's code
            log(f"failed: {exc}", warning=True)
        finally:
            os._exit(status)
    os.close(ready_w)
    import select

    ready, _, _ = select.select([ready_r], [], [], READY_TIMEOUT)
    answer = os.read(ready_r, 2) if ready else b""
    os.close(ready_r)
    if answer != b"ok":
        if ready:  # the pipe closed without a word: the child failed (its one line went to the kernel log)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child, 0)
            raise NetworkError(f"agent pid {child} exited before listening (see the kernel log for why)")
        raise WaitTimeout("agent start", READY_TIMEOUT, f"agent pid {child} did not report listening")
    return child
