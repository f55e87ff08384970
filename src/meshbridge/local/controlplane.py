"""The twin on the real control plane: istiod per mesh against its local API server, and proxies fed by it (I/O).

A mesh's control plane is upstream's ``pilot-discovery`` (:mod:`meshbridge.istiod.pilot`, the Istio the oracle
pins) run outside a cluster, as ``istiod`` runs in one:

* it watches the mesh's API server (:mod:`meshbridge.kube.envtest`) through a kubeconfig of its own (the
  cluster's admin: no ClusterRole of Istio's chart is installed);
* its CA is plugged in from the twin's mesh CA (:func:`meshbridge.local.meshca.mesh_ca`), the ``cacerts`` files
  (``ca-cert.pem``, ``ca-key.pem``, ``root-cert.pem``, ``cert-chain.pem``) in the folder ``ROOT_CA_DIR`` names, so
  the mesh's trust is the twin's; it serves its xDS and CA over mutual TLS on a free loopback port (its 15012),
  with a serving certificate for ``istiod.istio-system.svc`` and ``localhost`` (``ISTIOD_CUSTOM_HOST``);
* the mesh config is what ``meshbridge render --install`` gives the mesh
  (:func:`meshbridge.render.install.mesh_config`), the environment the spec's ``pilotEnv`` plus what keeps its
  output within upstream Envoy
  (:data:`UPSTREAM_ENVOY_ENV`: no ALPN override, no metadata exchange; no Telemetry, so no Istio stats filter);
  no webhook is patched (there is none) and the analysis controller is off.

A proxy is a pod without a kubelet: meshbridge writes what the kubelet and the ReplicaSet controller would
(:func:`represent`: the ServiceAccount, a Pod with its IP through ``pods/status``; for a gateway, the Role and
RoleBinding Istio's gateway chart installs, so istiod's SubjectAccessReview lets it read its ``credentialName``
Secrets). Then upstream's
``pilot-agent`` runs in a folder that plays the pod's file system (:func:`start_agent`): it asks istiod's CA for
the workload certificate with a ServiceAccount token of audience ``istio-ca`` (TokenRequest, as the projected
volume gives it), writes Istio's own bootstrap (the template of the pinned module) with the pod's node metadata,
starts the twin's upstream Envoy on it, and serves it over its Unix sockets: SDS for ``default`` and ``ROOTCA``,
and the xDS proxy to istiod, which also streams the ``kubernetes://`` Secrets (istiod's SDS generator).

What differs from a cluster (docs/fidelity.md): no kubelet, CNI or iptables capture; loopback addresses as pod IPs
(and so no EndpointSlice lists them); the gateways' listeners bind the wildcard address on the pod's target ports,
as in a pod, so two twins on one machine must not share a gateway's ports.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meshbridge.envoy.binary import envoy_path
from meshbridge.fsutil import write_atomic
from meshbridge.gotools import module_file
from meshbridge.istiod.pilot import ISTIOD, ControlPlaneUnavailable, ensure_pilot
from meshbridge.kube.client import TWIN_APP_VIEW, TWIN_ENVOY_ADMIN, KubeClient, apply_raw
from meshbridge.kube.envtest import Cluster
from meshbridge.kube.errors import KubeApiError
from meshbridge.local.process import ProcessId, spawn, stop
from meshbridge.pki.x509 import CertBundle
from meshbridge.ports import free_ports
from meshbridge.render.install import mesh_config
from meshbridge.spec.models import Mesh

Progress = Callable[[str], None]

ISTIO_NAMESPACE = "istio-system"
CLUSTER_ID = "Kubernetes"
"""istiod's cluster ID and the proxies' ``CLUSTER_ID`` (one cluster per mesh; Istio's default name)."""
MANAGER = "meshbridge-twin"
"""The field manager of what meshbridge writes for the twin's pods (their statuses under ``kubelet``)."""
TOKEN_AUDIENCE = "istio-ca"
TOKEN_SECONDS = 43200
BOOTSTRAP_TEMPLATE = "tools/packaging/common/envoy_bootstrap.json"
"""Istio's bootstrap template in its module (the proxy image carries it as ``envoy_bootstrap_tmpl.json``)."""
STATS_REFUSALS = r"listener\..*\.(ssl\..*|no_filter_chain_match)"
"""The stats each pod's Envoy emits beyond Istio's defaults (``proxyStatsMatcher``): its listeners' TLS counters
and unmatched connections, where a refused client shows."""
START_TIMEOUT = 60.0
"""Seconds istiod may take to answer ``/ready`` and a proxy's Envoy to be ready (both take about a second)."""

UPSTREAM_ENVOY_ENV = {
    "PILOT_ENABLE_ALPN_FILTER": "false",  # istio.alpn: an HTTP filter of Istio's proxy build only
    "PILOT_ENABLE_METADATA_EXCHANGE": "false",  # istio.metadata_exchange: likewise
}
"""istiod's environment that keeps what it pushes within upstream Envoy's filters (it wins over ``pilotEnv``)."""


def _http_status(url: str, timeout: float = 2.0) -> int:
    """The status of ``GET url`` (0 when nothing answers)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ControlPlaneUnavailable(
                f"{what} exited with status {proc.returncode} while starting; the end of its log ({log}):\n{_tail(log)}"
            )
        if ready():
            return
        time.sleep(0.1)
    raise ControlPlaneUnavailable(
        f"{what} was not ready within {timeout:.0f} s; the end of its log ({log}):\n{_tail(log)}"
    )


def _run(launch: Launch, what: str, timeout: float) -> tuple[subprocess.Popen[bytes], ProcessId]:
    """Start ``launch`` and wait until its ``ready_url`` answers 200; stopped (SIGTERM, then SIGKILL) when it does
    not, and :class:`ControlPlaneUnavailable` raised with the end of its log."""
    proc = spawn(launch.argv, log=launch.log, cwd=launch.cwd, env=launch.env)
    pid = ProcessId.of(proc.pid)
    try:
        _wait(lambda: _http_status(launch.ready_url) == 200, proc, what, launch.log, timeout)
    except BaseException:
        stop([pid])
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        raise
    return proc, pid


# -- istiod ----------------------------------------------------------------------------------------------


@dataclass
class Istiod:
    """One mesh's istiod, running.

    Attributes:
        mesh: the mesh.
        root: its folder (kubeconfig, ``cacerts``, mesh config, log).
        ports: ``http`` (``/ready``, debug), ``https`` (webhooks), ``grpc`` (plain xDS), ``secure_grpc`` (xDS and
            CA over mutual TLS: its 15012), ``monitoring``; all on 127.0.0.1.
        process: the ``pilot-discovery`` process.
    """

    mesh: str
    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    _id: ProcessId = field(repr=False)

    @property
    def address(self) -> str:
        """Where proxies reach its xDS and CA: ``localhost:<port>`` (its serving certificate names ``localhost``)."""
        return f"localhost:{self.ports['secure_grpc']}"

    @property
    def root_cert(self) -> Path:
        """The mesh's root (the plugged-in CA): what proxies trust istiod with."""
        return self.root / "cacerts" / "root-cert.pem"

    @property
    def log(self) -> Path:
        return self.root / "istiod.log"

    def debug(self, path: str) -> Any:
        """``GET`` one of istiod's debug endpoints (``/debug/configz``, ``/debug/syncz``), parsed as JSON."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['http']}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; reaped."""
        stop([self._id])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def istiod_env(mesh: Mesh, root: Path) -> dict[str, str]:
    """istiod's environment for ``mesh`` out of a cluster (see the module's docstring)."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **dict(mesh.istio.pilot_env),
        "POD_NAMESPACE": ISTIO_NAMESPACE,
        "POD_NAME": f"istiod-{mesh.istio.revision}-twin" if mesh.istio.revision else "istiod-twin",
        "REVISION": mesh.istio.revision or "default",
        "ROOT_CA_DIR": str(root / "cacerts"),
        "PILOT_CERT_PROVIDER": "istiod",
        "ISTIOD_CUSTOM_HOST": "localhost",
        "INJECTION_WEBHOOK_CONFIG_NAME": "",  # no webhook to patch
        "VALIDATION_WEBHOOK_CONFIG_NAME": "",
        "PILOT_ENABLE_ANALYSIS": "false",
        "JWT_POLICY": "third-party-jwt",
        **UPSTREAM_ENVOY_ENV,
    }


@dataclass(frozen=True)
class Launch:
    """One process of the control plane, ready to start (by :func:`start_istiod`, :func:`start_agent`, or a
    supervisor that restarts it as a kubelet restarts a container).

    Attributes:
        argv: the command line.
        env: its whole environment.
        cwd: its working folder.
        log: where its output goes.
        ports: the ports it binds, by role (see :class:`Istiod` and :class:`Agent`).
        ready_url: what answers 200 once it is ready (istiod's ``/ready``, Envoy's ``/healthz/ready``).
    """

    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    ports: dict[str, int]
    ready_url: str


def istiod_launch(
    name: str, mesh: Mesh, cluster: Cluster, ca: CertBundle, root: Path, *, binary: Path | None = None
) -> Launch:
    """Write istiod's files for mesh ``name`` under ``root`` (kubeconfig, ``cacerts``, mesh config) and return its
    command line on free loopback ports (see :func:`start_istiod`).

    Raises:
        ControlPlaneUnavailable: ``pilot-discovery`` cannot be built; ``ca`` has no key.
    """
    exe = binary or ensure_pilot()["pilot-discovery"]
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_istiod_files(mesh, cluster, ca, root)
    ports = dict(zip(("http", "https", "grpc", "secure_grpc", "monitoring"), free_ports(5), strict=True))
    args = [str(exe), "discovery", "--kubeconfig", str(root / "kubeconfig"), "--meshConfig", str(root / "mesh")]
    args += ["--networksConfig", str(root / "meshNetworks"), "--clusterID", CLUSTER_ID]
    args += [f"--httpAddr=127.0.0.1:{ports['http']}", f"--httpsAddr=127.0.0.1:{ports['https']}"]
    args += [f"--grpcAddr=127.0.0.1:{ports['grpc']}", f"--secureGRPCAddr=127.0.0.1:{ports['secure_grpc']}"]
    args += [f"--monitoringAddr=127.0.0.1:{ports['monitoring']}", "--log_output_level=default:info"]
    ready = f"http://127.0.0.1:{ports['http']}/ready"
    return Launch(args, istiod_env(mesh, root), root, root / "istiod.log", ports, ready)


def start_istiod(
    name: str,
    mesh: Mesh,
    cluster: Cluster,
    ca: CertBundle,
    root: Path,
    *,
    binary: Path | None = None,
    progress: Progress | None = None,
    timeout: float = START_TIMEOUT,
) -> Istiod:
    """Start ``pilot-discovery`` for mesh ``name`` against ``cluster`` with ``ca`` plugged in; wait for ``/ready``.

    Args:
        name: the mesh's name (``eks``).
        mesh: its spec (revision, trust domain, ``pilotEnv``, proxy metadata).
        cluster: its API server.
        ca: the mesh's CA, with its key (the twin's mesh CA).
        root: a folder of its own (created).
        binary: ``pilot-discovery`` (default: :func:`~meshbridge.istiod.pilot.ensure_pilot`).
        progress: receives one line per step.
        timeout: seconds istiod may take to be ready.

    Raises:
        ControlPlaneUnavailable: it cannot be built, or exited or was not ready in time (its log's end quoted).
    """
    launch = istiod_launch(name, mesh, cluster, ca, root, binary=binary or ensure_pilot(progress)["pilot-discovery"])
    proc, pid = _run(launch, f"istiod of mesh {name}", timeout)
    istiod = Istiod(name, root, launch.ports, proc, pid)
    if progress is not None:
        progress(f"control plane: {name}: istiod ({ISTIOD.label(ISTIOD.directory)}) ready, xDS on {istiod.address}")
    return istiod


def _write_istiod_files(mesh: Mesh, cluster: Cluster, ca: CertBundle, root: Path) -> None:
    """istiod's kubeconfig (the cluster's admin, current context), ``cacerts`` and mesh config under ``root``."""
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "twin", "cluster": {"server": cluster.url, "certificate-authority": str(cluster.ca_file)}}
        ],
        "users": [{"name": "istiod", "user": {"token": cluster.admin_token}}],
        "contexts": [{"name": "istiod", "context": {"cluster": "twin", "user": "istiod"}}],
        "current-context": "istiod",
    }
    write_atomic(root / "kubeconfig", yaml.safe_dump(kubeconfig, sort_keys=False), mode=0o600)
    if ca.key_pem is None:
        raise ControlPlaneUnavailable(
            f"the mesh CA given to istiod ({ca.subject}) has no private key; istiod's CA needs it to sign. Fix: "
            "pass the twin's mesh CA (meshbridge.local.meshca.mesh_ca keeps its key beside it)"
        )
    cacerts = root / "cacerts"
    cacerts.mkdir(exist_ok=True, mode=0o700)
    for file in ("ca-cert.pem", "root-cert.pem", "cert-chain.pem"):  # a root CA signs: it is its own chain
        write_atomic(cacerts / file, ca.cert_pem)
    write_atomic(cacerts / "ca-key.pem", ca.key_pem, mode=0o600)
    config = {**mesh_config(mesh), "rootNamespace": ISTIO_NAMESPACE}
    write_atomic(root / "mesh", yaml.safe_dump(config, sort_keys=True))
    write_atomic(root / "meshNetworks", "networks: {}\n")


# -- a proxy as a pod ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodProxy:
    """A proxy of the twin as the pod istiod expects.

    Attributes:
        name: the Pod's name.
        namespace: its namespace.
        workload: its Deployment's name (``WORKLOAD_NAME``, the owner in its node metadata).
        labels: the pod's labels (what Gateways and Services select).
        service_account: its ServiceAccount: the identity istiod's CA signs (``spiffe://<td>/ns/<ns>/sa/<sa>``).
        ip: its pod IP (a loopback address of the twin).
        kind: ``router`` (a gateway) or ``sidecar``.
    """

    name: str
    namespace: str
    workload: str
    labels: Mapping[str, str]
    service_account: str
    ip: str
    kind: str = "router"


def represent(admin: KubeClient, pod: PodProxy, *, secret_access: bool = True) -> None:
    """Write what a cluster's controllers and kubelet would have for ``pod``: its ServiceAccount, the Pod (Running,
    Ready, its IP through ``pods/status``) and, with ``secret_access`` (a gateway), the Role and RoleBinding of
    Istio's gateway chart that let its ServiceAccount read Secrets of its namespace (istiod's SubjectAccessReview
    asks before it serves a ``credentialName``).

    No EndpointSlice lists the pod: no kube-controller-manager runs, and the API server refuses a loopback address
    as an endpoint (``may not be in the loopback range``), so the twin's pod IPs cannot be one. The gateway's own
    configuration does not need it; Services whose endpoints are the twin's pods are the next stage
    (docs/fidelity.md)."""
    ns, sa = pod.namespace, pod.service_account
    base = f"/api/v1/namespaces/{ns}"
    apply_raw(admin, f"{base}/serviceaccounts/{sa}", _doc("v1", "ServiceAccount", sa, ns), manager=MANAGER)
    doc = _doc("v1", "Pod", pod.name, ns, labels=dict(pod.labels))
    doc["spec"] = {
        "serviceAccountName": sa,
        "nodeName": "twin",
        "containers": [{"name": "istio-proxy", "image": "envoy"}],
    }
    apply_raw(admin, f"{base}/pods/{pod.name}", doc, manager=MANAGER)
    status = _doc("v1", "Pod", pod.name, ns)
    status["status"] = {
        "phase": "Running",
        "podIP": pod.ip,
        "podIPs": [{"ip": pod.ip}],
        "hostIP": pod.ip,
        "conditions": [
            {"type": t, "status": "True"} for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
    }
    apply_raw(admin, f"{base}/pods/{pod.name}/status", status, manager="kubelet")
    if secret_access:
        rbac = "/apis/rbac.authorization.k8s.io/v1"
        role = _doc("rbac.authorization.k8s.io/v1", "Role", pod.workload, ns)
        role["rules"] = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch", "list"]}]
        apply_raw(admin, f"{rbac}/namespaces/{ns}/roles/{pod.workload}", role, manager=MANAGER)
        binding = _doc("rbac.authorization.k8s.io/v1", "RoleBinding", pod.workload, ns)
        binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": pod.workload}
        binding["subjects"] = [{"kind": "ServiceAccount", "name": sa}]
        apply_raw(admin, f"{rbac}/namespaces/{ns}/rolebindings/{pod.workload}", binding, manager=MANAGER)


def record_admin(admin: KubeClient, pod: PodProxy, address: str) -> None:
    """Annotate ``pod`` with its Envoy admin's ``address`` (:data:`~meshbridge.kube.client.TWIN_ENVOY_ADMIN`): what
    meshbridge's reader of a pod's Envoy reads in place of the kubelet's port-forward, which no kubelet serves here."""
    doc = _doc("v1", "Pod", pod.name, pod.namespace)
    doc["metadata"]["annotations"] = {TWIN_ENVOY_ADMIN: address}
    apply_raw(admin, f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}", doc, manager=f"{MANAGER}-admin")


