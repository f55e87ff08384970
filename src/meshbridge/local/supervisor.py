"""The local twin's supervisor: starts, health-checks and restarts components; stops them all on SIGTERM.

``python -m meshbridge.local.supervisor <state>/local/supervisor.json`` runs detached from the CLI. It
writes ``status.json`` beside its config (atomically, on every change): per component its pid and start
time, address, readiness, restarts and last exit code. A component that exits is restarted (what it started, left
in its process group, is killed first, as a container's processes end with it) with a
backoff (0.2 s doubling to 5 s), except one that exits with code 3 (its configuration cannot work, e.g. a
Lambda handler that fails its init check): it stays down and its status says ``failed``. SIGTERM or SIGINT
stops every component (SIGTERM, then SIGKILL after 5 s) and the supervisor. SIGHUP adds the components the
config names that it does not run yet (a start in stages: the control-plane twin adds istiod and the proxies
once the API servers it configures through are up, :mod:`meshbridge.local.istiod_twin`). Children die with the
supervisor even if it is killed (``PR_SET_PDEATHSIG``).

Readiness probes: ``envoy`` (admin ``/server_info`` says LIVE and names this component's own bootstrap,
then :mod:`meshbridge.local.readiness`: every listener, cluster, route configuration and secret it was given
was accepted, nothing warms, no secret is waited for), ``http`` (GET, expect 200), ``tcp`` (connect), ``dns``
(a query answers). ``status.json`` says for each component whether it is ``live`` (its probe answers) and
``ready``, and for an Envoy that is live but not ready its ``problems`` (each resource, what became of it
and Envoy's own message). A component with ``after`` starts once those components are ready (the proxies
resolve names at start, so they wait for the DNS server).
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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshbridge.fsutil import write_atomic
from meshbridge.local.process import ProcessId, spawn, stop
from meshbridge.local.readiness import EnvoyProbe, Problem

CONFIG_ERROR_EXIT = 3  # a component that exits with it cannot start with its configuration: never restarted
POLL_S = 0.1  # how often exits are noticed (a crash is restarted within this, plus its backoff)
PROBE_S = 0.25  # readiness probe period until a component is ready
READY_PROBE_S = 1.0  # and once it is: idle probing stays under 1 % of a core
MAX_BACKOFF_S = 5.0


@dataclass
class Component:
    """One supervised process and what is known of it."""

    name: str
    argv: list[str]
    log: Path
    probe: dict[str, Any]
    address: str = ""
    cwd: str | None = None
    env: dict[str, str] | None = None
    after: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    pid: ProcessId | None = None
    ready: bool = False
    restarts: int = 0
    last_exit: int | None = None
    backoff: float = 0.2
    restart_at: float = 0.0
    last_probe: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    live: bool = False
    problems: list[Problem] = field(default_factory=list)
    envoy: EnvoyProbe | None = None

    def start(self) -> None:
        if self.probe["kind"] == "envoy":  # made before the spawn: its log is read from this run's first line
            self.envoy = EnvoyProbe(self.probe["admin"], self.log)
        self.proc = spawn(self.argv, log=self.log, cwd=Path(self.cwd) if self.cwd else None, env=self.env)
        self.pid = ProcessId.of(self.proc.pid)
        self.ready = self.live = False
        self.problems = []

    def check(self) -> None:
        """Probe it: ``live`` when its probe answers; ``ready`` when live and, for an Envoy, it has taken every
        resource it was given (``problems`` lists what it has not)."""
        self.live = probe(self.probe)
        problems: list[Problem] = []
        if self.live and self.envoy is not None:
            try:
                problems = self.envoy.problems()
            except (OSError, ValueError):  # the admin interface stopped answering between the two reads
                self.live = False
        self.problems = problems
        self.ready = self.live and not problems

    @property
    def failed(self) -> bool:
        """Whether it exited with :data:`CONFIG_ERROR_EXIT`: restarting would fail the same way."""
        return self.proc is None and self.last_exit == CONFIG_ERROR_EXIT

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "failed": self.failed,
            "address": self.address,
            "pid": self.pid.pid if self.pid else None,
            "started": self.pid.started if self.pid else None,
            "ready": self.ready,
            "live": self.live,
            "problems": [p.to_dict() for p in self.problems],
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "log": str(self.log),
            **self.info,
        }


def probe(spec: dict[str, Any]) -> bool:
    """Run one probe (``envoy``, ``http``, ``tcp`` or ``dns``); True when it passes. For an Envoy this is only
    that it is LIVE: :meth:`Component.check` adds what makes it ready."""
    kind = spec["kind"]
    try:
        if kind == "http":
            with urllib.request.urlopen(spec["url"], timeout=0.5) as r:
                return bool(r.status == 200)
        if kind == "envoy":
            with urllib.request.urlopen(f"http://{spec['admin']}/server_info", timeout=0.5) as r:
                info = json.loads(r.read())
            return bool(
                info.get("state") == "LIVE"
                and info.get("command_line_options", {}).get("config_path") == spec["config_path"]
            )
        if kind == "tcp":
            with socket.create_connection((spec["host"], spec["port"]), timeout=0.5):
                return True
        if kind == "dns":
            from dnslib import DNSRecord

            DNSRecord.question(spec["name"]).send(spec["host"], spec["port"], timeout=0.5)
            return True
    except (OSError, urllib.error.URLError, ValueError, KeyError):
        return False
    return False


class Supervisor:
    """Runs the components of one topology."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.status_path = config_path.with_name("status.json")
        self.components: list[Component] = []
        self._add_new()
        self.stopping = False
        self.reload = False
        self.identity = ProcessId.of(os.getpid())
        self._last_written = ""

    def _add_new(self) -> None:
        """Read the config and add the components it names that are not supervised yet (the others stay as
        they run)."""
        known = {c.name for c in self.components}
        for c in json.loads(self.config_path.read_text())["components"]:
            if c["name"] not in known:
                self.components.append(
                    Component(
                        c["name"],
                        c["argv"],
                        Path(c["log"]),
                        c["probe"],
                        c.get("address", ""),
                        c.get("cwd"),
                        c.get("env"),
                        after=c.get("after", []),
                        info=c.get("info", {}),
                    )
                )

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_reload)
        self._write()
        while not self.stopping:
            if self.reload:
                self.reload = False
                self._add_new()
            now = time.monotonic()
            for c in self.components:
                self._tend(c, now)
            self._write()
            time.sleep(POLL_S)
        stop([c.pid for c in self.components if c.pid is not None])
        for c in self.components:
            if c.proc is not None:
                c.proc.poll()
            c.ready = c.live = False
        self._write(final=True)
        return 0

    def _tend(self, c: Component, now: float) -> None:
        if c.failed:
            return
        if c.proc is None:
            ready = {x.name for x in self.components if x.ready}
            if now >= c.restart_at and all(dep in ready for dep in c.after):
                if c.pid is not None:
                    c.restarts += 1
                c.start()
            return
        code = c.proc.poll()
        if code is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):  # what it started ends with it, as a
                os.killpg(c.proc.pid, signal.SIGKILL)  # container's processes do (a pilot-agent's Envoy)
            c.last_exit = code
            c.proc, c.ready, c.live, c.problems = None, False, False, []
            c.restart_at = now + c.backoff
            c.backoff = min(c.backoff * 2, MAX_BACKOFF_S)
            return
        if now - c.last_probe >= (READY_PROBE_S if c.ready else PROBE_S):
            c.last_probe = now
            was = c.ready
            c.check()
            if c.ready and not was:
                c.backoff = 0.2

    def _write(self, final: bool = False) -> None:
        me = {"pid": self.identity.pid, "started": self.identity.started, "running": not final}
        doc = {"supervisor": me, "components": [c.status() for c in self.components]}
        text = json.dumps(doc, indent=1)
        if text != self._last_written:
            write_atomic(self.status_path, text)
            self._last_written = text

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload = True


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m meshbridge.local.supervisor CONFIG.json``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m meshbridge.local.supervisor SUPERVISOR.json", file=sys.stderr)
        return 2
    return Supervisor(Path(args[0])).run()


if __name__ == "__main__":
    sys.exit(main())
