"""VirtualService HTTP routes → Envoy routes, as istiod translates them.

Sources (istio/istio): ``pilot/pkg/networking/core/route/route.go`` (``TranslateRoute``,
``BuildHTTPRoutesForVirtualService``, ``GetDestinationCluster``, ``sourceMatchHTTP``),
``pilot/pkg/networking/core/route/retry/retry.go`` (the default retry policy).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from meshbridge.envoy.names import cluster_name, vs_config_path
from meshbridge.istio.config import ConfigSet, MeshSettings
from meshbridge.istio.gatewayapi import CONVERTED_FROM
from meshbridge.istio.resources import (
    ConsistentHashLB,
    Destination,
    Headers,
    HTTPFaultInjection,
    HTTPMatchRequest,
    HTTPRedirect,
    HTTPRoute,
    L4MatchAttributes,
    Percent,
    StringMatch,
    VirtualService,
)
from meshbridge.istio.visibility import (
    MeshService,
    Proxy,
    destination_rule,
    external_name_aliases,
    qualify_host,
    resolve_gateway_name,
    source_labels_match,
)

# The catch-all vhost of a gateway route config with no VirtualService at all answers 404 (NR).
ROUTE_CONFIG_DEFAULTS = {
    "validate_clusters": False,
    "ignore_port_in_host_matching": True,
    "max_direct_response_body_size_bytes": 1048576,
}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(h|m|s|ms|us)$")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}


@dataclass(frozen=True)
class RouteContext:
    """Where routes are being built: which proxy, which gateway (``ns/name``) or ``mesh``, which port.

    Attributes:
        proxy: the acting proxy (its labels meet ``sourceLabels``, its namespace ``sourceNamespace``).
        gateway: the resolved gateway key (``istio-egress/istio-egressgateway``) or ``mesh``.
        port: the Gateway server port (443, 80) or the sidecar's service port; ``match.port`` compares to it.
        find_service: resolves a destination host to the visible service (for its default port).
        settings: the mesh settings (retry defaults depend on the version).
        aliases: ExternalName Services (their FQDN → the host they name): a destination is the named host.
    """

    proxy: Proxy
    gateway: str
    port: int
    find_service: Callable[[str], MeshService | None]
    settings: MeshSettings
    aliases: Mapping[str, str] = field(default_factory=dict)
    hash_for: Callable[[str, int, str], dict[str, Any] | None] = lambda *_: None

    @classmethod
    def of(
        cls, cfg: ConfigSet, proxy: Proxy, gateway: str, port: int, find_service: Callable[[str], MeshService | None]
    ) -> RouteContext:
        """The context for ``cfg``'s mesh: its settings, its ExternalName aliases, and the hash policy each
        destination's DestinationRule asks for (``consistentHash``)."""

        def hash_for(host: str, dest_port: int, subset: str) -> dict[str, Any] | None:
            svc = find_service(host)
            dr = destination_rule(cfg, proxy, svc) if svc is not None else None
            lb = dr.policy_for(dest_port, subset or None).load_balancer if dr is not None else None
            return hash_policy(lb.consistent_hash) if lb is not None and lb.consistent_hash is not None else None

        return cls(proxy, gateway, port, find_service, cfg.settings, external_name_aliases(cfg), hash_for)


def duration(value: str | None) -> str | None:
    """An Istio duration (``5s``, ``100ms``, ``1h``) as a protobuf JSON duration (``5s``, ``0.100s``)."""
    if value is None:
        return None
    m = _DURATION.match(value.strip())
    if not m:
        return None
    whole, nanos = divmod(round(float(m.group(1)) * _UNITS[m.group(2)] * 1e9), 1_000_000_000)
    # protobuf JSON writes 0, 3, 6 or 9 fractional digits
    if nanos == 0:
        return f"{whole}s"
    if nanos % 1_000_000 == 0:
        return f"{whole}.{nanos // 1_000_000:03d}s"
    if nanos % 1_000 == 0:
        return f"{whole}.{nanos // 1_000:06d}s"
    return f"{whole}.{nanos:09d}s"


def default_retry_policy(settings: MeshSettings) -> dict[str, Any]:
    """istiod's default retry policy: 2 retries on connect failures (503 also retried up to Istio 1.23)."""
    policy: dict[str, Any] = {
        "retry_on": "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
        "num_retries": 2,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
                },
            }
        ],
        "host_selection_retry_max_attempts": "5",
    }
    if settings.retry_503:
        policy["retriable_status_codes"] = [503]
    return policy


