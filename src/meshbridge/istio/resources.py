"""Typed Istio networking resources: the subset meshbridge models, in Istio's own field names.

Gateway, VirtualService, DestinationRule and ServiceEntry (``networking.istio.io`` ``v1beta1`` and ``v1``,
which share one schema), EnvoyFilter (``v1alpha3``), AuthorizationPolicy (``security.istio.io`` ``v1`` and
``v1beta1``; ALLOW and DENY on principals, namespaces, hosts, paths, methods, ports and the ``when`` keys that
need no JWT), Kubernetes Secrets and Services, and the mesh settings that change behaviour.
Fields follow the Istio API reference (https://istio.io/latest/docs/reference/config/networking/).

Fields outside the modelled subset are kept in ``model_extra`` and reported by
:func:`meshbridge.istio.parse.unsupported_fields` as warnings that name them; nothing is dropped silently.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TLSModeServer = Literal["PASSTHROUGH", "SIMPLE", "MUTUAL", "AUTO_PASSTHROUGH", "ISTIO_MUTUAL", "OPTIONAL_MUTUAL"]
TLSModeClient = Literal["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]
TLSVersion = Literal["TLS_AUTO", "TLSV1_0", "TLSV1_1", "TLSV1_2", "TLSV1_3"]


class IstioModel(BaseModel):
    """Base: Istio's camelCase names, unknown fields kept (and reported), values frozen."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


# -- metadata ------------------------------------------------------------------------------------------


class ObjectMeta(IstioModel):
    """``metadata``: name, namespace (``default`` when absent, as kubectl applies it), labels."""

    name: str
    namespace: str = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


# -- Gateway -------------------------------------------------------------------------------------------


class Port(IstioModel):
    """``Gateway.spec.servers[].port``."""

    number: int
    name: str = ""
    protocol: str = "HTTP"
    target_port: int | None = Field(default=None, alias="targetPort")


class ServerTLSSettings(IstioModel):
    """``Gateway.spec.servers[].tls`` (ServerTLSSettings). ``mode`` defaults to PASSTHROUGH, the API's zero
    value (a plain-HTTP server's ``tls: {httpsRedirect: true}`` sets no mode)."""

    mode: TLSModeServer = "PASSTHROUGH"
    https_redirect: bool = Field(default=False, alias="httpsRedirect")
    credential_name: str | None = Field(default=None, alias="credentialName")
    credential_names: list[str] = Field(default_factory=list, alias="credentialNames")
    ca_cert_credential_name: str | None = Field(default=None, alias="caCertCredentialName")
    server_certificate: str | None = Field(default=None, alias="serverCertificate")
    private_key: str | None = Field(default=None, alias="privateKey")
    ca_certificates: str | None = Field(default=None, alias="caCertificates")
    ca_crl: str | None = Field(default=None, alias="caCrl")
    subject_alt_names: list[str] = Field(default_factory=list, alias="subjectAltNames")
    verify_certificate_spki: list[str] = Field(default_factory=list, alias="verifyCertificateSpki")
    verify_certificate_hash: list[str] = Field(default_factory=list, alias="verifyCertificateHash")
    min_protocol_version: TLSVersion = Field(default="TLS_AUTO", alias="minProtocolVersion")
    max_protocol_version: TLSVersion = Field(default="TLS_AUTO", alias="maxProtocolVersion")
    cipher_suites: list[str] = Field(default_factory=list, alias="cipherSuites")


class Server(IstioModel):
    """``Gateway.spec.servers[]``."""

    port: Port
    hosts: list[str]
    bind: str | None = None
    name: str | None = None
    tls: ServerTLSSettings | None = None


class GatewaySpec(IstioModel):
    """``Gateway.spec``."""

    selector: dict[str, str] = Field(default_factory=dict)
    servers: list[Server] = Field(default_factory=list)


class Gateway(IstioModel):
    """``networking.istio.io`` Gateway."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["Gateway"]
    metadata: ObjectMeta
    spec: GatewaySpec


# -- VirtualService ------------------------------------------------------------------------------------


class StringMatch(IstioModel):
    """Istio StringMatch: exactly one of exact, prefix, regex."""

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None


class PortSelector(IstioModel):
    """``port: {number: N}``."""

    number: int | None = None


class Destination(IstioModel):
    """A route destination: host (FQDN or short name), optional subset and port."""

    host: str
    subset: str | None = None
    port: PortSelector | None = None


class HeaderOperations(IstioModel):
    """``headers.request`` / ``headers.response``: headers to set (overwrite), add (append) and remove."""

    set: dict[str, str] = Field(default_factory=dict)
    add: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)


class Headers(IstioModel):
    """``http[].headers`` and ``http[].route[].headers``."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class HTTPRouteDestination(IstioModel):
    """``http[].route[]``."""

    destination: Destination
    weight: int | None = None
    headers: Headers | None = None


