"""The agent keeps working after switch_root deleted the initramfs: run it from a frozen tree, delete the tree
once it listens, then make it recover a session (CHAP login through a fake kernel) and stop.

each import opens the module's .pyc file and extension modules are files, so any module imported after
the deletion fails; the agent must have imported everything it can reach before it reported listening, or, when
the step before switch_root asks it for the handover (`handover_first`, pyiscsi boot's fork), before it answered."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boot import freeze
from boot.commands.agent import HANDOVER_DONE, HANDOVER_REQUEST
from boot.sessions import SessionState, write_sessions
from initiator.credentials import Chap, Credentials
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.secret import Secret

REPO = Path(__file__).resolve().parents[2]
NOT_NEEDED = ("pyroute2.iproute", "pyudev", "ctypes.util")  # the boot path's, not the agent's; keeps the build small

# Runs inside the frozen interpreter (-I -S -B): everything it imports comes from the tree. The fake kernel's
# source is executed from the checkout (not imported: the checkout is not on sys.path), before the deletion.
HARNESS = r"""
import hashlib, os, sys, threading, time, types
from pathlib import Path

fake = types.ModuleType("fake_kernel")
exec(compile(open(FAKE_KERNEL).read(), FAKE_KERNEL, "exec"), fake.__dict__)

import boot.commands.agent as agent
import initiator.kernel as kernel
import initiator.recovery as recovery
from initiator.pdu import LoginRequest, LoginResponse

SECRET = b"alice-secret"
HASHES = {5: hashlib.md5, 6: hashlib.sha1, 7: hashlib.sha256, 8: hashlib.sha3_256}


class Target:
    # just enough of a CHAP target: it picks SHA3-256, checks the response, answers every offered key
    def __init__(self):
        self.statsn, self.challenge, self.alg, self.chap = 9000, bytes(range(16)), 0, []

    def __call__(self, req):
        if not isinstance(req, LoginRequest):
            return None
        keys = dict(p.split("=", 1) for p in req.data.decode().split("\0") if p)
        pairs, transit = [], req.transit
        if "AuthMethod" in keys:
            pairs, transit = [("AuthMethod", "CHAP"), ("TargetPortalGroupTag", "1")], False
        elif "CHAP_A" in keys:
            offered = [int(a) for a in keys["CHAP_A"].split(",")]
            self.alg = 8 if 8 in offered else offered[0]
            self.chap.append(self.alg)
            pairs = [("CHAP_A", str(self.alg)), ("CHAP_I", "7"), ("CHAP_C", "0x" + self.challenge.hex())]
            transit = False
        elif "CHAP_N" in keys:
            want = HASHES[self.alg](bytes([7]) + SECRET + self.challenge).hexdigest()
            assert keys["CHAP_N"] == "alice" and keys["CHAP_R"].lower() == "0x" + want, "bad CHAP response"
        else:
            pairs = [(k, v.split(",")[0]) for k, v in keys.items() if k != "MaxRecvDataSegmentLength"]
            pairs.append(("MaxRecvDataSegmentLength", "65536"))
        final = transit and req.nsg == 3
        self.statsn += 1
        data = b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)
        return LoginResponse(
            transit=transit, csg=req.csg, nsg=req.nsg if transit else 0, isid=req.isid,
            tsih=0x55 if final else 0, itt=req.itt, statsn=self.statsn, exp_cmdsn=req.cmdsn,
            max_cmdsn=req.cmdsn + 31, data=data,
        )


