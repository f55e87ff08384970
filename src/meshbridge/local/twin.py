"""The local twin: plan, write, start, watch and stop the article's whole path on this machine.

``LocalTwin.up`` renders (or reads) each mesh's Istio configuration, translates it for every proxy,
writes the Envoy files, the DNS zones and the ALB configs, then starts the supervisor (detached) and waits
until every component is ready. ``down`` stops everything, also when the CLI or the supervisor was
killed. State lives under ``<state>/local/``: ``plan.json``, ``supervisor.json``, ``status.json``,
``supervisor.pid`` (written by ``up`` the moment it spawns the supervisor, so that an interrupted start can
stop it before it has written anything), a folder per component (xDS files, logs, the proxy's workload
certificate) and each mesh's own CA (``mesh-ca/``, :mod:`meshbridge.local.meshca`), so ISTIO_MUTUAL between a
mesh's proxies shakes hands as in a cluster. Certificates a Gateway or DestinationRule names as files in the pod
(``local up --cert PATH=FILE``) are copied to ``mounts/<mesh>/<path>`` and every proxy of that mesh reads them
there; a proxy that would read a file nobody gave stops the start before anything runs. A Ctrl-C at any point of
``up`` stops everything it had spawned (:class:`StartInterrupted`).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meshbridge import inputs
from meshbridge.envoy.binary import envoy_path
from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.names import SDS_CA_SUFFIX, credential_name, parse_sds_name, sds_ca_name, sds_name
from meshbridge.envoy.pathsim import Hop
from meshbridge.envoy.secrets import other_namespace, unlisted_secrets
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.errors import IstioConfigError, LambdaError, LocalError, RenderError, TranslateError
from meshbridge.fsutil import write_atomic
from meshbridge.ipaddr import is_ip
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.dns import cluster_dns, name_table
from meshbridge.istio.files import MountedFile, file_references, place_files
from meshbridge.istio.parse import load_documents, referenced_env
from meshbridge.istio.visibility import services, visible_services
from meshbridge.istiod.adopt import adopt
from meshbridge.istiod.oracle import IstiodConfig, ensure_oracle, istio_line, run_oracle
from meshbridge.istiod.request import build_request
from meshbridge.local import inotify
from meshbridge.local.certmanager import issuing_bridge, twin_credentials, twin_store
from meshbridge.local.curl import AppView
from meshbridge.local.exportpath import DEFAULT_PATH, ExportPath, export_paths, findings
from meshbridge.local.meshca import write_workload_certs
from meshbridge.local.plan import DNS_PORT, AlbPlan, LocalPlan, lb_address, plan_topology
from meshbridge.local.process import ProcessId, spawn, stop
from meshbridge.local.readiness import Problem
from meshbridge.local.waypoint import Waypoints, waypoint_config, waypoint_oracle, waypoints
from meshbridge.local.xds import drain_connections, swap_secrets, write_proxy_config
from meshbridge.pki import CertBundle, PkiStore, issue_ca, issue_leaf
from meshbridge.pki.x509 import parse_certificates, revoked_serials
from meshbridge.spec import Bridge
from meshbridge.spec.loader import read_backend_cas
from meshbridge.spec.models import Export
from meshbridge.world import workloads

OS_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem")
READY_TIMEOUT_S = 30.0
READY_SETTLE_S = 2.0
"""How long a live Envoy may keep a problem during 'up' before the start fails on it rather than waiting for
:data:`READY_TIMEOUT_S`: its files do not change during the start, so a rejection or a secret that never came
stays (Envoy's own wait for a missing resource, ``initial_fetch_timeout``, is 1 s)."""
SUPERVISOR_RECORD = "supervisor.pid"  # the supervisor's identity, written by 'up' as soon as it is spawned
FAILED_UP = "failed-up.json"
"""What the last 'local up' that failed after the twin last started was given (``--manifests``, ``--cert``,
``--no-access-log``) and its error's first line: a stopped twin's hints repeat that start, not the one before it."""
CONTROL_PLANE_DIR = "controlplane"
"""The folder of a twin on the real control plane (``local up --control-plane istiod``): its API servers' keys and
data, istiod's CA copy, the pods' tokens, the kubeconfig; removed by :meth:`TwinState.down`."""
UP_PHASES = ("certificates", "plan", "configuration", "supervisor", "started", "ready")
"""The phases of :meth:`LocalTwin.up`, in order, as its ``checkpoint`` receives them: ``supervisor`` comes just
before the supervisor is spawned, ``started`` just after (it may not have started any component yet), and
``ready`` once per component that becomes ready."""

Progress = Callable[[str], None]
Translator = Literal["meshbridge", "istiod"]
"""Whose configuration the twin's Envoys run: meshbridge's translation, or istiod's own (the oracle)."""


class StartInterrupted(KeyboardInterrupt):
    """``up`` was interrupted (Ctrl-C) and stopped what it had started.

    Attributes:
        stopped: how many processes of the twin were running and were stopped (0: none had started).
        left: the processes of the twin still alive after the stop (names with pids); empty unless a process
            refused to die.
    """

    def __init__(self, stopped: int, left: list[str]) -> None:
        super().__init__()
        self.stopped = stopped
        self.left = left


@dataclass(frozen=True)
class Port:
    """A port a component binds: ``address:port`` here, known as ``advertised`` in the meshes (the load
    balancer's 443 of a gateway that binds 8443, a port below 1024 moved up by 10 000 when not root).

    ``name``: ``dns``, ``admin``, a listener's name (``0.0.0.0_8443``), or an ALB listener's protocol.
    """

    name: str
    address: str
    port: int
    advertised: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "port": self.port, "advertised": self.advertised}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Port:
        return cls(str(d["name"]), str(d["address"]), int(d["port"]), int(d.get("advertised", d["port"])))


@dataclass(frozen=True)
class ComponentStatus:
    """One line of ``local status``.

    ``ready`` is the truth about the component: for an Envoy, LIVE *and* every listener, cluster, route
    configuration and secret it was given accepted, nothing warming, no secret waited for
    (:mod:`meshbridge.local.readiness`). ``live`` says only that its probe answers; ``problems`` says, for a
    live Envoy that is not ready, what it has not taken, with Envoy's own message.
    """

    name: str
    mesh: str
    kind: str
    address: str
    pid: int | None
    ready: bool
    restarts: int
    log: str
    last_exit: int | None = None
    ports: tuple[Port, ...] = ()  # empty for a twin started before ports were recorded
    live: bool = False
    problems: tuple[Problem, ...] = ()

    def ready_for(self, *, allow_missing_secrets: bool = False) -> bool:
        """Whether it is ready; with ``allow_missing_secrets``, also when it is live and its only problems are
        secrets that never came.

        The looser reading exists for one purpose: a scenario that starts a proxy *on purpose* without one of
        its secrets (the reliability suite's "missing at start": the egress must answer 503, never send plain
        text, and recover once the secret is pushed) needs to know when that proxy runs. Such a proxy is not
        ready (it serves 503 for everything that needs the secret), so ``ready``, ``local status`` and
        ``local up`` say so; the scenario asks for the weaker condition by name instead of the twin calling it
        ready. A rejected update, a warming listener or cluster, or a dead process is never allowed.
        """
        if self.ready:
            return True
        return (
            allow_missing_secrets
            and self.live
            and self.pid is not None
            and bool(self.problems)
            and all(p.kind == "secret" and p.state == "missing" for p in self.problems)
        )


@dataclass
class UpReport:
    """What ``up`` did: the plan, notices (filled credentials, translation warnings), how long it took, and the
    path each export is served on."""

    plan: LocalPlan
    notices: list[str] = field(default_factory=list)
    seconds: float = 0.0
    paths: dict[str, ExportPath] = field(default_factory=dict)
    """Each export's path: one its routes serve on every hop (:mod:`meshbridge.local.exportpath`)."""
    stopped: list[Hop] = field(default_factory=list)
    """The hops where the path check predicts an export's request stops (also among :attr:`notices`)."""


