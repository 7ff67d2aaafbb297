from __future__ import annotations

import pytest

from boot.node_record import NodeRecord, Startup
from initiator.secret import Secret


def _parse(text: str) -> dict[str, str]:
    lines = text.splitlines()
    assert lines[0] == "# BEGIN RECORD 2.1.8" and lines[-1] == "# END RECORD"
    return dict(line.split(" = ", 1) for line in lines[1:-1])


def test_root_record_is_onboot_with_mutual_chap():
    rec = NodeRecord(
        target="iqn.2026-11.test:root",
        address="10.0.2.2",
        port=3260,
        tpgt=1,
        startup=Startup.ONBOOT,
        username="u",
        password=Secret("s3cret-out"),
        username_in="tu",
        password_in=Secret("s3cret-in"),
        replacement_timeout=86400,
        noop_out_interval=0,
        noop_out_timeout=0,
    )
    keys = _parse(rec.render())
    assert keys["node.startup"] == keys["node.conn[0].startup"] == "onboot"
    assert keys["node.session.auth.authmethod"] == "CHAP"
    assert keys["node.session.auth.password"] == "s3cret-out"
    assert keys["node.session.auth.password_in"] == "s3cret-in"
    assert keys["node.session.timeo.replacement_timeout"] == "86400"
    assert str(rec.relative_path()) == "nodes/iqn.2026-11.test:root/10.0.2.2,3260,1/default"
    assert "s3cret" not in repr(rec)


@pytest.mark.parametrize(
    ("address", "expected_dir"),
    [("fec0::2", "fec0::2,3260,1"), ("10.0.2.2", "10.0.2.2,3260,1")],
)
def test_portal_directory_as_iscsiadm_names_it(address, expected_dir):
    rec = NodeRecord("iqn.x:y", address, 3260, 1, Startup.AUTOMATIC)
    assert rec.relative_path().parts[2] == expected_dir
    assert _parse(rec.render())["node.session.auth.authmethod"] == "None"


def test_line_break_in_a_value_is_refused():
    with pytest.raises(ValueError, match=r"node\.name"):
        NodeRecord("iqn.x:y\nnode.startup = manual", "10.0.2.2", 3260, 1, Startup.ONBOOT).render()
