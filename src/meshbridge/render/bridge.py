"""Render a Bridge into the Istio/Kubernetes documents of each mesh (pure: spec + certificates in, dicts out).

What each side gets is what the seed article applies by hand (steps 4 and 5), with these improvements:

* the importer's DestinationRule pins the exporter's certificate with ``subjectAltNames`` (the article
  checks only the chain, so any certificate from the CA would pass);
* the exporter's Gateway pins the importers' SPIFFE identities with ``tls.subjectAltNames``;
* the exporter's Gateway sets ``minProtocolVersion`` and AEAD-only ``cipherSuites`` (Envoy's default list
  still has CBC suites);
* the DestinationRule to the backend sets ``sni`` and ``subjectAltNames`` to the backend host (from Istio
  1.21 the SNI would otherwise be the request's Host, ``lambda.external``, and verification would fail);
* the importer's mTLS DestinationRule is ``exportTo: ["."]`` (only the egress gateway uses it);
* the importer's mTLS DestinationRule upgrades the gateway-to-gateway connection to HTTP/2
  (``h2UpgradePolicy: UPGRADE``; istiod then offers ALPN ``h2``, which the exporter's gateway accepts): across
  a WAN, concurrent requests share one connection and its one handshake instead of one connection each
  (``benchmarks/wan.py``; figures in ``benchmarks/RESULTS.md``); and it keeps that connection alive with TCP
  keepalive probes (:data:`WAN_KEEPALIVE`), so the load balancers and NATs between the clouds do not drop it
  while idle and the next request finds it warm (1 round trip, not 3);
* the article's ``sourceLabels`` match on the exporter's route is dropped: on a gateway it only restates
  the selector, and any mismatch silently removes the route (404 ``NR``);
* the Secrets are rendered into the namespaces of the gateway *workloads* (lint MB207);
* in cert-manager mode (``spec.tls.issuer``) cert-manager issues the gateway certificates in the clusters, and the
  peers' CA reaches the gateways beside them (:mod:`meshbridge.render.certmanager`);
* the exporter's gateway gets edge limits (a connection limit, idle and request-headers timeouts, a header
  size) through an EnvoyFilter, the one Istio resource that can set them (``ingressGateway.limits``);
* the exporter's gateway gets an AuthorizationPolicy that admits each export's importers to that export's host
  only (``ingressGateway.authorizeImporters``, :mod:`meshbridge.render.authz`);
* an importer with ``dataplane: ambient`` gets a waypoint as its egress gateway instead of the Gateway and
  routes (:mod:`meshbridge.render.ambient`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from meshbridge.errors import RenderError
from meshbridge.ipaddr import is_ip
from meshbridge.istio.changes import CHANGES
from meshbridge.pki import identities
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.render.ambient import ambient_importer
from meshbridge.render.authz import exporter_policy
from meshbridge.render.certmanager import cert_manager_documents, peer_ca_secret_name
from meshbridge.render.gatewayapi import gateway_api_exporter
from meshbridge.render.manifests import EXPORT_LABEL, Document, ManifestSet, ownership_labels
from meshbridge.render.manifests import secret as _secret
from meshbridge.spec.models import Bridge, EgressGateway, Export, GatewayWorkload, IngressGateway, Mesh

# Mozilla "intermediate" TLS 1.2 suites (ECDHE + AEAD only); TLS 1.3 suites are not configurable in Envoy.
CIPHER_SUITES = {
    "ECDSA_P256": ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"],
    "RSA_2048": ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"],
}


def render_bridge(
    bridge: Bridge,
    credentials: dict[str, MeshCredentials] | None,
    *,
    backend_cas: dict[str, bytes] | None = None,
    addresses: dict[str, str] | None = None,
) -> dict[str, ManifestSet]:
    """The documents of every mesh of ``bridge``.

    Args:
        bridge: the validated spec.
        credentials: each mesh's leaves and trust bundles (``PkiStore.credentials``; in cert-manager mode trust
            bundles only); ``None`` renders no gateway Secrets (``--no-secrets``, e.g. when Secrets come from a
            vault).
        backend_cas: PEM of each export's ``backend.tls.caFile`` by export name (read by the caller).
        addresses: the load-balancer address of each exporting mesh's ingress gateway, overriding
            ``ingressGateway.address`` (``meshbridge apply`` discovers it from the Service status).

    Returns:
        One :class:`ManifestSet` per mesh, in spec order (meshes with nothing to render are included, empty, and
        so are ``peer: true`` meshes: another owner's).

    Raises:
        RenderError: an importer needs an exporter's gateway address and none is known, or an exporter's
            ``api: gateway-api`` cannot carry what the spec sets (:mod:`meshbridge.render.gatewayapi`).
    """
    docs: dict[str, list[Document]] = {m: [] for m in bridge.spec.meshes}
    labels = ownership_labels(bridge.metadata.name)
    for mesh_name, mesh in bridge.spec.meshes.items():
        if mesh.peer:  # another owner's mesh: its owner renders it from their own spec
            continue
        exports = bridge.exports_from(mesh_name)
        if exports:
            assert mesh.ingress_gateway is not None  # validated
            routed = _exporter(bridge, mesh_name, mesh.ingress_gateway, exports, backend_cas or {})
            if mesh.ingress_gateway.api == "gateway-api":
                routed = gateway_api_exporter(bridge, mesh_name, mesh.ingress_gateway, exports, routed)
            docs[mesh_name] += routed
        imports = bridge.exports_to(mesh_name)
        if imports:
            assert mesh.egress_gateway is not None  # validated
            docs[mesh_name] += _importer(bridge, mesh_name, mesh.egress_gateway, imports, addresses or {})
        if bridge.issued_by_cert_manager:
            trust = credentials[mesh_name] if credentials is not None else None
            docs[mesh_name] += cert_manager_documents(bridge, mesh_name, trust)
        elif credentials is not None:
            docs[mesh_name] += _gateway_secrets(bridge, mesh_name, credentials[mesh_name])
    out = {}
    for mesh_name, items in docs.items():
        for d in items:
            md = d["metadata"]
            md["labels"] = {**labels, **md.get("labels", {})}
        out[mesh_name] = ManifestSet.of(mesh_name, _with_namespaces(items, labels))
    return out

    # -- exporter side (the article's step 4) ---------------------------------------------------------------


def _exporter(
    bridge: Bridge, exporter: str, ig: IngressGateway, exports: list[Export], backend_cas: dict[str, bytes]
) -> list[Document]:
    mesh = bridge.spec.meshes[exporter]
    api = mesh.istio.networking_api_version
    ns = ig.namespace
    out: list[Document] = []
    servers = _exporter_servers(bridge, exporter, exports)
    out.append(_doc(api, "Gateway", ig.gateway, ns, {"selector": mesh.pod_labels(ig.labels), "servers": servers}))
    if ig.authorize_importers:
        out.append(exporter_policy(bridge, exporter, ig, exports))
    if ig.limits.enabled:
        ports = sorted({t for ex in exports if (t := ig.target_port(ex.gateway_port)) is not None})
        out.append(_edge_limits(mesh, ig, ports))
    for ex in exports:
        if bridge.backend_owner(ex) is ex:
            out += _backend_documents(api, ns, ex, backend_cas)
        out.append(_export_route(api, ns, ig, ex))
    return out


def _exporter_servers(bridge: Bridge, exporter: str, exports: list[Export]) -> list[dict[str, Any]]:
    """The exporter Gateway's servers: one MUTUAL server per export, by gateway port."""
    mesh = bridge.spec.meshes[exporter]
    tls = bridge.spec.tls
    servers = []
    by_port: dict[int, list[Export]] = defaultdict(list)
    for ex in exports:
        by_port[ex.gateway_port].append(ex)
    for port, group in sorted(by_port.items()):
        for ex in group:
            server_tls: dict[str, Any] = {
                "mode": "MUTUAL",
                "credentialName": bridge.credential_name(exporter),
                "minProtocolVersion": tls.min_protocol_version,
            }
            if tls.min_protocol_version != "TLSV1_3":  # TLS 1.3's suites are fixed: cipherSuites applies to 1.2
                server_tls["cipherSuites"] = CIPHER_SUITES[tls.key_type]
            if bridge.issued_by_cert_manager and CHANGES["cacert-credential-name"].on(mesh.istio.minor):
                server_tls["caCertCredentialName"] = peer_ca_secret_name(bridge.credential_name(exporter))
            if tls.pin_subject_alt_names:
                server_tls["subjectAltNames"] = identities.importer_ids(bridge, ex.name)
            servers.append(
                {
                    "hosts": [ex.host],
                    "port": {"name": _https_port_name(ex, exports), "number": port, "protocol": "HTTPS"},
                    "tls": server_tls,
                }
            )
    return servers


def _backend_documents(api: str, ns: str, ex: Export, backend_cas: dict[str, bytes]) -> list[Document]:
    """The backend's documents on the exporter, named after ``ex`` (its first export): its ServiceEntry, and its
    DestinationRule (and CA Secret) when the backend speaks TLS."""
    out: list[Document] = []
    be = ex.backend
    elabels = {EXPORT_LABEL: ex.name}
    secure = be.tls.mode == "SIMPLE"
    se_port = {"name": "https" if secure else "http", "number": be.port, "protocol": "HTTPS" if secure else "HTTP"}
    out.append(
        _doc(
            api,
            "ServiceEntry",
            f"se-{ex.name}-backend",
            ns,
            {"exportTo": ["."], "hosts": [be.host], "ports": [se_port], "resolution": _resolution(be.host)}
            | _static_endpoints(be.host),
            elabels,
        )
    )
    if secure:
        backend_tls: dict[str, Any] = {"mode": "SIMPLE", "sni": be.tls.sni or be.host}
        sans = be.tls.subject_alt_names if be.tls.subject_alt_names is not None else [be.host]
        if sans:
            backend_tls["subjectAltNames"] = list(sans)
        if be.tls.ca_file is not None:
            ca_secret = f"{ex.name}-backend-ca"
            backend_tls["credentialName"] = ca_secret
            if ex.name in backend_cas:
                out.append(_secret(ca_secret, ns, {"cacert": backend_cas[ex.name]}, elabels))
        out.append(
            _doc(
                api,
                "DestinationRule",
                f"dr-{ex.name}-backend",
                ns,
                {
                    "exportTo": ["."],
                    "host": be.host,
                    "trafficPolicy": {"portLevelSettings": [{"port": {"number": be.port}, "tls": backend_tls}]},
                },
                elabels,
            )
        )
    return out


def _export_route(api: str, ns: str, ig: IngressGateway, ex: Export) -> Document:
    """The export's VirtualService from the gateway to its backend."""
    be = ex.backend
    return _doc(
        api,
        "VirtualService",
        f"vs-{ex.name}",
        ns,
        {
            "exportTo": ["."],
            "gateways": [ig.gateway],
            "hosts": [ex.host],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/"}}],
                    "route": [{"destination": {"host": be.host, "port": {"number": be.port}}}],
                }
                | ({"timeout": _duration(ex.timeout)} if ex.timeout is not None else {})
            ],
        },
        {EXPORT_LABEL: ex.name},
    )


