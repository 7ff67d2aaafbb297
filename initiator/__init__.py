"""pyiscsi's iSCSI initiator: a sans-I/O protocol core with thin drivers for sockets and NETLINK_ISCSI."""

__version__ = "0.1.0"
