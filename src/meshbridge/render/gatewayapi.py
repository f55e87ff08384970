"""The exporter's routing in the Kubernetes Gateway API (``ingressGateway.api: gateway-api``; pure: documents in,
documents out).

:func:`gateway_api_exporter` takes the exporter's documents as :mod:`meshbridge.render.bridge` renders them in
Istio's API and replaces the routing with what Istio 1.28+ builds the same gateway from (checked with istiod's own
translation, ``tests/oracle/test_gateway_api.py``):

* the Istio ``Gateway`` becomes a ``Gateway`` (``gateway.networking.k8s.io/v1``, class ``istio``) that Istio's
  deployment controller deploys itself: the Deployment and Service take the workload's name
  (``gateway.istio.io/name-override``), the pods its labels (``spec.infrastructure.labels``) and service account
  (``gateway.istio.io/service-account``), so the identities, the AuthorizationPolicy's selector and the edge-limits
  EnvoyFilter stay as they are. One HTTPS listener per export (``hostname``, ``port``, ``tls.mode: Terminate``,
  ``certificateRefs`` the gateway's Secret), and the client certificate validated against the importers' CA
  (GEP-91, ``spec.tls.frontend.default.validation.caCertificateRefs``: the Secret's ``cacert``), which istiod
  turns into a ``MUTUAL`` server with ``caCertCredentialName`` (``conversion.go`` ``buildTLS``). The cipher suites
  go in the listener's ``gateway.istio.io/tls-cipher-suites`` option; Istio's conversion has no minimum TLS
  version and no ``subjectAltNames`` (Envoy's TLS 1.2 floor stays; the AuthorizationPolicy still admits only the
  importers' identities);
* each export's ``VirtualService`` becomes an ``HTTPRoute`` on its listener, to the backend's ServiceEntry host
  (``backendRef`` kind ``Hostname``, group ``networking.istio.io``), with the same timeout;
* each backend ``DestinationRule`` becomes a ``BackendTLSPolicy`` (v1) targeting the backend's ServiceEntry, with
  the same SNI (``validation.hostname``) and ``subjectAltNames``; its CA is a ConfigMap (``ca.crt``: Istio 1.31
  reads no Secret there) or, without ``caFile``, ``wellKnownCACertificates: System``.

No RBAC is added: istiod serves a Gateway API gateway the Secrets its listeners reference (``kubernetes-gateway://``
resources, ``pilot/pkg/xds/sds.go`` ``filterAuthorizedResources``) without the SubjectAccessReview that Istio's
``credentialName`` needs, so the auto-deployed gateway's service account needs no Role.
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from meshbridge.envoy.names import KUBERNETES_GATEWAY
from meshbridge.errors import RenderError
from meshbridge.ipaddr import is_ip
from meshbridge.render.manifests import EXPORT_LABEL, Document
from meshbridge.spec.models import Bridge, Export, IngressGateway, Mesh

GATEWAY_API = "gateway.networking.k8s.io/v1"
"""The Gateway API version rendered (Gateway, HTTPRoute and BackendTLSPolicy are v1 in the bundle Istio 1.31 reads)."""
GATEWAY_CLASS = "istio"
NAME_OVERRIDE = "gateway.istio.io/name-override"
SERVICE_ACCOUNT = "gateway.istio.io/service-account"
CIPHER_SUITES_OPTION = "gateway.istio.io/tls-cipher-suites"
ISTIO_NETWORKING_GROUP = "networking.istio.io"


def served_credential(bridge: Bridge, mesh: str, role: Literal["ingress", "egress"]) -> str:
    """The credential a mesh's gateway holds its certificates under, as its running configuration names it: the
    mesh's ``credentialName`` (SDS ``kubernetes://<name>``), or for a Gateway API listener istiod's
    ``kubernetes-gateway://<namespace>/<name>`` (what :func:`meshbridge.envoy.names.sds_name` keeps as it is)."""
    name = bridge.credential_name(mesh)
    ig = bridge.spec.meshes[mesh].ingress_gateway
    if role == "ingress" and ig is not None and ig.api == "gateway-api":
        return f"{KUBERNETES_GATEWAY}{ig.namespace}/{name}"
    return name


