"""The importer's side on an ambient data plane (``meshes.<m>.dataplane: ambient``): a waypoint as the egress
gateway (pure: spec in, dicts out).

Istio's ambient *Egress gateways* guide (istio.io, docs/ambient/usage/egress-gateway): ztunnel sends every
connection for a service bound to a waypoint to that waypoint, so a ServiceEntry bound to a waypoint in the
egress namespace makes the waypoint the egress gateway, with no VirtualService to steer the apps' traffic and
no Gateway server to accept it. What the sidecar importer renders as five objects per export (a Gateway,
two routes, two DestinationRules) becomes:

* the waypoint: a Gateway API ``Gateway`` of class ``istio-waypoint`` (istiod deploys its pods), one HBONE
  listener on 15008, labelled ``istio.io/waypoint-for: service`` (it serves services, the ServiceEntry, not
  workloads), named ``egressGateway.name`` in ``egressGateway.namespace``; its pods run as
  ``egressGateway.serviceAccount`` (annotation ``gateway.istio.io/service-account``), the identity the
  client certificate names;
* per export, the ServiceEntry of the sidecar form, labelled ``istio.io/use-waypoint: <waypoint>``, and the
  mutual-TLS DestinationRule unchanged: istiod's waypoint builds the service's ``inbound-vip`` cluster with
  ``constructUpstreamTLS`` directly (``buildWaypointTLSContext``, cluster_waypoint.go), without the sidecar's
  rule that drops a ``credentialName`` from a DestinationRule with no ``workloadSelector``, so the
  certificate is served from the waypoint's namespace by SDS, where meshbridge renders the Secret;
* the namespaces of the mesh's apps and the egress namespace, labelled ``istio.io/dataplane-mode: ambient``
  (ztunnel captures their pods);
* an ``AuthorizationPolicy`` attached to the ServiceEntries (``targetRefs``), which the waypoint enforces:
  only the apps' namespaces may use the import. A caller outside them, or one that reaches the exporter
  without the waypoint, holds no client certificate (the Secret lives in the waypoint's namespace only), and
  the exporter admits only the certificate's identity (``ingressGateway.authorizeImporters``).
"""

from __future__ import annotations

from meshbridge.render.manifests import Document
from meshbridge.spec.models import EgressGateway, Mesh

GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"
WAYPOINT_CLASS = "istio-waypoint"
HBONE_PORT = 15008
WAYPOINT_FOR = "istio.io/waypoint-for"
USE_WAYPOINT = "istio.io/use-waypoint"
DATAPLANE_MODE = "istio.io/dataplane-mode"
SERVICE_ACCOUNT_ANNOTATION = "gateway.istio.io/service-account"
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
"""The label istiod's deployment controller gives a Gateway's pods and Service: the Gateway's name."""


def ambient_importer(mesh: Mesh, eg: EgressGateway, rules: list[Document]) -> list[Document]:
    """The ambient importer's documents: the waypoint, ``rules`` (each export's ServiceEntry and mutual-TLS
    DestinationRule, as the sidecar form renders them) with the ServiceEntries bound to the waypoint, the policy
    on them, and the labelled namespaces.

    Args:
        mesh: the importing mesh (its apps' namespaces and security API version).
        eg: its ``egressGateway``: the waypoint's name, namespace and service account.
        rules: the ServiceEntries and DestinationRules of the imports, in the egress namespace.
    """
    bound = [_bound(d, eg) if d["kind"] == "ServiceEntry" else d for d in rules]
    entries = [d["metadata"]["name"] for d in bound if d["kind"] == "ServiceEntry"]
    return [*ambient_namespaces(mesh, eg), waypoint(eg), *bound, _import_policy(mesh, eg, entries)]


def waypoint(eg: EgressGateway) -> Document:
    """The waypoint ``Gateway`` (``istioctl waypoint generate --for service``, with the service account set)."""
    return {
        "apiVersion": GATEWAY_API_VERSION,
        "kind": "Gateway",
        "metadata": {
            "name": eg.name,
            "namespace": eg.namespace,
            "labels": {WAYPOINT_FOR: "service"},
            "annotations": {SERVICE_ACCOUNT_ANNOTATION: eg.sa},
        },
        "spec": {
            "gatewayClassName": WAYPOINT_CLASS,
            "listeners": [{"name": "mesh", "port": HBONE_PORT, "protocol": "HBONE"}],
        },
    }


def ambient_namespaces(mesh: Mesh, eg: EgressGateway) -> list[Document]:
    """The egress namespace and each app's namespace, labelled for ztunnel to capture their pods."""
    names = sorted({eg.namespace, *(app.namespace for app in mesh.callers())})
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {DATAPLANE_MODE: "ambient"}}}
        for ns in names
    ]


def _bound(service_entry: Document, eg: EgressGateway) -> Document:
    md = service_entry["metadata"]
    return {**service_entry, "metadata": {**md, "labels": {**md.get("labels", {}), USE_WAYPOINT: eg.name}}}


def _import_policy(mesh: Mesh, eg: EgressGateway, entries: list[str]) -> Document:
    """ALLOW, on the waypoint, requests to the imports from the apps' namespaces only (the guide's policy
    attached to a ServiceEntry); any other caller gets 403 ``RBAC: access denied`` from the waypoint."""
    namespaces = sorted({app.namespace for app in mesh.callers()})
    return {
        "apiVersion": mesh.istio.security_api_version,
        "kind": "AuthorizationPolicy",
        "metadata": {"name": f"{eg.name}-imports", "namespace": eg.namespace},
        "spec": {
            "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": n} for n in entries],
            "action": "ALLOW",
            "rules": [{"from": [{"source": {"namespaces": namespaces}}]}],
        },
    }
