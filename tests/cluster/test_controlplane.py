"""istiod out of a cluster (``-m cluster``): upstream's pilot-discovery, built from the pinned Istio, watches the local
API server that ``meshbridge apply`` wrote the bridge to, and pushes it over xDS and SDS to the exporter's ingress
gateway, a real upstream Envoy run by upstream's pilot-agent with a workload certificate from istiod's CA, which is
the twin's mesh CA plugged in (:mod:`meshbridge.local.controlplane`).

Each test waits for what Envoy's own admin API shows (a secret active or still warming), never for a duration.
Without Go (and nothing cached) the tests skip with the one line that says what is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
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
from meshbridge.pki import CertBundle, PkiStore
from tests.builders import SEED
from tests.cluster.admission import wait_until
from tests.cluster.support import Cli, get

pytestmark = pytest.mark.cluster

MESH = "eks"
GATEWAY_NS = "istio-ingress"
CREDENTIAL = "kubernetes://mtls-credential"
BACKEND = "alb.localhost"
"""The backend's host in the request-path test: a name of the ``localhost.`` domain, which Envoy's resolver (c-ares)
answers with the loopback address itself (RFC 6761), where the emulated ALB listens; a dotted name, since istiod
reads a short one in a VirtualService as a Service of its namespace."""


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


def _gateway(name: str, sa: str, ip: str) -> PodProxy:
    labels = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-17"}
    return PodProxy(name, GATEWAY_NS, "istio-ingressgateway", labels, sa, ip)


def _end(local: Clusters, agent: Agent) -> None:
    """Stop the agent (and its Envoy) and remove its pod from the API server, so later tests see the stand-in's."""
    agent.stop()
    with local[MESH if agent.pod.namespace == GATEWAY_NS else "gke"].client() as admin:
        withdraw(admin, agent.pod)


def _run(cli: Cli, istiod: Istiod, local: Clusters, pod: PodProxy, folder: Path, *, secret_access: bool) -> Agent:
    code, _, err = cli("apply", "--no-wait")
    assert code == 0, err
    with local[MESH].client() as admin:
        represent(admin, pod, secret_access=secret_access)
        return start_agent(istiod, cli.bridge.spec.meshes[MESH], admin, pod, folder)


def _secrets(agent: Agent) -> dict[str, dict[str, Any]]:
    """Envoy's secrets by name, each ``{"state": "active"|"warming", "cert": PEM or None}``."""
    out: dict[str, dict[str, Any]] = {}
    for state in ("active", "warming"):
        for s in agent.config_dump(f"dynamic_{state}_secrets").get("configs", []):
            chain = s.get("secret", {}).get("tls_certificate", {}).get("certificate_chain", {})
            pem = base64.b64decode(chain["inline_bytes"]) if "inline_bytes" in chain else None
            out[s["name"]] = {"state": state, "cert": pem}
    return out


def _listeners(agent: Agent) -> dict[str, Any]:
    dump = agent.config_dump("dynamic_listeners")
    return {c["name"]: c.get("active_state", {}).get("listener", {}) for c in dump.get("configs", [])}


