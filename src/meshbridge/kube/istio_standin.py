"""What an Istio installation leaves in a cluster that meshbridge reads, written into a cluster that has no
controllers (:mod:`meshbridge.kube.envtest`): Istio's CRDs, and the objects of the article's steps 2 and 3.

* Istio's CRDs, from the Istio module that ``tools/istio-oracle`` pins
  (``manifests/charts/base/files/crd-all.gen.yaml``), applied and waited for until established and served;
* per mesh: the istiod Deployment and a Ready istiod Pod of the spec's revision, the mesh config ConfigMap
  (``istio[-<rev>]``) with DNS capture and address auto-allocation on, as ``meshbridge render --install``
  asks for;
* per gateway the mesh uses: its Namespace, Deployment and Service (the spec's ports), a Ready Pod with the
  labels the rendered Gateway selects, and, for an exporter's ingress gateway, the Service's
  ``status.loadBalancer`` (what a cloud's controller would write);
* per app of an importer: its Namespace, Deployment and a Ready Pod.

Statuses go through the ``status`` subresources (``pods/status``, ``services/status``,
``deployments/status``) under the field managers that would own them in a real cluster (``kubelet``,
``cloud-controller-manager``, ``kube-controller-manager``); the objects themselves under ``istio-standin``.
The Pods are marked Ready (preflight reads that) but bound to no node: these servers have no scheduler and no
kubelet, so ``PodScheduled`` is ``False`` (``Unschedulable``, as the scheduler says with no node), ``status``
counts them not READY and apply and verify find them not scheduled (apply there with ``--no-wait``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from meshbridge.gotools import TOOLS_DIR, module_file
from meshbridge.kube.binaries import KubeServersUnavailable
from meshbridge.kube.client import KubeClient, apply_raw
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.routes import gateway_selector, gateway_workloads
from meshbridge.spec.models import App, Bridge, GatewayWorkload, Mesh

Doc = dict[str, Any]
Progress = Callable[[str], None]

MANAGER = "istio-standin"
CRD_PATH = "manifests/charts/base/files/crd-all.gen.yaml"
ENV_CRDS = "MESHBRIDGE_ISTIO_CRDS"
ORACLE_MODULE = TOOLS_DIR / "istio-oracle"
CRD_TIMEOUT = 60.0


def lb_hostname(mesh: str, gw: GatewayWorkload) -> str:
    """The load-balancer host name the stand-in's cloud gives an exporter's ingress gateway Service."""
    return f"{gw.name}.{gw.namespace}.{mesh}.lb.envtest.invalid"


# -- Istio's CRDs ----------------------------------------------------------------------------------------


def istio_crd_file() -> Path:
    """``crd-all.gen.yaml`` of the Istio module pinned by ``tools/istio-oracle`` (or ``$MESHBRIDGE_ISTIO_CRDS``).

    Raises:
        KubeServersUnavailable: no Go toolchain to locate (or download) the module; the file is not there.
    """
    given = os.environ.get(ENV_CRDS)
    if given:
        if not Path(given).is_file():
            raise KubeServersUnavailable(f"{ENV_CRDS}={given} is not a file; unset it to use the pinned Istio's CRDs")
        return Path(given)
    go = shutil.which("go")
    if go is None:
        raise KubeServersUnavailable(
            "Istio's CRDs: needs the Go toolchain (go 1.26 or newer on PATH) to find the Istio module pinned in "
            f"tools/istio-oracle/go.mod; install Go, or set {ENV_CRDS} to a crd-all.gen.yaml"
        )
    path = module_file(ORACLE_MODULE, "istio.io/istio", CRD_PATH)
    if path is None:
        raise KubeServersUnavailable(
            f"Istio's CRDs: {CRD_PATH} was not found in the Istio module of tools/istio-oracle/go.mod "
            f"(or the module could not be downloaded); run 'make oracle', or set {ENV_CRDS}"
        )
    return path


def install_istio_crds(admin: KubeClient, path: Path | None = None, *, timeout: float = CRD_TIMEOUT) -> list[str]:
    """Apply Istio's CRDs and wait until each is established and its first served version answers a list.

    Returns:
        The CRDs' names.

    Raises:
        KubeApiError: a CRD was refused.
        KubeServersUnavailable: a CRD was not established within ``timeout`` seconds.
    """
    source = path or istio_crd_file()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    docs = [d for d in yaml.load_all(source.read_text(), Loader=loader) if isinstance(d, dict)]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
    base = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    for crd in crds:
        apply_raw(admin, f"{base}/{crd['metadata']['name']}", crd, manager="istio-base")
    deadline = time.monotonic() + timeout
    for crd in crds:
        name = str(crd["metadata"]["name"])
        spec = crd["spec"]
        version = next(v["name"] for v in spec["versions"] if v.get("served"))
        probe = f"/apis/{spec['group']}/{version}/{spec['names']['plural']}"
        while True:
            live = admin.request("GET", f"{base}/{name}", what=f"CRD {name}", verb="get") or {}
            established = any(
                c.get("type") == "Established" and c.get("status") == "True"
                for c in (live.get("status") or {}).get("conditions") or []
            )
            if established:
                try:
                    admin.request("GET", probe, query=[("limit", "1")], what=f"{name} (served)", verb="list")
                    break
                except KubeApiError as e:
                    if e.status != 404:
                        raise
            if time.monotonic() > deadline:
                raise KubeServersUnavailable(f"CRD {name} was not established and served within {timeout:.0f} s")
            time.sleep(0.1)
    return [str(c["metadata"]["name"]) for c in crds]


# -- the installation ------------------------------------------------------------------------------------


def install_bridge(
    bridge: Bridge,
    mesh: str,
    admin: KubeClient,
    *,
    crds: Path | None = None,
    dns_capture: bool = True,
    progress: Progress | None = None,
) -> None:
    """Istio's CRDs and what an installation of ``mesh``'s Istio (article steps 2 and 3) leaves in its cluster.

    Args:
        bridge: the spec: revisions, versions, gateways and apps come from it.
        mesh: the mesh whose cluster ``admin`` reaches.
        admin: a client allowed everything (``system:masters``).
        crds: the CRD file (default: :func:`istio_crd_file`).
        dns_capture: turn DNS capture and auto-allocation on in the mesh config (preflight's DnsCapture).
        progress: receives one line per step.

    Raises:
        KubeApiError: a write was refused.
        KubeServersUnavailable: the CRDs cannot be found or were not established.
    """
    say = progress or (lambda _: None)
    names = install_istio_crds(admin, crds)
    say(f"clusters: {mesh}: {len(names)} Istio CRDs established")
    spec = bridge.spec.meshes[mesh]
    istiod(admin, spec, dns_capture=dns_capture)
    for role, gw in gateway_workloads(bridge, mesh):
        address = lb_hostname(mesh, gw) if role == "ingress" else None
        gateway(admin, spec, gw, kind="LoadBalancer" if role == "ingress" else "ClusterIP", address=address)
    if bridge.exports_to(mesh):
        for app in spec.apps or [App()]:
            application(admin, spec, app)
    say(f"clusters: {mesh}: Istio {spec.istio.version} stand-in installed (istiod, gateways, apps)")


def istiod(admin: KubeClient, mesh: Mesh, *, dns_capture: bool = True) -> None:
    """The istiod Deployment, a Ready istiod Pod and the mesh config of ``mesh``'s revision in ``istio-system``."""
    rev = mesh.istio.revision
    name = f"istiod-{rev}" if rev else "istiod"
    labels = {"app": "istiod", "istio": "pilot", "istio.io/rev": rev or "default"}
    namespace(admin, "istio-system")
    container = {
        "name": "discovery",
        "image": f"docker.io/istio/pilot:{mesh.istio.version}",
        "ports": [{"containerPort": 15010, "protocol": "TCP"}, {"containerPort": 15012, "protocol": "TCP"}],
    }
    deployment(admin, "istio-system", name, labels, [container])
    meta = {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"} if dns_capture else {}
    cm_name = f"istio-{rev}" if rev else "istio"
    cm: Doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": cm_name, "namespace": "istio-system", "labels": labels},
        "data": {"mesh": yaml.safe_dump({"defaultConfig": {"proxyMetadata": meta}, "trustDomain": mesh.trust_domain})},
    }
    apply_raw(admin, f"/api/v1/namespaces/istio-system/configmaps/{cm_name}", cm, manager=MANAGER)
    ready_pod(admin, "istio-system", name, labels, [container])


def gateway(admin: KubeClient, mesh: Mesh, gw: GatewayWorkload, *, kind: str, address: str | None) -> None:
    """A gateway's Namespace, Deployment, Service (``kind``; ``address`` as its load balancer) and Ready Pod."""
    labels = {**gateway_selector(mesh, gw), "istio.io/rev": mesh.istio.revision or "default"}
    namespace(admin, gw.namespace)
    ports = [{"containerPort": p.target_port, "protocol": "TCP"} for p in gw.ports]
    container: Doc = {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{mesh.istio.version}", "ports": ports}
    container["securityContext"] = {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True}
    deployment(admin, gw.namespace, gw.name, labels, [container])
    svc: Doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": gw.name, "namespace": gw.namespace, "labels": dict(gw.labels)},
        "spec": {
            "type": kind,
            "selector": dict(gw.labels),
            "ports": [
                {"name": p.name, "port": p.port, "targetPort": p.target_port, "protocol": "TCP"} for p in gw.ports
            ],
        },
    }
    path = f"/api/v1/namespaces/{gw.namespace}/services/{gw.name}"
    apply_raw(admin, path, svc, manager=MANAGER)
    if address:
        status: Doc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": gw.name, "namespace": gw.namespace}}
        status["status"] = {"loadBalancer": {"ingress": [{"hostname": address}]}}
        apply_raw(admin, f"{path}/status", status, manager="cloud-controller-manager")
    ready_pod(admin, gw.namespace, gw.name, labels, [container])


def application(admin: KubeClient, mesh: Mesh, app: App) -> None:
    """An app's Namespace, Deployment and Ready Pod (its container and an istio-proxy sidecar)."""
    labels = {**app.labels, "istio.io/rev": mesh.istio.revision or "default"}
    namespace(admin, app.namespace)
    containers: list[Doc] = [
        {"name": app.name, "image": "curlimages/curl", "command": ["/bin/sleep", "infinity"]},
        {"name": "istio-proxy", "image": f"docker.io/istio/proxyv2:{mesh.istio.version}"},
    ]
    deployment(admin, app.namespace, app.name, labels, containers, selector=dict(app.labels))
    ready_pod(admin, app.namespace, app.name, labels, containers)


# -- Kubernetes objects ----------------------------------------------------------------------------------


def namespace(admin: KubeClient, name: str) -> None:
    """A Namespace, as ``kubectl create namespace`` makes it (no meshbridge labels)."""
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    apply_raw(admin, f"/api/v1/namespaces/{name}", doc, manager=MANAGER)


def deployment(
    admin: KubeClient,
    ns: str,
    name: str,
    labels: Mapping[str, str],
    containers: list[Doc],
    *,
    selector: Mapping[str, str] | None = None,
) -> None:
    """A one-replica Deployment and the status a controller would give it (1 ready replica)."""
    match = dict(selector or labels)
    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": match},
            "template": {"metadata": {"labels": dict(labels)}, "spec": {"containers": containers}},
        },
    }
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/{name}"
    apply_raw(admin, path, doc, manager=MANAGER)
    status: Doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns}}
    status["status"] = {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1}
    apply_raw(admin, f"{path}/status", status, manager="kube-controller-manager")


