from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boot.commands.agent import owned_sessions, plan_secrets, read_pid, running_agent, stop_agent
from boot.plan import BootPlan, TargetPlan, Timeouts
from boot.sessions import SessionState, read_sessions, write_sessions
from initiator.credentials import Chap, Credentials
from initiator.errors import BadInputError, WaitTimeout
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.record import replace
from initiator.secret import Secret

REPO = Path(__file__).resolve().parents[2]
ALICE = Chap("alice", Secret("alice-secret"))
BOB = Chap("bob", Secret("bob-secret"))
ROOT_T, DATA_T = "iqn.2026-11.test:root", "iqn.2026-11.test:data"
# What `pyiscsi boot` recorded: the file keeps the CHAP user names, not the secrets (which may differ here)
ROOT = SessionState(
    HeldSession(
        target=ROOT_T, portal=Portal("10.0.2.2", 3260), tpgt=1, lun=1, sid=3, host_no=2,
        isid=bytes.fromhex("800000000001"), tsih=7, initiator_name="iqn.2026-11.test:init", header_digest="CRC32C",
        data_digest="None", credentials=Credentials(Chap("alice", Secret("recorded-never"))),
    ),
    device="/dev/sda", root=True, seconds=1.5,
)  # fmt: skip
DATA = replace(ROOT, session=replace(ROOT.session, target=DATA_T, sid=4, credentials=None), root=False)
RECORDED_MUTUAL = Credentials(Chap("alice", Secret("recorded-never")), Chap("bob", Secret("x")))
MUTUAL = replace(ROOT, session=replace(ROOT.session, credentials=RECORDED_MUTUAL))


def _owned(session: SessionState, plan: BootPlan, tmp_path: Path):  # type: ignore[no-untyped-def]
    """What the agent does: read the recorded session back with the plan's secrets, then own it."""
    write_sessions([session], tmp_path / "sessions.json")
    return owned_sessions(read_sessions(tmp_path / "sessions.json", plan_secrets(plan)), plan)


def _plan(*targets: TargetPlan, replacement: float = 90.0) -> BootPlan:
    return BootPlan("iqn.2026-11.test:init", targets=targets, timeouts=Timeouts(replacement=replacement))


@pytest.mark.parametrize(
    ("session", "targets", "chap", "reverse"),
    [
        (ROOT, [TargetPlan(ROOT_T, "10.0.2.2", chap=ALICE)], ALICE, None),
        # a SendTargets plan (no name) is matched by portal
        (ROOT, [TargetPlan(None, "10.0.2.2", 3260, chap=ALICE)], ALICE, None),
        # the exact portal wins over another portal of the same target
        (
            ROOT,
            [TargetPlan(ROOT_T, "10.9.9.9", chap=BOB), TargetPlan(ROOT_T, "10.0.2.2", chap=ALICE)],
            ALICE,
            None,
        ),
        # no CHAP in the session: none is used, whatever the plan says
        (DATA, [TargetPlan(DATA_T, "10.0.2.2", chap=ALICE)], None, None),
        (MUTUAL, [TargetPlan(ROOT_T, "10.0.2.2", chap=ALICE, reverse_chap=BOB)], ALICE, BOB),
    ],
)
def test_recorded_sessions_get_their_secrets_from_the_plan(session, targets, chap, reverse, tmp_path) -> None:
    (owned,) = _owned(session, _plan(*targets), tmp_path)
    assert owned.session.credentials == Credentials.of(chap, reverse)
    assert owned.session == replace(session.session, credentials=Credentials.of(chap, reverse))
    assert (owned.sid, owned.host_no, owned.root) == (session.session.sid, 2, session.root)
    assert owned.replacement_timeout == 90.0


@pytest.mark.parametrize(
    ("session", "targets", "message"),
    [
        (ROOT, [], "session 3 logged in as CHAP user 'alice'; the plan has no secret"),
        (ROOT, [TargetPlan(ROOT_T, "10.0.2.2", chap=BOB)], "CHAP user 'alice'"),
        (MUTUAL, [TargetPlan(ROOT_T, "10.0.2.2", chap=ALICE)], "used mutual CHAP as 'bob'"),
    ],
)
def test_a_session_whose_secret_the_plan_lacks_is_refused(session, targets, message: str, tmp_path) -> None:
    with pytest.raises(BadInputError, match=message) as caught:
        _owned(session, _plan(*targets), tmp_path)
    assert "secret'" not in str(caught.value) and "bob-secret" not in str(caught.value)


