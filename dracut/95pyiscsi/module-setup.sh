#!/bin/bash
# shellcheck disable=SC2154 # dracut's globals: initdir, moddir, srcmods, kernel, no_kernel, systemd*dir
# 95pyiscsi: iSCSI root through pyiscsi, a Python initiator frozen into the image (boot.freeze).
#
# Opt-in: add_dracutmodules+=" pyiscsi " (or --add pyiscsi). Needs no dracut network module: `pyiscsi boot`
# brings up the network the plan names itself. Settings a dracut.conf.d file may give:
#   pyiscsi_python=PATH          the python3 that can import boot.freeze (default: python3 on PATH, else
#                                /usr/bin/python3 with an installed pyiscsi's private directory on its path)
#   pyiscsi_pythonpath=DIR       that private directory (default: where `make install` or the package put it)
#   pyiscsi_frozen_tree=DIR      install a tree made earlier with `python3 -m boot.freeze --out DIR --no-libs`
#   pyiscsi_freeze_args="..."    more arguments for boot.freeze (--extra, --exclude, --skip-missing ...)
#   pyiscsi_boot_timeout=SECS    TimeoutStartSec of pyiscsi-boot.service (default 300)
#   pyiscsi_net_drivers="..."    only these NIC drivers (default: every wired one, or the host's with hostonly)

PYISCSI_PREFIX=/usr/lib/pyiscsi
# boot/ and initiator/ of an installed pyiscsi (the Debian package, `make install`), off python3's own path
PYISCSI_PYTHONPATH_DEFAULT=/usr/lib/pyiscsi/python

_pyiscsi_python() {
    echo "${pyiscsi_python:-python3}"
}

# Sets _pyiscsi_py, the python3 that freezes pyiscsi, and _pyiscsi_path, its PYTHONPATH: the python3 as it is
# when it imports boot.freeze by itself (a venv, the checkout's test images); else an installed pyiscsi's private
# directory on the path of pyiscsi_python= or of /usr/bin/python3 (whose pyroute2 and pyudev the package needs).
_pyiscsi_find_python() {
    _pyiscsi_py=$(_pyiscsi_python)
    _pyiscsi_path=
    _pyiscsi_run_python -c 'import boot.freeze' 2> /dev/null && return 0
    [[ -d ${pyiscsi_pythonpath:-$PYISCSI_PYTHONPATH_DEFAULT}/boot ]] || return 1
    _pyiscsi_py=${pyiscsi_python:-/usr/bin/python3}
    _pyiscsi_path=${pyiscsi_pythonpath:-$PYISCSI_PYTHONPATH_DEFAULT}
    _pyiscsi_run_python -c 'import boot.freeze' 2> /dev/null
}

# -P: never boot/ from the working directory (dracut runs where it was started, perhaps in a pyiscsi checkout)
_pyiscsi_run_python() {
    if [[ -n $_pyiscsi_path ]]; then
        PYTHONPATH=$_pyiscsi_path "$_pyiscsi_py" -P "$@"
    else
        "$_pyiscsi_py" -P "$@"
    fi
}

# called by dracut
check() {
    if [[ -n $pyiscsi_frozen_tree ]]; then
        [[ -x $pyiscsi_frozen_tree$PYISCSI_PREFIX/bin/python3 ]] || {
            derror "pyiscsi: pyiscsi_frozen_tree=$pyiscsi_frozen_tree holds no $PYISCSI_PREFIX/bin/python3"
            return 1
        }
    else
        require_binaries "$(_pyiscsi_python)" || return 1
        _pyiscsi_find_python || {
            derror "pyiscsi: $(_pyiscsi_python) cannot import boot.freeze (install pyiscsi or set pyiscsi_python=)"
            return 1
        }
    fi
    # dracut's require_kernel_modules asks modprobe about /lib/modules only; look where --kmoddir points too
    if [[ $no_kernel != yes ]] && ! grep -qs '/iscsi_tcp\.ko' "${srcmods%/}/modules.dep"; then
        dinfo "pyiscsi: not installed: kernel $kernel has no iscsi_tcp module in ${srcmods%/}"
        return 1
    fi
    # only when asked for: never picked up by hostonly detection, never pulled in by a root on iSCSI
    return 255
}

# called by dracut
depends() {
    # nothing network-related: neither `network` nor `iscsi` (see README.md)
    echo rootfs-block
    return 0
}

# called by dracut
installkernel() {
    # the iSCSI initiator, the iBFT and the digest, the disk driver and the checksum its t10-pi asks for (nothing
    # else brings that one), VLAN, bond= and bridge=; always, whatever hostonly says
    hostonly='' instmods iscsi_tcp iscsi_ibft iscsi_boot_sysfs crc32c libcrc32c crypto-crc64-rocksoft sd_mod \
        af_packet 8021q bonding bridge
    # pyiscsi_net_drivers="virtio_net e1000 ...": exactly these NIC drivers (a small image for known hardware)
    if [[ -n $pyiscsi_net_drivers ]]; then
        # shellcheck disable=SC2086 # a list of module names
        hostonly='' instmods $pyiscsi_net_drivers
        return 0
    fi
    # wired NIC drivers, as dracut's kernel-network-modules picks them (hostonly: the host's own)
    local _net_symbols='eth_type_trans|register_virtio_device|usbnet_open'
    local _unwanted='/(wireless|isdn|uwb|net/ethernet|net/phy|net/team)/'
    dracut_instmods -o -P ".*${_unwanted}.*" -s "$_net_symbols" "=drivers/net"
    instmods '=drivers/net/ethernet' '=drivers/net/phy' '=drivers/net/mdio' virtio_net
    return 0
}