class TwinState:
    """A local twin as its state folder records it: what ``status``, ``down``, ``logs``, ``curl`` and
    ``proxy-config`` need, without the bridge file (which may have moved, or changed since ``up``)."""

    def __init__(self, state_dir: Path, again: str = "") -> None:
        """``again``: the command-line options that chose this state folder (``-f FILE``, ``--state-dir DIR``),
        as the user gave them; every hint that names a command repeats them."""
        self.state_dir = state_dir
        self.root = state_dir / "local"
        self.again = again

    def command(self, words: str) -> str:
        """``meshbridge WORDS`` for this twin: with the ``-f``/``--state-dir`` the user gave (``-f`` written
        ``--bridge`` for 'local curl', whose ``-f`` is curl's ``--fail``)."""
        again = self.again
        if words.startswith("local curl") and again.startswith(" -f "):
            again = " --bridge " + again.removeprefix(" -f ")
        return f"meshbridge {words}{again}"

    def up_command(self) -> str:
        """The 'local up' that starts this twin again: its ``-f``/``--state-dir``, and ``--control-plane`` and the
        ``--manifests``, ``--cert`` and ``--no-access-log`` the last 'local up' was given, the one that failed since
        the twin last started included (:data:`FAILED_UP`), shown relative to the working folder when inside it."""
        recorded = self._last_up()
        manifests = recorded.get("manifests", {}) if isinstance(recorded, dict) else {}
        plane = recorded.get("control_plane") if isinstance(recorded, dict) else None
        extra = [f"--control-plane {plane}"] if plane else []
        extra += [f"--manifests {shlex.quote(f'{m}={shown(Path(p))}')}" for m, ps in manifests.items() for p in ps]
        certs = recorded.get("certs", []) if isinstance(recorded, dict) else []
        extra += [
            "--cert " + shlex.quote(f"{c['mesh'] + ':' if c.get('mesh') else ''}{c['path']}={shown(Path(c['file']))}")
            for c in certs
        ]
        if isinstance(recorded, dict) and recorded.get("access_log") is False:
            extra.append(NO_ACCESS_LOG)
        return " ".join([self.command("local up"), *extra])

    def _last_up(self) -> Any:
        """What the last 'local up' was given: :data:`FAILED_UP` when it failed after the twin last started, else
        ``plan.json`` (what the twin last started with)."""
        failed, plan = self.root / FAILED_UP, self.root / "plan.json"
        if failed.is_file() and (not plan.is_file() or failed.stat().st_mtime >= plan.stat().st_mtime):
            return _read_json(failed)
        return _read_json(plan)

    def never_started(self) -> str:
        """The problem of a state folder where 'local up' never ran: names the folder looked in."""
        return f"the local twin was never started with the state folder {self.state_dir} (nothing in {self.root})"

    # -- status, down ------------------------------------------------------------------------------

    def _read_status(self) -> dict[str, Any]:
        path = self.root / "status.json"
        try:
            return dict(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            return {}

    def started(self) -> bool:
        """Whether ``up`` ever wrote its plan here (the twin may have stopped since)."""
        return (self.root / "plan.json").is_file() or (self.root / "status.json").is_file()

    def _supervisors(self) -> list[ProcessId]:
        """The supervisor as ``status.json`` records it (written by the supervisor itself) and as 'up' recorded
        it when it spawned it (before the supervisor could write anything): usually the same process."""
        ids = []
        for record in (self._read_status().get("supervisor"), _read_json(self.root / SUPERVISOR_RECORD)):
            if isinstance(record, dict) and isinstance(record.get("pid"), int):
                pid = ProcessId(record["pid"], record.get("started"))
                if pid not in ids:
                    ids.append(pid)
        return ids

    def running(self) -> bool:
        """True when this topology's supervisor is alive."""
        return any(p.alive() for p in self._supervisors())

    def processes(self) -> dict[str, ProcessId]:
        """Every process of this twin that is alive, by name (``supervisor``, then the components)."""
        alive = {f"supervisor (pid {p.pid})": p for p in self._supervisors() if p.alive()}
        for c in self._read_status().get("components", []):
            if c.get("pid"):
                p = ProcessId(c["pid"], c["started"])
                if p.alive():
                    alive[f"{c['name']} (pid {p.pid})"] = p
        return alive

    def not_running(self) -> str | None:
        """Why the twin is not running, with the fix, or ``None`` when its supervisor is alive."""
        if not self.started():
            return f"{self.never_started()}. Fix: {self.command('local up')}"
        if self.running():
            return None
        sup = self._read_status().get("supervisor") or {}
        if sup.get("running", True):  # it never recorded a stop: killed (SIGKILL, OOM, its session closed)
            pid = f" (pid {sup['pid']})" if sup.get("pid") else ""
            return (
                f"the local twin is not running: its supervisor{pid} is gone (killed or interrupted), so nothing "
                f"runs or restarts the components. Fix: {self.command('local down')} && {self.up_command()}"
            )
        last = self._last_up()
        if isinstance(last, dict) and isinstance(last.get("failed"), str):
            failed = "the local twin is not running: the last 'local up' failed"
            return f"{failed}. Fix what it said, then: {self.up_command()}"
        return f"the local twin is not running (it was stopped). Fix: {self.up_command()}"

    def status(self) -> list[ComponentStatus]:
        """Every component with its live state (a dead process reads as not ready, pid empty)."""
        st = self._read_status()
        running = self.running()
        out = []
        for c in st.get("components", []):
            alive = running and c["pid"] is not None and ProcessId(c["pid"], c["started"]).alive()
            out.append(
                ComponentStatus(
                    c["name"],
                    c.get("mesh", ""),
                    c.get("kind", ""),
                    c["address"],
                    c["pid"] if alive else None,
                    bool(c["ready"] and alive),
                    c["restarts"],
                    c["log"],
                    c.get("last_exit"),
                    tuple(Port.from_dict(x) for x in c.get("ports", [])),
                    bool(c.get("live", c["ready"]) and alive),
                    tuple(Problem.from_dict(x) for x in c.get("problems", [])) if alive else (),
                )
            )
        return out

    def down(self) -> list[str]:
        """Stop the supervisor and every component it started, even if the supervisor is gone.

        Needs only the state folder (the recorded pids), not the bridge file.

        Returns:
            What was stopped (names), for the report.
        """
        stopped: list[str] = []
        supervisors = [p for p in self._supervisors() if p.alive()]
        if supervisors:
            stop(supervisors, grace=10.0)  # it stops its components itself, then exits
            stopped.append("supervisor")
        st = self._read_status()  # as the supervisor left it
        sup = st.get("supervisor")
        leftovers = [(c["name"], ProcessId(c["pid"], c["started"])) for c in st.get("components", []) if c.get("pid")]
        alive = [(n, p) for n, p in leftovers if p.alive()]
        stop([p for _, p in alive])
        stopped += [n for n, _ in alive]
        if st:
            write_atomic(
                self.root / "status.json", json.dumps({**st, "supervisor": {**(sup or {}), "running": False}}, indent=1)
            )
        shutil.rmtree(self.root / CONTROL_PLANE_DIR, ignore_errors=True)  # keys and tokens of the control plane's run
        return stopped

    def changed_inputs(self) -> list[str]:
        """One warning per input of ``up`` (the bridge file, ``--manifests``, the ``--cert`` files) that changed
        since, while the twin runs: the running twin still uses what ``up`` read. Empty when nothing changed or
        nothing runs."""
        try:
            plan = self.plan()
        except LocalError:
            return []
        if not plan.get("inputs") or not self.running():
            return []
        at = time.strftime("%H:%M:%S", time.localtime(plan.get("up_at", 0)))
        out = []
        for item in plan["inputs"]:
            path = Path(item["path"])
            now = input_digest(path)
            if now == item["sha256"]:
                continue
            what = "changed" if now is not None else "was moved or deleted"
            out.append(
                f"{shown(path)} {what} since 'local up' (at {at}); the running twin still uses the old one. "
                f"Fix: {self.command('local down')} && {self.up_command()}"
            )
        return out

    # -- reading the running proxies -------------------------------------------------------------------

    def plan(self) -> dict[str, Any]:
        """The plan of the running (or last) topology, as written by ``up``."""
        try:
            return dict(json.loads((self.root / "plan.json").read_text()))
        except (OSError, json.JSONDecodeError) as e:
            raise LocalError(f"{self.never_started()}. Fix: {self.command('local up')}") from e

    def stats(self, proxy: str) -> dict[str, int]:
        """A proxy's counters and gauges (Envoy ``/stats``), name → value."""
        import httpx

        name, admin = self.admin(proxy)
        try:
            text = httpx.get(f"http://{admin}/stats", timeout=5.0).text
        except httpx.HTTPError as e:
            raise LocalError(f"cannot read {name}'s stats at {admin}: {e}") from e
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if value.strip().isdigit():
                out[key] = int(value)
        return out

    def config_dump(self, proxy: str) -> dict[str, Any]:
        """The ``/config_dump`` (with EDS) of a running proxy (``<mesh>/<workload>`` or ``<workload>``)."""
        import httpx

        name, admin = self.admin(proxy)
        try:
            r = httpx.get(f"http://{admin}/config_dump", params={"include_eds": "true"}, timeout=5.0)
            r.raise_for_status()
        except httpx.HTTPError as e:
            raise LocalError(
                f"cannot read {name}'s config_dump at {admin}: {e}. Fix: is it up? {self.command('local status')}"
            ) from e
        return dict(r.json())

    def app_view(self, app: str | None = None, mesh: str | None = None) -> AppView:
        """What an importer's app sees (its sidecar, DNS): ``app``, else the first app of ``mesh``, else the first."""
        plan = self.plan()
        apps = {n: p for n, p in plan["proxies"].items() if p["role"] == "app" and (mesh is None or p["mesh"] == mesh)}
        if not apps:
            raise LocalError("no mesh of this bridge imports anything, so no app runs. Fix: add an export with 'to'")
        if app is None:
            name = next(iter(apps))
        else:
            found = [n for n in apps if app in (n, n.split("/", 1)[1])]
            if len(found) != 1:
                raise LocalError(f"{app!r} is not an app of the local twin; apps: {', '.join(apps)}")
            name = found[0]
        p = apps[name]
        ip, port = plan["dns_servers"][p["mesh"]].rsplit(":", 1)
        return AppView(
            name=name,
            sidecar_address=p["address"],
            low_port_offset=p["low_port_offset"],
            agent_dns={h: list(a) for h, a in p.get("agent_dns", {}).items()},
            dns_server=(ip, int(port)),
            sidecar_ports=tuple(p.get("listener_ports", [])),
            endpoint_ports={(e["host"], e["port"]): e["local"] for e in plan["endpoint_ports"]},
            endpoint_addresses=dict(plan.get("endpoint_addresses", {})),
            namespace=p.get("namespace"),
            waypoint=p.get("waypoint"),
        )

    def kubeconfig(self) -> Path | None:
        """The kubeconfig of a twin on the real control plane ('local up --control-plane istiod': its API servers,
        where its Secrets live), or ``None`` for the file-based twin (or none recorded)."""
        recorded = _read_json(self.root / "plan.json")
        if isinstance(recorded, dict) and recorded.get("control_plane") == "istiod" and recorded.get("kubeconfig"):
            return Path(recorded["kubeconfig"])
        return None

    def export_path(self, export: str) -> str:
        """The path 'local up' found the export's routes serve on every hop (:mod:`meshbridge.local.exportpath`),
        or :data:`~meshbridge.local.exportpath.DEFAULT_PATH` for a twin started before it was recorded."""
        recorded = self.plan().get("export_paths", {}).get(export)
        return str(recorded["path"]) if isinstance(recorded, dict) and recorded.get("path") else DEFAULT_PATH

    def admin(self, proxy: str) -> tuple[str, str]:
        """(full name, ``ip:port``) of a proxy's admin interface."""
        proxies = self.plan()["proxies"]
        matches = [n for n in proxies if proxy in (n, n.split("/", 1)[1])]
        if len(matches) != 1:
            raise LocalError(f"{proxy!r} is not a proxy of the local twin; proxies: {', '.join(proxies)}")
        waypoint = proxies[matches[0]].get("waypoint")
        if waypoint:
            raise LocalError(
                f"{matches[0]} has no proxy of its own (dataplane: ambient: ztunnel, which the twin does not run, "
                f"captures its requests for the waypoint). Fix: ask its waypoint, {waypoint}"
            )
        return matches[0], proxies[matches[0]]["admin"]


class LocalTwin(TwinState):
    """The local twin of one bridge, kept in ``state_dir``."""

    def __init__(self, bridge: Bridge, bridge_file: Path, state_dir: Path, again: str = "") -> None:
        super().__init__(state_dir, again)
        self.bridge = bridge
        self.bridge_file = bridge_file.resolve()
        self.bridge_dir = self.bridge_file.parent
        self._launched: ProcessId | None = None  # the supervisor this object's 'up' spawned

    # -- up -----------------------------------------------------------------------------------------

    def up(
        self,
        manifests: dict[str, list[Path]] | None = None,
        progress: Progress = lambda _: None,
        checkpoint: Progress = lambda _: None,
        translator: Translator = "meshbridge",
        files: Sequence[MountedFile] = (),
        access_log: bool = True,
    ) -> UpReport:
        """Start the topology and wait until every component is ready.

        Args:
            manifests: per mesh, the user's own Istio YAML to run instead of the rendered documents.
            files: the certificate files the manifests name in the pods (``--cert [MESH:]PATH=FILE``), mounted
                where every proxy of their mesh reads them.
            translator: whose configuration the Envoys run: ``meshbridge``'s translation, or ``istiod``'s own
                (the oracle, built with Go; delivered the way the twin delivers its own, see
                :mod:`meshbridge.istiod.adopt`).
            progress: receives one line per step.
            checkpoint: called with each phase of :data:`UP_PHASES` as it begins (tests interrupt the start
                there).
            access_log: each Envoy writes an access log (``access.log`` beside its log), as with Istio's
                ``meshConfig.accessLogFile``; ``local logs --access`` and verify's explanations read it. ``False``:
                none, as Istio's default profile.

        Raises:
            OracleUnavailable: ``translator="istiod"`` where Go is absent (one line: what is missing).
            LocalError: already running, an input cannot be used (a handler file, a manifest, an unset
                ``${VAR}``: all checked before anything is written; a ``--cert`` path no manifest names), a proxy
                reads a file in the pod that ``files`` does not give (each path, who names it, the fix: checked
                before any process starts), a component fails to become ready (with its log's last lines), or a
                file cannot be written. Nothing is left running after an error.
            StartInterrupted: Ctrl-C (a ``KeyboardInterrupt``) at any point: everything the start had spawned
                was stopped first, a second Ctrl-C during that stop included.
        """
        t0 = time.monotonic()
        if self.running():
            raise LocalError(
                f"the local twin of {self.bridge.metadata.name} is already up (state folder {self.state_dir}). "
                f"Fix: stop it first: {self.command('local down')}"
            )
        self._launched = None
        try:
            report = self._up(manifests or {}, progress, checkpoint, translator, files, access_log)
        except KeyboardInterrupt:
            stopped, left = self._abort()
            raise StartInterrupted(stopped, left) from None
        except BaseException as e:
            self._abort()  # nothing is left half up: a failed start stops what it started
            self._record_failed(manifests or {}, files, access_log, e)
            raise
        (self.root / FAILED_UP).unlink(missing_ok=True)
        report.seconds = time.monotonic() - t0
        return report

    def _record_failed(
        self, manifests: dict[str, list[Path]], files: Sequence[MountedFile], access_log: bool, error: BaseException
    ) -> None:
        """Keep what this failed start was given (:data:`FAILED_UP`), for the hints of a stopped twin; nothing for a
        twin never started here (its hints name no earlier start)."""
        if not self.started():
            return
        given = {
            "manifests": {m: [str(p.resolve()) for p in ps] for m, ps in manifests.items()},
            "certs": [{"mesh": f.mesh or "", "path": f.path, "file": str(Path(f.source).resolve())} for f in files],
            "access_log": access_log,
            "failed": str(error).splitlines()[0] if str(error) else type(error).__name__,
        }
        with contextlib.suppress(OSError):  # the start's own error matters more than this record's
            write_atomic(self.root / FAILED_UP, json.dumps(given, indent=1))

    def _abort(self) -> tuple[int, list[str]]:
        """Stop whatever this start spawned, with Ctrl-C held back until it is done.

        Returns:
            How many of the twin's processes were alive and were stopped, and those still alive after.
        """
        if self._launched is None:
            return 0, []  # nothing was spawned: a stopped twin's status must stay as it is
        with interrupts_deferred(deliver=False):  # a second Ctrl-C must not cut the stop short
            alive = self.processes()
            self.down()
            left = [name for name, p in self.processes().items() if p.alive()]
        return len(alive), left

    def _up(
        self,
        manifests: dict[str, list[Path]],
        progress: Progress,
        checkpoint: Progress,
        translator: Translator,
        files: Sequence[MountedFile],
        access_log: bool,
    ) -> UpReport:
        up_at = time.time()
        inputs = [self.bridge_file, *(p for paths in manifests.values() for p in paths)]
        inputs += [Path(f.source) for f in files]
        digests = [{"path": str(p.resolve()), "sha256": input_digest(p)} for p in inputs]
        self._preflight(manifests)  # everything that can fail on the inputs, before any side effect
        oracle = waypoint_oracle(self.bridge)  # an ambient importer's waypoint runs istiod's configuration
        for log in self.root.glob("**/*.log"):  # this run's logs only: a failed start shows its own errors
            log.unlink(missing_ok=True)
        checkpoint("certificates")
        store = twin_store(self.bridge, self.state_dir)
        issued = [a for a in store.issue(issuing_bridge(self.bridge)) if a.action != "kept"]
        if issued:
            progress(f"issued {len(issued)} certificate(s) into {store.root}")
        checkpoint("plan")
        plan = _free_plan(self.bridge, self.state_dir, os.geteuid() == 0, access_log)
        report = UpReport(plan, list(plan.notes))
        progress(
            f"topology {plan.subnet}: {len(plan.proxies)} proxies, {len(plan.albs)} ALB(s), "
            f"DNS for {len(plan.dns_servers)} meshes"
        )
        checkpoint("configuration")
        self._write_public_pki(plan)
        configs, notices = mesh_configs(self.bridge, self.bridge_dir, store, manifests)
        report.notices += notices
        self._mount(plan, configs, files)
        write_workload_certs(plan, {mesh: cfg.settings.trust_domain for mesh, cfg in configs.items()})
        components = [self._dns_component(plan)]
        lbs = {ex.from_: lb_address(self.bridge, ex.from_) for ex in self.bridge.spec.exports}
        ambient = waypoints(self.bridge, oracle, twin_credentials(self.bridge, store), lbs)
        istiod = self._istiod(configs, plan, progress, ambient) if translator == "istiod" else {}
        translated, apps = self._translate_proxies(plan, configs, istiod, report, components, ambient)
        _check_mounted(translated, configs, {name: spec.mesh for name, spec in plan.proxies.items()})
        self._check_secrets(translated, configs, manifests)
        paths = report.paths = export_paths(self.bridge, translated)
        report.stopped = findings(self.bridge, translated, paths)  # each export's path, before Envoy runs
        report.notices += map(str, report.stopped)
        unserved = {
            ex.import_host: no_local_backend(i, ex, paths[ex.name].path)
            for i, ex in enumerate(self.bridge.spec.exports)
            if ex.backend.local is None
        }
        report.notices += unserved.values()
        _check_inotify(translated.values())
        components += [self._alb_component(plan, alb) for alb in plan.albs]
        run = {"inputs": digests, "up_at": up_at, "translator": translator, "unserved": unserved}
        write_atomic(self.root / "plan.json", json.dumps(_recorded(plan, apps, manifests, files, paths, run), indent=1))
        write_atomic(self.root / "supervisor.json", json.dumps({"components": components}, indent=1))
        (self.root / "status.json").unlink(missing_ok=True)
        checkpoint("supervisor")
        self._start_supervisor()
        checkpoint("started")
        progress(f"started {len(components)} components; waiting until ready")
        self._wait_ready(progress, checkpoint, translated, manifests)
        report.notices = list(dict.fromkeys(report.notices))  # a rule broken by two routes is one notice
        return report

    def _translate_proxies(
        self,
        plan: LocalPlan,
        configs: dict[str, ConfigSet],
        istiod: dict[str, IstiodConfig],
        report: UpReport,
        components: list[dict[str, Any]],
        ambient: Waypoints,
    ) -> tuple[dict[str, ProxyConfig], dict[str, dict[str, Any]]]:
        """Each proxy's configuration (meshbridge's translation, or istiod's when ``istiod`` holds it), its
        warnings in ``report`` and its Envoy in ``components``; with each app sidecar's DNS table and ports.

        An ambient importer's egress gateway runs as its waypoint (:func:`meshbridge.local.waypoint.waypoint_config`)
        and its apps have no sidecar: an app's requests go to the waypoint's listeners (its address and ports)."""
        apps: dict[str, dict[str, Any]] = {}
        translated: dict[str, ProxyConfig] = {}
        for name, spec in plan.proxies.items():
            cfg = configs[spec.mesh]
            pods = workloads(self.bridge, spec.mesh, plan.addresses)
            if ambient.app(spec):
                ((waypoint, wp),) = [(n, pc) for n, pc in translated.items() if plan.proxies[n].mesh == spec.mesh]
                visible = visible_services(cfg, spec.proxy, services(cfg, pods))
                apps[name] = {
                    "address": wp.placement.address,
                    "sidecar": False,
                    "waypoint": waypoint,
                    "agent_dns": name_table(cfg.settings, visible),  # ztunnel's DNS proxy answers for them
                    "listener_ports": sorted(int(x["name"].rsplit("_", 1)[1]) for x in wp.listeners),
                }
                continue
            pc = translate(cfg, spec.proxy, plan.placements[name], pods)
            if ambient.waypoint(spec):
                app = next(s for s in plan.proxies.values() if ambient.app(s) and s.mesh == spec.mesh)
                pc = translated[name] = waypoint_config(self.bridge, pc, cfg, ambient, app, plan.dns_zones[spec.mesh])
            else:
                pc = translated[name] = adopt(istiod[name], pc, cfg) if istiod else pc
            report.notices += [f"{name}: {w}" for w in pc.warnings] + [f"{name}: {i}" for i in check_consistency(pc)]
            report.notices += _unlisted_secrets_note(name, pc, cfg)
            lb = lb_address(self.bridge, spec.mesh) if spec.role == "ingress" else None
            components.append(self._envoy_component(name, pc, lb))
            if spec.proxy.kind == "sidecar":
                visible = visible_services(cfg, spec.proxy, services(cfg, pods))
                apps[name] = {
                    # the cluster's DNS for Kubernetes Services, then the istio-agent's table for ServiceEntries
                    "agent_dns": {**cluster_dns(visible, spec.proxy.namespace), **name_table(cfg.settings, visible)},
                    "listener_ports": sorted(int(x["name"].rsplit("_", 1)[1]) for x in pc.listeners),
                }
        return translated, apps

    def _mount(self, plan: LocalPlan, configs: dict[str, ConfigSet], files: Sequence[MountedFile]) -> None:
        """Copy each ``--cert PATH=FILE`` to ``mounts/<mesh>/<path>`` (0600: it may be a key) and mount it in every
        proxy of its mesh (:attr:`Placement.mounts`); copies of an earlier start are removed first.

        Raises:
            LocalError: a file names no mesh, or a path no manifest (of its mesh) names
                (:func:`meshbridge.istio.files.place_files`).
        """
        try:
            placed = place_files(files, configs)
        except IstioConfigError as e:
            raise LocalError(str(e)) from None
        folder = self.root / "mounts"
        if folder.is_dir():
            shutil.rmtree(folder)
        for mesh, by_path in placed.items():
            mounts = {path: folder / mesh / path.lstrip("/") for path in by_path}
            for path, copy in mounts.items():
                write_atomic(copy, by_path[path].data, mode=0o600)
            for name, spec in plan.proxies.items():
                if spec.mesh == mesh:
                    plan.placements[name] = dataclasses.replace(plan.placements[name], mounts=mounts)

    def _istiod(
        self, configs: dict[str, ConfigSet], plan: LocalPlan, progress: Progress, ambient: Waypoints
    ) -> dict[str, IstiodConfig]:
        """istiod's configuration of every proxy of the plan (the oracle, once per mesh, with the twin's pod
        addresses), by proxy name; an ambient importer's waypoint is asked apart (``ambient``)."""
        binary = ensure_oracle(progress)
        out: dict[str, IstiodConfig] = {}
        for mesh, cfg in configs.items():
            specs = [s for s in plan.proxies.values() if s.mesh == mesh and mesh not in ambient.docs]
            if not specs:
                continue
            request = build_request(mesh, cfg, [s.proxy for s in specs], plan.addresses)
            out.update(run_oracle(request, binary).proxies)
        progress(f"configuration: istiod's own translation (Istio {istio_line()}), for {len(out)} proxies")
        return out

    def _preflight(self, manifests: dict[str, list[Path]]) -> None:
        """Check what ``up`` reads before it issues a certificate or writes a file: the meshes named by
        ``--manifests``, that each manifest is readable YAML whose ``${VAR}`` are all set, that each export's
        local handler file exists, that the backend CA files are readable, and that Envoy is installed.

        Raises:
            LocalError: the first input that cannot be used, with its fix.
        """
        check_manifest_meshes(self.bridge, manifests)
        check_dataplanes(self.bridge, manifests)
        for index, ex in enumerate(self.bridge.spec.exports):
            local = ex.backend.local
            if local is None:
                continue
            handler_file = (self.bridge_dir / local.handler.rpartition(":")[0]).resolve()
            if not handler_file.is_file():
                raise LocalError(
                    f"spec.exports[{index}].backend.local.handler {local.handler!r}: {handler_file} does not exist. "
                    f"Fix: the handler is FILE.py:FUNCTION relative to {self.bridge_dir}"
                )
        for mesh, paths in manifests.items():
            try:
                load_documents(paths, env=os.environ)
            except IstioConfigError as e:
                raise LocalError(f"--manifests {mesh}: {e}") from None
            except (OSError, UnicodeDecodeError) as e:
                raise LocalError(
                    f"--manifests {mesh}: cannot read {getattr(e, 'filename', None) or ', '.join(map(str, paths))} "
                    f"({e}). Fix: pass readable UTF-8 YAML files or folders of them"
                ) from None
        try:
            read_backend_cas(self.bridge, self.bridge_dir)
            envoy_path()
        except (RenderError, TranslateError) as e:
            raise LocalError(str(e)) from None

    def _write_public_pki(self, plan: LocalPlan) -> None:
        """The emulated public root (ACM's issuer), the ALBs' listener certificates and the OS bundle."""
        ca = write_system_ca(plan)
        for alb in plan.albs:
            leaf = issue_leaf(ca, "server", common_name=alb.host, dns_names=[alb.host], days=90)
            leaf.write_to(alb.folder, "listener")

    def _dns_component(self, plan: LocalPlan) -> dict[str, Any]:
        config = {
            mesh: {"address": ip, "port": port, "records": plan.dns_zones[mesh]}
            for mesh, (ip, port) in plan.dns_servers.items()
        }
        path = self.root / "dns" / "dns.json"
        write_atomic(path, json.dumps(config, indent=1))
        ip, port = next(iter(plan.dns_servers.values()))
        return {
            "name": "dns",
            "argv": [sys.executable, "-m", "meshbridge.local.dns_server", str(path)],
            "log": str(self.root / "dns" / "dns.log"),
            "address": ", ".join(f"{a}:{p}" for a, p in plan.dns_servers.values()),
            "probe": {"kind": "dns", "host": ip, "port": port, "name": "probe.meshbridge.local"},
            "info": {
                "mesh": "",
                "kind": "dns",
                "ports": [Port(f"dns {m}", a, p, DNS_PORT).to_dict() for m, (a, p) in plan.dns_servers.items()],
            },
        }

    def _envoy_component(self, name: str, pc: ProxyConfig, lb: str | None) -> dict[str, Any]:
        """The supervisor's entry for one Envoy; ``lb``: the load-balancer name in front of it (an ingress)."""
        bootstrap = write_proxy_config(pc)
        p = pc.placement
        behind_lb = {local: port for (host, port), local in sorted(p.endpoint_ports.items()) if host == lb}
        ports = []
        for listener in pc.listeners:
            bound = listener["address"]["socket_address"]
            tail = str(listener.get("name", "")).rsplit("_", 1)[-1]
            in_pod = int(tail) if tail.isdigit() else int(bound["port_value"])  # istiod names it ADDRESS_PORT
            ports.append(
                Port(
                    str(listener.get("name", "")),
                    bound["address"],
                    int(bound["port_value"]),
                    behind_lb.get(in_pod, in_pod),
                )
            )
        ports.append(Port("admin", p.address, p.admin_port, p.admin_port))
        return {
            "name": name,
            "argv": [
                str(envoy_path()),
                "-c",
                str(bootstrap),
                "--disable-hot-restart",
                "--log-level",
                "warning",
                "--component-log-level",
                "misc:error",  # the deprecated-field notices istiod's own config also triggers
                "--concurrency",
                "2",
                "--drain-time-s",
                "1",
                "--parent-shutdown-time-s",
                "2",
                "--file-flush-interval-msec",
                "200",  # access logs readable within 0.2 s (verify reads them to explain failures)
            ],
            "log": str(p.xds_dir / "envoy.log"),
            "address": p.address,
            # ready when *this* Envoy is LIVE (its config path proves it is not another process on the address)
            "probe": {"kind": "envoy", "admin": f"{p.address}:{p.admin_port}", "config_path": str(bootstrap)},
            "after": ["dns"],
            "info": {
                "mesh": name.split("/")[0],
                "kind": "envoy",
                "admin": f"{p.address}:{p.admin_port}",
                "ports": [x.to_dict() for x in sorted(ports, key=lambda x: (x.name == "admin", x.port))],
            },
        }

    def _alb_component(self, plan: LocalPlan, alb: AlbPlan) -> dict[str, Any]:
        from meshbridge.alb.function import FunctionConfig
        from meshbridge.alb.server import AlbConfig, ListenerConfig

        ex = self.bridge.export(alb.export)
        local = ex.backend.local
        assert local is not None
        handler_file = (self.bridge_dir / local.handler.rpartition(":")[0]).resolve()
        config = AlbConfig(
            listeners=tuple(
                ListenerConfig(
                    host=alb.address,
                    port=lst.port,
                    protocol=lst.protocol,
                    advertised_port=lst.advertised_port,
                    cert_file=alb.folder / "listener.crt" if lst.protocol == "HTTPS" else None,
                    key_file=alb.folder / "listener.key" if lst.protocol == "HTTPS" else None,
                )
                for lst in alb.listeners
            ),
            function=FunctionConfig(
                handler=f"{handler_file.name}:{local.handler.rpartition(':')[2]}",
                task_root=handler_file.parent,
                function_name=f"{ex.name}-function",
                memory_mb=local.memory,
                timeout_s=local.timeout,
                concurrency=local.concurrency,
            ),
            load_balancer_name=f"{ex.name}-alb",
            target_group_name=f"{ex.name}-tg",
            multi_value_headers=local.multi_value_headers,
            runtime_host=alb.address,
        )
        assert config.function is not None
        try:
            config.function.check()
        except LambdaError as e:
            index = self.bridge.spec.exports.index(ex)
            raise LocalError(
                f"spec.exports[{index}].backend.local.handler {local.handler!r}: {handler_file} cannot run ({e}). "
                f"Fix: the handler is FILE.py:FUNCTION relative to {self.bridge_dir}"
            ) from None
        path = alb.folder / "alb.json"
        write_atomic(path, config.to_json())
        # the listener the exporter's gateway dials (the backend's port); the emulator binds them in order
        served = next((x for x in alb.listeners if x.advertised_port == ex.backend.port), alb.listeners[-1])
        return {
            "name": alb.name,
            "argv": [sys.executable, "-m", "meshbridge.alb.server", str(path)],
            "log": str(alb.folder / "alb.log"),
            "address": alb.address,
            # ready when the listener the export uses listens: the emulator binds its listeners only once the
            # function passed its init check, so no request (an invocation) is needed; probing a path would
            # invoke the function every second, and make the ALB's readiness depend on what one path answers,
            # which is the export's own route's business (verify asks each export on a path its routes serve,
            # meshbridge.local.exportpath)
            "probe": {"kind": "tcp", "host": alb.address, "port": served.port},
            "info": {
                "mesh": alb.mesh,
                "kind": "alb",
                "host": alb.host,
                "listeners": [f"{lst.protocol}:{lst.advertised_port}→{lst.port}" for lst in alb.listeners],
                "ports": [Port(x.protocol, alb.address, x.port, x.advertised_port).to_dict() for x in alb.listeners],
            },
        }

    def _start_supervisor(self) -> None:
        """Spawn the detached supervisor and record its identity at once (``supervisor.pid``).

        Ctrl-C is held back until both are done: interrupted inside ``Popen``, the supervisor would run with
        no one knowing its pid, and would start every component after 'up' had stopped "everything".
        """
        with interrupts_deferred():
            (self.root / SUPERVISOR_RECORD).unlink(missing_ok=True)
            proc = spawn(
                [sys.executable, "-m", "meshbridge.local.supervisor", str(self.root / "supervisor.json")],
                log=self.root / "supervisor.log",
                die_with_parent=False,
            )
            self._launched = ProcessId.of(proc.pid)
            record = {"pid": self._launched.pid, "started": self._launched.started}
            write_atomic(self.root / SUPERVISOR_RECORD, json.dumps(record))

    def _wait_ready(
        self,
        progress: Progress,
        checkpoint: Progress = lambda _: None,
        proxies: Mapping[str, ProxyConfig] | None = None,
        manifests: Mapping[str, list[Path]] | None = None,
    ) -> None:
        """Wait until every component is ready (an Envoy: it took every resource it was given).

        Raises:
            LocalError: a component exited with a configuration error; an Envoy that is live kept a problem
                for :data:`READY_SETTLE_S` (a rejected listener, cluster, route configuration or secret, or a
                secret that never came: its files do not change during the start, so waiting longer would not
                help); or :data:`READY_TIMEOUT_S` passed. The message names each proxy, each resource, Envoy's
                own message and the fix (:meth:`_refused`).
        """
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen: set[str] = set()
        troubled: dict[str, float] = {}  # live Envoys with problems, since when
        while time.monotonic() < deadline:
            status = self._read_status()
            comps = status.get("components", [])
            for c in comps:
                if c["ready"] and c["name"] not in seen:
                    seen.add(c["name"])
                    progress(f"  ready: {c['name']} ({c['address']})")
                    checkpoint("ready")
            if comps and all(c["ready"] for c in comps):
                return
            failed = [c for c in comps if c.get("failed")]
            if failed:  # exited with a configuration error: the supervisor will not restart it
                lines = [f"{c['name']} failed; last lines of {c['log']}:\n{_tail(Path(c['log']))}" for c in failed]
                raise LocalError("the local twin cannot start (everything was stopped):\n" + "\n".join(lines))
            now = time.monotonic()
            for c in comps:
                if c.get("live") and c.get("problems") and not c["ready"]:
                    troubled.setdefault(c["name"], now)
                else:
                    troubled.pop(c["name"], None)
            if any(now - since >= READY_SETTLE_S for since in troubled.values()):
                refused = [self._refused(c, proxies or {}, manifests or {}) for c in comps if c["name"] in troubled]
                raise LocalError(
                    "the local twin cannot start (everything was stopped): a proxy did not take its "
                    "configuration:\n" + "\n".join(refused)
                )
            time.sleep(0.05)
        status = self._read_status()
        stuck = [c for c in status.get("components", []) if not c["ready"]] or [
            {"name": "supervisor", "log": str(self.root / "supervisor.log")}
        ]
        lines = []
        for c in stuck:
            if c.get("problems"):
                lines.append(self._refused(c, proxies or {}, manifests or {}))
            else:
                lines.append(f"{c['name']} is not ready; last lines of {c['log']}:\n{_tail(Path(c['log']))}")
        raise LocalError(
            "the local twin did not become ready within "
            f"{READY_TIMEOUT_S:.0f} s (everything was stopped):\n" + "\n".join(lines)
        )

    def _refused(
        self, component: Mapping[str, Any], proxies: Mapping[str, ProxyConfig], manifests: Mapping[str, list[Path]]
    ) -> str:
        """What a live Envoy did not take, one line per resource with Envoy's message and the fix."""
        name = str(component["name"])
        problems = [Problem.from_dict(x) for x in component.get("problems", [])]
        lines = [f"{name} is live but not ready: it did not take {len(problems)} resource(s) (log: {component['log']})"]
        lines += [f"  - {p}. Fix: {self._fix(name, p, proxies.get(name), manifests)}" for p in problems]
        return "\n".join(lines)

    def _fix(self, proxy: str, p: Problem, pc: ProxyConfig | None, manifests: Mapping[str, list[Path]]) -> str:
        """The fix of one problem of ``proxy`` (see :meth:`_refused`): what to change, and where."""
        mesh = proxy.split("/", 1)[0]
        if p.kind == "secret" and p.state == "missing":  # one nothing gives was refused before the start
            folder = pc.placement.xds_dir / "sds" if pc is not None else self.root / proxy / "sds"
            return (
                f"the twin gave it (in {folder}) but its file holds no secret now: something changed it after "
                f"'local up'. '{self.command('certs push')}' writes the store's certificates again"
            )
        if p.kind == "secret":
            cred = credential_name(p.name).removesuffix(SDS_CA_SUFFIX)
            return (
                f"Envoy cannot load the certificate, key or CA bundle of the Secret {cred} (it builds one TLS "
                f"context from {sds_name(cred)} and {sds_ca_name(cred)} together, so check "
                f"both): '{self.command('certs check')}' for meshbridge's certificates; a Secret of the manifests "
                "must hold PEM that Envoy can load (cert/key or tls.crt/tls.key, cacert or ca.crt)"
            )
        if p.state == "warming":
            return (
                f"it still waits for what this {p.kind} needs (a secret, endpoints); see "
                f"'{self.command(f'local logs {proxy}')}'"
            )
        given = [(m, shlex.quote(f"{m}={shown(x)}")) for m, xs in manifests.items() for x in xs]
        bridge = shlex.quote(shown(self.bridge_file))
        return (
            f"Envoy refuses what the twin built from mesh {mesh}'s Istio resources; see the {p.kind} and Envoy's "
            f"own verdict with 'meshbridge translate -f {bridge}{''.join(f' --manifests {a}' for _, a in given)} "
            f"--proxy {proxy} --validate', and check the resources with "
            f"'meshbridge lint -f {bridge}{''.join(f' --mesh {a}' for _, a in given)}'"
        )

    def _check_secrets(
        self,
        translated: Mapping[str, ProxyConfig],
        configs: Mapping[str, ConfigSet],
        manifests: Mapping[str, list[Path]],
    ) -> None:
        """Every secret a proxy's Envoy asks for (SDS) is one its mesh gives: the twin does not start a proxy that
        would wait for a Secret nobody holds, or holds in another namespace (it could never become ready; istiod
        would serve it nothing either).

        Raises:
            LocalError: per proxy, each secret nobody gives and its fix (:func:`_secret_elsewhere`, else
                :meth:`_unserved_secret_fix`).
        """
        lines = [
            f"  - {name}: secret {secret}: nothing gives it, so Envoy would wait for it for ever. "
            + (
                _secret_elsewhere(configs[name.split("/", 1)[0]], pc, secret)
                or "Fix: " + self._unserved_secret_fix(name.split("/", 1)[0], secret, pc.proxy.namespace, manifests)
            )
            for name, pc in translated.items()
            for secret, served in pc.secrets.items()
            if served is None
        ]
        if lines:
            raise LocalError(
                "the local twin cannot start (nothing was started): a proxy needs a Secret:\n" + "\n".join(lines)
            )

    def _unserved_secret_fix(self, mesh: str, secret: str, namespace: str, manifests: Mapping[str, list[Path]]) -> str:
        """The fix for a secret the mesh's configuration holds nothing for (istiod would serve none either)."""
        base, is_ca = parse_sds_name(secret) or (secret, False)
        ours = self.bridge.credential_name(mesh)
        field = (
            f"spec.meshes.{mesh}.credentialName"
            if self.bridge.spec.meshes[mesh].credential_name
            else "spec.tls.credentialName"
        )
        keys = "cacert (or ca.crt)" if is_ca else "cert and key (or tls.crt and tls.key)"
        where = f"--manifests {mesh}" if mesh in manifests else f"mesh {mesh}'s configuration"
        if base != ours:
            return (
                f"a Gateway or DestinationRule of {where} names credentialName {base}, and no Secret "
                f"{namespace}/{base} holds its {keys} (istiod would serve nothing either): add that Secret to "
                f"--manifests {mesh}, or name the credential {ours} ({field}), whose Secrets "
                "meshbridge fills from its PKI"
            )
        spec = self.bridge.spec.meshes[mesh]
        filled = sorted({gw.namespace for gw in (spec.ingress_gateway, spec.egress_gateway) if gw is not None})
        if mesh in manifests and namespace not in filled:
            return (
                f"a rule of --manifests {mesh} names credentialName {base} for a proxy of namespace {namespace}, and "
                f"no Secret {namespace}/{base} holds its {keys} (a proxy reads only its own namespace's Secrets; the "
                f"twin fills {base} from meshbridge's PKI only in the gateways' namespaces: {', '.join(filled)}): add "
                f"that Secret to --manifests {mesh}, or keep the rule to the gateway (workloadSelector or exportTo)"
            )
        return (
            f"the Secret {namespace}/{base} of {where} holds no {keys} Envoy could use (a gateway reads only the "
            f"Secrets of its own namespace, {namespace}): fix it, or remove it from the manifests so meshbridge "
            "fills it from its PKI"
        )

    # -- live changes ---------------------------------------------------------------------------------

    def refresh_secrets(self) -> dict[str, list[str]]:
        """Recompute every proxy's secrets from the PKI store and swap its SDS files atomically.

        Envoy reloads them without a restart (file-based SDS, ``watched_directory``). But Envoy checks a peer
        only at the handshake: a trust bundle that dropped a CA, or a CRL that revoked more, leaves the
        connections opened before it up, and a revoked or distrusted peer keeps its access over them. So a
        proxy whose trust narrowed also gets its listeners' filter chains and its TLS clusters updated in place
        (a new ``meshbridge`` metadata generation, nothing else): Envoy drains the connections of the old ones
        (``--drain-time-s``, 1 s here), and every later request shakes hands again. On a cluster the same takes
        a restart of the gateway pods (``kubectl rollout restart``), which the CLI prints.

        Returns:
            Per proxy, the SDS resources whose content changed (file names); a proxy whose connections were
            drained also lists ``drained``.

        Raises:
            LocalError: the local twin was never started with this state folder.
        """
        recorded = self.plan()
        manifests = {m: [Path(p) for p in paths] for m, paths in recorded.get("manifests", {}).items()}
        store = twin_store(self.bridge, self.state_dir)
        # the manifests are expanded with the variables 'up' saw, not with this shell's
        configs, _ = mesh_configs(self.bridge, self.bridge_dir, store, manifests, recorded.get("manifest_env", {}))
        plan = plan_topology(self.bridge, self.state_dir, recorded["subnet"], recorded["privileged"])
        changed: dict[str, list[str]] = {}
        for name, spec in plan.proxies.items():
            pc = translate(
                configs[spec.mesh], spec.proxy, plan.placements[name], workloads(self.bridge, spec.mesh, plan.addresses)
            )
            folder = plan.placements[name].xds_dir / "sds"
            files = pc.sds_files()
            before = {n: _read_json(folder / n) for n in files}
            changed[name] = [n for n, doc in files.items() if before[n] != doc]
            if changed[name]:
                swap_secrets(folder, files)
                narrowed = {_secret_name(files[n]) for n in changed[name] if _trust_narrowed(before[n], files[n])}
                if narrowed and drain_connections(plan.placements[name], narrowed):
                    changed[name].append("drained")
        return changed


def export_url(ex: Export, path: str = DEFAULT_PATH) -> str:
    """What an importer's app calls for ``ex`` (``http://lambda.external/hello-world``, its ``importAs`` host when
    it has one); ``path``: the export's own (:attr:`UpReport.paths`, :meth:`TwinState.export_path`) where known."""
    return f"http://{ex.import_host}{'' if ex.port == 80 else f':{ex.port}'}{path}"


def no_local_backend(index: int, ex: Export, path: str = DEFAULT_PATH) -> str:
    """The notice for an export the twin has no backend for: what runs (nothing behind the exporter's gateway),
    what a request on ``path`` (the export's) answers, and the field that fixes it."""
    backend = f"{ex.backend.host}:{ex.backend.port}"
    if is_ip(ex.backend.host):
        answer = (
            f"its gateway dials {backend} itself, outside the twin: 'local curl {export_url(ex, path)}' answers 503 "
            "(UF, connection failure) unless something on this machine's network answers there"
        )
    else:
        answer = (
            f"its gateway cannot resolve {ex.backend.host} (the twin's DNS knows only the backends it runs): "
            f"'local curl {export_url(ex, path)}' answers 503 no healthy upstream (UH) from the exporter's gateway"
        )
    return (
        f"spec.exports[{index}] {ex.name} ({ex.host}) has no backend.local, so the twin runs no ALB or Lambda for "
        f"it; {answer}. Fix: set spec.exports[{index}].backend.local.handler to FILE.py:FUNCTION (relative to the "
        "bridge file) to run a Lambda handler behind an emulated ALB, as 'meshbridge init' does"
    )


@dataclass(frozen=True)
class StartedTwin:
    """A twin that 'local up' started in some state folder: where, from which bridge file, whether it runs."""

    state_dir: Path
    bridge_file: Path | None
    running: bool


SKIPPED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", "site-packages"})


def started_twins(under: Path, depth: int = 3, budget: int = 2000) -> list[StartedTwin]:
    """The twins 'local up' started in a state folder (``.meshbridge/``, or any folder holding ``local/plan.json``:
    a ``--state-dir``) at most ``depth`` folders below ``under`` (hidden folders other than ``.meshbridge``
    skipped; at most ``budget`` folders read), running
    ones first: what a user who forgot ``-f`` most likely meant. Folders are read level by level, so a busy
    subtree (``/tmp``'s build caches) spends the budget only after every shallower twin was found."""
    found: list[StartedTwin] = []
    level = [under]
    for _ in range(depth + 1):
        below: list[Path] = []
        for here in level:
            budget -= 1
            if budget < 0:
                return sorted(found, key=lambda t: not t.running)
            try:
                names = sorted(e.name for e in os.scandir(here) if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            if ".meshbridge" in names and (twin := _started_twin(here / ".meshbridge")) is not None:
                found.append(twin)
            if "local" in names and (twin := _started_twin(here)) is not None:
                found.append(twin)  # a state folder of another name (local up --state-dir)
            below += [here / n for n in names if not n.startswith(".") and n not in SKIPPED_FOLDERS]
        level = below
    return sorted(found, key=lambda t: not t.running)


def _started_twin(state_dir: Path) -> StartedTwin | None:
    """The twin 'local up' recorded in ``state_dir``, or ``None`` when it never wrote a plan there."""
    state = TwinState(state_dir)
    recorded = _read_json(state.root / "plan.json")
    if not isinstance(recorded, dict):
        return None
    bridge = (recorded.get("inputs") or [{}])[0].get("path")
    return StartedTwin(state.state_dir, Path(bridge) if bridge else None, state.running())


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def interrupts_deferred(deliver: bool = True) -> Iterator[None]:
    """Hold Ctrl-C (SIGINT), and SIGTERM and SIGHUP (CI's cancel, ``timeout``, a closed terminal), back during
    the block, then deliver the first as it would have been (a ``KeyboardInterrupt``, usually), or with
    ``deliver=False`` drop them. Outside the main thread, where no signal handler can be set, the block simply
    runs."""
    pending: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, _: pending.append(signum)) for s in _STOP_SIGNALS}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
        if pending and deliver:
            signal.raise_signal(pending[0])


