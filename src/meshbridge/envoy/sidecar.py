"""Outbound listeners and routes of an app's sidecar, as istiod builds them.

Sources (istio/istio ``pilot/pkg/networking/core/``): ``listener.go`` (``buildSidecarOutboundListener``:
``0.0.0.0_<port>`` for HTTP ports), ``httproute.go`` (``BuildSidecarOutboundVirtualHosts``,
``buildCatchAllVirtualHost``, ``dedupeDomains``), ``route/route.go`` (``BuildDefaultHTTPOutboundRoute``).

Local difference, by necessity: there is no iptables in front of the app, so the per-port listeners bind
on the app's own address (``bind_to_port`` is false in a pod, where ``virtualOutbound`` on 15001 hands
connections over); ``meshbridge local curl`` connects to them directly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from meshbridge.envoy import names
from meshbridge.envoy.listeners import http_connection_manager, listener
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.routes import ROUTE_CONFIG_DEFAULTS, RouteContext, default_retry_policy, translate_virtual_service
from meshbridge.ipaddr import is_ip
from meshbridge.istio.config import ConfigSet, ConfigWarning, MeshSettings
from meshbridge.istio.protocol import is_http, is_tcp
from meshbridge.istio.visibility import (
    MESH_GATEWAY,
    SNIFFED,
    MeshService,
    Proxy,
    external_name_aliases,
    host_matches,
    qualify_host,
    virtual_services_for_sidecar,
)

PROXY_PORTS = frozenset({15000, 15021, 15090})
"""Ports every proxy binds for itself (admin, health, metrics): the twin's sidecar, which binds its outbound
listeners, builds none on them (docs/fidelity.md FD04)."""


@dataclass
class SidecarOutput:
    """Listeners, route configs, destinations used and warnings of one sidecar."""

    listeners: list[dict[str, Any]] = field(default_factory=list)
    route_configs: list[dict[str, Any]] = field(default_factory=list)
    destinations: set[tuple[str, int, str]] = field(default_factory=set)
    warnings: list[ConfigWarning] = field(default_factory=list)


def build_sidecar(
    cfg: ConfigSet,
    proxy: Proxy,
    placement: Placement,
    visible: list[MeshService],
    dns: dict[str, list[str]],
    find_service: Callable[[str], MeshService | None],
) -> SidecarOutput:
    """The sidecar's outbound HTTP listeners (one per port) and route configs (named by the port)."""
    out = SidecarOutput()
    by_port, sniffed = _http_ports(visible, out)
    aliases_of: dict[str, list[str]] = {}
    for alias, target in sorted(external_name_aliases(cfg).items()):
        aliases_of.setdefault(target, []).append(alias)
    for port in sorted(by_port):
        route_name = str(port)
        vhosts = [
            _service_host(cfg, proxy, port, svc, (dns, aliases_of.get(svc.hostname, [])), find_service, out)
            for svc in sorted(by_port[port], key=lambda s: s.hostname)
        ]
        vhosts += _virtual_service_hosts(cfg, proxy, port, {s.hostname for s in by_port[port]}, out)
        vhosts = _dedupe_domains(vhosts)
        vhosts.append(
            {
                "name": "allow_any",
                "domains": ["*"],
                "routes": [
                    {
                        "name": "allow_any",
                        "match": {"prefix": "/"},
                        "route": {"cluster": "PassthroughCluster", "timeout": "0s", "max_grpc_timeout": "0s"},
                    }
                ],
                "include_request_attempt_count": True,
            }
        )
        out.route_configs.append({"name": route_name, "virtual_hosts": vhosts, **ROUTE_CONFIG_DEFAULTS})
        only = sniffed[port] if len(sniffed[port]) == len(by_port[port]) == 1 else []
        out.listeners.append(_port_listener(cfg, port, placement, only[0] if only else None))
    return out