def listener_name(ex: Export) -> str:
    """The Gateway listener (``sectionName``) of an export: ``https-<export>``."""
    return f"https-{ex.name}"


def backend_ca_config_map(ex: Export) -> str:
    """The ConfigMap holding an export's ``backend.tls.caFile`` (``ca.crt``): ``<export>-backend-ca``."""
    return f"{ex.name}-backend-ca"


def gateway_api_exporter(
    bridge: Bridge, exporter: str, ig: IngressGateway, exports: list[Export], istio_docs: list[Document]
) -> list[Document]:
    """The exporter's documents with the routing in the Gateway API.

    Args:
        bridge: the validated spec.
        exporter: the exporting mesh's name.
        ig: its ingress gateway (``api: gateway-api``).
        exports: the exports it serves, in spec order.
        istio_docs: what :mod:`meshbridge.render.bridge` renders for it in Istio's API.

    Returns:
        The ServiceEntries, AuthorizationPolicy and EnvoyFilter as they were, the Gateway first in place of the Istio
        Gateway, and per export its HTTPRoute and BackendTLSPolicy (with its CA ConfigMap) in place of the
        VirtualService and DestinationRule.

    Raises:
        RenderError: the spec sets what the Gateway API cannot carry (:func:`_check_expressible`).
    """
    _check_expressible(bridge, exporter, exports)
    istio_gateway = next(d for d in istio_docs if d["kind"] == "Gateway")
    servers = {s["hosts"][0]: s for s in istio_gateway["spec"]["servers"]}
    out: list[Document] = [_gateway(bridge.spec.meshes[exporter], ig, exports, servers)]
    rules = {d["spec"]["host"]: d for d in istio_docs if d["kind"] == "DestinationRule"}
    routes = {d["spec"]["hosts"][0]: d for d in istio_docs if d["kind"] == "VirtualService"}
    ca_secrets = {d["metadata"]["name"]: d for d in istio_docs if d["kind"] == "Secret"}
    entries = {d["spec"]["hosts"][0]: d for d in istio_docs if d["kind"] == "ServiceEntry"}
    for d in istio_docs:
        if d["kind"] not in ("Gateway", "DestinationRule", "VirtualService", "Secret"):
            out.append(d)
    for ex in exports:
        out.append(_http_route(ig, ex, routes[ex.host]))
        dr = rules.get(ex.backend.host)
        if dr is not None and bridge.backend_owner(ex) is ex:  # one policy per backend ServiceEntry
            out += _backend_tls(ex, dr, entries[ex.backend.host], ca_secrets)
    return out


def _check_expressible(bridge: Bridge, exporter: str, exports: list[Export]) -> None:
    """What the Istio form sets and Istio 1.31's Gateway API conversion cannot carry is refused, not dropped.

    Raises:
        RenderError: ``spec.tls.minProtocolVersion: TLSV1_3`` (a listener has no minimum version; Envoy's is 1.2),
            or a TLS backend whose SNI would be an IP (a BackendTLSPolicy's ``hostname`` must be a host name).
    """
    at = f"spec.meshes.{exporter}.ingressGateway.api: gateway-api"
    if bridge.spec.tls.min_protocol_version != "TLSV1_2":
        raise RenderError(
            f"{at} cannot carry spec.tls.minProtocolVersion {bridge.spec.tls.min_protocol_version}: Istio's Gateway "
            "API listeners have no minimum TLS version (Envoy's floor, TLS 1.2, applies). Fix: set "
            "minProtocolVersion: TLSV1_2, or keep ingressGateway.api: istio"
        )
    for ex in exports:
        tls = ex.backend.tls
        if tls.mode == "SIMPLE" and tls.sni is None and is_ip(ex.backend.host):
            raise RenderError(
                f"{at}: export {ex.name!r} reaches its backend {ex.backend.host} by IP, but a BackendTLSPolicy's "
                "validation.hostname (the SNI and the name verified) must be a host name. Fix: set "
                f"spec.exports[{bridge.spec.exports.index(ex)}].backend.tls.sni to the name on the backend's "
                "certificate"
            )


