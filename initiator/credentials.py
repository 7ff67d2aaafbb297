"""CHAP credentials: the one shape every layer passes around (plan, command line, login, kernel, node records).

    Chap(username, password: Secret)          one CHAP identity
    Credentials(chap, reverse=None)           what a login authenticates with: `chap` is how the target checks
                                              us (one-way); `reverse`, when given, how we check the target
                                              (mutual). `.mutual`; `Credentials.of(chap, reverse)` -> None or a
                                              pair, UsageError for a reverse identity alone.

Secrets are `initiator.secret.Secret` from the moment they are read, and are revealed only on the wire, in a
SET_PARAM payload or in a 0600 node record.
"""

from __future__ import annotations

from initiator.errors import BadInputError, UsageError
from initiator.record import record
from initiator.secret import REDACTED, Secret


@record
class Chap:
    """One CHAP identity: the name sent as CHAP_N and the secret the response is computed with."""

    username: str
    password: Secret

    def __post_init__(self) -> None:
        # a plain str here would print in a repr or a log line: refuse it where it is made
        if not isinstance(self.password, Secret):
            raise TypeError(f"Chap.password must be a Secret, not {type(self.password).__name__}")

    def to_json(self, show_secrets: bool = False) -> dict[str, str]:
        return {"username": self.username, "password": self.password.reveal() if show_secrets else REDACTED}


@record
class Credentials:
    """CHAP for one login: `chap` answers the target's challenge; `reverse` (mutual CHAP) is what the target
    must answer ours with."""

    chap: Chap
    reverse: Chap | None = None

    def __post_init__(self) -> None:
        if not self.chap.username:
            raise BadInputError("chap.username", self.chap.username, "must not be empty")
        if not self.chap.password:
            raise BadInputError("chap.password", None, "must not be empty")
        if self.reverse is not None and not self.reverse.password:
            raise BadInputError("chap.reverse_password", None, "must not be empty")

    @property
    def mutual(self) -> bool:
        return self.reverse is not None

    @classmethod
    def of(cls, chap: Chap | None, reverse: Chap | None = None) -> Credentials | None:
        """One-way and reverse identities as a login takes them: None without CHAP; reverse alone makes no sense."""
        if chap is None:
            if reverse is not None:
                raise UsageError("reverse (mutual) CHAP needs one-way CHAP credentials too")
            return None
        return cls(chap, reverse)
