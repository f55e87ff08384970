"""A small traffic simulation over one proxy's configuration, before any Envoy runs (pure).

In the style of istio's ``pilot/pkg/simulation/traffic.go``: a request in (port, host, path, SNI, client
certificate), a result out: the listener, filter chain, route configuration, virtual host, route and
cluster Envoy would pick, or the reason none matched, with the status and response flag Envoy would give
(``NR`` no route / no filter chain, ``NC`` no cluster, ``UF`` upstream failure).

Envoy's rules reproduced: filter chains by SNI (exact beats wildcard beats none), virtual hosts by domain
(exact, then the longest ``*.suffix``, then the longest ``prefix*``, then ``*``; the port is ignored as
istiod sets ``ignore_port_in_host_matching``), routes in order by prefix, path or regex.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from meshbridge.envoy.tls import secret_refs
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.istio.envoyfilter import HCM_FILTER


@dataclass(frozen=True)
class Request:
    """A request as it reaches the proxy.

    Attributes:
        port: the listener (container) port, e.g. 8443 for a gateway server on 443.
        host: the Host / ``:authority`` header.
        path: the request path.
        tls: whether the client speaks TLS.
        sni: the TLS SNI the client sends (``None``: no SNI).
        client_cert: whether the client presents a certificate.
    """

    port: int
    host: str
    path: str = "/"
    tls: bool = False
    sni: str | None = None
    client_cert: bool = False


@dataclass(frozen=True)
class Result:
    """Where the request went, or why it stopped.

    Attributes:
        error: ``None`` when a cluster was reached; else one of ``NoListener``, ``NoFilterChain``,
            ``TLSRequired``, ``PlaintextOnTLS``, ``ClientCertRequired``, ``SecretNotReady``, ``NoRoute``,
            ``NoCluster``, ``UpstreamSecretNotReady``.
        status: the HTTP status the client would see, ``None`` when the connection fails first.
        response_flag: Envoy's response flag for the access log (``NR``, ``NC``, ``UF``), if any.
        detail: one line for a person.
    """

    listener: str | None = None
    filter_chain: int | None = None
    route_config: str | None = None
    virtual_host: str | None = None
    route: str | None = None
    cluster: str | None = None
    error: str | None = None
    status: int | None = None
    response_flag: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        """True when a cluster was reached."""
        return self.error is None


class Index:
    """``pc``'s listeners (by port), route configurations, clusters and virtual hosts by name.

    Build it once to simulate many requests on one proxy; the first resource of a name wins, as in a scan.
    """

    def __init__(self, pc: ProxyConfig) -> None:
        self.listeners: dict[str, dict[str, Any]] = {}
        for lst in pc.listeners:
            self.listeners.setdefault(lst["name"].rsplit("_", 1)[-1], lst)
        self.route_configs: dict[str, dict[str, Any]] = {}
        for rc in pc.route_configs:
            self.route_configs.setdefault(rc["name"], rc)
        self.clusters: dict[str, dict[str, Any]] = {}
        for c in pc.clusters:
            self.clusters.setdefault(c["name"], c)
        self._vhosts: dict[int, _VirtualHosts] = {}  # by id of the route configuration (inline ones too)
        self._chains: dict[int, tuple[dict[str, list[int]], list[int]]] = {}  # by id of the listener

    def chains(self, lst: dict[str, Any], sni: str | None) -> list[int]:
        """The filter chains of ``lst`` that may match ``sni``: those naming it exactly, wildcard and SNI-less ones."""
        found = self._chains.get(id(lst))
        if found is None:
            exact: dict[str, list[int]] = {}
            rest: list[int] = []
            for i, c in enumerate(lst["filter_chains"]):
                names = [n.lower() for n in c.get("filter_chain_match", {}).get("server_names", [])]
                for n in dict.fromkeys(n for n in names if not n.startswith("*")):
                    exact.setdefault(n, []).append(i)
                if not names or any(n.startswith("*") for n in names):
                    rest.append(i)
            found = self._chains[id(lst)] = (exact, rest)
        exact, rest = found
        named = exact.get(sni.lower(), []) if sni is not None else []
        return sorted({*named, *rest}) if named and rest else named or rest

    def vhosts(self, rc: dict[str, Any]) -> _VirtualHosts:
        """The virtual hosts of ``rc``, indexed by domain."""
        found = self._vhosts.get(id(rc))
        if found is None:
            found = self._vhosts[id(rc)] = _VirtualHosts(rc.get("virtual_hosts", []))
        return found


def simulate(pc: ProxyConfig, req: Request, indexed: Index | None = None) -> Result:
    """Follow ``req`` through ``pc``'s listeners, filter chains, routes and clusters.

    ``indexed``: ``Index(pc)``, when simulating many requests on ``pc`` (built here otherwise).
    """
    ix = indexed or Index(pc)
    lst = ix.listeners.get(str(req.port))
    if lst is None:
        return Result(error="NoListener", detail=f"no listener on port {req.port}: connection refused")
    name = lst["name"]
    index = _pick_chain(lst["filter_chains"], req, ix.chains(lst, req.sni))
    if index is None:
        return Result(
            listener=name,
            error="NoFilterChain",
            response_flag="NR",
            detail=f"no filter chain of {name} matches SNI {req.sni!r}: "
            "the connection is reset (NR filter_chain_not_found)",
        )
    chain = lst["filter_chains"][index]
    tls = chain.get("transport_socket", {}).get("typed_config")
    base = {"listener": name, "filter_chain": index}
    if tls is not None and not req.tls:
        return Result(
            **base, error="TLSRequired", detail=f"{name} chain {index} terminates TLS; a plain-text request is reset"
        )
    if tls is None and req.tls:
        return Result(
            **base, error="PlaintextOnTLS", detail=f"{name} chain {index} is plain text; the TLS handshake fails"
        )
    if tls is not None:
        common = tls.get("common_tls_context", {})
        for ref in common.get("tls_certificate_sds_secret_configs", []):
            if pc.secrets.get(ref["name"]) is None:
                return Result(
                    **base,
                    error="SecretNotReady",
                    detail=f"the server certificate {ref['name']} is not served: the handshake is reset",
                )
        if tls.get("require_client_certificate") and not req.client_cert:
            return Result(
                **base,
                error="ClientCertRequired",
                detail="the server requires a client certificate: the handshake fails (alert certificate required)",
            )
    hcm: dict[str, Any] = next((f.get("typed_config", {}) for f in chain["filters"] if f.get("name") == HCM_FILTER), {})
    rc_name = hcm.get("rds", {}).get("route_config_name") or hcm.get("route_config", {}).get("name")
    rc = (ix.route_configs.get(rc_name) if rc_name else None) or hcm.get("route_config")
    base["route_config"] = rc_name
    vh = ix.vhosts(rc).pick(req.host) if rc else None
    if vh is None:
        return Result(
            **base,
            error="NoRoute",
            status=404,
            response_flag="NR",
            detail=f"no virtual host of {rc_name} serves {req.host!r}: 404 NR route_not_found",
        )
    route = next((r for r in vh.get("routes", []) if _route_matches(r.get("match", {}), req.path)), None)
    if route is None:
        return Result(
            **base,
            virtual_host=vh["name"],
            error="NoRoute",
            status=404,
            response_flag="NR",
            detail=f"no route of {vh['name']} matches {req.path!r}: 404 NR route_not_found",
        )
    found = {**base, "virtual_host": vh["name"], "route": route.get("name") or _describe(route.get("match", {}))}
    if "direct_response" in route:
        status = int(route["direct_response"]["status"])
        return Result(**found, status=status, detail=f"direct response {status}")
    cluster_name = route.get("route", {}).get("cluster") or _first_weighted(route)
    cluster = ix.clusters.get(cluster_name) if cluster_name else None
    if cluster is None:
        return Result(
            **found,
            cluster=cluster_name,
            error="NoCluster",
            status=503,
            response_flag="NC",
            detail=f"route → {cluster_name}, which this proxy does not have: 503 NC cluster_not_found",
        )
    for ref in secret_refs(cluster.get("transport_socket", {})):
        if pc.secrets.get(ref) is None:
            return Result(
                **found,
                cluster=cluster_name,
                error="UpstreamSecretNotReady",
                status=503,
                response_flag="UF",
                detail=f"{cluster_name} needs secret {ref}, which is not served: 503 UF",
            )
    return Result(**found, cluster=cluster_name, detail=f"{name} → {rc_name} → {vh['name']} → {cluster_name}")


def _pick_chain(chains: list[dict[str, Any]], req: Request, candidates: list[int]) -> int | None:
    """The chain Envoy picks among ``candidates`` (indexes, ascending): exact SNI, then wildcard, then none."""
    best: tuple[int, int] | None = None
    for i in candidates:
        c = chains[i]
        m = c.get("filter_chain_match", {})
        names = m.get("server_names", [])
        if names:
            score = _sni_score(names, req.sni)
            if score < 0:
                continue
        else:
            score = 0
        proto = m.get("transport_protocol")
        if (proto == "raw_buffer" and req.tls) or (proto == "tls" and not req.tls):
            continue
        if best is None or score > best[0]:
            best = (score, i)
    return None if best is None else best[1]


def _sni_score(names: list[str], sni: str | None) -> int:
    if sni is None:
        return -1
    sni = sni.lower()
    best = -1
    for n in names:
        n = n.lower()
        if n == sni:
            return 1000
        if n.startswith("*.") and sni.endswith(n[1:]):
            best = max(best, len(n))
    return best


class _VirtualHosts:
    """Envoy's virtual host choice: the exact domain, then the longest ``*suffix``, then the longest
    ``prefix*``, then ``*``; among equals, the first virtual host."""

    def __init__(self, vhosts: list[dict[str, Any]]) -> None:
        self.exact: dict[str, dict[str, Any]] = {}
        self.star: dict[str, Any] | None = None
        self.suffixes: list[tuple[str, dict[str, Any]]] = []
        self.prefixes: list[tuple[str, dict[str, Any]]] = []
        for vh in vhosts:
            for d in (x.lower() for x in vh.get("domains", [])):
                if d == "*":
                    self.star = self.star or vh
                elif d.startswith("*"):
                    self.suffixes.append((d[1:], vh))
                elif d.endswith("*"):
                    self.prefixes.append((d[:-1], vh))
                else:
                    self.exact.setdefault(d, vh)

    def pick(self, host: str) -> dict[str, Any] | None:
        host = host.lower()
        if not host.startswith("["):
            host = host.split(":", 1)[0]
        if host in self.exact:
            return self.exact[host]
        return _longest(self.suffixes, host.endswith) or _longest(self.prefixes, host.startswith) or self.star


def _longest(patterns: list[tuple[str, dict[str, Any]]], fits: Callable[[str], bool]) -> dict[str, Any] | None:
    best: tuple[int, dict[str, Any] | None] = (-1, None)
    for part, vh in patterns:
        if len(part) > best[0] and fits(part):
            best = (len(part), vh)
    return best[1]


def _route_matches(m: dict[str, Any], path: str) -> bool:
    path = path.split("?", 1)[0]
    sensitive = m.get("case_sensitive", True)
    p, candidate = (
        (path, m) if sensitive else (path.lower(), {k: v.lower() if isinstance(v, str) else v for k, v in m.items()})
    )
    if "prefix" in candidate:
        return p.startswith(candidate["prefix"])
    if "path" in candidate:
        return p == candidate["path"]
    if "safe_regex" in m:
        return re.fullmatch(m["safe_regex"]["regex"], path) is not None
    return False


def _describe(m: dict[str, Any]) -> str:
    return str(m.get("prefix") or m.get("path") or m.get("safe_regex", {}).get("regex", ""))


def _first_weighted(route: dict[str, Any]) -> str | None:
    clusters = route.get("route", {}).get("weighted_clusters", {}).get("clusters", [])
    return clusters[0]["name"] if clusters else None
