"""Loopback ports for the servers meshbridge starts on this machine (the test clusters, the local control plane).

A port handed out here is bound later, often seconds later, by another process (etcd, an API server, an Envoy
started by pilot-agent). A port the kernel picks for ``bind(port 0)`` comes from the ephemeral range
(``net.ipv4.ip_local_port_range``), which is also where every outgoing connection takes its local port: on a
machine busy with API servers, istiods and Envoys, one of their connections may take the port in between, and the
server's bind then fails with "Address already in use". So the ports come from below the ephemeral range, where
the kernel never picks a port on its own: drawn at random, checked free on every address, and never handed out
twice by one process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
UNRESERVED_LOW = 20000
"""The lowest port handed out: above the well-known servers' ports (Istio's 15000–15090 among them)."""
_handed: set[int] = set()


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports, free on every address a moment ago, below the kernel's ephemeral range.

    Where that range leaves too little room under it (it starts below ``UNRESERVED_LOW + 1000``), the kernel's
    own choice, as ``bind(port 0)`` makes it.
    """
    low, high = UNRESERVED_LOW, _ephemeral_start()
    if high - low < 1000:
        return _kernel_ports(count)
    chosen: list[int] = []
    for _ in range(100 * count):
        if len(chosen) == count:
            break
        port = random.randrange(low, high)
        if port not in _handed and _bindable(port):
            _handed.add(port)
            chosen.append(port)
    return chosen + _kernel_ports(count - len(chosen))


def _ephemeral_start() -> int:
    """The first port of the kernel's ephemeral range (32768 when the range cannot be read)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _bindable(port: int) -> bool:
    """No socket holds ``port`` on any address (a listener, a connection, or one in TIME_WAIT)."""
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _kernel_ports(count: int) -> list[int]:
    """``count`` distinct loopback ports the kernel picked for ``bind(port 0)``."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()