def test_a_stale_pid_file_is_no_agent(tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid_file.write_text(dead.stdout)
    assert running_agent(pid_file) is None
    assert stop_agent(pid_file, 1.0) == 0
    assert not pid_file.exists()


@pytest.mark.parametrize(
    ("text", "pid"),
    [
        ("123\n", 123),
        (" 7 \n", 7),
        ("", None),
        ("x", None),
        ("0", None),  # os.kill(0, ...) is this process group
        ("-1", None),  # os.kill(-1, ...) is every process
        ("+5", None),
        ("\u0663", None),  # a digit, but not ASCII
        ("12 34", None),
    ],
)
def test_read_pid(tmp_path: Path, text: str, pid: int | None) -> None:
    (tmp_path / "p").write_text(text)
    assert read_pid(tmp_path / "p") == pid
    assert read_pid(tmp_path / "missing") is None


def test_stop_is_bounded_when_the_agent_does_not_go(tmp_path: Path) -> None:
    pid_file = tmp_path / "agent.pid"
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(15, signal.SIG_IGN); time.sleep(30)"]
    )
    try:
        time.sleep(0.3)
        pid_file.write_text(f"{stubborn.pid}\n")
        now = [0.0]

        def sleep(seconds: float) -> None:
            now[0] += seconds

        with pytest.raises(WaitTimeout, match=f"wait 'agent stop' ran out after 2s: agent pid {stubborn.pid}"):
            stop_agent(pid_file, 2.0, sleep=sleep, clock=lambda: now[0])
    finally:
        stubborn.kill()
        stubborn.wait()


# -- the ownership protocol, end to end with a fake kernel ---------------------------------------------------

# A process of ours with the fake kernel's netlink and no kernel log (the start of each script below)
FAKE_KERNEL_PRELUDE = """
import sys, threading
sys.path[:0] = [{repo!r}]
import boot.commands.agent as agent
import initiator.kernel as kernel
from tests.initiator.fake_kernel import FakeKernel

class FakeNetlink(FakeKernel):
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.close()

"""
FAKE_AGENT = (
    FAKE_KERNEL_PRELUDE
    + """
if {broken!r}:
    def FakeNetlink():  # noqa: F811
        raise kernel.KernelError("/sys/class/iscsi_transport/tcp/handle: no iscsi_tcp transport")
kernel.NetlinkIscsi = FakeNetlink
agent.to_kmsg = lambda *a, **k: False  # never the test machine's kernel log
import gc
gc.disable()  # as the process's entry (boot.cli.entry) leaves it
_resume = agent.resume_collection
def resume_collection():
    _resume()
    print(f"[collector {{'on' if gc.isenabled() else 'off'}}, {{gc.get_freeze_count()}} frozen]", flush=True)
agent.resume_collection = resume_collection
from boot.cli import main
sys.exit(main(sys.argv[1:]))
"""
)


@pytest.fixture
def agent_env(tmp_path: Path, request):
    sessions = tmp_path / "sessions.json"
    write_sessions([ROOT], sessions)
    script = tmp_path / "fake_agent.py"
    script.write_text(FAKE_AGENT.format(repo=str(REPO), broken=getattr(request, "param", False)))
    pid_file = tmp_path / "agent.pid"
    cmdline = "netroot=iscsi:alice:alice-secret@10.0.2.2::3260:1:iqn.2026-11.test:root ip=none"
    base = [sys.executable, str(script), "agent", "--sessions", str(sessions), "--pid-file", str(pid_file)]
    return base, ["--cmdline", cmdline, "--ibft", "none"], pid_file


def _wait_for(path: Path, bound: float = 20.0) -> None:
    end = time.monotonic() + bound
    while not path.exists():
        assert time.monotonic() < end, f"{path} did not appear within {bound}s"
        time.sleep(0.05)


