#!/bin/sh
# shellcheck disable=SC1091 # /lib/pyiscsi-lib.sh exists in the image
# /sbin/pyiscsi-boot: the initqueue job of 95pyiscsi (images without systemd). A program, not a hook: it runs
# `pyiscsi boot` once and passes its exit status on; a failure is kept for the timeout hook to repeat.
. /lib/pyiscsi-lib.sh

/usr/sbin/pyiscsi boot
_status=$?
if [ "$_status" -ne 0 ]; then
    echo "$_status" > "$PYISCSI_FAILED"
fi
exit "$_status"