def mesh_configs(
    bridge: Bridge,
    bridge_dir: Path,
    store: PkiStore | None,
    manifests: dict[str, list[Path]],
    env: Mapping[str, str] = os.environ,
) -> tuple[dict[str, ConfigSet], list[str]]:
    """Each mesh's configuration: rendered from the spec, or the user's manifests for the meshes named.

    This reads the files (manifests, backend CAs, the PKI store) and places each exporter's gateway at the
    twin's load-balancer address; :func:`meshbridge.inputs.mesh_configs` assembles them. With ``store``, the
    gateway Secrets come from meshbridge's PKI; a Secret the user's manifests lack is filled from it, and the
    returned notices say so. ``${VAR}`` in manifests is expanded from the environment.
    """
    check_manifest_meshes(bridge, manifests)
    exporters = {ex.from_ for ex in bridge.spec.exports}
    return inputs.mesh_configs(
        bridge,
        twin_credentials(bridge, store) if store is not None else None,
        backend_cas=read_backend_cas(bridge, bridge_dir),
        addresses={m: lb_address(bridge, m) for m in exporters},
        manifests={
            mesh: (f"--manifests {mesh}={','.join(map(str, paths))}", load_documents(paths, env=env))
            for mesh, paths in manifests.items()
        },
    )


