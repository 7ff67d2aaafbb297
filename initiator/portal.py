"""Portals as users and targets write them: `ADDR`, `ADDR:PORT`, `[v6]`, `[v6]:PORT`; port 3260 by default.

A bare IPv6 address without brackets is accepted when it cannot be mistaken for `addr:port` (it has more than
one colon), as iscsiadm does. Host names are accepted (RFC 7143 lets TargetAddress carry a domain name).
"""

from __future__ import annotations

import _socket  # socket.py's IntEnums and selectors are no import of a by-hand `pyiscsi discover` (transport.py)

from initiator.alphabet import DIGITS, LDH, is_host_name, is_run_of, within
from initiator.errors import BadInputError
from initiator.numbers import ascii_int
from initiator.record import record

DEFAULT_PORT = 3260
MAX_SCOPE = 15  # an interface name (IFNAMSIZ less its NUL) or number
_SCOPE = LDH | {"_", ".", "@"}


@record
class Portal:
    """Where a target listens. `address` is an IP literal (no brackets, v6 scope kept) or a host name."""

    address: str
    port: int = DEFAULT_PORT

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.address

    def host_text(self) -> str:
        """The address as it goes before `:port`: IPv6 in brackets."""
        return f"[{self.address}]" if self.is_ipv6 else self.address

    def __str__(self) -> str:
        return f"{self.host_text()}:{self.port}"


def _port(text: str, whole: str, field: str) -> int:
    return ascii_int(text, field, 1, 65535, whole=whole, what="port")


def is_ipv4_address(text: str) -> bool:
    """Whether `text` is a dotted-quad IPv4 address as ipaddress.IPv4Address takes it (four decimal parts of 0-255,
    no leading zeros), which is then also its canonical form; inet_pton applies the same rules without the
    import of ipaddress on every `pyiscsi discover`."""
    try:
        _socket.inet_pton(_socket.AF_INET, text)
    except (OSError, ValueError, UnicodeError):
        return False
    return True


def _address(text: str, whole: str, field: str, *, v6: bool) -> str:
    if not text:
        raise BadInputError(field, whole, "no address")
    if v6:
        import ipaddress  # IPv6 only: an IPv4 portal (the usual one) is checked without it

        base, _, scope = text.partition("%")
        try:
            ipaddress.IPv6Address(base)
        except ValueError:
            raise BadInputError(field, whole, f"{base!r} is not an IPv6 address") from None
        if "%" in text and not is_run_of(scope, _SCOPE, 1, MAX_SCOPE):
            raise BadInputError(field, whole, f"IPv6 scope {scope!r} is not an interface name or number")
        return str(ipaddress.IPv6Address(base)) + (f"%{scope}" if scope else "")
    if is_ipv4_address(text):
        return text
    if within(text, DIGITS | {"."}) or not is_host_name(text):
        raise BadInputError(field, whole, f"{text!r} is neither an IP address nor a host name")
    return text


def parse_portal(text: str, default_port: int = DEFAULT_PORT, field: str = "portal") -> Portal:
    """`text` as a Portal; BadInputError naming `field` and the whole token otherwise."""
    whole = text
    text = text.strip()
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise BadInputError(field, whole, "'[' without a closing ']'")
        address = _address(text[1:close], whole, field, v6=True)
        rest = text[close + 1 :]
        if not rest:
            return Portal(address, default_port)
        if not rest.startswith(":"):
            raise BadInputError(field, whole, f"unexpected {rest!r} after ']'")
        return Portal(address, _port(rest[1:], whole, field))
    if text.count(":") > 1:
        return Portal(_address(text, whole, field, v6=True), default_port)
    host, colon, port = text.partition(":")
    address = _address(host, whole, field, v6=False)
    return Portal(address, _port(port, whole, field) if colon else default_port)
