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

PYISCSI_ROOT_DEV=/dev/pyiscsiroot # the root LUN's udev name for root=iscsi: (boot.commands.boot ROOT_LINK)
PYISCSI_SYSROOT_UNIT=/run/systemd/system/sysroot.mount # root=iscsi: in a systemd initramfs (cmdline hook)

# sysroot.mount for /dev/pyiscsiroot (the name `pyiscsi boot` gives the LUN), from rootfstype=, rootflags=, rw/ro
pyiscsi_sysroot_unit() {
    _pyiscsi_rw=ro
    for _pyiscsi_arg in $(getcmdline); do
        case "$_pyiscsi_arg" in
            rw | ro) _pyiscsi_rw=$_pyiscsi_arg ;;
        esac
    done
    _pyiscsi_flags=$(getarg rootflags=)
    _pyiscsi_type=$(getarg rootfstype=)
    printf '# written by 95pyiscsi (root=iscsi:...)\n[Unit]\nBefore=initrd-root-fs.target\n'
    printf '[Mount]\nWhat=%s\nWhere=/sysroot\nOptions=%s\n' "$PYISCSI_ROOT_DEV" "$_pyiscsi_rw${_pyiscsi_flags:+,$_pyiscsi_flags}"
    [ -z "$_pyiscsi_type" ] || printf 'Type=%s\n' "$_pyiscsi_type"
    unset _pyiscsi_rw _pyiscsi_arg _pyiscsi_flags _pyiscsi_type
}

pyiscsi_rd_timeout() {
    _pyiscsi_t=$(getarg rd.timeout=)
    echo "${_pyiscsi_t:-0}"
    unset _pyiscsi_t
}