def test_istiod_pushes_the_bridge_and_its_secret_to_the_gateway(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path
) -> None:
    server, _ = istiod
    pod = _gateway("istio-ingressgateway-twin-0", "istio-ingressgateway-service-account", "127.0.77.10")
    agent = _run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: _secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        listeners = _listeners(agent)
        chains = listeners["0.0.0.0_8443"]["filter_chains"]  # the Service's port 443 on the pod's target port
        assert [c["filter_chain_match"]["server_names"] for c in chains] == [["lambda.external"]]
        secret = get(local, MESH, f"/api/v1/namespaces/{GATEWAY_NS}/secrets/mtls-credential")
        assert secret is not None
        assert _secrets(agent)[CREDENTIAL]["cert"] == base64.b64decode(secret["data"]["cert"])
        # the agent holds an xDS stream over mutual TLS with the workload certificate istiod's CA (the twin's mesh
        # CA: the only root istiod trusts) issued it; istiod granted the Secret to the identity in that certificate
        clients = server.debug("/debug/connections")["clients"]
        assert [c["connectionId"].rsplit("-", 1)[0] for c in clients] == [f"{pod.name}.{GATEWAY_NS}"]

        # a rotation is a Secret update that istiod streams to the running Envoy: no restart
        envoy = agent.envoy_pid()
        assert envoy is not None
        PkiStore(cli.state).rotate_leaves(cli.bridge, [MESH])  # what 'certs rotate --leaf' does, then apply
        code, _, err = cli("apply", "--no-wait")
        assert code == 0, err
        rotated = get(local, MESH, f"/api/v1/namespaces/{GATEWAY_NS}/secrets/mtls-credential")
        assert rotated is not None and rotated["data"]["cert"] != secret["data"]["cert"]
        new = base64.b64decode(rotated["data"]["cert"])
        wait_until(lambda: _secrets(agent)[CREDENTIAL]["cert"] == new, "the rotated Secret reached Envoy")
        assert agent.envoy_pid() == envoy
    finally:
        _end(local, agent)


def test_a_gateway_whose_service_account_may_not_read_the_secret_gets_no_certificate(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path
) -> None:
    """The twin of the test above: the same gateway pod without the Role of Istio's gateway chart. istiod's
    SubjectAccessReview refuses, the listener's secret stays warming: the gateway presents no certificate."""
    server, _ = istiod
    pod = _gateway("istio-ingressgateway-norole-0", "istio-ingressgateway-norole", "127.0.77.11")
    agent = _run(cli, server, local, pod, tmp_path / "pod", secret_access=False)
    try:
        denied = f"proxy {pod.name}.{GATEWAY_NS} attempted to access unauthorized certificates mtls-credential"
        wait_until(lambda: denied in server.log.read_text(errors="replace"), "istiod refused the Secret")
        assert _secrets(agent)[CREDENTIAL] == {"state": "warming", "cert": None}
        # istiod names the identity of the workload certificate it issued: the pod's ServiceAccount
        assert f"{pod.service_account}/{GATEWAY_NS} is not authorized to read secrets" in server.log.read_text()
    finally:
        _end(local, agent)


def test_istiod_answers_ready_and_holds_the_applied_bridge(istiod: tuple[Istiod, CertBundle], cli: Cli) -> None:
    """What istiod read from the API server is the bridge 'meshbridge apply' wrote: its own debug endpoint."""
    server, _ = istiod
    code, _, err = cli("apply", "--no-wait")
    assert code == 0, err

    def names() -> set[tuple[str, str]]:
        return {(c["kind"], c["metadata"]["name"]) for c in server.debug("/debug/configz")}

    wait_until(lambda: ("Gateway", "eastwestgateway") in names(), "istiod read the Gateway")
    assert ("VirtualService", "vs-lambda") in names()
    with urllib.request.urlopen(f"http://127.0.0.1:{server.ports['http']}/ready", timeout=5) as resp:
        assert resp.status == 200
    assert os.access(server.root / "cacerts" / "ca-key.pem", os.R_OK)
    assert (server.root / "cacerts" / "ca-key.pem").stat().st_mode & 0o077 == 0


