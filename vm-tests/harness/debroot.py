"""Real Debian 12 roots for the boot tests: `mmdebstrap` from this machine's own apt sources, then `mke2fs -d`.

Each variant is a minimal bookworm with systemd, open-iscsi, Debian's dracut (`dracut`, `dracut-network`), our
package (`make deb`, installed with apt so that its dependencies come along) and one network manager:

  networkd        systemd-networkd, a `.network` for the wired NIC with DHCP
  networkmanager  NetworkManager as Debian installs it (its automatic wired DHCP profile)
  ifupdown        Debian's default ifupdown + isc-dhcp-client, `allow-hotplug` + `inet dhcp` as the installer writes

How a user would: `/etc/dracut.conf.d/pyiscsi.conf` is taken verbatim from the README, THEN the pinned kernel
package (`vm-tests/kernel.pin`, the very .deb harness.kernel fetched) is installed with `dpkg -i` in a chroot of
the root (/proc, /sys, /dev bind-mounted, always unmounted again): Debian's own kernel postinst hook
(/etc/kernel/postinst.d/dracut) runs the root's dracut, which writes /boot/initrd.img-<kver> with 95pyiscsi.
That image is checked with the root's own `lsinitrd`, and the kernel and initrd that boot are read back out of the
finished ext4 image's /boot (debugfs), so what boots is what the kernel package's hook made.

Every root also carries a small test unit (`pyiscsi-test.service`, only active with `pyiscsi.test.action=` on the
kernel command line) that prints `PYISCSI-MARK ...` lines on the console once multi-user.target is reached, and a
systemd-shutdown hook that prints what was still up after the root was unmounted or remounted read-only. See
GUEST_CHECK and GUEST_FINAL for what each mark says.

Two layers, so that a new `make deb` costs only the second: the variant's mmdebstrap base (its packages and our
package's dependencies; CACHE/debroot/base-<variant>-<key>.tar, keyed by the package list and the sources), then
per build the unpacked base + the files below + `dpkg -i` of our package and of the kernel + `mke2fs -d`.
Downloads are shared: one apt archive directory (CACHE/debroot/archives) is synced into and out of every base.
Results live in CACHE/debroot/<variant>-<key>/ (root.ext4, vmlinuz, initrd.img, info.json, build.log,
lsinitrd.txt), keyed by the base, the variant's files, the kernel .deb, our .deb's contents (not its timestamps)
and this file's text.

    python -m harness.debroot build [VARIANT ...] [--deb PATH]   # prints one line per image with its timings
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.paths import CACHE, REPO
from harness.private import make_private_dir

SUITE = "bookworm"
MMDEBSTRAP_VARIANT = "minbase"
# where apt on this machine reads its sources; the first that exists is handed to mmdebstrap as the mirror
SOURCES_CANDIDATES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
README = REPO / "README.md"
LABEL = "pyiscsi-root"
MMDEBSTRAP_BOUND = 1800.0
CHROOT_BOUND = 900.0  # dpkg -i of the kernel, with dracut in its postinst
MAKE_DEB_BOUND = 900.0
TOOL_BOUND = 300.0
KEEP = 2  # images kept per variant (each ~1 GB of data in a sparse file)
HEADROOM = 1.35  # image size over the tree's size, plus SLACK_MB: room for the journal and the boots' writes
SLACK_MB = 256
MULTIUSER_BOUND = 240  # guest seconds the check waits for `systemctl is-system-running --wait`
ADOPT_BOUND = 30  # guest seconds the check waits for iscsid to have adopted every session (its sync re-logs each)

COMMON_PACKAGES = (
    "systemd-sysv",
    "udev",
    "dbus",
    "open-iscsi",
    "dracut",
    "dracut-core",
    "dracut-network",
    "linux-base",
    "kmod",
    "e2fsprogs",
    "iproute2",
    "procps",
)
TEST_UNIT = "pyiscsi-test.service"
TEST_SCRIPT = "usr/local/sbin/pyiscsi-test-check"
FINAL_HOOK = "usr/lib/systemd/system-shutdown/pyiscsi-test-final"
TOKEN_FILE = "var/lib/pyiscsi-test/token"
# what 95pyiscsi puts in an image when it works (a failed freeze leaves the module listed but these out)
INITRD_MUST_HAVE = ("usr/sbin/pyiscsi", "usr/lib/pyiscsi/bin/python3")
# QEMU `-M pc -nodefaults` puts the only NIC (virtio-net-pci) in slot 2, which systemd's naming calls ens2
GUEST_NIC = "ens2"

Files = dict[str, tuple[str, int]]


@dataclass(frozen=True)
class Variant:
    name: str
    packages: tuple[str, ...]  # beyond COMMON_PACKAGES
    files: tuple[tuple[str, str, int], ...]  # (path in the root, text, mode)
    enable: tuple[str, ...] = ()  # units to `systemctl enable` in the chroot
    manager_units: tuple[str, ...] = ()  # what the guest reports as the network manager's state
    # what a Debian admin runs to restart the network manager (the stress phase runs it under the writes)
    restart: str = ""


NETWORKD_WIRED = """\
# The wired NIC by DHCP (what a networkd user writes; pyiscsi's /run/systemd/network/10-pyiscsi-*.network sorts
# first for the boot interface and keeps its configuration)
[Match]
Name=en* eth*