class HTTPMatchRequest(IstioModel):
    """``http[].match[]``."""

    name: str | None = None
    uri: StringMatch | None = None
    authority: StringMatch | None = None
    method: StringMatch | None = None
    headers: dict[str, StringMatch] = Field(default_factory=dict)
    port: int | None = None
    source_labels: dict[str, str] = Field(default_factory=dict, alias="sourceLabels")
    gateways: list[str] = Field(default_factory=list)
    source_namespace: str | None = Field(default=None, alias="sourceNamespace")
    ignore_uri_case: bool = Field(default=False, alias="ignoreUriCase")
    query_params: dict[str, StringMatch] = Field(default_factory=dict, alias="queryParams")


class HTTPRetry(IstioModel):
    """``http[].retries``."""

    attempts: int = 2
    per_try_timeout: str | None = Field(default=None, alias="perTryTimeout")
    retry_on: str | None = Field(default=None, alias="retryOn")


class HTTPRewrite(IstioModel):
    """``http[].rewrite``."""

    uri: str | None = None
    authority: str | None = None


class HTTPDirectResponse(IstioModel):
    """``http[].directResponse``."""

    status: int
    body: dict[str, str] | None = None


class HTTPRedirect(IstioModel):
    """``http[].redirect``: answer with a redirect instead of forwarding."""

    uri: str | None = None
    authority: str | None = None
    port: int | None = None
    derive_port: Literal["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"] | None = Field(default=None, alias="derivePort")
    scheme: str | None = None
    redirect_code: int | None = Field(default=None, alias="redirectCode")


class Percent(IstioModel):
    """``percentage``: a share of requests, 0 to 100."""

    value: float = 0.0


class FaultDelay(IstioModel):
    """``fault.delay``: a fixed delay before forwarding."""

    fixed_delay: str | None = Field(default=None, alias="fixedDelay")
    percentage: Percent | None = None


class FaultAbort(IstioModel):
    """``fault.abort``: answer with an HTTP status instead of forwarding."""

    http_status: int | None = Field(default=None, alias="httpStatus")
    percentage: Percent | None = None


class HTTPFaultInjection(IstioModel):
    """``http[].fault``."""

    delay: FaultDelay | None = None
    abort: FaultAbort | None = None


class HTTPRoute(IstioModel):
    """``http[]``."""

    name: str | None = None
    match: list[HTTPMatchRequest] = Field(default_factory=list)
    route: list[HTTPRouteDestination] = Field(default_factory=list)
    timeout: str | None = None
    retries: HTTPRetry | None = None
    rewrite: HTTPRewrite | None = None
    direct_response: HTTPDirectResponse | None = Field(default=None, alias="directResponse")
    redirect: HTTPRedirect | None = None
    headers: Headers | None = None
    fault: HTTPFaultInjection | None = None
    mirror: Destination | None = None
    mirror_percentage: Percent | None = Field(default=None, alias="mirrorPercentage")


class L4MatchAttributes(IstioModel):
    """``tcp[].match[]``: the port, gateways and source of a connection."""

    port: int | None = None
    gateways: list[str] = Field(default_factory=list)
    source_labels: dict[str, str] = Field(default_factory=dict, alias="sourceLabels")
    source_namespace: str | None = Field(default=None, alias="sourceNamespace")
    destination_subnets: list[str] = Field(default_factory=list, alias="destinationSubnets")


class TLSMatchAttributes(L4MatchAttributes):
    """``tls[].match[]``: as a TCP match, plus the SNI values it takes (required)."""

    sni_hosts: list[str] = Field(default_factory=list, alias="sniHosts")


class RouteDestination(IstioModel):
    """``tcp[].route[]`` / ``tls[].route[]``."""

    destination: Destination
    weight: int | None = None


class TCPRoute(IstioModel):
    """``tcp[]``: a connection is forwarded as a byte stream (Envoy ``tcp_proxy``)."""

    match: list[L4MatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)


