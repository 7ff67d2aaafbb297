#!/bin/sh
# shellcheck disable=SC1091 # dracut's files exist in the image
# 95pyiscsi initqueue/timeout hook, sourced by dracut: it must `return`, never `exit`.
# The root did not come: repeat why, where the emergency shell's user will read it.
type warn > /dev/null 2>&1 || . /lib/dracut-lib.sh
. /lib/pyiscsi-lib.sh

pyiscsi_wanted || return 0
[ -e "$PYISCSI_BOOTED" ] && return 0
if [ -e "$PYISCSI_FAILED" ]; then
    warn "pyiscsi: 'pyiscsi boot' failed with exit status $(cat "$PYISCSI_FAILED"); its message is above and in dmesg"
else
    warn "pyiscsi: the iSCSI root is not there yet ($(cat "$PYISCSI_WANTED"))"
fi
warn "pyiscsi: 'pyiscsi explain' prints the plan it follows"
return 0