_pyiscsi_install_runtime() {
    if [[ -n $pyiscsi_frozen_tree ]]; then
        mkdir -p "$initdir${PYISCSI_PREFIX%/*}"
        cp -a "$pyiscsi_frozen_tree$PYISCSI_PREFIX" "$initdir${PYISCSI_PREFIX%/*}/" || return 1
        inst_simple "$pyiscsi_frozen_tree/usr/sbin/pyiscsi" /usr/sbin/pyiscsi || return 1
    else
        _pyiscsi_find_python || return 1
        # shellcheck disable=SC2086
        _pyiscsi_run_python -m boot.freeze --out "$initdir" --prefix "$PYISCSI_PREFIX" --no-libs \
            $pyiscsi_freeze_args || return 1
    fi
    # shared libraries of the interpreter and its extension modules: dracut resolves every executable file
    # in the image at the end (DRACUT_RESOLVE_LAZY); libudev is dlopen()ed by pyudev, and the tree's ctypes.util
    # finds it by its soname in the loader's directories (no ldconfig)
    inst_libdir_file 'libudev.so*'
    return 0
}

# called by dracut
install() {
    if dracut_module_included "iscsi"; then
        dwarning "pyiscsi: dracut's iscsi module is in this image too: both would log in to the root target."
        dwarning "pyiscsi: pyiscsi owns root=iscsi:/netroot=iscsi:; boot with rd.pyiscsi=0 to leave them to iscsi."
    fi
    _pyiscsi_install_runtime || {
        derror "pyiscsi: could not install the frozen runtime"
        return 1
    }
    # the real root's interface names (dracut's network modules bring these; the README leaves those modules out):
    # a NIC brought up under its kernel name cannot be renamed by the real root's udev, and systemd-networkd then
    # waits for that link for ever ("pending"), so systemd-networkd-wait-online fails
    inst_multiple -o "${systemdnetwork}/99-default.link"
    [[ $hostonly ]] && inst_multiple -H -o "${systemdnetworkconfdir}/*.link"
    inst_simple "$moddir/pyiscsi-lib.sh" /lib/pyiscsi-lib.sh
    # The shell of our units, our generator and `pyiscsi boot`'s wrapper: dash where the host has it. Each of them
    # starts on the boot's critical path, and under emulation bash took 0.27 s to run its first command where dash
    # takes 0.1 s; without dash, the image's own /bin/sh.
    # The generator names the shell's own path (dracut resolves every script's interpreter on the host, where
    # /lib/pyiscsi-sh does not exist); the units name /lib/pyiscsi-sh.
    local _pyiscsi_sh
    if ! _pyiscsi_sh=$(find_binary dash) || ! inst_binary "$_pyiscsi_sh"; then
        _pyiscsi_sh=/bin/sh
    fi
    ln -sfn "$_pyiscsi_sh" "${initdir}/lib/pyiscsi-sh"
    if dracut_module_included "systemd"; then
        # no cmdline hook: the generator decides before any unit starts, so that dracut-cmdline.service is skipped
        # as in an image without pyiscsi (it held back udevd and pyiscsi-boot.service); it links the hook in only
        # for a root= that dracut-cmdline.service would refuse, should it run for another module's hook
        inst_script "$moddir/pyiscsi-generator.sh" "$systemdutildir/system-generators/pyiscsi-generator"
        sed -i "1s|^#!/bin/sh\$|#!$_pyiscsi_sh|" "${initdir}${systemdutildir}/system-generators/pyiscsi-generator"
        inst_simple "$moddir/parse-pyiscsi.sh" /lib/pyiscsi-cmdline.sh
        local _unit
        for _unit in pyiscsi-modules.service pyiscsi-boot.service pyiscsi-handover.service; do
            inst_simple "$moddir/$_unit" "$systemdsystemunitdir/$_unit"
        done
        if [[ -n $pyiscsi_boot_timeout ]]; then
            sed -i "s/^TimeoutStartSec=.*/TimeoutStartSec=$pyiscsi_boot_timeout/" \
                "$initdir$systemdsystemunitdir/pyiscsi-boot.service"
        fi
        $SYSTEMCTL -q --root "$initdir" enable pyiscsi-modules.service pyiscsi-boot.service pyiscsi-handover.service
        # no dracut_need_initqueue: the unit runs before dracut-initqueue.service and bounds its own waits, so
        # the initqueue would only run its shell loop once to find the finished predicate true, while the root's
        # fsck and mount wait for it (dracut-pre-mount.service is ordered after it). Without systemd the initqueue
        # always runs: it is where the job below waits for the disk.
    else
        inst_hook cmdline 90 "$moddir/parse-pyiscsi.sh"
        inst_script "$moddir/pyiscsi-boot.sh" /sbin/pyiscsi-boot
        inst_hook pre-pivot 50 "$moddir/handover-pyiscsi.sh"
    fi
    inst_hook initqueue/timeout 80 "$moddir/timeout-pyiscsi.sh"
}