class TLSRoute(IstioModel):
    """``tls[]``: a TLS connection is forwarded unopened, chosen by its SNI."""

    match: list[TLSMatchAttributes] = Field(default_factory=list)
    route: list[RouteDestination] = Field(default_factory=list)


class VirtualServiceSpec(IstioModel):
    """``VirtualService.spec``: HTTP routes, and TLS and TCP routes (gateways; sidecars route HTTP only)."""

    hosts: list[str] = Field(default_factory=list)
    gateways: list[str] = Field(default_factory=list)
    http: list[HTTPRoute] = Field(default_factory=list)
    tls: list[TLSRoute] = Field(default_factory=list)
    tcp: list[TCPRoute] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list, alias="exportTo")


class VirtualService(IstioModel):
    """``networking.istio.io`` VirtualService."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["VirtualService"]
    metadata: ObjectMeta
    spec: VirtualServiceSpec


# -- DestinationRule -----------------------------------------------------------------------------------


class ClientTLSSettings(IstioModel):
    """``trafficPolicy.tls`` (ClientTLSSettings)."""

    mode: TLSModeClient = "DISABLE"
    credential_name: str | None = Field(default=None, alias="credentialName")
    client_certificate: str | None = Field(default=None, alias="clientCertificate")
    private_key: str | None = Field(default=None, alias="privateKey")
    ca_certificates: str | None = Field(default=None, alias="caCertificates")
    ca_crl: str | None = Field(default=None, alias="caCrl")
    subject_alt_names: list[str] = Field(default_factory=list, alias="subjectAltNames")
    sni: str | None = None
    insecure_skip_verify: bool | None = Field(default=None, alias="insecureSkipVerify")


class TcpKeepalive(IstioModel):
    """``connectionPool.tcp.tcpKeepalive``: SO_KEEPALIVE on the upstream socket; how many unanswered probes close
    the connection, how long it idles before the first probe and the time between probes (``300s``). Unset
    fields are the OS's."""

    probes: int = 0
    time: str | None = None
    interval: str | None = None


class TCPSettings(IstioModel):
    """``connectionPool.tcp``: connection limits and timeouts (durations as Istio writes them, ``2s``), keepalive."""

    max_connections: int = Field(default=0, alias="maxConnections")
    connect_timeout: str | None = Field(default=None, alias="connectTimeout")
    max_connection_duration: str | None = Field(default=None, alias="maxConnectionDuration")
    idle_timeout: str | None = Field(default=None, alias="idleTimeout")
    tcp_keepalive: TcpKeepalive | None = Field(default=None, alias="tcpKeepalive")


class HTTPSettings(IstioModel):
    """``connectionPool.http``: request limits, connection reuse and the HTTP/2 upgrade."""

    http1_max_pending_requests: int = Field(default=0, alias="http1MaxPendingRequests")
    http2_max_requests: int = Field(default=0, alias="http2MaxRequests")
    max_requests_per_connection: int = Field(default=0, alias="maxRequestsPerConnection")
    max_retries: int = Field(default=0, alias="maxRetries")
    idle_timeout: str | None = Field(default=None, alias="idleTimeout")
    h2_upgrade_policy: Literal["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"] = Field(
        default="DEFAULT", alias="h2UpgradePolicy"
    )
    use_client_protocol: bool = Field(default=False, alias="useClientProtocol")
    max_concurrent_streams: int = Field(default=0, alias="maxConcurrentStreams")


class ConnectionPoolSettings(IstioModel):
    """``trafficPolicy.connectionPool``."""

    tcp: TCPSettings | None = None
    http: HTTPSettings | None = None


class ConsistentHashLB(IstioModel):
    """``loadBalancer.consistentHash``: what a request is hashed on, and the ring (ring hash or Maglev)."""

    http_header_name: str | None = Field(default=None, alias="httpHeaderName")
    http_cookie: dict[str, Any] | None = Field(default=None, alias="httpCookie")
    use_source_ip: bool | None = Field(default=None, alias="useSourceIp")
    http_query_parameter_name: str | None = Field(default=None, alias="httpQueryParameterName")
    ring_hash: dict[str, int] | None = Field(default=None, alias="ringHash")
    maglev: dict[str, int] | None = None
    minimum_ring_size: int = Field(default=0, alias="minimumRingSize")


