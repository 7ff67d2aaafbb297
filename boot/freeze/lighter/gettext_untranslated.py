"""gettext, as the frozen tree carries it: every message comes back untranslated.

The tree carries no message catalogs (Python's own `.mo` files live outside it, and the initramfs sets no
language), so the stdlib's lookups always end in the untranslated text. They get there the long way: argparse
asks for a translation of each heading of every parser it builds, and each ask imports locale and looks for
catalogs in every language directory the environment names. That is a tenth of a by-hand `pyiscsi discover`."""

from __future__ import annotations

import builtins
import errno

__all__ = [
    "Catalog",
    "GNUTranslations",
    "NullTranslations",
    "bindtextdomain",
    "dgettext",
    "dngettext",
    "dnpgettext",
    "dpgettext",
    "find",
    "gettext",
    "install",
    "ngettext",
    "npgettext",
    "pgettext",
    "textdomain",
    "translation",
]


def gettext(message: str) -> str:
    return message


def ngettext(msgid1: str, msgid2: str, n: int) -> str:
    return msgid1 if n == 1 else msgid2


def pgettext(context: str, message: str) -> str:
    return message


def npgettext(context: str, msgid1: str, msgid2: str, n: int) -> str:
    return ngettext(msgid1, msgid2, n)


def dgettext(domain: str, message: str) -> str:
    return message


def dngettext(domain: str, msgid1: str, msgid2: str, n: int) -> str:
    return ngettext(msgid1, msgid2, n)


def dpgettext(domain: str, context: str, message: str) -> str:
    return message


def dnpgettext(domain: str, context: str, msgid1: str, msgid2: str, n: int) -> str:
    return ngettext(msgid1, msgid2, n)


_domain = "messages"


def textdomain(domain: str | None = None) -> str:
    global _domain
    if domain is not None:
        _domain = domain
    return _domain


def bindtextdomain(domain: str, localedir: str | None = None) -> str | None:
    return localedir


def find(domain: str, localedir: str | None = None, languages: object = None, all: bool = False) -> object:
    """No catalog is ever found, as the stdlib's answers where there are none."""
    return [] if all else None


class NullTranslations:
    """What the stdlib falls back to without a catalog: the message itself."""

    def __init__(self, fp: object = None) -> None:
        self._fallback = None

    def add_fallback(self, fallback: object) -> None:
        self._fallback = fallback  # type: ignore[assignment]

    def gettext(self, message: str) -> str:
        return message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return ngettext(msgid1, msgid2, n)

    def pgettext(self, context: str, message: str) -> str:
        return message

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return ngettext(msgid1, msgid2, n)

    def info(self) -> dict[str, str]:
        return {}

    def charset(self) -> None:
        return None

    def install(self, names: object = None) -> None:
        builtins._ = self.gettext  # type: ignore[attr-defined]


class GNUTranslations(NullTranslations):
    """A catalog file's reader: the tree reads none."""

    def __init__(self, fp: object = None) -> None:
        raise OSError("pyiscsi's frozen runtime reads no message catalogs")


def translation(
    domain: str, localedir: str | None = None, languages: object = None, class_: object = None, fallback: bool = False
) -> NullTranslations:
    if fallback:
        return NullTranslations()
    raise FileNotFoundError(errno.ENOENT, "No translation file found for domain", domain)


def install(domain: str, localedir: str | None = None, *, names: object = None) -> None:
    translation(domain, localedir, fallback=True).install(names)


Catalog = translation