def translate_virtual_service(
    vs: VirtualService, ctx: RouteContext
) -> tuple[list[dict[str, Any]], set[tuple[str, int, str]]]:
    """The Envoy routes of one VirtualService in ``ctx``, and the (host, port, subset) destinations they use.

    A match whose ``port``, ``gateways``, ``sourceLabels`` or ``sourceNamespace`` does not fit the context is
    dropped; a route whose matches are all dropped disappears; translation stops at the first catch-all.
    """
    routes: list[dict[str, Any]] = []
    used: set[tuple[str, int, str]] = set()
    for http in vs.spec.http:
        matches = http.match or [HTTPMatchRequest()]
        kept = [m for m in matches if _match_applies(m, vs, ctx)]
        for m in kept:
            route, dests = _route(vs, http, m, ctx)
            routes.append(route)
            used |= dests
            if _is_catch_all(m):
                return routes, used
    return routes, used


def _match_applies(m: HTTPMatchRequest, vs: VirtualService, ctx: RouteContext) -> bool:
    return match_mismatch(m, vs, ctx) is None


def match_mismatch(m: HTTPMatchRequest | L4MatchAttributes, vs: VirtualService, ctx: RouteContext) -> str | None:
    """Why istiod drops match ``m`` of ``vs`` in ``ctx`` (``sourceMatchHTTP``, ``TranslateRoute``), or ``None``
    when it applies. The reason names the field and both values, e.g. ``port 443 is not the port (80)``."""
    if m.port is not None and m.port != ctx.port:
        return f"port {m.port} is not the port ({ctx.port})"
    if m.gateways:
        resolved = [resolve_gateway_name(g, vs.metadata.namespace) for g in m.gateways]
        if ctx.gateway not in resolved:
            return f"gateways {resolved} do not include {ctx.gateway}"
    if m.source_labels and not source_labels_match(m.source_labels, ctx.proxy):
        missing = {k: v for k, v in m.source_labels.items() if ctx.proxy.labels.get(k) != v}
        return f"sourceLabels {missing} are not labels of {ctx.proxy.namespace}/{ctx.proxy.name}"
    if m.source_namespace and m.source_namespace != ctx.proxy.namespace:
        return f"sourceNamespace {m.source_namespace} is not the proxy's namespace ({ctx.proxy.namespace})"
    return None


def _is_catch_all(m: HTTPMatchRequest) -> bool:
    uri_all = m.uri is None or (m.uri.prefix == "/" and not m.uri.exact and not m.uri.regex)
    return uri_all and not m.headers and not m.query_params and m.authority is None and m.method is None


