"""The local twin on the real control plane: ``meshbridge local up --control-plane istiod`` (I/O, Linux, root).

Per mesh of the bridge, under the twin's supervisor (so everything keeps running after ``up`` returns, and a
process that dies is restarted as a kubelet restarts a container):

* an etcd and a kube-apiserver (:mod:`meshbridge.kube.envtest`, built from ``tools/kube``), with Istio's CRDs and
  what an Istio installation leaves (:mod:`meshbridge.kube.istio_standin`), and the permissions ``render --rbac``
  prints for the kubeconfig's users;
* the bridge applied by meshbridge's own apply (:func:`meshbridge.kube.apply_bridge`, what ``meshbridge apply
  --context`` runs), as the kubeconfig's user ``meshbridge``;
* istiod (upstream ``pilot-discovery``, ``tools/istiod``) with the twin's mesh CA plugged in
  (:mod:`meshbridge.local.controlplane`);
* each gateway and app sidecar as a pod (:func:`~meshbridge.local.controlplane.represent`) run by upstream's
  ``pilot-agent`` and the twin's Envoy, fed by its mesh's istiod over xDS and SDS, seeing a pod's ``/etc/resolv.conf``
  (the mesh's DNS server) and an image's OS trust bundle (the OS's plus the emulated ACM root that signs the ALB's
  listener) through :mod:`meshbridge.local.podfs`;
* what a cloud adds: the DNS server of each mesh, the emulated ALB and Lambda of each export (as the file-based twin
  runs them), and an L4 load balancer in front of the exporter's ingress gateway (an Envoy ``tcp_proxy`` from each
  Service port to the pod's targetPort, on the gateway's address, which the load balancer's name resolves to).

What the twin writes beside the bridge for pods without iptables, in Istio's own terms: a Sidecar per app that binds
its imported ports on the app's address (``captureMode: NONE``), and a WorkloadEntry for each egress gateway pod
(no EndpointSlice may list a loopback address). Everything of the run lives in ``<state>/local/controlplane/`` (the
API servers' keys and tokens, etcd's data, istiod's CA copy, the pods' tokens, the kubeconfig), removed by
``local down``. The differences from a cluster are on docs/fidelity.md.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshbridge.envoy.binary import envoy_path
from meshbridge.errors import LocalError
from meshbridge.gotools import ToolUnavailable
from meshbridge.istiod.pilot import ISTIOD, ControlPlaneUnavailable, ensure_pilot
from meshbridge.kube.binaries import ensure_binaries
from meshbridge.kube.client import KubeClient, apply_raw
from meshbridge.kube.envtest import (
    Cluster,
    Clusters,
    _apiserver_args,
    _etcd_args,
    _prepare,
    _ready,
    grant_permissions,
    permissions,
    write_kubeconfig,
)
from meshbridge.kube.istio_standin import MANAGER as STANDIN
from meshbridge.kube.istio_standin import install_bridge, lb_hostname
from meshbridge.local.certmanager import issuing_bridge, twin_store
from meshbridge.local.controlplane import (
    MANAGER,
    Launch,
    PodProxy,
    agent_launch,
    istiod_launch,
    record_admin,
    record_app_view,
    represent,
)
from meshbridge.local.meshca import mesh_ca
from meshbridge.local.plan import LocalPlan
from meshbridge.local.twin import (
    CONTROL_PLANE_DIR,
    OS_BUNDLES,
    LocalTwin,
    Port,
    StartInterrupted,
    _free_plan,
    _plan_json,
    _tail,
    export_url,
    input_digest,
)
from meshbridge.ports import free_ports
from meshbridge.spec.loader import read_backend_cas
from meshbridge.world import ProxySpec

Progress = Callable[[str], None]

START_TIMEOUT_S = 180.0
"""Seconds each stage of the start may take (two API servers start in 10-20 s on 2 cores; istiod and a proxy in
about a second each, more when the machine is shared)."""
FIRST_200_TIMEOUT_S = 60.0
"""Seconds 'up' waits, once everything is ready, for the first 200 through the whole path."""
AGENT_DNS_S = 10.0
"""Seconds an app's istio-agent may take to answer an imported host (its name table comes from istiod)."""
FIX_TOOLS = "make kube istiod"
REJECTED_S = 3.0
"""Seconds a proxy's Envoy may keep rejecting what istiod pushed before the start fails on it."""
STATUS_PORT = 15021
"""A gateway's readiness port in its Service (``status-port``); the twin's agents serve it on free ports."""


