"""The real steps of `pyiscsi boot` (see boot.orchestrate for the order and the rules).

Network through boot.net, login in userspace on a plain socket (CmdSN = the kernel session's initial CmdSN on
every Login Request), the logged-in socket handed to iscsi_tcp over NETLINK_ISCSI, then a SCSI scan and a
bounded wait for the LUN's block device.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from boot.net.state import STATE_FILE, InterfaceState
from boot.plan import BootPlan, TargetPlan
from boot.sessions import SessionState
from initiator.deadline import Deadline
from initiator.errors import NetworkError, WaitTimeout
from initiator.printable import printable

if TYPE_CHECKING:
    from boot.cmdline import Cmdline

INITRD_RELEASE = "/etc/initrd-release"
INITIAL_CMDSN = 1
KERNEL_MODULES = ("iscsi_tcp",)
# the iBFT's sysfs tree (rd.iscsi.firmware, rd.iscsi.ibft), loaded by the boot itself before it reads the firmware
FIRMWARE_MODULES = ("iscsi_boot_sysfs", "iscsi_ibft")
# the SCSI disk driver, loaded with them rather than by udev when the LUN is found: udev may still be working
# through its coldplug then, and the disk waited behind it (1-2 s of a boot on one emulated processor)
DISK_MODULES = ("sd_mod",)
SYS_MODULE = Path("/sys/module")
READY = ("live", "builtin")
MODULE_POLL = 0.02  # seconds between looks at a module's initstate while its init runs
WILDCARDS = ("0.0.0.0", "::", "")


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return address == "localhost"


def usable_portal(portals, asked_address: str, asked_port: int) -> tuple[str, int]:  # type: ignore[no-untyped-def]
    """Where to log in to a target SendTargets reported. The portal we asked wins when the target lists it; a
    wildcard or a loopback address (a target behind port forwarding or NAT, as tgtd on 127.0.0.1 looks from a
    VM) means "where you reached me", so the asked portal then; otherwise the first portal reported."""
    listed = list(portals or ())
    if any(p.address == asked_address and p.port == asked_port for p in listed):
        return asked_address, asked_port
    for portal in listed:
        if portal.address in WILDCARDS or (_loopback(portal.address) and not _loopback(asked_address)):
            continue
        return portal.address, portal.port
    return asked_address, asked_port


def module_state(name: str, root: Path = SYS_MODULE) -> str:
    """`live` (loaded and initialised), `coming`/`going` (its init or exit runs), `builtin` (in the kernel: a
    directory without `initstate`) or `absent`. modprobe returns at once for a module another modprobe is still
    loading (dracut's hook, udev), so `coming` is not ready: its sysfs files are still being made."""
    directory = root / name
    try:
        return (directory / "initstate").read_text().strip() or "absent"
    except FileNotFoundError:
        return "builtin" if directory.is_dir() else "absent"
    except OSError:
        return "absent"


def load_modules(
    deadline: Deadline,
    modules: tuple[str, ...] = KERNEL_MODULES,
    *,
    optional: tuple[str, ...] = (),
    root: Path = SYS_MODULE,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """`modules` loaded and initialised before they are used (iscsi_tcp before NETLINK_ISCSI answers; iscsi_ibft
    before its sysfs tree is read), by one modprobe for those not live yet. A module of `optional` that does not
    load is left out (no iBFT driver: the firmware step says what is missing); one of `modules` is an error."""
    wanted = (*modules, *optional)
    missing = [m for m in wanted if module_state(m, root) == "absent"]
    if missing:
        import subprocess  # only then: 95pyiscsi's cmdline hook or pyiscsi-modules.service has loaded them

        try:
            argv = ["modprobe", "-a", "-q", *missing]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=max(0.1, deadline.remaining()))
        except FileNotFoundError:
            raise NetworkError(f"modprobe not found: cannot load {' '.join(missing)}") from None
        except subprocess.TimeoutExpired:
            raise deadline.timeout(f"modprobe {' '.join(missing)}") from None
        failed = [m for m in modules if module_state(m, root) == "absent"]
        if failed:
            detail = printable(done.stderr.strip()) or f"exit status {done.returncode}"
            raise NetworkError(f"modprobe {' '.join(failed)} failed: {detail}")
    while True:
        waiting = [m for m in wanted if module_state(m, root) not in (*READY, "absent")]
        if not waiting:
            return
        if deadline.expired():
            raise deadline.timeout(f"kernel module {' '.join(waiting)} to finish loading")
        sleep(min(MODULE_POLL, max(0.0, deadline.remaining())))


class LiveSteps:
    def __init__(self, *, in_initramfs: bool | None = None, state_dir: str = "/run/pyiscsi") -> None:
        self.in_initramfs = os.path.exists(INITRD_RELEASE) if in_initramfs is None else in_initramfs
        self.state_dir = state_dir
        self._netlink = None
        # the logins run in threads (boot.orchestrate); one NETLINK_ISCSI socket answers one request at a time
        self._kernel_lock = threading.Lock()

    def _kernel(self):  # type: ignore[no-untyped-def]
        from initiator.kernel import NetlinkIscsi

        if self._netlink is None:
            self._netlink = NetlinkIscsi()
        return self._netlink

    def close(self) -> None:
        if self._netlink is not None:
            self._netlink.close()
            self._netlink = None

    def load_modules_for(self, cmdline: Cmdline) -> None:
        """Before the firmware is read: the kernel modules this boot needs, loaded and initialised. 95pyiscsi's
        cmdline hook (or pyiscsi-modules.service) loads them too, but `pyiscsi boot` may run without it, and a
        module udev is still loading is not ready when modprobe returns. Bounded by the boot's total
        (rd.pyiscsi.timeout)."""
        from boot.planner import plan_timeouts

        if not self.in_initramfs:
            return
        optional = (*(FIRMWARE_MODULES if cmdline.firmware or cmdline.ibft else ()), *DISK_MODULES)
        load_modules(Deadline("total", plan_timeouts(cmdline).total), KERNEL_MODULES, optional=optional)

    def bring_up(self, plan: BootPlan, deadline: Deadline) -> tuple[InterfaceState, ...]:
        from boot.net.bringup import bring_up

        return bring_up(
            plan,
            deadline,
            resolv_conf="/etc/resolv.conf" if self.in_initramfs else None,
            state_file=os.path.join(self.state_dir, os.path.basename(STATE_FILE)),
            set_hostname=self.in_initramfs,
            enough=None if plan.waitnet else self._root_reachable(plan),
        )

    def _root_reachable(self, plan: BootPlan):  # type: ignore[no-untyped-def]
        """rd.iscsi.waitnet=0: enough interfaces are up once one reaches the root target (for root=dhcp: once a
        lease carried a root path; for a target named by host name: once any is up)."""
        from boot.orchestrate import is_ip_address

        first = plan.targets[0].address if plan.targets else None

        def enough(states: tuple[InterfaceState, ...]) -> bool:
            if plan.dhcp_root is not None:
                return any(s.root_path for s in states)
            return first is None or not is_ip_address(first) or self.has_route(first)

        return enough

    def has_route(self, address: str) -> bool:
        from boot.net.rtnl import NetlinkError, Rtnl

        with Rtnl() as ipr:
            try:
                return bool(ipr.route("get", dst=address))
            except NetlinkError:  # ENETUNREACH, EHOSTUNREACH: `ip route get` fails the same way
                return False

    def discover(self, target: TargetPlan, initiator: str, deadline: Deadline) -> list[TargetPlan]:
        from initiator.client import discover
        from initiator.portal import Portal
        from initiator.record import replace

        portal = Portal(target.address, target.port)
        found = discover(portal, initiator, deadline, credentials=target.credentials)
        plans: list[TargetPlan] = []
        for entry in found:
            address, port = usable_portal(entry.portals, target.address, target.port)
            plans.append(replace(target, name=entry.name, address=address, port=port))
        return plans

    def attach(self, target: TargetPlan, initiator: str, plan: BootPlan, deadline: Deadline) -> SessionState:
        from initiator.client import login
        from initiator.handoff import HandoffParams, hand_over
        from initiator.held_session import HeldSession
        from initiator.kernel import scan_host
        from initiator.portal import Portal
        from initiator.record import replace

        assert target.name is not None
        started = time.monotonic()
        load_modules(deadline)
        credentials = target.credentials
        conn = login(
            Portal(target.address, target.port),
            target.name,
            initiator,
            deadline,
            credentials=credentials,
            initial_cmdsn=INITIAL_CMDSN,
            header_digest=plan.header_digest,
            data_digest=plan.data_digest,
        )
        try:
            session = HeldSession.from_login(conn.result, portal=conn.portal, lun=target.lun, credentials=credentials)
            params = HandoffParams.from_login(conn.result, session, recovery_timeout=plan.timeouts.replacement)
            sock = conn.detach()
        except BaseException:
            conn.close(abort=True)
            raise
        try:
            if not self._kernel_lock.acquire(timeout=max(0.0, deadline.remaining())):
                raise deadline.timeout(f"{printable(str(target.name))}: another session's kernel handover is under way")
            try:
                kernel = hand_over(self._kernel(), sock, params, deadline)
            finally:
                self._kernel_lock.release()
        finally:
            sock.close()  # iscsi_tcp holds its own reference once bound
        scan_host(kernel.host_no)
        return SessionState(
            replace(session, sid=kernel.sid, host_no=kernel.host_no),
            device=None,
            root=False,
            seconds=round(time.monotonic() - started, 3),
        )

    def wait_disk(self, session: SessionState, deadline: Deadline) -> str:
        from boot.disk import wait_for_block_device

        assert session.session.sid is not None
        return wait_for_block_device(session.session.sid, session.session.lun, deadline)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


__all__ = ["LiveSteps", "WaitTimeout", "load_modules", "module_state", "usable_portal"]
