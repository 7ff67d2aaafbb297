"""The initramfs has no TLS: this stands in for the stdlib's `ssl`, so the tree carries no OpenSSL.

asyncio and pyroute2 (its probe messages) import `ssl` and name its exception types when they are imported;
pyiscsi never opens a TLS connection. The exception types exist so those imports work; every way into TLS
raises at once, naming what is missing."""

from __future__ import annotations

import enum
from typing import NoReturn

HAS_SNI = False
HAS_ALPN = False
OPENSSL_VERSION = "none (pyiscsi's frozen runtime carries no TLS)"


class SSLError(OSError):
    """Base of the TLS errors (as in the stdlib)."""


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    pass


CertificateError = SSLCertVerificationError


class VerifyMode(enum.IntEnum):
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2


CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = VerifyMode.CERT_NONE, VerifyMode.CERT_OPTIONAL, VerifyMode.CERT_REQUIRED


def _no_tls(*_args: object, **_kwargs: object) -> NoReturn:
    raise SSLError("TLS is not available: pyiscsi's frozen runtime carries no ssl module")


class SSLContext:
    """Cannot be made: there is no TLS here."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_tls()


class SSLObject:
    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_tls()


class SSLSocket:
    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_tls()


class MemoryBIO:
    def __init__(self, *args: object, **kwargs: object) -> None:
        _no_tls()


create_default_context = _no_tls
wrap_socket = _no_tls