@pytest.fixture
def alb(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The seed's Lambda behind the emulated ALB's HTTPS listener on 127.0.0.1: its port and its CA file."""
    ca, cert, key = issue_listener_certificate([BACKEND], tmp_path / "alb")
    handler = str(SEED.parent / "handler.py") + ":lambda_handler"
    listener = ListenerConfig(host="127.0.0.1", port=0, protocol="HTTPS", cert_file=cert, key_file=key)
    config = tmp_path / "alb.json"
    config.write_text(AlbConfig(listeners=(listener,), function=FunctionConfig(handler=handler)).to_json())
    proc = subprocess.Popen(
        [sys.executable, "-m", "meshbridge.alb.server", str(config)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", ready
        yield int(ready["ports"][0]), ca
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _backend_on(port: int, ca: Path) -> Any:
    def change(data: dict[str, Any]) -> None:
        backend = data["spec"]["exports"][0]["backend"]
        backend.update({"host": BACKEND, "port": port, "tls": {"mode": "SIMPLE", "caFile": str(ca)}})

    return change


def _call(cli: Cli, client_mesh: str, sni: str) -> tuple[int, bytes]:
    """GET / for lambda.external at the gateway's 8443 over mutual TLS with ``client_mesh``'s client leaf."""
    store = PkiStore(cli.state)
    context = ssl.create_default_context(cadata=store.trusted(MESH).decode())
    context.check_hostname = False  # the gateway's leaf names the exported host, dialled here by address
    context.load_cert_chain(store.path(client_mesh, "client"), store.key_path(client_mesh, "client"))
    with (
        socket.create_connection(("127.0.0.1", 8443), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_importers_request_reaches_the_lambda_through_the_gateway_istiod_configured(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path, alb: tuple[int, Path]
) -> None:
    """The request path on istiod's configuration alone: the importer's mutual TLS at the exporter's gateway (SNI
    lambda.external, gke's client leaf), its route and cluster to the backend (the emulated ALB, trusted through
    the caFile Secret istiod streams), the Lambda's page back."""
    server, _ = istiod
    port, ca = alb
    cli.write(_backend_on(port, ca))
    pod = _gateway("istio-ingressgateway-path-0", "istio-ingressgateway-service-account", "127.0.77.12")
    agent = _run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: _secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        status, body = _call(cli, "gke", "lambda.external")
        assert status == 200, body
        assert b"Lambda" in body
    finally:
        _end(local, agent)


def test_a_request_for_a_host_the_gateway_does_not_serve_reaches_nothing(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path, alb: tuple[int, Path]
) -> None:
    """The twin of the test above: the same client and gateway, SNI another.external: istiod built no filter chain
    for it, so Envoy closes the connection in the handshake and the Lambda is never called."""
    server, _ = istiod
    port, ca = alb
    cli.write(_backend_on(port, ca))
    pod = _gateway("istio-ingressgateway-path-1", "istio-ingressgateway-service-account", "127.0.77.13")
    agent = _run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: _secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _call(cli, "gke", "another.external")
    finally:
        _end(local, agent)


EXPORTER = "eks-ingress.localhost"
"""The exporter's load-balancer name in the gateway-to-gateway test: Envoy's resolver answers it with loopback."""


def _gateway_to_gateway(backend: Any) -> Any:
    """The backend on the emulated ALB, the exporter's address a loopback name and its gateway port 8443 (the pod's
    own port: no load balancer maps a Service port to it here)."""

    def change(data: dict[str, Any]) -> None:
        backend(data)
        ingress = data["spec"]["meshes"][MESH]["ingressGateway"]
        ingress["address"] = EXPORTER
        ingress["ports"] = [{"name": "https", "port": 8443, "targetPort": 8443}]
        data["spec"]["exports"][0]["gatewayPort"] = 8443

    return change


@pytest.fixture
def port_8443(local: Clusters) -> Iterator[None]:
    """Port 8443→8443 on the exporter's gateway Service, as the installer would give it for gatewayPort 8443 (under
    a field manager of its own, removed after the test)."""
    path = f"/api/v1/namespaces/{GATEWAY_NS}/services/istio-ingressgateway"
    doc: dict[str, Any] = {"apiVersion": "v1", "kind": "Service"}
    doc["metadata"] = {"name": "istio-ingressgateway", "namespace": GATEWAY_NS}
    ports = [{"name": "https-twin", "port": 8443, "targetPort": 8443, "protocol": "TCP"}]
    with local[MESH].client() as admin:
        apply_raw(admin, path, {**doc, "spec": {"ports": ports}}, manager="controlplane-test")
        try:
            yield
        finally:
            apply_raw(admin, path, {**doc, "spec": {}}, manager="controlplane-test")


def _egress(name: str, sa: str, ip: str) -> PodProxy:
    labels = {"app": "istio-egressgateway", "istio": "egressgateway", "istio.io/rev": "1-17"}
    return PodProxy(name, "istio-egress", "istio-egressgateway", labels, sa, ip)


