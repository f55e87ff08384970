"""Edge limits of the exporter gateway: connection limit, idle and request-headers timeouts, header size and count,
the request timeout.

The exporter gateway is an edge proxy, and Envoy says its defaults are not safe there (Envoy's *Configuring
Envoy as an edge proxy*). What istiod can express is configured through the spec (``exports[].timeout`` → the
VirtualService route ``timeout``); what it cannot (a listener connection limit, the downstream idle and request-headers
timeouts, the header size) meshbridge renders as an EnvoyFilter on the gateway (``ingressGateway.limits``),
which the local twin translates as istiod would. The module's twin runs small limits so that each can be hit
within a test (the defaults are checked in ``tests/unit/test_envoy_filter.py`` and validated by Envoy in
``tests/integration/test_envoy_validate.py``). Every limit has its negative twin.
"""

from __future__ import annotations

import select
import ssl
import time
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from meshbridge.envoy.proxyconfig import format_proxy_config
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore
from tests.security.support import (
    INGRESS,
    AccessLog,
    Counters,
    answer,
    app_call,
    closed_by_peer,
    dial,
    gateway_connection,
    raw_request,
    read_response,
    running,
    two_exports_twin,
)

pytestmark = pytest.mark.security

LAMBDA_TIMEOUT = 1.0  # seconds: exports[lambda].timeout; the orders export has none
MAX_CONNECTIONS = 4  # per exported host (filter chain)
IDLE = 2.0  # seconds
HEADERS = 1.0  # seconds
DRAIN = 5.0  # seconds: the HCM's drain_timeout (Envoy's default, istiod sets none), after an idle timeout
LIMITS = {"maxConnections": MAX_CONNECTIONS, "idleTimeout": IDLE, "requestHeadersTimeout": HEADERS}


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    folder = tmp_path_factory.mktemp("edge")
    with running(two_exports_twin(folder, lambda_timeout=LAMBDA_TIMEOUT, limits=LIMITS)) as t:
        yield t


def _client(twin: LocalTwin) -> CertBundle:
    leaf = PkiStore(twin.state_dir).load("gke", "client")
    assert leaf is not None
    return leaf


def _request(twin: LocalTwin, headers: list[tuple[str, str]]) -> tuple[int | None, dict[str, str], dict[str, str]]:
    lines = [("Host", "lambda.external"), *headers, ("Connection", "close")]
    text = "GET /hello-world HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in lines) + "\r\n"
    out = raw_request(twin, _client(twin), text.encode())
    return out.status, out.headers, answer(out)


# -- header limits (Envoy's defaults, which istiod keeps) ------------------------------------------------------------


def test_an_oversized_request_header_block_gets_431_from_the_gateway(twin: LocalTwin) -> None:
    log = AccessLog(twin, INGRESS)
    status, headers, body = _request(twin, [("x-big", "a" * (61 * 1024))])  # max_request_headers_kb: 60
    assert status == 431 and body == {} and headers.get("server") == "istio-envoy", headers
    assert "http1.headers_too_large" in log.request(contains=" 431 "), "the gateway, not the backend, refused it"
    status, _, body = _request(twin, [("x-big", "a" * (8 * 1024))])  # twin: 8 KiB passes to the Lambda
    assert status == 200 and body["export"] == "lambda"


def test_too_many_request_headers_get_431(twin: LocalTwin) -> None:
    status, _, body = _request(twin, [(f"x-h{i}", "1") for i in range(101)])  # max_headers_count: 100
    assert status == 431 and body == {}
    status, _, body = _request(twin, [(f"x-h{i}", "1") for i in range(90)])  # twin: 90 + 3 headers pass
    assert status == 200 and body["export"] == "lambda"


# -- request timeout (exports[].timeout → VirtualService route timeout) ----------------------------------------------


def test_the_export_timeout_answers_504_instead_of_waiting_for_the_backend(twin: LocalTwin) -> None:
    log = AccessLog(twin, INGRESS)
    t0 = time.monotonic()
    out = dial(twin, _client(twin), path="/slow?s=2.5")
    took = time.monotonic() - t0
    assert out.status == 504 and out.headers["server"] == "istio-envoy" and answer(out) == {}
    assert LAMBDA_TIMEOUT <= took < 2.4, took  # well before the backend's 2.5 s: the gateway did not wait
    assert " 504 UT " in log.request(contains=" 504 ")
    # twin: the export without a timeout waits for its backend and gets the answer
    t0 = time.monotonic()
    slow = dial(twin, _client(twin), sni="orders.external", path="/slow?s=1.5")
    assert answer(slow)["export"] == "orders" and time.monotonic() - t0 >= 1.5
    assert answer(dial(twin, _client(twin), path="/fast"))["export"] == "lambda"  # and fast calls still pass


