"""Login status codes (RFC 7143 11.13.5) with readable names, and the typed errors a refused login raises.

A message reads like `authentication failed (0x0201)`: the words for a person, the code for a search engine.
Redirects (class 1) are not errors: `login.py` turns them into a Redirect event.

Public API
    LoginStatus (IntCode of the 16-bit class<<8|detail), status_code(cls, detail) -> int, describe(code) -> str
    LoginRejected(IscsiError)(code, target=None): .code, .status_class, .status_detail
        InitiatorError (class 2): AuthenticationFailed 0x0201, AuthorizationFailed 0x0202, TargetNotFound 0x0203,
            TargetRemoved 0x0204, UnsupportedVersion 0x0205, TooManyConnections 0x0206, MissingParameter 0x0207,
            CannotIncludeInSession 0x0208, SessionTypeNotSupported 0x0209, SessionDoesNotExist 0x020a,
            InvalidDuringLogin 0x020b
        TargetError (class 3): ServiceUnavailable 0x0301, OutOfResources 0x0302
    login_error(code, target=None) -> LoginRejected   the most specific subclass for a code
"""

from __future__ import annotations

from initiator.codes import IntCode
from initiator.errors import IscsiError


class LoginStatus(IntCode):
    SUCCESS = 0x0000
    TARGET_MOVED_TEMPORARILY = 0x0101
    TARGET_MOVED_PERMANENTLY = 0x0102
    INITIATOR_ERROR = 0x0200
    AUTHENTICATION_FAILED = 0x0201
    AUTHORIZATION_FAILED = 0x0202
    NOT_FOUND = 0x0203
    TARGET_REMOVED = 0x0204
    UNSUPPORTED_VERSION = 0x0205
    TOO_MANY_CONNECTIONS = 0x0206
    MISSING_PARAMETER = 0x0207
    CANNOT_INCLUDE_IN_SESSION = 0x0208
    SESSION_TYPE_NOT_SUPPORTED = 0x0209
    SESSION_DOES_NOT_EXIST = 0x020A
    INVALID_DURING_LOGIN = 0x020B
    TARGET_ERROR = 0x0300
    SERVICE_UNAVAILABLE = 0x0301
    OUT_OF_RESOURCES = 0x0302


_WORDS = {
    LoginStatus.SUCCESS: "success",
    LoginStatus.TARGET_MOVED_TEMPORARILY: "target moved temporarily",
    LoginStatus.TARGET_MOVED_PERMANENTLY: "target moved permanently",
    LoginStatus.INITIATOR_ERROR: "initiator error",
    LoginStatus.AUTHENTICATION_FAILED: "authentication failed",
    LoginStatus.AUTHORIZATION_FAILED: "authorization failed",
    LoginStatus.NOT_FOUND: "target not found",
    LoginStatus.TARGET_REMOVED: "target removed",
    LoginStatus.UNSUPPORTED_VERSION: "unsupported iSCSI version",
    LoginStatus.TOO_MANY_CONNECTIONS: "too many connections",
    LoginStatus.MISSING_PARAMETER: "missing parameter",
    LoginStatus.CANNOT_INCLUDE_IN_SESSION: "cannot include in session",
    LoginStatus.SESSION_TYPE_NOT_SUPPORTED: "session type not supported",
    LoginStatus.SESSION_DOES_NOT_EXIST: "session does not exist",
    LoginStatus.INVALID_DURING_LOGIN: "invalid request during login",
    LoginStatus.TARGET_ERROR: "target error",
    LoginStatus.SERVICE_UNAVAILABLE: "service unavailable",
    LoginStatus.OUT_OF_RESOURCES: "target out of resources",
}

_CLASS_WORDS = {0: "success", 1: "redirection", 2: "initiator error", 3: "target error"}


def status_code(status_class: int, status_detail: int) -> int:
    return (status_class << 8) | status_detail


def describe(code: int) -> str:
    """`authentication failed (0x0201)`; unknown codes are named by their class."""
    try:
        words = _WORDS[LoginStatus(code)]
    except ValueError:
        words = f"unknown status of class {_CLASS_WORDS.get(code >> 8, code >> 8)}"
    return f"{words} (0x{code:04x})"


class LoginRejected(IscsiError):
    """The target ended the login with a non-zero, non-redirect status."""

    def __init__(self, code: int, target: str | None = None) -> None:
        self.code = code
        self.status_class = code >> 8
        self.status_detail = code & 0xFF
        self.target = target
        where = f"target {target!r}: " if target else ""
        super().__init__(f"{where}login refused: {describe(code)}")


class InitiatorError(LoginRejected):
    """Status class 2: the target blames the initiator (our request or our credentials)."""


class TargetError(LoginRejected):
    """Status class 3: the target cannot serve the login now."""


class AuthenticationFailed(InitiatorError):
    pass


class AuthorizationFailed(InitiatorError):
    pass


class TargetNotFound(InitiatorError):
    pass


class TargetRemoved(InitiatorError):
    pass


class UnsupportedVersion(InitiatorError):
    pass


class TooManyConnections(InitiatorError):
    pass


class MissingParameter(InitiatorError):
    pass


class CannotIncludeInSession(InitiatorError):
    pass


class SessionTypeNotSupported(InitiatorError):
    pass


class SessionDoesNotExist(InitiatorError):
    pass


class InvalidDuringLogin(InitiatorError):
    pass


class ServiceUnavailable(TargetError):
    pass


class OutOfResources(TargetError):
    pass


_ERRORS: dict[int, type[LoginRejected]] = {
    LoginStatus.AUTHENTICATION_FAILED: AuthenticationFailed,
    LoginStatus.AUTHORIZATION_FAILED: AuthorizationFailed,
    LoginStatus.NOT_FOUND: TargetNotFound,
    LoginStatus.TARGET_REMOVED: TargetRemoved,
    LoginStatus.UNSUPPORTED_VERSION: UnsupportedVersion,
    LoginStatus.TOO_MANY_CONNECTIONS: TooManyConnections,
    LoginStatus.MISSING_PARAMETER: MissingParameter,
    LoginStatus.CANNOT_INCLUDE_IN_SESSION: CannotIncludeInSession,
    LoginStatus.SESSION_TYPE_NOT_SUPPORTED: SessionTypeNotSupported,
    LoginStatus.SESSION_DOES_NOT_EXIST: SessionDoesNotExist,
    LoginStatus.INVALID_DURING_LOGIN: InvalidDuringLogin,
    LoginStatus.SERVICE_UNAVAILABLE: ServiceUnavailable,
    LoginStatus.OUT_OF_RESOURCES: OutOfResources,
}


def login_error(code: int, target: str | None = None) -> LoginRejected:
    """The most specific error for a refusing status (class 2 or 3, or anything unexpected)."""
    cls = _ERRORS.get(code)
    if cls is None:
        cls = {2: InitiatorError, 3: TargetError}.get(code >> 8, LoginRejected)
    return cls(code, target)
