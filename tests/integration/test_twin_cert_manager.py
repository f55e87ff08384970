"""cert-manager mode on the local twin, real Envoy: the twin plays cert-manager (its own stand-in issuer per mesh,
never the user's store) and its gateways read the Secrets in cert-manager's shape: the credential Secret with
tls.crt, tls.key and the issuer's own ca.crt, the peer's CA in <credentialName>-cacert, named by the exporter's
caCertCredentialName. The path completes and verify passes. Negative twin: the classic trap (no -cacert, no
caCertCredentialName), where the exporter trusts only its own issuer and refuses the importer's certificate."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.local.certmanager import TWIN_ISSUERS, issuing_bridge, twin_credentials, twin_store
from meshbridge.local.curl import curl
from meshbridge.local.plan import lb_address
from meshbridge.local.twin import LocalTwin
from meshbridge.pki.x509 import parse_certificates
from meshbridge.render import render_bridge
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"


def _cert_manager_folder(tmp: Path) -> Path:
    """The seed in cert-manager mode on Istio 1.31 (caCertCredentialName): eks signs with a ClusterIssuer, gke
    with a CA Issuer on its CA Secret."""
    file, _ = seed_folder(tmp)
    data = yaml.safe_load(file.read_text())
    data["spec"]["tls"]["issuer"] = "cert-manager"
    for name, mesh in data["spec"]["meshes"].items():
        mesh["istio"]["version"] = "1.31.0"
        mesh["certManager"] = {"issuerRef": {"name": "eks-ca", "kind": "ClusterIssuer"}} if name == "eks" else {}
    data["spec"]["meshes"]["gke"]["certManager"] = {"caSecret": "gke-root-ca"}
    file.write_text(yaml.safe_dump(data, sort_keys=False))
    return file


def _refused(twin: LocalTwin) -> int:
    """Client certificates the exporter's ingress gateway refused (its listeners' ``ssl.fail_verify_error``)."""
    stats = twin.stats("eks/istio-ingressgateway")
    return sum(int(v) for k, v in stats.items() if k.endswith("ssl.fail_verify_error"))


def test_the_twin_plays_cert_manager_and_the_path_and_verify_pass(tmp_path: Path) -> None:
    file = _cert_manager_folder(tmp_path)
    state = tmp_path / ".meshbridge"
    twin = LocalTwin(load_bridge(file), file, state)
    twin.up({})
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert (r.status, PAGE in r.body) == (200, True)
        assert _refused(twin) == 0
        failed = [f"{c.name}: {c.message}" for c in verify_local(twin) if not c.passed]
        assert failed == []  # its refusals too: no client certificate, a foreign CA, an expired one, a wrong SNI
    finally:
        twin.down()
    assert (state / TWIN_ISSUERS / "pki" / "eks" / "ca.key").exists()
    assert not (state / "pki").exists()  # the user's store (the issuers' CA certificates) is never written


def test_the_twin_renders_cert_managers_shapes(tmp_path: Path) -> None:
    bridge = load_bridge(_cert_manager_folder(tmp_path))
    store = twin_store(bridge, tmp_path / ".meshbridge")
    store.issue(issuing_bridge(bridge))
    sets = render_bridge(bridge, twin_credentials(bridge, store))
    secrets = {(d["metadata"]["name"], m): d for m, ms in sets.items() for d in ms if d["kind"] == "Secret"}
    issued = secrets[("mtls-credential", "eks")]
    assert issued["type"] == "kubernetes.io/tls" and sorted(issued["data"]) == ["ca.crt", "tls.crt", "tls.key"]
    assert issued["metadata"]["annotations"]["cert-manager.io/issuer-name"] == "eks-ca"
    own, peer = (
        parse_certificates(base64.b64decode(secrets[(n, "eks")]["data"]["ca.crt"]))
        for n in ("mtls-credential", "mtls-credential-cacert")
    )
    assert own == [store.require_ca("eks").cert] and peer == [store.require_ca("gke").cert]


def _without_peer_ca(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The exporter's documents with the trap, under a team's own credential name (eks-cm, so that the twin's
    filling of Secrets the manifests lack cannot bring mtls-credential-cacert back): no eks-cm-cacert, no
    caCertCredentialName."""
    out = [d for d in docs if d["metadata"]["name"] != "mtls-credential-cacert"]
    for d in out:
        if d["kind"] == "Secret" and d["metadata"]["name"] == "mtls-credential":
            d["metadata"] = d["metadata"] | {"name": "eks-cm"}
        if d["kind"] == "Gateway":
            for server in d["spec"]["servers"]:
                server["tls"].pop("caCertCredentialName", None)
                server["tls"]["credentialName"] = "eks-cm"
    return out


def test_without_the_peer_ca_secret_the_exporter_trusts_its_own_issuer_and_refuses_the_importer(
    tmp_path: Path,
) -> None:
    file = _cert_manager_folder(tmp_path)
    bridge = load_bridge(file)
    state = tmp_path / ".meshbridge"
    store = twin_store(bridge, state)
    store.issue(issuing_bridge(bridge))
    sets = render_bridge(bridge, twin_credentials(bridge, store), addresses={"eks": lb_address(bridge, "eks")})
    manifests = {}
    for mesh, ms in sets.items():
        docs = [dict(d) for d in ms]
        path = tmp_path / f"{mesh}.yaml"
        path.write_text(yaml.safe_dump_all(_without_peer_ca(docs) if mesh == "eks" else docs))
        manifests[mesh] = [path]
    twin = LocalTwin(bridge, file, state)
    twin.up(manifests)
    try:
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 503 and PAGE not in r.body
        assert _refused(twin) >= 1
    finally:
        twin.down()
