"""S9 and S10: what an importer holding a valid certificate can reach by playing with SNI, Host and the path.

One exporter gateway, two exports on the same port (``lambda.external`` and ``orders.external``), each with
its own ALB and Lambda that answers with its own name. The client below is the importer's *own* valid
certificate: mTLS is passed, and the question is only where the request lands.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore
from tests.security.support import (
    INGRESS,
    Counters,
    answer,
    app_call,
    client_context,
    dial,
    gateway_address,
    handshake,
    raw_request,
    running,
    two_exports_twin,
)

pytestmark = pytest.mark.security


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    with running(two_exports_twin(tmp_path_factory.mktemp("routing"))) as t:
        yield t


def _client(twin: LocalTwin) -> CertBundle:
    leaf = PkiStore(twin.state_dir).load("gke", "client")
    assert leaf is not None
    return leaf


def _listener(twin: LocalTwin) -> Counters:
    address = twin.plan()["proxies"][INGRESS]["address"]
    _, port = gateway_address(twin)
    return Counters(twin, INGRESS, f"listener.{address}_{port}.")


def test_each_export_answers_on_its_own_sni_and_host(twin: LocalTwin) -> None:
    for host in ("lambda.external", "orders.external"):
        out = dial(twin, _client(twin), sni=host, host=host, path="/x")
        assert out.status == 200 and answer(out) == {"export": host.split(".")[0], "path": "/x", "host": host}
        r = app_call(twin, "/x", host=host)  # and through the importer's egress, as apps call them
        assert r.status == 200 and answer(r)["export"] == host.split(".")[0]


# -- S9 SNI/Host ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sni", "host", "status"),
    [
        ("lambda.external", "orders.external", 404),
        ("orders.external", "lambda.external", 404),
        ("lambda.external", "localhost", 403),
        ("lambda.external", "istio-ingressgateway.istio-ingress.svc.cluster.local", 403),
        ("lambda.external", "alb.internal.example.com", 403),  # the backend's own name
    ],
)
def test_s9_a_host_other_than_the_sni_never_reaches_another_export(
    twin: LocalTwin, sni: str, host: str, status: int
) -> None:
    out = dial(twin, _client(twin), sni=sni, host=host)
    # Envoy does not compare Host with SNI (envoy#6767): the SNI picks the filter chain. A host no export names is
    # refused first by the exporter's AuthorizationPolicy (403 'RBAC: access denied'); another export's host that
    # this importer may call passes it, and that chain's route configuration only knows its own server's host, so
    # it is Envoy's own 404 (NR)
    assert out.status == status and out.headers["server"] == "istio-envoy" and answer(out) == {}, out
    assert (out.body == b"RBAC: access denied") == (status == 403), out
    # twin: the same connection parameters with a matching Host reach the SNI's export
    same = dial(twin, _client(twin), sni=sni, host=sni)
    assert answer(same)["export"] == sni.split(".")[0]


def test_s9_http2_connection_reuse_cannot_reach_another_export(twin: LocalTwin) -> None:
    ip, port = gateway_address(twin)
    listener = _listener(twin)
    with (
        client_context(PkiStore(twin.state_dir).load("eks", "ca"), _client(twin)) as ctx,
        httpx.Client(verify=ctx, http2=True, timeout=10.0) as http,
    ):
        sni = {"sni_hostname": "lambda.external"}
        first = http.get(f"https://{ip}:{port}/a", headers={"Host": "lambda.external"}, extensions=sni)
        second = http.get(f"https://{ip}:{port}/b", headers={"Host": "orders.external"}, extensions=sni)
        third = http.get(f"https://{ip}:{port}/c", headers={"Host": "lambda.external"}, extensions=sni)
    assert first.http_version == "HTTP/2" and answer(first)["export"] == "lambda"
    assert second.status_code == 404 and second.content == b""  # :authority orders.external on lambda's chain
    assert answer(third)["export"] == "lambda"
    moved = listener.delta()
    assert moved.get("downstream_cx_total") == 1, moved  # all three rode one connection


@pytest.mark.parametrize("sni", [None, "admin.external", "ORDERS.EXTERNAL.evil", "*.external"])
def test_s9_missing_or_unknown_sni_is_closed_before_any_certificate_is_shown(twin: LocalTwin, sni: str | None) -> None:
    listener = _listener(twin)
    got = handshake(twin, _client(twin), sni=sni)
    assert not got.startswith("ok"), got
    assert "reset" in got.lower() or "EOF" in got or "closed" in got, got
    assert listener.delta().get("no_filter_chain_match") == 1
    assert handshake(twin, _client(twin), sni="orders.external").startswith("ok TLSv1.3")  # twin


def test_s9_sni_matching_is_case_insensitive(twin: LocalTwin) -> None:
    """SNI names are compared case-insensitively (RFC 6066): ``LAMBDA.EXTERNAL`` is the lambda chain."""
    out = dial(twin, _client(twin), sni="LAMBDA.EXTERNAL", host="lambda.external")
    assert answer(out)["export"] == "lambda", out


# -- S10 host and path normalisation -----------------------------------------------------------------------------


def _get(twin: LocalTwin, host: str, path: str = "/hello-world") -> tuple[int | None, dict[str, str]]:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: security-suite\r\nConnection: close\r\n\r\n"
    out = raw_request(twin, _client(twin), request.encode())
    return out.status, answer(out)


@pytest.mark.parametrize(
    ("host", "status", "export"),
    [
        ("lambda.external", 200, "lambda"),
        ("LAMBDA.EXTERNAL", 200, "lambda"),  # domains match case-insensitively
        ("Lambda.External", 200, "lambda"),
        ("lambda.external:443", 200, "lambda"),  # ignore_port_in_host_matching (istiod's gateway default)
        ("lambda.external:8443", 200, "lambda"),  # ... any port
        # a trailing dot is kept: no export names it, so the AuthorizationPolicy refuses it (and no vhost has it)
        ("lambda.external.", 403, None),
        ("orders.external:443", 404, None),  # the policy admits orders (any port, any case); lambda's chain: no route
        ("ORDERS.EXTERNAL", 404, None),
        ("orders.external.", 403, None),
    ],
)
def test_s10_host_variants(twin: LocalTwin, host: str, status: int, export: str | None) -> None:
    got, body = _get(twin, host)
    assert got == status, (host, got, body)
    assert body.get("export") == export, (host, body)


@pytest.mark.parametrize(
    ("path", "status", "seen"),
    [
        ("/hello-world", 200, "/hello-world"),
        ("//hello-world", 200, "//hello-world"),  # merge_slashes is off (Istio's BASE normalisation)
        ("/hello-world/../orders", 200, "/orders"),  # RFC 3986 dot segments are resolved (normalize_path)
        ("/hello-world%2F..", 200, "/hello-world%2F.."),  # escaped slashes kept (KEEP_UNCHANGED), not decoded
        ("/hello-world%2f..%2forders", 200, "/hello-world%2f..%2forders"),
        ("/%2e%2e/orders", 200, "/orders"),  # percent-encoded dots are dot segments too
        ("/hello-world#frag", 400, None),  # a fragment in the request target is refused
        ("hello-world", 400, None),  # not origin-form
    ],
)
def test_s10_path_variants_only_ever_reach_the_lambda_export(
    twin: LocalTwin, path: str, status: int, seen: str | None
) -> None:
    got, body = _get(twin, "lambda.external", path)
    assert got == status, (path, got, body)
    if seen is None:
        assert body == {}, body
    else:
        assert body == {"export": "lambda", "path": seen, "host": "lambda.external"}, body
