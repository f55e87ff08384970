"""``certs check --context`` in cert-manager mode against the real API servers (``-m cluster``, local servers only).

The servers run no cert-manager: the test plays it, writing as the administrator the Secrets cert-manager writes
(``kubernetes.io/tls``: tls.crt, tls.key, its own issuer's ca.crt, and its annotations), signed by the CAs of the
test's state folder, which stand for each mesh's issuer; ``<credentialName>-cacert`` holds the peers' CAs as
meshbridge renders it. meshbridge reads them as the suite's user (``render --rbac``'s permissions) and judges
them. Negative twin: without the exporter's -cacert Secret (the classic trap) the check fails and says why.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshbridge.kube.client import apply_raw
from meshbridge.kube.envtest import Clusters, grant_permissions, permissions
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore, identities, issue_leaf
from meshbridge.render.manifests import Document, secret
from tests.cluster.support import Cli, Doc, admin, get

pytestmark = pytest.mark.cluster


def _cert_manager(d: Doc) -> None:
    d["spec"]["tls"]["issuer"] = "cert-manager"
    d["spec"]["meshes"]["eks"]["certManager"] = {"issuerRef": {"name": "eks-ca", "kind": "ClusterIssuer"}}
    d["spec"]["meshes"]["gke"]["certManager"] = {"caSecret": "gke-root-ca"}


def _issued(cli: Cli) -> dict[str, list[Document]]:
    """Per mesh, the Secrets cert-manager (played here) and meshbridge's render put in the gateway namespaces."""
    bridge, store = cli.bridge, PkiStore(cli.state)
    out: dict[str, list[Document]] = {}
    for mesh in bridge.own_meshes:
        m = bridge.spec.meshes[mesh]
        name = bridge.credential_name(mesh)
        ca = store.require_ca(mesh)
        out[mesh] = []
        for spec in identities.leaves(bridge, mesh):
            gw = m.ingress_gateway if spec.role == "server" else m.egress_gateway
            assert gw is not None
            leaf = issue_leaf(ca, spec.role, common_name=spec.common_name, dns_names=spec.dns_names, uris=spec.uris)
            assert leaf.key_pem is not None
            tls = secret(name, gw.namespace, {"tls.crt": leaf.cert_pem, "tls.key": leaf.key_pem, "ca.crt": ca.cert_pem})
            tls["type"] = "kubernetes.io/tls"
            tls["metadata"]["annotations"] = {"cert-manager.io/certificate-name": name}
            trusts = identities.server_trusts if spec.role == "server" else identities.client_trusts
            peers = b"".join(store.trusted(p) for p in trusts(bridge, mesh))
            out[mesh] += [tls, secret(f"{name}-cacert", gw.namespace, {"ca.crt": peers})]
    return out


@pytest.fixture
def issued(cli: Cli, local: Clusters) -> Iterator[dict[str, list[Document]]]:
    cli.write(_cert_manager)
    docs = _issued(cli)
    for mesh, ds in docs.items():
        with admin(local, mesh) as a:
            for d in ds:
                a.apply(d, force=True)
    yield docs
    for mesh, ds in docs.items():
        with admin(local, mesh) as a:
            for d in ds:
                a.delete(ResourceRef.of(d))
    cli.write()  # the suite's bridge again: its RBAC grants no cert-manager kinds for the clean-up's list


def test_certs_check_context_passes_what_cert_manager_issued(cli: Cli, issued: dict[str, list[Document]]) -> None:
    code, out, err = cli("certs", "check")
    assert (code, out.strip()) == (0, "all certificates are valid and chain to the CAs their peers trust"), err


def test_without_the_peer_ca_secret_the_check_fails_and_names_the_trap(
    cli: Cli, local: Clusters, issued: dict[str, list[Document]]
) -> None:
    (cacert,) = [d for d in issued["eks"] if d["metadata"]["name"].endswith("-cacert")]
    with admin(local, "eks") as a:
        a.delete(ResourceRef.of(cacert))
    code, out, _ = cli("certs", "check", "--wide")
    assert code == 1
    assert "eks/server (Secret istio-ingress/mtls-credential)" in out
    assert "trusts only the ca.crt cert-manager writes" in out
    assert "PRIVATE KEY" not in out


# -- apply and prune: cert-manager's kinds are the bridge's ---------------------------------------------------


def _crd(plural: str, kind: str) -> Doc:
    """A CustomResourceDefinition for cert-manager's ``kind`` (``cert-manager.io/v1``), its schema left open: the
    API path and its RBAC are what the test needs, not cert-manager's validation."""
    schema = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": schema}],
        },
    }


@pytest.fixture
def cert_manager_api(cli: Cli, local: Clusters) -> Iterator[None]:
    """cert-manager's CRDs in both clusters, and the suite's user granted what 'render --rbac' gives this bridge."""
    cli.write(_cert_manager)
    for mesh in ("eks", "gke"):
        with admin(local, mesh) as a:
            for plural, kind in (("certificates", "Certificate"), ("issuers", "Issuer")):
                path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{plural}.cert-manager.io"
                apply_raw(a, path, _crd(plural, kind), manager="envtest")
            grant_permissions(a, permissions(cli.bridge, mesh))
            while True:  # until the API serves the new kinds (pytest-timeout bounds it)
                try:
                    a.request("GET", "/apis/cert-manager.io/v1/issuers", what="issuers", verb="list")
                    break
                except KubeApiError as e:
                    if e.status != 404:
                        raise
    yield
    code, out, err = cli("delete", state=False)  # while the spec still names cert-manager's kinds, so they go too
    assert code == 0, out + err
    for mesh in ("eks", "gke"):  # the grant goes too: later modules count what is bound to the suite's user
        with admin(local, mesh) as a:
            for doc in permissions(cli.bridge, mesh):
                md = doc["metadata"]
                where = f"namespaces/{md['namespace']}/" if md.get("namespace") else ""
                path = f"/apis/rbac.authorization.k8s.io/v1/{where}{str(doc['kind']).lower()}s/{md['name']}"
                a.request("DELETE", path, what=path, verb="delete")
    cli.write()


def test_apply_creates_the_certificates_and_prunes_an_issuer_no_longer_rendered(
    cli: Cli, local: Clusters, cert_manager_api: None
) -> None:
    code, applied = cli.json("apply", "--no-wait")
    assert code == 0, applied
    cert = "/apis/cert-manager.io/v1/namespaces/istio-egress/certificates/mtls-credential"
    issuer = "/apis/cert-manager.io/v1/namespaces/istio-egress/issuers/meshbridge-meshbridge-e2e"
    assert get(local, "gke", cert) is not None and get(local, "gke", issuer) is not None
    assert get(local, "gke", "/api/v1/namespaces/istio-egress/secrets/mtls-credential-cacert") is not None

    def existing_issuer(d: Doc) -> None:
        _cert_manager(d)
        d["spec"]["meshes"]["gke"]["certManager"] = {"issuerRef": {"name": "gke-ca", "kind": "ClusterIssuer"}}

    cli.write(existing_issuer)
    code, plan = cli.json("plan")
    assert code == 0, plan
    pruned = [(c["kind"], c["name"]) for m in plan["meshes"] for c in m["changes"] if c["action"] == "prune"]
    assert pruned == [("Issuer", "meshbridge-meshbridge-e2e")], pruned
    code, done = cli.json("apply", "--no-wait")
    assert code == 0 and sum(m["counts"]["pruned"] for m in done["meshes"]) == 1, done
    assert get(local, "gke", issuer) is None and get(local, "gke", cert) is not None