def _plain_call() -> tuple[int, bytes]:
    """What the app's sidecar sends the egress gateway: plain HTTP for lambda.external on its port 80 (pod's 8080)."""
    with socket.create_connection(("127.0.0.1", 8080), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _both_gateways(
    cli: Cli, local: Clusters, servers: tuple[Istiod, Istiod], folder: Path, *, egress_sa: str, egress_secret: bool
) -> tuple[Agent, Agent]:
    eks, gke = servers
    ingress = _gateway("istio-ingressgateway-g2g-0", "istio-ingressgateway-service-account", "127.0.77.14")
    ingress_agent = _run(cli, eks, local, ingress, folder / "ingress", secret_access=True)
    try:
        egress = _egress(f"{egress_sa}-g2g-0", egress_sa, "127.0.77.15")
        with local["gke"].client() as admin:
            represent(admin, egress, secret_access=egress_secret)
            egress_agent = start_agent(gke, cli.bridge.spec.meshes["gke"], admin, egress, folder / "egress")
    except BaseException:
        _end(local, ingress_agent)
        raise
    return ingress_agent, egress_agent


def test_gateway_to_gateway_on_two_istiods_reaches_the_lambda(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    alb: tuple[int, Path],
    port_8443: None,
) -> None:
    """The bridge between two meshes, each gateway configured by its own mesh's istiod from what 'apply' wrote: the
    importer's egress gateway takes the app's plain HTTP, originates mutual TLS with gke's client leaf (its
    credentialName, from gke's istiod) to the exporter's address, whose gateway (eks's istiod) routes it to the
    Lambda."""
    port, ca = alb
    cli.write(_gateway_to_gateway(_backend_on(port, ca)))
    servers = (istiod[0], istiod_gke[0])
    sa = "istio-egressgateway-service-account"
    ingress, egress = _both_gateways(cli, local, servers, tmp_path, egress_sa=sa, egress_secret=True)
    try:
        wait_until(lambda: _secrets(egress).get(CREDENTIAL, {}).get("state") == "active", "the egress got its Secret")
        wait_until(lambda: _secrets(ingress).get(CREDENTIAL, {}).get("state") == "active", "the ingress got its")
        status, body = _plain_call()
        assert status == 200, body
        assert b"Lambda" in body
    finally:
        _end(local, egress)
        _end(local, ingress)


def test_an_egress_gateway_without_its_client_certificate_reaches_nothing(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    alb: tuple[int, Path],
    port_8443: None,
) -> None:
    """The twin of the test above: the egress gateway's ServiceAccount may not read its credentialName Secret, so
    istiod gives it no client certificate; the app's call fails at the egress gateway (503), the Lambda unreached."""
    port, ca = alb
    cli.write(_gateway_to_gateway(_backend_on(port, ca)))
    servers = (istiod[0], istiod_gke[0])
    sa = "istio-egressgateway-norole"  # a ServiceAccount no Role of an earlier test binds
    ingress, egress = _both_gateways(cli, local, servers, tmp_path, egress_sa=sa, egress_secret=False)
    try:
        denied = f"{sa}/istio-egress is not authorized to read secrets"
        wait_until(lambda: denied in istiod_gke[0].log.read_text(errors="replace"), "gke's istiod refused the Secret")
        status, _ = _plain_call()
        assert status == 503
    finally:
        _end(local, egress)
        _end(local, ingress)


APP_IP = "127.0.77.16"
EGRESS_IP = "127.0.77.15"


def _no_capture(local: Clusters, *, workload_entry: bool) -> Iterator[None]:
    """What the twin adds beside the bridge for pods without iptables, in Istio's own terms: a Sidecar that binds the
    app's outbound port 80 on its loopback address (``captureMode: NONE``), and (``workload_entry``) a WorkloadEntry
    for the egress gateway's pod, since its loopback address may not be an EndpointSlice's endpoint and istiod
    selects WorkloadEntries for a Service by its selector. The entry has the pod's labels and no serviceAccount: a
    gateway pod carries no ``security.istio.io/tlsMode`` label (Istio's gateway injection template sets none), and
    a WorkloadEntry with a serviceAccount would mean ISTIO_MUTUAL to the gateway's plain HTTP server. Removed after."""
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
                    "bind": APP_IP,
                    "captureMode": "NONE",
                    "hosts": ["*/*"],
                }
            ],
        },
    }
    entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "WorkloadEntry",
        "metadata": {"name": "istio-egressgateway-twin", "namespace": "istio-egress"},
        "spec": {"address": EGRESS_IP, "labels": {"app": "istio-egressgateway", "istio": "egressgateway"}},
    }
    entry["spec"]["ports"] = {"http2": 8080}  # the Service's port 80 (named http2) on the pod's 8080
    docs = {"/apis/networking.istio.io/v1/namespaces/sleep/sidecars/twin-no-capture": sidecar}
    if workload_entry:
        path = "/apis/networking.istio.io/v1/namespaces/istio-egress/workloadentries/istio-egressgateway-twin"
        docs[path] = entry
    with local["gke"].client() as admin:
        for path, doc in docs.items():
            apply_raw(admin, path, doc, manager="controlplane-test")
        try:
            yield
        finally:
            for path, doc in docs.items():
                admin.request("DELETE", path, what=str(doc["kind"]), verb="delete")