class LoadBalancerSettings(IstioModel):
    """``trafficPolicy.loadBalancer``: a simple algorithm or a consistent hash."""

    simple: Literal["UNSPECIFIED", "LEAST_CONN", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST"] | None = None
    consistent_hash: ConsistentHashLB | None = Field(default=None, alias="consistentHash")
    warmup_duration_secs: str | None = Field(default=None, alias="warmupDurationSecs")


class OutlierDetection(IstioModel):
    """``trafficPolicy.outlierDetection``: ejecting endpoints that fail (durations as Istio writes them)."""

    consecutive_5xx_errors: int | None = Field(default=None, alias="consecutive5xxErrors")
    consecutive_gateway_errors: int | None = Field(default=None, alias="consecutiveGatewayErrors")
    interval: str | None = None
    base_ejection_time: str | None = Field(default=None, alias="baseEjectionTime")
    max_ejection_percent: int = Field(default=0, alias="maxEjectionPercent")
    min_health_percent: int = Field(default=0, alias="minHealthPercent")
    split_external_local_origin_errors: bool = Field(default=False, alias="splitExternalLocalOriginErrors")
    consecutive_local_origin_failures: int | None = Field(default=None, alias="consecutiveLocalOriginFailures")


class PortTrafficPolicy(IstioModel):
    """``trafficPolicy.portLevelSettings[]``: for one port, replaces the four policies below it (those it
    leaves out are Istio's defaults, not the top level's)."""

    port: PortSelector | None = None
    tls: ClientTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = Field(default=None, alias="connectionPool")
    load_balancer: LoadBalancerSettings | None = Field(default=None, alias="loadBalancer")
    outlier_detection: OutlierDetection | None = Field(default=None, alias="outlierDetection")


class TrafficPolicy(IstioModel):
    """``trafficPolicy``: TLS, connection pool, load balancer, outlier detection, and port-level settings."""

    tls: ClientTLSSettings | None = None
    connection_pool: ConnectionPoolSettings | None = Field(default=None, alias="connectionPool")
    load_balancer: LoadBalancerSettings | None = Field(default=None, alias="loadBalancer")
    outlier_detection: OutlierDetection | None = Field(default=None, alias="outlierDetection")
    port_level_settings: list[PortTrafficPolicy] = Field(default_factory=list, alias="portLevelSettings")


class Subset(IstioModel):
    """``subsets[]``."""

    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    traffic_policy: TrafficPolicy | None = Field(default=None, alias="trafficPolicy")


class WorkloadSelector(IstioModel):
    """``workloadSelector``."""

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")


class DestinationRuleSpec(IstioModel):
    """``DestinationRule.spec``."""

    host: str
    traffic_policy: TrafficPolicy | None = Field(default=None, alias="trafficPolicy")
    subsets: list[Subset] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list, alias="exportTo")
    workload_selector: WorkloadSelector | None = Field(default=None, alias="workloadSelector")


class DestinationRule(IstioModel):
    """``networking.istio.io`` DestinationRule."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["DestinationRule"]
    metadata: ObjectMeta
    spec: DestinationRuleSpec


# -- ServiceEntry --------------------------------------------------------------------------------------


class ServicePort(IstioModel):
    """``ServiceEntry.spec.ports[]``."""

    number: int
    protocol: str = ""
    name: str = ""
    target_port: int | None = Field(default=None, alias="targetPort")


class WorkloadEntry(IstioModel):
    """``ServiceEntry.spec.endpoints[]``."""

    address: str | None = None
    ports: dict[str, int] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)


DYNAMIC_DNS = "DYNAMIC_DNS"
"""The ServiceEntry resolution istiod serves with Envoy's dynamic forward proxy (each request's Host or SNI looked
up when it is sent): read, not modelled; its hosts are in no proxy's registry here
(:func:`meshbridge.istio.visibility.services`)."""


class ServiceEntrySpec(IstioModel):
    """``ServiceEntry.spec``."""

    hosts: list[str]
    addresses: list[str] = Field(default_factory=list)
    ports: list[ServicePort] = Field(default_factory=list)
    location: Literal["MESH_EXTERNAL", "MESH_INTERNAL"] = "MESH_EXTERNAL"
    resolution: Literal["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN", "DYNAMIC_DNS"] = "NONE"
    endpoints: list[WorkloadEntry] = Field(default_factory=list)
    export_to: list[str] = Field(default_factory=list, alias="exportTo")
    subject_alt_names: list[str] = Field(default_factory=list, alias="subjectAltNames")


class ServiceEntry(IstioModel):
    """``networking.istio.io`` ServiceEntry."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["ServiceEntry"]
    metadata: ObjectMeta
    spec: ServiceEntrySpec


