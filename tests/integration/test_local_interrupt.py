"""Ctrl-C during 'local up', at every phase of the start: nothing of that twin may be left running.

A process "of the twin" is found the way a user would find it, not from the state folder alone (which is
exactly what an escaped supervisor is missing from): any process on this machine whose command line names
a file of the twin's state folder (the supervisor, Envoy, the DNS server, the ALB), or whose Lambda Runtime
API is an address of the twin's /24 (the ALB's runtimes). Its ports must be free too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.local.process import ProcessId
from meshbridge.local.twin import UP_PHASES, LocalTwin, StartInterrupted
from meshbridge.spec import load_bridge

pytestmark = pytest.mark.integration
SEED_COMPONENTS = 5  # dns, three Envoys, the ALB


def _seed(tmp: Path) -> Path:
    for name in SEED_FILES:
        (tmp / name).write_text(seed_text(name))
    return tmp / "bridge.yaml"


def twin_processes(state_dir: Path) -> list[str]:
    """Every live process of the twin kept in ``state_dir`` (pid and command line)."""
    root = str(state_dir.resolve() / "local")
    try:
        subnet = json.loads((state_dir / "local" / "plan.json").read_text())["subnet"]
        runtime_api = b"AWS_LAMBDA_RUNTIME_API=" + subnet.rsplit(".", 1)[0].encode() + b"."
    except OSError:
        runtime_api = None  # no plan: nothing can have been started
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (proc / "environ").read_bytes() if runtime_api else b""
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if not ProcessId.of(int(proc.name)).alive():
            continue  # a zombie runs nothing
        if root in argv or (runtime_api and runtime_api in environ):
            found.append(f"{proc.name}: {argv.strip()}")
    return found


def twin_ports(state_dir: Path) -> set[tuple[str, int, bool]]:
    """(address, port, udp) of every socket the twin binds: from its plan, and from the ports 'local up'
    recorded for each component (listeners included)."""
    try:
        plan = json.loads((state_dir / "local" / "plan.json").read_text())
        components = json.loads((state_dir / "local" / "supervisor.json").read_text())["components"]
    except OSError:
        return set()
    wanted = {
        (ip, int(port), udp)
        for ip, port in (a.rsplit(":", 1) for a in plan["dns_servers"].values())
        for udp in (True, False)
    }
    wanted |= {(ip, int(port), False) for ip, port in (p["admin"].rsplit(":", 1) for p in plan["proxies"].values())}
    wanted |= {(a["address"], x["port"], False) for a in plan["albs"] for x in a["listeners"]}
    wanted |= {(p["address"], p["port"], False) for c in components for p in c["info"]["ports"]}
    return wanted


def busy_ports(state_dir: Path) -> list[str]:
    """The twin's addresses and ports that something still holds."""
    wanted = sorted(twin_ports(state_dir))
    busy = []
    for ip, port, udp in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
            if not udp:  # TIME_WAIT holds nothing; on UDP it would share the port with a server that sets it too
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((ip, int(port)))
            except OSError:
                busy.append(f"{ip}:{port}/{'udp' if udp else 'tcp'}")
    return busy


def recorded_alive(state_dir: Path) -> list[int]:
    """The pids the state folder records (status.json, supervisor.pid) that are still alive."""
    local = state_dir / "local"
    records: list[dict[str, int]] = []
    with contextlib.suppress(OSError, KeyError):
        status = json.loads((local / "status.json").read_text())
        records += [status["supervisor"], *status["components"]]
    with contextlib.suppress(OSError):
        records.append(json.loads((local / "supervisor.pid").read_text()))
    return [r["pid"] for r in records if r.get("pid") and ProcessId(r["pid"], r.get("started")).alive()]


def assert_nothing_runs(state_dir: Path) -> None:
    assert twin_processes(state_dir) == []
    assert recorded_alive(state_dir) == []
    assert busy_ports(state_dir) == []
    time.sleep(1.0)  # a supervisor that escaped would have started its DNS server and its Envoys by now
    assert twin_processes(state_dir) == []
    assert busy_ports(state_dir) == []