@pytest.fixture
def no_capture(local: Clusters) -> Iterator[None]:
    yield from _no_capture(local, workload_entry=True)


@pytest.fixture
def no_capture_no_entry(local: Clusters) -> Iterator[None]:
    yield from _no_capture(local, workload_entry=False)


def _app_call() -> tuple[int, bytes]:
    """The app's call: plain HTTP for lambda.external to its sidecar's outbound port 80."""
    with socket.create_connection((APP_IP, 80), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _whole_path(cli: Cli, local: Clusters, servers: tuple[Istiod, Istiod], folder: Path) -> tuple[int, bytes]:
    """Both gateways and the app's sidecar on their istiods; the app's call once the sidecar bound its port."""
    sa = "istio-egressgateway-service-account"
    ingress, egress = _both_gateways(cli, local, servers, folder, egress_sa=sa, egress_secret=True)
    app = PodProxy("sleep-twin-0", "sleep", "sleep", {"app": "sleep", "version": "v1"}, "sleep", APP_IP, "sidecar")
    try:
        with local["gke"].client() as admin:
            represent(admin, app, secret_access=False)
            sidecar = start_agent(servers[1], cli.bridge.spec.meshes["gke"], admin, app, folder / "app")
        try:
            wait_until(lambda: _secrets(egress).get(CREDENTIAL, {}).get("state") == "active", "the egress got it")
            wait_until(lambda: f"{APP_IP}_80" in _listeners(sidecar), "the sidecar bound the app's port 80")
            return _app_call()
        finally:
            _end(local, sidecar)
    finally:
        _end(local, egress)
        _end(local, ingress)


def test_the_apps_call_through_its_sidecar_and_both_gateways_reaches_the_lambda(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    alb: tuple[int, Path],
    port_8443: None,
    no_capture: None,
) -> None:
    """The whole path on the real control planes: the app's plain HTTP to its sidecar (gke's istiod, interception
    mode NONE), the egress gateway, mutual TLS to the exporter's gateway (eks's istiod), the ALB, the Lambda: 200."""
    port, ca = alb
    cli.write(_gateway_to_gateway(_backend_on(port, ca)))
    status, body = _whole_path(cli, local, (istiod[0], istiod_gke[0]), tmp_path)
    assert status == 200, body
    assert b"Lambda" in body


def test_without_an_endpoint_for_the_egress_gateway_the_sidecar_answers_503(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    alb: tuple[int, Path],
    port_8443: None,
    no_capture_no_entry: None,
) -> None:
    """The twin of the test above without the WorkloadEntry: the egress gateway's Service has no endpoint (no
    EndpointSlice may hold a loopback address, no controller writes one), so the sidecar has nowhere to send it."""
    port, ca = alb
    cli.write(_gateway_to_gateway(_backend_on(port, ca)))
    status, _ = _whole_path(cli, local, (istiod[0], istiod_gke[0]), tmp_path)
    assert status == 503
