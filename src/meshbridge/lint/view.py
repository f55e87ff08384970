"""Reading a translated proxy (:class:`~meshbridge.envoy.translate.ProxyConfig`) the way checks need it (pure).

Checks about what a proxy actually gets (which clusters exist, which TLS a cluster originates, which
secret is served, which filter chain an SNI selects) read it here, from the translation, never from a
parallel guess.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from meshbridge.envoy.clusters import HTTP_PROTOCOL_OPTIONS
from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.istio.visibility import Proxy, host_matches

_VS_PREFIX = "/apis/networking.istio.io/v1/namespaces/"


@dataclass(frozen=True)
class RouteRef:
    """One Envoy route and where it came from.

    Attributes:
        route_config: the route configuration's name (``http.8080``, ``80``, ``https.443.https.gw.ns``).
        vhost: the virtual host's name; ``domains`` its domains.
        clusters: the clusters it sends to (one, or the weighted ones).
        virtual_service: ``(namespace, name)`` of the VirtualService it came from; ``None`` for defaults.
        host_rewrite: the ``Host`` it sends upstream instead of the request's, if any.
        has_action: it forwards somewhere (not a direct response).
    """

    route_config: str
    vhost: str
    domains: tuple[str, ...]
    clusters: tuple[str, ...]
    virtual_service: tuple[str, str] | None
    host_rewrite: str | None
    has_action: bool


@dataclass(frozen=True)
class ChainRef:
    """One listener filter chain: its port, SNI match, TLS context and route configuration."""

    port: int
    server_names: tuple[str, ...] | None
    tls: dict[str, Any] | None
    route_config: str | None

    @property
    def require_client_certificate(self) -> bool:
        """MUTUAL: the chain demands a client certificate."""
        return bool(self.tls and self.tls.get("require_client_certificate"))

    def matches_sni(self, sni: str | None) -> bool:
        """Whether a ClientHello with ``sni`` selects this chain (a chain without SNI match takes anything)."""
        if self.server_names is None:
            return True
        return sni is not None and any(host_matches(n, sni) for n in self.server_names)


class ProxyView:
    """Routes, clusters, endpoints, listener chains and served secrets of one translated proxy."""

    def __init__(self, mesh: str, pc: ProxyConfig) -> None:
        self.mesh = mesh
        self.pc = pc
        self.proxy: Proxy = pc.proxy
        self.memo: dict[tuple[str, str], Any] = {}  # for derived facts other modules compute once per proxy

    @property
    def name(self) -> str:
        """``<mesh>/<workload>``."""
        return f"{self.mesh}/{self.proxy.name}"

    @cached_property
    def routes(self) -> list[RouteRef]:
        """Every route of every route configuration."""
        out = []
        for rc in self.pc.route_configs:
            for vh in rc.get("virtual_hosts", []):
                for r in vh.get("routes", []):
                    action = r.get("route")
                    clusters: tuple[str, ...] = ()
                    rewrite = None
                    if action is not None:
                        if "cluster" in action:
                            clusters = (action["cluster"],)
                        elif "weighted_clusters" in action:
                            clusters = tuple(c["name"] for c in action["weighted_clusters"]["clusters"])
                        rewrite = action.get("host_rewrite_literal")
                    out.append(
                        RouteRef(
                            rc["name"],
                            vh.get("name", ""),
                            tuple(vh.get("domains", [])),
                            clusters,
                            _vs_of(r),
                            rewrite,
                            action is not None,
                        )
                    )
        return out

    @cached_property
    def clusters(self) -> dict[str, dict[str, Any]]:
        """Clusters by name."""
        return {c["name"]: c for c in self.pc.clusters}

    @cached_property
    def routed(self) -> dict[str, list[RouteRef]]:
        """Cluster name → the routes that send to it (special clusters left out)."""
        out: dict[str, list[RouteRef]] = {}
        for r in self.routes:
            for c in r.clusters:
                if parse_cluster_name(c) is not None:
                    out.setdefault(c, []).append(r)
        return out

    @cached_property
    def routed_hosts(self) -> set[str]:
        """Lower-cased hosts of the clusters the proxy's routes send to."""
        return {host_of(c).lower() for c in self.routed}

    @cached_property
    def cluster_hosts(self) -> set[str]:
        """Hosts of the proxy's (subset-key) clusters."""
        return {host_of(c) for c in self.clusters if parse_cluster_name(c) is not None}

    @cached_property
    def _assignments(self) -> dict[str, dict[str, Any]]:
        return {cla["cluster_name"]: cla for cla in self.pc.endpoints}

    def endpoints(self, cluster: str) -> list[tuple[str, int]]:
        """(address, port) of the cluster's endpoints, inline (DNS clusters) or from EDS."""
        c = self.clusters.get(cluster)
        if c is None:
            return []
        cla = c.get("load_assignment") or self._assignments.get(cluster) or {}
        out = []
        for group in cla.get("endpoints", []):
            for lb in group.get("lb_endpoints", []):
                sa = lb["endpoint"]["address"]["socket_address"]
                out.append((sa["address"], int(sa["port_value"])))
        return out

    def upstream_tls(self, cluster: str) -> dict[str, Any] | None:
        """The cluster's UpstreamTlsContext, or ``None`` when it sends plain text."""
        c = self.clusters.get(cluster) or {}
        socket = c.get("transport_socket")
        return socket["typed_config"] if socket else None

    def auto_sni(self, cluster: str) -> tuple[bool, bool]:
        """(``auto_sni``, ``auto_san_validation``) of the cluster's HTTP protocol options."""
        c = self.clusters.get(cluster) or {}
        opts = (c.get("typed_extension_protocol_options") or {}).get(HTTP_PROTOCOL_OPTIONS, {})
        up = opts.get("upstream_http_protocol_options", {})
        return bool(up.get("auto_sni")), bool(up.get("auto_san_validation"))

    @cached_property
    def chains(self) -> list[ChainRef]:
        """Every listener filter chain."""
        out = []
        for lst in self.pc.listeners:
            port = int(lst["address"]["socket_address"]["port_value"])
            for chain in lst.get("filter_chains", []):
                match = chain.get("filter_chain_match") or {}
                names = match.get("server_names")
                socket = chain.get("transport_socket")
                rds = None
                for f in chain.get("filters", []):
                    rds = (f.get("typed_config", {}).get("rds") or {}).get("route_config_name", rds)
                out.append(
                    ChainRef(port, tuple(names) if names else None, socket["typed_config"] if socket else None, rds)
                )
        return out

    def listener_ports(self) -> set[int]:
        """Ports the proxy's listeners bind."""
        return {c.port for c in self.chains}

    @cached_property
    def _chain_index(self) -> dict[int, tuple[dict[str, ChainRef], list[ChainRef], list[ChainRef]]]:
        index: dict[int, tuple[dict[str, ChainRef], list[ChainRef], list[ChainRef]]] = {}
        for c in self.chains:
            exact, wild, any_ = index.setdefault(c.port, ({}, [], []))
            if c.server_names is None:
                any_.append(c)
                continue
            for n in c.server_names:
                if n.startswith("*"):
                    wild.append(c)
                else:
                    exact.setdefault(n.lower(), c)
        return index

    @cached_property
    def _chains_by_port(self) -> dict[int, list[ChainRef]]:
        out: dict[int, list[ChainRef]] = {}
        for c in self.chains:
            out.setdefault(c.port, []).append(c)
        return out

    def chains_on(self, port: int) -> list[ChainRef]:
        """The filter chains of the listener on ``port``."""
        return self._chains_by_port.get(port, [])

    def tls_chains_on(self, port: int) -> tuple[list[ChainRef], bool]:
        """(the chains on ``port`` that terminate TLS, whether any of them demands a client certificate)."""
        key = ("tls-chains", str(port))
        if key not in self.memo:
            chains = [c for c in self.chains_on(port) if c.tls is not None]
            self.memo[key] = (chains, any(c.require_client_certificate for c in chains))
        found: tuple[list[ChainRef], bool] = self.memo[key]
        return found

    def select_chain(self, port: int, sni: str | None) -> ChainRef | None:
        """The chain Envoy picks on ``port`` for a ClientHello with ``sni``: an exact server name first, then the
        longest matching wildcard, then a chain without server names; ``None``: no chain (filter_chain_not_found)."""
        exact, wild, any_ = self._chain_index.get(port, ({}, [], []))
        if sni:
            if sni.lower() in exact:
                return exact[sni.lower()]
            matches = [
                (len(n), c) for c in wild for n in c.server_names or () if n.startswith("*") and host_matches(n, sni)
            ]
            if matches:
                return max(matches, key=lambda m: m[0])[1]
        return any_[0] if any_ else None

    @cached_property
    def _route_configs(self) -> dict[str, dict[str, Any]]:
        return {rc["name"]: rc for rc in self.pc.route_configs}

    def route_config(self, name: str) -> dict[str, Any] | None:
        """The route configuration called ``name``."""
        return self._route_configs.get(name)

    def secret(self, name: str) -> dict[str, Any] | None:
        """The SDS resource served under ``name``, or ``None`` when istiod would serve none."""
        return self.pc.secrets.get(name)


