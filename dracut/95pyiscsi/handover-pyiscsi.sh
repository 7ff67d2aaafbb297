#!/bin/sh
# shellcheck disable=SC1091,SC2154 # dracut's files and globals (NEWROOT) exist in the image
# 95pyiscsi pre-pivot hook, sourced by dracut: it must `return`, never `exit`.
# Leaves the real root what it needs to keep the session (node records, network kept up) before switch_root.
type warn > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/pyiscsi-lib.sh

[ -e "$PYISCSI_BOOTED" ] || return 0
pyiscsi_handover "$NEWROOT"
_pyiscsi_status=$?
[ "$_pyiscsi_status" -eq 0 ] || warn "pyiscsi: handover failed (exit $_pyiscsi_status): the real root may not keep the iSCSI session"
return "$_pyiscsi_status"
