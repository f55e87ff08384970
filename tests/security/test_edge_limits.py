"""Edge limits of the exporter gateway: request header size and count, the request timeout, slow clients.

The exporter gateway is an edge proxy, and Envoy says its defaults are not safe there (research notes A1,
A2). What istiod can express is configured through the spec (``exports[].timeout`` → the VirtualService
route ``timeout``); what it cannot (listener connection limits, downstream idle and header timeouts) is
recorded here as it is, and listed as a gap in ``docs/security.md``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore
from tests.security.support import (
    INGRESS,
    AccessLog,
    answer,
    app_call,
    client_context,
    dial,
    gateway_address,
    raw_request,
    running,
    two_exports_twin,
)

pytestmark = pytest.mark.security

LAMBDA_TIMEOUT = 1.0  # seconds: exports[lambda].timeout; the orders export has none


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    with running(two_exports_twin(tmp_path_factory.mktemp("edge"), lambda_timeout=LAMBDA_TIMEOUT)) as t:
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


# -- what istiod cannot express: recorded as it is ---------------------------------------------------------------------


def test_known_gap_slow_headers_hold_a_connection_open(twin: LocalTwin) -> None:
    """Istio sets ``stream_idle_timeout: 0s`` and no ``request_headers_timeout`` on gateway listeners: a client
    past the handshake that trickles its headers (slowloris) keeps its connection until the 1 h idle timeout.
    When this test fails, the gateway got a header timeout: update docs/security.md."""
    ip, port = gateway_address(twin)
    with (
        client_context(None, _client(twin)) as ctx,
        socket.create_connection((ip, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="lambda.external") as tls,
    ):
        tls.sendall(b"GET /hello-world HTTP/1.1\r\nHost: lambda.external\r\n")
        time.sleep(3.0)
        tls.sendall(b"X-Slow: 1\r\nConnection: close\r\n\r\n")
        assert tls.recv(12) == b"HTTP/1.1 200"


def test_known_gap_no_connection_limit_or_downstream_idle_timeout_on_the_gateway(twin: LocalTwin) -> None:
    """istiod has no Gateway field for a listener ``connection_limit`` or the HCM's downstream ``idle_timeout``
    (only EnvoyFilter, which meshbridge does not render): Envoy's defaults apply (no limit, 1 h)."""
    (listener,) = [
        d["active_state"]["listener"]
        for cfg in twin.config_dump(INGRESS)["configs"]
        for d in cfg.get("dynamic_listeners", [])
        if d["name"].endswith("_8443")
    ]
    filters = [f for chain in listener["filter_chains"] for f in chain["filters"]]
    assert [f["name"] for f in filters] == ["envoy.filters.network.http_connection_manager"] * 2
    for f in filters:
        hcm = f["typed_config"]
        assert "idle_timeout" not in hcm.get("common_http_protocol_options", {})
        assert hcm.get("stream_idle_timeout") == "0s" and "request_headers_timeout" not in hcm
    assert "connection_limit" not in str(listener)
