"""Istio's port protocols (``pkg/config/protocol``), asked in one place: ``Parse`` ignores case and gives
``UnsupportedProtocol`` for a name it does not know; ``IsHTTP``, ``IsHTTP2``, ``IsTLS``, ``IsTCP`` answer on it."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from meshbridge.envoy.gateway import server_kind
from meshbridge.istio import protocol
from meshbridge.istio.resources import Server
from meshbridge.kube.routes import expected_routes
from meshbridge.render import render_bridge
from tests.builders import seed_bridge


@pytest.mark.parametrize(("name", "parsed"), [("grpc-web", "GRPC-WEB"), ("Http2", "HTTP2"), ("mongo", "MONGO")])
def test_parse_ignores_case(name: str, parsed: str) -> None:
    assert protocol.parse(name) == parsed


@pytest.mark.parametrize("name", ["HTTP/1.1", "h2c", "DoubleHBONE", "HBONE", "", "AUTO"])
def test_negative_twin_a_name_istio_does_not_know_is_unsupported(name: str) -> None:
    assert protocol.parse(name) == protocol.UNSUPPORTED
    assert not (protocol.is_http(name) or protocol.is_tcp(name) or protocol.is_tls(name))


@pytest.mark.parametrize("name", ["http", "HTTP2", "http_proxy", "grpc", "GRPC-Web"])
def test_http_protocols_are_istios_five(name: str) -> None:
    assert protocol.is_http(name)
    assert not protocol.is_tcp(name)


@pytest.mark.parametrize("name", ["https", "TLS", "tcp", "Mongo", "REDIS", "mysql", "udp"])
def test_negative_twin_tls_and_tcp_protocols_are_not_http(name: str) -> None:
    assert not protocol.is_http(name)
    assert protocol.is_tcp(name) == (name.upper() != "UDP")
    assert protocol.is_tls(name) == (name.upper() in ("HTTPS", "TLS"))


def test_http2_is_the_transport_of_http2_and_grpc_only() -> None:
    assert [p for p in ("HTTP", "HTTP2", "HTTP_PROXY", "GRPC", "GRPC-WEB") if protocol.is_http2(p)] == [
        "HTTP2",
        "GRPC",
        "GRPC-WEB",
    ]


@pytest.mark.parametrize(("proto", "kind"), [("grpc-web", "http"), ("http_proxy", "http"), ("tcp", "l4")])
def test_a_gateway_server_is_http_by_the_same_rule_any_case(proto: str, kind: str) -> None:
    server = Server.model_validate({"hosts": ["*"], "port": {"number": 80, "name": "p", "protocol": proto}})
    assert server_kind(server) == kind


def _routes(mesh: str, server: dict[str, Any]) -> list[str]:
    """The route names ``kube verify`` expects of the seed's gateway in ``mesh`` with ``server`` merged into its own."""
    bridge = seed_bridge()
    docs = copy.deepcopy(list(render_bridge(bridge, None)[mesh]))
    (gw,) = [d for d in docs if d["kind"] == "Gateway"]
    for key, value in server.items():
        gw["spec"]["servers"][0][key] = gw["spec"]["servers"][0][key] | value
    return [e.route for e in expected_routes(bridge, mesh, docs)]


@pytest.mark.parametrize("proto", ["http2", "GRPC-Web", "http"])
def test_verify_expects_a_plain_http_route_of_every_http_protocol_any_case(proto: str) -> None:
    assert _routes("gke", {"port": {"protocol": proto}}) == ["http.8080"]


def test_negative_twin_verify_expects_no_route_of_a_tcp_server_nor_of_auto_passthrough() -> None:
    assert _routes("gke", {"port": {"protocol": "tcp"}}) == []
    assert _routes("eks", {"tls": {"mode": "AUTO_PASSTHROUGH"}}) == []  # istiod's l4 chain: no route config
    assert _routes("eks", {}) == ["https.443.https.eastwestgateway.istio-ingress"]
