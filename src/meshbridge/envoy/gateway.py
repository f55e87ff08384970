"""Listeners and route configurations of a gateway (``router``) proxy, as istiod builds them.

Sources (istio/istio): ``pilot/pkg/networking/core/gateway.go`` (``buildGatewayListeners``,
``buildGatewayHTTPRouteConfig``), ``pilot/pkg/model/gateway.go`` (``MergeGateways``, ``resolvePorts``,
``gatewayRDSRouteName``, ``GetSNIHostsForServer``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshbridge.envoy import names
from meshbridge.envoy.authz import rbac_filters
from meshbridge.envoy.listeners import http_connection_manager, listener
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.routes import (
    ROUTE_CONFIG_DEFAULTS,
    RouteContext,
    destination,
    match_mismatch,
    translate_virtual_service,
)
from meshbridge.envoy.tls import downstream_tls
from meshbridge.istio.config import ConfigSet, ConfigWarning
from meshbridge.istio.protocol import is_http, parse
from meshbridge.istio.resources import Gateway, RouteDestination, Server, VirtualService
from meshbridge.istio.visibility import (
    MeshService,
    Proxy,
    gateway_key,
    gateways_for,
    host_matches,
    qualify_host,
    virtual_services_for_gateway,
)

_TERMINATING = ("SIMPLE", "MUTUAL", "OPTIONAL_MUTUAL", "ISTIO_MUTUAL")
TCP_PROXY = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy"


@dataclass
class GatewayOutput:
    """Listeners, route configs, the destinations routes use, SDS names and warnings of one gateway, and the RBAC
    filters of its AuthorizationPolicies (the same in every connection manager: built once, shared; ``tcp_rbac``
    the network ones of its TCP filter chains)."""

    listeners: list[dict[str, Any]] = field(default_factory=list)
    route_configs: list[dict[str, Any]] = field(default_factory=list)
    destinations: set[tuple[str, int, str]] = field(default_factory=set)
    sds_names: list[str] = field(default_factory=list)
    warnings: list[ConfigWarning] = field(default_factory=list)
    rbac: list[dict[str, Any]] = field(default_factory=list)
    tcp_rbac: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class _BoundServer:
    gateway: Gateway
    server: Server
    target_port: int


def build_gateway(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    find_service: Callable[[str], MeshService | None],
) -> GatewayOutput:
    """Everything the gateway's listeners and routes need, from the Gateways that select its pod."""
    out = GatewayOutput(rbac=rbac_filters(cfg, proxy), tcp_rbac=rbac_filters(cfg, proxy, tcp=True))
    by_port: dict[tuple[int, str | None], list[_BoundServer]] = defaultdict(list)
    for gw in gateways_for(cfg, proxy):
        for server in gw.spec.servers:
            target = resolve_port(proxy, server.port.number)
            if target < 1024:
                out.warnings.append(
                    _warn(
                        gw,
                        "spec.servers.port",
                        f"listener 0.0.0.0_{target} binds a privileged port: the istio/gateway chart's pods can "
                        "(it sets the sysctl net.ipv4.ip_unprivileged_port_start=0), but a non-root gateway pod "
                        "without it (the IstioOperator's) cannot and rejects its whole listener update; for those, "
                        f"the gateway Service needs port {server.port.number} with an unprivileged targetPort",
                    )
                )
            by_port[(target, server.bind)].append(_BoundServer(gw, server, target))
    for (target, bind), bound in sorted(by_port.items(), key=lambda kv: kv[0][0]):
        chains: list[dict[str, Any]] = []
        http = [b for b in bound if server_kind(b.server) == "http"]
        tls = [b for b in bound if server_kind(b.server) == "https"]
        l4 = [b for b in bound if server_kind(b.server) == "l4"]
        if http and (tls or l4):
            out.warnings.append(
                _warn(
                    (tls or l4)[0].gateway,
                    "spec.servers",
                    f"port {target} mixes plain HTTP and TLS or TCP servers; istiod rejects the conflict, "
                    "the TLS and TCP servers are ignored",
                )
            )
            tls, l4 = [], []
        if http:
            chains.append(_http_chain(cfg, proxy, placement, http, target, bind, find_service, out))
        seen_hosts: set[str] = set()
        for b in tls:
            chain = _tls_chain(cfg, proxy, placement, b, bind, find_service, seen_hosts, out)
            if chain is not None:
                chains.append(chain)
        for b in l4:
            chains += _l4_chains(cfg, proxy, placement, b, find_service, out)
        if chains:
            tls_inspector = any("filter_chain_match" in c for c in chains)
            out.listeners.append(
                listener(names.listener_name(target), target, placement, chains, tls_inspector=tls_inspector)
            )
    return out


