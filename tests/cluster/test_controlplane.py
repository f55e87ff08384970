"""istiod out of a cluster (``-m cluster``): upstream's pilot-discovery, built from the pinned Istio, watches the local
API server that ``meshbridge apply`` wrote the bridge to, and pushes it over xDS and SDS to the exporter's ingress
gateway, a real upstream Envoy run by upstream's pilot-agent with a workload certificate from istiod's CA, which is
the twin's mesh CA plugged in (:mod:`meshbridge.local.controlplane`).

Each test waits for what Envoy's own admin API shows (a secret active or still warming), never for a duration.
Without Go (and nothing cached) the tests skip with the one line that says what is missing.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.kube.client import fetch_config_dump
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.errors import KubeApiError, unscheduled
from meshbridge.local.controlplane import Istiod, represent, withdraw
from meshbridge.pki import CertBundle, PkiStore
from tests.cluster.admission import wait_until
from tests.cluster.controlplane_support import (
    CREDENTIAL,
    GATEWAY_NS,
    INGRESS_SA,
    MESH,
    Addresses,
    alb,
    app_call,
    both_gateways,
    bridged,
    end,
    gateway,
    gateway_ports,
    istiod,
    istiod_gke,
    listeners,
    no_capture,
    run,
    secrets,
    whole_path,
)
from tests.cluster.support import Cli, get

pytestmark = pytest.mark.cluster
# fixtures of the shared module, used here by name
__all__ = ["alb", "bridged", "gateway_ports", "istiod", "istiod_gke"]

ADDRESSES = Addresses(ingress="127.0.77.14", egress="127.0.77.15", app="127.0.77.16")


def test_istiod_pushes_the_bridge_and_its_secret_to_the_gateway(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path
) -> None:
    server, _ = istiod
    pod = gateway("istio-ingressgateway-twin-0", INGRESS_SA, "127.0.77.10")
    agent = run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        found = listeners(agent)
        chains = found["0.0.0.0_8443"]["filter_chains"]  # the Service's port 443 on the pod's target port
        assert [c["filter_chain_match"]["server_names"] for c in chains] == [["lambda.external"]]
        secret = get(local, MESH, f"/api/v1/namespaces/{GATEWAY_NS}/secrets/mtls-credential")
        assert secret is not None
        assert secrets(agent)[CREDENTIAL]["cert"] == base64.b64decode(secret["data"]["cert"])
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
        wait_until(lambda: secrets(agent)[CREDENTIAL]["cert"] == new, "the rotated Secret reached Envoy")
        assert agent.envoy_pid() == envoy
    finally:
        end(local, agent)


def test_a_gateway_whose_service_account_may_not_read_the_secret_gets_no_certificate(
    istiod: tuple[Istiod, CertBundle], cli: Cli, local: Clusters, tmp_path: Path
) -> None:
    """The twin of the test above: the same gateway pod without the Role of Istio's gateway chart. istiod's
    SubjectAccessReview refuses, the listener's secret stays warming: the gateway presents no certificate."""
    server, _ = istiod
    pod = gateway("istio-ingressgateway-norole-0", "istio-ingressgateway-norole", "127.0.77.11")
    agent = run(cli, server, local, pod, tmp_path / "pod", secret_access=False)
    try:
        denied = f"proxy {pod.name}.{GATEWAY_NS} attempted to access unauthorized certificates mtls-credential"
        wait_until(lambda: denied in server.log.read_text(errors="replace"), "istiod refused the Secret")
        assert secrets(agent)[CREDENTIAL] == {"state": "warming", "cert": None}
        # istiod names the identity of the workload certificate it issued: the pod's ServiceAccount
        assert f"{pod.service_account}/{GATEWAY_NS} is not authorized to read secrets" in server.log.read_text()
    finally:
        end(local, agent)


def test_a_twin_pods_envoy_is_not_read_through_the_api_server_and_the_message_says_why(
    cli: Cli, local: Clusters
) -> None:
    """The twin's pods are bound to node ``twin``, which the API server does not know: its port-forward answers 404
    for the node, which meshbridge reads as a pod no kubelet serves (as the stand-in's pods on no node, whose 400
    'does not have a host assigned' the rotation tests meet first), not as a pod that does not exist."""
    pod = gateway("istio-ingressgateway-nonode-0", INGRESS_SA, "127.0.77.17")
    with local[MESH].client() as admin:
        represent(admin, pod, secret_access=False)
    clients = cli.clients()
    try:
        with pytest.raises(KubeApiError) as raised:
            fetch_config_dump(clients[MESH], GATEWAY_NS, pod.name, mask="dynamic_active_secrets")
        assert raised.value.status == 404 and unscheduled(raised.value)
        assert "bound to node 'twin', which this API server does not know" in str(raised.value)
        assert "does not exist" not in str(raised.value)
    finally:
        for client in clients.values():
            client.close()
        with local[MESH].client() as admin:
            withdraw(admin, pod)


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