def _unlisted_secrets_note(name: str, pc: ProxyConfig, cfg: ConfigSet) -> list[str]:
    """A note when sidecar ``name`` reads certificate Secrets (credentialName, not a ``-cacert``) and no rule of its
    mesh lets its ServiceAccount list Secrets (lint MB213): the twin serves them (it models no RBAC), istiod may not."""
    proxy = pc.proxy
    needed = sorted({p[0] for s in pc.secrets if (p := parse_sds_name(s)) and not p[1]})
    if proxy.kind != "sidecar" or not needed or cfg.secret_list_rules(proxy.namespace, proxy.sa):
        return []
    why, fix = unlisted_secrets(proxy.namespace, proxy.sa)
    return [
        f"{name}: reads credentialName {', '.join(needed)}, which {why}; the twin serves it (it models no RBAC) "
        f"(lint MB213). Fix: {fix}"
    ]


def _secret_elsewhere(cfg: ConfigSet, pc: ProxyConfig, secret: str) -> str | None:
    """Why ``pc``'s proxy gets no ``secret`` when its mesh holds the Secret only in another namespace, and the fix,
    in lint MB207's words; ``None`` when it holds it nowhere else."""
    parsed = parse_sds_name(secret)
    if parsed is None:
        return None
    base, ns = parsed[0], pc.proxy.namespace
    held = sorted({s.metadata.namespace for s in cfg.secrets if s.metadata.name in (base, base + SDS_CA_SUFFIX)} - {ns})
    if not held:
        return None
    rule, whose = other_namespace(pc.proxy.kind)
    return (
        f"It reads credentialName {base} in namespace {ns}, but the Secret is in {', '.join(held)}: {rule} "
        f"(lint MB207). Fix: create the Secret {base} in namespace {ns} ({whose})"
    )