ENVOY_FILTER_API = "networking.istio.io/v1alpha3"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
HCM_TYPE = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
CONNECTION_LIMIT_FILTER = "envoy.filters.network.connection_limit"
CONNECTION_LIMIT_TYPE = "type.googleapis.com/envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit"
CONNECTION_LIMIT_STATS = "exporter_edge"  # connection_limit.exporter_edge.{active,limited}_connections


def edge_limits_name(ig: IngressGateway) -> str:
    """The name of the gateway's edge-limits EnvoyFilter: ``<gateway name>-edge-limits``."""
    return f"{ig.name}-edge-limits"


def _edge_limits(mesh: Mesh, ig: IngressGateway, ports: list[int]) -> Document:
    """The EnvoyFilter that sets the exporter gateway's edge limits on each exported port's listener.

    Per listener port (the targetPort, what istiod's listener binds): a MERGE into the HTTP connection
    manager (``common_http_protocol_options.idle_timeout``, ``request_headers_timeout``,
    ``max_request_headers_kb``) and the ``connection_limit`` network filter inserted before it.
    """
    lim = ig.limits
    patches: list[dict[str, Any]] = []
    for port in ports:
        patches.append(
            {
                "applyTo": "NETWORK_FILTER",
                "match": _hcm_match(port),
                "patch": {
                    "operation": "MERGE",
                    "value": {
                        "typed_config": {
                            "@type": HCM_TYPE,
                            "common_http_protocol_options": {"idle_timeout": _duration(lim.idle_timeout)},
                            "request_headers_timeout": _duration(lim.request_headers_timeout),
                            "max_request_headers_kb": lim.max_request_headers_kb,
                        }
                    },
                },
            }
        )
        patches.append(
            {
                "applyTo": "NETWORK_FILTER",
                "match": _hcm_match(port),
                "patch": {
                    "operation": "INSERT_BEFORE",
                    "value": {
                        "name": CONNECTION_LIMIT_FILTER,
                        "typed_config": {
                            "@type": CONNECTION_LIMIT_TYPE,
                            "stat_prefix": CONNECTION_LIMIT_STATS,
                            "max_connections": lim.max_connections,
                        },
                    },
                },
            }
        )
    spec = {"workloadSelector": {"labels": mesh.pod_labels(ig.labels)}, "configPatches": patches}
    return _doc(ENVOY_FILTER_API, "EnvoyFilter", edge_limits_name(ig), ig.namespace, spec)


