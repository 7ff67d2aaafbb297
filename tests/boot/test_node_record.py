from __future__ import annotations

import pytest

from boot.node_record import NodeRecord, Startup
from initiator.credentials import Chap, Credentials
from initiator.held_session import HeldSession
from initiator.portal import Portal
from initiator.record import replace
from initiator.secret import Secret

SESSION = HeldSession(
    target="iqn.2026-11.test:root",
    portal=Portal("10.0.2.2", 3260),
    tpgt=1,
    initiator_name="iqn.2026-11.test:init",
    isid=bytes.fromhex("800000000001"),
    tsih=7,
    sid=3,
    host_no=2,
)

# The record as open-iscsi 2.1 writes it (and as `pyiscsi handover` has always written it): iscsid parses this.
MUTUAL_ONBOOT = """# BEGIN RECORD 2.1.8
node.name = iqn.2026-11.test:root
node.tpgt = 1
node.startup = onboot
node.leading_login = No
iface.iscsi_ifacename = default
iface.transport_name = tcp
node.discovery_type = static
node.session.auth.authmethod = CHAP
node.session.auth.username = u
node.session.auth.password = s3cret-out
node.session.auth.username_in = tu
node.session.auth.password_in = s3cret-in
node.session.timeo.replacement_timeout = 86400
node.session.scan = auto
node.conn[0].address = 10.0.2.2
node.conn[0].port = 3260
node.conn[0].startup = onboot
node.conn[0].timeo.noop_out_interval = 0
node.conn[0].timeo.noop_out_timeout = 0
node.conn[0].iscsi.HeaderDigest = CRC32C
node.conn[0].iscsi.DataDigest = None
# END RECORD
"""


def _parse(text: str) -> dict[str, str]:
    lines = text.splitlines()
    assert lines[0] == "# BEGIN RECORD 2.1.8" and lines[-1] == "# END RECORD"
    return dict(line.split(" = ", 1) for line in lines[1:-1])


def test_root_record_is_onboot_with_mutual_chap():
    chap = Credentials(Chap("u", Secret("s3cret-out")), Chap("tu", Secret("s3cret-in")))
    rec = NodeRecord(
        replace(SESSION, credentials=chap, header_digest="CRC32C"),
        Startup.ONBOOT,
        replacement_timeout=86400,
        noop_out_interval=0,
        noop_out_timeout=0,
    )
    assert rec.render() == MUTUAL_ONBOOT
    assert str(rec.relative_path()) == "nodes/iqn.2026-11.test:root/10.0.2.2,3260,1/default"
    assert "s3cret" not in repr(rec)


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        (None, {"node.session.auth.authmethod": "None"}),
        (
            Credentials(Chap("u", Secret("p"))),
            {"node.session.auth.authmethod": "CHAP", "node.session.auth.username": "u"},
        ),
    ],
)
def test_chap_lines(credentials, expected):
    keys = _parse(NodeRecord(replace(SESSION, credentials=credentials), Startup.AUTOMATIC).render())
    assert expected.items() <= keys.items()
    assert "node.session.auth.username_in" not in keys


@pytest.mark.parametrize(
    ("address", "expected_dir"),
    [("fec0::2", "fec0::2,3260,1"), ("10.0.2.2", "10.0.2.2,3260,1")],
)
def test_portal_directory_as_iscsiadm_names_it(address, expected_dir):
    rec = NodeRecord(replace(SESSION, portal=Portal(address, 3260)), Startup.AUTOMATIC)
    assert rec.relative_path().parts[2] == expected_dir
    assert _parse(rec.render())["node.conn[0].address"] == address


def test_line_break_in_a_value_is_refused():
    with pytest.raises(ValueError, match=r"node\.name"):
        NodeRecord(replace(SESSION, target="iqn.x:y\nnode.startup = manual"), Startup.ONBOOT).render()