[Network]
DHCP=ipv4
"""

IFUPDOWN_INTERFACES = f"""\
# as the Debian installer writes it for a wired NIC with DHCP
source /etc/network/interfaces.d/*

auto lo
iface lo inet loopback

allow-hotplug {GUEST_NIC}
iface {GUEST_NIC} inet dhcp
"""

VARIANTS: dict[str, Variant] = {
    "networkd": Variant(
        "networkd",
        (),
        (("etc/systemd/network/20-wired.network", NETWORKD_WIRED, 0o644),),
        enable=("systemd-networkd.service",),
        manager_units=("systemd-networkd.service",),
        restart="systemctl restart systemd-networkd.service",
    ),
    "networkmanager": Variant(
        "networkmanager",
        ("network-manager",),
        (),
        manager_units=("NetworkManager.service",),
        restart="systemctl restart NetworkManager.service",
    ),
    "ifupdown": Variant(
        "ifupdown",
        ("ifupdown", "isc-dhcp-client"),
        (("etc/network/interfaces", IFUPDOWN_INTERFACES, 0o644),),
        manager_units=("networking.service", f"ifup@{GUEST_NIC}.service"),
        # networking.service's stop is `ifdown -a` (keepnet's drop-in excludes the root NIC), its start `ifup -a`
        restart="systemctl restart networking.service",
    ),
}

# The guest's report, run by pyiscsi-test.service after multi-user.target. Marks (name, guest uptime, details):
#   realroot   the check runs
#   multiuser  `systemctl is-system-running --wait` (running or degraded) and multi-user.target's state
#   failed     `systemctl --failed` units, comma-separated, or none
#   rootdev    the device / is on, its iSCSI session and target
#   sessions   `iscsiadm -m session`: total and per target (root=, data=)
#   adopted    iscsid.service's state, sessions iscsid knows (NO CHANGE) and LOGGED_IN, agents left, pid file, and the
#              seconds waited (up to ADOPT_BOUND) for iscsid's start-up sync to have re-logged every session
#   startup    node.startup of the root's and the data target's node records; records = how many there are
#   loginsvc   open-iscsi.service's state and what its start-up `--loginall=automatic` said
#   explain    `pyiscsi explain` in the running system: its exit status and how many targets its plan names
#              (the `targets:` lines, `<iqn> at <portal>`; the `luns` lines name them again)
#   datadisk   the data target's disk, its size, whether it reads
#   relogin    after logging the data target out, open-iscsi.service's own ExecStart logs it in again
#   net        the boot NIC's address and the network manager's units
#   token      phase=write: a token written (then synced); phase=verify: the token read back
# with pyiscsi.test.stress=SECONDS (point 4 of issue 17: the network manager under I/O):
#   stress-begin  a writer starts: 1 MiB files in 16 slots on the root, each fsync'ed and its sha256 kept
#   restart       the variant's restart command runs (Variant.restart) 10 s into the writes
#   restarted     its exit status and the network manager's units afterwards
#   stress        the writes are over (SECONDS after stress-begin): how many, failed writes, checksums that do not
#                 read back after dropping the page cache, addresses before/after, their valid_lft, dhclients
#   fscheck    systemd-fsck-root's verdict in this boot, ext4 journal recoveries in the kernel log
#   errors     I/O errors and iSCSI connection errors in the kernel log so far
#   shutdown   about to `systemctl reboot|poweroff`
# and GUEST_FINAL, run by systemd-shutdown once the root is unmounted or read-only:
#   final      action, every session's state, the addresses still up, the root's mount state, the error counts
GUEST_CHECK = r"""#!/bin/sh
# pyiscsi VM test (vm-tests/harness/debroot.py): report this boot on the console, then reboot or power off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mark() { echo "PYISCSI-MARK $1 $(cut -d' ' -f1 /proc/uptime)${2:+ $2}" > /dev/console; }
say() { sed 's/^/  check: /' > /dev/console; }
arg() { for a in $(cat /proc/cmdline); do case "$a" in "$1"=*) echo "${a#*=}"; return;; esac; done; }
words() { tr ' ' '_' | tr '\n' ';' | sed 's/;$//'; }
addrs() { ip -o -4 addr show scope global | awk '{print $2"="$4}' | tr '\n' ',' | sed 's/,$//'; }
count() { if [ -n "$1" ]; then iscsiadm -m session 2>/dev/null | grep -c " $1 "; else echo 0; fi; }
startup() { [ -n "$1" ] && iscsiadm -m node -T "$1" 2>/dev/null | awk '$1=="node.startup"{print $3; exit}'; }
disk_of() {
    for s in /sys/class/iscsi_session/session*; do
        [ "$(cat "$s/targetname" 2>/dev/null)" = "$1" ] || continue
        for b in "$s"/device/target*/*/block/*; do [ -e "$b" ] && echo "${b##*/}"; done
    done | head -n 1
}
wait_disk() {  # the disk of target $1, waiting up to 30 s for udev and the SCSI scan
    n=0
    while [ $n -lt 30 ]; do d=$(disk_of "$1"); [ -n "$d" ] && { echo "$d"; return; }; sleep 1; n=$((n+1)); done
    echo none
}
action=$(arg pyiscsi.test.action)
phase=$(arg pyiscsi.test.phase)
token=$(arg pyiscsi.test.token)
root_iqn=$(arg pyiscsi.test.root)
data_iqn=$(arg pyiscsi.test.data)
mark realroot "variant=@VARIANT@"
state=$(timeout @MULTIUSER_BOUND@ systemctl is-system-running --wait 2>/dev/null)
mark multiuser "state=${state:-timeout} target=$(systemctl is-active multi-user.target)"
failed=$(systemctl --failed --no-legend --plain | awk '{print $1}' | tr '\n' ',' | sed 's/,$//')
mark failed "units=${failed:-none}"
for unit in $(echo "$failed" | tr ',' ' '); do  # why: what the unit and PID 1 said (early: only in the kernel log)
    journalctl -b -u "$unit" -t "${unit%.*}" --no-pager -o short-monotonic -n 12 2>&1 | say
    dmesg | grep -F "${unit%.*}" | tail -n 8 | say
    case "$unit" in  # it said nothing anywhere: run it again (it writes only under /run) to see why
        systemd-network-generator.service) ls -l /run/systemd/network 2>&1 | say
            SYSTEMD_LOG_LEVEL=debug /lib/systemd/systemd-network-generator 2>&1 | tail -n 8 | say ;;
    esac