def _hcm_match(port: int) -> dict[str, Any]:
    """The HTTP connection manager of the gateway listener on ``port`` (a fresh dict: no shared YAML anchors)."""
    return {"context": "GATEWAY", "listener": {"portNumber": port, "filterChain": {"filter": {"name": HCM_FILTER}}}}


def _https_port_name(ex: Export, exports: list[Export]) -> str:
    """``https`` for the Gateway's only export, ``https-<export>`` otherwise: Istio's validation refuses a Gateway
    whose servers share a port name, on one port or on two (``port names in servers must be unique``)."""
    return "https" if len(exports) == 1 else f"https-{ex.name}"


# -- importer side (the article's step 5) ---------------------------------------------------------------


def _importer(
    bridge: Bridge, mesh_name: str, eg: EgressGateway, imports: list[Export], addresses: dict[str, str]
) -> list[Document]:
    mesh = bridge.spec.meshes[mesh_name]
    rules = {ex.name: _import_rules(bridge, mesh_name, eg, ex, addresses) for ex in imports}
    if mesh.dataplane == "ambient":
        return ambient_importer(mesh, eg, [d for ex in imports for d in rules[ex.name]])
    api = mesh.istio.networking_api_version
    ns = eg.namespace
    egress_host = f"{eg.name}.{ns}.svc.cluster.local"
    out: list[Document] = []
    hosts_by_port: dict[int, list[str]] = defaultdict(list)
    for ex in imports:
        hosts_by_port[ex.egress_port].append(ex.host)
    servers = [
        {
            "port": {"number": port, "name": "http" if len(hosts_by_port) == 1 else f"http-{port}", "protocol": "HTTP"},
            "hosts": hosts,
        }
        for port, hosts in sorted(hosts_by_port.items())
    ]
    out.append(_doc(api, "Gateway", eg.gateway, ns, {"selector": mesh.pod_labels(eg.labels), "servers": servers}))
    for ex in imports:
        elabels = {EXPORT_LABEL: ex.name}
        out += rules[ex.name]
        out.append(
            _doc(
                api,
                "DestinationRule",
                f"egressgateway-for-{ex.name}",
                ns,
                {"host": egress_host, "subsets": [{"name": ex.name}]},
                elabels,
            )
        )
        out.append(
            _doc(
                api,
                "VirtualService",
                f"direct-{ex.name}-through-egress-gateway",
                ns,
                {
                    "hosts": _import_hosts(ex),
                    "gateways": ["mesh", eg.gateway],
                    "http": [
                        {
                            "match": [{"gateways": ["mesh"], "port": ex.port}],
                            "route": [
                                {
                                    "destination": {
                                        "host": egress_host,
                                        "subset": ex.name,
                                        "port": {"number": ex.egress_port},
                                    }
                                }
                            ],
                        }
                        | ({"rewrite": {"authority": ex.host}} if ex.import_host != ex.host else {}),
                        {
                            "match": [{"gateways": [eg.gateway], "port": ex.egress_port}],
                            "route": [{"destination": {"host": ex.host, "port": {"number": ex.port}}}],
                        },
                    ],
                },
                elabels,
            )
        )
    return out


