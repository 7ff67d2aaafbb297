"""Run the bring-up of a hand-built plan inside a namespace (`ip netns exec NS python ns_runner.py SPEC`).

SPEC is JSON: {"interfaces": [{InterfacePlan fields as in explain --json}], "timeouts": {name: s},
"resolv": path|null, "state": path|null}. Prints net --json, or {"error", "type", "exit"} with that exit status.
"""

from __future__ import annotations

import ipaddress
import json
import sys

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
        print(json.dumps({"error": str(exc), "type": type(exc).__name__, "exit": int(exc.exit_status)}))
        return int(exc.exit_status)
    print(json.dumps(net_json(states)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
