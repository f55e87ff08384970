"""One question about addresses that several layers ask."""

from __future__ import annotations

import ipaddress


def is_ip(value: str) -> bool:
    """True when ``value`` is an IPv4 or IPv6 address (not a host name)."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