def record_app_view(admin: KubeClient, pod: PodProxy, view: Mapping[str, Any]) -> None:
    """Annotate an app's ``pod`` with how to send as that app (:data:`~meshbridge.kube.client.TWIN_APP_VIEW`): what
    'verify --context' sends its request by in place of an exec, which no kubelet serves here (its own field
    manager, so that :func:`record_admin`'s annotation stays)."""
    doc = _doc("v1", "Pod", pod.name, pod.namespace)
    doc["metadata"]["annotations"] = {TWIN_APP_VIEW: json.dumps(view, sort_keys=True)}
    apply_raw(admin, f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}", doc, manager=f"{MANAGER}-app-view")


def withdraw(admin: KubeClient, pod: PodProxy) -> None:
    """Remove what :func:`represent` wrote for ``pod`` (its Pod, ServiceAccount, Role and RoleBinding; those already
    gone are skipped), as a cluster forgets a pod whose Deployment is deleted."""
    ns, rbac = pod.namespace, f"/apis/rbac.authorization.k8s.io/v1/namespaces/{pod.namespace}"
    paths = {
        f"Pod {ns}/{pod.name}": f"/api/v1/namespaces/{ns}/pods/{pod.name}",
        f"RoleBinding {ns}/{pod.workload}": f"{rbac}/rolebindings/{pod.workload}",
        f"Role {ns}/{pod.workload}": f"{rbac}/roles/{pod.workload}",
        f"ServiceAccount {ns}/{pod.service_account}": f"/api/v1/namespaces/{ns}/serviceaccounts/{pod.service_account}",
    }
    for what, path in paths.items():
        try:
            admin.request("DELETE", path, query=[("gracePeriodSeconds", "0")], what=what, verb="delete")
        except KubeApiError as e:
            if e.status != 404:
                raise