class FakeNetlink(fake.FakeKernel):
    def __enter__(self):
        def fail_after_switch_root():  # the connection breaks once the initramfs is gone
            end = time.monotonic() + 60
            while os.path.exists(TREE) and time.monotonic() < end:
                time.sleep(0.05)
            self.push(fake.conn_error(SID))

        threading.Thread(target=fail_after_switch_root, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.close()


kernel.NetlinkIscsi = lambda: FakeNetlink(Target())
_serve = agent._serve
agent._serve = lambda *a, **k: _serve(*a, **k, handover_first=HANDOVER_FIRST)
agent.to_kmsg = lambda *a, **k: False  # never the test machine's kernel log
recovery.reconnect.__kwdefaults__["sysfs"] = Path(SYSFS)  # never the test machine's /sys
recovery.RecoveryLoop.__init__.__kwdefaults__["sysfs"] = Path(SYSFS)
from boot.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> freeze.FrozenTree:
    options = freeze.FreezeOptions(
        out=tmp_path_factory.mktemp("frozen-agent") / "root",
        entries=("boot.cli", "boot.commands.agent", "boot.commands.boot"),
        extras=tuple(name for name in freeze.DEFAULT_EXTRAS if name not in NOT_NEEDED),
        packages=(),
        copy_libraries=False,  # run in place with the host's shared libraries: no chroot, no root needed
        dlopen=(),
    )
    return freeze.build(options)


@pytest.fixture
def own_tree(tree: freeze.FrozenTree, tmp_path: Path) -> freeze.FrozenTree:
    """A copy of the built tree for one test to delete."""
    shutil.copytree(tree.root, tmp_path / "tree", symlinks=True)
    return dataclasses.replace(tree, root=tmp_path / "tree")


def _wait_for(what, bound: float):  # type: ignore[no-untyped-def]
    end = time.monotonic() + bound
    while True:
        value = what()
        if value:
            return value
        assert time.monotonic() < end, f"not within {bound}s"
        time.sleep(0.05)


@pytest.mark.parametrize("handover_first", [False, True], ids=["deleted-once-listening", "deleted-after-handover"])
def test_the_agent_recovers_after_its_tree_was_deleted(
    own_tree: freeze.FrozenTree, tmp_path: Path, handover_first: bool
) -> None:
    tree = own_tree
    target = socket.create_server(("127.0.0.1", 0))  # accepts in the backlog; the fake kernel does the talking
    port = target.getsockname()[1]
    sid = 3
    session = SessionState(
        HeldSession(
            target="iqn.2026-11.test:root", portal=Portal("127.0.0.1", port), tpgt=1, lun=1, sid=sid, host_no=2,
            isid=bytes.fromhex("800000000001"), tsih=7, initiator_name="iqn.2026-11.test:init",
            credentials=Credentials(Chap("alice", Secret("alice-secret"))),  # the file records "alice" only
        ),
        device="/dev/sda", root=True, seconds=1.5,
    )  # fmt: skip
    run = tmp_path / "run"
    write_sessions([session], run / "sessions.json")
    sysfs = tmp_path / "sys"
    (sysfs / "class/scsi_host/host2").mkdir(parents=True)
    (sysfs / "class/scsi_host/host2/scan").write_text("")
    harness = tmp_path / "harness.py"
    harness.write_text(
        f"FAKE_KERNEL = {str(REPO / 'tests/initiator/fake_kernel.py')!r}\nTREE = {str(tree.root)!r}\n"
        f"SYSFS = {str(sysfs)!r}\nSID = {sid}\nHANDOVER_FIRST = {handover_first}\n" + HARNESS
    )
    cmdline = f"netroot=iscsi:alice:alice-secret@127.0.0.1::{port}:1:{session.session.target} ip=none"
    pid_file = run / "agent.pid"
    out = tmp_path / "agent.out"
    interpreter = tree.root / freeze._rel(tree.interpreter)
    argv = [str(interpreter), "-I", "-S", "-B", str(harness), "agent", "--sessions", str(run / "sessions.json")]
    argv += ["--pid-file", str(pid_file), "--cmdline", cmdline, "--ibft", "none"]
    with out.open("w") as sink:
        agent = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, cwd=tree.root)
    try:
        _wait_for(pid_file.exists, 30)
        if handover_first:  # what the step before switch_root does, and waits for, before the tree goes
            sysroot = tmp_path / "sysroot"
            (sysroot / "etc").mkdir(parents=True)
            (run / HANDOVER_REQUEST).write_text(f"{sysroot}\n")
            os.kill(agent.pid, signal.SIGUSR1)
            _wait_for((run / HANDOVER_DONE).exists, 30)
            assert (run / HANDOVER_DONE).read_text() == "0\n", out.read_text()
        assert Path(f"/proc/{agent.pid}/cwd").resolve() == Path("/")  # no directory of the tree held
        held = [os.readlink(f) for f in Path(f"/proc/{agent.pid}/fd").iterdir() if f.exists()]
        assert not [p for p in held if p.startswith(str(tree.root))], held
        shutil.rmtree(tree.root)  # what switch_root does to the initramfs
        _wait_for(lambda: "recovered after" in out.read_text(), 40)
        assert (sysfs / "class/scsi_host/host2/scan").read_text() == "- - -"
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        target.close()
    text = out.read_text()
    assert agent.returncode == 0, text
    for bad in ("Error", "rror:", "Traceback", "No module", "zipimport", "failed:"):
        assert bad not in text.replace("connection failed", "")
    assert "connection failed" in text and "attempt 1: connecting to 127.0.0.1" in text
    assert "session 3 (iqn.2026-11.test:root at 127.0.0.1" in text and "recovered after" in text
    assert text.rstrip().endswith("stopped listening: recovery is now the next owner's")
    assert "alice-secret" not in text
    assert not pid_file.exists()


def test_the_frozen_tree_carries_everything_the_agent_preloads(tree: freeze.FrozenTree) -> None:
    from boot.commands.agent import PRELOAD

    stems = set(tree.modules)
    missing = [
        name
        for name in PRELOAD
        if not {name.replace(".", "/"), name.replace(".", "/") + "/__init__"} & stems
        and name not in tree.extensions
        and name not in sys.builtin_module_names
    ]
    assert not missing, missing


SPAWN = """
import subprocess, sys
from boot.commands import boot
argv = [boot.AGENT_ARGV0, *boot.PYTHON_FLAGS, "-c", "import sys; print(sys.prefix, *sys.path)"]
done = subprocess.run(argv, executable=sys.executable, env=boot.agent_environment(), capture_output=True, text=True)
print(done.returncode, done.stdout.strip(), done.stderr.strip(), sep="|")
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="chroot needs root")
def test_the_frozen_interpreter_starts_as_at_pyiscsi_agent(tmp_path: Path) -> None:
    """argv[0] `@pyiscsi-agent` names no file: the interpreter must find its prefix all the same (PYTHONHOME)."""
    built = freeze.build(
        freeze.FreezeOptions(out=tmp_path / "root", entries=("boot.cli", "boot.commands.boot"), dlopen=())
    )
    done = subprocess.run(
        ["chroot", str(built.root), str(built.interpreter), "-I", "-S", "-B", "-c", SPAWN],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    status, out, err = done.stdout.strip().split("|")
    assert (status, err) == ("0", "")  # no "Could not find platform independent libraries"
    prefix, *path = out.split()
    assert prefix == str(freeze.PREFIX)
    assert path and all(p.startswith(str(freeze.PREFIX)) for p in path), path