def _http_ports(
    visible: list[MeshService], out: SidecarOutput
) -> tuple[dict[int, list[MeshService]], dict[int, list[MeshService]]]:
    """The visible services by HTTP port (declared HTTP, or sniffed), and the sniffed ones by port; a warning in
    ``out`` for each other port of a ServiceEntry (only HTTP sidecar routes are modelled)."""
    by_port: dict[int, list[MeshService]] = defaultdict(list)
    sniffed: dict[int, list[MeshService]] = defaultdict(list)
    for svc in visible:
        for p in svc.ports:
            if is_http(p.protocol):
                by_port[p.number].append(svc)
            elif p.protocol == SNIFFED and p.number not in PROXY_PORTS:
                # istiod sniffs the protocol: HTTP goes through the port's routes, anything else to the service
                by_port[p.number].append(svc)
                sniffed[p.number].append(svc)
            elif is_tcp(p.protocol) and svc.entry is not None:
                out.warnings.append(
                    ConfigWarning(
                        "translate",
                        "ServiceEntry",
                        svc.namespace,
                        svc.entry.metadata.name,
                        "spec.ports",
                        f"{p.protocol} port {p.number} of {svc.hostname}: only HTTP sidecar routes are modelled "
                        "locally",
                    )
                )
    return by_port, sniffed


def _service_host(
    cfg: ConfigSet,
    proxy: Proxy,
    port: int,
    svc: MeshService,
    names_of: tuple[dict[str, list[str]], list[str]],
    find_service: Callable[[str], MeshService | None],
    out: SidecarOutput,
) -> dict[str, Any]:
    """The virtual host of one service on ``port``: the routes of the VirtualServices for its host, or the
    default route to it. ``names_of``: the DNS names allocated by host, and the service's ExternalName aliases."""
    dns, aliases = names_of
    ctx = RouteContext.of(cfg, proxy, MESH_GATEWAY, port, find_service)
    routes: list[dict[str, Any]] = []
    for vs in virtual_services_for_sidecar(cfg, proxy, [svc.hostname]):
        if any(host_matches(qualify_host(h, vs.metadata.namespace), svc.hostname) for h in vs.spec.hosts):
            found, used = translate_virtual_service(vs, ctx)
            routes += found
            out.destinations |= used
    if not routes:
        routes = [_default_route(svc, port, cfg, ctx.hash_for(svc.hostname, port, ""))]
        out.destinations.add((svc.hostname, port, ""))
    return {
        "name": names.vhost_name(svc.hostname, port),
        "domains": _domains(svc, proxy, dns, cfg.settings, aliases),
        "routes": routes,
        "include_request_attempt_count": True,
    }


def _port_listener(cfg: ConfigSet, port: int, placement: Placement, only: MeshService | None) -> dict[str, Any]:
    """The outbound listener of ``port``: HTTP to the port's route config; with the passthrough chain, what is
    not HTTP/1.1 or h2c goes to ``only`` (the port's one service, when it is sniffed), else where it was going
    (outboundTrafficPolicy ALLOW_ANY)."""
    route_name = str(port)
    chain = {
        "filter_chain_match": {
            "transport_protocol": "raw_buffer",
            "application_protocols": cfg.settings.outbound_http_alpns,
        },
        "filters": [http_connection_manager(route_name, f"outbound_0.0.0.0_{port}", placement, gateway=False)],
    }
    passthrough = cfg.settings.sidecar_passthrough_chain
    lst = listener(names.listener_name(port), port, placement, [chain], tls_inspector=not passthrough)
    lst.setdefault("listener_filters", []).append(
        {
            "name": "envoy.filters.listener.http_inspector",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector"
            },
        }
    )
    if passthrough:
        target = names.cluster_name(port, only.hostname) if only else "PassthroughCluster"
        lst["default_filter_chain"] = {
            "name": "PassthroughFilterChain" if not only else f"outbound_0.0.0.0_{port}",
            "filters": [
                {
                    "name": "envoy.filters.network.tcp_proxy",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                        "stat_prefix": target,
                        "cluster": target,
                    },
                }
            ],
        }
    return lst


