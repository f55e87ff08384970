"""Outbound clusters of one proxy, as istiod builds them.

Sources (istio/istio ``pilot/pkg/networking/core/``): ``cluster.go`` (``BuildClusters``,
``buildOutboundClusters``, ``convertResolution``), ``cluster_builder.go`` (``buildCluster``,
``buildSubsetCluster``), ``cluster_tls.go`` (``buildUpstreamClusterTLSContext``: a sidecar ignores a
DestinationRule's credentialName without a workloadSelector, lint MB201; ``buildUpstreamTLSSettings``: ISTIO_MUTUAL
with the workload certificate, the service's accounts and istiod's own SNI), ``cluster_traffic_policy.go``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from meshbridge.envoy.names import cluster_name, dr_config_path, istio_mutual_sni
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.routes import duration
from meshbridge.envoy.tls import upstream_tls
from meshbridge.istio.config import ConfigSet, ConfigWarning, MeshSettings
from meshbridge.istio.protocol import is_http2
from meshbridge.istio.resources import (
    ClientTLSSettings,
    ConnectionPoolSettings,
    LoadBalancerSettings,
    OutlierDetection,
    TcpKeepalive,
)
from meshbridge.istio.visibility import (
    SNIFFED,
    EffectivePolicy,
    MergedDestinationRule,
    MeshService,
    Proxy,
    ServicePortInfo,
    destination_rule,
    tls_settings,
)

MAX = 4294967295
HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_TYPES = {"DNS": "STRICT_DNS", "DNS_ROUND_ROBIN": "LOGICAL_DNS", "STATIC": "EDS", "EDS": "EDS"}


@dataclass
class ClusterSet:
    """What cluster building produced: clusters, EDS assignments, SDS names needed, warnings."""

    clusters: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    sds_names: list[str] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)


def build_clusters(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    services: Iterable[MeshService],
    wanted: set[str] | None = None,
) -> ClusterSet:
    """Clusters for ``services`` (already visibility-filtered), one per port plus one per DR subset.

    Args:
        cfg: the mesh configuration (DestinationRules, settings).
        proxy: the acting proxy.
        placement: where it runs (DNS resolver, endpoint port mappings, SDS files).
        services: the services it sees.
        wanted: with ``PILOT_FILTER_GATEWAY_CLUSTER_CONFIG``, only these hosts: the destinations of the
            VirtualServices bound to the gateway (lint MB109).

    Returns:
        The clusters (special clusters included), their EDS assignments and the SDS names they use.
    """
    out = ClusterSet()
    for svc in services:
        if wanted is not None and svc.hostname not in wanted:
            continue
        dr = destination_rule(cfg, proxy, svc)
        for port in svc.ports:
            if port.protocol == "UDP":
                continue
            _add(out, cfg, proxy, placement, svc, port, dr, "")
            for subset in dr.subsets if dr is not None else ():
                _add(out, cfg, proxy, placement, svc, port, dr, subset.name, subset.labels)
    out.clusters.append({"name": "BlackHoleCluster", "type": "STATIC", "connect_timeout": "10s"})
    if proxy.kind == "sidecar":
        out.clusters.append(
            {
                "name": "PassthroughCluster",
                "type": "ORIGINAL_DST",
                "connect_timeout": "10s",
                "lb_policy": "CLUSTER_PROVIDED",
                # Locally there is no iptables original destination: `local curl` passes it in this header.
                "original_dst_lb_config": {"use_http_header": True},
                "circuit_breakers": _circuit_breakers(cfg.settings),
                "typed_extension_protocol_options": _protocol_options(
                    {"use_downstream_protocol_config": _DOWNSTREAM}, idle_timeout="300s"
                ),
            }
        )
    return out


def _add(
    out: ClusterSet,
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    svc: MeshService,
    port: ServicePortInfo,
    dr: MergedDestinationRule | None,
    subset: str,
    subset_labels: dict[str, str] | None = None,
) -> None:
    name = cluster_name(port.number, svc.hostname, subset)
    resolution = svc.resolution
    if resolution == "NONE":
        resolution = "EDS" if proxy.kind == "router" else "NONE"
    if resolution == "NONE":
        out.warnings.append(
            ConfigWarning(
                "translate",
                "ServiceEntry",
                svc.namespace,
                svc.entry.metadata.name if svc.entry is not None else svc.hostname,
                "spec.resolution",
                f"resolution NONE (ORIGINAL_DST on sidecars) is not emulated locally; no cluster for {svc.hostname}",
            )
        )
        return
    endpoints = svc.endpoints(port, subset_labels)
    cluster: dict[str, Any] = {
        "name": name,
        "type": _TYPES[resolution],
        "connect_timeout": "10s",
        "lb_policy": "LEAST_REQUEST",
        "circuit_breakers": _circuit_breakers(cfg.settings),
        "common_lb_config": {},
        "metadata": {"filter_metadata": {"istio": _metadata(svc, dr, subset)}},
    }
    if cfg.settings.stat_suffix:
        cluster["alt_stat_name"] = name + cfg.settings.stat_suffix
    lb_endpoints = [_lb_endpoint(*placement.endpoint(e.address, e.port)) for e in endpoints]
    assignment = {"cluster_name": name, "endpoints": [{"locality": {}, "lb_endpoints": lb_endpoints}]}
    if cluster["type"] in ("STRICT_DNS", "LOGICAL_DNS"):
        if not lb_endpoints:
            return  # istiod emits no DNS cluster without endpoints
        cluster.update(dns_settings(placement))
        cluster["load_assignment"] = assignment
    else:
        cluster["eds_cluster_config"] = {"service_name": name, "eds_config": placement.config_source("eds", name)}
        out.endpoints.append(
            {"@type": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment", **assignment}
        )
    upstream = _upstream_protocol(port, proxy)
    if upstream is not None:
        cluster["typed_extension_protocol_options"] = _protocol_options(upstream)
    policy = dr.policy_for(port.number, subset or None) if dr is not None else EffectivePolicy()
    _apply_connection_pool(cluster, policy.connection_pool)
    _apply_outlier_detection(cluster, policy.outlier_detection)
    _apply_load_balancer(cluster, policy.load_balancer, cfg.settings)
    tls = policy.tls
    if tls is not None:
        _apply_tls(out, cfg, proxy, placement, svc, port.number, subset, dr, tls, cluster)
    out.clusters.append(cluster)


_DOWNSTREAM: dict[str, Any] = {"http_protocol_options": {}, "http2_protocol_options": {}}


def _apply_connection_pool(cluster: dict[str, Any], pool: ConnectionPoolSettings | None) -> None:
    """``connectionPool`` as istiod's ``applyConnectionPool``: circuit-breaker thresholds, the connect timeout,
    idle timeout and requests per connection, TCP keepalive (``applyTCPKeepalive``), the HTTP/2 upgrade and the
    client's protocol."""
    if pool is None:
        return
    threshold = cluster["circuit_breakers"]["thresholds"][0]
    idle = None
    options: dict[str, Any] = {}
    if pool.http is not None:
        h = pool.http
        if h.http2_max_requests > 0:
            threshold["max_requests"] = h.http2_max_requests
        if h.http1_max_pending_requests > 0:
            threshold["max_pending_requests"] = h.http1_max_pending_requests
        if h.max_retries > 0:
            threshold["max_retries"] = h.max_retries
        idle = h.idle_timeout
        if h.max_requests_per_connection > 0:
            options["max_requests_per_connection"] = h.max_requests_per_connection
    if pool.tcp is not None:
        t = pool.tcp
        if t.connect_timeout is not None:
            cluster["connect_timeout"] = duration(t.connect_timeout)
        if t.max_connections > 0:
            threshold["max_connections"] = t.max_connections
        if t.max_connection_duration is not None:
            options["max_connection_duration"] = duration(t.max_connection_duration)
        idle = idle or t.idle_timeout
        if t.tcp_keepalive is not None:
            cluster["upstream_connection_options"] = {"tcp_keepalive": _tcp_keepalive(t.tcp_keepalive)}
    if idle is not None:
        options["idle_timeout"] = duration(idle)
    http = pool.http
    upgrade = http is not None and http.h2_upgrade_policy == "UPGRADE" and not http.use_client_protocol
    if not (options or upgrade or (http is not None and http.use_client_protocol)):
        return
    merged = cluster.setdefault("typed_extension_protocol_options", _protocol_options({}))[HTTP_PROTOCOL_OPTIONS]
    if options:
        merged.setdefault("common_http_protocol_options", {}).update(options)
    if http is not None and http.use_client_protocol:
        merged.pop("explicit_http_config", None)
        merged["use_downstream_protocol_config"] = dict(_DOWNSTREAM)
    elif upgrade and "explicit_http_config" not in merged and "use_downstream_protocol_config" not in merged:
        merged["explicit_http_config"] = {"http2_protocol_options": {}}
    if not any(k in merged for k in ("explicit_http_config", "use_downstream_protocol_config", "auto_config")):
        merged["explicit_http_config"] = {"http_protocol_options": {}}


