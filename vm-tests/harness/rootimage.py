"""The real root the boot tests land in: an ext4 image (`mke2fs -d`, no loop mount) served as a tgtd LUN.

It holds static busybox, Debian's open-iscsi `iscsid` and `iscsiadm` with their shared libraries (the host's
files, found through `ldd`), /etc/os-release (systemd's switch-root refuses a root without it) and an
`/sbin/init` that proves the handover:

  PYISCSI-MARK realroot         the real root runs (uptime = time to the real root; then the kernel's
                                /proc/stat `cpu` line: the vCPU's busy and idle time since power-on)
  PYISCSI-MARK rootstate ...    what the initramfs left: /run/pyiscsi/booted, node records, initiator name
  PYISCSI-MARK execstartpre ... what the iscsid.service drop-ins' ExecStartPre= printed (run as systemd would)
  PYISCSI-MARK iscsid           iscsid started
  PYISCSI-MARK adopted ...      `iscsiadm -m session -P 1` shows our session known to iscsid and LOGGED IN
  PYISCSI-MARK await-failure    the host may now break the connection (it restarts tgtd)
  PYISCSI-MARK conn-lost        the kernel reported the connection error
  PYISCSI-MARK recovered ...    iscsid logged in again and the disk reads (O_DIRECT) after it
  PYISCSI-MARK realroot-fail .. any of those did not happen in its bound (the line says which)

then powers off. `recovery=False` in the kernel command line option `pyiscsi.test=adopt` stops after adoption.
The image is built once per content (cache/rootimg); each boot gets its own sparse copy (the root is mounted rw).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness import images
from harness.errors import HarnessError
from harness.paths import BUSYBOX, CACHE

BINARIES = ("/usr/sbin/iscsid", "/usr/sbin/iscsiadm")
SIZE_MB = 48
# seconds for iscsid to adopt the session. It takes 2-5 s, except after the root-link step (no root=, or
# root=iscsi:): there, under TCG, iscsid's first start spends ~25 s (6 of 6 boots) while the guest sits in
# clear_page_rep as ld.so maps iscsid's libraries. The I/O and the page counts are the same as in a fast boot
# (/proc/vmstat): our step triggers it, but the time looks like the emulator's; 30 s failed one CI run. The
# bound stays well below the 120 s replacement_timeout that a real stall would run into.
ADOPT_BOUND = 75
LOST_BOUND = 60  # for the kernel to report the connection error once the host broke it
RECOVER_BOUND = 90  # for iscsid to log in again

INIT = r"""#!/bin/sh
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
# switch_root moved /proc, /sys, /dev and /run here; mount only what is missing (/run must stay: it is the handover)
[ -e /proc/self ] || mount -t proc proc /proc
[ -d /sys/class ] || mount -t sysfs sysfs /sys
[ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
grep -q ' /run ' /proc/mounts || mount -t tmpfs tmpfs /run
mkdir -p /tmp /run/lock/iscsi /var/lib/iscsi /var/lock
now() { cut -d. -f1 /proc/uptime; }
mark() { echo "PYISCSI-MARK $1 $(cut -d' ' -f1 /proc/uptime)${2:+ $2}" > /dev/console; }
fail() { mark realroot-fail "$*"; sync; poweroff -f; sleep 10; }
read -r stat < /proc/stat # the vCPU's time since power-on, busy and idle, for make bench (a builtin: no process)
mark realroot "$(cat /proc/cmdline | tr ' ' '\n' | grep -c .) args; $stat"
mode=recover
debug=0
for arg in $(cat /proc/cmdline); do
    case "$arg" in
        pyiscsi.test=*) mode=${arg#pyiscsi.test=} ;;
        pyiscsi.test.iscsid_debug=*) debug=${arg#pyiscsi.test.iscsid_debug=} ;;
    esac
done
nodes=$(find /etc/iscsi/nodes -type f 2>/dev/null | wc -l)
startup=$(grep -h '^node.startup' $(find /etc/iscsi/nodes -type f 2>/dev/null) /dev/null | tr -d ' ' | tr '\n' ,)
perms=$(find /etc/iscsi/nodes -type f -perm 0600 2>/dev/null | wc -l)
keep=$(ls /run/systemd/network /run/NetworkManager/system-connections 2>/dev/null | grep -c pyiscsi)
name=$(grep -h InitiatorName= /etc/iscsi/initiatorname.iscsi 2> /dev/null)
booted=$(cat /run/pyiscsi/booted 2> /dev/null)
mark rootstate "booted=$booted nodes=$nodes startup=$startup mode0600=$perms keepnet=$keep $name"
ls /sys/class/iscsi_session/ | grep -q session || fail "no iSCSI session in sysfs after switch_root"
sid=$(ls /sys/class/iscsi_session/ | head -n1)
dev=$(cat /run/pyiscsi/booted 2>/dev/null)
[ -b "$dev" ] || dev=/dev/sda
# what systemd does before it starts iscsid.service: the drop-ins' ExecStartPre=-/bin/sh -c '...' (pyiscsi's stops
# its recovery agent, so that iscsid is the only listener), unescaped as systemd does ($$, %%)
for pre in /etc/systemd/system/iscsid.service.d/*.conf; do
    [ -f "$pre" ] || continue
    cmd=$(grep "^ExecStartPre=-/bin/sh -c '" "$pre" |
        sed -e 's/^ExecStartPre=-\/bin\/sh -c .//' -e 's/.$//' -e 's/\$\$/$/g' -e 's/%%/%/g')
    [ -n "$cmd" ] || continue
    out=$(sh -c "$cmd" 2>&1)
    [ -n "$out" ] && mark execstartpre "$out"
done
iscsid -f -d "$debug" > /dev/console 2>&1 &
sleep 0.5
kill -0 $! 2> /dev/null || fail "iscsid did not start"
mark iscsid
end=$(($(now) + ADOPT_BOUND))
while :; do
    out=$(iscsiadm -m session -P 1 2>&1)
    if echo "$out" | grep -q 'Internal iscsid Session State: NO CHANGE' &&
        echo "$out" | grep -q 'iSCSI Connection State: LOGGED IN'; then
        break
    fi
    if [ "$(now)" -ge $end ]; then
        echo "$out"
        iscsiadm -m session -P 3
        dmesg | tail -n 20 | grep -v PYISCSI-MARK
        fail "iscsid did not adopt $sid within ADOPT_BOUNDs"
    fi
    sleep 0.5
done
echo "$out" | grep -E 'Target:|Current Portal|Iface Name|State' | sed 's/^/  iscsiadm: /'
mark adopted "$sid $(echo "$out" | grep -m1 'Target:' | sed 's/.*Target: *//; s/ .*//')"
[ "$mode" = adopt ] && { sync; poweroff -f; sleep 10; }
dd if="$dev" of=/dev/null bs=4096 count=16 iflag=direct 2> /dev/null || fail "$dev does not read before the failure"
# iscsid's adoption itself drops and remakes the connection once: only an error after this point counts
before=$(dmesg | grep -c 'detected conn error')
mark await-failure
end=$(($(now) + LOST_BOUND))
until [ "$(dmesg | grep -c 'detected conn error')" -gt "$before" ]; do
    [ "$(now)" -ge $end ] && fail "no connection error reported within LOST_BOUNDs"
    sleep 0.5
done
mark conn-lost "$(dmesg | grep 'detected conn error' | tail -n 1 | sed 's/^\[[^]]*\] *//')"
end=$(($(now) + RECOVER_BOUND))
while :; do
    state=$(cat /sys/class/iscsi_session/$sid/state 2>/dev/null)
    if [ "$state" = LOGGED_IN ] && iscsiadm -m session -P 1 2>&1 | grep -q 'iSCSI Connection State: LOGGED IN'; then
        break
    fi
    [ "$(now)" -ge $end ] && fail "iscsid did not recover $sid within RECOVER_BOUNDs (state $state)"
    sleep 0.5
done
dd if="$dev" of=/dev/null bs=4096 count=16 skip=64 iflag=direct 2> /dev/null || fail "$dev does not read after recovery"
mark recovered "$sid $state, $dev reads"
sync
poweroff -f
sleep 10
"""


# the realroot mark's detail: "<N> args; cpu <user> <nice> <system> <idle> <iowait> <irq> <softirq> <steal> ..."
_STAT = re.compile(r"; cpu\s+(?P<ticks>\d+(?: \d+)*)")
USER_HZ = 100  # /proc/stat's unit on x86 (the kernel's USER_HZ, whatever its HZ)


def vcpu_seconds(detail: str) -> tuple[float, float] | None:
    """(busy, idle) seconds of the vCPU from power-on, from the /proc/stat line in the realroot mark's detail:
    user, nice, system, irq, softirq and steal are busy; idle and iowait are idle. None without the line."""
    found = _STAT.search(detail)
    return None if found is None else _busy_idle(found)


def _busy_idle(found: re.Match[str]) -> tuple[float, float]:
    ticks = [int(t) for t in found.group("ticks").split()] + [0] * 8
    user, nice, system, idle, iowait, irq, softirq, steal = ticks[:8]
    return (user + nice + system + irq + softirq + steal) / USER_HZ, (idle + iowait) / USER_HZ


def readable_detail(detail: str) -> str:
    """The realroot mark's detail for a person: the /proc/stat line as the vCPU's busy and idle seconds."""
    found = _STAT.search(detail)
    if found is None:
        return detail
    busy, idle = _busy_idle(found)
    return f"{detail[: found.start()]}; vCPU since power-on: busy {busy:.2f}s, idle {idle:.2f}s"


def init_script(before_iscsid: str = "") -> str:
    """`before_iscsid`: shell lines run after `rootstate`, before iscsid starts (an extra real-root phase; `$sid`,
    `$dev`, `mark`, `fail`, `now` and the *_BOUND words are there as in the rest of the script)."""
    script = INIT
    if before_iscsid:
        at = "# what systemd does before it starts iscsid.service"
        script = script.replace(at, before_iscsid.rstrip("\n") + "\n" + at, 1)
    return (
        script.replace("ADOPT_BOUND", str(ADOPT_BOUND))
        .replace("LOST_BOUND", str(LOST_BOUND))
        .replace("RECOVER_BOUND", str(RECOVER_BOUND))
    )


def library_closure(binaries: tuple[str, ...] = BINARIES) -> list[str]:
    """Absolute paths of every shared library (and the loader) the binaries load, as `ldd` resolves them."""
    found: set[str] = set()
    for binary in binaries:
        done = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            raise HarnessError(f"ldd {binary}: {done.stderr.strip()} (Debian package open-iscsi)")
        for line in done.stdout.splitlines():
            parts = line.split()
            if "=>" in parts:
                path = parts[parts.index("=>") + 1]
                if path.startswith("/"):
                    found.add(path)
            elif parts and parts[0].startswith("/"):
                found.add(parts[0])
    return sorted(found)


def _copy_host(path: str, root: Path) -> None:
    dest = root / path.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(path), dest)


def build(cache: Path | None = None, before_iscsid: str = "") -> Path:
    """The root image (cached by its inputs); callers copy it before a boot writes to it. `before_iscsid`: see
    init_script (empty: the standard image)."""
    for binary in BINARIES:
        if not Path(binary).is_file():
            raise HarnessError(f"{binary}: not installed (Debian package open-iscsi)")
    libs = library_closure()
    script = init_script(before_iscsid)
    # this file too: how the tree is laid out is part of the image (links, passwd), not only the init script
    digest = hashlib.sha256(Path(__file__).read_bytes() + script.encode() + images.OS_RELEASE.encode())
    for path in (*BINARIES, *libs, str(BUSYBOX), "/etc/iscsi/iscsid.conf"):
        digest.update(path.encode() + Path(path).read_bytes())
    cache = cache or CACHE / "rootimg"
    cache.mkdir(parents=True, exist_ok=True)
    out = cache / f"root-{digest.hexdigest()[:16]}.ext4"
    if out.is_file():
        return out
    with tempfile.TemporaryDirectory(dir=cache, prefix=".stage-") as tmp:
        root = Path(tmp)
        for name in ("proc", "sys", "dev", "run", "tmp", "etc/iscsi", "var/lib/iscsi", "root", "sysroot"):
            (root / name).mkdir(parents=True, exist_ok=True)
        images.stage_busybox(root)  # /bin/busybox + applets; sbin, usr/bin, usr/sbin -> /bin
        for binary in BINARIES:
            shutil.copy2(binary, root / "bin" / Path(binary).name)
        for lib in libs:
            _copy_host(lib, root)
        (root / "etc/os-release").write_text(images.OS_RELEASE)
        # iscsid's IPC checks the peer with getpwuid(): uid 0 must have a name
        (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc/group").write_text("root:x:0:\n")
        (root / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\n")
        shutil.copy2("/etc/iscsi/iscsid.conf", root / "etc/iscsi/iscsid.conf")
        # relative links, as a usrmerged Debian root has them: dracut's sh init resolves $NEWROOT/sbin/init with
        # `readlink -f` from inside the initramfs, where an absolute /bin would be the initramfs's own
        for name, target in (("sbin", "bin"), ("usr/bin", "../bin"), ("usr/sbin", "../bin")):
            (root / name).unlink()
            (root / name).symlink_to(target)
        init = root / "bin" / "init"
        init.unlink(missing_ok=True)
        init.write_text(script)
        init.chmod(0o755)
        part = cache / f".{out.name}.part"
        done = subprocess.run(
            ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "pyiscsi-root", "-d", str(root), str(part), f"{SIZE_MB}M"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise HarnessError(f"mke2fs: {done.stderr.strip()}")
        os.replace(part, out)
    return out


def copy_for_boot(image: Path, dest: Path) -> Path:
    """A sparse private copy of the root image: a boot mounts it read-write."""
    subprocess.run(["cp", "--sparse=always", str(image), str(dest)], check=True, timeout=60)
    return dest


def root_uuid(image: Path) -> str:
    argv = ["blkid", "-o", "value", "-s", "UUID", str(image)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip()