def test_a_start_that_is_not_interrupted_passes_every_phase_and_the_checks_see_it_run(tmp_path: Path) -> None:
    """The negative twin: the same checks fail on a running twin, so they can tell."""
    file = _seed(tmp_path)
    state = tmp_path / ".meshbridge"
    twin = LocalTwin(load_bridge(file), file, state)
    seen: list[str] = []
    try:
        twin.up(checkpoint=seen.append)
        assert seen == [*UP_PHASES, *["ready"] * (SEED_COMPONENTS - 1)]
        assert len(twin_processes(state)) >= 1 + SEED_COMPONENTS  # the supervisor, components, runtimes
        assert len(recorded_alive(state)) == 1 + SEED_COMPONENTS + 1  # supervisor.pid and status.json agree
        assert len(busy_ports(state)) == len(twin_ports(state)) == 2 * 2 + 3 * 2 + 2  # DNS udp+tcp, Envoys, ALB
    finally:
        twin.down()
    assert_nothing_runs(state)


@pytest.mark.parametrize(
    ("phase", "nth"),
    [*((p, 1) for p in UP_PHASES), ("ready", SEED_COMPONENTS)],
    ids=[*UP_PHASES, "all-ready"],
)
def test_an_interrupted_start_leaves_nothing_running(phase: str, nth: int, tmp_path: Path) -> None:
    file = _seed(tmp_path)
    state = tmp_path / ".meshbridge"
    twin = LocalTwin(load_bridge(file), file, state)
    seen: list[str] = []

    def interrupt_at(current: str) -> None:
        seen.append(current)
        if current == phase and seen.count(phase) == nth:
            raise KeyboardInterrupt

    try:
        with pytest.raises(StartInterrupted) as interrupted:
            twin.up(checkpoint=interrupt_at)
        assert interrupted.value.left == []
        spawned = UP_PHASES.index(phase) >= UP_PHASES.index("started")
        assert (interrupted.value.stopped > 0) == spawned
        assert_nothing_runs(state)
        assert not twin.running()
    finally:
        twin.down()


@pytest.mark.parametrize(
    ("line", "delay"),
    [("topology ", 0.0), ("started ", 0.0), ("started ", 0.15), ("  ready: ", 0.0)],
    ids=["configuring", "spawned", "starting", "first-ready"],
)
def test_ctrl_c_during_local_up_stops_everything_and_says_so(line: str, delay: float, tmp_path: Path) -> None:
    """The user's path: a real SIGINT to the CLI process while it starts the twin."""
    file = _seed(tmp_path)
    state = tmp_path / ".meshbridge"
    proc = subprocess.Popen(
        [sys.executable, "-c", "from meshbridge.cli.main import run; run()", "local", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "COLUMNS": "100"},
    )
    try:
        assert proc.stderr is not None
        lines = []
        while not (lines and lines[-1].startswith(line)):
            lines.append(proc.stderr.readline())
            assert lines[-1], f"'local up' ended before printing {line!r}: {lines}"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=60)
        said = "".join(lines) + rest
        assert proc.returncode == 130, said
        assert "Traceback" not in said and "still run" not in said
        # 'topology' comes before the supervisor is spawned: the signal may land before it or after
        stopped = "interrupted: stopped the " in said and "none is left" in said
        assert stopped or (line == "topology " and "interrupted before any process was started" in said), said
        assert_nothing_runs(state)
    finally:
        if proc.poll() is None:
            proc.kill()
        LocalTwin(load_bridge(file), file, state).down()


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGHUP, 129, "terminated (SIGHUP)"),
        (signal.SIGINT, 130, "interrupted"),
    ],
    ids=["sigterm", "sighup", "ctrl-c"],
)
def test_demo_stopped_by_a_signal_stops_its_twin_and_removes_its_folder(
    signum: signal.Signals, code: int, said: str, tmp_path: Path
) -> None:
    """CI's cancel and ``timeout`` send SIGTERM, a closed terminal SIGHUP: the same clean-up as Ctrl-C (its
    twin stopped, its temporary folder with both meshes' CA keys removed), not the default death that leaves
    the whole twin running."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from meshbridge.cli.main import run; run()", "demo"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    try:
        assert proc.stderr is not None
        line = ""
        while not line.startswith("started "):
            line = proc.stderr.readline()
            assert line, "'demo' ended before it started its twin"
        (work,) = tmp_path.glob("meshbridge-demo-*")
        assert list(work.glob(".meshbridge/pki/*/ca.key"))  # the negative twin: there is something to remove
        proc.send_signal(signum)
        _, rest = proc.communicate(timeout=60)
        assert proc.returncode == code and rest.strip().endswith(said) and "Traceback" not in rest, rest
        assert not work.exists()
        assert_nothing_runs(work / ".meshbridge")
    finally:
        if proc.poll() is None:
            proc.kill()
