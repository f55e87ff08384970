"""The ports meshbridge hands its servers come from below the kernel's ephemeral range and are free."""

from __future__ import annotations

import socket

import pytest

from meshbridge import ports
from meshbridge.ports import UNRESERVED_LOW, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    start = ports._ephemeral_start()
    handed = free_ports(20)
    assert len(set(handed)) == 20
    if start - UNRESERVED_LOW >= 1000:
        assert all(UNRESERVED_LOW <= p < start for p in handed)
    for port in handed:
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))  # free on every address


def test_a_port_is_never_handed_out_twice() -> None:
    first = set(free_ports(50))
    assert not first & set(free_ports(50))


def test_a_taken_port_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        monkeypatch.setattr(ports, "UNRESERVED_LOW", port)
        monkeypatch.setattr(ports, "_ephemeral_start", lambda: port + 1000)
        monkeypatch.setattr(ports.random, "randrange", lambda low, high: low)  # always offers the taken port
        got = free_ports(1)
    assert got != [port]  # refused, then the kernel's choice


def test_no_room_below_the_range_falls_back_to_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ports, "_ephemeral_start", lambda: UNRESERVED_LOW + 10)
    (port,) = free_ports(1)
    assert port >= UNRESERVED_LOW + 10 or port < UNRESERVED_LOW