def _doc(api: str, kind: str, name: str, ns: str, *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        meta["labels"] = labels
    return {"apiVersion": api, "kind": kind, "metadata": meta}


# -- pilot-agent and Envoy -------------------------------------------------------------------------------


@dataclass
class Agent:
    """A proxy's ``pilot-agent`` and the upstream Envoy it runs.

    Attributes:
        pod: the pod it plays.
        root: the folder that plays the pod's file system (the agent's working directory).
        ports: ``admin`` (Envoy's admin, 127.0.0.1), ``status`` (the agent's), ``envoy_status`` (Envoy's readiness
            listener, the pod's 15021), ``prometheus`` (the pod's 15090), ``dns`` (the agent's DNS proxy, its 15053).
        process: the ``pilot-agent`` process (Envoy is its child).
    """

    pod: PodProxy
    root: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    _id: ProcessId = field(repr=False)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['admin']}"

    @property
    def log(self) -> Path:
        return self.root / "agent.log"

    def envoy_pid(self) -> int | None:
        """The pid of the Envoy the agent runs (its child), or ``None``."""
        children: list[str] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*"):  # Go forks from any of its threads
            with contextlib.suppress(OSError):
                children += (task / "children").read_text().split()
        return int(children[0]) if children else None

    def config_dump(self, resource: str = "") -> dict[str, Any]:
        """Envoy's ``/config_dump`` (of one ``resource`` type when given)."""
        query = f"?resource={resource}" if resource else ""
        with urllib.request.urlopen(f"{self.admin_url}/config_dump{query}", timeout=10) as resp:
            data: dict[str, Any] = json.loads(resp.read())
            return data

    def stop(self) -> None:
        """SIGTERM to the agent's process group (the agent and its Envoy), SIGKILL after a grace period."""
        stop([self._id])
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def agent_env(xds: str, mesh: Mesh, pod: PodProxy, ports: Mapping[str, int], envoy: Path) -> dict[str, str]:
    """The environment Istio's injection gives ``pod``'s istio-proxy container, on the twin's ports and addresses;
    ``xds``: istiod's address (:attr:`Istiod.address`)."""
    proxy_config = {
        "discoveryAddress": xds,
        "binaryPath": str(envoy),
        "configPath": "./etc/istio/proxy",
        "proxyAdminPort": ports["admin"],
        "statusPort": ports["status"],
        "concurrency": 1,
        # what a pod's proxy.istio.io/config annotation may add to Istio's default stats: the listeners' TLS and
        # filter-chain counters, by which 'meshbridge verify' sees the gateway refuse a client (docs/fidelity.md)
        "proxyStatsMatcher": {"inclusionRegexps": [STATS_REFUSALS]},
    }
    env = {f"{k}": v for k, v in mesh.istio.proxy_metadata.items() if k.startswith("ISTIO_META_")}
    owner = f"kubernetes://apis/apps/v1/namespaces/{pod.namespace}/deployments/{pod.workload}"
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **env,
        "POD_NAME": pod.name,
        "POD_NAMESPACE": pod.namespace,
        "INSTANCE_IP": pod.ip,
        "HOST_IP": pod.ip,
        "SERVICE_ACCOUNT": pod.service_account,
        "ISTIO_META_CLUSTER_ID": CLUSTER_ID,
        "ISTIO_META_WORKLOAD_NAME": pod.workload,
        "ISTIO_META_OWNER": owner,
        "TRUST_DOMAIN": mesh.trust_domain,
        "JWT_POLICY": "third-party-jwt",
        "CA_ADDR": xds,
        "ENVOY_STATUS_PORT": str(ports["envoy_status"]),
        "ENVOY_PROMETHEUS_PORT": str(ports["prometheus"]),
        "PROXY_CONFIG": json.dumps(proxy_config),
        # no iptables captures a sidecar's traffic: Istio's interception mode NONE (its listeners bind their ports,
        # as on a VM without capture), and the agent's DNS proxy on a port of its own (its 15053 would collide)
        **({"ISTIO_META_INTERCEPTION_MODE": "NONE"} if pod.kind == "sidecar" else {}),
        "DNS_PROXY_ADDR": f"127.0.0.1:{ports['dns']}",
    }