def _check_mounted(
    translated: Mapping[str, ProxyConfig], configs: Mapping[str, ConfigSet], mesh_of: Mapping[str, str]
) -> None:
    """Every file in the pod a proxy's Envoy reads is mounted: the twin does not start a proxy that would wait for
    a certificate nobody gave (a real pod without its secret volume does not start either).

    Raises:
        LocalError: per proxy, each path nobody gave, the fields that name it, and the fix.
    """
    lines = []
    for name, pc in translated.items():
        mesh = mesh_of[name]
        refs = file_references(configs[mesh])
        for path in pc.unmounted_files():
            named = [str(r) for r in refs if r.path == path] or ["its Envoy configuration"]
            lines.append(f"{name} reads {path} ({'; '.join(named)})")
    if not lines:
        return
    first = lines[0].split(" reads ", 1)[1].split(" (", 1)[0]
    raise LocalError(
        "the twin cannot start: its proxies read certificate files in the pod that no --cert gave, and a proxy "
        f"without them never gets its certificate: {'; '.join(lines)}. Fix: give each file: --cert PATH=FILE (e.g. "
        f"--cert {first}=./{first.rsplit('/', 1)[-1]}; MESH:PATH=FILE when several meshes name the path), or "
        "use credentialName with a Secret instead"
    )


