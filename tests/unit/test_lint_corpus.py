"""lint on configurations in the shapes users write (the oracle corpus): no false errors.

Each error lint raises on the corpus is one istiod's configuration confirms (the oracle tier shows the same
missing cluster or the same dropped route); every other case must lint without an error.
"""

from __future__ import annotations

import pytest

from meshbridge.istio.parse import load_documents
from meshbridge.lint import from_manifests, lint
from tests.oracle.corpus import CASES, case_names

TRUE_ERRORS = {
    # a VirtualService exported to '.' only, outside the gateway's namespace: istiod drops it (404 NR)
    "exportto-dot-virtualservice": {"MB106"},
    # an ExternalName alias to a host nothing defines: istiod routes to a cluster it never builds (503 NC)
    "k8s-externalname-service": {"MB107"},
    # a route at the egress gateway to a name under a wildcard ServiceEntry: istiod never builds its cluster (503 NC)
    "egress-wildcard-service-entry-concrete-host": {"MB107"},
    # a made-up host with no DNS capture (its subset selecting no endpoint is MB111, a warning: 503 NC, confirmed)
    "serviceentry-subset-labels-no-endpoint": {"MB101"},
    # a subset defined by a DestinationRule in a third namespace: istiod does not use it for the app (503 NC)
    "egress-origination-istio-egress-namespace": {"MB110"},
    # a made-up host with no DNS capture: the app cannot resolve it
    "serviceentry-static-endpoints": {"MB101"},
    # made-up hosts whose only address is a range (a CIDR is no DNS answer), no DNS capture: likewise
    "serviceentry-cidr-address": {"MB101"},
    # insecureSkipVerify on purpose: lint's security posture error
    "subset-tls-per-subset": {"MB503"},
    # the peer trusted through cert-manager's own ca.crt: istiod's gateway refuses the peer's certificate (unknown ca)
    "cert-manager-issuer-ca-trap": {"MB211"},
    # caCertCredentialName naming a CA-only Secret without -cacert: istiod serves nothing for it (handshake reset)
    "cert-manager-ca-cert-name-without-suffix": {"MB205"},
    # the importer's VirtualService binds the egress Gateway only: istiod gives the app's sidecar the ServiceEntry's
    # own route and cluster (plain HTTP to the exporter's 443), MB122; and a made-up host with no DNS capture, MB101
    "importer-virtual-service-without-mesh": {"MB101", "MB122"},
    # its two-VirtualService form with the sidecars' half missing: the same route and cluster for the app's sidecar
    "importer-mesh-virtual-service-missing": {"MB101", "MB122"},
    # the egress TLS-origination task without the sidecar's sni: istiod's SNI selects no chain of the egress
    # gateway (NR there)
    "egress-mutual-origination-no-sni": {"MB214"},
}


@pytest.mark.parametrize("name", case_names())
def test_lint_raises_only_the_errors_istiod_confirms(name: str) -> None:
    report = lint(from_manifests({"mesh": load_documents([CASES / f"{name}.yaml"])}))
    errors = {f.code for f in report.findings if f.severity == "error"}
    assert errors == TRUE_ERRORS.get(name, set()), [str(f) for f in report.findings if f.severity == "error"]