done
rootsrc=$(findmnt -n -o SOURCE /)
rootsess=$(readlink -f "/sys/class/block/${rootsrc##*/}/device" | grep -o 'session[0-9]*' | head -n 1)
roottgt=$(cat "/sys/class/iscsi_session/$rootsess/targetname" 2>/dev/null)
mark rootdev "dev=$rootsrc session=${rootsess:-none} target=${roottgt:-none}"
iscsiadm -m session 2>&1 | say
total=$(iscsiadm -m session 2>/dev/null | grep -c '^tcp:')
mark sessions "total=$total root=$(count "$root_iqn") data=$(count "$data_iqn")"
all_adopted() { [ "$known" = "$total" ] && [ "$loggedin" = "$total" ]; }
waited=0  # iscsid's start-up sync re-logs each session (DefaultTime2Wait first): it may still be under way
while :; do
    p1=$(iscsiadm -m session -P 1 2>&1)
    known=$(echo "$p1" | grep -c 'Internal iscsid Session State: NO CHANGE')
    loggedin=$(echo "$p1" | grep -c 'iSCSI Session State: LOGGED_IN')
    all_adopted || [ $waited -ge @ADOPT_BOUND@ ] && break
    sleep 1; waited=$((waited+1))
done
agents=$(pgrep -f '^@pyiscsi-agent' | wc -l)
pidfile=no; [ -e /run/pyiscsi/agent.pid ] && pidfile=yes
iscsid=$(systemctl is-active iscsid.service)
mark adopted "iscsid=$iscsid nochange=$known loggedin=$loggedin agents=$agents pidfile=$pidfile waited=$waited"
if ! all_adopted; then  # why: each session's states, what iscsid said
    echo "$p1" | grep -E 'Target:|Current Portal:|SID:|State:' | say
    journalctl -b -u iscsid.service -o short-monotonic --no-pager 2>&1 | tail -n 20 | say
fi
records=$(iscsiadm -m node 2>/dev/null | grep -c .)
mark startup "root=$(startup "$root_iqn") data=$(startup "$data_iqn") records=$records"
journalctl -b -u open-iscsi.service -o cat --no-pager 2>&1 | tail -n 6 | say
said=$(journalctl -b -u open-iscsi.service -o cat --no-pager 2>/dev/null | grep -E '^(iscsiadm:|Login to)' | words)
mark loginsvc "state=$(systemctl is-active open-iscsi.service) said=${said:-nothing}"
explained=$(pyiscsi explain 2>&1); rc=$?  # what the README tells a user to look at after the boot
echo "$explained" | say
mark explain "rc=$rc targets=$(echo "$explained" | grep -c '^  iqn\.[^ ]* at ')"
if [ -n "$data_iqn" ]; then
    dd=$(wait_disk "$data_iqn")
    reads=no; dd if="/dev/$dd" of=/dev/null bs=4096 count=8 iflag=direct 2>/dev/null && reads=yes
    mark datadisk "dev=$dd size=$(blockdev --getsize64 "/dev/$dd" 2>/dev/null) reads=$reads"
    iscsiadm -m node -T "$data_iqn" --logout 2>&1 | say
    after=$(count "$data_iqn")
    # open-iscsi.service's own start-up command, on the records pyiscsi left
    login=$(grep '^ExecStart=' /usr/lib/systemd/system/open-iscsi.service | head -n 1 | sed 's/^ExecStart=//')
    $login 2>&1 | say
    dd2=$(wait_disk "$data_iqn")
    cmd=$(echo "$login" | words)
    mark relogin "loggedout=$after cmd=$cmd data=$(count "$data_iqn") root=$(count "$root_iqn") dev=$dd2"
