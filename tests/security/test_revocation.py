"""S7: revocation through a CRL, end to end — store → Secret ``crl`` key → SDS → Envoy's handshake.

Istio's ``TestMutualTlsOrigination`` pair: a CRL that lists only an unused serial still lets the real
client through; the revoked certificate is refused. Here on both sides: the exporter gateway checks the
importer's client leaf against the importer CA's CRL, the egress checks the exporter's server leaf.
Tests run in order and build on each other's CRLs (one twin for the module).
"""

from __future__ import annotations

import base64
import time

import pytest

from meshbridge.cli.main import main
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import CertBundle, PkiStore, issue_leaf, parse_crl
from tests.security.support import (
    EGRESS,
    INGRESS,
    PAGE,
    AccessLog,
    app_call,
    backend_requests,
    dial,
    egress_upstream,
    ingress_tls,
    restore,
    served,
)

pytestmark = pytest.mark.security

IMPORTER_ID = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _store(twin: LocalTwin) -> PkiStore:
    return PkiStore(twin.state_dir)


def _load(twin: LocalTwin, mesh: str, slot: str) -> CertBundle:
    b = _store(twin).load(mesh, slot)  # type: ignore[arg-type]
    assert b is not None
    return b


def _crl_serials(twin: LocalTwin, proxy: str) -> list[int] | None:
    vc = served(twin, proxy)["kubernetes://mtls-credential-cacert"]["validation_context"]  # type: ignore[index]
    if "crl" not in vc:
        return None
    pem = base64.b64decode(vc["crl"]["inline_bytes"])
    blocks = [b + b"-----END X509 CRL-----\n" for b in pem.split(b"-----END X509 CRL-----") if b.strip()]
    return sorted(r.serial_number for b in blocks for r in parse_crl(b))


def test_s7_no_revocation_means_no_crl_on_either_gateway(twin: LocalTwin) -> None:
    assert _crl_serials(twin, INGRESS) is None and _crl_serials(twin, EGRESS) is None
    assert app_call(twin).status == 200


def test_s7_a_crl_of_an_unused_serial_still_lets_the_importer_through(twin: LocalTwin) -> None:
    _store(twin).revoke("gke", 0x5EED)
    restore(twin)  # pushes the CRL (refresh_secrets), waits for it, cuts pooled connections
    assert _crl_serials(twin, INGRESS) == [0x5EED]
    assert _crl_serials(twin, EGRESS) is None  # the exporter's CA revoked nothing: no CRL on the importer side
    tls = ingress_tls(twin)
    r = app_call(twin)
    assert r.status == 200 and PAGE in r.body
    assert tls.delta().get("handshake") == 1  # a fresh handshake, checked against the CRL
    assert dial(twin, _load(twin, "gke", "client")).page


def test_s7_a_revoked_client_leaf_is_refused(twin: LocalTwin) -> None:
    stolen = issue_leaf(_load(twin, "gke", "ca"), "client", common_name="x", uris=[IMPORTER_ID])
    assert dial(twin, stolen).page  # twin: accepted before it is revoked
    _store(twin).revoke("gke", stolen.serial)
    restore(twin)
    tls, backend = ingress_tls(twin), backend_requests(twin)
    out = dial(twin, stolen)
    assert out.refused and "CERTIFICATE_REVOKED" in out.error
    assert tls.delta() == {"fail_verify_error": 1} and "upstream_rq_total" not in backend.delta()
    assert dial(twin, _load(twin, "gke", "client")).page  # the importer's own leaf is still fine


def test_s7_revoking_the_importers_leaf_cuts_the_link_until_it_is_rotated(twin: LocalTwin) -> None:
    file = twin.bridge_dir / "bridge.yaml"
    current = _load(twin, "gke", "client")
    args = ["-f", str(file), "--state-dir", str(twin.state_dir)]
    assert main(["certs", "revoke", "--mesh", "gke", "--current", "client", *args]) == 0  # pushes to the twin
    restore(twin)
    assert current.serial in (_crl_serials(twin, INGRESS) or [])
    tls, log = ingress_tls(twin), AccessLog(twin, EGRESS)
    r = app_call(twin)
    assert r.status == 503 and PAGE not in r.body
    # TLS 1.3: the egress finishes its side of the handshake before the exporter checks the client leaf, so
    # the refusal reaches it as a closed connection (UC), not as a TLS error of its own
    line = log.request()
    assert " 503 UC " in line and "connection_termination" in line, line
    assert tls.delta().get("fail_verify_error", 0) >= 1
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke", *args]) == 0  # a new leaf, pushed and checked
    restore(twin)
    assert app_call(twin).status == 200


def test_s7_a_pushed_revocation_closes_the_connections_opened_before_it(twin: LocalTwin) -> None:
    """Envoy checks a peer only at the handshake; the push drains the gateway so a revoked peer cannot go on
    over a pooled connection (no 'ss -K' here: the product must do it)."""
    store = _store(twin)
    assert app_call(twin).status == 200  # a pooled egress → exporter connection
    closed = _closed_downstream(twin)
    store.rotate_leaves(twin.bridge, ["gke"])  # trust unchanged: nothing drained, no connection closed
    assert "drained" not in twin.refresh_secrets()[INGRESS]
    assert app_call(twin).status == 200 and _closed_downstream(twin) == closed
    tls = ingress_tls(twin)
    store.revoke("gke", _load(twin, "gke", "client").serial)
    assert "drained" in twin.refresh_secrets()[INGRESS]
    deadline = time.monotonic() + 10
    while (status := app_call(twin).status) == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status == 503 and tls.delta().get("fail_verify_error", 0) >= 1
    assert _closed_downstream(twin) > closed  # the drain closed the connection opened before the revocation
    store.rotate_leaves(twin.bridge, ["gke"])
    restore(twin)
    assert app_call(twin).status == 200


def _closed_downstream(twin: LocalTwin) -> int:
    """Connections the exporter gateway's HTTP connection managers have closed so far (admin's apart)."""
    stats = twin.stats(INGRESS)
    return sum(v for k, v in stats.items() if k.endswith(".downstream_cx_destroy") and k.startswith("http.outbound_"))


def test_s7_the_egress_refuses_a_revoked_server_leaf(twin: LocalTwin) -> None:
    """Istio's "CRL revoking the server cert → 503", with a CRL for every CA the egress trusts."""
    server = _load(twin, "eks", "server")
    _store(twin).revoke("eks", server.serial)
    restore(twin)
    assert _crl_serials(twin, EGRESS) == [server.serial]
    up, log = egress_upstream(twin), AccessLog(twin, EGRESS)
    r = app_call(twin)
    assert r.status == 503 and PAGE not in r.body
    line = log.request()
    assert "CERTIFICATE_VERIFY_FAILED" in line, line
    assert up.delta().get("ssl.fail_verify_error", 0) >= 1
    _store(twin).rotate_leaves(twin.bridge, ["eks"])  # twin: a fresh server leaf from the same CA
    restore(twin)
    assert app_call(twin).status == 200