def resolve_port(proxy: Proxy, number: int) -> int:
    """The listener port of a server: the targetPort of the first Service port equal to it, else itself."""
    if proxy.service is not None:
        for p in proxy.service.spec.ports:
            if p.port == number:
                return p.target_port if isinstance(p.target_port, int) else number
    return number


def server_kind(server: Server) -> str:
    """``http`` (plain HTTP, HTTP/2, gRPC), ``https`` (TLS terminated, then HTTP) or ``l4`` (TCP and every TLS
    server that is not HTTP: passthrough by SNI, or terminated then forwarded as TCP), as istiod's
    ``gateway.go`` tells a server's listener protocol."""
    protocol = parse(server.port.protocol)
    mode = server.tls.mode if server.tls is not None else None
    if is_http(protocol):
        return "http"  # a tls block here only redirects to HTTPS
    if protocol == "HTTPS" and mode in _TERMINATING:
        return "https"
    return "l4"


def _l4_chains(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    b: _BoundServer,
    find_service: Callable[[str], MeshService | None],
    out: GatewayOutput,
) -> list[dict[str, Any]]:
    """Filter chains of a TCP or non-HTTP TLS server: each ``tls`` route's SNI hosts to a ``tcp_proxy`` for a
    PASSTHROUGH server (``buildGatewayNetworkFiltersFromTLSRoutes``); the first ``tcp`` route that applies for
    a TCP server or a terminated TLS one (``buildGatewayNetworkFiltersFromTCPRoutes``)."""
    server = b.server
    mode = server.tls.mode if server.tls is not None else None
    if mode == "AUTO_PASSTHROUGH":
        out.warnings.append(
            _warn(
                b.gateway,
                "spec.servers.tls.mode",
                "AUTO_PASSTHROUGH (multi-network east-west, SNI of the form outbound_.<port>_.<subset>_.<host>) "
                "is not modelled; skipped",
            )
        )
        return []
    key = gateway_key(b.gateway)
    ctx = RouteContext.of(cfg, proxy, key, server.port.number, find_service)
    hosts = _server_hosts(b)
    bound = []
    for vs in virtual_services_for_gateway(cfg, proxy, key, hosts):
        admitted = _ServerHosts.admitting(b, vs.metadata.namespace)
        if admitted.intersect([qualify_host(h, vs.metadata.namespace) for h in vs.spec.hosts]):
            bound.append(vs)
    if mode == "PASSTHROUGH":
        chains, seen = [], set()
        for vs in bound:
            for tls_route in vs.spec.tls:
                for m in tls_route.match:
                    if match_mismatch(m, vs, ctx) is not None:
                        continue
                    sni = [h for h in m.sni_hosts if any(host_matches(s, h) or host_matches(h, s) for s in hosts)]
                    if not sni or frozenset(sni) in seen:
                        continue
                    seen.add(frozenset(sni))
                    chains.append(
                        {
                            "filter_chain_match": {"server_names": sni},
                            "filters": [*out.tcp_rbac, _tcp_proxy(tls_route.route, vs, ctx, out)],
                            "transport_socket_connect_timeout": "15s",
                        }
                    )
        return chains
    for vs in bound:
        for tcp_route in vs.spec.tcp:
            if tcp_route.match and all(match_mismatch(m, vs, ctx) is not None for m in tcp_route.match):
                continue
            chain: dict[str, Any] = {
                "filters": [*out.tcp_rbac, _tcp_proxy(tcp_route.route, vs, ctx, out)],
                "transport_socket_connect_timeout": "15s",
            }
            if server.tls is not None and mode in _TERMINATING:
                chain["transport_socket"], sds = downstream_tls(
                    server.tls, lambda n: placement.config_source("sds", n), pod_file=placement.pod_file
                )
                out.sds_names += sds
                if "*" not in hosts:
                    chain["filter_chain_match"] = {"server_names": sorted(set(hosts))}
            return [chain]
    out.warnings.append(
        _warn(
            b.gateway,
            "spec.servers",
            f"no VirtualService bound to this {server.port.protocol} server on port {server.port.number} has a "
            "tcp route that applies: istiod builds no filter chain for it",
        )
    )
    return []