@dataclass
class ControlPlaneReport:
    """What ``up`` did.

    Attributes:
        plan: the topology (addresses, DNS, ALBs).
        kubeconfig: the kubeconfig of the meshes' API servers (contexts ``M``, ``M-cert``, ``M-admin``).
        seconds: from the start (tools already built) until every component was ready.
        first_200: from the start until the first request through the whole path answered 200 (``None``: none did
            within :data:`FIRST_200_TIMEOUT_S`, or no export has a local backend).
        first_status: the status of the last request tried (0: none answered).
        memory_kb: ``(RSS, PSS)`` of every process of the twin, in KiB.
        notices: what the user should know.
    """

    plan: LocalPlan
    kubeconfig: Path
    seconds: float = 0.0
    first_200: float | None = None
    first_status: int = 0
    memory_kb: tuple[int, int] = (0, 0)
    notices: list[str] = field(default_factory=list)


def ensure_tools(progress: Progress | None = None) -> dict[str, Path]:
    """kube-apiserver, etcd, pilot-discovery and pilot-agent (built once from ``tools/kube`` and ``tools/istiod``).

    Raises:
        ControlPlaneUnavailable: one line naming what is missing, and ``make kube istiod``.
    """
    try:
        return {**ensure_binaries(progress), **ensure_pilot(progress)}
    except ToolUnavailable as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ControlPlaneUnavailable(
            f"local up --control-plane istiod needs Go or cached builds of tools/kube and tools/istiod: {first}. "
            f"Fix: {FIX_TOOLS}"
        ) from None


def os_bundle() -> str:
    """The OS trust bundle istiod names for TLS without ``caCertificates`` (the first Istio finds, of these)."""
    found = next((p for p in OS_BUNDLES if Path(p).is_file()), None)
    if found is None:
        raise LocalError(f"no OS trust bundle on this machine ({', '.join(OS_BUNDLES)}); istiod needs one")
    return found