def agent_launch(
    xds: str,
    root_cert: Path,
    mesh: Mesh,
    admin: KubeClient,
    pod: PodProxy,
    root: Path,
    *,
    binary: Path | None = None,
    envoy: Path | None = None,
) -> Launch:
    """Write ``pod``'s files under ``root`` (its token, the mesh's root, Istio's bootstrap template, its labels) and
    return ``pilot-agent proxy``'s command line for it on free loopback ports (see :func:`start_agent`).

    Args:
        xds: istiod's address (:attr:`Istiod.address`).
        root_cert: the mesh's root that istiod serves with (:attr:`Istiod.root_cert`).

    Raises:
        ControlPlaneUnavailable: the agent cannot be built, or the Istio module's bootstrap template is not found.
        KubeApiError: the ServiceAccount token was refused.
    """
    exe = binary or ensure_pilot()["pilot-agent"]
    _pod_files(root_cert, admin, pod, root)
    ports = dict(zip(("admin", "status", "envoy_status", "prometheus", "dns"), free_ports(5), strict=True))
    env = agent_env(xds, mesh, pod, ports, envoy or envoy_path())
    args = [str(exe), "proxy", pod.kind, f"--domain={pod.namespace}.svc.cluster.local"]
    args += ["--proxyLogLevel=warning", "--log_output_level=default:info"]
    ready = f"http://127.0.0.1:{ports['envoy_status']}/healthz/ready"
    return Launch(args, env, root, root / "agent.log", ports, ready)