def _tcp_proxy(
    destinations: list[RouteDestination], vs: VirtualService, ctx: RouteContext, out: GatewayOutput
) -> dict[str, Any]:
    """Envoy's ``tcp_proxy`` to one cluster, or to weighted clusters, for the route's destinations."""
    clusters = []
    for rd in destinations:
        host, port, subset = destination(rd.destination, vs.metadata.namespace, ctx)
        out.destinations.add((host, port, subset))
        clusters.append((names.cluster_name(port, host, subset), rd.weight))
    config: dict[str, Any] = {"@type": TCP_PROXY}
    if len(clusters) == 1:
        config.update({"stat_prefix": clusters[0][0], "cluster": clusters[0][0]})
    else:
        config["stat_prefix"] = "weighted"
        config["weighted_clusters"] = {"clusters": [{"name": n, "weight": w or 0} for n, w in clusters]}
    return {"name": "envoy.filters.network.tcp_proxy", "typed_config": config}


def _http_chain(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    bound: list[_BoundServer],
    target: int,
    bind: str | None,
    find_service: Callable[[str], MeshService | None],
    out: GatewayOutput,
) -> dict[str, Any]:
    route_name = names.http_route_name(target, bind)
    merged: dict[str, dict[str, Any]] = {}  # servers on one port share one route config: merge vhosts by name
    for b in bound:
        found = _vhosts(cfg, proxy, b, find_service, out)
        if b.server.tls is not None and b.server.tls.https_redirect:
            # istiod keeps the bound routes and requires TLS on every virtual host of the server (a 301 to
            # https before any route is matched); a host no VirtualService binds gets a vhost of its own
            for vh in found:
                vh["require_tls"] = "ALL"
            have = {d for vh in found for d in vh["domains"]}
            found += [_redirect_vhost(h, b.server.port.number) for h in _server_hosts(b) if h.lower() not in have]
        for vh in found:
            if vh["name"] in merged:
                merged[vh["name"]]["routes"] = sorted(merged[vh["name"]]["routes"] + vh["routes"], key=_catch_all_last)
                if "require_tls" in vh:
                    merged[vh["name"]]["require_tls"] = vh["require_tls"]
            else:
                merged[vh["name"]] = vh
    _add_route_config(out, route_name, [merged[k] for k in sorted(merged)], bound[0].server.port.number)
    stat = f"outbound_0.0.0.0_{target}" + cfg.settings.stat_suffix
    return {
        "filters": [http_connection_manager(route_name, stat, placement, gateway=True, rbac=out.rbac)],
        "transport_socket_connect_timeout": "15s",
    }


def _tls_chain(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    b: _BoundServer,
    bind: str | None,
    find_service: Callable[[str], MeshService | None],
    seen_hosts: set[str],
    out: GatewayOutput,
) -> dict[str, Any] | None:
    server = b.server
    assert server.tls is not None
    hosts = sorted({h.split("/", 1)[-1] for h in server.hosts})
    dup = [h for h in hosts if h in seen_hosts]
    if dup:
        out.warnings.append(
            _warn(
                b.gateway,
                "spec.servers.hosts",
                f"host {dup[0]} is already served on port {b.target_port}; istiod skips this duplicate server",
            )
        )
        return None
    seen_hosts.update(hosts)
    socket, sds = downstream_tls(server.tls, lambda n: placement.config_source("sds", n), pod_file=placement.pod_file)
    out.sds_names += sds
    route_name = names.https_route_name(
        server.port.number, server.port.name, b.gateway.metadata.name, b.gateway.metadata.namespace, bind
    )
    _add_route_config(out, route_name, _vhosts(cfg, proxy, b, find_service, out), server.port.number)
    chain: dict[str, Any] = {
        "filters": [
            http_connection_manager(
                route_name,
                f"outbound_0.0.0.0_{b.target_port}" + cfg.settings.stat_suffix,
                placement,
                gateway=True,
                rbac=out.rbac,
            )
        ],
        "transport_socket": socket,
        "transport_socket_connect_timeout": "15s",
    }
    if "*" not in hosts:
        chain["filter_chain_match"] = {"server_names": hosts}
    return chain


def _server_hosts(b: _BoundServer) -> list[str]:
    return [h.split("/", 1)[-1] for h in b.server.hosts]


