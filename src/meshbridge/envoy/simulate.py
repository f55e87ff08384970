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
from dataclasses import dataclass
from typing import Any

from meshbridge.envoy.tls import secret_refs
from meshbridge.envoy.translate import ProxyConfig


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


def simulate(pc: ProxyConfig, req: Request) -> Result:
    """Follow ``req`` through ``pc``'s listeners, filter chains, routes and clusters."""
    lst = next((x for x in pc.listeners if x["name"].rsplit("_", 1)[-1] == str(req.port)), None)
    if lst is None:
        return Result(error="NoListener", detail=f"no listener on port {req.port}: connection refused")
    name = lst["name"]
    index = _pick_chain(lst["filter_chains"], req)
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
    hcm = chain["filters"][0]["typed_config"]
    rc_name = hcm.get("rds", {}).get("route_config_name") or hcm.get("route_config", {}).get("name")
    rc = next((r for r in pc.route_configs if r["name"] == rc_name), hcm.get("route_config"))
    base["route_config"] = rc_name
    vh = _pick_vhost(rc.get("virtual_hosts", []) if rc else [], req.host)
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
    cluster = next((c for c in pc.clusters if c["name"] == cluster_name), None)
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


def _pick_chain(chains: list[dict[str, Any]], req: Request) -> int | None:
    best: tuple[int, int] | None = None
    for i, c in enumerate(chains):
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


def _pick_vhost(vhosts: list[dict[str, Any]], host: str) -> dict[str, Any] | None:
    host = host.lower()
    if not host.startswith("["):
        host = host.split(":", 1)[0]
    exact: dict[str, Any] | None = None
    star: dict[str, Any] | None = None
    suffix: tuple[int, dict[str, Any] | None] = (0, None)
    prefix: tuple[int, dict[str, Any] | None] = (0, None)
    for vh in vhosts:
        for d in (x.lower() for x in vh.get("domains", [])):
            if d == host:
                exact = exact or vh
            elif d == "*":
                star = star or vh
            elif d.startswith("*") and host.endswith(d[1:]) and len(d) > suffix[0]:
                suffix = (len(d), vh)
            elif d.endswith("*") and host.startswith(d[:-1]) and len(d) > prefix[0]:
                prefix = (len(d), vh)
    return exact or suffix[1] or prefix[1] or star


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