def _route(
    vs: VirtualService, http: HTTPRoute, m: HTTPMatchRequest, ctx: RouteContext
) -> tuple[dict[str, Any], set[tuple[str, int, str]]]:
    name = ".".join(p for p in (http.name, m.name) if p)
    route: dict[str, Any] = {"match": _match(m)}
    if name:
        route["name"] = name
    used: set[tuple[str, int, str]] = set()
    authority = _headers(route, http.headers)
    if http.redirect is not None:
        route["redirect"] = _redirect(http.redirect, ctx)
    elif http.direct_response is not None:
        dr: dict[str, Any] = {"status": http.direct_response.status}
        if http.direct_response.body and "string" in http.direct_response.body:
            dr["body"] = {"inline_string": http.direct_response.body["string"]}
        route["direct_response"] = dr
    else:
        action: dict[str, Any] = {}
        clusters = []
        for rd in http.route:
            host, port, subset = destination(rd.destination, vs.metadata.namespace, ctx)
            used.add((host, port, subset))
            clusters.append((cluster_name(port, host, subset), rd.weight))
        hashes = [
            h for rd in http.route if (h := ctx.hash_for(*destination(rd.destination, vs.metadata.namespace, ctx)))
        ]
        if hashes:  # each destination's, in order (istiod processDestination / processWeightedDestination)
            action["hash_policy"] = hashes
        if len(clusters) == 1:
            action["cluster"] = clusters[0][0]
            host, port, _ = next(iter(used))
            route["decorator"] = {"operation": f"{host}:{port}{_operation_path(m)}"}
            # a lone destination's header operations follow the route's (istiod processDestination)
            authority = _headers(route, http.route[0].headers) or authority
        elif clusters:
            weighted = []
            for (c, w), rd in zip(clusters, http.route, strict=True):
                entry: dict[str, Any] = {"name": c, "weight": w or 0}
                dest_authority = _headers(entry, rd.headers)
                if dest_authority:
                    entry["host_rewrite_literal"] = dest_authority
                weighted.append(entry)
            action["weighted_clusters"] = {"clusters": weighted}
            route["decorator"] = {"operation": f"{vs.metadata.name}:{ctx.port}{_operation_path(m)}"}
        timeout = duration(http.timeout) or "0s"
        action["timeout"] = timeout
        action["max_grpc_timeout"] = timeout
        if CONVERTED_FROM in vs.metadata.annotations:  # an HTTPRoute's: Gateway API semantics (UseGatewaySemantics)
            action["cluster_not_found_response_code"] = "INTERNAL_SERVER_ERROR"
        retry = _retry(http, ctx.settings)
        if retry is not None:
            action["retry_policy"] = retry
        if http.rewrite is not None:
            if http.rewrite.uri is not None:
                action["prefix_rewrite"] = http.rewrite.uri
            if http.rewrite.authority is not None:
                action["host_rewrite_literal"] = http.rewrite.authority
        if authority and "host_rewrite_literal" not in action:
            action["host_rewrite_literal"] = authority
        if http.mirror is not None:
            host, port, subset = destination(http.mirror, vs.metadata.namespace, ctx)
            used.add((host, port, subset))
            action["request_mirror_policies"] = [
                {
                    "cluster": cluster_name(port, host, subset),
                    "runtime_fraction": {"default_value": _fraction(http.mirror_percentage)},
                    "trace_sampled": False,
                    **({} if ctx.settings.shadow_host_suffix else {"disable_shadow_host_suffix_append": True}),
                }
            ]
        route["route"] = action
    if http.fault is not None:
        route["typed_per_filter_config"] = {"envoy.filters.http.fault": _fault(http.fault)}
    route["metadata"] = {
        "filter_metadata": {"istio": {"config": vs_config_path(vs.metadata.namespace, vs.metadata.name)}}
    }
    return route, used


def _fraction(p: Percent | None) -> dict[str, Any]:
    """An Istio percentage as Envoy's fractional percent of a million (100 % when unset)."""
    value = 100.0 if p is None else p.value
    return {"numerator": round(value * 10_000), "denominator": "MILLION"}


def _fault(f: HTTPFaultInjection) -> dict[str, Any]:
    """``fault`` as the route's fault-filter configuration (istiod ``translateFault``)."""
    out: dict[str, Any] = {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}
    if f.delay is not None and f.delay.fixed_delay is not None:
        out["delay"] = {"fixed_delay": duration(f.delay.fixed_delay), "percentage": _fraction(f.delay.percentage)}
    if f.abort is not None and f.abort.http_status is not None:
        out["abort"] = {"http_status": f.abort.http_status, "percentage": _fraction(f.abort.percentage)}
    return out


def hash_policy(ch: ConsistentHashLB) -> dict[str, Any] | None:
    """A route's hash policy for a DestinationRule's ``consistentHash`` (istiod ``ConsistentHashToHashPolicy``):
    a header, a cookie (name, ttl, path), the source IP, or a query parameter."""
    if ch.http_header_name:
        return {"header": {"header_name": ch.http_header_name}}
    if ch.http_cookie:
        cookie: dict[str, Any] = {"name": ch.http_cookie.get("name", "")}
        if ch.http_cookie.get("ttl"):
            cookie["ttl"] = duration(str(ch.http_cookie["ttl"]))
        if ch.http_cookie.get("path"):
            cookie["path"] = ch.http_cookie["path"]
        return {"cookie": cookie}
    if ch.use_source_ip:
        return {"connection_properties": {"source_ip": True}}
    if ch.http_query_parameter_name:
        return {"query_parameter": {"name": ch.http_query_parameter_name}}
    return None


def _headers(target: dict[str, Any], headers: Headers | None) -> str:
    """Append ``headers``' operations to ``target`` (a route or a weighted cluster), as istiod's
    ``TranslateHeadersOperations``: ``set`` overwrites, ``add`` appends, pseudo-headers and ``host`` are left out
    (an ``:authority``/``host`` value is returned, to become the host rewrite)."""
    if headers is None:
        return ""
    authority = ""
    for side, ops in (("request", headers.request), ("response", headers.response)):
        if ops is None:
            continue
        added = []
        for values, action in ((ops.set, "OVERWRITE_IF_EXISTS_OR_ADD"), (ops.add, "APPEND_IF_EXISTS_OR_ADD")):
            for key in sorted(values):
                if (
                    side == "request"
                    and key.lower() in (":authority", "host")
                    and (action.startswith("O") or not authority)
                ):
                    authority = values[key]
                if key.startswith(":") or key.lower() == "host":
                    continue
                added.append({"header": {"key": key, "value": values[key]}, "append_action": action})
        if added:
            target.setdefault(f"{side}_headers_to_add", []).extend(added)
        removed = [k for k in ops.remove if not (k.startswith(":") or k.lower() == "host")]
        if removed:
            target.setdefault(f"{side}_headers_to_remove", []).extend(removed)
    return authority


