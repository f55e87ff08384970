"""The path check judges the gateways' handshake on the CAs each one is served (without Envoy: the seed's
translation, with the Secret users add beside the rendered one: a ``<credentialName>-cacert``, which istiod reads
before the credential's own ``cacert``)."""

from __future__ import annotations

import base64
import copy
import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest

from meshbridge.envoy.pathsim import Hop, path_findings
from meshbridge.envoy.translate import ProxyConfig, translate
from meshbridge.envoy.view import inline
from meshbridge.local.exportpath import export_paths, findings
from meshbridge.pki.x509 import issue_ca, issue_crl, issue_leaf
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from meshbridge.world import find_proxy, mesh_config, workloads
from tests.builders import bridge_from, seed_bridge
from tests.istio_builders import (
    ADDRESSES,
    CLIENT_FILES,
    Docs,
    client_certificate_files,
    doc_named,
    placement,
    seed_path,
)
from tests.peer_support import one_side

INGRESS, EGRESS = "eks/istio-ingressgateway", "gke/istio-egressgateway"
NAMESPACES = {"eks": "istio-ingress", "gke": "istio-egress"}
CERT, KEY, CA = CLIENT_FILES["clientCertificate"], CLIENT_FILES["privateKey"], CLIENT_FILES["caCertificates"]
STRANGER = issue_ca("stranger CA").cert_pem
OTHER = "spiffe://imp.example.org/ns/istio-egress/sa/other"
GKE_ID = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _strangers(*meshes: str) -> Callable[[Docs], None]:
    """An edit giving each gateway of ``meshes`` a Secret ``mtls-credential-cacert`` that holds a CA which issued
    none of the gateways' certificates (what its ``credentialName``'s CAs become)."""
    cas = {mesh: issue_ca(f"stranger CA of {mesh}") for mesh in meshes}

    def edit(docs: Docs) -> None:
        for mesh, ca in cas.items():
            meta = {"name": "mtls-credential-cacert", "namespace": NAMESPACES[mesh]}
            data = {"ca.crt": base64.b64encode(ca.cert_pem).decode()}
            docs[mesh].append({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "data": data})

    return edit


def _stops(configs: dict[str, ProxyConfig], bridge: Bridge | None = None) -> list[Hop]:
    """What 'local up' reports: the hops that stop the export on its path."""
    b = bridge or seed_bridge()
    return findings(b, configs, export_paths(b, configs))


def test_gateways_that_hold_each_others_ca_pass_the_handshake(tmp_path: Path) -> None:
    assert path_findings(seed_bridge(), seed_path(tmp_path)) == []


def test_an_exporter_without_the_importers_ca_refuses_its_client_certificate(tmp_path: Path) -> None:
    (stop,) = _stops(seed_path(tmp_path, _strangers("eks")))
    assert (stop.proxy, stop.result.error, stop.request.path) == (INGRESS, "UnknownCA", "/hello-world")
    detail = stop.result.detail
    assert detail.startswith(f"{INGRESS} does not trust {EGRESS}'s client certificate (kubernetes://mtls-credential")
    assert "Secret istio-ingress/mtls-credential-cacert" in detail
    assert "no certificate of the trust bundle (CN=stranger CA of eks" in detail
    assert "egress gateway answers 503 UC (upstream_reset_before_response_started{connection_termination})" in detail
    assert "eks's owner runs 'meshbridge peer admit' with gke's reply" in detail


def test_an_importer_without_the_exporters_ca_refuses_its_server_certificate(tmp_path: Path) -> None:
    (stop,) = _stops(seed_path(tmp_path, _strangers("gke")))
    r = stop.result
    assert (stop.proxy, r.error, r.status, r.response_flag) == (EGRESS, "CertificateVerifyFailed", 503, "UF")
    assert r.detail.startswith(f"{EGRESS} does not trust {INGRESS}'s server certificate (kubernetes://mtls-credential")
    assert "Secret istio-egress/mtls-credential-cacert" in r.detail
    assert "(CERTIFICATE_VERIFY_FAILED)" in r.detail
    assert "gke's owner accepts eks's new offer ('meshbridge peer accept')" in r.detail