def _virtual_service_hosts(
    cfg: ConfigSet,
    proxy: Proxy,
    port: int,
    served: set[str],
    out: SidecarOutput,
) -> list[dict[str, Any]]:
    """Virtual hosts on port 80 for the hosts of the sidecar's VirtualServices that no service of port 80 carries:
    istiod's fallback (``buildSidecarVirtualHostsForVirtualService``, which calls it "a gross HACK"): a
    VirtualService for ``reviews`` (a service on port 9080 only) also answers ``reviews.<ns>.svc.cluster.local``
    on port 80, and so does one for a host nothing backs. istiod looks no service up for these virtual hosts:
    the only domain is the host itself, and a destination without a port goes to port 80."""
    if port != 80:
        return []
    ctx = RouteContext.of(cfg, proxy, MESH_GATEWAY, port, lambda _: None)
    vhosts: dict[str, dict[str, Any]] = {}
    exact = {s.lower() for s in served}
    for vs in virtual_services_for_sidecar(cfg, proxy):
        hosts = [qualify_host(h, vs.metadata.namespace) for h in vs.spec.hosts]
        hosts = [h for h in hosts if h != "*" and not _overlaps(h, served, exact)]
        if not hosts:
            continue
        routes, used = translate_virtual_service(vs, ctx)
        if not routes:
            continue
        out.destinations |= used
        for host in hosts:
            vh = vhosts.setdefault(
                host,
                {
                    "name": names.vhost_name(host, port),
                    "domains": [host],
                    "routes": [],
                    "include_request_attempt_count": True,
                },
            )
            vh["routes"] = vh["routes"] + routes
    return [vhosts[h] for h in sorted(vhosts)]


def _overlaps(host: str, served: set[str], exact: set[str]) -> bool:
    """Whether a service of the port already carries the VirtualService's ``host``, as istiod's
    ``separateVSHostsAndServices`` decides: an exact ``host`` only by its own name (``exact``, lower-cased; a
    name under a served wildcard, ``orders.partner.example`` under ``*.partner.example``, is not a service and
    gets its own virtual host), a wildcard ``host`` by any served host it overlaps (``host_matches`` either way)."""
    if not host.startswith("*"):
        return host.lower() in exact
    return any(host_matches(host, s) or host_matches(s, host) for s in served)


def _dedupe_domains(vhosts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """istiod's ``dedupeDomains``: a domain goes to the first virtual host of the route configuration that has it
    (case-insensitively) and is dropped from the later ones, which Envoy would refuse ("Only unique values for
    domains are permitted"); a virtual host left without domains is dropped. Two hosts of one ServiceEntry share
    its ``addresses`` (a CIDR as well as a VIP): the first host in order keeps them."""
    seen: set[str] = set()
    out = []
    for vh in vhosts:
        domains = []
        for d in vh["domains"]:
            if d.lower() not in seen:
                seen.add(d.lower())
                domains.append(d)
        if domains:
            out.append({**vh, "domains": domains})
    return out


def _default_route(svc: MeshService, port: int, cfg: ConfigSet, hashed: dict[str, Any] | None) -> dict[str, Any]:
    cluster = names.cluster_name(port, svc.hostname)
    route: dict[str, Any] = {
        "name": "default",
        "match": {"prefix": "/"},
        "route": {
            "cluster": cluster,
            "timeout": "0s",
            "max_grpc_timeout": "0s",
            "retry_policy": default_retry_policy(cfg.settings),
        },
        "decorator": {"operation": f"{svc.hostname}:{port}/*"},
    }
    if hashed is not None:  # the DestinationRule's consistentHash (istiod BuildDefaultHTTPOutboundRoute)
        route["route"]["hash_policy"] = [hashed]
    return route


def _domains(
    svc: MeshService, proxy: Proxy, dns: dict[str, list[str]], settings: MeshSettings, aliases: list[str]
) -> list[str]:
    """istiod's ``generateVirtualHostDomains``: for the service's host and each ExternalName alias of it, the
    name, its absolute form with a trailing dot (from 1.26) and its short forms for a Kubernetes name; then
    the service's VIPs (no ``:port`` variants)."""
    out: list[str] = []
    for host in [svc.hostname, *aliases]:
        out.append(host)
        if settings.absolute_fqdn_domains and not is_ip(host):
            out.append(f"{host}.")
        suffix = ".svc.cluster.local"
        if host.endswith(suffix):
            name, ns = host[: -len(suffix)].split(".", 1)
            out += [f"{name}.{ns}.svc", f"{name}.{ns}"] + ([name] if ns == proxy.namespace else [])
    out += [a for a in (list(svc.addresses) or dns.get(svc.hostname, [])) if a not in out]
    return out