WAN_KEEPALIVE = {"time": "180s", "interval": "30s", "probes": 3}
"""TCP keepalive of the gateway-to-gateway connection: the first probe after 180 s idle, under the idle timeouts of
the load balancers and NATs on the way (Azure Load Balancer 4 min by default, AWS NLB and NAT gateway 350 s, Google
Cloud NAT 20 min for an established connection), which otherwise drop an idle flow silently; 3 probes 30 s apart
close a connection to a peer that is gone, so the next request opens a new one instead of waiting on a dead one."""


def _import_rules(
    bridge: Bridge, mesh_name: str, eg: EgressGateway, ex: Export, addresses: dict[str, str]
) -> list[Document]:
    """An import's ServiceEntry (the exporter's gateway as the host's endpoint) and the DestinationRule that
    originates the mutual TLS, in the egress namespace: the same for a sidecar importer and an ambient one."""
    api = bridge.spec.meshes[mesh_name].istio.networking_api_version
    ns = eg.namespace
    elabels = {EXPORT_LABEL: ex.name}
    exporter = bridge.spec.meshes[ex.from_]
    assert exporter.ingress_gateway is not None  # validated
    address = addresses.get(ex.from_) or exporter.ingress_gateway.address
    if address is None:
        raise RenderError(
            f"mesh {ex.from_!r} has no ingress gateway address, so the ServiceEntry of {ex.host!r} in mesh "
            f"{mesh_name!r} has nowhere to point. Fix: set "
            f"spec.meshes.{ex.from_}.ingressGateway.address to its load-balancer host name or IP, or use "
            "'meshbridge apply', which discovers it from the Service status"
        )
    entry = _doc(
        api,
        "ServiceEntry",
        f"se-{ex.name}-ext",
        ns,
        {
            "endpoints": [{"address": address, "ports": {"http": ex.gateway_port}}],
            "hosts": _import_hosts(ex),
            "ports": [{"name": "http", "number": ex.port, "protocol": "HTTP"}],
            "resolution": _resolution(address),
        },
        elabels,
    )
    mtls: dict[str, Any] = {"credentialName": bridge.credential_name(mesh_name), "mode": "MUTUAL", "sni": ex.host}
    if bridge.spec.tls.pin_subject_alt_names:
        mtls["subjectAltNames"] = [ex.host]
    rule = _doc(
        api,
        "DestinationRule",
        f"dr-{ex.name}-ext",
        ns,
        {
            "exportTo": ["."],
            "host": ex.host,
            "trafficPolicy": {
                "portLevelSettings": [
                    {
                        "port": {"number": ex.port},
                        "connectionPool": {
                            "tcp": {"tcpKeepalive": dict(WAN_KEEPALIVE)},
                            "http": {"h2UpgradePolicy": "UPGRADE"},
                        },
                        "tls": mtls,
                    }
                ]
            },
        },
        elabels,
    )
    return [entry, rule]