fi
addr=$(addrs)
units=""
for u in @MANAGER_UNITS@; do units="$units,$u=$(systemctl is-active "$u")"; done
mark net "addr=${addr:-none} units=${units#,}"
command -v networkctl > /dev/null && networkctl list --no-legend 2>&1 | say
command -v nmcli > /dev/null && nmcli -t -f DEVICE,STATE,CONNECTION device 2>&1 | say
[ -e /run/network/ifstate ] && sed 's/^/ifstate: /' /run/network/ifstate | say
stress=$(arg pyiscsi.test.stress)
if [ -n "$stress" ]; then
    dir=/var/lib/pyiscsi-test/stress
    mkdir -p "$dir" && rm -f "$dir"/*
    before=$(addrs)
    # the DHCP events of the real root's network manager, live on the console with their uptime: if the root disk
    # is lost, they are what shows whether the lease was renewed
    journalctl -f -n 0 -o short-monotonic 2>/dev/null | grep --line-buffered -i dhcp | sed -u 's/^/  journal: /' \
        > /dev/console &
    mark stress-begin "seconds=$stress addr=$before"
    (
        end=$(( $(cut -d. -f1 /proc/uptime) + stress )); n=0
        while [ "$(cut -d. -f1 /proc/uptime)" -lt "$end" ]; do
            slot=$((n % 16))
            dd if=/dev/urandom of="$dir/$slot" bs=64k count=16 conv=fsync 2>/dev/null || echo "$n" >> "$dir/failed"
            sha256sum "$dir/$slot" > "$dir/$slot.sum"
            n=$((n+1))
        done
        echo "$n" > "$dir/count"
    ) &
    writer=$!
    sleep 10
    mark restart "cmd=$(echo "@RESTART@" | words)"
    out=$(@RESTART@ 2>&1); rc=$?
    echo "$out" | say
    units=""
    for u in @MANAGER_UNITS@; do units="$units,$u=$(systemctl is-active "$u")"; done
    mark restarted "rc=$rc units=${units#,}"
    wait "$writer"
    pkill -f '^journalctl -f -n 0 -o short-monotonic'
    sync && echo 3 > /proc/sys/vm/drop_caches
    bad=$(cat "$dir"/*.sum | sha256sum -c --quiet 2>&1 | grep -c 'FAILED')
    failed=0; [ -e "$dir/failed" ] && failed=$(wc -l < "$dir/failed")
    lft=$(ip -o -4 addr show scope global | awk '{for (i = 1; i < NF; i++) if ($i == "valid_lft") print $(i+1)}')
    ip -4 addr show scope global 2>&1 | say
    after=$(addrs)
    mark stress "writes=$(cat "$dir/count") failed=$failed bad=$bad before=$before after=$after \
lft=$(echo "${lft:-none}" | words) dhclients=$(pgrep -c dhclient)"
fi
case "$phase" in
    write)
        mkdir -p /var/lib/pyiscsi-test && echo "$token" > /@TOKEN_FILE@ && sync && mark token "wrote=$token" ;;
    verify)
        got=$(cat /@TOKEN_FILE@ 2>/dev/null); mark token "found=${got:-none}" ;;
esac
fsck=$(journalctl -b -o cat -u systemd-fsck-root.service --no-pager 2>/dev/null | grep -E 'clean|recover|fix' | words)
mark fscheck "recoveries=$(dmesg | grep -c 'EXT4-fs.*recovery complete') fsck=${fsck:-none}"
mark errors "ioerr=$(dmesg | grep -c 'I/O error') connerr=$(dmesg | grep -c 'detected conn error')"
dmesg | grep -E 'I/O error|detected conn error' | tail -n 5 | say
if dmesg | grep -q 'detected conn error'; then  # what iscsid made of them
    journalctl -b -u iscsid.service -o short-monotonic --no-pager 2>&1 | grep -v 'Starting\|Started' | tail -n 12 | say
fi
case "$action" in
    reboot|poweroff) mark shutdown "action=$action"; systemctl "$action" ;;
esac
"""

GUEST_FINAL = r"""#!/bin/sh
# pyiscsi VM test (vm-tests/harness/debroot.py): what is still up once systemd-shutdown unmounted or remounted /.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
grep -q 'pyiscsi.test.action=' /proc/cmdline || exit 0
states=$(cat /sys/class/iscsi_session/session*/state 2>/dev/null | tr '\n' ',' | sed 's/,$//')
addr=$(ip -o -4 addr show scope global 2>/dev/null | awk '{print $2"="$4}' | tr '\n' ',' | sed 's/,$//')
root=$(awk '$2=="/"{split($4, o, ","); m=o[1]} END{print m ? m : "unmounted"}' /proc/mounts)
errors="ioerr=$(dmesg | grep -c 'I/O error') connerr=$(dmesg | grep -c 'detected conn error')"
up=$(cut -d' ' -f1 /proc/uptime)
echo "PYISCSI-MARK final $up action=$1 sessions=${states:-none} addr=${addr:-none} root=$root $errors" > /dev/console
"""

TEST_UNIT_TEXT = f"""\
# pyiscsi VM test (vm-tests/harness/debroot.py): only with pyiscsi.test.action= on the kernel command line
[Unit]
Description=pyiscsi VM test: report this boot on the console
After=multi-user.target
ConditionKernelCommandLine=pyiscsi.test.action

[Service]
# exec, not oneshot: its start job ends at once, so `systemctl is-system-running --wait` inside does not wait on it
Type=exec
ExecStart=/{TEST_SCRIPT}

[Install]
WantedBy=multi-user.target
"""


@dataclass(frozen=True)
class DebRoot:
    """A finished root: the ext4 image and the kernel + initrd read back out of its /boot."""

    variant: str
    directory: Path
    kver: str
    uuid: str
    info: dict

    @property
    def image(self) -> Path:
        return self.directory / "root.ext4"

    @property
    def vmlinuz(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"


# --- pure parts ------------------------------------------------------------------------------------------------


def sources_file(candidates: Sequence[Path] = SOURCES_CANDIDATES) -> Path:
    """This machine's apt sources, as mmdebstrap takes a file for its mirror argument."""
    for path in candidates:
        if path.is_file():
            return path
    raise HarnessError(f"no apt sources file here (looked for {', '.join(str(p) for p in candidates)})")


def readme_dracut_conf(readme: str, name: str = "/etc/dracut.conf.d/pyiscsi.conf") -> str:
    """The dracut configuration the README tells a user to write to `name`: either a code block whose first line
    is `# <name>`, or the shell lines `echo '<line>' > <name>` (`>>` appends) of its instructions."""
    lines = readme.splitlines()
    for index, line in enumerate(lines):
        if line.strip() == f"# {name}":
            body = []
            for following in lines[index + 1 :]:
                if following.startswith("```"):
                    break
                body.append(following)
            if any(b.strip() for b in body):
                return "# from pyiscsi's README\n" + "\n".join(body).strip() + "\n"
    written: list[str] = []
    for line in lines:
        match = re.match(r"^\s*echo\s+'([^']*)'\s*(>>?)\s*" + re.escape(name) + r"(\s|$)", line)
        if match:
            written = [*written, match.group(1)] if match.group(2) == ">>" else [match.group(1)]
    if written:
        return "# from pyiscsi's README\n" + "\n".join(written) + "\n"
    raise HarnessError(f"README: no instructions for {name} (a code block '# {name}' or echo '...' > {name})")