def _call(cli: Cli, client_mesh: str, sni: str, port: int) -> tuple[int, bytes]:
    """GET / for lambda.external at the gateway's ``port`` over mutual TLS with ``client_mesh``'s client leaf."""
    store = PkiStore(cli.state)
    context = ssl.create_default_context(cadata=store.trusted(MESH).decode())
    context.check_hostname = False  # the gateway's leaf names the exported host, dialled here by address
    context.load_cert_chain(store.path(client_mesh, "client"), store.key_path(client_mesh, "client"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        context.wrap_socket(raw, server_hostname=sni) as tls,
    ):
        tls.sendall(b"GET / HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_importers_request_reaches_the_lambda_through_the_gateway_istiod_configured(
    istiod: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
) -> None:
    """The request path on istiod's configuration alone: the importer's mutual TLS at the exporter's gateway (SNI
    lambda.external, gke's client leaf), its route and cluster to the backend (the emulated ALB, trusted through
    the caFile Secret istiod streams), the Lambda's page back."""
    server, _ = istiod
    pod = gateway("istio-ingressgateway-path-0", INGRESS_SA, "127.0.77.12")
    agent = run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        status, body = _call(cli, "gke", "lambda.external", bridged[0])
        assert status == 200, body
        assert b"Lambda" in body
    finally:
        end(local, agent)


def test_a_request_for_a_host_the_gateway_does_not_serve_reaches_nothing(
    istiod: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
) -> None:
    """The twin of the test above: the same client and gateway, SNI another.external: istiod built no filter chain
    for it, so Envoy closes the connection in the handshake and the Lambda is never called."""
    server, _ = istiod
    pod = gateway("istio-ingressgateway-path-1", INGRESS_SA, "127.0.77.13")
    agent = run(cli, server, local, pod, tmp_path / "pod", secret_access=True)
    try:
        wait_until(lambda: secrets(agent).get(CREDENTIAL, {}).get("state") == "active", "the gateway got its Secret")
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            _call(cli, "gke", "another.external", bridged[0])
    finally:
        end(local, agent)


def _plain_call(port: int) -> tuple[int, bytes]:
    """What the app's sidecar sends the egress gateway: plain HTTP for lambda.external on the gateway's ``port``."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: lambda.external\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_gateway_to_gateway_on_two_istiods_reaches_the_lambda(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
) -> None:
    """The bridge between two meshes, each gateway configured by its own mesh's istiod from what 'apply' wrote: the
    importer's egress gateway takes the app's plain HTTP, originates mutual TLS with gke's client leaf (its
    credentialName, from gke's istiod) to the exporter's address, whose gateway (eks's istiod) routes it to the
    Lambda."""
    servers = (istiod[0], istiod_gke[0])
    sa = "istio-egressgateway-service-account"
    ingress, egress = both_gateways(cli, local, servers, tmp_path, ADDRESSES, egress_sa=sa, egress_secret=True)
    try:
        wait_until(lambda: secrets(egress).get(CREDENTIAL, {}).get("state") == "active", "the egress got its Secret")
        wait_until(lambda: secrets(ingress).get(CREDENTIAL, {}).get("state") == "active", "the ingress got its")
        status, body = _plain_call(bridged[1])
        assert status == 200, body
        assert b"Lambda" in body
    finally:
        end(local, egress)
        end(local, ingress)


def test_an_egress_gateway_without_its_client_certificate_reaches_nothing(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
) -> None:
    """The twin of the test above: the egress gateway's ServiceAccount may not read its credentialName Secret, so
    istiod gives it no client certificate; the app's call fails at the egress gateway (503), the Lambda unreached."""
    servers = (istiod[0], istiod_gke[0])
    sa = "istio-egressgateway-norole"  # a ServiceAccount no Role of an earlier test binds
    ingress, egress = both_gateways(cli, local, servers, tmp_path, ADDRESSES, egress_sa=sa, egress_secret=False)
    try:
        denied = f"{sa}/istio-egress is not authorized to read secrets"
        wait_until(lambda: denied in istiod_gke[0].log.read_text(errors="replace"), "gke's istiod refused the Secret")
        status, _ = _plain_call(bridged[1])
        assert status == 503
    finally:
        end(local, egress)
        end(local, ingress)


@pytest.fixture
def no_capture_entry(local: Clusters, gateway_ports: tuple[int, int]) -> Iterator[None]:
    yield from no_capture(local, ADDRESSES.app, ADDRESSES.egress, gateway_ports[1])


@pytest.fixture
def no_capture_no_entry(local: Clusters, gateway_ports: tuple[int, int]) -> Iterator[None]:
    yield from no_capture(local, ADDRESSES.app, None, gateway_ports[1])


def _whole_path(cli: Cli, local: Clusters, servers: tuple[Istiod, Istiod], folder: Path) -> tuple[int, bytes]:
    """Both gateways and the app's sidecar on their istiods; the app's call once the sidecar bound its port."""
    with whole_path(cli, local, servers, folder, ADDRESSES):
        return app_call(ADDRESSES.app)


def test_the_apps_call_through_its_sidecar_and_both_gateways_reaches_the_lambda(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
    no_capture_entry: None,
) -> None:
    """The whole path on the real control planes: the app's plain HTTP to its sidecar (gke's istiod, interception
    mode NONE), the egress gateway, mutual TLS to the exporter's gateway (eks's istiod), the ALB, the Lambda: 200."""
    status, body = _whole_path(cli, local, (istiod[0], istiod_gke[0]), tmp_path)
    assert status == 200, body
    assert b"Lambda" in body


def test_without_an_endpoint_for_the_egress_gateway_the_sidecar_answers_503(
    istiod: tuple[Istiod, CertBundle],
    istiod_gke: tuple[Istiod, CertBundle],
    cli: Cli,
    local: Clusters,
    tmp_path: Path,
    bridged: tuple[int, int],
    no_capture_no_entry: None,
) -> None:
    """The twin of the test above without the WorkloadEntry: the egress gateway's Service has no endpoint (no
    EndpointSlice may hold a loopback address, no controller writes one), so the sidecar has nowhere to send it."""
    status, _ = _whole_path(cli, local, (istiod[0], istiod_gke[0]), tmp_path)
    assert status == 503