def test_when_neither_trusts_the_other_the_importer_refuses_first(tmp_path: Path) -> None:
    """TLS 1.3: the server's certificate comes first; the importer ends the handshake before sending its own."""
    hops = [h for h in path_findings(seed_bridge(), seed_path(tmp_path, _strangers("eks", "gke")))]
    assert [(h.proxy, h.result.error) for h in hops] == [(EGRESS, "CertificateVerifyFailed")]


@pytest.mark.parametrize(
    ("peer", "stranger", "fix"),
    [
        ("gke", "eks", "admit gke's current CA: 'meshbridge peer admit REPLY --fingerprint SHA256'"),
        ("eks", "eks", "send eks's owner a reply for your current CA ('meshbridge peer accept OFFER"),
        ("eks", "gke", "accept eks's current CA: 'meshbridge peer accept OFFER --fingerprint SHA256'"),
        ("gke", "gke", "send gke's owner a new offer ('meshbridge peer offer')"),
    ],
)
def test_with_two_owners_the_fix_is_the_step_of_the_peer_exchange_that_is_missing(
    tmp_path: Path, peer: str, stranger: str, fix: str
) -> None:
    """In the exporter's folder (``gke`` is the peer) or the importer's (``eks`` is), the twin runs the peer's
    rendered documents: the CA that is not trusted is the one the exchange did not carry."""
    (stop,) = _stops(seed_path(tmp_path, _strangers(stranger)), bridge_from(one_side(peer)))
    assert f"Fix: {fix}" in stop.result.detail


def _egress_reading_files(tmp: Path, configs: dict[str, ProxyConfig], ca_pem: bytes | None = None) -> ProxyConfig:
    """The seed's egress gateway originating its mutual TLS from its pod's files (:func:`client_certificate_files`),
    the twin's copies holding the certificate its Secret held and its CA (or ``ca_pem``). The key's copy is a
    stand-in: the handshake check reads no key."""
    served = configs[EGRESS].secrets
    chain = served["kubernetes://mtls-credential"]["tls_certificate"]["certificate_chain"]  # type: ignore[index]
    trusted = served["kubernetes://mtls-credential-cacert"]["validation_context"]["trusted_ca"]  # type: ignore[index]
    held = {CERT: inline(chain), KEY: b"not read", CA: ca_pem or inline(trusted)}
    copies = {path: tmp / "mounts" / path.lstrip("/") for path in held}
    for path, data in held.items():
        copies[path].parent.mkdir(parents=True, exist_ok=True)
        copies[path].write_bytes(data)
    bridge = seed_bridge()
    docs = {m: copy.deepcopy(list(ds)) for m, ds in render_bridge(bridge, None).items()}
    client_certificate_files(docs)
    cfg = mesh_config(bridge, "gke", [("gke.yaml", d) for d in docs["gke"]])
    where = dataclasses.replace(placement(tmp, ADDRESSES[EGRESS]), mounts=copies)
    return translate(cfg, find_proxy(bridge, EGRESS).proxy, where, workloads(bridge, "gke", ADDRESSES))


def test_an_egress_reading_the_exporters_ca_from_its_pods_file_is_judged_on_that_file(tmp_path: Path) -> None:
    configs = seed_path(tmp_path)
    configs[EGRESS] = _egress_reading_files(tmp_path, configs)
    assert path_findings(seed_bridge(), configs) == []
    configs[EGRESS] = _egress_reading_files(tmp_path, configs | {EGRESS: seed_path(tmp_path)[EGRESS]}, STRANGER)
    (stop,) = path_findings(seed_bridge(), configs)
    assert (stop.proxy, stop.result.error) == (EGRESS, "CertificateVerifyFailed")
    assert f"(file-root:{CA}: the pod's file {CA})" in stop.result.detail


