"""The hand-built path on the real control planes, shared by the cluster suite's istiod modules: istiod per mesh on
the suite's local API servers, the gateways and the app's sidecar as pods fed by them
(:mod:`meshbridge.local.controlplane`), the emulated ALB with the seed's Lambda behind the exporter, and the calls a
test makes along the path.

A module takes the fixtures by importing them (``istiod``, ``istiod_gke``, ``alb``); each module gets its own
istiods (module scope). The addresses of the pods are the caller's (each module its own loopback addresses); the
gateways' listeners bind the wildcard address on the pod's target ports, as in a pod.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meshbridge.alb.function import FunctionConfig
from meshbridge.alb.server import AlbConfig, ListenerConfig, issue_listener_certificate
from meshbridge.gotools import ToolUnavailable
from meshbridge.kube.client import apply_raw
from meshbridge.kube.envtest import Clusters
from meshbridge.local.controlplane import Agent, Istiod, PodProxy, represent, start_agent, start_istiod, withdraw
from meshbridge.local.meshca import mesh_ca
from meshbridge.pki import CertBundle
from meshbridge.ports import free_ports
from tests.builders import SEED
from tests.cluster.admission import wait_until
from tests.cluster.support import Cli

MESH = "eks"
GATEWAY_NS = "istio-ingress"
EGRESS_NS = "istio-egress"
CREDENTIAL = "kubernetes://mtls-credential"
BACKEND = "alb.localhost"
"""The backend's host: a name of the ``localhost.`` domain, which Envoy's resolver (c-ares) answers with the loopback
address itself (RFC 6761), where the emulated ALB listens; a dotted name, since istiod reads a short one in a
VirtualService as a Service of its namespace."""
EXPORTER = "eks-ingress.localhost"
"""The exporter's load-balancer name in the gateway-to-gateway tests: Envoy's resolver answers it with loopback."""
EGRESS_SA = "istio-egressgateway-service-account"
INGRESS_SA = "istio-ingressgateway-service-account"
EGRESS_PORT_NAME = "http-twin"
"""The egress gateway Service's port of a test that gives it one of its own (HTTP, by Istio's port naming)."""
FIELDS = "controlplane-test"
"""The field manager of what the tests add beside the bridge and the stand-in (removed after each)."""


def _start(target: Any, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[tuple[Istiod, CertBundle]]:
    """istiod of mesh ``name`` on the suite's local API server, its CA the twin's mesh CA; stopped at the end."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    run: Clusters = target.run
    from tests.builders import seed_bridge

    mesh = seed_bridge().spec.meshes[name]
    root = tmp_path_factory.mktemp(f"istiod-{name}")
    ca = mesh_ca(root / "mesh-ca", name)
    try:
        started = start_istiod(name, mesh, run[name], ca, root / "istiod")
    except ToolUnavailable as e:
        pytest.skip(str(e))
    try:
        yield started, ca
    finally:
        started.stop()
        shutil.rmtree(root, ignore_errors=True)  # the mesh CA's key and istiod's kubeconfig go with it


@pytest.fixture(scope="module")
def istiod(target: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Istiod, CertBundle]]:
    """istiod of the exporter's mesh (eks)."""
    yield from _start(target, tmp_path_factory, MESH)


@pytest.fixture(scope="module")
def istiod_gke(target: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Istiod, CertBundle]]:
    """istiod of the importer's mesh (gke)."""
    yield from _start(target, tmp_path_factory, "gke")


