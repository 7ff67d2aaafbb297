"""Runs inside the lab VM: a Linux LIO iSCSI target on the guest's loopback, and our login against it.

The login core (initiator.login, chap, negotiation, framing) has been written against RFC 7143 and checked
against tgt; LIO, the target in the Linux kernel, is the other target everyone meets. This program sets up LIO
through configfs (fileio LUNs, demo-mode ACLs, one-way and mutual CHAP per target portal group), then logs in
with each case over a plain socket, pings with a NOP-Out in full feature phase (digests as negotiated), logs
out, and prints one JSON line per case for `test_login_lio.py` to check. It needs root and the guest kernel's
target modules, found with `modprobe -d $LIO_MODULE_ROOT`.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from initiator.credentials import Chap, Credentials
from initiator.errors import PyiscsiError
from initiator.framing import PduReader, frame
from initiator.login import LoggedIn, LoginConfig, LoginStateMachine
from initiator.negotiation import Offers
from initiator.pdu import LoginRequest, LogoutRequest, LogoutResponse, NopIn, NopOut
from initiator.secret import Secret

CONFIGFS = Path("/sys/kernel/config")
PORTAL = ("127.0.0.1", 3260)
INITIATOR = "iqn.2026-11.org.pyiscsi:lio-test"
PLAIN = "iqn.2026-11.test:lio-plain"
CHAP = "iqn.2026-11.test:lio-chap"
MUTUAL = "iqn.2026-11.test:lio-mutual"
ONE_WAY = Credentials(Chap("alice", Secret("alicesecret1")))
BOTH_WAYS = Credentials(Chap("carol", Secret("carolsecret1")), Chap("bobtarget", Secret("bobsecret123")))
READ_BOUND = 10.0


def modprobe(name: str) -> None:
    root = os.environ["LIO_MODULE_ROOT"]
    subprocess.run(["modprobe", "-d", root, name], check=True)


def write(path: Path, value: str) -> None:
    path.write_text(value)  # no newline: LIO keeps a trailing one in CHAP names and secrets


def setup_lio() -> None:
    for module in ("configfs", "target_core_mod", "target_core_file", "iscsi_target_mod", "sha3_generic"):
        modprobe(module)
    if not os.path.ismount(CONFIGFS):
        subprocess.run(["mount", "-t", "configfs", "none", str(CONFIGFS)], check=True)
    targets = [(PLAIN, None), (CHAP, ONE_WAY), (MUTUAL, BOTH_WAYS)]
    for n, (name, chap) in enumerate(targets, 1):
        store = CONFIGFS / f"target/core/fileio_{n}/disk{n}"
        store.mkdir(parents=True)
        write(store / "control", f"fd_dev_name=/tmp/lio{n}.img,fd_dev_size={1 << 20}")
        write(store / "enable", "1")
        tpg = CONFIGFS / f"target/iscsi/{name}/tpgt_1"
        (tpg / "lun/lun_0").mkdir(parents=True)
        (tpg / "lun/lun_0/disk").symlink_to(store)
        (tpg / f"np/{PORTAL[0]}:{PORTAL[1]}").mkdir(parents=True)
        write(tpg / "attrib/generate_node_acls", "1")
        write(tpg / "attrib/demo_mode_write_protect", "0")
        write(tpg / "attrib/cache_dynamic_acls", "1")
        write(tpg / "attrib/authentication", "1" if chap else "0")
        if chap:
            write(tpg / "auth/userid", chap.chap.username)
            write(tpg / "auth/password", chap.chap.password.reveal())
            if chap.reverse is not None:
                write(tpg / "auth/userid_mutual", chap.reverse.username)
                write(tpg / "auth/password_mutual", chap.reverse.password.reveal())
        write(tpg / "enable", "1")


def read_pdu(sock: socket.socket, reader: PduReader):
    while need := reader.bytes_needed():
        chunk = sock.recv(need)
        if not chunk:
            raise ConnectionError("target closed the connection")
        reader.feed(chunk)
    return reader.next_pdu()


def run_case(config: LoginConfig) -> dict:
    machine = LoginStateMachine(config)
    reader = PduReader()
    with socket.create_connection(PORTAL, timeout=READ_BOUND) as sock:
        out = machine.start()
        while isinstance(out, LoginRequest):
            sock.sendall(frame(out))
            out = machine.receive(read_pdu(sock, reader))
        if not isinstance(out, LoggedIn):
            return {"outcome": type(out).__name__}
        r = out.result
        hd, dd = r.header_digest_enabled, r.data_digest_enabled
        reader.set_digests(header=hd, data=dd)
        reader.max_data_segment = r.max_recv_data_segment_length
        info = {
            "outcome": "LoggedIn",
            "tsih": r.tsih,
            "auth_method": r.auth_method,
            "chap_algorithm": r.chap_algorithm,
            "negotiated": r.negotiated_text(),
            "target_max_recv": r.target_max_recv_data_segment_length,
            "leftover": len(reader.trailing_data),
        }
        if config.discovery:
            return info  # a discovery session takes only Text and Logout
        ping = NopOut(immediate=True, itt=1, cmdsn=r.initial_cmdsn, exp_statsn=r.exp_statsn, data=b"pyiscsi")
        sock.sendall(frame(ping, hd, dd))
        pong = read_pdu(sock, reader)
        info["ping"] = isinstance(pong, NopIn) and pong.itt == 1 and pong.data == b"pyiscsi"
        bye = LogoutRequest(itt=2, cmdsn=r.initial_cmdsn, exp_statsn=(pong.statsn + 1) & 0xFFFFFFFF)
        sock.sendall(frame(bye, hd, dd))
        done = read_pdu(sock, reader)
        info["logout"] = isinstance(done, LogoutResponse) and done.response == 0
        return info


def cases() -> dict[str, LoginConfig]:
    digests = Offers(header_digest=("CRC32C",), data_digest=("CRC32C",))
    out = {
        "plain": LoginConfig(INITIATOR, PLAIN),
        "discovery": LoginConfig(INITIATOR, discovery=True),
        "digests": LoginConfig(INITIATOR, PLAIN, offers=digests),
        "not-found": LoginConfig(INITIATOR, "iqn.2026-11.test:nothing-here"),
        "chap-wrong-secret": LoginConfig(INITIATOR, CHAP, chap=Credentials(Chap("alice", Secret("wrongsecret1")))),
        "mutual-wrong-reverse": LoginConfig(
            INITIATOR,
            MUTUAL,
            chap=Credentials(Chap("carol", Secret("carolsecret1")), Chap("bobtarget", Secret("nope-nope-12"))),
        ),
    }
    for algorithms in ((7, 8, 6, 5), (8,), (7,), (6,), (5,)):
        tag = ",".join(map(str, algorithms))
        out[f"chap-{tag}"] = LoginConfig(INITIATOR, CHAP, chap=ONE_WAY, chap_algorithms=algorithms)
        out[f"mutual-{tag}"] = LoginConfig(INITIATOR, MUTUAL, chap=BOTH_WAYS, chap_algorithms=algorithms)
    return out


DISCOVERY_AUTH = CONFIGFS / "target/iscsi/discovery_auth"
CLI_BOUND = 60.0


def set_discovery_auth(credentials: Credentials | None) -> None:
    """LIO's discovery CHAP is one setting for the whole target, apart from the target portal groups'."""
    if credentials is not None:
        write(DISCOVERY_AUTH / "userid", credentials.chap.username)
        write(DISCOVERY_AUTH / "password", credentials.chap.password.reveal())
        if credentials.reverse is not None:
            write(DISCOVERY_AUTH / "userid_mutual", credentials.reverse.username)
            write(DISCOVERY_AUTH / "password_mutual", credentials.reverse.password.reveal())
    write(DISCOVERY_AUTH / "enforce_discovery_auth", "0" if credentials is None else "1")


def cli_discover(credentials: Credentials | None, password: str | None = None) -> dict:
    """`pyiscsi discover` as a user runs it: the command, its output and exit status."""
    argv = [sys.executable, "-m", "boot", "discover", f"{PORTAL[0]}:{PORTAL[1]}", "--initiator", INITIATOR]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYISCSI_")}
    if credentials is not None:
        argv += ["--username", credentials.chap.username]
        env["PYISCSI_PASSWORD"] = password or credentials.chap.password.reveal()
        if credentials.reverse is not None:
            argv += ["--reverse-username", credentials.reverse.username]
            env["PYISCSI_REVERSE_PASSWORD"] = credentials.reverse.password.reveal()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=CLI_BOUND, env=env, check=False)
    return {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def cli_cases() -> dict[str, tuple[Credentials | None, Credentials | None, str | None]]:
    """case -> (what LIO enforces, what we give, a wrong password to give instead)."""
    return {
        "cli-discover": (None, None, None),
        "cli-discover-chap": (ONE_WAY, ONE_WAY, None),
        "cli-discover-mutual": (BOTH_WAYS, BOTH_WAYS, None),
        "cli-discover-chap-wrong": (ONE_WAY, ONE_WAY, "wrongsecret1"),
    }


def main() -> int:
    setup_lio()
    for name, config in cases().items():
        try:
            info = run_case(config)
        except (PyiscsiError, OSError) as exc:
            info = {"outcome": "error", "error": type(exc).__name__, "message": str(exc)}
        print(json.dumps({"case": name, **info}), flush=True)
    for name, (enforced, given, wrong) in cli_cases().items():
        set_discovery_auth(enforced)
        print(json.dumps({"case": name, **cli_discover(given, wrong)}), flush=True)
    set_discovery_auth(None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
