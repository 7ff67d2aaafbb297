"""datetime, as the frozen tree carries it: the interpreter's C implementation (_datetime) alone.

The stdlib's datetime.py first defines its whole pure-Python implementation (every class and method, its
helpers and tables) and then replaces it with _datetime's, which always exists in the interpreters we freeze.
pyudev imports datetime when imported; on one TCG vCPU the pure-Python half costs about 50 ms of every boot.
The names are the same objects as the stdlib module ends up with, datetime_CAPI (which C extensions import
through this module) included.
"""

from _datetime import (  # noqa: F401  (datetime_CAPI: what C extensions import through this module)
    MAXYEAR,
    MINYEAR,
    UTC,
    __doc__,
    date,
    datetime,
    datetime_CAPI,
    time,
    timedelta,
    timezone,
    tzinfo,
)

__all__ = ("MAXYEAR", "MINYEAR", "UTC", "date", "datetime", "time", "timedelta", "timezone", "tzinfo")