def check_manifest_meshes(bridge: Bridge, manifests: Mapping[str, list[Path]]) -> None:
    """Every mesh ``--manifests`` names is a mesh of the bridge (a typo would otherwise run the rendered one), and
    every ``peer: true`` mesh has them (nothing is rendered for another owner's mesh).

    Raises:
        LocalError: naming the unknown meshes and the bridge's, or the peer meshes without manifests.
    """
    unknown = sorted(set(manifests) - set(bridge.spec.meshes))
    if unknown:
        raise LocalError(
            f"--manifests names mesh(es) {', '.join(unknown)} not in bridge {bridge.metadata.name!r} "
            f"(meshes: {', '.join(bridge.spec.meshes)}). Fix: write --manifests MESH=PATH with one of those meshes"
        )
    peers = [m for m, spec in bridge.spec.meshes.items() if spec.peer and m not in manifests]
    if peers:
        raise LocalError(
            f"mesh(es) {', '.join(peers)} of bridge {bridge.metadata.name!r} are marked 'peer: true' (another "
            "owner's): nothing is rendered for them here, so their proxies would run without configuration. Fix: "
            f"pass the documents their owner rendered (--manifests {peers[0]}=PATH), or run the twin from a bridge "
            "file naming every mesh without 'peer' with each side's rendered documents (README, 'Two owners')"
        )