def ready_pod(
    admin: KubeClient, ns: str, deployment_name: str, labels: Mapping[str, str], containers: list[Doc]
) -> str:
    """A Pod of ``deployment_name`` (named as its ReplicaSet would name it), made Running and Ready through
    ``pods/status`` as a kubelet would, on no node (see the module docstring); its name."""
    digest = hashlib.sha256(f"{ns}/{deployment_name}".encode()).hexdigest()
    name = f"{deployment_name}-{digest[:10]}-{digest[10:15]}"
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": dict(labels)},
        "spec": {"containers": containers},
    }
    path = f"/api/v1/namespaces/{ns}/pods/{name}"
    apply_raw(admin, path, pod, manager=MANAGER)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    unscheduled = "0/0 nodes are available: these API servers have no kubelet (make clusters-up)"
    conditions = [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": unscheduled},
        *(
            {"type": t, "status": "True", "lastTransitionTime": now}
            for t in ("Initialized", "ContainersReady", "Ready")
        ),
    ]
    status: Doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns}}
    status["status"] = {
        "phase": "Running",
        "conditions": conditions,
        "podIP": "10.244.0." + str(int(digest[:2], 16) % 250 + 2),
        "startTime": now,
        "containerStatuses": [
            {
                "name": c["name"],
                "image": c["image"],
                "imageID": "",
                "ready": True,
                "restartCount": 0,
                "started": True,
                "state": {"running": {"startedAt": now}},
            }
            for c in containers
        ],
    }
    apply_raw(admin, f"{path}/status", status, manager="kubelet")
    return name