class ControlPlaneTwin(LocalTwin):
    """The local twin of one bridge on the real control plane, kept in ``<state>/local``."""

    @property
    def cp_dir(self) -> Path:
        return self.root / CONTROL_PLANE_DIR

    def up_control_plane(self, tools: dict[str, Path], progress: Progress = lambda _: None) -> ControlPlaneReport:
        """Start everything (see the module's docstring), wait until it is ready and for the first 200.

        Args:
            tools: :func:`ensure_tools`' binaries.
            progress: receives one line per step.

        Raises:
            LocalError: not root, already running, or a component did not become ready (its log's end quoted).
                Nothing is left running after an error, and the run's keys are removed.
            StartInterrupted: Ctrl-C: everything the start had spawned was stopped, the run's keys removed.
        """
        if os.geteuid() != 0:
            raise LocalError(
                "local up --control-plane istiod runs each proxy with a pod's /etc/resolv.conf and trust bundle (a "
                "mount namespace) and binds the ports a cluster's load balancer and pods bind (443, 80), which "
                "needs root. Fix: run it as root, or use the file-based twin: meshbridge local up"
            )
        if self.running():
            raise LocalError(
                f"the local twin of {self.bridge.metadata.name} is already up (state folder {self.state_dir}). "
                f"Fix: stop it first: {self.command('local down')}"
            )
        t0 = time.monotonic()
        self._launched = None
        try:
            return self._start(tools, progress, t0)
        except KeyboardInterrupt:
            stopped, left = self._abort()
            shutil.rmtree(self.cp_dir, ignore_errors=True)
            raise StartInterrupted(stopped, left) from None
        except BaseException:
            self._abort()
            shutil.rmtree(self.cp_dir, ignore_errors=True)
            raise

    def _start(self, tools: dict[str, Path], progress: Progress, t0: float) -> ControlPlaneReport:
        store = twin_store(self.bridge, self.state_dir)
        issued = [a for a in store.issue(issuing_bridge(self.bridge)) if a.action != "kept"]
        if issued:
            progress(f"issued {len(issued)} certificate(s) into {store.root}")
        for log in self.root.glob("**/*.log"):
            log.unlink(missing_ok=True)
        shutil.rmtree(self.cp_dir, ignore_errors=True)
        self.cp_dir.mkdir(parents=True, mode=0o700)
        plan = _free_plan(self.bridge, self.cp_dir, privileged=True)  # its CAs and the ALBs' keys: in the run's folder
        self._check_ports(plan)
        self._add_lb_names(plan)
        self._write_public_pki(plan)
        clusters = {m: _prepare(m, self.cp_dir / "clusters" / m) for m in self.bridge.spec.meshes}
        components = [self._dns_component(plan), *(self._alb_component(plan, a) for a in plan.albs)]
        components += self._lb_components(plan)
        for mesh, c in clusters.items():
            components += _cluster_components(mesh, c, tools)
        self._write_components(components)
        (self.root / "status.json").unlink(missing_ok=True)
        self._start_supervisor()
        progress(f"topology {plan.subnet}: API servers, DNS, {len(plan.albs)} ALB(s) and load balancer starting")
        self._wait_for([c["name"] for c in components], progress, t0)
        for c in clusters.values():
            _wait_api(c, t0)
        run = Clusters(self.cp_dir / "clusters", clusters, self.cp_dir / "kubeconfig")
        write_kubeconfig(run)
        self._install(plan, run, progress, t0)
        launches = self._control_plane(plan, run, tools, progress)
        components += launches
        self._write_components(components)
        self._write_plan(plan, launches)
        assert self._launched is not None
        os.kill(self._launched.pid, signal.SIGHUP)  # the supervisor adds istiod and the proxies
        progress(f"istiod and {len(plan.proxies)} proxies starting")
        self._wait_for([c["name"] for c in launches], progress, t0)
        self._agent_names()
        self._record_app_views(plan, run)
        report = ControlPlaneReport(plan, run.kubeconfig, seconds=time.monotonic() - t0)
        report.first_200, report.first_status = self._first_200(t0)
        report.memory_kb = self.memory()
        return report

    # -- stage 1: what a cloud and a cluster's servers are ------------------------------------------------

    def _add_lb_names(self, plan: LocalPlan) -> None:
        """The load-balancer name the stand-in's cloud writes in an exporter's ingress Service resolves, in every
        mesh, to the gateway's address (where the twin's load balancer listens), as the spec's address does."""
        for name, spec in plan.proxies.items():
            gw = self.bridge.spec.meshes[spec.mesh].ingress_gateway
            if spec.role == "ingress" and gw is not None:
                for zone in plan.dns_zones.values():
                    zone[lb_hostname(spec.mesh, gw)] = plan.addresses[name]

    def _check_ports(self, plan: LocalPlan) -> None:
        """The ports the pods bind (a gateway's targetPorts on the wildcard address, as in a pod) are free
        (:func:`_bindable`).

        Raises:
            LocalError: one is taken (another twin on the control plane, or anything else): which, and the fix.
        """
        wildcards = _wildcard_listeners()
        taken = sorted(
            {
                f"{port.address}:{port.port} ({name})"
                for name, proxy in plan.proxies.items()
                for port in self._pod_ports(proxy, plan.addresses[name])
                if not _bindable(port.address, port.port, wildcards)
            }
        )
        if taken:
            raise LocalError(
                f"the pods of the twin on the control plane bind their ports as in a cluster, and these are taken: "
                f"{', '.join(taken)}. Fix: stop what holds them (another 'local up --control-plane istiod': "
                f"meshbridge local down with its -f or --state-dir)"
            )

    def _lb_components(self, plan: LocalPlan) -> list[dict[str, Any]]:
        """An L4 load balancer per exporter's ingress gateway: each Service port → the pod's targetPort."""
        out = []
        for name, spec in plan.proxies.items():
            svc = spec.proxy.service
            if spec.role != "ingress" or svc is None:
                continue
            address = plan.addresses[name]
            ports = [(p.port, p.target_port if isinstance(p.target_port, int) else p.port) for p in svc.spec.ports]
            ports = [(port, target) for port, target in ports if target != STATUS_PORT]
            folder = self.root / "lb" / spec.mesh
            (admin,) = free_ports(1)
            path = folder / "envoy.json"
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_lb_bootstrap(address, ports, admin), indent=1))
            out.append(
                {
                    "name": f"{spec.mesh}/lb",
                    "argv": [str(envoy_path()), "-c", str(path), "--disable-hot-restart", "--concurrency", "1"],
                    "log": str(folder / "lb.log"),
                    "address": address,
                    "probe": {"kind": "tcp", "host": address, "port": ports[0][0]},
                    "info": {
                        "mesh": spec.mesh,
                        "kind": "lb",
                        "ports": [Port(f"lb {p}→{t}", address, p, p).to_dict() for p, t in ports],
                    },
                }
            )
        return out

    def _write_components(self, components: list[dict[str, Any]]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "supervisor.json").write_text(json.dumps({"components": components}, indent=1))

    def _wait_for(self, names: Iterable[str], progress: Progress, t0: float) -> None:
        """Wait until the components ``names`` are ready; one progress line each.

        Raises:
            LocalError: one failed; an Envoy kept rejecting what istiod pushed for :data:`REJECTED_S` (a listener
                that cannot bind its port: istiod pushes the same again, so waiting longer would not help); or
                :data:`START_TIMEOUT_S` passed. Each names Envoy's own message and the last lines of the log.
        """
        wanted, seen, rejected = set(names), set(), dict[str, float]()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            comps = [c for c in self._read_status().get("components", []) if c["name"] in wanted]
            for c in comps:
                if c["ready"] and c["name"] not in seen:
                    seen.add(c["name"])
                    progress(f"  ready: {c['name']} ({c['address']}) at {time.monotonic() - t0:.1f} s")
                elif not c["ready"] and c.get("kind") == "pilot-agent" and _why(Path(c["log"])):
                    rejected.setdefault(c["name"], time.monotonic())
            if seen == wanted:
                return
            failed = [c for c in comps if c.get("failed")]
            stuck = [c for c in comps if time.monotonic() - rejected.get(c["name"], time.monotonic()) > REJECTED_S]
            if failed or stuck:
                lines = [
                    f"{c['name']} {'failed' if c in failed else 'is not ready'}{_why(Path(c['log']))}; last lines of "
                    f"{c['log']}:\n{_tail(Path(c['log']), 5)}"
                    for c in failed + stuck
                ]
                raise LocalError("the local twin cannot start (everything was stopped):\n" + "\n".join(lines))
            time.sleep(0.1)
        late = [c for c in self._read_status().get("components", []) if c["name"] in wanted - seen]
        lines = [f"{c['name']} is not ready; last lines of {c['log']}:\n{_tail(Path(c['log']))}" for c in late]
        raise LocalError(
            f"the local twin did not become ready within {START_TIMEOUT_S:.0f} s (everything was stopped):\n"
            + "\n".join(lines or [f"the supervisor did not start them; see {self.root / 'supervisor.log'}"])
        )

    # -- stage 2: the meshes' objects, istiod and the pods ------------------------------------------------

    def _install(self, plan: LocalPlan, run: Clusters, progress: Progress, t0: float) -> None:
        """Istio's CRDs and installation, the permissions of 'render --rbac', the twin's pods in place of the
        stand-in's, then the bridge, applied as ``meshbridge apply --context`` applies it (as the kubeconfig's user
        ``meshbridge``)."""
        from meshbridge.kube import apply_bridge

        for mesh, c in run.clusters.items():
            with c.client() as admin:
                install_bridge(self.bridge, mesh, admin)
                version = self.bridge.spec.meshes[mesh].istio.version
                progress(
                    f"clusters: {mesh}: Istio's CRDs and installation objects in place; the control plane is "
                    f"{ISTIOD.label(ISTIOD.directory)}'s istiod (the spec's {version} is what the bridge renders for)"
                )
                grant_permissions(admin, permissions(self.bridge, mesh))
                proxies = [(n, p) for n, p in plan.proxies.items() if p.mesh == mesh]
                for name, proxy in proxies:
                    represent(admin, _pod(proxy, plan.addresses[name]), secret_access=proxy.role != "app")
                _drop_standin_pods(admin, {p.proxy.namespace for _, p in proxies})
        clients = {m: c.client(admin=False) for m, c in run.clusters.items()}
        try:
            outcome = apply_bridge(
                self.bridge,
                clients,
                credentials=twin_store(self.bridge, self.state_dir).credentials(self.bridge),
                backend_cas=read_backend_cas(self.bridge, self.bridge_dir),
                wait=False,
            )
        finally:
            for client in clients.values():
                client.close()
        count = sum(len(r.done) for r in outcome.results)
        progress(f"applied the bridge ({count} objects) at {time.monotonic() - t0:.1f} s")

    def _control_plane(
        self, plan: LocalPlan, run: Clusters, tools: dict[str, Path], progress: Progress
    ) -> list[dict[str, Any]]:
        """Per mesh: istiod's component, what the twin adds beside the bridge, and each proxy's pod and component."""
        out: list[dict[str, Any]] = []
        for mesh, c in run.clusters.items():
            spec = self.bridge.spec.meshes[mesh]
            ca = mesh_ca(plan.mesh_ca_dir(mesh), mesh)  # in the run's folder: removed by 'down'
            istiod = istiod_launch(mesh, spec, c, ca, self.cp_dir / "istiod" / mesh, binary=tools["pilot-discovery"])
            out.append(_component(f"{mesh}/istiod", istiod, mesh, "istiod", [f"{mesh}/kube-apiserver"]))
            xds = f"localhost:{istiod.ports['secure_grpc']}"
            root_cert = istiod.cwd / "cacerts" / "root-cert.pem"
            proxies = [(n, p) for n, p in plan.proxies.items() if p.mesh == mesh]
            with c.client() as admin:
                self._no_capture(admin, plan, proxies)
                for name, proxy in proxies:
                    pod = _pod(proxy, plan.addresses[name])
                    folder = self.cp_dir / "pods" / name
                    launch = agent_launch(xds, root_cert, spec, admin, pod, folder, binary=tools["pilot-agent"])
                    record_admin(admin, pod, f"127.0.0.1:{launch.ports['admin']}")
                    out.append(self._agent_component(name, proxy, pod, launch, plan))
            progress(f"control plane: {mesh}: istiod and the pilot-agents of {len(proxies)} pod(s) to start")
        return out

    def _no_capture(self, admin: KubeClient, plan: LocalPlan, proxies: list[tuple[str, ProxySpec]]) -> None:
        """A Sidecar per app binding its imported ports on the app's address (no iptables), and a WorkloadEntry per
        egress gateway pod (no EndpointSlice may list a loopback address), under the twin's field manager.

        The Sidecar also binds the egress gateway Service ports its routes send to: an egress listener with a port
        makes istiod keep, of each service it imports, that port only, so without them the app's sidecar would get
        no cluster for the egress gateway's port (helloworld's 80 beside the apps' 5000) and answer 503 NC, where a
        pod with iptables and no Sidecar has them all."""
        for name, proxy in proxies:
            p = proxy.proxy
            if proxy.role == "app":
                imports = [ex for ex in self.bridge.spec.exports if proxy.mesh in ex.to]
                ports = sorted({port for ex in imports for port in (ex.port, ex.egress_port)})
                doc = _sidecar(f"{p.name}-twin-no-capture", p.namespace, dict(p.labels), plan.addresses[name], ports)
                kind = "sidecars"
            elif proxy.role == "egress" and p.service is not None:
                targets = {
                    str(sp.name): int(sp.target_port) if isinstance(sp.target_port, int) else sp.port
                    for sp in p.service.spec.ports
                }
                doc = _workload_entry(f"{p.name}-twin", p.namespace, dict(p.labels), plan.addresses[name], targets)
                kind = "workloadentries"
            else:
                continue
            path = f"/apis/networking.istio.io/v1/namespaces/{p.namespace}/{kind}/{doc['metadata']['name']}"
            apply_raw(admin, path, doc, manager=MANAGER)

    def _agent_component(
        self, name: str, proxy: ProxySpec, pod: PodProxy, launch: Launch, plan: LocalPlan
    ) -> dict[str, Any]:
        """A proxy's pilot-agent under :mod:`meshbridge.local.podfs`: the pod's resolv.conf and trust bundle."""
        ns = pod.namespace
        dns_ip, _ = plan.dns_servers[proxy.mesh]
        resolv = launch.cwd / "etc" / "resolv.conf"
        resolv.write_text(
            f"nameserver {dns_ip}\nsearch {ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
        )
        binds = ["--bind", f"{plan.system_ca}={os_bundle()}", "--bind", f"{resolv}=/etc/resolv.conf"]
        launch = Launch(
            [sys.executable, "-m", "meshbridge.local.podfs", *binds, "--", *launch.argv],
            launch.env,
            launch.cwd,
            launch.log,
            launch.ports,
            launch.ready_url,
        )
        component = _component(name, launch, proxy.mesh, "pilot-agent", [f"{proxy.mesh}/istiod"])
        component["address"] = pod.ip
        admin = Port("admin", "127.0.0.1", launch.ports["admin"], launch.ports["admin"])
        component["info"]["ports"] = [x.to_dict() for x in [*self._pod_ports(proxy, pod.ip), admin]]
        component["info"]["admin"] = f"127.0.0.1:{launch.ports['admin']}"
        component["info"]["dns"] = f"127.0.0.1:{launch.ports['dns']}"
        component["info"]["pod"] = f"{ns}/{pod.name}"
        return component

    def _pod_ports(self, proxy: ProxySpec, ip: str) -> list[Port]:
        """What the pod's Envoy binds: a gateway's Service ports on their targetPorts (the wildcard address, as in a
        pod), an app's imported ports on its address (the twin's Sidecar)."""
        if proxy.role == "app":
            ports = sorted({ex.port for ex in self.bridge.spec.exports if proxy.mesh in ex.to})
            return [Port(f"{ip}_{port}", ip, port, port) for port in ports]
        svc = proxy.proxy.service
        out = []
        for sp in svc.spec.ports if svc is not None else []:
            target = sp.target_port if isinstance(sp.target_port, int) else sp.port
            if target == STATUS_PORT:  # the agent's readiness port, which the twin moves to a free one
                continue
            out.append(Port(f"0.0.0.0_{target}", "0.0.0.0", target, sp.port))
        return out

    def _write_plan(self, plan: LocalPlan, launches: list[dict[str, Any]]) -> None:
        """``plan.json`` as the file-based twin writes it (what 'local curl', 'status' and 'proxy-config' read), with
        each proxy's admin the agent's Envoy's and each app's imported hosts answered by its agent (DNS capture)."""
        apps: dict[str, dict[str, Any]] = {}
        for name, proxy in plan.proxies.items():
            if proxy.role == "app":
                imports = [ex for ex in self.bridge.spec.exports if proxy.mesh in ex.to]
                apps[name] = {"listener_ports": sorted({ex.port for ex in imports}), "agent_dns": {}}
        doc = _plan_json(plan, apps)
        agents = {c["name"]: c["info"] for c in launches if "admin" in c["info"]}
        for name, p in doc["proxies"].items():
            p["admin"] = agents.get(name, {}).get("admin", p["admin"])
            if name in agents and p["role"] == "app":
                p["agent_dns_server"] = agents[name]["dns"]
        doc.update(
            {
                "control_plane": "istiod",
                "kubeconfig": str(self.cp_dir / "kubeconfig"),
                "contexts": {m: m for m in self.bridge.spec.meshes},
                "up_at": time.time(),
                "inputs": [{"path": str(self.bridge_file), "sha256": input_digest(self.bridge_file)}],
                "manifests": {},
                "certs": [],
            }
        )
        (self.root / "plan.json").write_text(json.dumps(doc, indent=1))

    # -- after the start ---------------------------------------------------------------------------------

    def _agent_names(self) -> None:
        """Each app's imported hosts as its istio-agent answers them (DNS capture: the ServiceEntry's address, or
        the one it allocated), asked of the agent's DNS proxy and written in ``plan.json`` for 'local curl'. A host
        the agent does not answer within :data:`AGENT_DNS_S` is left to the mesh's DNS, as in a pod."""
        from dnslib import QTYPE, DNSRecord

        doc = self.plan()
        for p in doc["proxies"].values():
            if p["role"] != "app" or "agent_dns_server" not in p:
                continue
            ip, port = p["agent_dns_server"].rsplit(":", 1)
            for host in [ex.import_host for ex in self.bridge.spec.exports if p["mesh"] in ex.to]:  # what apps call
                deadline = time.monotonic() + AGENT_DNS_S
                while host not in p["agent_dns"] and time.monotonic() < deadline:
                    try:
                        reply = DNSRecord.parse(DNSRecord.question(host).send(ip, int(port), timeout=1.0))
                        answers = [str(rr.rdata) for rr in reply.rr if rr.rtype == QTYPE.A]
                    except OSError:
                        answers = []
                    if answers:
                        p["agent_dns"][host] = answers
                    else:
                        time.sleep(0.1)
        (self.root / "plan.json").write_text(json.dumps(doc, indent=1))

    def _record_app_views(self, plan: LocalPlan, run: Clusters) -> None:
        """On each app's pod, how to send as the app (:func:`controlplane.record_app_view`), once its agent's names
        are known: what 'verify --context' sends by, as 'local curl' does, where no kubelet serves exec."""
        from meshbridge.local.curl import view_doc

        for name, proxy in plan.proxies.items():
            if proxy.role == "app":
                with run.clusters[proxy.mesh].client() as admin:
                    record_app_view(admin, _pod(proxy, plan.addresses[name]), view_doc(self.app_view(name)))

    def _first_200(self, t0: float) -> tuple[float | None, int]:
        """Seconds from ``t0`` to the first 200 for the first served export from its first app, and the last status."""
        from meshbridge.local.curl import CurlError, curl

        served = [ex for ex in self.bridge.spec.exports if ex.backend.local is not None]
        if not served or not any(p["role"] == "app" for p in self.plan()["proxies"].values()):
            return None, 0
        view = self.app_view(mesh=served[0].to[0])
        status, deadline = 0, time.monotonic() + FIRST_200_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                status = curl(view, export_url(served[0]), timeout=5.0).status
            except CurlError:
                status = 0
            if status == 200:
                return time.monotonic() - t0, status
            time.sleep(0.2)
        return None, status

    def memory(self) -> tuple[int, int]:
        """``(RSS, PSS)`` in KiB of the supervisor and every process under it (the agents' Envoys included)."""
        roots = [p.pid for p in self.processes().values()]
        return _memory(roots)


