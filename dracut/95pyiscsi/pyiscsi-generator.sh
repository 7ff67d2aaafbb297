#!/bin/sh
# shellcheck disable=SC1091,SC2154 # /lib/pyiscsi-lib.sh exists in the image and sets _pyiscsi_*, root
# pyiscsi-generator: 95pyiscsi's systemd generator (images with systemd), run by systemd before any unit starts
# with the generator directories as arguments. It decides whether this boot's root is ours (pyiscsi_decide, as the
# cmdline hook does without systemd) and, if so, writes:
#   /run/pyiscsi/wanted       the option that says so (pyiscsi-boot.service's condition)
#   /run/pyiscsi/modules      the iSCSI modules and the network adapters' drivers, for pyiscsi-modules.service
#   sysroot.mount             when root= names no device (root=iscsi:, root=dhcp, an iBFT without root=), for the
#                             LUN's udev name /dev/pyiscsiroot, in the generator directory (no daemon-reload)
# Deciding here rather than in a cmdline hook lets systemd skip dracut-cmdline.service, as it does in an image
# without pyiscsi: that unit held back udevd and pyiscsi-boot.service for seconds on an emulated machine. A
# generator must be quick and must not wait: it loads no modules and starts nothing.

# Not dracut-lib.sh: its getarg starts a program per name (see pyiscsi_scan); its info and warn, as they are
# without systemd's journal: the kernel log (and the console for a warning)
# shellcheck disable=SC2317 # called by pyiscsi-lib.sh
info() { echo "<30>dracut: $*" 2> /dev/null > /dev/kmsg; }
# shellcheck disable=SC2317
warn() {
    echo "<28>dracut Warning: $*" 2> /dev/null > /dev/kmsg
    echo "dracut Warning: $*" >&2
}
hookdir=/lib/dracut/hooks
. /lib/pyiscsi-lib.sh

pyiscsi_scan
pyiscsi_decide || exit 0
_pyiscsi_dir=${1:-/run/systemd/generator}

# Written in place, not through a temporary name (one `mv` less to start): systemd reads these files, and starts
# the units that read them, only once every generator has exited.
mkdir -p "$PYISCSI_STATE"
pyiscsi_nic_aliases
# shellcheck disable=SC2086 # module names and the adapters' aliases, one word each
set -- $_pyiscsi_modules $_pyiscsi_aliases
echo "PYISCSI_MODULES=\"$*\"" > "$PYISCSI_MODULES_ENV"
echo "$_pyiscsi_why" > "$PYISCSI_WANTED"
info "pyiscsi: the root is on iSCSI ($_pyiscsi_why)"

if pyiscsi_names_root; then
    if [ ! -e "$_pyiscsi_dir/sysroot.mount" ]; then
        mkdir -p "$_pyiscsi_dir/initrd-root-fs.target.requires" "$_pyiscsi_dir/dev-pyiscsiroot.device.d"
        pyiscsi_sysroot_unit > "$_pyiscsi_dir/sysroot.mount"
        ln -sf ../sysroot.mount "$_pyiscsi_dir/initrd-root-fs.target.requires/sysroot.mount"
        pyiscsi_device_timeout_unit > "$_pyiscsi_dir/dev-pyiscsiroot.device.d/pyiscsi-timeout.conf"
    fi
    # dracut-cmdline.service, should it run (another module's cmdline hook, rd.break=cmdline, resume=), refuses
    # a root= it does not know: the cmdline hook tells it the root will come
    case "$root" in
        iscsi:* | dhcp)
            mkdir -p "$hookdir/cmdline"
            ln -sf /lib/pyiscsi-cmdline.sh "$hookdir/cmdline/90-parse-pyiscsi.sh"
            ;;
    esac
fi
exit 0