# -- EnvoyFilter (v1alpha3) ----------------------------------------------------------------------------

PatchContext = Literal["ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"]
ApplyTo = Literal[
    "INVALID",
    "LISTENER",
    "FILTER_CHAIN",
    "NETWORK_FILTER",
    "HTTP_FILTER",
    "ROUTE_CONFIGURATION",
    "VIRTUAL_HOST",
    "HTTP_ROUTE",
    "CLUSTER",
    "EXTENSION_CONFIG",
    "BOOTSTRAP",
    "LISTENER_FILTER",
]
PatchOperation = Literal[
    "INVALID", "MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER", "INSERT_FIRST", "REPLACE"
]


class ProxyMatch(IstioModel):
    """``configPatches[].match.proxy``: the proxy's Istio version (a regex) and node metadata."""

    proxy_version: str | None = Field(default=None, alias="proxyVersion")
    metadata: dict[str, str] = Field(default_factory=dict)


class SubFilterMatch(IstioModel):
    """``...filterChain.filter.subFilter``: an HTTP filter inside the HTTP connection manager."""

    name: str = ""


class FilterMatch(IstioModel):
    """``...filterChain.filter``: a network filter of the chain, by name."""

    name: str = ""
    sub_filter: SubFilterMatch | None = Field(default=None, alias="subFilter")


class FilterChainMatch(IstioModel):
    """``...listener.filterChain``: a filter chain, by name, SNI, transport and application protocols, port."""

    name: str = ""
    sni: str = ""
    transport_protocol: str = Field(default="", alias="transportProtocol")
    application_protocols: str = Field(default="", alias="applicationProtocols")
    filter: FilterMatch | None = None
    destination_port: int = Field(default=0, alias="destinationPort")


class ListenerMatch(IstioModel):
    """``configPatches[].match.listener``: a listener by port number or name, and what inside it."""

    port_number: int = Field(default=0, alias="portNumber")
    port_name: str = Field(default="", alias="portName")
    filter_chain: FilterChainMatch | None = Field(default=None, alias="filterChain")
    listener_filter: str = Field(default="", alias="listenerFilter")
    name: str = ""


class EnvoyConfigObjectMatch(IstioModel):
    """``configPatches[].match``: context, proxy, and one of listener, routeConfiguration, cluster."""

    context: PatchContext = "ANY"
    proxy: ProxyMatch | None = None
    listener: ListenerMatch | None = None
    route_configuration: dict[str, Any] | None = Field(default=None, alias="routeConfiguration")
    cluster: dict[str, Any] | None = None


class EnvoyPatch(IstioModel):
    """``configPatches[].patch``: the operation and its value (Envoy's own JSON/YAML, kept as is)."""

    operation: PatchOperation = "INVALID"
    value: dict[str, Any] = Field(default_factory=dict)
    filter_class: str | None = Field(default=None, alias="filterClass")


class EnvoyConfigObjectPatch(IstioModel):
    """``spec.configPatches[]``."""

    apply_to: ApplyTo = Field(default="INVALID", alias="applyTo")
    match: EnvoyConfigObjectMatch | None = None
    patch: EnvoyPatch | None = None


class EnvoyFilterSelector(IstioModel):
    """``spec.workloadSelector``: the pods it applies to (``labels``, a subset of the pod's)."""

    labels: dict[str, str] = Field(default_factory=dict)


class EnvoyFilterSpec(IstioModel):
    """``EnvoyFilter.spec``."""

    workload_selector: EnvoyFilterSelector | None = Field(default=None, alias="workloadSelector")
    config_patches: list[EnvoyConfigObjectPatch] = Field(default_factory=list, alias="configPatches")
    priority: int = 0
    target_refs: list[dict[str, Any]] = Field(default_factory=list, alias="targetRefs")


class EnvoyFilter(IstioModel):
    """``networking.istio.io/v1alpha3`` EnvoyFilter: patches to what istiod generates for selected proxies."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["EnvoyFilter"]
    metadata: ObjectMeta
    spec: EnvoyFilterSpec


# -- AuthorizationPolicy -------------------------------------------------------------------------------


SPIFFE_PREFIX = "spiffe://"
"""What Istio strips from a peer certificate's URI SAN to name it in ``source.principals``, and puts back to match."""


