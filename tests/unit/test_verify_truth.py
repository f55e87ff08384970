"""verify checks what runs, without Envoy: the expiry of the certificates the gateways serve (under the
credential each really reads), and the store's certificates a mesh needs but lacks (Unknown, never left out)."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from meshbridge.pki import CertBundle, issue_ca, issue_leaf
from meshbridge.pki.x509 import utcnow
from meshbridge.verify.local import Running, _expiry, served_expiry
from tests.builders import issued_store, seed_bridge

# -- expiry as served --------------------------------------------------------------------------------------------


def _b64(pem: bytes) -> str:
    return base64.b64encode(pem).decode()


def _dump(leaf: bytes, ca: bytes, credential: str = "mtls-credential") -> dict[str, Any]:
    return {
        "configs": [
            {
                "dynamic_active_secrets": [
                    {
                        "name": f"kubernetes://{credential}",
                        "secret": {"tls_certificate": {"certificate_chain": {"inline_bytes": _b64(leaf)}}},
                    },
                    {
                        "name": f"kubernetes://{credential}-cacert",
                        "secret": {"validation_context": {"trusted_ca": {"inline_bytes": _b64(ca)}}},
                    },
                ]
            }
        ]
    }


@pytest.fixture(scope="module")
def ca() -> CertBundle:
    return issue_ca("verify test CA")


def _leaf(ca: CertBundle, days: int, ago: int = 0) -> bytes:
    start = utcnow() - dt.timedelta(days=ago)
    return issue_leaf(
        ca, "server", common_name="lambda.external", dns_names=["lambda.external"], days=days, not_before=start
    ).cert_pem


def _served(dumps: dict[str, dict[str, Any]], **kw: Any) -> dict[str, Any]:
    twin = SimpleNamespace(bridge=seed_bridge())
    running = Running(dumps, {}, kw.get("unread", {}), kw.get("credentials", {}))
    return {c.subject: c for c in served_expiry(twin, running)}  # type: ignore[arg-type]


INGRESS, EGRESS = "eks/istio-ingressgateway", "gke/istio-egressgateway"


def test_served_certificates_are_judged_on_their_own_expiry(ca: CertBundle) -> None:
    found = _served(
        {INGRESS: _dump(_leaf(ca, 90), ca.cert_pem), EGRESS: _dump(_leaf(ca, 5), ca.cert_pem)},
    )
    assert (found[INGRESS].status, found[INGRESS].reason) == ("True", "Valid")
    assert "holds kubernetes://mtls-credential, kubernetes://mtls-credential-cacert" in found[INGRESS].message
    soon = found[EGRESS]
    assert (soon.check, soon.status, soon.reason) == ("ServedCertificateExpiry", "False", "ExpiresSoon")
    assert "serves CN=lambda.external" in soon.message and "within 30 days" in soon.message
    expired = _served({INGRESS: _dump(_leaf(ca, 1, ago=3), ca.cert_pem), EGRESS: _dump(_leaf(ca, 90), ca.cert_pem)})
    assert (expired[INGRESS].status, expired[INGRESS].reason) == ("False", "Expired")
    assert "Fix: renew it" in expired[INGRESS].message


def test_served_expiry_reads_the_credential_the_gateway_really_reads(ca: CertBundle) -> None:
    dumps = {INGRESS: _dump(_leaf(ca, 90), ca.cert_pem), EGRESS: _dump(_leaf(ca, 90), ca.cert_pem, "gke-cred")}
    found = _served(dumps, credentials={EGRESS: ["gke-cred"]})
    assert found[EGRESS].passed and "kubernetes://gke-cred" in found[EGRESS].message
    # the negative twin: judged on the spec's name, the same gateway holds nothing to read
    unnamed = _served(dumps)
    assert (unnamed[EGRESS].status, unnamed[EGRESS].reason) == ("Unknown", "NotServed")
    assert "holds no certificate of kubernetes://mtls-credential" in unnamed[EGRESS].message


def test_a_served_expiry_that_cannot_be_read_is_unknown_with_its_reason(ca: CertBundle) -> None:
    garbage = b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    found = _served({INGRESS: _dump(garbage, ca.cert_pem)}, unread={EGRESS: "cannot read its config_dump"})
    assert (found[INGRESS].status, found[INGRESS].reason) == ("Unknown", "Unreadable")
    assert (found[EGRESS].status, found[EGRESS].reason, found[EGRESS].message) == (
        "Unknown",
        "GatewayUnreadable",
        "cannot read its config_dump",
    )


# -- the store's certificates a mesh needs ------------------------------------------------------------------------


def test_a_certificate_the_spec_needs_but_the_store_lacks_is_unknown_not_left_out(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    twin = SimpleNamespace(bridge=bridge)
    before = {c.check.removeprefix("CertificateExpiry:"): c for c in _expiry(twin, store)}  # type: ignore[arg-type]
    assert sorted(before) == ["eks/ca", "eks/server", "gke/ca", "gke/client"]  # eks imports nothing: no client
    store.path("gke", "client").unlink()
    after = {c.check.removeprefix("CertificateExpiry:"): c for c in _expiry(twin, store)}  # type: ignore[arg-type]
    missing = after["gke/client"]
    assert (missing.status, missing.reason) == ("Unknown", "NotIssued")
    assert "gke imports a service" in missing.message and "meshbridge certs issue" in missing.message
    # the negative twin: slots a mesh may lack (ca-next outside a rollover, eks's client) are still not listed
    assert sorted(after) == sorted(before)
