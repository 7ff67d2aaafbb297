#!/bin/sh
# shellcheck disable=SC2034 # these names are for the scripts that source this file
# Shared by 95pyiscsi's hooks (sourced). /run/pyiscsi is the state directory `pyiscsi boot` writes.

PYISCSI_STATE=/run/pyiscsi
PYISCSI_WANTED=$PYISCSI_STATE/wanted # this boot's root is ours (written by the cmdline hook)
PYISCSI_BOOTED=$PYISCSI_STATE/booted # the root disk is there (written by `pyiscsi boot`)
PYISCSI_FAILED=$PYISCSI_STATE/failed # exit status of a failed `pyiscsi boot` (written by /sbin/pyiscsi-boot)

pyiscsi_wanted() {
    [ -e "$PYISCSI_WANTED" ]
}

# is there a /sysroot line for /dev/root in /etc/fstab? (plain sh: a systemd initramfs carries no grep)
pyiscsi_fstab_has_root() {
    [ -r /etc/fstab ] || return 1
    while read -r _pyiscsi_dev _pyiscsi_dir _pyiscsi_rest; do
        if [ "$_pyiscsi_dev" = /dev/root ] && [ "$_pyiscsi_dir" = /sysroot ]; then
            unset _pyiscsi_dev _pyiscsi_dir _pyiscsi_rest
            return 0
        fi
    done < /etc/fstab
    unset _pyiscsi_dev _pyiscsi_dir _pyiscsi_rest
    return 1
}