_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}


def _redirect(r: HTTPRedirect, ctx: RouteContext) -> dict[str, Any]:
    """``redirect`` as istiod's ``ApplyRedirect``."""
    out: dict[str, Any] = {"path_redirect": r.uri or ""}
    if r.authority:
        out["host_redirect"] = r.authority
    if r.scheme:
        out["scheme_redirect"] = r.scheme
    port = r.port if r.port is not None else ctx.port if r.derive_port == "FROM_REQUEST_PORT" else None
    if port is not None:
        scheme = r.scheme or "http"
        if not ((port == 80 and scheme == "http") or (port == 443 and scheme == "https")):
            out["port_redirect"] = port
    code = _REDIRECT_CODES.get(r.redirect_code or 301, "MOVED_PERMANENTLY")
    if code != "MOVED_PERMANENTLY":
        out["response_code"] = code
    return out


def destination(dest: Destination, vs_namespace: str, ctx: RouteContext) -> tuple[str, int, str]:
    """``(host, port, subset)`` of a destination: the port is ``destination.port``, else the service's
    only port, else the server (listener) port (``GetDestinationCluster``)."""
    host = qualify_host(dest.host, vs_namespace)
    host = ctx.aliases.get(host, host)
    if dest.port is not None and dest.port.number is not None:
        port = dest.port.number
    else:
        svc = ctx.find_service(host)
        port = svc.ports[0].number if svc is not None and len(svc.ports) == 1 else ctx.port
    return host, port, dest.subset or ""


def _match(m: HTTPMatchRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    uri = m.uri
    if uri is None or (uri.exact is None and uri.regex is None):
        out["prefix"] = uri.prefix if uri is not None and uri.prefix is not None else "/"
    elif uri.exact is not None:
        out["path"] = uri.exact
    else:
        out["safe_regex"] = {"regex": uri.regex}
    out["case_sensitive"] = not m.ignore_uri_case
    headers = dict(m.headers)
    if m.authority is not None:
        headers[":authority"] = m.authority
    if m.method is not None:
        headers[":method"] = m.method
    if headers:
        out["headers"] = [{"name": k, "string_match": _string_match(v)} for k, v in sorted(headers.items())]
    if m.query_params:
        out["query_parameters"] = [
            {"name": k, "present_match": True}
            if v.regex == "*" or (v.exact is None and v.prefix is None and v.regex is None)
            else {"name": k, "string_match": _string_match(v)}
            for k, v in sorted(m.query_params.items())
        ]
    return out


def _string_match(s: StringMatch) -> dict[str, Any]:
    if s.exact is not None:
        return {"exact": s.exact}
    if s.prefix is not None:
        return {"prefix": s.prefix}
    return {"safe_regex": {"regex": s.regex or ".*"}}


def _operation_path(m: HTTPMatchRequest) -> str:
    if m.uri is None:
        return "/*"
    if m.uri.prefix is not None:
        return f"{m.uri.prefix}*"
    return m.uri.exact or m.uri.regex or "/*"


def _retry(http: HTTPRoute, settings: MeshSettings) -> dict[str, Any] | None:
    if http.retries is None:
        return default_retry_policy(settings)
    if http.retries.attempts == 0:
        return None
    policy = default_retry_policy(settings)
    policy["num_retries"] = http.retries.attempts
    if http.retries.retry_on:
        codes = [int(p) for p in http.retries.retry_on.split(",") if p.strip().isdigit()]
        named = [p.strip() for p in http.retries.retry_on.split(",") if p.strip() and not p.strip().isdigit()]
        policy["retry_on"] = ",".join([*named, "retriable-status-codes"] if codes else named)
        if codes:
            policy["retriable_status_codes"] = codes
        else:
            policy.pop("retriable_status_codes", None)
    per_try = duration(http.retries.per_try_timeout)
    if per_try:
        policy["per_try_timeout"] = per_try
    return policy
