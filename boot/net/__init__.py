"""Network bring-up for the boot: links, IPv4 (static, DHCPv4), IPv6 (static with DAD, SLAAC), DNS, state.

Every wait is bounded by a named Deadline (names from boot.plan.Timeouts); the entry point is
`boot.net.bringup.bring_up`.
"""
