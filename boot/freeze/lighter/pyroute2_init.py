"""pyroute2's package init, as the frozen tree carries it.

The library's own `pyroute2/__init__.py` imports every public class it has (NDB and its sqlite3, conntrack,
wireless, plan9, ...) whenever any pyroute2 module is imported; 0.7.2's also reads its distribution's entry
points, which no frozen tree has. pyiscsi imports the modules it uses by their own names
(`pyroute2.iproute.linux`, `pyroute2.netlink.exceptions`), so this init only sets what the package's modules
read from it: the version and the library's logger."""

try:
    from pyroute2.config.version import __version__
except ImportError:
    __version__ = "unknown"

from pyroute2.config import log  # noqa: F401  (the package's logger, set up where the library expects it)
