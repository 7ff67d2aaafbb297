"""open-iscsi's `iscsiadm` SendTargets discovery with private state, on hosts with or without iscsi_tcp.

The stock tool is our reference (tests check a tgtd setup with it; the login benchmark races it). Two obstacles
on a test host, and how they are met without touching the host's own open-iscsi:
- iscsiadm keeps node records under /etc/iscsi and refuses discovery unless /sys/class/iscsi_transport/tcp
  exists. It runs under `unshare -m` with a tmpfs on /etc/iscsi (its own initiator name and iface record), and,
  only when the kernel has no iscsi_tcp, a tmpfs on /sys/class holding a stand-in `tcp` transport entry
  (discovery itself is a userspace TCP exchange; the kernel transport is never used).
- iscsiadm asks iscsid for session information first and sleeps a second per failed connect when none runs,
  and iscsid cannot run without NETLINK_ISCSI. `iscsid_stand_in()` accepts on iscsid's abstract socket and
  ends the exchange at once (EOF), so iscsiadm carries on immediately ("daemon died?" on stderr). If a real
  iscsid holds the socket, it answers instead.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

ISCSID_SOCKET = b"\0ISCSIADM_ABSTRACT_NAMESPACE"
IFACE = "pyiscsi-test"

_SCRIPT = r"""
set -e
mount -t tmpfs -o mode=0700 pyiscsi-iscsiadm /etc/iscsi
mkdir -p /etc/iscsi/nodes /etc/iscsi/send_targets /etc/iscsi/ifaces
printf 'InitiatorName=%s\n' "$2" > /etc/iscsi/initiatorname.iscsi
printf 'iscsid.startup = /bin/false\n' > /etc/iscsi/iscsid.conf
printf 'iface.iscsi_ifacename = %s\niface.transport_name = tcp\niface.initiatorname = %s\n' "$3" "$2" \
    > "/etc/iscsi/ifaces/$3"
if [ ! -e /sys/class/iscsi_transport/tcp ]; then
    mount -t tmpfs pyiscsi-sysclass /sys/class
    mkdir -p /sys/class/iscsi_transport/tcp
    echo 1 > /sys/class/iscsi_transport/tcp/handle
    echo 0x39 > /sys/class/iscsi_transport/tcp/caps
fi
"""
_DISCOVER = 'exec iscsiadm -m discovery -t st -p "$1" -I "$3" -o nonpersistent\n'


def unavailable_reason() -> str | None:
    for program in ("iscsiadm", "unshare"):
        if shutil.which(program) is None:
            return f"{program} not installed"
    if not Path("/etc/iscsi").is_dir():
        return "/etc/iscsi missing (open-iscsi not installed)"
    return None


def sendtargets_command(portal: str, initiator: str, *, wrapper_only: bool = False) -> list[str]:
    """The argv that runs one private `iscsiadm -m discovery -t st -p portal` (stdout: iscsiadm's lines).

    wrapper_only: the same namespace and mounts, then `true` instead of iscsiadm (what the wrapper costs).
    """
    script = _SCRIPT + ("exec true\n" if wrapper_only else _DISCOVER)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", portal, initiator, IFACE]


def sendtargets(portal: str, initiator: str, timeout: float = 15.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sendtargets_command(portal, initiator), capture_output=True, text=True, timeout=timeout, check=False
    )


def _refuse(conn: socket.socket) -> None:
    """End our side at once (iscsiadm reads EOF: no answer) but take its request, so its write never EPIPEs."""
    with conn:
        conn.settimeout(5)
        conn.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass


@contextlib.contextmanager
def iscsid_stand_in() -> Iterator[bool]:
    """Accept-and-close on iscsid's socket while inside; yields False when a real iscsid already holds it."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(ISCSID_SOCKET)
    except OSError:
        server.close()
        yield False
        return
    server.listen(16)
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=_refuse, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, name="iscsid-stand-in", daemon=True)
    thread.start()
    try:
        yield True
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()
