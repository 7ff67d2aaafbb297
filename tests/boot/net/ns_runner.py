"""Run the bring-up of a hand-built plan inside a namespace (`ip netns exec NS python ns_runner.py SPEC`).

SPEC is JSON: {"interfaces": [{InterfacePlan fields as in explain --json}], "timeouts": {name: s},
"resolv": path|null, "state": path|null}. Prints net --json, or {"error", "type", "exit", "elapsed"} with that exit
status (elapsed: the timed-out wait's own account of how long it took); both with "maxrss_kb", this process's peak
memory (VmHWM: getrusage's ru_maxrss would also count the test process this one was forked from), so a test can
check that a wait stayed small as well as short, and "iproute_imported" (whether pyroute2's IPRoute was).
"""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

from boot.net.bringup import bring_up
from boot.net.state import net_json
from boot.plan import BootPlan, InterfacePlan, Method, Timeouts
from initiator.deadline import Deadline
from initiator.errors import PyiscsiError


def interface(spec: dict) -> InterfacePlan:
    return InterfacePlan(
        name=spec.get("name"),
        mac=spec.get("mac"),
        vlan=spec.get("vlan"),
        mtu=spec.get("mtu"),
        method=Method(spec.get("method", "dhcp")),
        addresses=tuple(ipaddress.ip_interface(a) for a in spec.get("addresses", [])),
        gateway=None if spec.get("gateway") is None else ipaddress.IPv4Address(spec["gateway"]),
        gateway6=None if spec.get("gateway6") is None else ipaddress.IPv6Address(spec["gateway6"]),
        dns=tuple(ipaddress.ip_address(d) for d in spec.get("dns", [])),
        hostname=spec.get("hostname"),
        family=spec.get("family"),
    )


def main(argv: list[str]) -> int:
    spec = json.loads(argv[1])
    timeouts = Timeouts(**spec.get("timeouts", {}))
    plan = BootPlan(None, interfaces=tuple(interface(i) for i in spec["interfaces"]), timeouts=timeouts)
    try:
        states = bring_up(
            plan,
            Deadline("total", timeouts.total),
            resolv_conf=spec.get("resolv"),
            state_file=spec.get("state"),
            require_all=spec.get("require_all", True),
        )
    except PyiscsiError as exc:
        document = {"error": str(exc), "type": type(exc).__name__, "exit": int(exc.exit_status)}
        print(json.dumps({**document, "elapsed": getattr(exc, "elapsed", None), **_process()}))
        return int(exc.exit_status)
    print(json.dumps({**net_json(states), **_process()}))
    return 0


def _process() -> dict[str, object]:
    """What the bring-up cost this process: peak memory, and whether it imported pyroute2's IPRoute (only a
    VLAN, bond or bridge needs it)."""
    return {"maxrss_kb": _maxrss_kb(), "iproute_imported": "pyroute2.iproute.linux" in sys.modules}


def _maxrss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
