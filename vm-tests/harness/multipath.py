"""A multipath root (issue 15): a Debian 12 root over dm-multipath, one LUN reached through two portals and two NICs.

The root is a harness.debroot build of one more variant, VARIANT (`multipath`), kept out of debroot.VARIANTS so
that the real-root tests and benches that run every variant do not boot it, and so that debroot's own text (part
of every variant's cache key) stays as it is: adding this variant changes no other root's key. It is the networkd
root plus Debian's `multipath-tools`, dracut's `multipath` module in the root's dracut configuration (the kernel
package's postinst makes the initrd with it, as for every variant), an /etc/multipath.conf that claims every path
(`find_multipaths greedy`, user-friendly names) and fstab by UUID. Its test unit runs MULTIPATH_CHECK instead of
debroot's GUEST_CHECK, and a drop-in holds iscsid back when the kernel line says `pyiscsi.test.hold_iscsid`, so
pyiscsi's recovery agent still owns the sessions until the check starts iscsid. Two gaps between Debian 12's
multipath-tools and dracut 059's multipath module are closed in the root's own dracut configuration (DRACUT_MULTIPATH:
the udev rules and checker plug-ins it misses, and SOCKET_DROPIN); without them the root was mounted from one sdX,
or the initramfs never switched root.

`MultipathLab(root)` serves the root disk as LUN 1 of one target from tgtd on 127.0.0.1 at two portals (two ports,
`Tgtd.add_portal`); the guest has two NICs on two QEMU user networks (10.0.2.0/24 and 10.0.3.0/24), so path 1 is
10.0.2.2:<port 1> through NIC 1 and path 2 is 10.0.3.2:<port 2> through NIC 2. `lab.boot(...)` runs QEMU with a
QMP socket and answers the guest's `cut` and `restore` marks with `set_link` on NIC 2 (a pulled cable and its
return); console lines about iSCSI connection errors do not end the run (a lost path is the point).

The guest's marks (MULTIPATH_CHECK): realroot, multiuser, failed, rootdev (the device, its dm map and slaves),
paths (dm's active/total paths, sessions, node records and their startup values, agent and iscsid states), then per
phase (`agent`, before iscsid; `iscsid`, after it started and adopted the sessions): phase-begin, cut (the host
pulls NIC 2), restore (after CUT_SECONDS; `lost=` how long after the cut dm had failed the path), recovered
(`after=` seconds from the restore to 2 active paths again, or `none` after RECOVER_BOUND), phase-end (writes,
failed writes, the longest gap between two completed writes and when it ended); then verify (checksums after
dropping the page cache), errors (I/O errors on the dm device or the file system vs on the paths), shutdown.
The pure helpers (`phase_figures`, `dm_active_paths`) are unit-tested in test_harness_multipath.py.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import debroot, rootimage
from harness.bootvm import BASE_APPEND
from harness.debroot import NETWORKD_WIRED, TEST_SCRIPT, DebRoot, Variant
from harness.paths import CACHE, REPO
from harness.private import make_private_dir
from harness.qemu import VmSpec, build_command
from harness.realboot import MARK_RE, Booted, Guest, accel, run_watched, serve_disk

ROOT_IQN = "iqn.2026-12.org.pyiscsi:mpath-root"
NETS = ("10.0.2", "10.0.3")  # the two QEMU user networks; the host's 127.0.0.1 is <net>.2 in each
NICS = ("ens2", "ens3")  # -M pc -nodefaults: virtio-net-pci in slots 2 and 3, as systemd's .link files name them
CUT_NETDEV = "n1"  # NIC 2's netdev (harness.qemu numbers them n0, n1)
CUT_AFTER = 10  # guest seconds of writes before the cut
CUT_SECONDS = 30  # how long NIC 2 stays without link
RECOVER_BOUND = 90  # guest seconds for dm to show both paths active again after the link is back
QMP_BOUND = 10.0
BOUND = 900.0  # wall seconds for the one boot: start-up, two phases of ~75 s, the checks, the power-off
MEMORY_MB = 1024
HOLD_ISCSID = "pyiscsi.test.hold_iscsid"
GO_FILE = "/run/pyiscsi-test/iscsid-go"

MULTIPATH_CONF = """\
# pyiscsi VM test (vm-tests/harness/multipath.py): every SCSI disk is a path of a multipath map (the only disks are
# the iSCSI root's two paths); a map with no path left queues for no_path_retry checker intervals, then fails
defaults {
    user_friendly_names yes
    find_multipaths greedy
    polling_interval 2
    no_path_retry 30
}
"""

# Debian 12's multipath-tools names its udev rules and keeps its checker and prioritizer plug-ins where dracut 059's
# multipath module does not look (it installs 40/56/62-multipath.rules, 11-dm-mpath.rules and <libdir>/multipath/*):
# without them multipathd fails in the initramfs ("Checker 'tur' not found in /lib/multipath"), no path is claimed,
# and the root is mounted from one path's sdX, whose loss then ends the root
MPATH_PLUGINS = ("libchecktur.so", "libcheckdirectio.so", "libcheckreadsector0.so", "libprioconst.so",
                 "libprioalua.so", "libpriosysfs.so")  # fmt: skip
MPATH_RULES = ("56-dm-mpath.rules", "60-multipath.rules", "60-kpartx.rules")
# dracut's multipathd.service conflicts with initrd-cleanup.service, Debian's multipathd.socket does not: the
# module's cleanup hook (`multipath -l`, in dracut-pre-pivot) then starts multipathd again through the socket, which
# cancels initrd-cleanup's start job, and the initramfs never switches root (the boot hung after pre-pivot). The
# drop-in is harmless in the real root, where initrd-cleanup.service never runs.
SOCKET_DROPIN_PATH = "etc/systemd/system/multipathd.socket.d/10-initrd-cleanup.conf"
SOCKET_DROPIN = """\
# pyiscsi VM test (vm-tests/harness/multipath.py): stop the socket with multipathd when the initramfs cleans up
[Unit]
Conflicts=initrd-cleanup.service
Before=initrd-cleanup.service
"""
DRACUT_MULTIPATH = (
    'add_dracutmodules+=" multipath "\n'
    "# what dracut's multipath module misses on Debian 12 (vm-tests/harness/multipath.py says why)\n"
    'install_items+=" '
    + " ".join(
        [*(f"/usr/lib/udev/rules.d/{r}" for r in MPATH_RULES), *(f"/usr/lib/multipath/{p}" for p in MPATH_PLUGINS)]
    )
    + f" /{SOCKET_DROPIN_PATH}"
    + ' "\n'
)

HOLD_DROPIN = f"""\
# pyiscsi VM test (vm-tests/harness/multipath.py): with {HOLD_ISCSID} on the kernel line, iscsid and open-iscsi
# wait until the test creates {GO_FILE}, so pyiscsi's agent owns the sessions until then
[Unit]
ConditionKernelCommandLine=|!{HOLD_ISCSID}
ConditionPathExists=|{GO_FILE}
"""

MULTIPATH_CHECK = r"""#!/bin/sh
# pyiscsi VM test (vm-tests/harness/multipath.py): the multipath root, path loss under writes, then power off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mark() { echo "PYISCSI-MARK $1 $(cut -d' ' -f1 /proc/uptime)${2:+ $2}" > /dev/console; }
say() { sed 's/^/  check: /' > /dev/console; }
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1"=*) echo "${a#*=}"; return;; esac; done; }
now() { cut -d' ' -f1 /proc/uptime; }
list() { tr '\n' ',' | sed 's/,$//'; }
root_iqn=$(arg pyiscsi.test.root)
mark realroot "variant=multipath"
state=$(timeout @MULTIUSER_BOUND@ systemctl is-system-running --wait 2>/dev/null)
mark multiuser "state=${state:-timeout} target=$(systemctl is-active multi-user.target)"
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | list)
mark failed "units=${failed:-none}"
for unit in $(echo "$failed" | tr ',' ' '); do journalctl -b -u "$unit" --no-pager -o cat -n 8 2>&1 | say; done
rootsrc=$(findmnt -n -o SOURCE /)
dm=$(basename "$(readlink -f "$rootsrc")")
map=$(cat "/sys/class/block/$dm/dm/name" 2>/dev/null)
uuid=$(cat "/sys/class/block/$dm/dm/uuid" 2>/dev/null)
slaves=$(ls "/sys/class/block/$dm/slaves" 2>/dev/null | list)
mark rootdev "dev=$rootsrc dm=$dm map=${map:-none} dmuuid=${uuid:-none} slaves=${slaves:-none}"
count_paths() {  # $1: A (active) or . (any): the `maj:min A|F fail-count` entries of the map's dmsetup status
    dmsetup status "$map" 2>/dev/null |
        awk -v s="$1" '{n=0; for (i=1; i<NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/ && $(i+1) ~ s) n++; print n}'
}
active() { count_paths '^A$'; }
total() { count_paths '.'; }
paths() {
    sessions=$(iscsiadm -m session 2>/dev/null | grep -c " $root_iqn ")
    records=$(iscsiadm -m node 2>/dev/null | grep " $root_iqn\$" | awk '{print $1}' | list)
    startup=$(iscsiadm -m node -T "$root_iqn" 2>/dev/null | awk '$1=="node.startup"{print $3}' | list)
    rtmo=$(cat /sys/class/iscsi_session/session*/recovery_tmo 2>/dev/null | list)
    agents=$(pgrep -f '^@pyiscsi-agent' | wc -l)
    mark paths "phase=$1 active=$(active) total=$(total) sessions=$sessions records=${records:-none} \
startup=${startup:-none} recovery_tmo=${rtmo:-none} agents=$agents iscsid=$(systemctl is-active iscsid.service)"
    multipath -ll 2>&1 | say
    iscsiadm -m session 2>&1 | say
}
paths boot
pyiscsi explain 2>&1 | say
dir=/var/lib/pyiscsi-test/mpath
mkdir -p "$dir" && rm -rf "${dir:?}"/*
phase() {
    name=$1; d="$dir/$name"; mkdir -p "$d"
    mark phase-begin "phase=$name active=$(active)"
    (
        n=0
        while [ ! -e "$d/stop" ]; do
            slot=$((n % 16))
            if dd if=/dev/urandom of="$d/$slot" bs=64k count=16 conv=fsync 2>/dev/null; then
                sha256sum "$d/$slot" > "$d/$slot.sum"; now >> "$d/times"
            else
                echo "$n" >> "$d/failed"
            fi
            n=$((n+1))
        done
        echo "$n" > "$d/count"
    ) &
    writer=$!
    sleep @CUT_AFTER@
    mark cut "phase=$name netdev=@CUT_NETDEV@"
    cut=$(now); lost=none; end=$(( $(cut -d. -f1 /proc/uptime) + @CUT_SECONDS@ ))
    while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
        [ "$lost" = none ] && [ "$(active)" -lt 2 ] && lost=$(awk -v a="$(now)" -v b="$cut" 'BEGIN{printf "%.1f", a-b}')
        sleep 0.5
    done
    mark restore "phase=$name lost=$lost active=$(active)"
    back=$(now); after=none; end=$(( $(cut -d. -f1 /proc/uptime) + @RECOVER_BOUND@ ))
    while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
        [ "$(active)" -ge 2 ] && { after=$(awk -v a="$(now)" -v b="$back" 'BEGIN{printf "%.1f", a-b}'); break; }
        sleep 0.5
    done
    mark recovered "phase=$name after=$after active=$(active)"
    sleep 3
    touch "$d/stop"; wait "$writer"
    gap=$(awk 'NR>1 && $1-p>g {g=$1-p; at=$1} {p=$1} END{printf "%.2f %.1f", g, at}' "$d/times")
    failedn=0; [ -e "$d/failed" ] && failedn=$(wc -l < "$d/failed")
    mark phase-end "phase=$name writes=$(cat "$d/count") failed=$failedn maxgap=${gap% *} gapat=${gap#* } cut=$cut"
    paths "$name"
}
if [ "$(arg pyiscsi.test.phases)" = none ]; then  # the boot alone (a path down from the start)
    mark errors "dmerr=$(dmesg | grep -E -c "I/O error, dev $dm|EXT4-fs error") connerr=$(dmesg | grep -c 'conn error')"
    mark shutdown "action=poweroff"
    systemctl poweroff
    exit 0
fi
phase agent
mkdir -p "$(dirname @GO_FILE@)" && touch @GO_FILE@
systemctl start iscsid.service 2>&1 | say
waited=0
adopted() { iscsiadm -m session -P 1 2>/dev/null | grep -c 'Internal iscsid Session State: NO CHANGE'; }
while [ $waited -lt 30 ] && [ "$(adopted)" -lt 2 ]; do
    sleep 1; waited=$((waited+1))
done
sleep 2
known=$(adopted)
mark adopted "iscsid=$(systemctl is-active iscsid.service) nochange=$known agents=$(pgrep -f '^@pyiscsi-agent' | wc -l)"
journalctl -b -u iscsid.service -o cat --no-pager 2>&1 | tail -n 8 | say
phase iscsid
sync && echo 3 > /proc/sys/vm/drop_caches
bad=$(cat "$dir"/*/*.sum | sha256sum -c --quiet 2>&1 | grep -c 'FAILED')
sums=$(cat "$dir"/*/*.sum | wc -l)
mark verify "sums=$sums bad=$bad"
dmerr=$(dmesg | grep -E -c "I/O error, dev $dm|Buffer I/O error on dev $dm|EXT4-fs error|EXT4-fs warning")
patherr=$(dmesg | grep -E -c 'I/O error, dev sd')
mark errors "dmerr=$dmerr patherr=$patherr connerr=$(dmesg | grep -c 'detected conn error')"
dmesg | grep -E "I/O error|EXT4-fs (error|warning)|detected conn error|multipath" | tail -n 20 | say
mark shutdown "action=poweroff"
systemctl poweroff
"""


def guest_check() -> str:
    return (
        MULTIPATH_CHECK.replace("@MULTIUSER_BOUND@", str(debroot.MULTIUSER_BOUND))
        .replace("@CUT_AFTER@", str(CUT_AFTER))
        .replace("@CUT_SECONDS@", str(CUT_SECONDS))
        .replace("@RECOVER_BOUND@", str(RECOVER_BOUND))
        .replace("@CUT_NETDEV@", CUT_NETDEV)
        .replace("@GO_FILE@", GO_FILE)
    )


VARIANT = Variant(
    "multipath",
    ("multipath-tools",),
    (
        ("etc/systemd/network/20-wired.network", NETWORKD_WIRED, 0o644),
        ("etc/multipath.conf", MULTIPATH_CONF, 0o644),
        (SOCKET_DROPIN_PATH, SOCKET_DROPIN, 0o644),
        ("etc/dracut.conf.d/50-multipath.conf", DRACUT_MULTIPATH, 0o644),
        ("etc/systemd/system/iscsid.service.d/10-pyiscsi-test-hold.conf", HOLD_DROPIN, 0o644),
        ("etc/systemd/system/iscsid.socket.d/10-pyiscsi-test-hold.conf", HOLD_DROPIN, 0o644),
        ("etc/systemd/system/open-iscsi.service.d/10-pyiscsi-test-hold.conf", HOLD_DROPIN, 0o644),
        (TEST_SCRIPT, guest_check(), 0o755),  # after debroot's own check in root_files: this one replaces it
    ),
    enable=("systemd-networkd.service",),
    manager_units=("systemd-networkd.service",),
)


def build(our_deb: Path, cache: Path | None = None, log: Callable[[str], None] = print) -> DebRoot:
    """The multipath root, built and cached exactly as debroot.build does for its own variants (same layers, same
    key parts: this variant's files are in its key, debroot's text too)."""
    import fcntl

    cache = cache or CACHE / "debroot"
    cache.mkdir(parents=True, exist_ok=True)
    mirror = debroot.sources_file()
    conf = debroot.readme_dracut_conf(debroot.README.read_text())
    kdeb = debroot.kernel_deb(cache, log)
    digest = debroot.deb_digest(our_deb)
    ours = debroot._stable_copy(our_deb, cache, digest)
    depends = debroot.deb_depends(debroot._deb_field(ours, "Depends"))
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        base, base_seconds = debroot._base(VARIANT, depends, mirror, cache, log)
        key = debroot.cache_key(debroot._key_parts(VARIANT, base, kdeb, digest, conf))
        found = debroot._find(cache, VARIANT.name, key)
        if found is not None:
            return found
        log(f"multipath: building the {VARIANT.name} root ({key}) on {base.name}; a few minutes")
        result = debroot._build_locked(VARIANT, key, base, base_seconds, ours, kdeb, conf, cache)
        debroot._prune(cache, f"{VARIANT.name}-*", keep=debroot.KEEP)
        return result


# --- pure parts ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One phase's figures from the guest's marks (guest seconds; None: not measured)."""

    name: str
    writes: int
    failed: int
    max_gap: float | None  # the longest time between two completed writes: path loss to I/O again
    lost_after_cut: float | None  # from the cut until dm had failed the path
    recovered_after: float | None  # from the link's return to 2 active paths


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "none") else None
    except ValueError:
        return None


def phase_figures(name: str, marks: Sequence[tuple[str, dict[str, str]]]) -> Phase:
    """The figures of phase `name` out of (mark name, details) pairs, in console order."""
    found: dict[str, dict[str, str]] = {}
    for mark, detail in marks:
        if detail.get("phase") == name and mark not in found:
            found[mark] = detail
    end = found.get("phase-end", {})
    return Phase(
        name,
        int(end.get("writes", "0") or 0),
        int(end.get("failed", "0") or 0),
        _number(end.get("maxgap")),
        _number(found.get("restore", {}).get("lost")),
        _number(found.get("recovered", {}).get("after")),
    )


def dm_active_paths(status: str) -> tuple[int, int]:
    """(active, total) paths in one `dmsetup status` line of a multipath map (`maj:min A|F fail-count` each), as the
    guest's awk counts them."""
    words = status.split()
    total = active = 0
    for index, word in enumerate(words[:-1]):
        major, sep, minor = word.partition(":")
        if sep and major.isdigit() and minor.isdigit():
            total += 1
            active += words[index + 1] == "A"
    return active, total


# --- the lab ---------------------------------------------------------------------------------------------------


class Qmp:
    """QEMU's monitor protocol on a unix socket, connected on first use; set_link only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        self._stream = None
        self.said: list[str] = []

    def _connect(self) -> None:
        end = time.monotonic() + QMP_BOUND
        while not self.path.exists() and time.monotonic() < end:
            time.sleep(0.05)
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(QMP_BOUND)
        sock.connect(str(self.path))
        self._sock, self._stream = sock, sock.makefile("rw")
        self._stream.readline()  # the greeting
        self._command({"execute": "qmp_capabilities"})

    def _command(self, command: dict) -> str:
        assert self._stream is not None
        self._stream.write(json.dumps(command) + "\n")
        self._stream.flush()
        while True:  # events may come first
            line = self._stream.readline().strip()
            if not line or '"event"' not in line:
                return line

    def set_link(self, netdev: str, up: bool) -> str:
        try:
            if self._sock is None:
                self._connect()
            answer = self._command({"execute": "set_link", "arguments": {"name": netdev, "up": up}})
        except OSError as exc:
            answer = f"QMP failed: {exc}"
        self.said.append(f"set_link {netdev} {'on' if up else 'off'}: {answer}")
        return answer

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class MultipathLab:
    """tgtd serving the root's private disk at two portals; a context manager that lives across boots."""

    def __init__(self, root: DebRoot) -> None:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        self.root = root
        self._tmp = make_private_dir(CACHE, ".mpath")
        self.disk = self._tmp / "root.ext4"
        self._tgtd = None
        self.ports: tuple[int, int] = (0, 0)

    def __enter__(self) -> MultipathLab:
        from tests.support.tgtd import Tgtd

        try:
            rootimage.copy_for_boot(self.root.image, self.disk)
            self.disk.chmod(0o600)
            shutil.copyfile(self.root.vmlinuz, self._tmp / "vmlinuz")
            shutil.copyfile(self.root.initrd, self._tmp / "initrd.img")
            self._tgtd = Tgtd(self._tmp / "tgtd").__enter__()
            serve_disk(self._tgtd, ROOT_IQN, self.disk)
            second = self._tgtd.add_portal()
            self.ports = (self._tgtd.port, second)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._tgtd is not None:
            self._tgtd.close()
            self._tgtd = None
        shutil.rmtree(self._tmp, ignore_errors=True)

    def cmdline(self, guest: Guest, ports: tuple[int, int] | None = None) -> str:
        ports = ports or self.ports
        words = [BASE_APPEND]
        words += [f"ip={nic}:dhcp" for nic in NICS]
        words += [f"netroot=iscsi:{net}.2::{port}:1:{ROOT_IQN}" for net, port in zip(NETS, ports, strict=True)]
        words.append(f"root=UUID={self.root.uuid} pyiscsi.test.action={guest.action} pyiscsi.test.root={ROOT_IQN}")
        if guest.extra:
            words.append(guest.extra)
        return " ".join(words)

    def boot(self, guest: Guest, ports: tuple[int, int] | None = None, bound: float = BOUND) -> Booted:
        """One boot; `ports` replaces the portals on the kernel line (a port where nothing listens: a dead path)."""
        logs = CACHE / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log_path = logs / f"multipath-{guest.name}-{os.getpid()}-{time.monotonic_ns()}.log"
        append = self.cmdline(guest, ports)
        qmp_path = self._tmp / f"qmp-{time.monotonic_ns()}.sock"
        qmp = Qmp(qmp_path)
        links: dict[str, float] = {}

        def on_line(line: str) -> None:
            mark = MARK_RE.search(line)
            if not mark or "check:" in line:
                return
            if mark.group(1) == "cut":
                links[f"cut-{len(links)}"] = time.monotonic()
                qmp.set_link(CUT_NETDEV, False)
            elif mark.group(1) == "restore":
                links[f"restore-{len(links)}"] = time.monotonic()
                qmp.set_link(CUT_NETDEV, True)

        spec = VmSpec(
            kernel=self._tmp / "vmlinuz",
            initrd=self._tmp / "initrd.img",
            append=append,
            memory_mb=MEMORY_MB,
            netdevs=tuple(f"user,net={net}.0/24" for net in NETS),
            extra=("-qmp", f"unix:{qmp_path},server=on,wait=off"),
        )
        started = time.monotonic()
        try:
            console, fatal = run_watched(build_command(spec, accel()), bound, log_path, guest.name, on_line,
                                         fatal_re=None)  # fmt: skip
        finally:
            qmp.close()
        return Booted(guest, console, append, time.monotonic() - started, fatal, {"qmp": qmp.said})

    def free_port(self) -> int:
        """A port on 127.0.0.1 where nothing listens (a portal that is down)."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]


def require() -> str | None:
    """Why these boots cannot run here, or None."""
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 not installed"
    if os.geteuid() != 0:
        return "tgtd and the root build need root"
    if shutil.which("mmdebstrap") is None:
        return "mmdebstrap not installed"
    return None