class AuthzSource(IstioModel):
    """``rules[].from[].source``: the peer. ``principals`` are peer identities as Istio names them, a mutual TLS
    peer certificate's URI SAN without ``spiffe://`` (``cluster.local/ns/<ns>/sa/<sa>``); ``namespaces`` the
    ``/ns/<namespace>/`` part of that SAN (a ``*`` stands for any characters); ``serviceAccounts``
    ``<namespace>/<name>`` (or ``<name>`` in the policy's namespace) its ``/ns/`` and ``/sa/`` parts; ``trustDomains``
    its trust domain (``*`` any; one ``*`` inside). All need a peer certificate: a plain-text peer matches none.
    ``ipBlocks`` are the address the connection comes from (Envoy's ``direct_remote_ip``), ``remoteIpBlocks`` the
    client's as the gateway reads it (``remote_ip``: the same without ``X-Forwarded-For`` trusted hops), each an
    address or a CIDR block. ``requestPrincipals`` (a JWT's) are read but not modelled: an ALLOW rule that names
    them matches nothing on the twin, a DENY rule matches as if they were absent
    (:func:`meshbridge.istio.authz.unmodelled_fields`)."""

    principals: list[str] = Field(default_factory=list)
    not_principals: list[str] = Field(default_factory=list, alias="notPrincipals")
    namespaces: list[str] = Field(default_factory=list)
    not_namespaces: list[str] = Field(default_factory=list, alias="notNamespaces")
    service_accounts: list[str] = Field(default_factory=list, alias="serviceAccounts")
    not_service_accounts: list[str] = Field(default_factory=list, alias="notServiceAccounts")
    trust_domains: list[str] = Field(default_factory=list, alias="trustDomains")
    not_trust_domains: list[str] = Field(default_factory=list, alias="notTrustDomains")
    ip_blocks: list[str] = Field(default_factory=list, alias="ipBlocks")
    not_ip_blocks: list[str] = Field(default_factory=list, alias="notIpBlocks")
    remote_ip_blocks: list[str] = Field(default_factory=list, alias="remoteIpBlocks")
    not_remote_ip_blocks: list[str] = Field(default_factory=list, alias="notRemoteIpBlocks")
    request_principals: list[str] = Field(default_factory=list, alias="requestPrincipals")
    not_request_principals: list[str] = Field(default_factory=list, alias="notRequestPrincipals")


class AuthzFrom(IstioModel):
    """``rules[].from[]``."""

    source: AuthzSource = Field(default_factory=AuthzSource)


class AuthzOperation(IstioModel):
    """``rules[].to[].operation``: the request. ``hosts`` match the ``Host`` (``:authority``) case-insensitively,
    a leading or trailing ``*`` as a suffix or prefix match (``lambda.external:*`` for any port). ``paths`` match
    the path without its query, after the proxy's normalisation, case-sensitively (``/admin/*`` a prefix,
    ``*.json`` a suffix, ``*`` any; ``{*}``/``{**}`` templates are not modelled); ``methods`` the ``:method``, the
    same way. ``ports`` are the proxy's own (container) ports the connection reached, as strings (``"8443"``):
    a gateway's target port, not its Service's."""

    hosts: list[str] = Field(default_factory=list)
    not_hosts: list[str] = Field(default_factory=list, alias="notHosts")
    paths: list[str] = Field(default_factory=list)
    not_paths: list[str] = Field(default_factory=list, alias="notPaths")
    methods: list[str] = Field(default_factory=list)
    not_methods: list[str] = Field(default_factory=list, alias="notMethods")
    ports: list[str] = Field(default_factory=list)
    not_ports: list[str] = Field(default_factory=list, alias="notPorts")


class AuthzTo(IstioModel):
    """``rules[].to[]``."""

    operation: AuthzOperation = Field(default_factory=AuthzOperation)


AUTHZ_WHEN_KEYS = (
    "request.headers[",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "source.ip",
    "remote.ip",
    "destination.port",
    "connection.sni",
)
"""The ``when`` keys meshbridge models (``request.headers[<name>]`` by its prefix): those that need no JWT. Others
(``request.auth.*``, ``destination.ip``, ...) are reported; an ALLOW rule with one matches nothing on the twin, a
DENY rule matches as if it were absent (both refuse more, never less, than istiod's proxy)."""