def check_dataplanes(bridge: Bridge, manifests: Mapping[str, Sequence[Path]]) -> None:
    """The twin runs an ambient importer's waypoint on istiod's configuration of the *rendered* documents
    (:mod:`meshbridge.local.waypoint`): not yet on the user's own manifests for that mesh.

    Raises:
        LocalError: ``--manifests`` names a mesh with ``dataplane: ambient``, with what to run instead.
    """
    ambient = [m for m, spec in bridge.spec.meshes.items() if spec.dataplane == "ambient" and m in manifests]
    if ambient:
        raise LocalError(
            f"--manifests {ambient[0]}: mesh {ambient[0]} of bridge {bridge.metadata.name!r} has dataplane: ambient, "
            "whose waypoint the local twin runs on istiod's configuration of the rendered documents only, not yet "
            f"on manifests of your own. Fix: drop --manifests {ambient[0]} (the twin renders it), or run the twin on "
            f"a copy of the bridge file with dataplane: sidecar on {ambient[0]}"
        )


def write_system_ca(plan: LocalPlan) -> CertBundle:
    """Ensure the OS trust bundle the proxies trust (``plan.system_ca``) exists, and return the public root.

    The bundle is the emulated public root (ACM's issuer, created once under ``plan.public_ca_dir``)
    followed by this machine's OS bundle, if any. It is what istiod's proxies use for SIMPLE TLS without
    ``caCertificates`` (SDS ``file-root:system``): the exporter gateway's bootstrap names this file, so
    ``local up`` and ``translate`` both call this before any bootstrap is used. Rewritten only when its
    content changes.

    Raises:
        OSError: a file cannot be read or written.
    """
    ca_path = plan.public_ca_dir / "ca.crt"
    if ca_path.exists():
        ca = CertBundle(ca_path.read_bytes(), (plan.public_ca_dir / "ca.key").read_bytes())
    else:
        ca = issue_ca("meshbridge local public root (plays ACM's CA)", days=365)
        ca.write_to(plan.public_ca_dir, "ca")
    bundle = ca.cert_pem
    for path in OS_BUNDLES:
        if Path(path).is_file():
            bundle += Path(path).read_bytes()
            break
    if not plan.system_ca.is_file() or plan.system_ca.read_bytes() != bundle:
        write_atomic(plan.system_ca, bundle)
    return ca


