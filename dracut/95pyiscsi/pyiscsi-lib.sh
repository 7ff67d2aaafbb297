#!/bin/sh
# shellcheck disable=SC2034 # these names are for the scripts that source this file
# Shared by 95pyiscsi's hooks (sourced). /run/pyiscsi is the state directory `pyiscsi boot` writes.

PYISCSI_STATE=/run/pyiscsi
PYISCSI_WANTED=$PYISCSI_STATE/wanted # this boot's root is ours (written by the cmdline hook or the generator)
PYISCSI_BOOTED=$PYISCSI_STATE/booted # the root disk is there (written by `pyiscsi boot`)
PYISCSI_FAILED=$PYISCSI_STATE/failed # exit status of a failed `pyiscsi boot` (written by /sbin/pyiscsi-boot)
PYISCSI_MODULES_ENV=$PYISCSI_STATE/modules # what pyiscsi-modules.service loads (written by the generator)

pyiscsi_wanted() {
    [ -e "$PYISCSI_WANTED" ]
}

# The command line as dracut reads it (/etc/cmdline.d/*.conf, /etc/cmdline, then /proc/cmdline; the last word of a
# name wins, as with getarg), in one pass that sets _pyiscsi_<name> for the names the hooks and the generator read:
# unset when the name is absent, empty when it comes without a value. dracut-lib.sh's getarg reads the command
# line again and starts its dracut-getarg program for each name: in the generator, which every unit waits for, that
# cost a second and a half on the emulated machines.
pyiscsi_scan() {
    unset _pyiscsi_pyiscsi _pyiscsi_root _pyiscsi_firmware _pyiscsi_ibft _pyiscsi_rootflags _pyiscsi_rootfstype
    unset _pyiscsi_timeout
    _pyiscsi_netroots=
    _pyiscsi_rw=ro
    _pyiscsi_words=
    for _pyiscsi_file in /etc/cmdline.d/*.conf /etc/cmdline /proc/cmdline; do
        [ -e "$_pyiscsi_file" ] || continue
        while read -r _pyiscsi_line || [ -n "$_pyiscsi_line" ]; do
            _pyiscsi_words="$_pyiscsi_words $_pyiscsi_line"
        done < "$_pyiscsi_file"
    done
    set -f # a word is never a file pattern
    for _pyiscsi_word in $_pyiscsi_words; do
        case "$_pyiscsi_word" in
            rd.pyiscsi=*) _pyiscsi_pyiscsi=${_pyiscsi_word#*=} ;;
            rd.pyiscsi) _pyiscsi_pyiscsi= ;;
            root=*) _pyiscsi_root=${_pyiscsi_word#*=} ;;
            netroot=*) _pyiscsi_netroots="$_pyiscsi_netroots ${_pyiscsi_word#*=}" ;;
            rd.iscsi.firmware=*) _pyiscsi_firmware=${_pyiscsi_word#*=} ;;
            rd.iscsi.firmware | iscsi_firmware) _pyiscsi_firmware= ;;
            rd.iscsi.ibft=*) _pyiscsi_ibft=${_pyiscsi_word#*=} ;;
            rd.iscsi.ibft) _pyiscsi_ibft= ;;
            rootflags=*) _pyiscsi_rootflags=${_pyiscsi_word#*=} ;;
            rootfstype=*) _pyiscsi_rootfstype=${_pyiscsi_word#*=} ;;
            rd.timeout=*) _pyiscsi_timeout=${_pyiscsi_word#*=} ;;
            rw | ro) _pyiscsi_rw=$_pyiscsi_word ;;
        esac
    done
    set +f
    unset _pyiscsi_file _pyiscsi_line _pyiscsi_word _pyiscsi_words
}

# getargbool's answer for a scanned name: $1 the default, then whether the name was there ("set") and its value
pyiscsi_bool() {
    [ "$2" = set ] || return "$((1 - $1))"
    case "$3" in
        0 | no | off) return 1 ;;
    esac
    return 0
}

# Whether this boot's root is ours (after pyiscsi_scan; $root as dracut set it, else root=): sets _pyiscsi_why, the
# option that says so (`netroot=iscsi:`, never its value: a value may hold CHAP secrets), and _pyiscsi_modules, the
# kernel modules the boot needs; returns 1, both unset, when the root is not ours. Shared by the cmdline hook
# (images without systemd) and the generator (images with it).
pyiscsi_decide() {
    _pyiscsi_why=
    _pyiscsi_modules=
    pyiscsi_bool 1 "${_pyiscsi_pyiscsi+set}" "$_pyiscsi_pyiscsi" || return 1
    [ -z "$root" ] && root=$_pyiscsi_root
    case "$root" in
        iscsi:*) _pyiscsi_why="root=iscsi:" ;;
    esac
    set -f
    for _pyiscsi_arg in $_pyiscsi_netroots; do
        case "$_pyiscsi_arg" in
            iscsi:*) [ -n "$_pyiscsi_why" ] || _pyiscsi_why="netroot=iscsi:" ;;
            dhcp) _pyiscsi_dhcp=1 ;;
        esac
    done
    set +f
    unset _pyiscsi_arg
    # root=dhcp / netroot=dhcp: whether the root is iSCSI shows only in the lease (option 17). dracut's 40network
    # decides after DHCP and dispatches the root path to /sbin/<proto>root; this image runs its own DHCP only when
    # there is no such dispatcher (/sbin/netroot absent: no dracut network module), or when rd.pyiscsi=1 says so.
    # `pyiscsi boot` then fails with one line if the root path is not an iscsi: one (see README.md).
    if [ -z "$_pyiscsi_why" ] && { [ "$root" = dhcp ] || [ -n "$_pyiscsi_dhcp" ]; }; then
        if [ ! -e /sbin/netroot ] || [ "$_pyiscsi_pyiscsi" = 1 ]; then
            _pyiscsi_why="netroot=dhcp"
        else
            info "pyiscsi: netroot=dhcp left to dracut's network module (/sbin/netroot); rd.pyiscsi=1 claims it"
        fi
    fi
    unset _pyiscsi_dhcp
    # sd_mod too: left to udev, it loads when the LUN is found, while udev may still be working through its coldplug.
    # crc32c too: iscsi_tcp asks the crypto API for it as each connection is created (for digests, used or not),
    # and a crc32c not loaded yet is a modprobe the kernel starts then, and waits for, on the login's path (0.4-0.6 s
    # of an emulated boot's kernel handover). crypto-crc64-rocksoft before sd_mod: sd_mod needs t10-pi, whose
    # crc64-rocksoft library asks the crypto API for that algorithm as it loads, and nothing names the module that
    # provides it (Linux 6.1's soft dependency names crc64, a library): the kernel started three modprobes for it,
    # -rocksoft, -rocksoft-all and cryptomgr, one after the other (0.3 s of an emulated boot's module step).
    _pyiscsi_modules="iscsi_tcp crc32c crypto-crc64-rocksoft sd_mod"
    if pyiscsi_bool 0 "${_pyiscsi_firmware+set}" "$_pyiscsi_firmware" \
        || pyiscsi_bool 0 "${_pyiscsi_ibft+set}" "$_pyiscsi_ibft"; then
        [ -n "$_pyiscsi_why" ] || _pyiscsi_why="iBFT"
        _pyiscsi_modules="iscsi_boot_sysfs iscsi_ibft $_pyiscsi_modules"
    fi
    if [ -z "$_pyiscsi_why" ]; then
        unset _pyiscsi_why _pyiscsi_modules
        return 1
    fi
    if [ -x /sbin/iscsiroot ]; then
        warn "pyiscsi: dracut's iscsi module is in this image too; pyiscsi logs in to the root ($_pyiscsi_why)."
        warn "pyiscsi: boot with rd.pyiscsi=0 to leave the root to iscsiroot, or rebuild without one of them."
    fi
    return 0
}

# Whether the root device is the one `pyiscsi boot` names /dev/pyiscsiroot: root= names none (root=iscsi:...,
# root=dhcp, or no root= at all beside an iBFT)
pyiscsi_names_root() {
    case "$root" in
        iscsi:* | dhcp | "") return 0 ;;
    esac
    return 1
}

PYISCSI_SYSFS=${PYISCSI_SYSFS:-/sys} # where the network adapters are looked up (tests give a tree of their own)
PYISCSI_VIRTIO_NET=virtio:d00000001v00001AF4 # the virtio-net device that a virtio PCI adapter (vendor 0x1af4) brings

# The module aliases of this machine's network adapters, in _pyiscsi_aliases (one word each; set, not printed:
# a command substitution would fork the shell, a tenth of a second each under emulation): every PCI function of
# class 02 (network), and for a virtio one the virtio-net device its driver will create. The cmdline hook loads
# their drivers before udev's coldplug, so that each link exists when the coldplug starts and udev names it among
# the first devices (systemd's trigger puts net first): otherwise the driver loads only during the coldplug and the
# link's own event waits behind every other device's, while `pyiscsi boot` waits for that link.
pyiscsi_nic_aliases() {
    _pyiscsi_aliases=
    _pyiscsi_virtio=
    for _pyiscsi_dev in "$PYISCSI_SYSFS"/bus/pci/devices/*; do
        read -r _pyiscsi_class 2> /dev/null < "$_pyiscsi_dev/class" || continue
        case "$_pyiscsi_class" in
            0x02????) ;;
            *) continue ;;
        esac
        read -r _pyiscsi_alias 2> /dev/null < "$_pyiscsi_dev/modalias" || continue
        case "$_pyiscsi_alias" in
            pci:*) _pyiscsi_aliases="$_pyiscsi_aliases $_pyiscsi_alias" ;;
            *) continue ;;
        esac
        read -r _pyiscsi_vendor 2> /dev/null < "$_pyiscsi_dev/vendor" || continue
        if [ "$_pyiscsi_vendor" = 0x1af4 ] && [ -z "$_pyiscsi_virtio" ]; then
            _pyiscsi_aliases="$_pyiscsi_aliases $PYISCSI_VIRTIO_NET"
            _pyiscsi_virtio=1
        fi
    done
    unset _pyiscsi_dev _pyiscsi_class _pyiscsi_alias _pyiscsi_vendor _pyiscsi_virtio
}

PYISCSI_ROOT_DEV=/dev/pyiscsiroot # the root LUN's udev name for root=iscsi: (boot.commands.boot ROOT_LINK)

# sysroot.mount for /dev/pyiscsiroot (the name `pyiscsi boot` gives the LUN), from rootfstype=, rootflags=, rw/ro
# (after pyiscsi_scan)
pyiscsi_sysroot_unit() {
    printf '# written by 95pyiscsi (root=iscsi:...)\n[Unit]\nBefore=initrd-root-fs.target\n'
    printf '[Mount]\nWhat=%s\nWhere=/sysroot\nOptions=%s\n' "$PYISCSI_ROOT_DEV" "$_pyiscsi_rw${_pyiscsi_rootflags:+,$_pyiscsi_rootflags}"
    [ -z "$_pyiscsi_rootfstype" ] || printf 'Type=%s\n' "$_pyiscsi_rootfstype"
}

# the drop-in for dev-pyiscsiroot.device (after pyiscsi_scan): the disk comes when `pyiscsi boot` has it, under its
# own bounds, so the device job waits as long as dracut's would (rd.timeout; 0 when not given: no limit of its
# own), not systemd's default 90 s
pyiscsi_device_timeout_unit() {
    printf '[Unit]\nJobTimeoutSec=%s\nJobRunningTimeoutSec=%s\n' "${_pyiscsi_timeout:-0}" "${_pyiscsi_timeout:-0}"
}

PYISCSI_HANDOVER_BOUND=${PYISCSI_HANDOVER_BOUND:-30} # seconds the recovery agent has to write the real root's files (then: pyiscsi handover)

# The step before switch_root: leave the real root its files (node records, network kept up). The recovery agent
# writes them when asked (SIGUSR1, boot.commands.agent HANDOVER_REQUEST/HANDOVER_DONE), with the plan it holds, so
# no new interpreter starts; without a listening agent, or without its answer in time, `pyiscsi handover` does.
pyiscsi_handover() {
    _pyiscsi_pid=
    _pyiscsi_comm=
    [ -r "$PYISCSI_STATE/agent.pid" ] && read -r _pyiscsi_pid < "$PYISCSI_STATE/agent.pid"
    [ -n "$_pyiscsi_pid" ] && [ -r "/proc/$_pyiscsi_pid/comm" ] && read -r _pyiscsi_comm < "/proc/$_pyiscsi_pid/comm"
    # The agent answers with SIGURG to this shell (the request's second line; HANDOVER_WAKE), which ends the wait
    # at once. Between signals the shell looks every 0.5 s, one `sleep` each: a `sleep` every 50 ms took CPU from
    # the agent it waited for on a busy (emulated) processor. The agent (CPUWeight=1000) often answers while this
    # shell starts its `sleep`: the signal is then spent before `wait`, so the file is looked at once more
    # between the two, or the wait would take the whole 0.5 s.
    trap : URG
    if [ "$_pyiscsi_comm" = pyiscsi-agent ] && printf '%s\n%s\n' "$1" "$$" > "$PYISCSI_STATE/handover.request" \
        && kill -USR1 "$_pyiscsi_pid" 2> /dev/null; then
        _pyiscsi_n=$((PYISCSI_HANDOVER_BOUND * 2))
        while ! pyiscsi_handover_answered && [ "$_pyiscsi_n" -gt 0 ]; do
            sleep 0.5 &
            _pyiscsi_sleep=$!
            if pyiscsi_handover_answered; then
                kill "$_pyiscsi_sleep" 2> /dev/null
                break
            fi
            wait "$_pyiscsi_sleep" || kill "$_pyiscsi_sleep" 2> /dev/null # woken: the sleep is still running
            _pyiscsi_n=$((_pyiscsi_n - 1))
        done
        trap - URG
        if pyiscsi_handover_answered; then
            unset _pyiscsi_pid _pyiscsi_comm _pyiscsi_n _pyiscsi_sleep _pyiscsi_for
            return "${_pyiscsi_status:-1}"
        fi
        echo "pyiscsi: the recovery agent did not answer within ${PYISCSI_HANDOVER_BOUND}s; running pyiscsi handover" >&2
    fi
    trap - URG
    unset _pyiscsi_pid _pyiscsi_comm _pyiscsi_n _pyiscsi_sleep _pyiscsi_status _pyiscsi_for
    /usr/sbin/pyiscsi handover --sysroot "$1"
}

# Whether the agent has answered this shell: handover.done says "<status> <the waiter's pid>" (the agent's
# HANDOVER_DONE), so an answer to an earlier request is never taken for this one's, without removing the file
# first (`rm` is a process of its own, a tenth of a second under emulation); sets _pyiscsi_status
pyiscsi_handover_answered() {
    _pyiscsi_status=
    _pyiscsi_for=
    [ -r "$PYISCSI_STATE/handover.done" ] && read -r _pyiscsi_status _pyiscsi_for < "$PYISCSI_STATE/handover.done"
    [ "$_pyiscsi_for" = "$$" ]
}