@pytest.fixture
def alb(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The seed's Lambda behind the emulated ALB's HTTPS listener on 127.0.0.1: its port and its CA file. Its
    reserved concurrency is lifted from the default 10 to 100, as the reliability suite lifts the seed's: Lambda
    throttling (502 from the ALB) on a slow moment of a shared machine is not what a load here measures."""
    ca, cert, key = issue_listener_certificate([BACKEND], tmp_path / "alb")
    handler = str(SEED.parent / "handler.py") + ":lambda_handler"
    listener = ListenerConfig(host="127.0.0.1", port=0, protocol="HTTPS", cert_file=cert, key_file=key)
    config = tmp_path / "alb.json"
    function = FunctionConfig(handler=handler, concurrency=100)
    config.write_text(AlbConfig(listeners=(listener,), function=function).to_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshbridge.alb.server", str(config)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", ready
        # its access log, a line per request, is read on: a full pipe would block the ALB at its next line
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield int(ready["ports"][0]), ca
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def gateway(name: str, sa: str, ip: str) -> PodProxy:
    """A pod of the exporter's ingress gateway Deployment."""
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-17"}
    return PodProxy(name, GATEWAY_NS, "istio-ingressgateway", labels, sa, ip)


def egress(name: str, sa: str, ip: str) -> PodProxy:
    """A pod of the importer's egress gateway Deployment."""
    labels = {"app": "istio-egressgateway", "istio": "egressgateway", "istio.io/rev": "1-17"}
    return PodProxy(name, EGRESS_NS, "istio-egressgateway", labels, sa, ip)


def end(local: Clusters, agent: Agent) -> None:
    """Stop the agent (and its Envoy) and remove its pod from the API server, so later tests see the stand-in's."""
    agent.stop()
    with local[MESH if agent.pod.namespace == GATEWAY_NS else "gke"].client() as admin:
        withdraw(admin, agent.pod)


def run(cli: Cli, istiod: Istiod, local: Clusters, pod: PodProxy, folder: Path, *, secret_access: bool) -> Agent:
    """'meshbridge apply', then the exporter's gateway ``pod`` represented and its agent started."""
    code, _, err = cli("apply", "--no-wait")
    assert code == 0, err
    with local[MESH].client() as admin:
        represent(admin, pod, secret_access=secret_access)
        return start_agent(istiod, cli.bridge.spec.meshes[MESH], admin, pod, folder)


def secrets(agent: Agent) -> dict[str, dict[str, Any]]:
    """Envoy's secrets by name, each ``{"state": "active"|"warming", "cert": PEM or None}``."""
    out: dict[str, dict[str, Any]] = {}
    for state in ("active", "warming"):
        for s in agent.config_dump(f"dynamic_{state}_secrets").get("configs", []):
            chain = s.get("secret", {}).get("tls_certificate", {}).get("certificate_chain", {})
            pem = base64.b64decode(chain["inline_bytes"]) if "inline_bytes" in chain else None
            out[s["name"]] = {"state": state, "cert": pem}
    return out


def listeners(agent: Agent) -> dict[str, Any]:
    dump = agent.config_dump("dynamic_listeners")
    return {c["name"]: c.get("active_state", {}).get("listener", {}) for c in dump.get("configs", [])}


def backend_on(port: int, ca: Path) -> Any:
    """A change of the bridge: its export's backend is the emulated ALB on ``port``, trusted with ``ca``."""

    def change(data: dict[str, Any]) -> None:
        backend = data["spec"]["exports"][0]["backend"]
        backend.update({"host": BACKEND, "port": port, "tls": {"mode": "SIMPLE", "caFile": str(ca)}})

    return change


def gateway_to_gateway(backend: Any, port: int, egress_port: int) -> Any:
    """The backend on the emulated ALB, the exporter's address a loopback name and its gateway port ``port`` (the
    pod's own port: no load balancer maps a Service port to it here); the importer's egress gateway serves the
    export on ``egress_port`` (``egressGatewayPort``, its Service port ``http-twin``) instead of the chart's
    80→8080 (:func:`gateway_ports` gives both)."""

    def change(data: dict[str, Any]) -> None:
        backend(data)
        ingress = data["spec"]["meshes"][MESH]["ingressGateway"]
        ingress["address"] = EXPORTER
        ingress["ports"] = [{"name": "https", "port": port, "targetPort": port}]
        data["spec"]["exports"][0]["gatewayPort"] = port
        ports = [{"name": EGRESS_PORT_NAME, "port": egress_port, "targetPort": egress_port}]
        data["spec"]["meshes"]["gke"]["egressGateway"]["ports"] = ports
        data["spec"]["exports"][0]["egressGatewayPort"] = egress_port

    return change


def service_port(local: Clusters, port: int, *, egress: bool = False) -> Iterator[None]:
    """Port ``port``→``port`` on the exporter's ingress gateway Service (``egress``: the importer's egress gateway
    Service, named ``http-twin``), as the installer would give it for that gateway port (under a field manager of
    its own, removed after)."""
    mesh, ns, name = ("gke", EGRESS_NS, "istio-egressgateway") if egress else (MESH, GATEWAY_NS, "istio-ingressgateway")
    path = f"/api/v1/namespaces/{ns}/services/{name}"
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}}
    ports = [{"name": EGRESS_PORT_NAME if egress else "https-twin", "port": port, "targetPort": port}]
    with local[mesh].client() as admin:
        apply_raw(admin, path, {**doc, "spec": {"ports": [{**p, "protocol": "TCP"} for p in ports]}}, manager=FIELDS)
        try:
            yield
        finally:
            apply_raw(admin, path, {**doc, "spec": {}}, manager=FIELDS)