def candidate_subnets(state_dir: Path) -> Iterator[str]:
    """/24s of 127.0.0.0/8 for this state dir, in order: derived from its path, so stable across runs."""
    digest = int(hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest(), 16)
    for i in range(256):
        n = (digest + i * 7919) % (250 * 256)
        yield f"127.{2 + n // 256}.{n % 256}.0/24"


def _free_plan(bridge: Bridge, state_dir: Path, privileged: bool, access_log: bool = True) -> LocalPlan:
    """The plan in the first candidate /24 whose addresses and ports nothing else holds; its proxies write no
    access log unless ``access_log``.

    Every DNS server's port, every proxy's admin port and every ALB listener is probed by binding it, so a
    topology left running elsewhere (its state folder moved or deleted) is never mistaken for this one.
    """
    for subnet in candidate_subnets(state_dir):
        plan = plan_topology(bridge, state_dir, subnet, privileged)
        wanted = [(ip, port, udp) for ip, port in plan.dns_servers.values() for udp in (True, False)]
        wanted += [(p.address, p.admin_port, False) for p in plan.placements.values()]
        wanted += [(a.address, lst.port, False) for a in plan.albs for lst in a.listeners]
        if not all(_free(ip, port, udp) for ip, port, udp in wanted):
            continue
        if access_log:
            return plan
        return dataclasses.replace(
            plan, placements={n: dataclasses.replace(p, access_log=None) for n, p in plan.placements.items()}
        )
    raise LocalError(
        "no free /24 in 127.0.0.0/8 for the local twin. Fix: stop other topologies ('meshbridge local down')"
    )


def _free(ip: str, port: int, udp: bool) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
    return True


def _trust_narrowed(before: Any, after: Any) -> bool:
    """Whether an SDS validation-context file now accepts less than before: a CA left the trust bundle, or a
    serial joined the CRLs. Certificate-only files (``tls_certificate``) never narrow trust."""

    def context(doc: Any) -> tuple[set[int], set[int]] | None:
        try:
            (res,) = doc["resources"]
            vc = res["validation_context"]
        except (KeyError, TypeError, ValueError):
            return None
        cas = base64.b64decode(vc["trusted_ca"]["inline_bytes"])
        crl = base64.b64decode(vc.get("crl", {}).get("inline_bytes", ""))
        return {c.serial_number for c in parse_certificates(cas)}, set(revoked_serials(crl))

    old, new = context(before), context(after)
    if old is None or new is None:
        return False
    return bool(old[0] - new[0]) or bool(new[1] - old[1])


def _check_inotify(proxies: Iterable[ProxyConfig]) -> None:
    """Refuse to start Envoys that the user's inotify budget cannot hold (they would fail with 'Too many open
    files' and be restarted in a loop).

    Raises:
        LocalError: the budget is too small, with the sysctl that fixes it.
    """
    budget = inotify.instances()
    if budget is None:
        return
    needed = sum(
        inotify.watched_files([pc.bootstrap(), *pc.xds_files().values()]) + inotify.PER_PROXY_MARGIN for pc in proxies
    )
    problem = inotify.budget_problem(needed, *budget)
    if problem:
        raise LocalError(problem)


def _secret_name(doc: Any) -> str:
    """The SDS secret name an SDS file serves (its one resource's ``name``)."""
    return str(doc["resources"][0]["name"])


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def input_digest(path: Path) -> str | None:
    """SHA-256 of a file, or of a folder's YAML files (names and contents, as ``--manifests`` reads them);
    ``None`` when it is gone."""
    try:
        if path.is_dir():
            h = hashlib.sha256()
            for f in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")):
                h.update(str(f.relative_to(path)).encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
            return h.hexdigest()
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


NO_ACCESS_LOG = "--no-access-log"
"""The 'local up' option that starts the twin's proxies without access logs."""


def shown(path: Path) -> str:
    """``path`` relative to the working folder when inside it (``bridge.yaml``), else as is."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _tail(path: Path, lines: int = 12) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _recorded(
    plan: LocalPlan,
    apps: dict[str, dict[str, Any]],
    manifests: dict[str, list[Path]],
    files: Sequence[MountedFile],
    paths: Mapping[str, ExportPath],
    run: dict[str, Any],
) -> dict[str, Any]:
    """What ``plan.json`` records of a start: the topology (:func:`_plan_json`), the manifests and the variables
    they referenced, the mounted files, each export's path, and ``run`` (the inputs' digests, when, translator,
    and ``unserved``: the host apps call for each export without a local backend → what 'local up' said of it)."""
    return {
        **_plan_json(plan, apps),
        "manifests": {m: [str(p.resolve()) for p in ps] for m, ps in manifests.items()},
        "certs": [{"mesh": f.mesh or "", "path": f.path, "file": str(Path(f.source).resolve())} for f in files],
        "manifest_env": referenced_env([p for ps in manifests.values() for p in ps], os.environ),
        **run,
        "export_paths": {n: {"path": x.path, "routed": x.routed, "why": x.why} for n, x in paths.items()},
    }


def _plan_json(plan: LocalPlan, apps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "subnet": plan.subnet,
        "privileged": plan.privileged,
        "access_log": any(p.access_log is not None for p in plan.placements.values()),
        "dns_servers": {m: f"{ip}:{port}" for m, (ip, port) in plan.dns_servers.items()},
        "dns_zones": plan.dns_zones,
        "proxies": {
            n: {
                "address": p.address,
                "admin": f"{p.address}:{p.admin_port}",
                "mesh": plan.proxies[n].mesh,
                "role": plan.proxies[n].role,
                "namespace": plan.proxies[n].proxy.namespace,
                "low_port_offset": p.low_port_offset,
                **apps.get(n, {}),
            }
            for n, p in plan.placements.items()
        },
        "albs": [
            {
                "name": a.name,
                "host": a.host,
                "address": a.address,
                "listeners": [
                    {"protocol": x.protocol, "advertised": x.advertised_port, "port": x.port} for x in a.listeners
                ],
            }
            for a in plan.albs
        ],
        "endpoint_ports": [
            {"host": h, "port": p, "local": lp}
            for (h, p), lp in next(iter(plan.placements.values())).endpoint_ports.items()
        ]
        if plan.placements
        else [],
        "endpoint_addresses": dict(next(iter(plan.placements.values())).endpoint_addresses) if plan.placements else {},
        "system_ca": str(plan.system_ca),
        "public_ca": str(plan.public_ca_dir / "ca.crt"),
    }