class AuthzCondition(IstioModel):
    """``rules[].when[]``: one more attribute of the request that must hold, ``key`` with ``values`` (any of them)
    and ``notValues`` (none of them); the values are written as in ``from`` and ``to`` (a ``*`` at one end)."""

    key: str
    values: list[str] = Field(default_factory=list)
    not_values: list[str] = Field(default_factory=list, alias="notValues")

    @property
    def modelled(self) -> bool:
        """Whether meshbridge translates this key (:data:`AUTHZ_WHEN_KEYS`)."""
        return any(self.key == k or (k.endswith("[") and self.key.startswith(k)) for k in AUTHZ_WHEN_KEYS)


class AuthzRule(IstioModel):
    """``rules[]``: every ``from``, ``to`` and ``when`` field given must match (one entry of each list is enough)."""

    from_: list[AuthzFrom] = Field(default_factory=list, alias="from")
    to: list[AuthzTo] = Field(default_factory=list)
    when: list[AuthzCondition] = Field(default_factory=list)


class AuthzSelector(IstioModel):
    """``spec.selector``: the pods the policy applies to (``matchLabels``, a subset of the pod's)."""

    match_labels: dict[str, str] = Field(default_factory=dict, alias="matchLabels")


class PolicyTargetReference(IstioModel):
    """``spec.targetRefs[]`` (or the older ``spec.targetRef``): what the policy attaches to instead of a selector;
    a Gateway API ``Gateway`` of the policy's namespace for a gateway (Services and ServiceEntries for a waypoint,
    which meshbridge does not translate)."""

    group: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""


class AuthzProvider(IstioModel):
    """``spec.provider`` of a CUSTOM policy: the mesh config's extension provider that decides (ext_authz)."""

    name: str = ""


class AuthorizationPolicySpec(IstioModel):
    """``AuthorizationPolicy.spec``. ``action`` ALLOW (the API's default) or DENY; no ``rules`` with ALLOW
    denies everything, an empty rule (``{}``) matches everything; AUDIT marks requests for an audit log and refuses
    none. CUSTOM (an external authorizer, ``provider``) is read but not translated: the parser reports it
    (:func:`meshbridge.istio.authz.authz_warnings`). The annotation ``istio.io/dry-run: "true"`` makes a policy
    evaluated but not enforced."""

    selector: AuthzSelector | None = None
    target_ref: PolicyTargetReference | None = Field(default=None, alias="targetRef")
    target_refs: list[PolicyTargetReference] = Field(default_factory=list, alias="targetRefs")
    action: Literal["ALLOW", "DENY", "CUSTOM", "AUDIT"] = "ALLOW"
    provider: AuthzProvider | None = None
    rules: list[AuthzRule] = Field(default_factory=list)


class AuthorizationPolicy(IstioModel):
    """``security.istio.io/v1`` (or ``v1beta1``) AuthorizationPolicy: who may call what on the selected proxies."""

    api_version: str = Field(alias="apiVersion")
    kind: Literal["AuthorizationPolicy"]
    metadata: ObjectMeta
    spec: AuthorizationPolicySpec = Field(default_factory=AuthorizationPolicySpec)


# -- Kubernetes ----------------------------------------------------------------------------------------


class Secret(IstioModel):
    """A Kubernetes Secret; ``data`` is base64 (decoded by :meth:`values`), ``stringData`` plain."""

    api_version: str = Field(default="v1", alias="apiVersion")
    kind: Literal["Secret"]
    metadata: ObjectMeta
    type: str = "Opaque"
    data: dict[str, str] = Field(default_factory=dict)
    string_data: dict[str, str] = Field(default_factory=dict, alias="stringData")


class KubeServicePort(IstioModel):
    """``Service.spec.ports[]``."""

    name: str = ""
    port: int
    target_port: int | str | None = Field(default=None, alias="targetPort")
    protocol: str = "TCP"
    app_protocol: str | None = Field(default=None, alias="appProtocol")


class KubeServiceSpec(IstioModel):
    """``Service.spec``."""

    selector: dict[str, str] = Field(default_factory=dict)
    ports: list[KubeServicePort] = Field(default_factory=list)
    type: str = "ClusterIP"
    external_name: str | None = Field(default=None, alias="externalName")


