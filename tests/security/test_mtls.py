"""S1–S6: who may talk to the exporter gateway, and whom the importer's egress gateway accepts as the exporter.

Each refusal is proved three ways: no HTTP response (the TLS alert the client got is recorded), the
exporter gateway's own verification counter that names the reason (``ssl.fail_verify_no_cert``,
``fail_verify_error``, ``fail_verify_san``), and no request reaching the backend. Each refusal has its
negative twin: the same call with the one property fixed gets the Lambda's page.
"""

from __future__ import annotations

import datetime as dt
import socket

import pytest

from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore, issue_ca, issue_leaf
from meshbridge.pki.x509 import utcnow
from tests.security.support import (
    EGRESS,
    INGRESS,
    PAGE,
    AccessLog,
    Outcome,
    app_call,
    backend_requests,
    client_context,
    dial,
    egress_upstream,
    gateway_address,
    ingress_tls,
    restore,
    serve_leaf,
)

pytestmark = pytest.mark.security

IMPORTER_ID = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _ca(twin: LocalTwin, mesh: str) -> CertBundle:
    ca = PkiStore(twin.state_dir).load(mesh, "ca")
    assert ca is not None
    return ca


def _client(twin: LocalTwin) -> CertBundle:
    leaf = PkiStore(twin.state_dir).load("gke", "client")
    assert leaf is not None and leaf.uris == [IMPORTER_ID]
    return leaf


def _refused(twin: LocalTwin, cert: CertBundle | None) -> tuple[Outcome, dict[str, int]]:
    """Dial with ``cert``; return the outcome and the gateway's TLS counters that moved; assert no backend."""
    tls, backend = ingress_tls(twin), backend_requests(twin)
    out = dial(twin, cert)
    assert "upstream_rq_total" not in backend.delta(), "a refused client reached the backend"
    return out, tls.delta()


def _accepted(twin: LocalTwin, cert: CertBundle) -> None:
    tls, backend = ingress_tls(twin), backend_requests(twin)
    out = dial(twin, cert)
    assert out.page and out.headers["server"] == "istio-envoy", out
    assert tls.delta().get("handshake") == 1 and backend.delta().get("upstream_rq_total") == 1


def test_the_importer_certificate_gets_the_page(twin: LocalTwin) -> None:
    _accepted(twin, _client(twin))
    r = app_call(twin)
    assert r.status == 200 and PAGE in r.body


# -- S1 no client certificate ------------------------------------------------------------------------------------


def test_s1_no_client_certificate_is_refused(twin: LocalTwin) -> None:
    out, tls = _refused(twin, None)
    assert out.refused and "CERTIFICATE_REQUIRED" in out.error
    assert tls == {"fail_verify_no_cert": 1}
    _accepted(twin, _client(twin))  # twin: the same client with the importer's certificate


# -- S2 foreign CA -------------------------------------------------------------------------------------------------


def test_s2_a_client_from_a_foreign_ca_is_refused(twin: LocalTwin) -> None:
    foreign = issue_leaf(issue_ca("an attacker's own CA"), "client", common_name="attacker", uris=[IMPORTER_ID])
    out, tls = _refused(twin, foreign)
    assert out.refused and "UNKNOWN_CA" in out.error
    assert tls == {"fail_verify_error": 1}
    # twin: the very same identity from the importer's CA is accepted
    _accepted(twin, issue_leaf(_ca(twin, "gke"), "client", common_name="x", uris=[IMPORTER_ID]))


def test_s2_the_exporters_own_ca_does_not_vouch_for_clients(twin: LocalTwin) -> None:
    """The gateway trusts only the importers' CAs for clients, not the CA of its own server leaf."""
    own = issue_leaf(_ca(twin, "eks"), "client", common_name="x", uris=[IMPORTER_ID])
    out, tls = _refused(twin, own)
    assert out.refused and "UNKNOWN_CA" in out.error and tls == {"fail_verify_error": 1}


# -- S3 wrong identity from the right CA -------------------------------------------------------------------------


def test_s3_another_identity_from_the_importer_ca_is_refused_by_the_san_pin(twin: LocalTwin) -> None:
    gke = _ca(twin, "gke")
    for uri in (
        "spiffe://gke.example.com/ns/default/sa/sleep",  # an app of the importer mesh, not its egress gateway
        "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account/x",  # a suffix
        "spiffe://GKE.example.com/ns/istio-egress/sa/istio-egressgateway-service-account",  # case
    ):
        out, tls = _refused(twin, issue_leaf(gke, "client", common_name="x", uris=[uri]))
        assert out.refused and "CERTIFICATE_UNKNOWN" in out.error, uri
        assert tls == {"fail_verify_san": 1}, uri
    # a leaf naming the egress gateway only by a DNS SAN: the pin wants the SPIFFE URI, nothing matches
    out, tls = _refused(twin, issue_leaf(gke, "client", common_name="x", dns_names=["istio-egressgateway.gke"]))
    assert out.refused and tls == {"fail_verify_san": 1}
    # twin: the pinned identity from the same CA is accepted
    _accepted(twin, issue_leaf(gke, "client", common_name="x", uris=[IMPORTER_ID]))