def test_the_agent_listens_then_writes_its_pid_file_and_stops_only_when_told(agent_env) -> None:
    base, plan, pid_file = agent_env
    first = subprocess.Popen([*base, *plan], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(pid_file)
        assert read_pid(pid_file) == first.pid
        time.sleep(0.3)
        assert first.poll() is None  # it keeps listening until told
        second = subprocess.run([*base, *plan], capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        assert f"agent pid {first.pid} already owns recovery" in second.stderr
        stopped = subprocess.run([*base, "--stop", "--timeout", "20"], capture_output=True, text=True, timeout=30)
        assert stopped.returncode == 0, stopped.stderr
        assert f"agent pid {first.pid} stopped" in stopped.stdout
        out, err = first.communicate(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    assert not pid_file.exists()
    assert "listening for connection errors; owning recovery of session(s) 3 (root)" in out
    collector = out.split("[collector ", 1)[1].split("]")[0]  # the agent runs for long: it collects again
    assert collector.startswith("on, ") and int(collector.split()[1]) > 0  # what the start made is frozen
    assert out.rstrip().endswith("stopped listening: recovery is now the next owner's")
    assert "alice-secret" not in out + err


# the requester's shell: it traps the agent's wake-up (SIGURG) as pyiscsi-lib.sh's pyiscsi_handover does
WAITER = "trap 'echo woken; kill $!; exit 0' URG; /bin/sleep 60 > /dev/null & echo ready; wait $!; echo \"not woken\""


@pytest.mark.parametrize(
    ("sysroot_kind", "waiter"),
    [
        ("dir", "shell"),  # the step's own request: the path, then its pid, which the agent wakes when done
        ("missing", "shell"),  # a failed handover wakes the waiter too
        ("dir", None),  # a request of one line (an older step): the files, no signal to anyone
        ("dir", "1; reboot"),  # a second line that is not a pid: ignored
    ],
)
def test_asked_by_sigusr1_the_agent_writes_the_real_roots_files(
    agent_env, tmp_path: Path, sysroot_kind, waiter
) -> None:
    """The step before switch_root (pyiscsi-lib.sh's pyiscsi_handover) asks the listening agent instead of
    starting `pyiscsi handover`: the same files, the status in handover.done, the waiting shell woken at once, no
    secret on its output."""
    import signal

    from boot.commands.agent import COMM, HANDOVER_DONE, HANDOVER_REQUEST

    base, plan, pid_file = agent_env
    sysroot = tmp_path / "sysroot"
    if sysroot_kind == "dir":
        (sysroot / "etc").mkdir(parents=True)
    shell = None
    if waiter == "shell":
        shell = subprocess.Popen(["sh", "-c", WAITER], stdout=subprocess.PIPE, text=True)
        assert shell.stdout is not None and shell.stdout.readline() == "ready\n"
        waiter = str(shell.pid)
    agent = subprocess.Popen([*base, *plan], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(pid_file)
        assert Path(f"/proc/{agent.pid}/comm").read_text().strip() == COMM  # what the shell checks first
        (pid_file.parent / HANDOVER_REQUEST).write_text(f"{sysroot}\n" + (f"{waiter}\n" if waiter else ""))
        os.kill(agent.pid, signal.SIGUSR1)
        _wait_for(pid_file.parent / HANDOVER_DONE)
        status = (pid_file.parent / HANDOVER_DONE).read_text()
        assert agent.poll() is None  # still listening
        if shell is not None:
            assert shell.communicate(timeout=30)[0] == "woken\n"  # not the sleep's 60 s end
    finally:
        if shell is not None and shell.poll() is None:
            shell.kill()
            shell.wait()
        assert stop_agent(pid_file, 20.0) == 0
        out, err = agent.communicate(timeout=20)
    # the answer names the waiter it answers (a pid the shell compares with its own), else only the status
    answered = f" {waiter}" if waiter is not None and waiter.isdigit() else ""
    if sysroot_kind == "dir":
        assert status == f"0{answered}\n", out + err
        records = list((sysroot / "etc/iscsi/nodes").rglob("*"))
        record = next(r for r in records if r.is_file())
        assert record.stat().st_mode & 0o777 == 0o600 and "alice-secret" in record.read_text()
        assert f"handover: root session 3: {ROOT_T} 10.0.2.2:3260 -> /dev/sda" in out
        assert "file(s) written for the real root" in out
    else:
        assert status == f"1{answered}\n"
        assert "pyiscsi agent: handover failed: " in err and "not a directory (is the real root mounted?)" in err, err
    assert "alice-secret" not in out + err


def test_daemon_mode_returns_once_the_child_listens(agent_env) -> None:
    base, plan, pid_file = agent_env
    started = subprocess.run([*base, "--daemon", *plan], capture_output=True, text=True, timeout=30)
    child = read_pid(pid_file)
    try:
        assert started.returncode == 0, started.stderr
        assert child is not None and child != os.getpid()
        assert f"pid {child} listening" in started.stdout
        assert running_agent(pid_file) == child
        assert stop_agent(pid_file, 20.0) == 0
        assert not pid_file.exists()
    finally:
        if child is not None and running_agent(pid_file) == child:
            os.kill(child, 9)


def test_stop_and_daemon_exclude_each_other(agent_env) -> None:
    base, _plan, _pid_file = agent_env
    done = subprocess.run([*base, "--stop", "--daemon"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "--stop and --daemon exclude each other" in done.stderr


@pytest.mark.parametrize("agent_env", [True], indirect=True)
def test_a_daemon_that_cannot_listen_fails_its_start_in_one_line(agent_env) -> None:
    base, plan, pid_file = agent_env
    started = subprocess.run([*base, "--daemon", *plan], capture_output=True, text=True, timeout=30)
    assert started.returncode == 3
    assert started.stderr.startswith("pyiscsi agent: agent pid ") and "exited before listening" in started.stderr
    assert len(started.stderr.splitlines()) == 1
    assert not pid_file.exists()


@pytest.mark.parametrize("agent_env", [True], indirect=True)
def test_in_the_foreground_the_missing_transport_is_the_error(agent_env) -> None:
    base, plan, pid_file = agent_env
    done = subprocess.run([*base, *plan], capture_output=True, text=True, timeout=30)
    assert done.returncode == 3
    assert done.stderr.strip() == "pyiscsi agent: /sys/class/iscsi_transport/tcp/handle: no iscsi_tcp transport"
    assert not pid_file.exists()


# -- `pyiscsi boot` starts the agent -------------------------------------------------------------------------


def _boot_args(plan: list[str], **extra: object):  # type: ignore[no-untyped-def]
    import argparse

    return argparse.Namespace(cmdline=plan[1], cmdline_file=None, ibft=plan[3], **extra)


@pytest.fixture
def boot_starts(agent_env, monkeypatch: pytest.MonkeyPatch):
    """`start_agent` with the real argv checked, then the fake-kernel agent run with the same arguments."""
    from boot.commands import boot as boot_command

    _base, plan, pid_file = agent_env
    seen: list[list[str]] = []
    real = boot_command.agent_command

    def command(args, state_dir, cmdline_file):  # type: ignore[no-untyped-def]
        argv = real(args, state_dir, cmdline_file)
        seen.append(argv)
        assert argv[0] == "@pyiscsi-agent" and argv[1:7] == ["-s", "-P", "-S", "-B", "-m", "boot"]
        return ["@pyiscsi-agent", str(pid_file.parent / "fake_agent.py"), *argv[argv.index("agent") :]]

    monkeypatch.setattr(boot_command, "agent_command", command)
    return boot_command, plan, pid_file, seen


def test_the_spawned_agent_is_an_at_daemon_and_the_start_returns_once_it_listens(boot_starts, monkeypatch) -> None:
    boot_command, plan, pid_file, seen = boot_starts
    state_dir = pid_file.parent
    assert boot_command.spawn_agent(_boot_args(plan), state_dir) is None
    child = running_agent(pid_file)
    try:
        assert child is not None
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        assert argv[0] == b"@pyiscsi-agent"  # what systemd looks at when it spares root-storage daemons
        assert b"alice-secret" not in b" ".join(argv)  # the --cmdline text went through a file, not the argv
        assert "--cmdline-file" in seen[0] and not (state_dir / ".agent-cmdline").exists()
        assert seen[0][seen[0].index("--pid-file") + 1] == str(pid_file)
        assert Path(f"/proc/{child}/cwd").resolve() == Path("/")
    finally:
        assert stop_agent(pid_file, 20.0) == 0


@pytest.mark.parametrize("agent_env", [True], indirect=True)
def test_an_agent_that_does_not_start_is_one_warning_line(boot_starts, monkeypatch) -> None:
    boot_command, plan, pid_file, _seen = boot_starts
    warning = boot_command.spawn_agent(_boot_args(plan), pid_file.parent)
    assert warning is not None and "\n" not in warning
    assert warning.startswith("recovery agent not started: pyiscsi agent: agent pid ")
    assert "exited before listening" in warning and warning.endswith("nobody owns recovery until iscsid")
    assert "alice-secret" not in warning
    assert not pid_file.exists() and not (pid_file.parent / ".agent-cmdline").exists()


def test_a_missing_interpreter_is_a_warning_too(boot_starts, monkeypatch) -> None:
    boot_command, plan, pid_file, _seen = boot_starts
    monkeypatch.setattr(boot_command.sys, "executable", str(pid_file.parent / "no-python"))
    warning = boot_command.spawn_agent(_boot_args(plan), pid_file.parent)
    assert warning is not None and warning.startswith("recovery agent not started (No such file or directory)")


FORKING_BOOT = (
    FAKE_KERNEL_PRELUDE
    + """
kernel.NetlinkIscsi = FakeNetlink
agent.to_kmsg = lambda *a, **k: False
from pathlib import Path
from boot.commands import boot as boot_command
from boot.commands.plan_args import plan_from_args
from boot.sessions import read_sessions
import argparse
args = argparse.Namespace(cmdline={cmdline!r}, cmdline_file=None, ibft="none")
plan = plan_from_args(args)
rows = read_sessions({sessions!r}, agent.plan_secrets(plan))
if {thread!r}:  # a family's bring-up still running: no fork
    threading.Thread(target=threading.Event().wait, args=(5,), daemon=True).start()
    boot_command.spawn_agent = lambda args, state_dir: "spawned instead"
warning, how = boot_command.start_agent(args, Path({state_dir!r}), plan, rows)
print(warning, how)
"""
)


def _forking_boot(agent_env, tmp_path: Path, thread: bool) -> subprocess.CompletedProcess[str]:
    _base, plan, pid_file = agent_env
    script = tmp_path / "forking_boot.py"
    sessions = str(tmp_path / "sessions.json")
    state_dir = str(pid_file.parent)
    script.write_text(
        FORKING_BOOT.format(repo=str(REPO), cmdline=plan[1], sessions=sessions, state_dir=state_dir, thread=thread)
    )
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False)


def test_boot_forks_the_agent_which_marks_itself_as_a_storage_daemon(agent_env, tmp_path: Path) -> None:
    _base, _plan, pid_file = agent_env
    done = _forking_boot(agent_env, tmp_path, thread=False)
    child = running_agent(pid_file)
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["None", "forked"]
        assert child is not None
        # what systemd looks at when it spares root-storage daemons; the boot's argv, rewritten in place
        assert Path(f"/proc/{child}/cmdline").read_bytes().rstrip(b"\0") == b"@pyiscsi-agent"
        assert Path(f"/proc/{child}/exe").resolve() == Path(sys.executable).resolve()
        # it listens first and then prepares for switch_root (its imports, '/' as its working directory)
        end = time.monotonic() + 20
        while Path(f"/proc/{child}/cwd").resolve() != Path("/"):
            assert time.monotonic() < end, "the forked agent did not change to '/'"
            time.sleep(0.05)
        assert "alice-secret" not in done.stdout + done.stderr
    finally:
        assert stop_agent(pid_file, 20.0) == 0


def test_with_another_thread_running_the_boot_spawns_the_agent_instead(agent_env, tmp_path: Path) -> None:
    _base, _plan, pid_file = agent_env
    done = _forking_boot(agent_env, tmp_path, thread=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["spawned", "instead", "started"]
    assert running_agent(pid_file) is None


FOLLOW = """
import os, sys
sys.path[:0] = [{repo!r}]
import boot.commands.agent as agent
agent.to_kmsg = lambda *a, **k: False
old = {old!r}
follower = agent.RunFollower(old + "/run")
os.chroot(old); os.chdir("/")  # the agent's root: the initramfs
follower.run_dir = "/run"
print("before", follower.check())
print("ready", flush=True)
sys.stdin.readline()
print("after", follower.check(), sorted(os.listdir("/")), flush=True)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_after_switch_root_the_agent_follows_run_into_the_new_root(tmp_path: Path) -> None:
    old = tmp_path / "initramfs"
    (old / "run").mkdir(parents=True)
    new = tmp_path / "realroot"
    new.mkdir()
    (new / "sbin").mkdir()
    script = FOLLOW.format(repo=str(REPO), old=str(old))
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "before False"  # same /run: nothing to do
        assert proc.stdout.readline().strip() == "ready"
        # what switch_root does to the agent's view: the /run directory it holds moves into the new root, and
        # the old root no longer has it
        os.rename(old / "run", new / "run")
        out, err = proc.communicate("go\n", timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == [
        "pyiscsi agent: switch_root seen: followed /run into the real root",
        "after True ['run', 'sbin']",  # its root is now the new root, whose /run is the one it held
    ]


def test_the_agent_owns_every_path_of_the_root_lun_with_its_own_replacement_timeout(tmp_path) -> None:
    bob = Credentials(Chap("bob", Secret("recorded-never")))
    second = replace(ROOT, session=replace(ROOT.session, portal=Portal("10.0.3.2", 3260), sid=5, credentials=bob))
    second = replace(second, replacement=5.0)
    plan = _plan(TargetPlan(ROOT_T, "10.0.2.2", chap=ALICE), TargetPlan(ROOT_T, "10.0.3.2", chap=BOB))
    write_sessions([replace(ROOT, replacement=5.0), second], tmp_path / "sessions.json")
    rows = read_sessions(tmp_path / "sessions.json", plan_secrets(plan))
    owned = owned_sessions(rows, plan)
    assert [(o.sid, o.root, o.replacement_timeout) for o in owned] == [(3, True, 5.0), (5, True, 5.0)]
    assert [o.session.credentials.chap for o in owned] == [ALICE, BOB]  # each from the entry at its own portal