def deb_fields(filename: str) -> tuple[str, str]:
    """(package, version) of a .deb named the Debian way, `<package>_<version>_<arch>.deb` (%3a is the epoch)."""
    match = re.fullmatch(r"([a-z0-9][a-z0-9+.-]+)_([^_/]+)_([a-z0-9-]+)\.deb", filename)
    if not match:
        raise HarnessError(f"{filename!r}: not a <package>_<version>_<arch>.deb name")
    return match.group(1), match.group(2).replace("%3a", ":")


def root_uuid(key: str) -> str:
    """A fixed file system UUID per image key, so fstab and root=UUID= can be written before mke2fs."""
    return str(uuid.UUID(bytes=hashlib.sha256(key.encode()).digest()[:16], version=4))


def fstab(fs_uuid: str) -> str:
    return f"# written by vm-tests/harness/debroot.py\nUUID={fs_uuid} / ext4 errors=remount-ro 0 1\n"


def packages(variant: Variant, extra: Sequence[str] = ()) -> tuple[str, ...]:
    seen: dict[str, None] = dict.fromkeys(COMMON_PACKAGES)
    seen.update(dict.fromkeys(variant.packages))
    seen.update(dict.fromkeys(extra))
    return tuple(seen)


def deb_depends(field: str) -> tuple[str, ...]:
    """Package names a .deb's Depends field needs: the first of each set of alternatives, without versions or
    architecture qualifiers (`python3:any (>= 3.11), a | b` -> python3, a)."""
    names = []
    for clause in field.split(","):
        first = clause.split("|")[0].strip()
        name = re.split(r"[\s(:\[<]", first, maxsplit=1)[0]
        if name:
            names.append(name)
    return tuple(dict.fromkeys(names))


def guest_check(variant: Variant) -> str:
    return (
        GUEST_CHECK.replace("@VARIANT@", variant.name)
        .replace("@MULTIUSER_BOUND@", str(MULTIUSER_BOUND))
        .replace("@ADOPT_BOUND@", str(ADOPT_BOUND))
        .replace("@MANAGER_UNITS@", " ".join(variant.manager_units))
        .replace("@TOKEN_FILE@", TOKEN_FILE)
        .replace("@RESTART@", variant.restart or "true")
    )


def root_files(variant: Variant, fs_uuid: str, dracut_conf: str) -> Files:
    """Every file the build writes into the root (paths relative to it)."""
    files: Files = {
        "etc/dracut.conf.d/pyiscsi.conf": (dracut_conf, 0o644),
        "etc/fstab": (fstab(fs_uuid), 0o644),
        "etc/hostname": (f"pyiscsi-{variant.name}\n", 0o644),
        "etc/hosts": (f"127.0.0.1 localhost\n127.0.1.1 pyiscsi-{variant.name}\n", 0o644),
        TEST_SCRIPT: (guest_check(variant), 0o755),
        FINAL_HOOK: (GUEST_FINAL, 0o755),
        f"etc/systemd/system/{TEST_UNIT}": (TEST_UNIT_TEXT, 0o644),
    }
    for path, text, mode in variant.files:
        files[path] = (text, mode)
    return files


def mmdebstrap_argv(
    variant: Variant, target: Path, mirror: Path, archives: Path, extra: Sequence[str] = ()
) -> list[str]:
    """The base of a variant: minbase plus its packages and our package's dependencies (`extra`), as a tarball;
    downloads are shared through `archives`, synced in before and out after."""
    return [
        "mmdebstrap",
        "--mode=root",
        f"--variant={MMDEBSTRAP_VARIANT}",
        "--include=" + ",".join(packages(variant, extra)),
        "--skip=essential/unlink",
        '--setup-hook=mkdir -p "$1/var/cache/apt/archives"',
        f"--setup-hook=sync-in {archives} /var/cache/apt/archives",
        f"--customize-hook=sync-out /var/cache/apt/archives {archives}",
        '--customize-hook=rm -f "$1"/var/cache/apt/archives/*.deb',
        SUITE,
        str(target),
        str(mirror),
    ]


def image_mb(tree_bytes: int) -> int:
    return int(tree_bytes * HEADROOM / (1 << 20)) + SLACK_MB


def cache_key(parts: Sequence[tuple[str, bytes]]) -> str:
    digest = hashlib.sha256()
    for name, value in parts:
        digest.update(name.encode() + b"\0" + hashlib.sha256(value).digest())
    return digest.hexdigest()[:16]


def deb_digest(path: Path) -> str:
    """A digest of a .deb's control fields and files (names, modes, contents), blind to build timestamps, so a
    `make deb` of unchanged sources in a fresh clone does not make every root anew."""
    digest = hashlib.sha256()
    for member in ("control", "data"):
        args = ["dpkg-deb", "--ctrl-tarfile" if member == "control" else "--fsys-tarfile", str(path)]
        done = subprocess.run(args, capture_output=True, timeout=TOOL_BOUND, check=False)
        if done.returncode != 0:
            raise HarnessError(f"dpkg-deb {args[1]} {path}: {done.stderr.decode(errors='replace').strip()}")
        with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
            for info in sorted(tar.getmembers(), key=lambda m: m.name):
                digest.update(f"{info.name}\0{info.mode:o}\0{info.type!r}\0{info.linkname}\0".encode())
                if info.isfile():
                    data = tar.extractfile(info)
                    digest.update(data.read() if data else b"")
    return digest.hexdigest()