# -- S4 server identity, seen from the importer ---------------------------------------------------------------------


def test_s4_the_egress_refuses_an_exporter_cert_for_another_host(twin: LocalTwin) -> None:
    other = issue_leaf(_ca(twin, "eks"), "server", common_name="orders.external", dns_names=["orders.external"])
    try:
        serve_leaf(twin, INGRESS, other)
        # the chain is valid: a client that trusts the exporter's CA but pins no name accepts it ...
        ip, port = gateway_address(twin)
        with (
            client_context(_ca(twin, "eks"), _client(twin), check_hostname=False) as ctx,
            socket.create_connection((ip, port), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname="lambda.external") as tls_sock,
        ):
            assert tls_sock.getpeercert()["subjectAltName"] == (("DNS", "orders.external"),)  # type: ignore[index]
        # ... so only the egress's subjectAltNames pin (lambda.external) stands between the app and this server
        up, backend = egress_upstream(twin), backend_requests(twin)
        log = AccessLog(twin, EGRESS)
        r = app_call(twin)
        assert r.status == 503 and PAGE not in r.body
        assert "CERTIFICATE_VERIFY_FAILED" in log.request()
        moved = up.delta()
        assert moved.get("ssl.fail_verify_san", 0) >= 1 and "ssl.handshake" not in moved
        assert "upstream_rq_total" not in backend.delta()
    finally:
        restore(twin)
    r = app_call(twin)  # twin: the right server leaf, the same path
    assert r.status == 200 and PAGE in r.body


# -- S5 swapped EKU ---------------------------------------------------------------------------------------------------


def test_s5_a_server_auth_leaf_is_refused_as_a_client(twin: LocalTwin) -> None:
    gke = _ca(twin, "gke")
    out, tls = _refused(twin, issue_leaf(gke, "server", common_name="x", uris=[IMPORTER_ID]))
    assert out.refused and "UNSUPPORTED_CERTIFICATE" in out.error and tls == {"fail_verify_error": 1}
    _accepted(twin, issue_leaf(gke, "client", common_name="x", uris=[IMPORTER_ID]))  # twin: clientAuth


def test_s5_the_egress_refuses_a_client_auth_leaf_as_the_server(twin: LocalTwin) -> None:
    eks = _ca(twin, "eks")
    wrong = issue_leaf(eks, "client", common_name="lambda.external", dns_names=["lambda.external"])
    try:
        serve_leaf(twin, INGRESS, wrong)
        up = egress_upstream(twin)
        log = AccessLog(twin, EGRESS)
        r = app_call(twin)
        assert r.status == 503 and PAGE not in r.body
        assert "CERTIFICATE_VERIFY_FAILED" in log.request()
        assert up.delta().get("ssl.fail_verify_error", 0) >= 1
    finally:
        restore(twin)
    assert app_call(twin).status == 200  # twin: the serverAuth leaf with the same SAN


# -- S6 validity window ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "days"),
    [("expired", dt.timedelta(days=-10), 1), ("not yet valid", dt.timedelta(days=1), 30)],
)
def test_s6_a_client_outside_its_validity_is_refused(
    twin: LocalTwin, name: str, start: dt.timedelta, days: int
) -> None:
    gke = _ca(twin, "gke")
    leaf = issue_leaf(gke, "client", common_name="x", uris=[IMPORTER_ID], not_before=utcnow() + start, days=days)
    out, tls = _refused(twin, leaf)
    # BoringSSL sends the same alert for both (X509_V_ERR_CERT_NOT_YET_VALID maps to certificate_expired)
    assert out.refused and "CERTIFICATE_EXPIRED" in out.error, name
    assert tls == {"fail_verify_error": 1}
    _accepted(twin, issue_leaf(gke, "client", common_name="x", uris=[IMPORTER_ID]))  # twin: valid now


def test_s6_the_egress_refuses_an_expired_server_certificate(twin: LocalTwin) -> None:
    eks = _ca(twin, "eks")
    expired = issue_leaf(
        eks,
        "server",
        common_name="lambda.external",
        dns_names=["lambda.external"],
        not_before=utcnow() - dt.timedelta(days=10),
        days=1,
    )
    try:
        serve_leaf(twin, INGRESS, expired)
        up = egress_upstream(twin)
        log = AccessLog(twin, EGRESS)
        r = app_call(twin)
        assert r.status == 503 and PAGE not in r.body
        assert "CERTIFICATE_VERIFY_FAILED" in log.request()
        assert up.delta().get("ssl.fail_verify_error", 0) >= 1
    finally:
        restore(twin)
    assert app_call(twin).status == 200