def _import_hosts(ex: Export) -> list[str]:
    """The hosts of the importer's ServiceEntry and VirtualService: the exported host (the egress gateway's route
    and the SNI), then the name apps call when ``importAs`` gives another (its route rewrites the authority to
    the exported host, so every hop after the sidecar sees that one)."""
    return [ex.host] if ex.import_host == ex.host else [ex.host, ex.import_host]


# -- secrets ---------------------------------------------------------------------------------------------


def render_secrets(bridge: Bridge, credentials: dict[str, MeshCredentials]) -> dict[str, list[Document]]:
    """Each own mesh's gateway Secrets alone (a ``peer: true`` mesh's owner pushes theirs), labelled as
    :func:`render_bridge` labels them: what a certificate push applies (it needs no gateway address, unlike the
    routes).

    Raises:
        RenderError: a leaf has no private key.
    """
    labels = ownership_labels(bridge.metadata.name)
    out = {}
    for mesh_name in bridge.own_meshes:
        docs = _gateway_secrets(bridge, mesh_name, credentials[mesh_name])
        for d in docs:
            d["metadata"]["labels"] = {**labels, **d["metadata"].get("labels", {})}
        out[mesh_name] = docs
    return out


def _gateway_secrets(bridge: Bridge, mesh_name: str, creds: MeshCredentials) -> list[Document]:
    """The generic ``key``/``cert``/``cacert`` Secrets in the gateway workloads' namespaces (lint MB205, MB207), named
    by the mesh's credentialName.

    A ``crl`` key sits beside ``cacert`` once a trusted CA has revoked something (istiod hands it to the
    validation context); without revocations there is none.
    """
    mesh = bridge.spec.meshes[mesh_name]
    name = bridge.credential_name(mesh_name)
    out = []
    if creds.server is not None and mesh.ingress_gateway is not None:
        s = creds.server
        out.append(_tls_secret(name, mesh.ingress_gateway, s.cert_pem, s.key_pem, creds.server_trust, creds.server_crl))
    if creds.client is not None and mesh.egress_gateway is not None:
        c = creds.client
        out.append(_tls_secret(name, mesh.egress_gateway, c.cert_pem, c.key_pem, creds.client_trust, creds.client_crl))
    return out