def test_the_importer_app_sees_the_exporters_504(twin: LocalTwin) -> None:
    r = app_call(twin, "/slow?s=2.5")
    assert r.status == 504 and b"upstream request timeout" in r.body


def test_the_route_timeout_is_in_the_running_config(twin: LocalTwin) -> None:
    routes = {}
    for cfg in twin.config_dump(INGRESS)["configs"]:
        for rc in cfg.get("dynamic_route_configs", []):
            for vh in rc["route_config"].get("virtual_hosts", []):
                routes[vh["domains"][0]] = vh["routes"][0]["route"]["timeout"]
    assert routes == {"lambda.external": f"{LAMBDA_TIMEOUT:g}s", "orders.external": "0s"}


# -- the edge limits (ingressGateway.limits → EnvoyFilter) ------------------------------------------------------------

EDGE = "connection_limit.exporter_edge."
HCM_STATS = "http.outbound_0.0.0.0_8443."


def _listener_8443(twin: LocalTwin) -> dict[str, Any]:
    (listener,) = [
        d["active_state"]["listener"]
        for cfg in twin.config_dump(INGRESS)["configs"]
        for d in cfg.get("dynamic_listeners", [])
        if d["name"] == "0.0.0.0_8443"
    ]
    return dict(listener)


def test_the_limits_are_in_the_running_config(twin: LocalTwin) -> None:
    """Each exported host's chain: the connection limit before the HTTP connection manager, which has the
    spec's idle and request-headers timeouts and the header size (its default, 60 KiB)."""
    listener = _listener_8443(twin)
    assert len(listener["filter_chains"]) == 2  # lambda.external, orders.external
    for chain in listener["filter_chains"]:
        limit, hcm = chain["filters"]
        assert limit["name"] == "envoy.filters.network.connection_limit"
        assert {k: limit["typed_config"][k] for k in ("stat_prefix", "max_connections")} == {
            "stat_prefix": "exporter_edge",
            "max_connections": str(MAX_CONNECTIONS),  # a UInt64Value: the admin API prints it as a string
        }
        cfg = hcm["typed_config"]
        assert hcm["name"] == "envoy.filters.network.http_connection_manager"
        assert cfg["common_http_protocol_options"]["idle_timeout"] == f"{IDLE:g}s"
        assert (cfg["request_headers_timeout"], cfg["max_request_headers_kb"]) == (f"{HEADERS:g}s", 60)
        assert cfg["stream_idle_timeout"] == "0s"  # istiod's own, untouched
    # istioctl's table still names the route configuration; the filter shows in the JSON (-o json)
    table = format_proxy_config("listeners", twin.config_dump(INGRESS), wide=True)
    assert "Route: https.443.https-lambda.eastwestgateway.istio-ingress" in table


# -- each limit hit on purpose, and its negative twin ---------------------------------------------------------------


def _get(tls: ssl.SSLSocket, close: bool = False) -> bytes:
    """One GET /hello-world on ``tls``; the response's status line."""
    extra = "Connection: close\r\n" if close else ""
    tls.sendall(f"GET /hello-world HTTP/1.1\r\nHost: lambda.external\r\n{extra}\r\n".encode())
    return read_response(tls).split(b"\r\n", 1)[0]


def _attempt(twin: LocalTwin, leaf: CertBundle) -> bytes:
    """A new connection and one request on it: the status line, or ``b""`` when the connection was closed."""
    try:
        with gateway_connection(twin, leaf, timeout=5) as tls:
            return _get(tls, close=True)
    except (ssl.SSLError, OSError):
        return b""


def _active(twin: LocalTwin) -> int:
    return twin.stats(INGRESS).get(EDGE + "active_connections", 0)


def _wait_no_connections(twin: LocalTwin, timeout: float = IDLE + DRAIN + 3) -> None:
    """Wait until the exporter holds no downstream connection (pooled ones close after idle + drain)."""
    deadline = time.monotonic() + timeout
    while _active(twin):
        if time.monotonic() > deadline:
            raise AssertionError(f"the gateway still holds {_active(twin)} connection(s)")
        time.sleep(0.1)


