"""What the real root needs to keep and recover the boot sessions, computed as files and then written.

Two destinations:
- the new root (`--sysroot`): open-iscsi node records under `etc/iscsi/nodes` (every path of the root LUN
  `onboot`, the others `automatic`; 0600, they hold CHAP secrets) and `etc/iscsi/initiatorname.iscsi` when the
  root has none of its own (or only a `GenerateName=yes` placeholder). A root that already names another
  initiator keeps its name; the session keeps ours (iscsid adopts sessions from sysfs) and the difference is
  reported.
- the initramfs's `/run`, which both dracut flavours move into the real root: the network manager settings
  (`boot.keepnet`) that keep the boot interfaces up.

Ownership of recovery: the kernel session lives on, and the real root's iscsid adopts every session whose
creator is not -1 when it starts (open-iscsi's `open-iscsi.service` starts it when `/sys/class/iscsi_session`
is not empty): from then on it is the owner. Until then the recovery agent `pyiscsi boot` started owns it; the
systemd drop-in `etc/systemd/system/iscsid.service.d/50-pyiscsi.conf` stops the agent (SIGTERM, then a bounded
wait until its pid file is gone) in `ExecStartPre=`, plain /bin/sh, so iscsid starts only once nobody else
listens. See dracut/95pyiscsi/README.md.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Sequence
from pathlib import Path

from boot.atomic import write_all_atomic
from boot.keepnet import Files, keep_network_files
from boot.net.state import InterfaceState
from boot.node_record import NodeRecord, Startup
from boot.plan import BootPlan, TargetPlan
from boot.sessions import SessionState
from initiator.held_session import HeldSession
from initiator.record import replace

NODES_DIR = "etc/iscsi/nodes"
INITIATORNAME = "etc/iscsi/initiatorname.iscsi"
ISCSID_DROPIN = "etc/systemd/system/iscsid.service.d/50-pyiscsi.conf"
AGENT_PID_FILE = "/run/pyiscsi/agent.pid"
STOP_SLACK = 30  # beyond the replacement timeout: the agent finishes a recovery under way before it stops

# Stops the agent and waits (bounded) until it has given up ownership; the real root has no pyiscsi, only sh.
# Exit 0 when no agent runs (no pid file, a stale one, or it stopped), 1 when it did not stop within the bound.
# A pid file that is not a process id is stale too: `kill 0` would signal the snippet's own process group.
STOP_AGENT_SH = (
    'f="{pid_file}"; pid=$(cat "$f" 2>/dev/null); '
    'case "$pid" in ""|*[!0-9]*|0*) rm -f "$f"; exit 0;; esac; '
    'kill -TERM "$pid" 2>/dev/null || {{ rm -f "$f"; exit 0; }}; '
    "end=$(( $(date +%s) + {bound} )); "
    'while [ -e "$f" ] && kill -0 "$pid" 2>/dev/null; do '
    '[ "$(date +%s)" -ge "$end" ] && {{ echo "pyiscsi agent pid $pid did not stop within {bound}s" >&2; exit 1; }}; '
    "sleep 0.1 2>/dev/null || sleep 1; done; "
    'kill -0 "$pid" 2>/dev/null || rm -f "$f"; '
    'echo "pyiscsi agent pid $pid stopped: iscsid owns recovery now"'
)


def stop_agent_script(pid_file: str = AGENT_PID_FILE, bound: int = 150) -> str:
    return STOP_AGENT_SH.format(pid_file=pid_file, bound=int(bound))


def iscsid_dropin(pid_file: str = AGENT_PID_FILE, bound: int = 150) -> str:
    """The drop-in for iscsid.service: stop the agent first. `$` and `%` are doubled for systemd's parser."""
    script = stop_agent_script(pid_file, bound).replace("%", "%%").replace("$", "$$")
    return (
        "# Written by `pyiscsi handover`: the initramfs's recovery agent owns the boot sessions' recovery until\n"
        "# iscsid starts; stop it first (bounded), so that exactly one listener recovers them.\n"
        "[Service]\n"
        f"TimeoutStartSec={int(bound) + 30}\n"
        f"ExecStartPre=-/bin/sh -c '{script}'\n"
    )


def _plan_target(session: HeldSession, plan: BootPlan) -> TargetPlan | None:
    """The plan entry a session came from (a discovery entry matches by portal): where its secrets are. Of two
    paths of one LUN (same name, two portals) the entry at the session's own portal."""
    portal = (session.portal.address, session.portal.port)
    by_name = [t for t in plan.targets if t.name == session.target]
    exact = [t for t in by_name if (t.address, t.port) == portal]
    by_portal = [t for t in plan.targets if t.name is None and (t.address, t.port) == portal]
    return (exact or by_name or by_portal or [None])[0]