def _gateway(mesh: Mesh, ig: IngressGateway, exports: list[Export], servers: dict[str, Any]) -> Document:
    listeners = []
    ca_secret = ""
    for ex in exports:
        tls = servers[ex.host]["tls"]
        ca_secret = tls.get("caCertCredentialName") or tls["credentialName"]
        listeners.append(
            {
                "name": listener_name(ex),
                "hostname": ex.host,
                "port": ex.gateway_port,
                "protocol": "HTTPS",
                "tls": {
                    "mode": "Terminate",
                    "certificateRefs": [{"group": "", "kind": "Secret", "name": tls["credentialName"]}],
                    "options": {CIPHER_SUITES_OPTION: ",".join(tls["cipherSuites"])},
                },
                "allowedRoutes": {"namespaces": {"from": "Same"}},
            }
        )
    validation = {"caCertificateRefs": [{"group": "", "kind": "Secret", "name": ca_secret}]}
    return {
        "apiVersion": GATEWAY_API,
        "kind": "Gateway",
        "metadata": {
            "name": ig.gateway,
            "namespace": ig.namespace,
            "annotations": {NAME_OVERRIDE: ig.name, SERVICE_ACCOUNT: ig.sa},
        },
        "spec": {
            "gatewayClassName": GATEWAY_CLASS,
            "infrastructure": {"labels": mesh.pod_labels(ig.labels)},
            "listeners": listeners,
            "tls": {"frontend": {"default": {"validation": validation}}},
        },
    }


def _http_route(ig: IngressGateway, ex: Export, vs: Document) -> Document:
    http = vs["spec"]["http"][0]
    dest = http["route"][0]["destination"]
    rule: dict[str, Any] = {
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
        "backendRefs": [
            {"group": ISTIO_NETWORKING_GROUP, "kind": "Hostname", "name": dest["host"], "port": dest["port"]["number"]}
        ],
    }
    if "timeout" in http:
        rule["timeouts"] = {"request": http["timeout"]}
    return {
        "apiVersion": GATEWAY_API,
        "kind": "HTTPRoute",
        "metadata": {"name": ex.name, "namespace": ig.namespace, "labels": {EXPORT_LABEL: ex.name}},
        "spec": {
            "parentRefs": [{"name": ig.gateway, "sectionName": listener_name(ex)}],
            "hostnames": [ex.host],
            "rules": [rule],
        },
    }


def _backend_tls(ex: Export, dr: Document, se: Document, ca_secrets: dict[str, Document]) -> list[Document]:
    tls = dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    ns = dr["metadata"]["namespace"]
    labels = {EXPORT_LABEL: ex.name}
    out: list[Document] = []
    validation: dict[str, Any] = {"hostname": tls["sni"]}
    if "credentialName" in tls:
        name = backend_ca_config_map(ex)
        validation["caCertificateRefs"] = [{"group": "", "kind": "ConfigMap", "name": name}]
        secret = ca_secrets.get(tls["credentialName"])
        if secret is not None:  # the caFile's PEM; without it (render with no file) the ConfigMap is the user's
            pem = base64.b64decode(secret["data"]["cacert"]).decode("ascii")
            md = {"name": name, "namespace": ns, "labels": labels}
            out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": {"ca.crt": pem}})
    else:
        validation["wellKnownCACertificates"] = "System"
    if tls.get("subjectAltNames"):
        validation["subjectAltNames"] = [{"type": "Hostname", "hostname": h} for h in tls["subjectAltNames"]]
    target = {"group": ISTIO_NETWORKING_GROUP, "kind": "ServiceEntry", "name": se["metadata"]["name"]}
    out.append(
        {
            "apiVersion": GATEWAY_API,
            "kind": "BackendTLSPolicy",
            "metadata": {"name": f"{ex.name}-backend", "namespace": ns, "labels": labels},
            "spec": {"targetRefs": [target], "validation": validation},
        }
    )
    return out