def _tcp_keepalive(keepalive: TcpKeepalive) -> dict[str, int]:
    """``tcpKeepalive`` as istiod's ``setKeepAliveSettings``: SO_KEEPALIVE always, each field set only when the
    rule sets it, durations in whole seconds."""
    out: dict[str, int] = {}
    if keepalive.probes > 0:
        out["keepalive_probes"] = keepalive.probes
    for key, value in (("keepalive_time", keepalive.time), ("keepalive_interval", keepalive.interval)):
        seconds = duration(value)
        if seconds is not None:
            out[key] = int(float(seconds.rstrip("s")))
    return out


def _apply_outlier_detection(cluster: dict[str, Any], od: OutlierDetection | None) -> None:
    """``outlierDetection`` as istiod's ``applyOutlierDetection`` (success-rate ejection off, enforcement 100 %
    for each consecutive-error count set, the healthy panic threshold at ``minHealthPercent``)."""
    if od is None:
        return
    out: dict[str, Any] = {"enforcing_success_rate": 0}
    if od.consecutive_5xx_errors is not None:
        out["consecutive_5xx"] = od.consecutive_5xx_errors
        out["enforcing_consecutive_5xx"] = 100 if od.consecutive_5xx_errors > 0 else 0
    if od.consecutive_gateway_errors is not None:
        out["consecutive_gateway_failure"] = od.consecutive_gateway_errors
        out["enforcing_consecutive_gateway_failure"] = 100 if od.consecutive_gateway_errors > 0 else 0
    if od.interval is not None:
        out["interval"] = duration(od.interval)
    if od.base_ejection_time is not None:
        out["base_ejection_time"] = duration(od.base_ejection_time)
    if od.max_ejection_percent > 0:
        out["max_ejection_percent"] = od.max_ejection_percent
    if od.split_external_local_origin_errors:
        out["split_external_local_origin_errors"] = True
        if (od.consecutive_local_origin_failures or 0) > 0:
            out["consecutive_local_origin_failure"] = od.consecutive_local_origin_failures
            out["enforcing_consecutive_local_origin_failure"] = 100
        out["enforcing_local_origin_success_rate"] = 0
    cluster["outlier_detection"] = out
    if od.min_health_percent >= 0:
        cluster["common_lb_config"] = {"healthy_panic_threshold": {"value": float(od.min_health_percent)}}


