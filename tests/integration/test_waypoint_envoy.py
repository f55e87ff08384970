"""The ambient importer's waypoint → exporter path, run for real: stock Envoy on istiod's own waypoint
configuration (the oracle's, :func:`meshbridge.istiod.waypoint.outbound_part`) dials an exporter's gateway
that demands a client certificate, with the certificates meshbridge rendered.

ztunnel's hop is not reproduced: the request stands for the one ztunnel hands the waypoint through HBONE, and the
identity HBONE would authenticate is set as the filter state the waypoint's authorization reads. Positives and
negative twins: the app's namespace passes, another namespace is refused by the waypoint's policy (403); an
exporter that trusts another CA refuses the handshake (503), and the certificate it sees when it does accept is
the egress identity's, with the pinned SNI.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import yaml

from meshbridge.envoy.binary import envoy_path
from meshbridge.istiod.oracle import IstiodConfig, OracleUnavailable, ensure_oracle, run_oracle
from meshbridge.istiod.waypoint import outbound_part, waypoint_request
from meshbridge.pki import identities
from meshbridge.render.bridge import render_bridge
from tests.builders import bridge_from, issued_store
from tests.unit.test_render_ambient import ambient_dict

pytestmark = pytest.mark.integration

EXPORTER = "ingress.eks.example.com"
SLEEP = "spiffe://gke.example.com/ns/sleep/sa/sleep"
OTHER = "spiffe://gke.example.com/ns/other/sa/sleep"

Document = dict[str, Any]


class Exporter:
    """The exporter's gateway stand-in: TLS with the rendered server Secret, a client certificate required."""

    def __init__(self, secret: Document, root: Path) -> None:
        data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
        crt, key = root / "exporter.crt", root / "exporter.key"
        crt.write_bytes(data["cert"])
        key.touch(mode=0o600)
        key.write_bytes(data["key"])
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(crt, key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=data["cacert"].decode())
        self.sni: list[str | None] = []
        self.context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)  # type: ignore[assignment,misc]
        self.peers: list[Any] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port: int = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with suppress(OSError, ssl.SSLError), self.context.wrap_socket(conn, server_side=True) as tls:
                self.peers.append(tls.getpeercert())
                _answer(tls)

    def close(self) -> None:
        self.sock.close()


def _answer(tls: ssl.SSLSocket) -> None:
    """Answer one request ``200 exported`` in HTTP/2 (istiod's waypoint cluster carries ``http2ProtocolOptions``
    in the runs measured, which an Istio gateway's AUTO codec takes) or HTTP/1.1."""
    data = tls.recv(65535)
    if not data.startswith(b"PRI * HTTP/2.0"):
        tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\nconnection: close\r\n\r\nexported")
        return
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    while data:
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RequestReceived):
                conn.send_headers(event.stream_id, [(":status", "200"), ("content-length", "8")])
                conn.send_data(event.stream_id, b"exported", end_stream=True)
        tls.sendall(conn.data_to_send())
        data = tls.recv(65535)


class Waypoint:
    """Envoy running the waypoint's outbound part for one caller identity."""

    def __init__(self, root: Path, resources: dict[str, Any]) -> None:
        config = root / "waypoint.json"
        config.touch(mode=0o600)  # it holds the client certificate's key, inline as istiod serves it
        admin = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}}
        config.write_text(json.dumps({"admin": admin, "static_resources": resources}))
        address_file = root / "admin.address"
        self.log = root / "envoy.log"
        self.process = subprocess.Popen(
            [
                str(envoy_path()),
                "-c",
                str(config),
                "--use-dynamic-base-id",
                "--admin-address-path",
                str(address_file),
                "-l",
                "error",
                "--concurrency",
                "1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
        )
        self.port = self._bound(address_file)

    def _bound(self, address_file: Path) -> int:
        while self.process.poll() is None:
            with suppress(OSError, ValueError, KeyError):
                host, port = address_file.read_text().strip().rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=2)
                conn.request("GET", "/listeners?format=json")
                statuses = json.loads(conn.getresponse().read())["listener_statuses"]
                conn.close()
                bound = int(statuses[0]["local_address"]["socket_address"]["port_value"])
                if bound:
                    return bound
            time.sleep(0.05)
        raise AssertionError(f"Envoy refused the waypoint's configuration: {self.log.read_text()[-2000:]}")

    def get(self, host: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()


@pytest.fixture(scope="module")
def istiod_waypoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, list[Document], IstiodConfig]:
    try:
        oracle = ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
    bridge = bridge_from(ambient_dict())
    credentials = issued_store(tmp_path_factory.mktemp("pki"), bridge).credentials(bridge)
    rendered = render_bridge(bridge, credentials)
    request = waypoint_request("gke", bridge.spec.meshes["gke"], list(rendered["gke"]))
    cfg = run_oracle(request, oracle).proxies["gke/istio-egressgateway"]
    return bridge, list(rendered["eks"]), cfg


