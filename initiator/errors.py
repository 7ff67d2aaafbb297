"""The one exception hierarchy of pyiscsi.

Every error carries the exit status the command-line contract gives it, and a message that names the field
(or the wait, or the peer) and the offending value, so the console line alone tells a user what went wrong.
Secrets never go into a message: pass a `Secret`, whose str() is '***'.
"""

from __future__ import annotations

from initiator.codes import IntCode

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from enum import Enum  # boot's DHCP clients name their own (stdlib) states and events in one

    from initiator.codes import Code


class ExitStatus(IntCode):
    OK = 0
    USAGE = 1
    BAD_INPUT = 2
    NETWORK = 3
    ISCSI_REFUSED = 4
    TIMEOUT = 5


class PyiscsiError(Exception):
    """Root of every error pyiscsi raises on purpose."""

    exit_status: ExitStatus = ExitStatus.BAD_INPUT


class UsageError(PyiscsiError):
    """The caller asked for something that makes no sense (bad option combination)."""

    exit_status = ExitStatus.USAGE


class BadInputError(PyiscsiError):
    """Input we were handed is wrong: an iBFT, a command line, a config file. Names the field."""

    exit_status = ExitStatus.BAD_INPUT

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {value!r})" if value is not None else f"{field}: {reason}")


class IbftError(BadInputError):
    """A corrupt or inconsistent iBFT."""


class CmdlineError(BadInputError):
    """A malformed kernel command-line option."""


class NetworkError(PyiscsiError):
    """No link, no address, no route, connection refused or reset."""

    exit_status = ExitStatus.NETWORK


class IscsiError(PyiscsiError):
    """The iSCSI peer refused us or misbehaved."""

    exit_status = ExitStatus.ISCSI_REFUSED


class RemoteProtocolError(IscsiError):
    """The target sent something RFC 7143 does not allow; the connection is unusable afterwards."""


class Md5FallbackAdvised(IscsiError):
    """The target refused a login in which we offered or used a CHAP hash stronger than MD5: one more login
    offering MD5 alone may succeed (`initiator.chap.with_md5_fallback` makes it). `refusal` is the target's own
    typed refusal, what a caller sees when no retry is left; the message is its message."""

    def __init__(self, refusal: PyiscsiError) -> None:
        self.refusal = refusal
        self.exit_status = refusal.exit_status
        super().__init__(str(refusal))


class RemoteValueError(RemoteProtocolError):
    """A value the target sent is malformed or out of range. Names the key or field, like BadInputError."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"{field}: {reason} (got {value!r})" if value is not None else f"{field}: {reason}")


class LocalProtocolError(PyiscsiError):
    """We drove a protocol object in a way its state does not allow (a bug in the caller)."""

    exit_status = ExitStatus.BAD_INPUT


class IllegalTransition(LocalProtocolError):
    """A state machine got an event its transition table has no line for in its current state. Names both."""

    def __init__(self, machine: str, state: Code | Enum, event: Code | Enum, message: str | None = None) -> None:
        self.machine = machine
        self.state = state
        self.event = event
        super().__init__(message or f"{machine}: {event.value} is not allowed while {state.value}")


class WaitTimeout(PyiscsiError):
    """A bounded wait ran out. Names the wait and its bound."""

    exit_status = ExitStatus.TIMEOUT

    def __init__(self, wait: str, bound: float, detail: str = "") -> None:
        self.wait = wait
        self.bound = bound
        text = f"wait '{wait}' ran out after {bound:g}s"
        super().__init__(f"{text}: {detail}" if detail else text)