def _tls_secret(
    name: str, gw: GatewayWorkload, cert: bytes, key: bytes | None, cacert: bytes, crl: bytes | None
) -> Document:
    if key is None:
        raise RenderError(
            f"the leaf for Secret {gw.namespace}/{name} has no private key. Fix: run 'meshbridge certs issue'"
        )
    data = {"key": key, "cert": cert, "cacert": cacert}
    if crl:
        data["crl"] = crl
    return _secret(name, gw.namespace, data)


# -- helpers ---------------------------------------------------------------------------------------------


def _doc(
    api: str, kind: str, name: str, namespace: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> Document:
    md: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        md["labels"] = dict(labels)
    return {"apiVersion": api, "kind": kind, "metadata": md, "spec": spec}


def _duration(seconds: float) -> str:
    """Seconds as an Istio duration: ``2s``, ``1.5s``, ``0.25s``."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _resolution(address: str) -> str:
    return "STATIC" if is_ip(address) else "DNS"


def _static_endpoints(host: str) -> dict[str, Any]:
    return {"endpoints": [{"address": host}]} if is_ip(host) else {}


def _with_namespaces(docs: list[Document], labels: dict[str, str]) -> list[Document]:
    given = [d for d in docs if d["kind"] == "Namespace"]  # labelled by the renderer (ambient)
    named = {d["metadata"]["name"] for d in given}
    namespaces = sorted({d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]} - named)
    ns_docs: list[Document] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}} for ns in namespaces
    ]
    ordered = sorted(ns_docs + given, key=lambda d: str(d["metadata"]["name"]))
    return ordered + [d for d in docs if d["kind"] != "Namespace"]