def _api_only(docs: Docs) -> None:
    """Every hop routes only ``/api/`` (the importer's sidecar and egress gateway routes, the exporter's)."""
    for route in doc_named(docs, "gke", "VirtualService", "direct-lambda-through-egress-gateway")["spec"]["http"]:
        route["match"][0]["uri"] = {"prefix": "/api/"}
    doc_named(docs, "eks", "VirtualService", "vs-lambda")["spec"]["http"][0]["match"] = [{"uri": {"prefix": "/api/"}}]


def test_routes_that_serve_only_the_exports_own_path_still_reach_the_handshake(tmp_path: Path) -> None:
    """Asked on ``/`` the importer's own routes stop the request before its egress gateway picks a cluster; the path
    check asks the export's path (``/api/``), so the handshake is judged there."""
    assert _stops(seed_path(tmp_path, _api_only)) == []
    (stop,) = _stops(seed_path(tmp_path, lambda docs: (_api_only(docs), _strangers("eks")(docs))))
    assert (stop.proxy, stop.request.path, stop.result.error) == (INGRESS, "/api/", "UnknownCA")


def _secret(namespace: str, name: str, data: dict[str, bytes]) -> dict[str, object]:
    encoded = {key: base64.b64encode(value).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace}, "data": encoded}


def _revoking(tmp: Path, revoked: bool) -> dict[str, ProxyConfig]:
    """The seed's path where gke's egress presents a client certificate of a CA of its own (its DestinationRule's
    ``credentialName: own-cred``) and eks trusts that CA with a CRL beside it (``ca.crl``), revoking the certificate
    when ``revoked``."""
    eks_ca = seed_path(tmp)[EGRESS].secrets["kubernetes://mtls-credential-cacert"]["validation_context"]  # type: ignore[index]
    ca = issue_ca("gke's own CA")
    leaf = issue_leaf(ca, "client", common_name="egress", uris=[GKE_ID])  # the identity eks's Gateway pins
    assert leaf.key_pem is not None
    crl = issue_crl(ca, [leaf.serial] if revoked else [])

    def edit(docs: Docs) -> None:
        dr = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")
        dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["credentialName"] = "own-cred"
        own = {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem, "ca.crt": inline(eks_ca["trusted_ca"])}
        docs["gke"].append(_secret("istio-egress", "own-cred", own))
        trusted = {"ca.crt": ca.cert_pem, "ca.crl": crl}
        docs["eks"].append(_secret("istio-ingress", "mtls-credential-cacert", trusted))

    return seed_path(tmp, edit)


def test_a_client_certificate_the_crl_beside_the_exporters_cas_revokes_is_refused_as_revoked(tmp_path: Path) -> None:
    assert _stops(_revoking(tmp_path, revoked=False)) == []
    (stop,) = _stops(_revoking(tmp_path, revoked=True))
    assert (stop.proxy, stop.result.error) == (INGRESS, "CertificateRevoked")
    detail = stop.result.detail
    assert detail.startswith(f"{INGRESS} refuses {EGRESS}'s client certificate (kubernetes://own-cred, issued by ")
    assert "the CRLs beside its CAs (kubernetes://mtls-credential-cacert" in detail
    assert "is revoked (on the CRL of its CA, CN=gke's own CA" in detail
    assert "(alert certificate revoked)" in detail
    assert detail.endswith("Fix: issue a new leaf from its CA and serve it instead")


def _revoking_server(tmp: Path, revoked: bool) -> dict[str, ProxyConfig]:
    """The seed's path where eks's gateway serves a server certificate of a CA of its own (its Gateway's
    ``credentialName: own-server``, beside the gke CA it trusted) and gke trusts that CA with a CRL beside it,
    revoking the certificate when ``revoked``."""
    gke_ca = seed_path(tmp)[INGRESS].secrets["kubernetes://mtls-credential-cacert"]["validation_context"]  # type: ignore[index]
    ca = issue_ca("eks's own CA")
    leaf = issue_leaf(ca, "server", common_name="lambda.external", dns_names=["lambda.external"])
    assert leaf.key_pem is not None
    crl = issue_crl(ca, [leaf.serial] if revoked else [])

    def edit(docs: Docs) -> None:
        doc_named(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]["credentialName"] = (
            "own-server"
        )
        own = {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem, "ca.crt": inline(gke_ca["trusted_ca"])}
        docs["eks"].append(_secret("istio-ingress", "own-server", own))
        docs["gke"].append(_secret("istio-egress", "mtls-credential-cacert", {"ca.crt": ca.cert_pem, "ca.crl": crl}))

    return seed_path(tmp, edit)