def _lb_bootstrap(address: str, ports: list[tuple[int, int]], admin: int) -> dict[str, Any]:
    """An Envoy that forwards TCP from ``address:port`` to ``address:target`` for each ``(port, target)``."""
    listeners, clusters = [], []
    for port, target in ports:
        cluster = f"pod_{target}"
        proxy = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
            "stat_prefix": f"lb_{port}",
            "cluster": cluster,
        }
        listeners.append(
            {
                "name": f"lb_{port}",
                "address": {"socket_address": {"address": address, "port_value": port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": proxy}]}],
            }
        )
        endpoint = {"endpoint": {"address": {"socket_address": {"address": address, "port_value": target}}}}
        clusters.append(
            {
                "name": cluster,
                "type": "STATIC",
                "connect_timeout": "5s",
                "load_assignment": {"cluster_name": cluster, "endpoints": [{"lb_endpoints": [endpoint]}]},
            }
        )
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def _cluster_components(mesh: str, c: Cluster, tools: dict[str, Path]) -> list[dict[str, Any]]:
    """The supervisor's etcd and kube-apiserver of one mesh (envtest's command lines)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": str(c.root / "tmp")}
    (c.root / "tmp").mkdir(parents=True, exist_ok=True)
    client = Port("client", "127.0.0.1", c.etcd_port, c.etcd_port).to_dict()
    https = Port("https", "127.0.0.1", c.port, c.port).to_dict()
    etcd = {
        "name": f"{mesh}/etcd",
        "argv": _etcd_args(tools["etcd"], c),
        "log": str(c.log("etcd")),
        "address": f"127.0.0.1:{c.etcd_port}",
        "env": env,
        "probe": {"kind": "tcp", "host": "127.0.0.1", "port": c.etcd_port},
        "info": {"mesh": mesh, "kind": "etcd", "ports": [client]},
    }
    api = {
        "name": f"{mesh}/kube-apiserver",
        "argv": _apiserver_args(tools["kube-apiserver"], c),
        "log": str(c.log("kube-apiserver")),
        "address": c.url,
        "env": env,
        "after": [f"{mesh}/etcd"],
        "probe": {"kind": "tcp", "host": "127.0.0.1", "port": c.port},
        "info": {"mesh": mesh, "kind": "kube-apiserver", "ports": [https]},
    }
    return [etcd, api]


def _why(log: Path) -> str:
    """What Envoy said when it rejected a configuration istiod pushed (its last such line in the agent's log, e.g. a
    listener that cannot bind its port), as ``: ...``; empty when it said nothing of the kind."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    said = [line for line in lines if " rejected: " in line and "NOT ready" not in line]
    return f": Envoy rejected its configuration: {said[-1].split(' rejected: ', 1)[1].strip()}" if said else ""


def _wait_api(c: Cluster, t0: float) -> None:
    """Wait until the API server answers ``/readyz``."""
    why, deadline = "", time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        ok, why = _ready(c)
        if ok:
            return
        time.sleep(0.25)
    raise LocalError(
        f"the API server of mesh {c.mesh} did not answer /readyz within {START_TIMEOUT_S:.0f} s (last: {why}); the end "
        f"of its log ({c.log('kube-apiserver')}):\n{c.log_tail('kube-apiserver')}"
    )


def _component(name: str, launch: Launch, mesh: str, kind: str, after: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "argv": launch.argv,
        "log": str(launch.log),
        "address": "127.0.0.1",
        "cwd": str(launch.cwd),
        "env": launch.env,
        "after": after,
        "probe": {"kind": "http", "url": launch.ready_url},
        "info": {
            "mesh": mesh,
            "kind": kind,
            "ports": [Port(role, "127.0.0.1", port, port).to_dict() for role, port in launch.ports.items()],
        },
    }


def _wildcard_listeners() -> set[int]:
    """The TCP ports something listens on at the wildcard address (``0.0.0.0`` or ``::``), from ``/proc/net``."""
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, port = local.rpartition(":")
            if state == "0A" and set(address) == {"0"}:  # LISTEN on the wildcard address
                ports.add(int(port, 16))
    return ports


def _bindable(address: str, port: int, wildcards: set[int]) -> bool:
    """Whether a pod's listener can take ``address:port``: on the wildcard address, when no other wildcard listener
    holds the port (Envoy's listeners share a port through ``SO_REUSEPORT``, and a connection goes to the listener
    of its exact address first, so other twins' Envoys on their own addresses do not matter, but two wildcard
    listeners would split the connections); on its own address, when it binds (``SO_REUSEADDR``, as Envoy: an
    earlier run's connections in TIME_WAIT do not hold it)."""
    if address == "0.0.0.0":
        return port not in wildcards
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def _drop_standin_pods(admin: KubeClient, namespaces: Iterable[str]) -> None:
    """Delete the stand-in's Pods in ``namespaces`` (:mod:`meshbridge.kube.istio_standin` writes one per gateway and
    app): the twin's own pods, which run, take their place."""
    for ns in sorted(namespaces):
        listed = admin.request("GET", f"/api/v1/namespaces/{ns}/pods", what=f"the Pods of {ns}", verb="list")
        for pod in (listed or {}).get("items", []):
            meta = pod["metadata"]
            if any(m.get("manager") == STANDIN for m in meta.get("managedFields") or []):
                path = f"/api/v1/namespaces/{ns}/pods/{meta['name']}"
                query = [("gracePeriodSeconds", "0")]
                admin.request("DELETE", path, query=query, what=f"Pod {ns}/{meta['name']}", verb="delete")


def _pod(proxy: ProxySpec, ip: str) -> PodProxy:
    p = proxy.proxy
    return PodProxy(f"{p.name}-twin-0", p.namespace, p.name, dict(p.labels), p.sa, ip, p.kind)


def _sidecar(name: str, ns: str, labels: dict[str, str], ip: str, ports: list[int]) -> dict[str, Any]:
    egress = [
        {"port": {"number": port, "protocol": "HTTP", "name": f"http-{port}"}, "bind": ip, "captureMode": "NONE"}
        | {"hosts": ["*/*"]}
        for port in ports
    ]
    spec = {"workloadSelector": {"labels": labels}, "egress": egress}
    meta = {"name": name, "namespace": ns}
    return {"apiVersion": "networking.istio.io/v1", "kind": "Sidecar", "metadata": meta, "spec": spec}


def _workload_entry(name: str, ns: str, labels: dict[str, str], ip: str, ports: dict[str, int]) -> dict[str, Any]:
    spec = {"address": ip, "labels": labels, "ports": ports}
    return {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (``/proc/<pid>/task/*/children``); a process gone meanwhile is skipped."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += descendants(int(child))
    return out


def _memory(roots: list[int]) -> tuple[int, int]:
    """``(RSS, PSS)`` in KiB of ``roots`` and their descendants (``/proc/<pid>/smaps_rollup``)."""
    rss = pss = 0
    for pid in sorted({p for root in roots for p in descendants(root)}):
        try:
            text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "Rss":
                rss += int(value.split()[0])
            elif key == "Pss":
                pss += int(value.split()[0])
    return rss, pss


def failing_hops(plan: dict[str, Any]) -> list[str]:
    """Each proxy's upstream hosts whose requests all failed (Envoy's ``/clusters``: ``rq_error`` and no
    ``rq_success``), as ``<proxy>: <cluster> → <host> (<address>): N request(s) failed, none succeeded``; what a 5xx of
    the control-plane twin, whose proxies keep no access log (Istio's default mesh config), is explained by.

    Args:
        plan: the twin's ``plan.json`` (:meth:`TwinState.plan`).
    """
    import httpx

    out = []
    for name, proxy in plan.get("proxies", {}).items():
        try:
            text = httpx.get(f"http://{proxy['admin']}/clusters", timeout=2.0).text
        except httpx.HTTPError:
            continue
        hosts: dict[tuple[str, str], dict[str, str]] = {}
        for line in text.splitlines():
            parts = line.split("::")
            if len(parts) == 4:
                hosts.setdefault((parts[0], parts[1]), {})[parts[2]] = parts[3]
        for (cluster, address), stats in hosts.items():
            errors = int(stats.get("rq_error", "0") or 0)
            if errors and stats.get("rq_success") == "0":
                host = stats.get("hostname") or address
                out.append(f"{name}: {cluster} → {host} ({address}): {errors} request(s) failed, none succeeded")
    return out