@pytest.fixture
def gateway_ports(local: Clusters) -> Iterator[tuple[int, int]]:
    """Free ports for the exporter's ingress gateway and the importer's egress gateway, each a port of its gateway
    Service (removed after; pass them to :func:`gateway_to_gateway`): the gateways' listeners bind the wildcard
    address, and Envoy binds with SO_REUSEPORT, so another twin on the chart's ports (8443, 8080) on this machine
    would silently share their connections."""
    ingress, egress_port = free_ports(2)
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.contextmanager(service_port)(local, ingress))
        stack.enter_context(contextlib.contextmanager(service_port)(local, egress_port, egress=True))
        yield ingress, egress_port


@pytest.fixture
def bridged(cli: Cli, alb: tuple[int, Path], gateway_ports: tuple[int, int]) -> tuple[int, int]:
    """The suite's bridge written gateway to gateway (:func:`gateway_to_gateway`), its backend the emulated ALB
    (:func:`alb`), its gateways on ports of their own: those ports, the ingress gateway's and the egress gateway's
    (:func:`gateway_ports`)."""
    cli.write(gateway_to_gateway(backend_on(*alb), *gateway_ports))
    return gateway_ports


def no_capture(local: Clusters, app_ip: str, egress_ip: str | None, egress_port: int) -> Iterator[None]:
    """What the twin adds beside the bridge for pods without iptables, in Istio's own terms: a Sidecar that binds the
    app's outbound port 80 on its loopback address ``app_ip`` (``captureMode: NONE``), and (given ``egress_ip``) a
    WorkloadEntry for the egress gateway's pod, since its loopback address may not be an EndpointSlice's endpoint and
    istiod selects WorkloadEntries for a Service by its selector. The entry has the pod's labels and no
    serviceAccount: a gateway pod carries no ``security.istio.io/tlsMode`` label (Istio's gateway injection template
    sets none), and a WorkloadEntry with a serviceAccount would mean ISTIO_MUTUAL to the gateway's plain HTTP server.
    The entry's port is the egress gateway's own, ``egress_port`` (:func:`gateway_to_gateway`); the Sidecar has a
    catch-all egress listener beside the app's port 80, whose listener alone would keep only port 80 of the Services
    the sidecar sees. Removed after."""
    if os.geteuid() != 0:
        pytest.skip("the app's sidecar binds port 80 (the app's call), which needs root here")
    sidecar = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "Sidecar",
        "metadata": {"name": "twin-no-capture", "namespace": "sleep"},
        "spec": {
            "workloadSelector": {"labels": {"app": "sleep"}},
            "egress": [
                {
                    "port": {"number": 80, "protocol": "HTTP", "name": "http"},
                    "bind": app_ip,
                    "captureMode": "NONE",
                    "hosts": ["*/*"],
                },
                {"hosts": ["*/*"]},
            ],
        },
    }
    docs = {"/apis/networking.istio.io/v1/namespaces/sleep/sidecars/twin-no-capture": sidecar}
    if egress_ip is not None:
        entry: dict[str, Any] = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "WorkloadEntry",
            "metadata": {"name": "istio-egressgateway-twin", "namespace": EGRESS_NS},
            "spec": {"address": egress_ip, "labels": {"app": "istio-egressgateway", "istio": "egressgateway"}},
        }
        entry["spec"]["ports"] = {EGRESS_PORT_NAME: egress_port}
        docs[f"/apis/networking.istio.io/v1/namespaces/{EGRESS_NS}/workloadentries/istio-egressgateway-twin"] = entry
    with local["gke"].client() as admin:
        for path, doc in docs.items():
            apply_raw(admin, path, doc, manager=FIELDS)
        try:
            yield
        finally:
            for path, doc in docs.items():
                admin.request("DELETE", path, what=str(doc["kind"]), verb="delete")


