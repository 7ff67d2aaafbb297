"""boot.deferred: pyroute2's traffic-control modules are bound at import and run only when first used."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import json, sys
from boot import deferred
finder = deferred.install()
again = deferred.install()
import pyroute2.iproute.linux  # what the boot's bring-up imports
from pyroute2.netlink.rtnl import tcmsg
htb = tcmsg.plugins["htb"]
def lazy(module):
    return type(module).__name__ == "_LazyModule"
seen = {
    "once": finder is again and sum(isinstance(f, deferred.DeferredFinder) for f in sys.meta_path) == 1,
    "package_lazy": lazy(tcmsg),
    "outside_lazy": lazy(sys.modules["pyroute2.netlink.rtnl.ifinfmsg"]),
    "deferred": sorted(n for n, m in sys.modules.items() if lazy(m)),
    "htb_ran": "options" in object.__getattribute__(htb, "__dict__"),
}
options = htb.options  # first use: the module's body runs now
seen["after"] = {"lazy": lazy(htb), "options": options.__name__, "kind": tcmsg.plugins["fq_codel"].options.__name__}
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def probed() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-I", "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_tc_modules_are_bound_but_not_run(probed: dict[str, object]) -> None:
    deferred = probed["deferred"]
    assert isinstance(deferred, list)
    assert "pyroute2.netlink.rtnl.tcmsg.sched_htb" in deferred and "pyroute2.netlink.rtnl.tcmsg.cls_u32" in deferred
    assert all(name.startswith("pyroute2.netlink.rtnl.tcmsg.") for name in deferred)
    assert probed["htb_ran"] is False


def test_packages_and_other_modules_load_as_usual(probed: dict[str, object]) -> None:
    assert probed["package_lazy"] is False  # the package's own table and message class are there at once
    assert probed["outside_lazy"] is False
    assert probed["once"] is True


def test_a_deferred_module_runs_on_first_use(probed: dict[str, object]) -> None:
    assert probed["after"] == {"lazy": False, "options": "options", "kind": "options"}


def test_without_install_nothing_is_deferred() -> None:
    probe = (
        "import sys, pyroute2.iproute.linux; "
        "print(sum(type(m).__name__ == '_LazyModule' for m in sys.modules.values()))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "0"