@pytest.fixture
def exporter(istiod_waypoint: Any, tmp_path: Path) -> Iterator[Exporter]:
    (secret,) = [d for d in istiod_waypoint[1] if d["kind"] == "Secret"]
    server = Exporter(secret, tmp_path)
    yield server
    server.close()


def run_waypoint(istiod_waypoint: Any, tmp_path: Path, exporter: Exporter, peer: str) -> Waypoint:
    cfg = istiod_waypoint[2]
    resources = outbound_part(cfg, 80, ("127.0.0.1", 0), peer, {EXPORTER: ("127.0.0.1", exporter.port)})
    return Waypoint(tmp_path, resources)


def test_the_apps_request_reaches_the_exporter_with_the_egress_identity_and_sni(
    istiod_waypoint: Any, tmp_path: Path, exporter: Exporter
) -> None:
    wp = run_waypoint(istiod_waypoint, tmp_path, exporter, SLEEP)
    try:
        assert wp.get("lambda.external") == (200, b"exported")
    finally:
        wp.stop()
    assert exporter.sni == ["lambda.external"]
    sans = [v for kind, v in exporter.peers[0]["subjectAltName"] if kind == "URI"]
    assert sans == identities.importer_ids(istiod_waypoint[0], "lambda")


def test_a_caller_outside_the_apps_namespaces_is_refused_by_the_waypoint(
    istiod_waypoint: Any, tmp_path: Path, exporter: Exporter
) -> None:
    wp = run_waypoint(istiod_waypoint, tmp_path, exporter, OTHER)
    try:
        status, body = wp.get("lambda.external")
    finally:
        wp.stop()
    assert (status, body) == (403, b"RBAC: access denied")
    assert exporter.peers == []  # nothing left the waypoint


def test_an_exporter_that_trusts_another_ca_refuses_the_waypoints_certificate(
    istiod_waypoint: Any, tmp_path: Path
) -> None:
    (secret,) = [d for d in istiod_waypoint[1] if d["kind"] == "Secret"]
    other = bridge_from(ambient_dict())
    foreign = render_bridge(other, issued_store(tmp_path / "foreign", other).credentials(other))["eks"]
    (foreign_secret,) = [d for d in foreign if d["kind"] == "Secret"]
    wrong = {**secret, "data": {**secret["data"], "cacert": foreign_secret["data"]["cacert"]}}
    server = Exporter(wrong, tmp_path)
    wp = run_waypoint(istiod_waypoint, tmp_path, server, SLEEP)
    try:
        status, _ = wp.get("lambda.external")
    finally:
        wp.stop()
        server.close()
    assert status == 503
    assert server.peers == []


def test_the_waypoints_listener_serves_only_what_istiod_routes(istiod_waypoint: Any) -> None:
    with pytest.raises(KeyError, match="no chain for port 8080"):
        outbound_part(istiod_waypoint[2], 8080, ("127.0.0.1", 0), SLEEP, {})
    resources = outbound_part(istiod_waypoint[2], 80, ("127.0.0.1", 0), SLEEP, {EXPORTER: ("127.0.0.1", 1)})
    assert [c["name"] for c in resources["clusters"]] == ["inbound-vip|80|http|lambda.external"]
    assert yaml.safe_dump(resources).count("set_filter_state") >= 1
