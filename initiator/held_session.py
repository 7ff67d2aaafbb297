"""A session the kernel holds: the one description of it, from the login to the hand-over, the sessions file the
boot leaves, the recovery agent and open-iscsi's node record.

    HeldSession(target, portal, tpgt, initiator_name, isid, tsih, lun=0, header_digest="None",
                data_digest="None", credentials=None, iface="default", sid=None, host_no=None, cid=0)
    HeldSession.from_login(result, *, portal, lun=0, credentials=None, iface="default", default_tpgt=1)
        what a finished login settled (TPGT, ISID, TSIH, digests), before the kernel numbers it
    .relogged(result)                  the same kernel session after a re-login of it (recovery)
    .to_json() / HeldSession.from_json(data, secrets=None)
        the sessions file's shape: CHAP user names only, never a secret; `secrets(session, username,
        username_in)` puts the credentials back (None: leave them out)
    .label                             `session 3 (iqn... at 10.0.2.2:3260)`, for log lines

`sid` and `host_no` are the kernel's numbers: None until `initiator.handoff.hand_over` has created the session.
`iface` is open-iscsi's iface record name (always "default" for the sessions we create), not a network link.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from initiator.credentials import Credentials
from initiator.errors import BadInputError, LocalProtocolError
from initiator.portal import Portal
from initiator.record import record, replace

if TYPE_CHECKING:
    from initiator.login import LoginResult

# Keys of `to_json()`, in the order the sessions file has always listed them (it is written with sort_keys).
JSON_KEYS = (
    "target", "address", "port", "tpgt", "lun", "sid", "host_no", "isid", "tsih", "initiator_name",
    "header_digest", "data_digest", "username", "username_in",
)  # fmt: skip

# Given a session read from the file (without credentials) and the CHAP user names it logged in with (one-way,
# reverse), the credentials it holds; raise when they cannot be found.
Secrets = Callable[["HeldSession", str | None, str | None], Credentials | None]


@record
class HeldSession:
    """One iSCSI session: whom it talks to, as whom, what its login settled and what the kernel calls it."""

    target: str
    portal: Portal
    tpgt: int
    initiator_name: str
    isid: bytes
    tsih: int
    lun: int = 0
    header_digest: str = "None"
    data_digest: str = "None"
    credentials: Credentials | None = None
    iface: str = "default"
    sid: int | None = None
    host_no: int | None = None
    cid: int = 0

    @property
    def label(self) -> str:
        return f"session {self.sid} ({self.target} at {self.portal.address}:{self.portal.port})"

    @classmethod
    def from_login(
        cls,
        result: LoginResult,
        *,
        portal: Portal,
        lun: int = 0,
        credentials: Credentials | None = None,
        iface: str = "default",
        default_tpgt: int = 1,
    ) -> HeldSession:
        """The session a finished login of a normal session opened at `portal`, with the credentials it used.
        A target that declares no TargetPortalGroupTag gets `default_tpgt`."""
        if result.target_name is None:
            raise LocalProtocolError("held session: a discovery session is never handed to the kernel")
        tpgt = result.target_portal_group_tag
        return cls(
            target=result.target_name,
            portal=portal,
            tpgt=default_tpgt if tpgt is None else tpgt,
            initiator_name=result.initiator_name,
            isid=result.isid,
            tsih=result.tsih,
            lun=lun,
            header_digest=result.header_digest,
            data_digest=result.data_digest,
            credentials=credentials,
            iface=iface,
        )

    def relogged(self, result: LoginResult) -> HeldSession:
        """This kernel session after `result`, a re-login of it: the new TSIH (and whatever else it settled), the
        same kernel numbers; the TPGT stays ours when the target declares none."""
        again = HeldSession.from_login(
            result, portal=self.portal, lun=self.lun, credentials=self.credentials, iface=self.iface,
            default_tpgt=self.tpgt,
        )  # fmt: skip
        return replace(again, sid=self.sid, host_no=self.host_no, cid=self.cid)

    def to_json(self) -> dict[str, Any]:
        """The sessions file's record of it: CHAP user names, never a secret."""
        creds = self.credentials
        return {
            "target": self.target,
            "address": self.portal.address,
            "port": self.portal.port,
            "tpgt": self.tpgt,
            "lun": self.lun,
            "sid": self.sid,
            "host_no": self.host_no,
            "isid": self.isid.hex(),
            "tsih": self.tsih,
            "initiator_name": self.initiator_name,
            "header_digest": self.header_digest,
            "data_digest": self.data_digest,
            "username": None if creds is None else creds.chap.username,
            "username_in": None if creds is None or creds.reverse is None else creds.reverse.username,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], secrets: Secrets | None = None) -> HeldSession:
        """Back from `to_json()`'s shape (every key present: the caller checks). The file holds no secret:
        `secrets` supplies the credentials; without it the session has none."""
        try:
            session = cls(
                target=data["target"],
                portal=Portal(data["address"], data["port"]),
                tpgt=data["tpgt"],
                initiator_name=data["initiator_name"],
                isid=bytes.fromhex(data["isid"]),
                tsih=data["tsih"],
                lun=data["lun"],
                header_digest=data["header_digest"],
                data_digest=data["data_digest"],
                sid=data["sid"],
                host_no=data["host_no"],
            )
        except (TypeError, ValueError) as exc:
            raise BadInputError("sessions", None, f"session record: {exc}") from None
        if secrets is None:
            return session
        return replace(session, credentials=secrets(session, data["username"], data["username_in"]))