# --- the build -------------------------------------------------------------------------------------------------


def _run(argv: Sequence[str], log: Path, bound: float, env: dict[str, str] | None = None) -> str:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        try:
            done = subprocess.run(
                list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=bound, check=False,
                env=env, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        except FileNotFoundError as exc:
            raise HarnessError(f"{argv[0]}: not installed (deps/debian-packages.txt)") from exc
        except subprocess.TimeoutExpired as exc:
            raise HarnessError(f"{' '.join(argv[:3])}...: no end after {bound:.0f}s (log {log})") from exc
        out.write(done.stdout)
    if done.returncode != 0:
        tail = "\n".join(done.stdout.splitlines()[-25:])
        raise HarnessError(f"{' '.join(argv[:4])}... failed ({done.returncode}); log {log}:\n{tail}")
    return done.stdout


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return found


@contextlib.contextmanager
def chroot_mounts(root: Path) -> Iterator[Path]:
    """/proc, /sys and /dev of this machine bind-mounted into `root` for a chroot step; unmounted in any case
    (lazily when busy), and it is an error to leave one behind."""
    mounted: list[Path] = []
    try:
        for name in ("proc", "sys", "dev"):
            point = root / name
            point.mkdir(exist_ok=True)
            subprocess.run(["mount", "--bind", f"/{name}", str(point)], check=True, timeout=30)
            mounted.append(point)
        yield root
    finally:
        for point in reversed(mounted):
            done = subprocess.run(["umount", str(point)], capture_output=True, timeout=60, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, timeout=60, check=False)
        left = _mounts_under(root)
        if left:
            raise HarnessError(f"still mounted after the chroot step: {left}")


def _remove_tree(path: Path) -> None:
    """rmtree, but never through a mount point (a bind-mounted /dev left behind would be emptied on the host)."""
    if not path.exists():
        return
    left = _mounts_under(path)
    if left:
        raise HarnessError(f"not removing {path}: mounts under it: {left}")
    shutil.rmtree(path)


def make_deb(repo: Path = REPO, bound: float = MAKE_DEB_BOUND) -> Path:
    """`make deb` in the checkout (it rebuilds only when a source changed); the .deb it reports."""
    try:
        done = subprocess.run(
            ["make", "--no-print-directory", "deb"], cwd=repo, capture_output=True, text=True, timeout=bound,
            check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        raise HarnessError(f"make deb: no end after {bound:.0f}s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise HarnessError(f"make deb failed ({done.returncode}):\n{tail}")
    reported = re.findall(r"^deb: (\S+\.deb)$", done.stdout, re.M)
    if reported:
        return (repo / reported[-1]).resolve()
    debs = sorted((repo / "build").glob("pyiscsi_*_all.deb"), key=lambda p: p.stat().st_mtime)
    if not debs:
        raise HarnessError("make deb: no build/pyiscsi_*_all.deb afterwards")
    return debs[-1]


def kernel_deb(cache: Path, log: Callable[[str], None] = print) -> Path:
    """The pinned kernel's .deb: the very package harness.kernel unpacked (its stamp names it), downloaded with
    `apt-get download` once into CACHE/debroot/debs."""
    from harness import kernel

    kern = kernel.require()
    name = (kern.root / ".complete").read_text().strip()
    package, version = deb_fields(name)
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    path = debs / name
    if path.is_file():
        return path
    log(f"debroot: apt-get download {package}={version}")
    with tempfile.TemporaryDirectory(dir=debs, prefix=".get-") as tmp:
        for attempt in (1, 2):
            done = subprocess.run(
                ["apt-get", "download", f"{package}={version}"], cwd=tmp, capture_output=True, text=True,
                timeout=600, check=False,
            )  # fmt: skip
            got = sorted(Path(tmp).glob(f"{package}_*.deb"))
            if done.returncode == 0 and got:
                os.replace(got[0], path)
                return path
            if attempt == 1:
                subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600, check=False)
    raise HarnessError(f"apt-get download {package}={version}: {done.stderr.strip()}")


def _base_key(variant: Variant, extra: Sequence[str], mirror: Path) -> str:
    argv = mmdebstrap_argv(variant, Path("TARGET"), Path("MIRROR"), Path("ARCHIVES"), extra)
    return cache_key([("argv", "\0".join(argv).encode()), ("suite", SUITE.encode()), ("sources", mirror.read_bytes())])


def _key_parts(variant: Variant, base: Path, kdeb: Path, our_digest: str, dracut_conf: str) -> list[tuple[str, bytes]]:
    return [
        ("builder", Path(__file__).read_bytes()),
        ("base", base.name.encode()),
        ("variant", variant.name.encode()),
        ("files", repr(variant.files).encode()),
        ("kernel-deb", kdeb.name.encode() + hashlib.sha256(kdeb.read_bytes()).digest()),
        ("our-deb", our_digest.encode()),
        ("dracut-conf", dracut_conf.encode()),
    ]


def _find(cache: Path, variant: str, key: str) -> DebRoot | None:
    directory = cache / f"{variant}-{key}"
    if not (directory / ".complete").is_file():
        return None
    info = json.loads((directory / "info.json").read_text())
    return DebRoot(variant, directory, info["kver"], info["uuid"], info)


def _stable_copy(deb: Path, cache: Path, digest: str) -> Path:
    """Our .deb copied aside under its content digest: `make deb` may rewrite build/ while a root is built."""
    home = cache / "debs" / f"ours-{digest[:16]}"
    home.mkdir(parents=True, exist_ok=True)
    copy = home / deb.name
    if not copy.is_file():
        shutil.copyfile(deb, home / f".{deb.name}.part")
        os.replace(home / f".{deb.name}.part", copy)
    return copy


def build(name: str, our_deb: Path, cache: Path | None = None, log: Callable[[str], None] = print) -> DebRoot:
    """The root of variant `name` with `our_deb` installed, built once per content (see the module docstring)."""
    if name not in VARIANTS:
        raise HarnessError(f"variant: expected one of {sorted(VARIANTS)}, got {name!r}")
    variant = VARIANTS[name]
    cache = cache or CACHE / "debroot"
    cache.mkdir(parents=True, exist_ok=True)
    mirror = sources_file()
    conf = readme_dracut_conf(README.read_text())
    kdeb = kernel_deb(cache, log)
    digest = deb_digest(our_deb)
    ours = _stable_copy(our_deb, cache, digest)
    depends = deb_depends(_deb_field(ours, "Depends"))
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second caller then finds the result
        base, base_seconds = _base(variant, depends, mirror, cache, log)
        key = cache_key(_key_parts(variant, base, kdeb, digest, conf))
        found = _find(cache, name, key)
        if found is not None:
            return found
        log(f"debroot: building the {name} root ({key}) on {base.name}; a few minutes")
        result = _build_locked(variant, key, base, base_seconds, ours, kdeb, conf, cache)
        _prune(cache, f"{name}-*", keep=KEEP)
        return result


def _deb_field(deb: Path, field: str) -> str:
    done = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise HarnessError(f"dpkg-deb -f {deb} {field}: {done.stderr.strip()}")
    return done.stdout.strip()


def _base(
    variant: Variant, extra: Sequence[str], mirror: Path, cache: Path, log: Callable[[str], None]
) -> tuple[Path, float]:
    """The variant's mmdebstrap tarball (cached by its package list and the sources), and how long it took now."""
    base = cache / f"base-{variant.name}-{_base_key(variant, extra, mirror)}.tar"
    if base.is_file():
        return base, 0.0
    log(f"debroot: mmdebstrap {SUITE} ({variant.name}) from {mirror}")
    archives = cache / "archives"
    archives.mkdir(exist_ok=True)
    part = cache / f".{base.name}.part.tar"
    started = time.monotonic()
    try:
        _run(mmdebstrap_argv(variant, part, mirror, archives, extra), cache / f"base-{variant.name}.log",
             MMDEBSTRAP_BOUND)  # fmt: skip
        os.replace(part, base)
    finally:
        part.unlink(missing_ok=True)
    _prune(cache, f"base-{variant.name}-*.tar", keep=1)
    return base, time.monotonic() - started


def _build_locked(
    variant: Variant, key: str, base: Path, base_seconds: float, ours: Path, kdeb: Path, conf: str, cache: Path
) -> DebRoot:
    final = cache / f"{variant.name}-{key}"
    # under the build lock: a stage of this variant whose builder is gone was left by a killed build
    stage = make_private_dir(cache, f".stage-{variant.name}", mode=0o700, remove=_remove_tree)
    log = stage / "build.log"
    times: dict[str, float] = {"mmdebstrap": base_seconds}
    fs_uuid = root_uuid(key)
    try:
        tree = stage / "root"
        tree.mkdir()
        started = time.monotonic()
        _run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", str(base), "-C", str(tree)], log,
             TOOL_BOUND)  # fmt: skip
        times["unpack"] = time.monotonic() - started
        for relative, (text, mode) in root_files(variant, fs_uuid, conf).items():
            path = tree / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(mode)
        step = time.monotonic()
        kver = _kernel_step(tree, variant, ours, kdeb, log)
        times["packages+dracut"] = time.monotonic() - step
        listing = _check_initrd(tree, kver, log, stage)
        step = time.monotonic()
        size_mb = image_mb(_tree_bytes(tree))
        part = stage / "root.ext4"
        mke2fs = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", LABEL, "-U", fs_uuid, "-d", str(tree), str(part)]
        _run([*mke2fs, f"{size_mb}M"], log, TOOL_BOUND)
        times["mke2fs"] = time.monotonic() - step
        _remove_tree(tree)
        for inside, outside in ((f"/boot/vmlinuz-{kver}", "vmlinuz"), (f"/boot/initrd.img-{kver}", "initrd.img")):
            _run(["debugfs", "-R", f"dump {inside} {stage / outside}", str(part)], log, TOOL_BOUND)
            if not (stage / outside).is_file() or (stage / outside).stat().st_size == 0:
                raise HarnessError(f"{inside}: not in the finished image (log {log})")
        times["total"] = base_seconds + time.monotonic() - started
        info = {
            "variant": variant.name,
            "key": key,
            "base": base.name,
            "kver": kver,
            "uuid": fs_uuid,
            "image_mb": size_mb,
            "initrd_bytes": (stage / "initrd.img").stat().st_size,
            "seconds": {k: round(v, 1) for k, v in times.items()},
            "kernel_deb": kdeb.name,
            "our_deb": ours.name,
            "initrd_modules": listing,
        }
        (stage / "info.json").write_text(json.dumps(info, indent=2) + "\n")
        if final.exists():
            _remove_tree(final)
        (stage / ".complete").write_text(key + "\n")
        stage.rename(final)
    finally:
        if stage.exists():
            with contextlib.suppress(HarnessError):
                if log.exists():
                    shutil.copyfile(log, cache / f"failed-{variant.name}.log")
                _remove_tree(stage)
    found = _find(cache, variant.name, key)
    assert found is not None
    return found


def _kernel_step(tree: Path, variant: Variant, ours: Path, kdeb: Path, log: Path) -> str:
    """In a chroot of the root: machine-id, enable units, `dpkg -i` our package (its dependencies are in the base),
    THEN the kernel package, whose postinst runs /etc/kernel/postinst.d/dracut. Returns the kernel release."""
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "DEBIAN_FRONTEND": "noninteractive",
        "LANG": "C.UTF-8",
        "HOME": "/root",
    }
    inside = Path("/tmp") / kdeb.name
    ours_inside = Path("/tmp") / ours.name
    shutil.copyfile(kdeb, tree / inside.relative_to("/"))
    shutil.copyfile(ours, tree / ours_inside.relative_to("/"))
    with chroot_mounts(tree):
        (tree / "etc/machine-id").unlink(missing_ok=True)
        _run(["chroot", str(tree), "systemd-machine-id-setup"], log, TOOL_BOUND, env)
        _run(["chroot", str(tree), "systemctl", "enable", TEST_UNIT, *variant.enable], log, TOOL_BOUND, env)
        _run(["chroot", str(tree), "dpkg", "-i", str(ours_inside)], log, CHROOT_BOUND, env)
        out = _run(["chroot", str(tree), "dpkg", "-i", str(inside)], log, CHROOT_BOUND, env)
    (tree / inside.relative_to("/")).unlink()
    (tree / ours_inside.relative_to("/")).unlink()
    releases = sorted(p.name for p in (tree / "lib/modules").iterdir() if p.is_dir())
    if len(releases) != 1:
        raise HarnessError(f"expected one kernel in the root, found {releases}")
    kver = releases[0]
    if f"initrd.img-{kver}" not in out:
        raise HarnessError(f"dpkg -i {kdeb.name}: the kernel hooks did not generate an initrd (log {log})")
    complaints = pyiscsi_complaints(out)
    if complaints:
        raise HarnessError(f"dracut (run by the kernel's postinst) on 95pyiscsi: {' | '.join(complaints)}")
    return kver


