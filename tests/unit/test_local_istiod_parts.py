"""The pieces of the control-plane twin that need no Go (:mod:`meshbridge.local.istiod_twin`,
:mod:`meshbridge.local.podfs`): the port check before a start, and a pod's view of ``/etc``. The whole mode runs in
``tests/cluster/test_local_istiod.py``."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from meshbridge.local.istiod_twin import _bindable, _wildcard_listeners
from meshbridge.local.podfs import main as podfs


def _listening(address: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 0))
    s.listen()
    return s


def test_a_wildcard_listener_holds_its_port_for_a_gateway() -> None:
    with _listening("0.0.0.0") as held:
        port = held.getsockname()[1]
        wildcards = _wildcard_listeners()
        assert port in wildcards
        assert not _bindable("0.0.0.0", port, wildcards)
    assert _bindable("0.0.0.0", port, _wildcard_listeners())


def test_a_listener_on_its_own_address_leaves_the_wildcard_to_a_gateway() -> None:
    """The twin of the test above: another twin's Envoy on its own loopback address does not hold the port for the
    wildcard (a connection goes to the listener of its exact address first), but it does hold its own address."""
    with _listening("127.0.0.1") as held:
        port = held.getsockname()[1]
        wildcards = _wildcard_listeners()
        assert port not in wildcards
        assert _bindable("0.0.0.0", port, wildcards)
        assert not _bindable("127.0.0.1", port, wildcards)


def test_podfs_without_a_command_prints_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert podfs(["--bind", "a=b"]) == 2
    assert "usage: python -m meshbridge.local.podfs" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_podfs_shows_the_command_its_file_and_the_host_its_own(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 127.9.9.53\n")
    command = [sys.executable, "-m", "meshbridge.local.podfs", "--bind", f"{resolv}=/etc/resolv.conf", "--"]
    seen = subprocess.run([*command, "/bin/cat", "/etc/resolv.conf"], capture_output=True, text=True, check=True)
    assert seen.stdout == "nameserver 127.9.9.53\n"
    assert Path("/etc/resolv.conf").read_text() != seen.stdout  # the host's file is untouched


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root")
def test_podfs_refuses_a_missing_file_with_exit_3(tmp_path: Path) -> None:
    """The twin: a bind of a file that does not exist fails before the command runs, with the configuration-error
    exit the supervisor does not restart."""
    command = [sys.executable, "-m", "meshbridge.local.podfs", "--bind", f"{tmp_path / 'none'}=/etc/resolv.conf"]
    done = subprocess.run([*command, "--", "/bin/true"], capture_output=True, text=True)
    assert done.returncode == 3
    assert "bind-mounting" in done.stderr and "No such file" in done.stderr
