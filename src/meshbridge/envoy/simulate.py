"""A small traffic simulation over one proxy's configuration, before any Envoy runs (pure).

In the style of istio's ``pilot/pkg/simulation/traffic.go``: a request in (port, host, path, method, headers, SNI,
ALPN, client certificate), a result out: the listener, filter chain, route configuration, virtual host, route
and cluster Envoy would pick, or the reason none matched, with the status and response flag Envoy would give
(``NR`` no route / no filter chain, ``NC`` no cluster, ``UF`` upstream failure).

Every Envoy matching rule meshbridge relies on lives here and nowhere else (lint's cross-mesh walk, ``local up``'s
path check, ``translate``'s path simulation and ``kube apply``'s wait for routes all ask it):

* **filter chain** (Envoy's ``FilterChainMatch``): the chains are pruned criterion by criterion, each step
  keeping the chains that match the connection most specifically, with no way back: destination port (the port
  named, then none), server name (the exact SNI, then the longest ``*.suffix`` wildcard, then chains without
  ``server_names``; a connection without SNI only reaches those), transport protocol (``tls`` or ``raw_buffer``,
  then none), application protocols (the first ALPN value of the connection some chain lists, then chains
  without ``application_protocols``). Nothing left: the listener's ``default_filter_chain``, else the
  connection is reset (``NR filter_chain_not_found``). Destination and source addresses do not choose a chain here.
* **virtual host**: the exact domain, then the longest ``*suffix``, then the longest ``prefix*`` (a wildcard
  stands for at least one character), then ``*``; among equals, the first virtual host; case and the port are
  ignored (istiod sets ``ignore_port_in_host_matching``). A virtual host whose ``require_tls`` is ``ALL`` or
  ``EXTERNAL_ONLY`` answers a plain-text request with a 301 to https (a Gateway server's ``httpsRedirect``).
* **route**: the first route whose match holds: ``prefix``, ``path``, ``path_separated_prefix`` (with
  ``case_sensitive``) or ``safe_regex`` on the path without its query, then every ``headers`` matcher (exact,
  prefix, suffix, contains, regex, present; ``invert_match``, ``treat_missing_header_as_empty``) against the
  request's headers and ``:authority``, ``:method``, ``:path``, ``:scheme``, then every ``query_parameters``
  matcher. A route's ``direct_response`` or ``redirect`` (its ``response_code``, 301 by default) is the answer.
* **RBAC** (the HTTP ``envoy.filters.http.rbac`` filters of an AuthorizationPolicy, before any route): an ALLOW
  filter refuses a request none of its policies match, a DENY filter one that one of them matches (403), a LOG
  filter or dry-run ``shadow_rules`` none; a policy matches on any of its permissions (``any``, ``and_rules``,
  ``or_rules``, ``not_rule``, ``header``, the ``:authority`` and ``:method`` among them, ``url_path``,
  ``uri_template``, ``destination_port``, ``requested_server_name``) and any of its principals (``any``,
  ``and_ids``, ``or_ids``, ``not_id``, ``header``, ``authenticated``: the request's ``principal``,
  ``direct_remote_ip`` and ``remote_ip``: the address it comes from, its ``source``); other matchers
  match nothing. The path they see is the connection manager's: normalised (``normalize_path``: RFC 3986, dot
  segments removed) and with ``merge_slashes`` merged. A TCP chain's network RBAC filters
  (``envoy.filters.network.rbac``, before its TCP proxy) are judged alike on what a connection shows: the peer's
  principal (none where the chain passes TLS through) and address, the destination port and the SNI (a
  ``header``, ``url_path`` or ``uri_template`` matches nothing there); a refused connection is closed
  (``RBACDenied``, no status).
* **cluster and secret**: the route's cluster (the first of weighted clusters) must exist; each SDS secret a
  TLS context names must be served.

A chain with a TCP proxy (``envoy.filters.network.tcp_proxy``) and no HTTP connection manager reaches the
TCP proxy's cluster directly; without a TLS context of its own it passes TLS through untouched.

The simulation assumes the listener's inspectors (``tls_inspector``, ``http_inspector``) see what the request
carries. A ``safe_regex`` is read with Python's ``re``: an RE2 pattern ``re`` refuses raises ``re.error``.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import weakref
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from meshbridge.envoy.authz import RBAC_FILTER, RBAC_TCP_FILTER, requested_server_name
from meshbridge.envoy.names import PEER_PRINCIPAL
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import ChainRef, EnvoyView, inline, route_clusters, sds_names, secret_refs
from meshbridge.pki.checks import served_verifies
from meshbridge.pki.x509 import verification_time


@dataclass(frozen=True)
class Request:
    """A request as it reaches the proxy.

    Attributes:
        port: the listener (container) port, e.g. 8443 for a gateway server on 443.
        host: the Host / ``:authority`` header.
        path: the request path, with its query string if any.
        tls: whether the client speaks TLS.
        sni: the TLS SNI the client sends (``None``: no SNI).
        client_cert: whether the client presents a certificate.
        alpn: the application protocols Envoy sees on the connection: the ClientHello's ALPN list, or what
            ``http_inspector`` detects in plain text; ``None``: an HTTP/1.1 client's (``http/1.1`` in plain
            text, no ALPN in a ClientHello).
        method: the HTTP method (``:method``).
        headers: further request headers, as ``(name, value)`` pairs.
        principal: the URI SAN of the client certificate (``spiffe://<trust domain>/ns/<ns>/sa/<sa>``), what an
            RBAC filter's ``authenticated`` principal matches; ``None``: no identity (none matches).
        client_chain: the PEM the client presents: its certificate, then the intermediates it sends; verified
            against the CA bundle of the chain's validation context (SDS) when secrets are judged, as Envoy verifies
            it (:func:`meshbridge.pki.checks.served_verifies`); ``None``: one the server trusts.
        source: the address the connection comes from, what an RBAC filter's ``direct_remote_ip`` and
            ``remote_ip`` match (no trusted ``X-Forwarded-For`` hops or PROXY protocol: the same address);
            ``None``: an address no block names (none matches; ``not`` of one does).
    """

    port: int
    host: str
    path: str = "/"
    tls: bool = False
    sni: str | None = None
    client_cert: bool = False
    alpn: tuple[str, ...] | None = None
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    principal: str | None = None
    client_chain: bytes | None = None
    source: str | None = None

    @property
    def application_protocols(self) -> tuple[str, ...]:
        """The ALPN values Envoy matches filter chains on (see ``alpn``)."""
        if self.alpn is not None:
            return self.alpn
        return () if self.tls else ("http/1.1",)

    def header_map(self) -> dict[str, str]:
        """Lower-cased header name → value, the pseudo-headers included."""
        out = {k.lower(): v for k, v in self.headers}
        out.update({":authority": self.host, ":method": self.method, ":path": self.path, ":scheme": _scheme(self.tls)})
        return out


@dataclass(frozen=True)
class Result:
    """Where the request went, or why it stopped.

    Attributes:
        listener: the listener's name, once one was found.
        filter_chain: the chain's index in the listener's ``filter_chains`` (``-1``: its default chain).
        route_config: the route configuration's name (``None`` for an inline one, or a TCP proxy).
        virtual_host, route: the virtual host's name and the route (its name, or its match).
        cluster: the cluster the request was sent to (or would have been: see ``error``).
        error: ``None`` when a cluster was reached; else one of ``NoListener``, ``NoFilterChain``,
            ``TLSRequired``, ``PlaintextOnTLS``, ``ClientCertRequired``, ``SecretNotReady``, ``RBACDenied``,
            ``NoRoute``, ``NoCluster``, ``UpstreamSecretNotReady``.
        status: the HTTP status the client would see, ``None`` when the connection fails first (or for TCP).
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
    """The simulator's tables over one proxy's configuration: build it once to simulate many requests on it.

    Args:
        config: the proxy's configuration: a translation, or any :class:`~meshbridge.envoy.view.EnvoyView`.

    Attributes:
        view: the configuration as read.
        listeners: listener by port (as text); ``route_configs``, ``clusters``: by name.
    """

    def __init__(self, config: ProxyConfig | EnvoyView) -> None:
        self.view = config if isinstance(config, EnvoyView) else EnvoyView.of(config)
        self.listeners = {str(p): lst for p, lst in self.view.listeners_by_port.items()}
        self.route_configs = self.view.route_configs_by_name
        self.clusters = self.view.clusters
        self._vhosts: dict[int, VirtualHosts] = {}  # by id of the route configuration (inline ones too)
        self._chains: dict[int, FilterChains] = {}  # by port

    def chains(self, port: int) -> FilterChains:
        """The filter chains of the listener on ``port``, indexed for :meth:`FilterChains.select`."""
        found = self._chains.get(port)
        if found is None:
            found = self._chains[port] = FilterChains(self.view.chains_on(port))
        return found

    def vhosts(self, rc: Mapping[str, Any]) -> VirtualHosts:
        """The virtual hosts of ``rc``, indexed by domain."""
        found = self._vhosts.get(id(rc))
        if found is None:
            found = self._vhosts[id(rc)] = VirtualHosts(rc.get("virtual_hosts", []))
        return found


_INDEXES: weakref.WeakKeyDictionary[EnvoyView, Index] = weakref.WeakKeyDictionary()
"""The :class:`Index` of each view simulated on, kept while the view lives (views are read-only)."""


def index_of(pc: ProxyConfig | EnvoyView) -> Index:
    """``pc``'s :class:`Index`, built once per view (a translation is read into a new view each time)."""
    if not isinstance(pc, EnvoyView):
        return Index(pc)
    found = _INDEXES.get(pc)
    if found is None:
        found = _INDEXES[pc] = Index(pc)
    return found


def simulate(
    pc: ProxyConfig | EnvoyView,
    req: Request,
    indexed: Index | None = None,
    *,
    secrets: bool = True,
    rbac: bool = True,
) -> Result:
    """Follow ``req`` through ``pc``'s listeners, filter chains, routes and clusters.

    Args:
        pc, req: the proxy's configuration; the request.
        indexed: ``Index(pc)`` to use (default :func:`index_of`: the view's, built on its first simulation).
        secrets: whether a secret that is not served stops the request (``SecretNotReady``,
            ``UpstreamSecretNotReady``); lint walks on without them, as it reports unserved secrets on their own.
        rbac: whether the RBAC filters judge the request (``RBACDenied``); lint's cross-mesh walk, which knows no
            client identity, goes on to the route without them.

    Raises:
        re.error: a route's ``safe_regex`` that Python's ``re`` cannot read (RE2 syntax).
        PkiError: ``req.client_chain``, or the CAs it is judged against, are not PEM certificates.
    """
    ix = indexed or index_of(pc)
    view = ix.view
    lst = view.listener(req.port)
    if lst is None:
        return Result(error="NoListener", detail=f"no listener on port {req.port}: connection refused")
    name = str(lst.get("name", ""))
    chain = ix.chains(req.port).select(req)
    if chain is None:
        return Result(
            listener=name,
            error="NoFilterChain",
            response_flag="NR",
            detail=f"no filter chain of {name} matches SNI {req.sni!r}: "
            "the connection is reset (NR filter_chain_not_found)",
        )
    base: dict[str, Any] = {"listener": name, "filter_chain": chain.index}
    stop = _downstream_tls(view, chain, req, secrets)
    if stop is not None:
        return Result(**base, **stop)
    if chain.http is None and chain.tcp_proxy is not None:
        return _tcp(view, base, chain, req, secrets=secrets, rbac=rbac)
    hcm = chain.http or {}
    rc_name = hcm.get("rds", {}).get("route_config_name") or hcm.get("route_config", {}).get("name")
    rc = (ix.route_configs.get(rc_name) if rc_name else None) or hcm.get("route_config")
    base["route_config"] = rc_name
    denied = rbac_denial(hcm, req) if rbac else None
    if denied is not None:
        return Result(**base, error="RBACDenied", status=403, detail=f"403 RBAC: access denied ({denied})")
    vh = ix.vhosts(rc).pick(req.host) if rc else None
    if vh is None:
        return Result(
            **base,
            error="NoRoute",
            status=404,
            response_flag="NR",
            detail=f"no virtual host of {rc_name} serves {req.host!r}: 404 NR route_not_found",
        )
    if vh.get("require_tls") in _REQUIRE_TLS and not req.tls:
        return Result(**base, virtual_host=vh["name"], status=301, detail=f"{vh['name']} requires TLS: 301 to https")
    route = select_route(vh, req)
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
    if "redirect" in route:
        status = _REDIRECT_CODES[route["redirect"].get("response_code", "MOVED_PERMANENTLY")]
        return Result(**found, status=status, detail=f"redirect {status}")
    cluster = next(iter(route_clusters(route)), None)
    return _to_cluster(view, found, cluster, secrets, f"{name} → {rc_name} → {vh['name']}", http=True)


def _tcp(view: EnvoyView, base: dict[str, Any], chain: ChainRef, req: Request, *, secrets: bool, rbac: bool) -> Result:
    """A TCP chain: its network RBAC filters (with ``rbac``) close the connection, or its TCP proxy's cluster. A
    chain that does not end TLS (passed through) sees no client certificate: no principal matches there."""
    seen = req if chain.tls is not None else replace(req, principal=None)
    closed = network_rbac_denial(chain.config, seen) if rbac else None
    if closed is not None:
        return Result(**base, error="RBACDenied", detail=f"the network RBAC filter closes the connection ({closed})")
    tcp = chain.tcp_proxy or {}
    return _to_cluster(view, base, _tcp_cluster(tcp), secrets, f"{base['listener']} → tcp_proxy", http=False)


_REQUIRE_TLS = ("ALL", "EXTERNAL_ONLY")
"""``VirtualHost.require_tls`` values that redirect a plain-text request to https (301); the twin's clients are
all external to the proxy."""

_REDIRECT_CODES = {
    "MOVED_PERMANENTLY": 301,
    "FOUND": 302,
    "SEE_OTHER": 303,
    "TEMPORARY_REDIRECT": 307,
    "PERMANENT_REDIRECT": 308,
}
"""``RedirectAction.response_code`` → the status Envoy answers (Envoy's default: ``MOVED_PERMANENTLY``)."""


def select_chain(chains: Sequence[ChainRef], req: Request) -> ChainRef | None:
    """The chain Envoy picks among one listener's ``chains`` for ``req``'s connection (see the module's rules);
    ``None``: no chain (``filter_chain_not_found``). The rule step by step, over every chain: what
    :class:`FilterChains` (the simulation's index) must answer alike."""
    candidates = [c for c in chains if c.index >= 0]
    for step in (_by_destination_port, _by_server_name, _by_transport_protocol, _by_application_protocols):
        candidates = step(candidates, req)
        if not candidates:
            break
    if candidates:
        return candidates[0]
    return next((c for c in chains if c.index < 0), None)


class FilterChains:
    """One listener's filter chains indexed for Envoy's choice: by destination port, then by server name (exact
    names, ``*.suffix`` wildcards by suffix, chains without ``server_names``), so a connection costs a few lookups
    instead of a pass over every chain. :meth:`select` answers as :func:`select_chain` (the rule, step by step)
    on the same chains; the transport and ALPN steps run the rule's own steps on what is left.

    Args:
        chains: the listener's chains in order, its default chain (index ``-1``) among them if it has one.
    """

    def __init__(self, chains: Sequence[ChainRef]) -> None:
        self.default = next((c for c in chains if c.index < 0), None)
        by_port: dict[object, list[ChainRef]] = {}  # destination_port → chains; _ANY_PORT: chains naming none
        for c in chains:
            if c.index >= 0:
                by_port.setdefault(c.match.get("destination_port", _ANY_PORT), []).append(c)
        self._by_port = {port: _ServerNames(named) for port, named in by_port.items()}

    def select(self, req: Request) -> ChainRef | None:
        """The chain Envoy picks for ``req``'s connection, ``None``: none (``filter_chain_not_found``)."""
        names = self._by_port.get(req.port) or self._by_port.get(_ANY_PORT)
        candidates = names.lookup(req.sni) if names is not None else []
        for step in (_by_transport_protocol, _by_application_protocols):
            if not candidates:
                break
            candidates = step(candidates, req)
        return candidates[0] if candidates else self.default


_ANY_PORT = object()
"""The key of the chains whose match names no ``destination_port``."""


class _ServerNames:
    """Chains (of one destination port) by server name: ``_by_server_name``'s rule as lookups."""

    def __init__(self, chains: Sequence[ChainRef]) -> None:
        self.exact: dict[str, list[ChainRef]] = {}  # every name, lower-cased (an SNI may spell a wildcard)
        self.suffixes: dict[str, list[ChainRef]] = {}  # ``*.example.com`` by ``.example.com``
        self.unnamed = [c for c in chains if c.server_names is None]
        for c in chains:
            for n in dict.fromkeys(x.lower() for x in c.server_names or ()):
                self.exact.setdefault(n, []).append(c)
                if n.startswith("*."):
                    self.suffixes.setdefault(n[1:], []).append(c)

    def lookup(self, sni: str | None) -> list[ChainRef]:
        """The chains naming ``sni`` exactly, else those of its longest matching wildcard (at least one character
        before the suffix), else those without ``server_names``."""
        if sni:
            sni = sni.lower()
            found = self.exact.get(sni)
            if found:
                return found
            dot = sni.find(".", 1)
            while dot > 0:
                found = self.suffixes.get(sni[dot:])
                if found:
                    return found
                dot = sni.find(".", dot + 1)
        return self.unnamed


def select_route(vh: Mapping[str, Any], req: Request) -> dict[str, Any] | None:
    """The first route of virtual host ``vh`` whose match holds for ``req``, or ``None`` (``route_not_found``).

    Raises:
        re.error: a ``safe_regex`` Python's ``re`` cannot read.
    """
    return next((r for r in vh.get("routes", []) if route_matches(r.get("match", {}), req)), None)


def route_matches(m: Mapping[str, Any], req: Request) -> bool:
    """Whether route match ``m`` holds for ``req``: its path specifier, its headers and its query parameters.

    Raises:
        re.error: a ``safe_regex`` Python's ``re`` cannot read.
    """
    path, _, query = req.path.partition("?")
    if not _path_matches(m, path):
        return False
    headers = req.header_map() if m.get("headers") else {}
    if not all(_header_matches(h, headers.get(str(h.get("name", "")).lower())) for h in m.get("headers", [])):
        return False
    params = dict(parse_qsl(query, keep_blank_values=True))
    return all(_header_matches(q, params.get(str(q.get("name", "")))) for q in m.get("query_parameters", []))


class VirtualHosts:
    """Envoy's virtual host choice among one route configuration's virtual hosts: the exact domain, then the
    longest ``*suffix``, then the longest ``prefix*``, then ``*``; among equals, the first virtual host."""

    def __init__(self, vhosts: Sequence[dict[str, Any]]) -> None:
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

    def pick(self, host: str, catch_all: bool = True) -> dict[str, Any] | None:
        """The virtual host serving ``host`` (its port ignored); ``catch_all=False`` leaves a ``*`` domain out."""
        host = host.lower()
        if not host.startswith("["):
            host = host.split(":", 1)[0]
        if host in self.exact:
            return self.exact[host]
        found = _longest(self.suffixes, host, host.endswith) or _longest(self.prefixes, host, host.startswith)
        return found or (self.star if catch_all else None)


# -- filter chain steps ----------------------------------------------------------------------------------------


def _by_destination_port(chains: list[ChainRef], req: Request) -> list[ChainRef]:
    named = [c for c in chains if c.match.get("destination_port") == req.port]
    return named or [c for c in chains if "destination_port" not in c.match]


def _by_server_name(chains: list[ChainRef], req: Request) -> list[ChainRef]:
    if req.sni:
        sni = req.sni.lower()
        best, found = 0, []
        for c in chains:
            score = _sni_score(c.server_names or (), sni)
            if score > best:
                best, found = score, [c]
            elif score == best and score > 0:
                found.append(c)
        if found:
            return found
    return [c for c in chains if c.server_names is None]


def _sni_score(names: Sequence[str], sni: str) -> int:
    """How specifically ``names`` match ``sni``: exact beats any wildcard, a longer wildcard a shorter; 0: no match."""
    best = 0
    for n in (x.lower() for x in names):
        if n == sni:
            return 1_000_000
        if n.startswith("*.") and sni.endswith(n[1:]) and len(sni) > len(n) - 1:
            best = max(best, len(n))
    return best


def _by_transport_protocol(chains: list[ChainRef], req: Request) -> list[ChainRef]:
    detected = "tls" if req.tls else "raw_buffer"
    named = [c for c in chains if c.match.get("transport_protocol") == detected]
    return named or [c for c in chains if not c.match.get("transport_protocol")]


def _by_application_protocols(chains: list[ChainRef], req: Request) -> list[ChainRef]:
    for proto in req.application_protocols:
        named = [c for c in chains if proto in (c.match.get("application_protocols") or ())]
        if named:
            return named
    return [c for c in chains if not c.match.get("application_protocols")]


# -- TLS, clusters, secrets ----------------------------------------------------------------------------------


def _downstream_tls(view: EnvoyView, chain: ChainRef, req: Request, secrets: bool) -> dict[str, Any] | None:
    """Why the connection fails on ``chain``'s TLS (the ``Result`` fields), or ``None`` when it goes on."""
    where = f"{chain.listener} chain {chain.index}"
    if chain.tls is not None and not req.tls:
        return {"error": "TLSRequired", "detail": f"{where} terminates TLS; a plain-text request is reset"}
    if chain.tls is None:
        if req.tls and chain.http is not None:
            return {"error": "PlaintextOnTLS", "detail": f"{where} is plain text; the TLS handshake fails"}
        return None
    if secrets:
        for ref in sds_names(chain.tls.get("common_tls_context") or {})[0]:
            if view.secret(ref) is None:
                return {
                    "error": "SecretNotReady",
                    "detail": f"the server certificate {ref} is not served: the handshake is reset",
                }
    if chain.require_client_certificate and not req.client_cert:
        return {
            "error": "ClientCertRequired",
            "detail": "the server requires a client certificate: the handshake fails (alert certificate required)",
        }
    if secrets and req.client_cert and req.client_chain is not None:
        return _untrusted_client(view, chain, req.client_chain)
    return None


def _untrusted_client(view: EnvoyView, chain: ChainRef, presented: bytes) -> dict[str, Any] | None:
    """Why ``chain`` refuses the client chain ``presented`` (PEM): its validation context (an SDS secret) is not
    served, or its CAs do not verify that chain as Envoy does; ``None`` when they do (or it validates nothing by
    SDS)."""
    assert chain.tls is not None
    _, ref = sds_names(chain.tls.get("common_tls_context") or {})
    if ref is None:
        return None
    secret = view.secret(ref)
    if secret is None:
        return {"error": "SecretNotReady", "detail": f"the client CAs {ref} are not served: the handshake is reset"}
    trusted = inline((secret.get("validation_context") or {}).get("trusted_ca"))
    why = served_verifies(presented, trusted, verification_time(), "client") if trusted else None
    if trusted and why is None:
        return None
    return {
        "error": "UnknownCA",
        "detail": f"the CAs of {ref} do not verify the client certificate: {why or 'they hold none'}: the handshake "
        "fails (alert unknown ca)",
    }


def _to_cluster(
    view: EnvoyView, found: dict[str, Any], cluster_name: str | None, secrets: bool, path: str, http: bool
) -> Result:
    """The request handed to ``cluster_name``: reached, or why not (``found``: the ``Result`` fields so far)."""
    cluster = view.clusters.get(cluster_name) if cluster_name else None
    if cluster is None:
        return Result(
            **found,
            cluster=cluster_name,
            error="NoCluster",
            status=503 if http else None,
            response_flag="NC",
            detail=f"{'route' if http else 'tcp_proxy'} → {cluster_name}, which this proxy does not have: "
            + ("503 NC cluster_not_found" if http else "the connection is closed (NC)"),
        )
    if secrets:
        for ref in secret_refs(cluster.get("transport_socket", {})):
            if view.secret(ref) is None:
                return Result(
                    **found,
                    cluster=cluster_name,
                    error="UpstreamSecretNotReady",
                    status=503 if http else None,
                    response_flag="UF",
                    detail=f"{cluster_name} needs secret {ref}, which is not served: " + ("503 UF" if http else "UF"),
                )
    return Result(**found, cluster=cluster_name, detail=f"{path} → {cluster_name}")


def _tcp_cluster(tcp: Mapping[str, Any]) -> str | None:
    if tcp.get("cluster"):
        return str(tcp["cluster"])
    clusters = (tcp.get("weighted_clusters") or {}).get("clusters", [])
    return str(clusters[0]["name"]) if clusters else None


# -- route matching --------------------------------------------------------------------------------------------


def _path_matches(m: Mapping[str, Any], path: str) -> bool:
    if "safe_regex" in m:
        return re.fullmatch(m["safe_regex"]["regex"], path) is not None
    sensitive = m.get("case_sensitive", True)
    fold: Callable[[str], str] = (lambda s: s) if sensitive is not False else str.lower
    p = fold(path)
    if "prefix" in m:
        return p.startswith(fold(str(m["prefix"])))
    if "path" in m:
        return p == fold(str(m["path"]))
    if "path_separated_prefix" in m:
        prefix = fold(str(m["path_separated_prefix"]))
        return p == prefix or p.startswith(prefix + "/")
    return False


def rbac_denial(hcm: Mapping[str, Any], req: Request) -> str | None:
    """Why the HTTP connection manager's RBAC filters refuse ``req`` (Envoy answers 403 before any route), or
    ``None``. Each filter in order: an ALLOW filter refuses a request no policy matches, a DENY filter one that a
    policy matches; a LOG filter, and one without ``rules`` (only dry-run ``shadow_rules``), refuse nothing."""
    return _rbac_verdict(hcm.get("http_filters", []), RBAC_FILTER, _normalized(hcm, req), http=True)


def network_rbac_denial(chain: Mapping[str, Any], req: Request) -> str | None:
    """Why the network RBAC filters of a TCP filter ``chain`` (Envoy's ``FilterChain``) close ``req``'s connection,
    or ``None``: the same rule as :func:`rbac_denial` on what a connection shows (principal, port, SNI)."""
    return _rbac_verdict(chain.get("filters", []), RBAC_TCP_FILTER, req, http=False)


def _rbac_verdict(filters: Sequence[Mapping[str, Any]], kind: str, req: Request, *, http: bool) -> str | None:
    """The RBAC filters named ``kind`` among ``filters``, in order (see :func:`rbac_denial`)."""
    for f in filters:
        rules = (f.get("typed_config") or {}).get("rules") if f.get("name") == kind else None
        if rules is None:
            continue
        policies = rules.get("policies") or {}
        candidates = _RbacHosts.of(policies).candidates(req.host) if http else sorted(policies)
        matched = next((n for n in candidates if _rbac_policy_matches(policies[n], req, http)), None)
        if rules.get("action", "ALLOW") == "ALLOW" and matched is None:
            who = (req.principal or "a peer without identity") + (f" at {req.source}" if req.source else "")
            what = f"{req.method} {req.path} on Host {req.host!r}" if http else f"a connection on port {req.port}"
            return f"no ALLOW policy matches {what} from {who}"
        if rules.get("action") == "DENY" and matched is not None:
            return f"DENY policy {matched} matches"
    return None


class _RbacHosts:
    """One RBAC filter's policies by the host their permissions require (istiod writes a policy on ``hosts`` as an
    or of case-insensitive ``:authority`` matches: exact, or ``host:`` prefixes), so a request is judged against the
    policies that name its host and the others (any other permission), not against all of them. The policies
    whose permissions are only such host matches and name another host cannot match: leaving them out changes
    no answer. Kept for the last filters seen (a translation is read many times)."""

    _seen: ClassVar[OrderedDict[int, tuple[Mapping[str, Any], _RbacHosts]]] = OrderedDict()

    def __init__(self, policies: Mapping[str, Any]) -> None:
        self.by_host: dict[str, set[str]] = {}
        self.general: set[str] = set()
        for name, policy in policies.items():
            hosts = _required_hosts(policy)
            if hosts is None:
                self.general.add(name)
            for h in hosts or ():
                self.by_host.setdefault(h, set()).add(name)

    @classmethod
    def of(cls, policies: Mapping[str, Any]) -> _RbacHosts:
        """The index of ``policies`` (the same object as last time: its index)."""
        found = cls._seen.get(id(policies))
        if found is not None and found[0] is policies:
            cls._seen.move_to_end(id(policies))
            return found[1]
        made = cls(policies)
        cls._seen[id(policies)] = (policies, made)
        if len(cls._seen) > 64:
            cls._seen.popitem(last=False)
        return made

    def candidates(self, host: str) -> list[str]:
        """The policies that may match a request for ``host``, in name order (Envoy's first match)."""
        return sorted(self.general | self.by_host.get(_host_part(host), set()))


def _required_hosts(policy: Mapping[str, Any]) -> set[str] | None:
    """The hosts (without port, lower-cased) one of which every permission of ``policy`` requires, or
    ``None`` when a permission requires anything else (then the policy is judged whatever the host)."""
    hosts: set[str] = set()
    for perm in policy.get("permissions", []):
        rules = (perm.get("and_rules") or {}).get("rules")
        if not rules or len(rules) != 1 or "or_rules" not in rules[0]:
            return None
        for r in rules[0]["or_rules"].get("rules", []):
            header = r.get("header") or {}
            match = header.get("string_match") or {}
            if header.get("name") != ":authority" or not match.get("ignore_case"):
                return None
            if set(match) == {"exact", "ignore_case"}:
                hosts.add(_host_part(str(match["exact"])))
            elif set(match) == {"prefix", "ignore_case"} and str(match["prefix"]).endswith(":"):  # host:*
                hosts.add(_host_part(str(match["prefix"])))
            else:
                return None
    return hosts if policy.get("permissions") else None


def _host_part(authority: str) -> str:
    """``lambda.external`` of ``lambda.external:443`` (or of ``lambda.external:``), lower-cased."""
    return (
        authority.lower().rsplit(":", 1)[0] if ":" in authority and not authority.startswith("[") else authority.lower()
    )


def _normalized(hcm: Mapping[str, Any], req: Request) -> Request:
    """``req`` with the path the connection manager's filters see: with ``normalize_path``, Envoy's RFC 3986
    normalisation (``\\`` read as ``/``, escaped unreserved characters such as ``%2e`` decoded, dot segments
    removed), then with ``merge_slashes`` runs of ``/`` merged; the query is kept as it is."""
    path, mark, query = req.path.partition("?")
    if hcm.get("normalize_path") and any(c in path for c in ".\\%"):  # else nothing to normalise
        path = _remove_dot_segments(_UNRESERVED_ESCAPE.sub(lambda m: chr(int(m[1], 16)), path.replace("\\", "/")))
    if hcm.get("merge_slashes") and "//" in path:
        path = re.sub("/{2,}", "/", path)
    return req if path + mark + query == req.path else replace(req, path=path + mark + query)


_UNRESERVED_ESCAPE = re.compile("%(2[dDeE]|3[0-9]|[46][1-9a-fA-F]|[57][0-9aA]|5[fF]|7[eE])")
"""A percent-escape of an unreserved character (letters, digits, ``-._~``), which RFC 3986 normalisation decodes."""


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: ``/a/./b/../c`` is ``/a/c``; ``..`` above the root stays at the root."""
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out)


def _rbac_policy_matches(policy: Mapping[str, Any], req: Request, http: bool = True) -> bool:
    """An RBAC policy: any of its permissions and any of its principals (``http``: an HTTP filter's, which sees the
    request; else a network filter's, which sees the connection)."""
    return any(_permission(p, req, http) for p in policy.get("permissions", [])) and any(
        _rbac_principal(p, req, http) for p in policy.get("principals", [])
    )


def _permission(p: Mapping[str, Any], req: Request, http: bool = True) -> bool:
    """An RBAC ``Permission``: ``any``, ``and_rules``, ``or_rules``, ``not_rule``, ``header``, ``url_path`` and
    ``uri_template`` (the path without its query; on a network filter, which sees no request, nothing),
    ``destination_port`` (the listener's), ``requested_server_name`` (the SNI, ``""`` without); another kind
    (``destination_ip``, ``metadata``) matches nothing."""
    if p.get("any"):
        return True
    if "and_rules" in p:
        return all(_permission(r, req, http) for r in p["and_rules"].get("rules", []))
    if "or_rules" in p:
        return any(_permission(r, req, http) for r in p["or_rules"].get("rules", []))
    if "not_rule" in p:
        return not _permission(p["not_rule"], req, http)
    if "destination_port" in p:
        return req.port == int(p["destination_port"])
    if "requested_server_name" in p:
        return _string_matches(p["requested_server_name"], req.sni or "")
    if not http:
        return False
    if "header" in p:
        return _header_matches(p["header"], req.header_map().get(str(p["header"].get("name", "")).lower()))
    if "url_path" in p:
        return _string_matches(p["url_path"].get("path") or {}, req.path.partition("?")[0])
    if "uri_template" in p:
        template = str(((p["uri_template"] or {}).get("typed_config") or {}).get("path_template", ""))
        return _uri_template(template).fullmatch(req.path.partition("?")[0]) is not None
    return False


_PCHAR = "a-zA-Z0-9\\-._~%!$&'()+,;:@"
"""What one path segment of a URI template's ``*`` may hold (Envoy's ``kLiteral``: RFC 3986 pchar without ``*=``)."""


@functools.lru_cache(maxsize=256)
def _uri_template(template: str) -> re.Pattern[str]:
    """Envoy's ``uri_template`` path matcher as a regular expression (``uri_template_internal.cc``): ``*`` one
    segment (one character or more), ``**`` what is left, ``/`` included (none at all too), the rest literal."""
    globs = {"**": f"[{_PCHAR}/]*", "*": f"[{_PCHAR}]+"}
    return re.compile("".join(globs.get(part, re.escape(part)) for part in re.split(r"(\*\*|\*)", template)))


def _rbac_principal(p: Mapping[str, Any], req: Request, http: bool = True) -> bool:
    """An RBAC ``Principal``: ``any``, ``and_ids``, ``or_ids``, ``not_id``, ``authenticated`` (the client
    certificate's URI SAN), ``filter_state`` of a waypoint's peer principal (the same), ``header`` (a request
    header, istiod's ``when`` on ``request.headers``; on a network filter nothing), ``direct_remote_ip`` and
    ``remote_ip`` (the request's ``source`` inside the block); another kind matches nothing."""
    if p.get("any"):
        return True
    if "and_ids" in p:
        return all(_rbac_principal(i, req, http) for i in p["and_ids"].get("ids", []))
    if "or_ids" in p:
        return any(_rbac_principal(i, req, http) for i in p["or_ids"].get("ids", []))
    if "not_id" in p:
        return not _rbac_principal(p["not_id"], req, http)
    if "authenticated" in p:
        name = (p["authenticated"] or {}).get("principal_name")
        return req.principal is not None and (name is None or _string_matches(name, req.principal))
    state = p.get("filter_state") or {}
    if state.get("key") == PEER_PRINCIPAL and "string_match" in state:  # a waypoint's: the peer HBONE authenticated
        return req.principal is not None and _string_matches(state["string_match"], req.principal)
    if "header" in p and http:
        return _header_matches(p["header"], req.header_map().get(str(p["header"].get("name", "")).lower()))
    block = p.get("direct_remote_ip") or p.get("remote_ip")
    if block is not None:
        return req.source is not None and _in_block(req.source, block)
    return False


def principal_matches(principal: Mapping[str, Any], req: Request) -> bool:
    """Whether one RBAC ``Principal`` of an HTTP filter (:func:`meshbridge.envoy.authz.source_matchers`) matches
    ``req``, as the filter judges it."""
    return _rbac_principal(principal, req, True)


def sni_condition_matches(value: str, sni: str) -> bool:
    """Whether a ``connection.sni`` value of an AuthorizationPolicy (``*`` at one end a prefix or suffix) matches
    ``sni``, as the RBAC filter istiod builds of it judges a connection."""
    return _string_matches(requested_server_name(value)["requested_server_name"], sni)


def _in_block(address: str, block: Mapping[str, Any]) -> bool:
    """Whether ``address`` is inside an Envoy ``CidrRange`` (``address_prefix``, ``prefix_len``; the prefix's
    bits past the length are ignored, as Envoy masks them)."""
    length = int(block.get("prefix_len", 0))
    net = ipaddress.ip_network(f"{block['address_prefix']}/{length}", strict=False)
    ip = ipaddress.ip_address(address)
    return ip.version == net.version and ip in net


def _header_matches(m: Mapping[str, Any], value: str | None) -> bool:
    """A ``HeaderMatcher`` (or ``QueryParameterMatcher``) against the value the request carries (``None``: absent)."""
    invert = bool(m.get("invert_match", False))
    if "present_match" in m:
        return ((value is not None) == bool(m["present_match"])) != invert
    if value is None:
        if not m.get("treat_missing_header_as_empty"):
            return invert
        value = ""
    matcher = m.get("string_match")
    if matcher is None:
        legacy = {
            "exact_match": "exact",
            "prefix_match": "prefix",
            "suffix_match": "suffix",
            "contains_match": "contains",
            "safe_regex_match": "safe_regex",
        }
        matcher = {legacy[k]: v for k, v in m.items() if k in legacy}
    return _string_matches(matcher, value) != invert


def _string_matches(m: Mapping[str, Any], value: str) -> bool:
    """An Envoy ``StringMatcher`` (exact, prefix, suffix, contains, safe_regex; ``ignore_case``)."""
    if "safe_regex" in m:
        return re.fullmatch(m["safe_regex"]["regex"], value) is not None
    fold: Callable[[str], str] = str.lower if m.get("ignore_case") else (lambda s: s)
    v = fold(value)
    for key, test in (
        ("exact", str.__eq__),
        ("prefix", str.startswith),
        ("suffix", str.endswith),
        ("contains", str.__contains__),
    ):
        if key in m:
            return bool(test(v, fold(str(m[key]))))
    return True  # no value to compare: any value matches (a matcher that only names the header)


def _longest(
    patterns: list[tuple[str, dict[str, Any]]], host: str, fits: Callable[[str], bool]
) -> dict[str, Any] | None:
    best: tuple[int, dict[str, Any] | None] = (-1, None)
    for part, vh in patterns:
        if len(part) > best[0] and len(host) > len(part) and fits(part):
            best = (len(part), vh)
    return best[1]


def _describe(m: Mapping[str, Any]) -> str:
    return str(
        m.get("prefix") or m.get("path") or m.get("path_separated_prefix") or m.get("safe_regex", {}).get("regex", "")
    )


def _scheme(tls: bool) -> str:
    return "https" if tls else "http"