_SIMPLE = {
    "LEAST_CONN": "LEAST_REQUEST",
    "LEAST_REQUEST": "LEAST_REQUEST",
    "RANDOM": "RANDOM",
    "ROUND_ROBIN": "ROUND_ROBIN",
}


def _apply_load_balancer(cluster: dict[str, Any], lb: LoadBalancerSettings | None, settings: MeshSettings) -> None:
    """``loadBalancer`` as istiod's ``applyLoadBalancer``: the healthy panic threshold off where istiod sends
    unhealthy endpoints; the simple algorithm (LEAST_REQUEST by default, a slow start window from
    ``warmupDurationSecs``), or a ring hash or Maglev for ``consistentHash``."""
    common = cluster.setdefault("common_lb_config", {})
    if settings.send_unhealthy_endpoints and "healthy_panic_threshold" not in common:
        common["healthy_panic_threshold"] = {"value": 0.0}
    if lb is None:
        return
    cluster["lb_policy"] = _SIMPLE.get(lb.simple or "", "LEAST_REQUEST")
    if lb.warmup_duration_secs is not None and cluster["lb_policy"] in ("ROUND_ROBIN", "LEAST_REQUEST"):
        key = "round_robin_lb_config" if cluster["lb_policy"] == "ROUND_ROBIN" else "least_request_lb_config"
        cluster[key] = {"slow_start_config": {"slow_start_window": duration(lb.warmup_duration_secs)}}
    ch = lb.consistent_hash
    if ch is None:
        return
    if ch.maglev is not None:
        cluster["lb_policy"] = "MAGLEV"
        if ch.maglev.get("tableSize"):
            cluster["maglev_lb_config"] = {"table_size": ch.maglev["tableSize"]}
    elif ch.ring_hash is not None:
        cluster["lb_policy"] = "RING_HASH"
        if ch.ring_hash.get("minimumRingSize"):
            cluster["ring_hash_lb_config"] = {"minimum_ring_size": ch.ring_hash["minimumRingSize"]}
    else:
        cluster["lb_policy"] = "RING_HASH"
        cluster["ring_hash_lb_config"] = {"minimum_ring_size": ch.minimum_ring_size or 1024}