def test_a_server_certificate_the_crl_beside_the_importers_cas_revokes_is_refused_at_its_egress(tmp_path: Path) -> None:
    assert _stops(_revoking_server(tmp_path, revoked=False)) == []
    (stop,) = _stops(_revoking_server(tmp_path, revoked=True))
    r = stop.result
    assert (stop.proxy, r.error, r.status, r.response_flag) == (EGRESS, "CertificateVerifyFailed", 503, "UF")
    assert r.detail.startswith(f"{EGRESS} refuses {INGRESS}'s server certificate (kubernetes://own-server, issued by ")
    assert "is revoked (on the CRL of its CA, CN=eks's own CA" in r.detail


def _pinning(mesh: str, pins: list[str]) -> Callable[[Docs], None]:
    """An edit pinning ``pins``: the exporter Gateway server's ``tls.subjectAltNames`` (``eks``), or the importer
    DestinationRule's (``gke``)."""

    def edit(docs: Docs) -> None:
        if mesh == "eks":
            doc_named(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]["tls"]["subjectAltNames"] = pins
        else:
            policy = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]
            policy["portLevelSettings"][0]["tls"]["subjectAltNames"] = pins

    return edit


def test_an_exporter_pinning_a_san_the_client_certificate_lacks_refuses_it(tmp_path: Path) -> None:
    (stop,) = _stops(seed_path(tmp_path, _pinning("eks", [OTHER])))
    assert (stop.proxy, stop.result.error) == (INGRESS, "ClientSanMismatch")
    detail = stop.result.detail
    assert detail.startswith(f"{INGRESS} refuses {EGRESS}'s client certificate (kubernetes://mtls-credential): ")
    assert f"it pins SAN(s) ['{OTHER}'], the certificate carries ['{GKE_ID}'" in detail
    assert "(ssl.fail_verify_san)" in detail
    assert "egress gateway answers 503 UC (upstream_reset_before_response_started{connection_termination})" in detail
    assert f"tls.subjectAltNames to its identity ([{GKE_ID}]), or reissue" in detail
    assert detail.endswith(f"with URI:{OTHER}")


def test_an_exporter_pinning_the_client_certificates_identity_accepts_it(tmp_path: Path) -> None:
    assert _stops(seed_path(tmp_path, _pinning("eks", [OTHER, GKE_ID]))) == []


def test_an_importer_pinning_a_san_the_server_certificate_lacks_refuses_it_first(tmp_path: Path) -> None:
    """Both pins miss: the importer checks the server's certificate first and ends the handshake (503 UF)."""
    (stop,) = _stops(seed_path(tmp_path, lambda d: (_pinning("gke", ["test.com"])(d), _pinning("eks", [OTHER])(d))))
    r = stop.result
    assert (stop.proxy, r.error, r.status, r.response_flag) == (EGRESS, "CertificateVerifyFailed", 503, "UF")
    assert r.detail.startswith(f"{EGRESS} refuses {INGRESS}'s server certificate (kubernetes://mtls-credential): ")
    assert "it pins SAN(s) ['test.com'], the certificate carries [" in r.detail
    assert "(CERTIFICATE_VERIFY_FAILED, its SAN matcher) and answers 503 UF" in r.detail
    assert r.detail.endswith("or reissue the exporter's server certificate with DNS:test.com")


def test_an_importer_pinning_a_san_the_server_certificate_carries_accepts_it(tmp_path: Path) -> None:
    assert _stops(seed_path(tmp_path, _pinning("gke", ["test.com", "lambda.external"]))) == []
