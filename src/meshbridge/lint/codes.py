"""The registry of lint codes: stable numbers, fixed severities, one-line titles (pure).

Groups:

* ``MB0xx`` the input: what lint assumed or could not model;
* ``MB1xx`` routing and visibility inside one mesh (DNS, gateway binding, exportTo, clusters, subsets, ports);
* ``MB2xx`` secrets and TLS settings inside one mesh (credentialName, Secret layout and namespace);
* ``MB3xx`` across meshes: the importer's ServiceEntry, SNI and Host against the exporter's gateway, and
  each side's certificate against the other side's trust;
* ``MB4xx`` each certificate on its own: PEM, key pair, validity, EKU, SAN, profile;
* ``MB5xx`` security posture of the link (client certificates required, SAN pins, TLS versions).

Numbers are never reused; ``docs/lint.md`` has one entry per code (a test keeps them in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshbridge.errors import MeshbridgeError
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.severity import Severity


@dataclass(frozen=True)
class CodeInfo:
    """A registered code.

    Attributes:
        code: ``MB###``.
        severity: the severity of every finding with this code.
        title: one line: the problem in the field's own words.
        symptom: the default run-time symptom (a finding may say it more precisely).
        cases: the field cases (``L01``…) this code detects the kind of.
    """

    code: str
    severity: Severity
    title: str
    symptom: str
    cases: tuple[str, ...] = ()


_ALL = [
    # -- MB0xx: the input ---------------------------------------------------------------------------------
    CodeInfo(
        "MB001",
        "info",
        "World assumed: no bridge spec, Istio chart defaults used",
        "none by itself; checks that depend on the gateway Services, pod labels or apps used the defaults",
    ),
    CodeInfo(
        "MB002",
        "warning",
        "Field or kind not modelled; lint ignored it",
        "unknown: lint cannot say what istiod does with it",
    ),
    CodeInfo(
        "MB003",
        "error",
        "Removed Istio API or feature still in use",
        "current Istio refuses it (kubectl apply: no matches for kind) or does nothing with it; what it was "
        "written for (mTLS, authorization, telemetry, a filter, certificates) does not happen",
    ),
    CodeInfo(
        "MB004",
        "error",
        "Unknown field: a misspelling of a field Istio has",
        "kubectl apply refuses the object (unknown field); had it been accepted, the field would be left out",
    ),
    CodeInfo(
        "MB005",
        "warning",
        "Istio's validation warns about a Gateway field",
        "kubectl apply takes the Gateway and prints Istio's warning; istiod ignores the field or the values it names",
    ),
    # -- MB1xx: routing and visibility ----------------------------------------------------------------------
    CodeInfo(
        "MB101",
        "error",
        "An app cannot resolve a made-up host (no DNS proxy answer)",
        "the app's call fails before any proxy sees it: curl: (6) Could not resolve host",
        ("L01",),
    ),
    CodeInfo(
        "MB102",
        "error",
        "VirtualService gateways entry names no Gateway",
        "the gateway has no route for the host: 404 NR route_not_found",
        ("L08",),
    ),
    CodeInfo(
        "MB103",
        "warning",
        "Gateway selects no gateway workload",
        "no proxy serves the Gateway's servers: connection refused on its ports",
    ),
    CodeInfo(
        "MB104",
        "error",
        "VirtualService adds no route on a gateway it binds",
        "404 NR route_not_found at the gateway",
    ),
    CodeInfo(
        "MB105",
        "warning",
        "Route match applies on no proxy",
        "requests meant for that match take another route or get 404 NR",
    ),
    CodeInfo(
        "MB106",
        "error",
        "exportTo hides a resource from the proxy that uses it",
        "404 NR (VirtualService) or 503 NC cluster_not_found (ServiceEntry) at that proxy",
        ("L12",),
    ),
    CodeInfo(
        "MB107",
        "error",
        "Route destination host is in no ServiceEntry or Service",
        "503 NC cluster_not_found",
    ),
    CodeInfo(
        "MB108",
        "error",
        "Route destination port is not a port of the service",
        "503 NC cluster_not_found",
    ),
    CodeInfo(
        "MB109",
        "error",
        "Gateway cluster filtering drops a routed cluster",
        "503 NC cluster_not_found at the gateway; 'istioctl proxy-config clusters' lacks the cluster",
        ("L10",),
    ),
    CodeInfo(
        "MB110",
        "error",
        "Route names a subset no visible DestinationRule defines",
        "503 NC cluster_not_found at the proxy that routes",
        ("L09",),
    ),
    CodeInfo(
        "MB111",
        "warning",
        "Subset selects no endpoints",
        "503 UH no_healthy_upstream (a Kubernetes Service's subset); 503 NC cluster_not_found for a DNS or STATIC "
        "ServiceEntry's, whose cluster istiod does not build without endpoints",
    ),
    CodeInfo(
        "MB112",
        "error",
        "Gateway server port is not exposed by the gateway Service",
        "the load balancer does not forward the port: clients cannot connect; below 1024, a non-root gateway "
        "without the istio/gateway chart's unprivileged-port sysctl also rejects its whole listener update (pod "
        "NotReady)",
        ("L07",),
    ),
    CodeInfo(
        "MB113",
        "error",
        "TLS port declared as plain HTTP",
        "503 at the gateway; sidecars parse TLS bytes as HTTP",
        ("L11",),
    ),
    CodeInfo(
        "MB114",
        "warning",
        "Gateway server host has no route",
        "404 NR route_not_found at the gateway for that host",
    ),
    CodeInfo(
        "MB115",
        "warning",
        "EnvoyFilter selects no proxy",
        "istiod applies none of its patches: the gateway runs without them (no connection limit, no timeouts)",
    ),
    CodeInfo(
        "MB116",
        "warning",
        "EnvoyFilter patch matches no listener of the proxies it selects",
        "istiod applies nothing and says nothing: the gateway runs without the patch",
    ),
    CodeInfo(
        "MB117",
        "error",
        "ServiceEntry resolution does not resolve its host names",
        "kubectl apply refused by Istio's validation; if applied anyway, 503 UH no_healthy_upstream at the gateway "
        "that routes to it",
    ),
    CodeInfo(
        "MB118",
        "warning",
        "A second ServiceEntry for a host adds ports istiod ignores",
        "503 NC (no cluster) for calls to those ports: istiod keeps the first ServiceEntry of the host alone",
    ),
    CodeInfo(
        "MB119",
        "error",
        "A later DestinationRule's TLS for a host is dropped when istiod merges the rules",
        "plain text reaches a TLS port: the upstream answers 400 or resets (503 UC)",
    ),
    CodeInfo(
        "MB120",
        "warning",
        "AuthorizationPolicy rule with HTTP-only fields selects a gateway with TCP chains",
        "an ALLOW rule admits no TCP connection there (closed after the handshake); a DENY rule refuses more",
    ),
    CodeInfo(
        "MB121",
        "warning",
        "AuthorizationPolicy port is the gateway Service's port, not its pods' (targetPort)",
        "the value matches no request through the Service: an ALLOW rule on it refuses them (403), a DENY rule lets "
        "them through",
    ),
    CodeInfo(
        "MB122",
        "error",
        "VirtualService routes a host through a gateway but binds no sidecar (gateways without mesh)",
        "the apps' sidecars send the host themselves, by the ServiceEntry alone, without what the gateway adds: "
        "plain text to a mutual-TLS port is reset (503 UC)",
    ),
    CodeInfo(
        "MB123",
        "warning",
        "AuthorizationPolicy rule judges the client certificate on a gateway chain that passes TLS through",
        "no certificate reaches the gateway there: principals and namespaces never match (tcp.rbac.denied on an "
        "ALLOW rule), their not forms always do",
    ),
    # -- MB2xx: secrets and TLS settings -------------------------------------------------------------------
    CodeInfo(
        "MB201",
        "error",
        "credentialName is not applied by the proxy that sends the traffic",
        "plain text reaches a TLS port: the upstream answers 400 or resets (503 UC)",
        ("L02",),
    ),
    CodeInfo(
        "MB202",
        "info",
        "DestinationRule with credentialName is visible to sidecars that ignore it",
        "none while the sidecars route elsewhere; plain text if one ever routes to the host directly",
        ("L02",),
    ),
    CodeInfo(
        "MB203",
        "error",
        "credentialName ends in the reserved -cacert suffix",
        "503; istiod logs 'Secret is not supplied by SDS'",
        ("L03",),
    ),
    CodeInfo(
        "MB204",
        "error",
        "TLS settings name no usable credential",
        "istiod rejects the resource or drops the TLS context: handshake failure or plain text",
    ),
    CodeInfo(
        "MB205",
        "error",
        "Secret key layout is not one istiod serves",
        "the listener or cluster waits for the secret: handshake reset at the gateway, 503 at the egress",
        ("L04",),
    ),
    CodeInfo(
        "MB206",
        "warning",
        "Secret mixes key layouts",
        "served today, but a CA or CRL may be read from another key than intended",
        ("L04",),
    ),
    CodeInfo(
        "MB207",
        "error",
        "Secret is not in the gateway workload's namespace",
        "istiod does not serve it: the gateway's handshake fails (reset), the egress answers 503",
        ("L05",),
    ),
    CodeInfo(
        "MB208",
        "info",
        "Secret is not in the input",
        "none if it exists in the cluster; otherwise a reset handshake or 503",
    ),
    CodeInfo(
        "MB209",
        "error",
        "Plain text sent to a TLS port",
        "the upstream answers 400 'plain HTTP request was sent to HTTPS port', or resets (503 UC)",
        ("L02", "L11"),
    ),
    CodeInfo(
        "MB210",
        "info",
        "Certificates read from files in the pod were not given",
        "lint cannot see what files it was not given hold: an expired, foreign or mismatched certificate shows only "
        "as a failed handshake; 'local up' refuses to start without them",
    ),
    CodeInfo(
        "MB211",
        "error",
        "Peer trusted through the ca.crt cert-manager writes (its own issuer's CA)",
        "the peer mesh's certificates are refused: the gateway's handshake fails (unknown ca), the importer's "
        "egress answers 503 UF",
    ),
    CodeInfo(
        "MB212",
        "error",
        "The proxy's ServiceAccount may list Secrets only by resourceNames",
        "istiod serves the proxy none of its certificate Secrets: the handshake is reset at the gateway, the "
        "egress gateway or the sidecar that originates TLS answers 503 UF",
    ),
    CodeInfo(
        "MB213",
        "warning",
        "No Role of the input lets the sidecar's ServiceAccount list Secrets",
        "unless RBAC outside the input grants it, istiod serves the sidecar no certificate: it answers 503 UF",
    ),
    CodeInfo(
        "MB214",
        "error",
        "SNI of the sidecar's TLS to a gateway of its mesh matches no server of that gateway",
        "the gateway resets the connection (NR filter_chain_not_found); the app gets 503 UF (URX,UF) from its sidecar",
    ),
    # -- MB3xx: across meshes -------------------------------------------------------------------------------
    CodeInfo(
        "MB301",
        "error",
        "Export has no ServiceEntry in the importing mesh",
        "apps in the importing mesh cannot reach the exported host",
    ),
    CodeInfo(
        "MB302",
        "info",
        "Mutual-TLS upstream reaches no exporter in the input",
        "none by itself; the far side of the link was not checked",
    ),
    CodeInfo(
        "MB303",
        "error",
        "SNI matches no server host of the exporter Gateway",
        "exporter: NR filter_chain_not_found; importer: 503 UF or URX (connection reset before the handshake)",
        ("L06",),
    ),
    CodeInfo(
        "MB304",
        "error",
        "Endpoint port reaches no TLS listener on the exporter gateway",
        "importer: 503 UF (connection refused, or TLS error WRONG_VERSION_NUMBER on a plain-text listener)",
        ("L07",),
    ),
    CodeInfo(
        "MB305",
        "error",
        "Endpoint address is not the exporter gateway's address",
        "importer: 503 UF (connect timeout or refused) or UH (no endpoint resolves)",
    ),
    CodeInfo(
        "MB306",
        "error",
        "Importer does not originate mutual TLS to a MUTUAL exporter",
        "exporter: TLS alert certificate_required, or NR filter_chain_not_found for plain text; importer: 503 UF/UC "
        "(ISTIO_MUTUAL: 503 UF, CERTIFICATE_VERIFY_FAILED unable_to_get_local_issuer_certificate)",
    ),
    CodeInfo(
        "MB307",
        "error",
        "Exporter has no route for the Host the importer sends",
        "404 NR route_not_found from the exporter gateway, passed back to the app",
    ),
    CodeInfo(
        "MB308",
        "error",
        "Client certificate does not chain to the CA the exporter trusts",
        "exporter: TLS alert unknown_ca; importer: 503 UF, TLSV1_ALERT_UNKNOWN_CA",
    ),
    CodeInfo(
        "MB309",
        "error",
        "Server certificate does not chain to the CA the importer trusts",
        "importer: 503 UF, CERTIFICATE_VERIFY_FAILED",
    ),
    CodeInfo(
        "MB310",
        "error",
        "Certificate lacks the SAN its peer pins",
        "the peer refuses the handshake (SAN mismatch): importer 503 UF, CERTIFICATE_VERIFY_FAILED",
    ),
    CodeInfo(
        "MB311",
        "error",
        "Certificate is revoked by a CRL its peer checks",
        "the peer refuses the handshake with the TLS alert certificate_revoked: the importer's egress answers 503 UC",
    ),
    CodeInfo(
        "MB312",
        "error",
        "Exporter's AuthorizationPolicy refuses an importer the spec lists",
        "403 RBAC: access denied from the exporter gateway, passed back to the app",
    ),
    CodeInfo(
        "MB313",
        "info",
        "Exporter's AuthorizationPolicy admits an importer on some paths or methods only",
        "the named paths and methods reach the export; others get 403 RBAC: access denied from the exporter gateway",
    ),
    CodeInfo(
        "MB314",
        "warning",
        "Exporter gateway passes the importer's TLS through to the backend",
        "importer: 503 UF unless the backend terminates the mutual TLS with the bridge's certificates",
    ),
    # -- MB4xx: certificates --------------------------------------------------------------------------------
    CodeInfo(
        "MB401",
        "error",
        "Certificate or key is not readable PEM",
        "Envoy rejects the secret: the listener or cluster keeps waiting (reset, 503)",
    ),
    CodeInfo(
        "MB402",
        "error",
        "Private key does not match the certificate",
        "Envoy rejects the secret: handshake failure (reset, 503 UF)",
    ),
    CodeInfo(
        "MB403",
        "error",
        "Certificate expired or not yet valid",
        "the peer refuses the handshake: TLS alert certificate_expired; importer 503 UF",
    ),
    CodeInfo(
        "MB404",
        "warning",
        "Certificate expires within the horizon",
        "none yet; the handshakes fail once it expires",
    ),
    CodeInfo(
        "MB405",
        "error",
        "Certificate EKU forbids the role it is used in",
        "the peer refuses the handshake: TLS alert unsupported_certificate; importer 503 UF",
    ),
    CodeInfo(
        "MB406",
        "warning",
        "Certificate has no EKU, or both serverAuth and clientAuth",
        "none; a client leaf can pose as a server (CVE-2022-21657)",
    ),
    CodeInfo(
        "MB407",
        "warning",
        "Certificate identity is in the CN only (no SAN)",
        "none while no peer pins SANs; SAN pinning and hostname checks cannot succeed (RFC 9525)",
    ),
    CodeInfo(
        "MB408",
        "warning",
        "Self-signed leaf is its own trust anchor",
        "none; rotating it means redistributing trust to every peer at once",
    ),
    CodeInfo(
        "MB409",
        "warning",
        "Weak certificate profile",
        "none; RSA below 2048 bits, SHA-1 or a lifetime over 366 days is refused by modern peers",
    ),
    # -- MB5xx: security posture ----------------------------------------------------------------------------
    CodeInfo(
        "MB501",
        "error",
        "Exporter Gateway does not require a client certificate",
        "anyone who reaches the exporter gateway gets through without a certificate",
    ),
    CodeInfo(
        "MB502",
        "error",
        'Exporter Gateway serves hosts: "*"',
        "any SNI and Host is accepted and routed (CVE-2020-11767 class)",
    ),
    CodeInfo(
        "MB503",
        "error",
        "insecureSkipVerify disables certificate verification",
        "any certificate, from anyone, is accepted as the upstream",
    ),
    CodeInfo(
        "MB504",
        "warning",
        "Importer does not pin the exporter's SANs",
        "none; any certificate from the trusted CA is accepted as the exporter",
    ),
    CodeInfo(
        "MB505",
        "warning",
        "Importer DestinationRule sets no sni",
        "none while automatic SNI sends the Host; before Istio 1.21 no SNI is sent (MB303)",
    ),
    CodeInfo(
        "MB506",
        "warning",
        "Exporter Gateway does not pin client SANs",
        "none; any client certificate from the trusted CA gets in",
    ),
    CodeInfo(
        "MB507",
        "error",
        "TLS version below 1.2 allowed",
        "clients can negotiate TLS 1.0/1.1 (downgrade)",
    ),
    CodeInfo(
        "MB508",
        "warning",
        "Non-AEAD cipher suites allowed",
        "TLS 1.2 clients can negotiate CBC suites",
    ),
    CodeInfo(
        "MB509",
        "warning",
        "Linked meshes share a trust domain",
        "one SPIFFE identity names a workload of each mesh: a principal admitted on one side also names the other's",
    ),
]

CODES: dict[str, CodeInfo] = {c.code: c for c in _ALL}


def finding(
    code: str, objects: list[ObjectRef] | tuple[ObjectRef, ...], message: str, fix: str, symptom: str = ""
) -> Finding:
    """A finding with ``code``'s fixed severity and, unless given, its default symptom.

    Raises:
        MeshbridgeError: ``code`` is not registered (a programming error).
    """
    info = CODES.get(code)
    if info is None:
        raise MeshbridgeError(f"lint code {code} is not registered in meshbridge.lint.codes")
    return Finding(code, info.severity, tuple(objects), message, symptom or info.symptom, fix)