def _upstream_protocol(port: ServicePortInfo, proxy: Proxy) -> dict[str, Any] | None:
    """The HTTP protocol toward the port's endpoints, as istiod sets it (``cluster_builder.go``): HTTP/2 for
    HTTP2 and gRPC ports, the downstream's protocol for a sniffed port on a sidecar, else none (HTTP/1.1)."""
    if is_http2(port.protocol):
        return {"explicit_http_config": {"http2_protocol_options": {}}}
    if port.protocol == SNIFFED and proxy.kind == "sidecar":
        return {"use_downstream_protocol_config": dict(_DOWNSTREAM)}
    return None


def _protocol_options(upstream: dict[str, Any], idle_timeout: str | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"@type": f"type.googleapis.com/{HTTP_PROTOCOL_OPTIONS}", **upstream}
    if idle_timeout is not None:
        options["common_http_protocol_options"] = {"idle_timeout": idle_timeout}
    return {HTTP_PROTOCOL_OPTIONS: options}


def _apply_tls(
    out: ClusterSet,
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    svc: MeshService,
    port: int,
    subset: str,
    dr: MergedDestinationRule | None,
    tls: ClientTLSSettings,
    cluster: dict[str, Any],
) -> None:
    assert dr is not None
    rule = dr.first
    where = ("translate", "DestinationRule", rule.metadata.namespace, rule.metadata.name)
    if tls.mode == "ISTIO_MUTUAL":
        socket, names = upstream_tls(
            tls,
            lambda n: placement.config_source("sds", n),
            fallback_sans=svc.service_accounts(cfg.settings.trust_domain),
            verify_at_client=cfg.settings.verify_certificate_at_client,
            pod_file=placement.pod_file,
            mesh_sni=istio_mutual_sni(port, svc.hostname, subset),
            http2=_http2(cluster),
        )
        cluster["transport_socket"] = socket
        out.sds_names += names
        return
    if (
        proxy.kind == "sidecar"
        and tls.credential_name
        and not tls.credential_name.startswith("configmap://")
        and rule.spec.workload_selector is None
        and tls.mode in ("SIMPLE", "MUTUAL")
    ):
        out.warnings.append(
            ConfigWarning(
                *where,
                f"{_tls_field(dr, tls)}.credentialName",
                f"sidecar {proxy.namespace}/{proxy.name} ignores credentialName without a workloadSelector: "
                f"{cluster['name']} goes out in plain text (as in Istio, lint MB201)",
            )
        )
        return
    socket, names = upstream_tls(
        tls,
        lambda n: placement.config_source("sds", n),
        fallback_sans=svc.subject_alt_names,
        verify_at_client=cfg.settings.verify_certificate_at_client,
        pod_file=placement.pod_file,
        http2=_http2(cluster),
    )
    if socket is None:
        if tls.mode == "MUTUAL":
            out.warnings.append(
                ConfigWarning(
                    *where,
                    _tls_field(dr, tls),
                    f"mode MUTUAL names neither credentialName nor both clientCertificate and privateKey: istiod "
                    f"builds no TLS for {cluster['name']}, which sends plain text (as in Istio, lint MB204)",
                )
            )
        return
    cluster["transport_socket"] = socket
    cluster["metadata"]["filter_metadata"]["istio"]["alpn_override"] = "false"
    out.sds_names += names
    if not tls.sni and cfg.settings.auto_sni:
        sans = tls.subject_alt_names or svc.subject_alt_names
        options: dict[str, Any] = {"auto_sni": True}
        if not sans and not tls.insecure_skip_verify:
            options["auto_san_validation"] = True
        # merged into the port's protocol options, if any, as istiod's one HttpProtocolOptions per cluster
        merged = cluster.setdefault("typed_extension_protocol_options", _protocol_options({}))
        http = merged[HTTP_PROTOCOL_OPTIONS]
        http["upstream_http_protocol_options"] = options
        if not any(k in http for k in ("explicit_http_config", "use_downstream_protocol_config", "auto_config")):
            http["explicit_http_config"] = {"http_protocol_options": {}}  # Envoy requires one; HTTP/1.1