def host_of(cluster: str) -> str:
    """The host of a subset-key cluster name (``outbound|443||h`` → ``h``); the name itself otherwise."""
    parsed = parse_cluster_name(cluster)
    return parsed[3] if parsed is not None else cluster


def sds_names(common: dict[str, Any]) -> tuple[list[str], str | None]:
    """(certificate SDS names, validation SDS name) of a CommonTlsContext."""
    certs = [s["name"] for s in common.get("tls_certificate_sds_secret_configs", [])]
    cvc = common.get("combined_validation_context") or {}
    ca = (cvc.get("validation_context_sds_secret_config") or {}).get("name")
    return certs, ca


def san_pins(common: dict[str, Any]) -> list[str]:
    """The exact SAN values a validation context pins."""
    cvc = common.get("combined_validation_context") or {}
    default = cvc.get("default_validation_context") or {}
    return sorted({m["matcher"]["exact"] for m in default.get("match_typed_subject_alt_names", [])})


def inline(data: dict[str, Any] | None) -> bytes:
    """The bytes of an ``inline_bytes`` data source (``b""`` for anything else)."""
    if not data or "inline_bytes" not in data:
        return b""
    return base64.b64decode(data["inline_bytes"])


def _vs_of(route: dict[str, Any]) -> tuple[str, str] | None:
    path = (((route.get("metadata") or {}).get("filter_metadata") or {}).get("istio") or {}).get("config", "")
    if not path.startswith(_VS_PREFIX):
        return None
    ns, _, rest = path[len(_VS_PREFIX) :].partition("/virtual-service/")
    return (ns, rest) if rest else None
