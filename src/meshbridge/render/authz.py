"""Authorization at the exporter: the AuthorizationPolicy on its ingress gateway (pure: spec in, a dict out).

The gateway's mutual TLS proves who calls (any certificate from a trusted importer's CA passes the handshake,
and ``tls.subjectAltNames`` admits any importer of *any* export served by that Gateway); the policy decides
what each caller may call. One ``ALLOW`` policy per exporting gateway (``security.istio.io``, in the gateway's
namespace, selecting its pods), with one rule per export:

* ``from.source.principals``: the identities of the export's importers, i.e. the SPIFFE URI SAN of each
  importing egress gateway's client certificate (:func:`meshbridge.pki.identities.importer_ids`) without its
  ``spiffe://`` prefix, which is how Istio names the peer of a mutual TLS connection at a gateway;
* ``to.operation.hosts``: the export's host, alone (``lambda.external``) and with any port
  (``lambda.external:*``), since the importer's app may call a port other than 80 and its ``Host`` keeps it.

An ALLOW policy with rules denies every request that matches none of them (403 ``RBAC: access denied``): an
importer of export A calling export B's host, a request for a host no export names. The spec names no paths
(the exporter's route takes every path), so the rules constrain none. ``ingressGateway.authorizeImporters:
false`` renders no policy.
"""

from __future__ import annotations

from typing import Any

from meshbridge.istio.resources import SPIFFE_PREFIX
from meshbridge.pki import identities
from meshbridge.render.manifests import Document
from meshbridge.spec.models import Bridge, Export, IngressGateway


def authorization_policy_name(ig: IngressGateway) -> str:
    """The name of the gateway's AuthorizationPolicy: ``<gateway name>-importers``."""
    return f"{ig.name}-importers"


def principal(spiffe_uri: str) -> str:
    """A SPIFFE URI SAN as ``source.principals`` names it: ``cluster.local/ns/istio-egress/sa/egress``."""
    return spiffe_uri.removeprefix(SPIFFE_PREFIX)


def exporter_policy(bridge: Bridge, exporter: str, ig: IngressGateway, exports: list[Export]) -> Document:
    """The ALLOW AuthorizationPolicy of ``exporter``'s ingress gateway ``ig``: one rule per export of ``exports``.

    Args:
        bridge: the validated spec.
        exporter: the exporting mesh's name.
        ig: its ingress gateway.
        exports: the exports it serves (``bridge.exports_from(exporter)``), in spec order.

    Returns:
        The policy document (no ownership labels: the caller adds them as for every document).
    """
    mesh = bridge.spec.meshes[exporter]
    rules: list[dict[str, Any]] = [
        {
            "from": [{"source": {"principals": [principal(i) for i in identities.importer_ids(bridge, ex.name)]}}],
            "to": [{"operation": {"hosts": [ex.host, f"{ex.host}:*"]}}],
        }
        for ex in exports
    ]
    return {
        "apiVersion": mesh.istio.security_api_version,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": authorization_policy_name(ig), "namespace": ig.namespace},
        "spec": {"selector": {"matchLabels": mesh.pod_labels(ig.labels)}, "action": "ALLOW", "rules": rules},
    }
