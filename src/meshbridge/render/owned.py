"""The kinds meshbridge writes to a mesh's cluster, and so owns there (pure).

One list, read by ``meshbridge.kube.apply`` (what plan, apply, prune, delete and status look for) and by
``meshbridge.render.rbac`` (the verbs ``render --rbac`` grants on them): Secrets, the four Istio networking kinds
every bridge renders, and EnvoyFilters (the edge limits) and AuthorizationPolicies (the importers' access) in a
mesh with an ingress gateway, even when the spec turns them off, so prune finds what an earlier apply left;
cert-manager's Certificates and Issuers in a mesh whose certificates cert-manager issues (``certManager``: its
CRDs are installed there). Not the Secrets cert-manager writes: cert-manager owns those.
In an ambient importer (``dataplane: ambient``), the waypoint (a Gateway API ``Gateway``) and an
AuthorizationPolicy. Namespaces are created when missing but never owned.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshbridge.spec.models import Mesh

ISTIO_GROUP = "networking.istio.io"
"""The API group of Istio's networking kinds."""


@dataclass(frozen=True)
class OwnedKind:
    """A kind meshbridge owns: its API group (``""``: the core group), kind and resource (plural) name, and whether
    its objects live in a namespace (a cluster-scoped kind is granted by the ClusterRole)."""

    group: str
    kind: str
    plural: str
    namespaced: bool = True


SECRET = OwnedKind("", "Secret", "secrets")
ISTIO_KINDS = (
    OwnedKind(ISTIO_GROUP, "ServiceEntry", "serviceentries"),
    OwnedKind(ISTIO_GROUP, "DestinationRule", "destinationrules"),
    OwnedKind(ISTIO_GROUP, "Gateway", "gateways"),
    OwnedKind(ISTIO_GROUP, "VirtualService", "virtualservices"),
)
ENVOY_FILTER = OwnedKind(ISTIO_GROUP, "EnvoyFilter", "envoyfilters")
AUTHORIZATION_POLICY = OwnedKind("security.istio.io", "AuthorizationPolicy", "authorizationpolicies")
WAYPOINT = OwnedKind("gateway.networking.k8s.io", "Gateway", "gateways")
"""The Gateway API kind of an ambient importer's waypoint (:mod:`meshbridge.render.ambient`)."""
HTTP_ROUTE = OwnedKind("gateway.networking.k8s.io", "HTTPRoute", "httproutes")
BACKEND_TLS_POLICY = OwnedKind("gateway.networking.k8s.io", "BackendTLSPolicy", "backendtlspolicies")
CONFIG_MAP = OwnedKind("", "ConfigMap", "configmaps")
"""Beside its Gateway (:data:`WAYPOINT`'s kind), the Gateway API kinds of an exporter with ``ingressGateway.api:
gateway-api`` (:mod:`meshbridge.render.gatewayapi`) and the ConfigMap of a backend's CA."""
CERT_MANAGER_GROUP = "cert-manager.io"
"""The API group of cert-manager's kinds."""
CERTIFICATE = OwnedKind(CERT_MANAGER_GROUP, "Certificate", "certificates")
ISSUER = OwnedKind(CERT_MANAGER_GROUP, "Issuer", "issuers")
BUNDLE = OwnedKind("trust.cert-manager.io", "Bundle", "bundles", namespaced=False)
"""trust-manager's Bundle (``certManager.peerTrust: Bundle``): cluster-scoped."""


def owned_kinds(mesh: Mesh) -> list[OwnedKind]:
    """The kinds meshbridge owns in ``mesh``'s cluster, in the order plan and status list them."""
    exporter = [ENVOY_FILTER, AUTHORIZATION_POLICY] if mesh.ingress_gateway is not None else []
    policy = [] if exporter else [AUTHORIZATION_POLICY]  # the ambient importer's policy on its imports
    ambient = [WAYPOINT, *policy] if mesh.dataplane == "ambient" else []
    cm = mesh.cert_manager
    cert_manager = [CERTIFICATE, ISSUER, *([BUNDLE] if cm.peer_trust == "Bundle" else [])] if cm is not None else []
    ig = mesh.ingress_gateway
    exporter_kinds = [WAYPOINT, HTTP_ROUTE, BACKEND_TLS_POLICY, CONFIG_MAP]
    gateway_api = [k for k in exporter_kinds if k not in ambient] if ig is not None and ig.api == "gateway-api" else []
    return [SECRET, *ISTIO_KINDS, *exporter, *ambient, *gateway_api, *cert_manager]
