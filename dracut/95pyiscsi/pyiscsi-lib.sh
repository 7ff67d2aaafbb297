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

PYISCSI_SYSFS=${PYISCSI_SYSFS:-/sys} # where the network adapters are looked up (tests give a tree of their own)
PYISCSI_VIRTIO_NET=virtio:d00000001v00001AF4 # the virtio-net device that a virtio PCI adapter (vendor 0x1af4) brings

# The module aliases of this machine's network adapters, one per line: every PCI function of class 02 (network),
# and for a virtio one the virtio-net device its driver will create. The cmdline hook loads their drivers before
# udev's coldplug, so that each link exists when the coldplug starts and udev names it among the first devices
# (systemd's trigger puts net first): otherwise the driver loads only during the coldplug and the link's own
# event waits behind every other device's, while `pyiscsi boot` waits for that link.
pyiscsi_nic_aliases() {
    _pyiscsi_virtio=
    for _pyiscsi_dev in "$PYISCSI_SYSFS"/bus/pci/devices/*; do
        read -r _pyiscsi_class 2> /dev/null < "$_pyiscsi_dev/class" || continue
        case "$_pyiscsi_class" in
            0x02????) ;;
            *) continue ;;
        esac
        read -r _pyiscsi_alias 2> /dev/null < "$_pyiscsi_dev/modalias" || continue
        case "$_pyiscsi_alias" in
            pci:*) echo "$_pyiscsi_alias" ;;
            *) continue ;;
        esac
        read -r _pyiscsi_vendor 2> /dev/null < "$_pyiscsi_dev/vendor" || continue
        if [ "$_pyiscsi_vendor" = 0x1af4 ] && [ -z "$_pyiscsi_virtio" ]; then
            echo "$PYISCSI_VIRTIO_NET"
            _pyiscsi_virtio=1
        fi
    done
    unset _pyiscsi_dev _pyiscsi_class _pyiscsi_alias _pyiscsi_vendor _pyiscsi_virtio
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

PYISCSI_HANDOVER_BOUND=${PYISCSI_HANDOVER_BOUND:-30} # seconds the recovery agent has to write the real root's files (then: pyiscsi handover)

# The step before switch_root: leave the real root its files (node records, network kept up). The recovery agent
# writes them when asked (SIGUSR1, boot.commands.agent HANDOVER_REQUEST/HANDOVER_DONE), with the plan it holds, so
# no new interpreter starts; without a listening agent, or without its answer in time, `pyiscsi handover` does.
pyiscsi_handover() {
    _pyiscsi_pid=
    _pyiscsi_comm=
    [ -r "$PYISCSI_STATE/agent.pid" ] && read -r _pyiscsi_pid < "$PYISCSI_STATE/agent.pid"
    [ -n "$_pyiscsi_pid" ] && [ -r "/proc/$_pyiscsi_pid/comm" ] && read -r _pyiscsi_comm < "/proc/$_pyiscsi_pid/comm"
    rm -f "$PYISCSI_STATE/handover.done"
    # The agent answers with SIGURG to this shell (the request's second line; HANDOVER_WAKE), which ends the wait
    # at once. Between signals the shell looks every 0.5 s, one `sleep` each: a `sleep` every 50 ms took CPU from
    # the agent it waited for on a busy (emulated) processor.
    trap : URG
    if [ "$_pyiscsi_comm" = pyiscsi-agent ] && printf '%s\n%s\n' "$1" "$$" > "$PYISCSI_STATE/handover.request" \
        && kill -USR1 "$_pyiscsi_pid" 2> /dev/null; then
        _pyiscsi_n=$((PYISCSI_HANDOVER_BOUND * 2))
        while [ ! -e "$PYISCSI_STATE/handover.done" ] && [ "$_pyiscsi_n" -gt 0 ]; do
            sleep 0.5 &
            _pyiscsi_sleep=$!
            wait "$_pyiscsi_sleep" || kill "$_pyiscsi_sleep" 2> /dev/null # woken: the sleep is still running
            _pyiscsi_n=$((_pyiscsi_n - 1))
        done
        trap - URG
        if [ -e "$PYISCSI_STATE/handover.done" ]; then
            read -r _pyiscsi_n < "$PYISCSI_STATE/handover.done"
            unset _pyiscsi_pid _pyiscsi_comm _pyiscsi_sleep
            return "${_pyiscsi_n:-1}"
        fi
        echo "pyiscsi: the recovery agent did not answer within ${PYISCSI_HANDOVER_BOUND}s; running pyiscsi handover" >&2
    fi
    trap - URG
    unset _pyiscsi_pid _pyiscsi_comm _pyiscsi_n _pyiscsi_sleep
    /usr/sbin/pyiscsi handover --sysroot "$1"
}