def app_call(app_ip: str, path: str = "/") -> tuple[int, bytes]:
    """The app's call: plain HTTP for lambda.external to its sidecar's outbound port 80 on ``app_ip``."""
    with socket.create_connection((app_ip, 80), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


@dataclass(frozen=True)
class Addresses:
    """The loopback addresses of one module's pods (pod IPs): the exporter's gateway, the egress gateway, the app."""

    ingress: str
    egress: str
    app: str


def both_gateways(
    cli: Cli,
    local: Clusters,
    servers: tuple[Istiod, Istiod],
    folder: Path,
    addresses: Addresses,
    *,
    egress_sa: str = EGRESS_SA,
    egress_secret: bool = True,
) -> tuple[Agent, Agent]:
    """The exporter's ingress gateway on eks's istiod and the importer's egress gateway on gke's, running."""
    eks, gke = servers
    ingress = gateway("istio-ingressgateway-g2g-0", INGRESS_SA, addresses.ingress)
    ingress_agent = run(cli, eks, local, ingress, folder / "ingress", secret_access=True)
    try:
        pod = egress(f"{egress_sa}-g2g-0", egress_sa, addresses.egress)
        with local["gke"].client() as admin:
            represent(admin, pod, secret_access=egress_secret)
            egress_agent = start_agent(gke, cli.bridge.spec.meshes["gke"], admin, pod, folder / "egress")
    except BaseException:
        end(local, ingress_agent)
        raise
    return ingress_agent, egress_agent


@dataclass
class WholePath:
    """The running path: the exporter's gateway, the importer's egress gateway, the app's sidecar. A test that
    restarts a pod's agent puts the new one here, so the end stops it."""

    ingress: Agent
    egress: Agent
    sidecar: Agent | None = None


@contextlib.contextmanager
def whole_path(
    cli: Cli, local: Clusters, servers: tuple[Istiod, Istiod], folder: Path, addresses: Addresses
) -> Iterator[WholePath]:
    """Both gateways and the app's sidecar on their istiods, once the egress holds its Secret and the sidecar bound
    the app's port; every pod stopped and withdrawn at the end."""
    path = WholePath(*both_gateways(cli, local, servers, folder, addresses))
    app = PodProxy(
        "sleep-twin-0", "sleep", "sleep", {"app": "sleep", "version": "v1"}, "sleep", addresses.app, "sidecar"
    )
    try:
        with local["gke"].client() as admin:
            represent(admin, app, secret_access=False)
            path.sidecar = start_agent(servers[1], cli.bridge.spec.meshes["gke"], admin, app, folder / "app")
        sidecar = path.sidecar
        wait_until(lambda: secrets(path.egress).get(CREDENTIAL, {}).get("state") == "active", "the egress got it")
        wait_until(lambda: f"{addresses.app}_80" in listeners(sidecar), "the sidecar bound the app's port 80")
        yield path
    finally:
        if path.sidecar is None:  # represented, its agent did not start
            with local["gke"].client() as admin:
                withdraw(admin, app)
        for agent in (path.sidecar, path.egress, path.ingress):
            if agent is not None:
                end(local, agent)
