#!/bin/sh
# shellcheck disable=SC1091,SC2154,SC2034 # dracut's files and globals (hookdir, rootok) exist in the image
# 95pyiscsi cmdline hook, sourced by dracut: it must `return`, never `exit`.
#
# pyiscsi owns the root when the command line asks for an iSCSI root in any of dracut's forms:
#   root=iscsi:[<server>]:[<protocol>]:[<port>]:[<LUN>]:<targetname>
#   netroot=iscsi:...            rd.iscsi.firmware[=1] | iscsi_firmware      rd.iscsi.ibft[=1]
#   root=dhcp | netroot=dhcp     (the root path from DHCP option 17; see pyiscsi_decide)
# and rd.pyiscsi=0 is not given. The plan itself (what to log in to, how) is `pyiscsi explain`'s business;
# this hook only decides whether to run `pyiscsi boot` and tells dracut the root will come. What it logs and
# writes to /run/pyiscsi/wanted names the option (`netroot=iscsi:`), never its value: a value may hold CHAP
# secrets.
#
# In an image with systemd this file is not one of dracut's cmdline hooks: pyiscsi-generator decides before any
# unit starts, so dracut-cmdline.service is skipped as in an image without pyiscsi, and links this file in only
# for a root= that dracut-cmdline.service would refuse, should it run (root=iscsi:, root=dhcp).

type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/pyiscsi-lib.sh

if [ -n "$DRACUT_SYSTEMD" ]; then
    # the generator wrote everything else (wanted, the modules, sysroot.mount): only dracut's root= check is left
    if pyiscsi_wanted && pyiscsi_names_root; then
        root=$PYISCSI_ROOT_DEV
        rootok=1
    fi
    return 0
fi

pyiscsi_scan
pyiscsi_decide || return 0

# the kernel modules, loaded by one modprobe (each process costs)
# shellcheck disable=SC2086 # a list of module names
modprobe -a -b -q $_pyiscsi_modules 2> /dev/null || warn "pyiscsi: modprobe could not load all of: $_pyiscsi_modules"
unset _pyiscsi_modules
# the network adapters' drivers, before udev's coldplug (pyiscsi_nic_aliases); an adapter without a driver in this
# image is left to udev as before, so no warning here
pyiscsi_nic_aliases
# shellcheck disable=SC2086 # a list of module aliases, one word each
[ -z "$_pyiscsi_aliases" ] || modprobe -a -b -q $_pyiscsi_aliases 2> /dev/null || :
unset _pyiscsi_aliases
mkdir -p "$PYISCSI_STATE"
echo "$_pyiscsi_why" > "$PYISCSI_WANTED"
info "pyiscsi: the root is on iSCSI ($_pyiscsi_why)"

# root=iscsi:... names no device: `pyiscsi boot` gives the LUN the udev name /dev/pyiscsiroot (boot.rootdev;
# not dracut's usual /dev/root, which util-linux's mount resolves through the kernel's root= and fails on)
if pyiscsi_names_root; then
    root=$PYISCSI_ROOT_DEV
    rootok=1
fi

echo "[ -e '$PYISCSI_BOOTED' ]" > "$hookdir/initqueue/finished/pyiscsi.sh"
initqueue --onetime --settled --unique --name pyiscsi-boot /sbin/pyiscsi-boot
unset _pyiscsi_why
return 0