def _vhosts(
    cfg: ConfigSet,
    proxy: Proxy,
    b: _BoundServer,
    find_service: Callable[[str], MeshService | None],
    out: GatewayOutput,
) -> list[dict[str, Any]]:
    """Virtual hosts of one server: every bound, visible VirtualService whose hosts meet the server's and that has
    HTTP routes for the server's port (istiod's ``BuildHTTPRoutesForVirtualService`` answers "no routes matched"
    for one with only ``tls``/``tcp`` routes, or whose ``http`` routes all match other ports, and the gateway
    skips it: no virtual host of its own)."""
    key = gateway_key(b.gateway)
    port = b.server.port.number
    ctx = RouteContext.of(cfg, proxy, key, port, find_service)
    by_domain: dict[str, list[dict[str, Any]]] = {}
    admitted: dict[str, _ServerHosts] = {}  # by the VirtualService's namespace
    for vs in virtual_services_for_gateway(cfg, proxy, key, _server_hosts(b)):
        ns = vs.metadata.namespace
        hosts = admitted.get(ns) or admitted.setdefault(ns, _ServerHosts.admitting(b, ns))
        domains = hosts.intersect([qualify_host(h, ns) for h in vs.spec.hosts])
        if not domains:
            continue
        routes, used = translate_virtual_service(vs, ctx)
        if not routes:
            continue
        out.destinations |= used
        for d in domains:
            by_domain.setdefault(d, []).extend(routes)
    vhosts = []
    for domain in sorted(by_domain):
        routes = sorted(by_domain[domain], key=_catch_all_last)
        vhosts.append(
            {
                "name": names.vhost_name(domain, port),
                "domains": [domain],
                "routes": routes,
                "include_request_attempt_count": True,
            }
        )
    return vhosts


@dataclass(frozen=True)
class _ServerHosts:
    """The hosts of one server that admit VirtualServices of one namespace, split exact / wildcard."""

    allowed: tuple[str, ...]
    exact: frozenset[str]
    wild: tuple[str, ...]

    @classmethod
    def admitting(cls, b: _BoundServer, vs_namespace: str) -> _ServerHosts:
        """A server host ``ns/host`` only admits VirtualServices of ``ns`` (``.``: the Gateway's namespace)."""
        allowed = tuple(
            host.lower()
            for ns, _, host in (raw.rpartition("/") for raw in b.server.hosts)
            if not ns or ns in ("*", vs_namespace) or (ns == "." and vs_namespace == b.gateway.metadata.namespace)
        )
        return cls(allowed, frozenset(h for h in allowed if "*" not in h), tuple(h for h in allowed if "*" in h))

    def intersect(self, vs_hosts: list[str]) -> list[str]:
        """Domains a VirtualService contributes: the more specific host of each matching pair."""
        domains: set[str] = set()
        for vh in (v.lower() for v in vs_hosts):
            if "*" not in vh:
                if vh in self.exact or any(host_matches(w, vh) for w in self.wild):
                    domains.add(vh)
                continue
            domains.update(h for h in self.allowed if host_matches(vh, h))  # the VirtualService's wildcard is wider
            domains.update(vh for w in self.wild if host_matches(w, vh))
        return sorted(domains)


def _catch_all_last(route: dict[str, Any]) -> int:
    m = route.get("match", {})
    return 1 if m.get("prefix") == "/" and "headers" not in m else 0


def _add_route_config(out: GatewayOutput, name: str, vhosts: list[dict[str, Any]], port: int) -> None:
    if not vhosts:
        vhosts = [{"name": f"blackhole:{port}", "domains": ["*"], "routes": []}]
    out.route_configs.append({"name": name, "virtual_hosts": _collapse(vhosts), **ROUTE_CONFIG_DEFAULTS})


def _collapse(vhosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Virtual hosts that carry the very same routes (one VirtualService's, for several of its hosts) become one,
    named after the most specific host (Istio's ``host.MoreSpecific``: exact before wildcard, longest first, then
    alphabetical), with every host as a domain: istiod's ``collapseDuplicateRoutes``
    (``PILOT_ENABLE_ROUTE_COLLAPSE_OPTIMIZATION``, on by default)."""
    kept: list[dict[str, Any]] = []
    by_routes: dict[tuple[object, ...], dict[str, Any]] = {}  # (require_tls, the very routes) → the kept one
    for vh in sorted(vhosts, key=lambda v: _specificity(v["domains"][0])):
        key = (vh.get("require_tls"), *map(id, vh["routes"]))  # the routes live as long as vhosts: ids stay theirs
        twin = by_routes.get(key) if vh["routes"] else None
        if twin is not None:
            twin["domains"] = [*twin["domains"], *vh["domains"]]
        else:
            kept.append(vh)
            by_routes.setdefault(key, vh)
    return kept


def _specificity(host: str) -> tuple[bool, int, str]:
    """Sort key of Istio's ``host.MoreSpecific``: exact hosts before wildcards, longer first, then alphabetical."""
    return host.startswith("*"), -len(host), host


def _redirect_vhost(host: str, port: int) -> dict[str, Any]:
    host = host.lower()
    return {
        "name": names.vhost_name(host, port),
        "domains": [host],
        "require_tls": "ALL",
        "routes": [],
        "include_request_attempt_count": True,
    }


def _warn(gw: Gateway, path: str, message: str) -> ConfigWarning:
    return ConfigWarning("translate", "Gateway", gw.metadata.namespace, gw.metadata.name, path, message)
