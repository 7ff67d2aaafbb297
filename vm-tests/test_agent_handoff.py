"""Issue 5 in a VM: the recovery agent owns recovery from `pyiscsi boot` until iscsid starts in the real root.

The real root's init (harness.rootimage plus the phase below, before it starts iscsid) checks that the agent
`pyiscsi boot` started survived switch_root (`/run/pyiscsi/agent.pid`, `ps` shows `@pyiscsi-agent`), asks the
host to restart tgtd, waits for the kernel's connection error and for the agent's recovery (its kernel-log line,
the session LOGGED_IN, the disk reads with O_DIRECT), then runs the `ExecStartPre=` of the iscsid.service drop-in
`pyiscsi handover` wrote (this root has no systemd: the same line by hand, as systemd would unescape it), checks
the agent is gone with its pid file, and goes on as usual: iscsid starts and adopts the session.
"""

from __future__ import annotations

import pytest

from harness import bootvm, initramfs, rootimage

pytestmark = pytest.mark.vm

MISSING = bootvm.require_tools()
if MISSING:
    pytestmark = [pytest.mark.vm, pytest.mark.skip(reason=MISSING)]

AGENT_PHASE = r"""
# -- the recovery agent owns the session until iscsid starts (vm-tests/test_agent_handoff.py) --
agentlog() { dmesg | grep 'pyiscsi: agent' | tail -n 40 | sed 's/^/  kmsg: /' > /dev/console; }
pidf=/run/pyiscsi/agent.pid
apid=$(cat $pidf 2>/dev/null)
{ [ -n "$apid" ] && kill -0 "$apid" 2>/dev/null; } || { agentlog; fail "no live agent in $pidf before iscsid"; }
argv0=$(tr '\0' '\n' < /proc/$apid/cmdline | head -n1)
ps | grep -v grep | grep -q '@pyiscsi-agent' || { ps > /dev/console; fail "ps shows no @pyiscsi-agent"; }
mark agent-alive "pid=$apid argv0=$argv0"
dd if="$dev" of=/dev/null bs=4096 count=16 iflag=direct 2> /dev/null || fail "$dev does not read before the failure"
mark await-failure
end=$(($(now) + LOST_BOUND))
until dmesg | grep -q 'detected conn error'; do
    [ "$(now)" -ge $end ] && fail "no connection error reported within LOST_BOUNDs"
    sleep 0.5
done
mark conn-lost "$(dmesg | grep -m1 'detected conn error' | sed 's/^\[[^]]*\] *//')"
end=$(($(now) + RECOVER_BOUND))
until dmesg | grep -q 'pyiscsi: agent: .*recovered after'; do
    [ "$(now)" -ge $end ] && { agentlog; fail "the agent did not recover $sid within RECOVER_BOUNDs"; }
    sleep 0.5
done
state=$(cat /sys/class/iscsi_session/$sid/state 2>/dev/null)
[ "$state" = LOGGED_IN ] || { agentlog; fail "$sid is $state after the agent's recovery"; }
dd if="$dev" of=/dev/null bs=4096 count=16 skip=128 iflag=direct 2> /dev/null ||
    fail "$dev does not read after the agent's recovery"
mark agent-recovered "$sid $state, $dev reads; $(dmesg | grep -m1 'recovered after' | sed 's/.*: recovered/recovered/')"
agentlog
dropin=/etc/systemd/system/iscsid.service.d/50-pyiscsi.conf
pre=$(grep "^ExecStartPre=-/bin/sh -c '" $dropin |
    sed -e 's/^ExecStartPre=-\/bin\/sh -c .//' -e 's/.$//' -e 's/\$\$/$/g' -e 's/%%/%/g')
[ -n "$pre" ] || fail "no ExecStartPre in $dropin"
t0=$(cut -d' ' -f1 /proc/uptime)
out=$(sh -c "$pre" 2>&1) || fail "the drop-in's ExecStartPre failed: $out"
[ -e $pidf ] && fail "$pidf still there after ExecStartPre"
# gone, or a zombie: this init reaps no orphans (systemd would); bounded, it exits right after the pid file
end=$(($(now) + 10))
while [ -e /proc/$apid ] && ! grep -q '^State:.*Z' /proc/$apid/status 2> /dev/null; do
    [ "$(now)" -ge $end ] && fail "agent $apid still runs 10s after ExecStartPre"
    sleep 0.2
done
mark agent-stopped "from $t0: $out"
agentlog
"""


@pytest.fixture(scope="module")
def agent_root_image():
    return rootimage.build(before_iscsid=AGENT_PHASE)


@pytest.fixture(scope="module", params=["systemd", "sh"])
def flavour_image(request, pinned_kernel):
    return request.param, initramfs.build(pinned_kernel.release, pinned_kernel.modules, request.param).path


def _leaked(log: str, *secrets: str) -> list[str]:
    return [
        line
        for line in log.splitlines()
        if any(s in line for s in secrets) and "Kernel command line:" not in line and not line.startswith("# harness:")
    ]


def test_the_agent_recovers_between_switch_root_and_iscsid_then_hands_over(
    pinned_kernel, flavour_image, agent_root_image
):
    flavour, image = flavour_image
    cmd = "netroot=iscsi:{user}:{secret}@{host}::{port}:{lun}:{iqn} ip=dhcp root=UUID={uuid} pyiscsi.test=adopt"
    spec = bootvm.Boot(f"agent-handoff-{flavour}", cmd, chap=True)
    result = bootvm.boot(spec, pinned_kernel.vmlinuz, image, agent_root_image)
    console = result.console
    names = [m.name for m in console.markers]
    assert "realroot-fail" not in names, console.summary()
    order = ["agent", "booted", "realroot", "agent-alive", "conn-lost", "agent-recovered", "agent-stopped",
             "iscsid", "adopted"]  # fmt: skip
    for name in order:
        assert name in names, f"no {name}: {console.summary()}"
    times = [console.marker(name).uptime for name in order]
    assert times == sorted(times), list(zip(order, times, strict=True))
    assert result.restarted  # the host did break the connection while the agent owned it
    alive = console.marker("agent-alive").detail
    assert "argv0=@pyiscsi-agent" in alive, alive
    assert "stopped: iscsid owns recovery now" in console.marker("agent-stopped").detail
    log = console.log()
    assert "switch_root seen: followed /run into the real root" in log, console.summary()
    assert _leaked(log, bootvm.SECRET) == []
    print(
        f"agent-handoff ({flavour}): "
        + " ".join(f"{n}={t:.1f}" for n, t in zip(order, times, strict=True))
        + f" ({console.wall_seconds:.0f}s wall)"
    )