class KubeService(IstioModel):
    """A Kubernetes Service (the gateways' Services, with their port → targetPort mapping)."""

    api_version: str = Field(default="v1", alias="apiVersion")
    kind: Literal["Service"]
    metadata: ObjectMeta
    spec: KubeServiceSpec

    @property
    def fqdn(self) -> str:
        """``<name>.<namespace>.svc.cluster.local``."""
        return f"{self.metadata.name}.{self.metadata.namespace}.svc.cluster.local"


# -- cert-manager --------------------------------------------------------------------------------------

CERT_MANAGER_API = "cert-manager.io/v1"
CERT_MANAGER_ANNOTATIONS = ("cert-manager.io/certificate-name", "cert-manager.io/issuer-name")
"""Annotations cert-manager writes on every Secret it issues."""


class CertificateSpec(IstioModel):
    """``Certificate.spec``: the fields lint reads (the Secret cert-manager writes, and what it certifies)."""

    secret_name: str = Field(alias="secretName")
    dns_names: list[str] = Field(default_factory=list, alias="dnsNames")
    uris: list[str] = Field(default_factory=list)
    usages: list[str] = Field(default_factory=list)


class Certificate(IstioModel):
    """A cert-manager ``Certificate``: cert-manager writes Secret ``spec.secretName`` in the Certificate's namespace,
    with ``tls.crt``, ``tls.key`` and ``ca.crt``, the CA of its *own* issuer."""

    api_version: str = Field(default=CERT_MANAGER_API, alias="apiVersion")
    kind: Literal["Certificate"]
    metadata: ObjectMeta
    spec: CertificateSpec


TRUST_MANAGER_API = "trust.cert-manager.io/v1alpha1"


class TrustBundle(IstioModel):
    """A trust-manager ``Bundle`` (cluster-scoped): it writes its sources into the ConfigMap or Secret of its own name
    in the namespaces its ``spec.target.namespaceSelector`` selects (all without one)."""

    api_version: str = Field(default=TRUST_MANAGER_API, alias="apiVersion")
    kind: Literal["Bundle"]
    metadata: ObjectMeta
    spec: dict[str, Any] = Field(default_factory=dict)

    def may_write_secret(self, namespace: str) -> bool:
        """Whether the Bundle writes (or, for a selector on labels lint cannot see, may write) its Secret into
        ``namespace``."""
        target = self.spec.get("target") or {}
        if not target.get("secret"):
            return False
        labels = (target.get("namespaceSelector") or {}).get("matchLabels") or {}
        name = labels.get("kubernetes.io/metadata.name")
        return name is None or name == namespace


# -- Kubernetes RBAC ------------------------------------------------------------------------------------

RBAC_API = "rbac.authorization.k8s.io/v1"


class PolicyRule(IstioModel):
    """One rule of a Role or ClusterRole."""

    api_groups: list[str] = Field(default_factory=list, alias="apiGroups")
    resources: list[str] = Field(default_factory=list)
    verbs: list[str] = Field(default_factory=list)
    resource_names: list[str] = Field(default_factory=list, alias="resourceNames")

    def grants(self, verb: str, resource: str, group: str = "") -> bool:
        """Whether the rule grants ``verb`` on ``resource`` of API group ``group`` (wildcards included), for
        some object names at least (see :attr:`resource_names`)."""
        return (
            bool({group, "*"} & set(self.api_groups))
            and bool({resource, "*"} & set(self.resources))
            and bool({verb, "*"} & set(self.verbs))
        )


class Role(IstioModel):
    """A Role or ClusterRole (the rules lint reads: who may read the gateways' Secrets)."""

    api_version: str = Field(default=RBAC_API, alias="apiVersion")
    kind: Literal["Role", "ClusterRole"]
    metadata: ObjectMeta
    rules: list[PolicyRule] = Field(default_factory=list)


class RoleRef(IstioModel):
    """``roleRef`` of a binding."""

    kind: str
    name: str


class Subject(IstioModel):
    """One ``subjects[]`` entry of a binding."""

    kind: str
    name: str
    namespace: str | None = None


class RoleBinding(IstioModel):
    """A RoleBinding or ClusterRoleBinding."""

    api_version: str = Field(default=RBAC_API, alias="apiVersion")
    kind: Literal["RoleBinding", "ClusterRoleBinding"]
    metadata: ObjectMeta
    role_ref: RoleRef = Field(alias="roleRef")
    subjects: list[Subject] = Field(default_factory=list)


IstioResource = Gateway | VirtualService | DestinationRule | ServiceEntry | EnvoyFilter | Secret | KubeService