def node_record(row: SessionState, plan: BootPlan) -> NodeRecord:
    """The recorded session as a node record, with the CHAP secrets of the plan entry it came from. Every path
    of the root LUN is `onboot`; a path of a multipath LUN keeps the replacement timeout its session got."""
    planned = _plan_target(row.session, plan)
    return NodeRecord(
        replace(row.session, credentials=None if planned is None else planned.credentials),
        startup=Startup.ONBOOT if row.root else Startup.AUTOMATIC,
        replacement_timeout=int(row.replacement_timeout(plan.timeouts.replacement)),
    )


def initiator_name_file(existing: str | None, name: str) -> tuple[str | None, str | None]:
    """(text to write or None, a warning or None) for the root's initiatorname.iscsi."""
    if existing is None:
        return f"InitiatorName={name}\n", None
    values = {}
    for line in existing.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and not key.startswith("#"):
            values[key.strip()] = value.strip()
    if values.get("GenerateName", "").lower() == "yes" and "InitiatorName" not in values:
        return f"InitiatorName={name}\n", None
    theirs = values.get("InitiatorName")
    if theirs and theirs != name:
        return None, (
            f"the real root names its initiator {theirs}, the boot session uses {name}: "
            "new logins from the real root will use the other name"
        )
    return None, None


def sysroot_files(
    sessions: Sequence[SessionState],
    plan: BootPlan,
    existing_initiatorname: str | None,
    agent_pid_file: str = AGENT_PID_FILE,
) -> tuple[Files, list[str]]:
    files: Files = {}
    warnings: list[str] = []
    if sessions:  # also with rd.pyiscsi.agent=0: without a pid file the snippet does nothing
        bound = int(plan.timeouts.replacement) + STOP_SLACK
        files[ISCSID_DROPIN] = (iscsid_dropin(agent_pid_file, bound), 0o644)
    for session in sessions:
        record = node_record(session, plan)
        files[str(Path(NODES_DIR) / record.relative_path().relative_to("nodes"))] = (record.render(), 0o600)
    if sessions:
        text, warning = initiator_name_file(existing_initiatorname, sessions[0].session.initiator_name)
        if text is not None:
            files[INITIATORNAME] = (text, 0o644)
        if warning:
            warnings.append(warning)
    return files, warnings


# What the real root's iscsid looks up while it re-logs in on an adopted session, i.e. while the root disk's I/O
# is stopped: OpenSSL (libcrypto, CHAP digests) reads its configuration lazily at the first digest. A lookup that
# misses the dentry cache then waits for the disk it is recovering, until replacement_timeout fails the I/O
# (seen in a VM: 120 s of nothing, then I/O errors on the root). Looking each path up here, on the same mount,
# leaves the answers (found or not) in the caches the real root inherits.
WARM_PATHS = (
    "usr/lib/ssl/openssl.cnf",
    "etc/ssl/openssl.cnf",
    "usr/lib/ssl/ct_log_list.cnf",
    "usr/lib/x86_64-linux-gnu/ossl-modules",
    "usr/lib/x86_64-linux-gnu/engines-3",
    "usr/local/ssl/openssl.cnf",
    "etc/iscsi/iscsid.conf",
    "etc/iscsi/initiatorname.iscsi",
    "etc/iscsi/ifaces",
    "etc/iscsi/isns.conf",
    "var/lib/iscsi",
)
WARM_READ_LIMIT = 1 << 20


def warm_caches(root: Path, paths: Sequence[str] = WARM_PATHS) -> list[str]:
    """Look up (and read, for small files) what iscsid will need mid-recovery; returns the paths that exist."""
    found = []
    for relative in paths:
        path = root / relative
        try:
            info = path.stat()
        except OSError:
            continue  # the negative lookup is cached too
        found.append(relative)
        if path.is_file() and info.st_size <= WARM_READ_LIMIT:
            with contextlib.suppress(OSError):
                path.read_bytes()
    return found


def link_index(name: str, sys_class_net: str = "/sys/class/net") -> int | None:
    """The link's index (switch_root keeps it), or None when the link or its index cannot be read."""
    try:
        text = Path(sys_class_net, name, "ifindex").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def run_files(interfaces: Sequence[InterfaceState], index_of: Callable[[str], int | None] = link_index) -> Files:
    indexes = {i.name: index for i in interfaces if (index := index_of(i.name)) is not None}
    return keep_network_files([i.to_json() for i in interfaces], indexes)


def write_files(root: Path, files: Files, warn: Callable[[str], None]) -> list[Path]:
    """Write each file whole, all flushed to disk together (one journal commit, not two per file: see
    `write_all_atomic`); a read-only root is reported, not fatal (the session itself needs none of it). Any other
    error is raised once the files that could be written are in place."""
    order = sorted(files.items())
    results = write_all_atomic([(root / relative, text, mode) for relative, (text, mode) in order])
    written: list[Path] = []
    failure: OSError | None = None
    for (relative, _), result in zip(order, results, strict=True):
        if not isinstance(result, OSError):
            written.append(result)
        elif result.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            rebuilt = "iscsid will rebuild the session record from sysfs"
            warn(f"{root / relative}: not written ({result.strerror}); {rebuilt}")
        elif failure is None:
            failure = result
    if failure is not None:
        raise failure
    return written