def _tls_field(dr: MergedDestinationRule, tls: ClientTLSSettings) -> str:
    """Where ``tls`` sits in its DestinationRule, e.g. ``spec.trafficPolicy.portLevelSettings[0].tls``."""
    return next(
        (at for rule in dr.rules for at, block, _, _ in tls_settings(rule) if block is tls), "spec.trafficPolicy.tls"
    )


def _http2(cluster: dict[str, Any]) -> bool:
    """The cluster speaks HTTP/2 to its endpoints (istiod's ``isHttp2Cluster``, asked once the connection pool
    has set the protocol)."""
    options = cluster.get("typed_extension_protocol_options", {}).get(HTTP_PROTOCOL_OPTIONS, {})
    return "http2_protocol_options" in options.get("explicit_http_config", {})


def _lb_endpoint(address: str, port: int) -> dict[str, Any]:
    return {"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}


def dns_settings(placement: Placement) -> dict[str, Any]:
    """A DNS cluster's resolver settings, as istiod writes them, resolving through the placement's DNS server."""
    resolver: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
        "udp_max_queries": 100,
    }
    if placement.resolver is not None:
        ip, port = placement.resolver
        resolver["resolvers"] = [{"socket_address": {"address": ip, "port_value": port}}]
        resolver["dns_resolver_options"] = {"no_default_search_domain": True}
    return {
        "dns_lookup_family": "V4_ONLY",
        "dns_refresh_rate": "60s",
        "respect_dns_ttl": True,
        "dns_jitter": "0.100s",
        "typed_dns_resolver_config": {"name": "envoy.network.dns_resolver.cares", "typed_config": resolver},
    }


def _circuit_breakers(settings: MeshSettings) -> dict[str, Any]:
    limits = {"max_connections": MAX, "max_pending_requests": MAX, "max_requests": MAX, "max_retries": MAX}
    return {"thresholds": [limits | ({"track_remaining": True} if settings.track_remaining else {})]}


def _metadata(svc: MeshService, dr: MergedDestinationRule | None, subset: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"services": [{"host": svc.hostname, "name": svc.hostname, "namespace": svc.namespace}]}
    if svc.external:
        meta["external"] = True
    if dr is not None:
        meta["config"] = dr_config_path(dr.first.metadata.namespace, dr.first.metadata.name)
    if subset:
        meta["subset"] = subset
    return meta