def start_agent(
    istiod: Istiod,
    mesh: Mesh,
    admin: KubeClient,
    pod: PodProxy,
    root: Path,
    *,
    binary: Path | None = None,
    envoy: Path | None = None,
    timeout: float = START_TIMEOUT,
) -> Agent:
    """Run ``pilot-agent proxy`` for ``pod`` (already :func:`represent`-ed) with the twin's upstream Envoy; wait
    until Envoy's readiness listener answers 200.

    Raises:
        ControlPlaneUnavailable: the agent cannot be built, the Istio module's bootstrap template is not found, or
            the agent exited or its Envoy was not ready in time (its log's end quoted).
        KubeApiError: the ServiceAccount token was refused.
    """
    launch = agent_launch(istiod.address, istiod.root_cert, mesh, admin, pod, root, binary=binary, envoy=envoy)
    proc, pid = _run(launch, f"pilot-agent of {pod.namespace}/{pod.name}", timeout)
    return Agent(pod, root, launch.ports, proc, pid)


def _pod_files(root_cert: Path, admin: KubeClient, pod: PodProxy, root: Path) -> None:
    """The pod's files the agent reads, relative to its working directory: Istio's bootstrap template, the
    ServiceAccount token (audience ``istio-ca``), the mesh's root (the ``istio-ca-root-cert`` ConfigMap's mount) and
    the pod's labels (the downward API's file)."""
    template = module_file(ISTIOD.directory, "istio.io/istio", BOOTSTRAP_TEMPLATE)
    if template is None:
        raise ControlPlaneUnavailable(
            f"Istio's bootstrap template ({BOOTSTRAP_TEMPLATE}) was not found in the Istio module of "
            "tools/istiod/go.mod; run 'make istiod' (it downloads the module)"
        )
    ns, sa = pod.namespace, pod.service_account
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": [TOKEN_AUDIENCE],
            "expirationSeconds": TOKEN_SECONDS,
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.name},
        },
    }
    answer = admin.request(
        "POST",
        f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}/token",
        body=request,
        what=f"ServiceAccount {ns}/{sa}",
        verb="create a token for",
    )
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(root / "var/lib/istio/envoy/envoy_bootstrap_tmpl.json", template.read_bytes())
    write_atomic(root / "var/run/secrets/tokens/istio-token", str(answer["status"]["token"]), mode=0o600)
    write_atomic(root / "var/run/secrets/istio/root-cert.pem", root_cert.read_bytes())
    labels = "".join(f"{k}={json.dumps(v)}\n" for k, v in sorted(pod.labels.items()))
    write_atomic(root / "etc/istio/pod/labels", labels)
