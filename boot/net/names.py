"""Host and domain names a DHCP server hands out, checked before anything uses them.

A name goes into resolv.conf, the host name and the JSON record, so a bad one is dropped where it is parsed (with
a warning naming the option) rather than failing a boot later. The rule is RFC 1035's preferred syntax as RFC 1123
relaxed it (section 2.1): labels of 1-63 letters, digits and hyphens, not starting or ending with a hyphen; at
most 253 characters in all (255 octets on the wire, less the length bytes); one trailing dot allowed.
"""

from __future__ import annotations

import re

from initiator.printable import printable

MAX_NAME = 253
MAX_LABEL = 63
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


def name_problem(text: str) -> str | None:
    """Why `text` is not a usable host or domain name, or None if it is one."""
    name = text[:-1] if text.endswith(".") else text
    if not name:
        return "empty"
    if len(name) > MAX_NAME:
        return f"{len(name)} characters, more than {MAX_NAME}"
    for label in name.split("."):
        if not label:
            return "an empty label (two dots in a row, or a leading dot)"
        if len(label) > MAX_LABEL:
            return f"a label of {len(label)} characters, more than {MAX_LABEL}"
        if not _LABEL.fullmatch(label):
            return f"label '{printable(label)}' is not letters, digits and inner hyphens"
    return None


def checked_name(text: str) -> str:
    """`text` without its trailing dot; the caller has made sure `name_problem(text)` is None."""
    return text[:-1] if text.endswith(".") else text
