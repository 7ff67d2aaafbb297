"""open-iscsi node records, so the real root's iscsid adopts our session instead of logging in twice.

Format as open-iscsi 2.1 (Debian 12) writes it: `# BEGIN RECORD <ver>`, `key = value` lines, `# END RECORD`,
stored at `<dbroot>/nodes/<target>/<address>,<port>,<tpgt>/<iface>` with mode 0600 (it holds CHAP secrets).
The root target is `onboot`: iscsid's start-up logins and `iscsiadm --logoutall` both leave it alone.
"""

from __future__ import annotations

import enum
from pathlib import PurePosixPath

from initiator.held_session import HeldSession
from initiator.record import field, record

RECORD_VERSION = "2.1.8"


class Startup(enum.StrEnum):
    ONBOOT = "onboot"  # the root disk: logged in by the initramfs, never logged out by scripts
    AUTOMATIC = "automatic"  # other targets of the plan: the real root logs them in
    MANUAL = "manual"


@record
class NodeRecord:
    """One session as open-iscsi's node record: whom it talks to, as whom and how (the session, its CHAP
    secrets included), and what iscsid is to do with it."""

    session: HeldSession
    startup: Startup
    replacement_timeout: int = 120
    noop_out_interval: int = 5
    noop_out_timeout: int = 5
    extra: tuple[tuple[str, str], ...] = field(default=())

    def relative_path(self) -> PurePosixPath:
        # open-iscsi names the portal directory without brackets, IPv6 included (checked against iscsiadm 2.1.8).
        s = self.session
        return PurePosixPath("nodes", s.target, f"{s.portal.address},{s.portal.port},{s.tpgt}", s.iface)

    def render(self) -> str:
        """The record's text, secrets included: write it only with `write_atomic(..., mode=0o600)`."""
        s, creds = self.session, self.session.credentials
        lines = [
            ("node.name", s.target),
            ("node.tpgt", str(s.tpgt)),
            ("node.startup", self.startup.value),
            ("node.leading_login", "No"),
            ("iface.iscsi_ifacename", s.iface),
            ("iface.transport_name", "tcp"),
            ("node.discovery_type", "static"),
            ("node.session.auth.authmethod", "CHAP" if creds is not None else "None"),
        ]
        if creds is not None:
            lines += [
                ("node.session.auth.username", creds.chap.username),
                ("node.session.auth.password", creds.chap.password.reveal()),
            ]
            if creds.reverse is not None:
                lines += [
                    ("node.session.auth.username_in", creds.reverse.username),
                    ("node.session.auth.password_in", creds.reverse.password.reveal()),
                ]
        lines += [
            ("node.session.timeo.replacement_timeout", str(self.replacement_timeout)),
            ("node.session.scan", "auto"),
            ("node.conn[0].address", s.portal.address),
            ("node.conn[0].port", str(s.portal.port)),
            ("node.conn[0].startup", self.startup.value),
            ("node.conn[0].timeo.noop_out_interval", str(self.noop_out_interval)),
            ("node.conn[0].timeo.noop_out_timeout", str(self.noop_out_timeout)),
            ("node.conn[0].iscsi.HeaderDigest", s.header_digest),
            ("node.conn[0].iscsi.DataDigest", s.data_digest),
            *self.extra,
        ]
        for key, value in lines:
            if "\n" in value or "\0" in value:
                raise ValueError(f"node record {key}: value contains a line break or NUL")
        body = "\n".join(f"{key} = {value}" for key, value in lines)
        return f"# BEGIN RECORD {RECORD_VERSION}\n{body}\n# END RECORD\n"
