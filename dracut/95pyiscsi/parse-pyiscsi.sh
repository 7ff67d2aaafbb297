#!/bin/sh
# shellcheck disable=SC1091,SC2154,SC2034 # dracut's files and globals (hookdir, rootok) exist in the image
# 95pyiscsi cmdline hook, sourced by dracut: it must `return`, never `exit`.
#
# pyiscsi owns the root when the command line asks for an iSCSI root in any of dracut's forms:
#   root=iscsi:[<server>]:[<protocol>]:[<port>]:[<LUN>]:<targetname>
#   netroot=iscsi:...            rd.iscsi.firmware[=1] | iscsi_firmware      rd.iscsi.ibft[=1]
#   root=dhcp | netroot=dhcp     (the root path from DHCP option 17; see below)
# and rd.pyiscsi=0 is not given. The plan itself (what to log in to, how) is `pyiscsi explain`'s business;
# this hook only decides whether to run `pyiscsi boot` and tells dracut the root will come. What it logs and
# writes to /run/pyiscsi/wanted names the option (`netroot=iscsi:`), never its value: a value may hold CHAP
# secrets.

type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/pyiscsi-lib.sh

getargbool 1 rd.pyiscsi || return 0

_pyiscsi_why=
[ -z "$root" ] && root=$(getarg root=)
case "$root" in
    iscsi:*) _pyiscsi_why="root=iscsi:" ;;
esac
for _pyiscsi_arg in $(getargs netroot=); do
    case "$_pyiscsi_arg" in
        iscsi:*) [ -n "$_pyiscsi_why" ] || _pyiscsi_why="netroot=iscsi:" ;;
    esac
done
# root=dhcp / netroot=dhcp: whether the root is iSCSI shows only in the lease (option 17). dracut's 40network
# decides after DHCP and dispatches the root path to /sbin/<proto>root; this image runs its own DHCP only when
# there is no such dispatcher (/sbin/netroot absent: no dracut network module), or when rd.pyiscsi=1 says so.
# `pyiscsi boot` then fails with one line if the root path is not an iscsi: one (see README.md).
if [ -z "$_pyiscsi_why" ] && { [ "$root" = dhcp ] || getarg netroot=dhcp > /dev/null; }; then
    if [ ! -e /sbin/netroot ] || [ "$(getarg rd.pyiscsi=)" = 1 ]; then
        _pyiscsi_why="netroot=dhcp"
    else
        info "pyiscsi: netroot=dhcp left to dracut's network module (/sbin/netroot); rd.pyiscsi=1 claims it"
    fi
fi
# the kernel modules, loaded by one modprobe: each process costs, and dracut-cmdline.service comes before udevd.
# sd_mod too: left to udev, it loads when the LUN is found, while udev may still be working through its coldplug
_pyiscsi_modules="iscsi_tcp sd_mod"
if getargbool 0 rd.iscsi.firmware -y iscsi_firmware || getargbool 0 rd.iscsi.ibft; then
    [ -n "$_pyiscsi_why" ] || _pyiscsi_why="iBFT"
    _pyiscsi_modules="iscsi_boot_sysfs iscsi_ibft $_pyiscsi_modules"
fi
unset _pyiscsi_arg
if [ -z "$_pyiscsi_why" ]; then
    unset _pyiscsi_why _pyiscsi_modules
    return 0
fi

if [ -x /sbin/iscsiroot ]; then
    warn "pyiscsi: dracut's iscsi module is in this image too; pyiscsi logs in to the root ($_pyiscsi_why)."
    warn "pyiscsi: boot with rd.pyiscsi=0 to leave the root to iscsiroot, or rebuild without one of them."
fi

# shellcheck disable=SC2086 # a list of module names
modprobe -a -b -q $_pyiscsi_modules 2> /dev/null || warn "pyiscsi: modprobe could not load all of: $_pyiscsi_modules"
unset _pyiscsi_modules
# the network adapters' drivers, before udev's coldplug (pyiscsi_nic_aliases); an adapter without a driver in this
# image is left to udev as before, so no warning here
_pyiscsi_aliases=$(pyiscsi_nic_aliases)
# shellcheck disable=SC2086 # a list of module aliases, one word each
[ -z "$_pyiscsi_aliases" ] || modprobe -a -b -q $_pyiscsi_aliases 2> /dev/null || :
unset _pyiscsi_aliases
mkdir -p "$PYISCSI_STATE"
echo "$_pyiscsi_why" > "$PYISCSI_WANTED"
info "pyiscsi: the root is on iSCSI ($_pyiscsi_why)"

# root=iscsi:... names no device: `pyiscsi boot` gives the LUN the udev name /dev/pyiscsiroot (boot.rootdev;
# not dracut's usual /dev/root, which util-linux's mount resolves through the kernel's root= and fails on)
case "$root" in
    iscsi:* | dhcp | "")
        root=$PYISCSI_ROOT_DEV
        rootok=1
        if [ -n "$DRACUT_SYSTEMD" ] && [ ! -e "$PYISCSI_SYSROOT_UNIT" ]; then
            # the generators ran before this hook and systemd's own skips a root on iSCSI: write sysroot.mount
            # (as dracut's rootfs generator would, but under /run/systemd/system, which a reload keeps), reload,
            # and queue initrd-root-fs.target again so that the new mount is started at all
            mkdir -p /run/systemd/system/initrd-root-fs.target.requires /run/systemd/system/dev-pyiscsiroot.device.d
            pyiscsi_sysroot_unit > "$PYISCSI_SYSROOT_UNIT"
            ln -sf ../sysroot.mount /run/systemd/system/initrd-root-fs.target.requires/sysroot.mount
            # the disk comes when `pyiscsi boot` has it, under its own bounds: the device job waits as long as
            # dracut's would (rd.timeout, 0 = no limit of its own), not systemd's default 90 s
            printf '[Unit]\nJobTimeoutSec=%s\nJobRunningTimeoutSec=%s\n' "$(pyiscsi_rd_timeout)" "$(pyiscsi_rd_timeout)" \
                > /run/systemd/system/dev-pyiscsiroot.device.d/pyiscsi-timeout.conf
            systemctl daemon-reload
            systemctl --no-block start initrd-root-fs.target
        fi
        ;;
esac

echo "[ -e '$PYISCSI_BOOTED' ]" > "$hookdir/initqueue/finished/pyiscsi.sh"
if [ -z "$DRACUT_SYSTEMD" ]; then
    # with systemd, pyiscsi-boot.service runs it (ConditionPathExists=/run/pyiscsi/wanted)
    initqueue --onetime --settled --unique --name pyiscsi-boot /sbin/pyiscsi-boot
fi
unset _pyiscsi_why
return 0