def pyiscsi_complaints(dracut_output: str) -> list[str]:
    """What dracut or boot.freeze said went wrong with our module (dracut itself carries on with a broken one)."""
    return [
        line.strip()
        for line in dracut_output.splitlines()
        if re.search(r"pyiscsi|boot\.freeze", line) and re.search(r"could not|cannot|fail|error|Error", line)
    ]


def _check_initrd(tree: Path, kver: str, log: Path, stage: Path) -> list[str]:
    """The root's own lsinitrd on /boot/initrd.img-<kver>: 95pyiscsi must be in, and its runtime with it."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    with chroot_mounts(tree):
        out = _run(["chroot", str(tree), "lsinitrd", f"/boot/initrd.img-{kver}"], log, TOOL_BOUND, env)
    (stage / "lsinitrd.txt").write_text(out)
    check_lsinitrd(out)
    return initrd_modules(out)


def initrd_modules(listing: str) -> list[str]:
    """The dracut modules an `lsinitrd` listing names, in its order."""
    modules: list[str] = []
    in_modules = False
    for line in listing.splitlines():
        if line.strip() == "dracut modules:":
            in_modules = True
        elif in_modules:
            if not line.strip() or line.startswith("=") or " " in line.strip():
                break
            modules.append(line.strip())
    return modules


def check_lsinitrd(listing: str) -> int:
    """How many files under usr/lib/pyiscsi the listing shows; an error unless dracut's module list names pyiscsi
    and the image holds its runtime (a failed freeze leaves the module listed without it)."""
    modules = initrd_modules(listing)
    if "pyiscsi" not in modules:
        raise HarnessError(f"initrd: dracut's module list has no pyiscsi ({len(modules)} modules)")
    paths = {line.split()[-1] for line in listing.splitlines() if line[:1] in "-dl" and len(line.split()) >= 9}
    paths |= {line.split()[-3] for line in listing.splitlines() if line[:1] == "l" and len(line.split()) >= 11}
    missing = [p for p in INITRD_MUST_HAVE if p not in paths]
    if not any(re.fullmatch(r"usr/lib/pyiscsi/lib/python3\.\d+/boot/cli\.pyc", p) for p in paths):
        missing.append("usr/lib/pyiscsi/lib/python3.*/boot/cli.pyc")
    if missing:
        raise HarnessError(f"initrd: 95pyiscsi is listed but its runtime is not in the image: no {missing}")
    return sum(1 for p in paths if p.startswith("usr/lib/pyiscsi/"))


def _tree_bytes(tree: Path) -> int:
    done = subprocess.run(["du", "-sb", str(tree)], capture_output=True, text=True, timeout=TOOL_BOUND, check=True)
    return int(done.stdout.split()[0])


def _prune(cache: Path, pattern: str, keep: int) -> None:
    done = sorted(
        (p for p in cache.glob(pattern) if p.is_file() or (p / ".complete").is_file()),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    for old in done[keep:]:
        with contextlib.suppress(HarnessError, OSError):
            if old.is_file():
                old.unlink()
            else:
                _remove_tree(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.debroot", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build"])
    parser.add_argument("variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--deb", type=Path, help="our package (default: what `make deb` gives)")
    args = parser.parse_args(argv)
    try:
        deb = args.deb or make_deb()
        for name in args.variants:
            started = time.monotonic()
            root = build(name, deb)
            took = time.monotonic() - started
            print(f"{name}: {root.image} kver={root.kver} uuid={root.uuid} {json.dumps(root.info['seconds'])} "
                  f"(this call {took:.0f}s)")  # fmt: skip
    except HarnessError as exc:
        print(f"harness.debroot: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
