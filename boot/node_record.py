"""open-iscsi node records, so the real root's iscsid adopts our session instead of logging in twice.

Format as open-iscsi 2.1 (Debian 12) writes it: `# BEGIN RECORD <ver>`, `key = value` lines, `# END RECORD`,
stored at `<dbroot>/nodes/<target>/<address>,<port>,<tpgt>/<iface>` with mode 0600 (it holds CHAP secrets).
The root target is `onboot`: iscsid's start-up logins and `iscsiadm --logoutall` both leave it alone.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from initiator.secret import Secret

RECORD_VERSION = "2.1.8"


class Startup(enum.StrEnum):
    ONBOOT = "onboot"  # the root disk: logged in by the initramfs, never logged out by scripts
    AUTOMATIC = "automatic"  # other targets of the plan: the real root logs them in
    MANUAL = "manual"


@dataclass(frozen=True)
class NodeRecord:
    target: str
    address: str
    port: int
    tpgt: int
    startup: Startup
    iface: str = "default"
    username: str | None = None
    password: Secret | None = None
    username_in: str | None = None
    password_in: Secret | None = None
    replacement_timeout: int = 120
    noop_out_interval: int = 5
    noop_out_timeout: int = 5
    header_digest: str = "None"
    data_digest: str = "None"
    extra: tuple[tuple[str, str], ...] = field(default=())

    def relative_path(self) -> PurePosixPath:
        # open-iscsi names the portal directory without brackets, IPv6 included (checked against iscsiadm 2.1.8).
        return PurePosixPath("nodes", self.target, f"{self.address},{self.port},{self.tpgt}", self.iface)

    def render(self) -> str:
        """The record's text, secrets included: write it only with `write_atomic(..., mode=0o600)`."""
        chap = self.username is not None and self.password is not None
        lines = [
            ("node.name", self.target),
            ("node.tpgt", str(self.tpgt)),
            ("node.startup", self.startup.value),
            ("node.leading_login", "No"),
            ("iface.iscsi_ifacename", self.iface),
            ("iface.transport_name", "tcp"),
            ("node.discovery_type", "static"),
            ("node.session.auth.authmethod", "CHAP" if chap else "None"),
        ]
        if chap:
            assert self.username is not None and self.password is not None
            lines += [
                ("node.session.auth.username", self.username),
                ("node.session.auth.password", self.password.reveal()),
            ]
            if self.username_in is not None and self.password_in is not None:
                lines += [
                    ("node.session.auth.username_in", self.username_in),
                    ("node.session.auth.password_in", self.password_in.reveal()),
                ]
        lines += [
            ("node.session.timeo.replacement_timeout", str(self.replacement_timeout)),
            ("node.session.scan", "auto"),
            ("node.conn[0].address", self.address),
            ("node.conn[0].port", str(self.port)),
            ("node.conn[0].startup", self.startup.value),
            ("node.conn[0].timeo.noop_out_interval", str(self.noop_out_interval)),
            ("node.conn[0].timeo.noop_out_timeout", str(self.noop_out_timeout)),
            ("node.conn[0].iscsi.HeaderDigest", self.header_digest),
            ("node.conn[0].iscsi.DataDigest", self.data_digest),
            *self.extra,
        ]
        for key, value in lines:
            if "\n" in value or "\0" in value:
                raise ValueError(f"node record {key}: value contains a line break or NUL")
        body = "\n".join(f"{key} = {value}" for key, value in lines)
        return f"# BEGIN RECORD {RECORD_VERSION}\n{body}\n# END RECORD\n"