def test_connections_beyond_the_limit_are_closed_while_those_within_are_served(twin: LocalTwin) -> None:
    _wait_no_connections(twin)
    limited = Counters(twin, INGRESS, EDGE)
    leaf = _client(twin)
    with ExitStack() as stack:
        held = [stack.enter_context(gateway_connection(twin, leaf)) for _ in range(MAX_CONNECTIONS)]
        assert _active(twin) == MAX_CONNECTIONS
        # one more: closed by the connection_limit filter before its TLS handshake completes
        assert _attempt(twin, leaf) == b""
        assert limited.delta().get("limited_connections") == 1
        # twin: every connection within the limit is served, the over-limit attempt changed nothing for them
        assert [_get(tls) for tls in held] == [b"HTTP/1.1 200 OK"] * MAX_CONNECTIONS
    # and the limit frees as connections close: the importer's app goes through again
    _wait_no_connections(twin)
    assert answer(app_call(twin))["export"] == "lambda"
    assert limited.delta().get("limited_connections") == 1


def test_an_idle_connection_is_closed_after_the_idle_timeout(twin: LocalTwin) -> None:
    """Past the handshake, a client that sends nothing is closed at the idle timeout (slowloris without bytes);
    a connection that carried requests is drained then: closed after Envoy's drain_timeout more."""
    stats = Counters(twin, INGRESS, HCM_STATS)
    leaf = _client(twin)
    with gateway_connection(twin, leaf, timeout=IDLE + 5) as silent:
        t0 = time.monotonic()
        assert closed_by_peer(silent)
        took = time.monotonic() - t0
    assert IDLE - 0.3 <= took < IDLE + 2.0, took
    assert stats.delta().get("downstream_cx_idle_timeout", 0) >= 1  # (the egress's pooled connections count too)
    stats = Counters(twin, INGRESS, HCM_STATS)
    with gateway_connection(twin, leaf, timeout=IDLE + DRAIN + 5) as used:
        assert _get(used) == b"HTTP/1.1 200 OK"
        t0 = time.monotonic()
        assert closed_by_peer(used)
        took = time.monotonic() - t0
    assert IDLE + DRAIN - 0.5 <= took < IDLE + DRAIN + 2.5, took
    assert stats.delta().get("downstream_cx_idle_timeout", 0) >= 1


def test_an_active_connection_outlives_the_idle_timeout(twin: LocalTwin) -> None:
    """Negative twin: a request every IDLE/3 s keeps the connection; idle is time without a request."""
    t0 = time.monotonic()
    with gateway_connection(twin, _client(twin)) as tls:
        while time.monotonic() - t0 < IDLE * 1.8:
            assert _get(tls) == b"HTTP/1.1 200 OK"
            time.sleep(IDLE / 3)
        assert _get(tls, close=True) == b"HTTP/1.1 200 OK"  # the same connection, IDLE * 1.8 s later


def _trickle(tls: ssl.SSLSocket, lines: list[bytes], pause: float) -> float:
    """Send the request head line by line, ``pause`` s apart, until the gateway answers; its response time."""
    t0 = time.monotonic()
    tls.sendall(b"GET /hello-world HTTP/1.1\r\nHost: lambda.external\r\n")
    for line in lines:
        time.sleep(pause)
        if tls.pending() or select.select([tls], [], [], 0)[0]:
            break  # the gateway answered (or closed) before the headers were complete
        try:
            tls.sendall(line)
        except (ssl.SSLError, OSError):
            break
    select.select([tls], [], [], 10)
    return time.monotonic() - t0


def test_slow_headers_get_408_after_the_request_headers_timeout(twin: LocalTwin) -> None:
    """Slowloris: a header line every 0.3 s. The gateway answers 408 once HEADERS s have passed since the first byte."""
    stats = Counters(twin, INGRESS, HCM_STATS)
    log = AccessLog(twin, INGRESS)
    with gateway_connection(twin, _client(twin)) as tls:
        took = _trickle(tls, [f"X-Slow-{i}: 1\r\n".encode() for i in range(20)] + [b"\r\n"], 0.3)
        response = read_response(tls)
        assert closed_by_peer(tls)
    assert response.startswith(b"HTTP/1.1 408") and b"request header timeout" in response, response[:200]
    assert HEADERS - 0.1 <= took < HEADERS + 1.5, took
    assert stats.delta().get("downstream_rq_header_timeout") == 1
    assert " 408 " in log.request(contains=" 408 ")


def test_headers_sent_within_the_timeout_are_served(twin: LocalTwin) -> None:
    """Negative twin: the same trickle, finished within the timeout (3 lines 0.15 s apart)."""
    stats = Counters(twin, INGRESS, HCM_STATS)
    with gateway_connection(twin, _client(twin)) as tls:
        _trickle(tls, [b"X-Slow: 1\r\n", b"Connection: close\r\n", b"\r\n"], 0.15)
        response = read_response(tls)
    assert response.startswith(b"HTTP/1.1 200"), response[:200]
    assert "downstream_rq_header_timeout" not in stats.delta()
