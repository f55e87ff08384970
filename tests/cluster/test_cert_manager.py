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

from meshbridge.kube.envtest import Clusters
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore, identities, issue_leaf
from meshbridge.render.manifests import Document, secret
from tests.cluster.support import Cli, Doc, admin

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
