"""Compare one proxy's configuration with istiod's, on what decides traffic (pure).

Both sides are read into the same flat set of *facts* (a path such as ``cluster outbound|443||alb.example tls
sni`` → a value), then compared fact by fact. The facts are what decides where a request goes and how it is
secured, as the conformance tier and ``meshbridge translate --against-istiod`` promise:

* listeners: name, port; per filter chain (keyed by its match: destination port, SNI, transport protocol,
  ALPN): the downstream TLS context, the network filters, the HTTP connection manager's route configuration
  and the settings that change requests (remote address, server name, XFCC, timeouts), or the TCP proxy's
  cluster;
* routes: per route configuration, its virtual hosts and their domains; per route, its match and its action
  (cluster or weighted clusters, timeout, retries, rewrites, header operations, direct responses); a mirror's
  or a fault's share is read as a percentage, whichever denominator a side wrote it with;
* clusters: name, discovery type, load balancing, connection pool (TCP keepalive too) and outlier detection,
  the upstream TLS context (SNI, SDS names, SAN matchers, versions, ALPN), HTTP protocol options, endpoints;
* secrets: which SDS secrets are served, and whether each is a certificate or a trust bundle.

What is delivered differently on purpose (addresses, file-based xDS, istio-proxy-only filters, stats and
tracing) is not a fact. Differences that remain but are known are listed in :data:`DOCUMENTED` with their
reason and their consequence for traffic (``docs/fidelity.md`` prints the same list).

istiod's JSON (protobuf JSON, camelCase) is read after :func:`snake_keys`; meshbridge's configuration is
already in Envoy's snake_case field names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

from meshbridge.envoy.authz import RBAC_FILTER
from meshbridge.envoy.names import WORKLOAD_CERT, WORKLOAD_ROOTS

ISTIO_PROXY_ONLY = frozenset(
    {
        "istio.metadata_exchange",
        "istio.alpn",
        "istio.stats",
        "envoy.filters.http.grpc_stats",
        "istio_authn",
        "envoy.filters.network.upstream.metadata_exchange",
    }
)
"""Filters of Istio's own proxy build (or of its telemetry) that upstream Envoy lacks or that decide nothing
about routing; istiod adds them, the twin runs upstream Envoy without them."""

Facts = dict[str, Any]


@dataclass(frozen=True)
class Difference:
    """One fact on which meshbridge and istiod disagree.

    Attributes:
        path: the fact (``listener 0.0.0.0_8443 chain[sni=lambda.external] tls require_client_certificate``).
        ours: meshbridge's value (``None``: meshbridge has no such fact).
        istiod: istiod's value (``None``: istiod has no such fact).
        documented: the id of the :data:`DOCUMENTED` entry that explains it, or ``""``.
    """

    path: str
    ours: Any
    istiod: Any
    documented: str = ""


@dataclass(frozen=True)
class Documented:
    """A known difference from istiod, kept on purpose or not yet fixed (``docs/fidelity.md``).

    Attributes:
        id: a short stable name (``FD01``).
        path: a regular expression a difference's path must match (from its start).
        reason: why meshbridge differs.
        consequence: what it changes for traffic (or that it changes nothing).
        only_ours: the entry covers only facts that istiod lacks and meshbridge has (``True``), only facts
            that meshbridge lacks (``False``), or both (``None``).
        when: a further condition on the two values (the entry covers a difference of this form only).
        proxies: the kind of proxy (``router``, ``sidecar``) the entry is about, or ``None`` for both.
        context: a condition on the whole of both sides' facts (the difference's path, ours, istiod's).
    """

    id: str
    path: str
    reason: str
    consequence: str
    only_ours: bool | None = None
    when: Callable[[Any, Any], bool] | None = None
    proxies: str | None = None
    context: Callable[[str, Facts, Facts], bool] | None = None

    def covers(
        self, d: Difference, proxy_kind: str | None = None, ours: Facts | None = None, istiod: Facts | None = None
    ) -> bool:
        """Whether this entry explains ``d``, found on a proxy of ``proxy_kind`` among these facts."""
        if self.proxies is not None and proxy_kind is not None and proxy_kind != self.proxies:
            return False
        if not re.match(self.path, d.path):
            return False
        if self.context is not None and not self.context(d.path, ours or {}, istiod or {}):
            return False
        if self.only_ours is True and d.istiod is not None:
            return False
        if self.only_ours is False and d.ours is not None:
            return False
        return self.when is None or self.when(d.ours, d.istiod)


def _typed_san_twins(ours: Any, istiod: Any) -> bool:
    """meshbridge's typed DNS + URI matcher pairs stand for exactly istiod's untyped matchers."""
    if not isinstance(ours, list) or not isinstance(istiod, list):
        return False
    untyped = {s for s in istiod if not s.startswith(("DNS ", "URI "))}
    pairs = {s.split(" ", 1)[1] for s in ours if s.startswith("DNS ")}
    return pairs == {s.split(" ", 1)[1] for s in ours if s.startswith("URI ")} and pairs == untyped


_VIP = re.compile(r"^240\.240\.\d+\.\d+$")


def _other_vip(ours: Any, istiod: Any) -> bool:
    """The two domain lists differ only in the auto-allocated VIP (one from 240.240.0.0/16 on each side)."""
    if not isinstance(ours, list) or not isinstance(istiod, list):
        return False
    ov, iv = [d for d in ours if _VIP.match(d)], [d for d in istiod if _VIP.match(d)]
    return len(ov) == len(iv) == 1 and [d for d in ours if d not in ov] == [d for d in istiod if d not in iv]


_ROUTE_FILTERS = ("envoy.filters.http.cors",)


def _without_route_features(value: Any) -> Any:
    """A route's per-route filters without those FD08 lists."""
    return [f for f in value if f not in _ROUTE_FILTERS] if isinstance(value, list) else value


DYNAMIC_FORWARD_PROXY = "DYNAMIC_FORWARD_PROXY"
"""The type fact of a dynamic forward proxy cluster (a ServiceEntry with resolution DYNAMIC_DNS)."""
_DFP_CLUSTER = "envoy.clusters.dynamic_forward_proxy"
_DFP_FILTER = "envoy.filters.http.dynamic_forward_proxy"
_VHOST = re.compile(r"route \S+ vhost (\S+):(\d+)$")


def _dfp_hosts(istiod: Facts) -> set[str]:
    """``host:port`` of every dynamic forward proxy cluster istiod built."""
    out = set()
    for key, value in istiod.items():
        if value == DYNAMIC_FORWARD_PROXY and key.startswith("cluster outbound|") and key.endswith(" type"):
            _, port, _, host = key.removeprefix("cluster ").removesuffix(" type").split("|")
            out.add(f"{host}:{port}")
    return out


def _dynamic_forward_proxy(path: str, ours: Facts, istiod: Facts) -> bool:
    """What istiod builds for a DYNAMIC_DNS ServiceEntry and meshbridge leaves out (FD09): its clusters, its virtual
    hosts (alone or in a route configuration's list) and the DFP filter in the HTTP listeners' filter chains."""
    dfp = _dfp_hosts(istiod)
    a, b = ours.get(path), istiod.get(path)
    if not dfp:
        return False
    if path.startswith("cluster "):
        return a is None and istiod.get(f"{path} type") == DYNAMIC_FORWARD_PROXY
    vhost = _VHOST.match(path)
    if vhost:
        return a is None and f"{vhost[1]}:{vhost[2]}" in dfp
    if path.endswith(" virtual_hosts") and isinstance(a, list) and isinstance(b, list):
        return [v for v in b if v not in dfp] == a and any(v in dfp for v in b)
    if path.endswith(" hcm http_filters") and isinstance(a, list) and isinstance(b, list):
        return [f for f in b if f != _DFP_FILTER] == a
    return False


def _only_sni_dnat_chains(listener: str, istiod: Facts) -> bool:
    """Every filter chain istiod gives ``listener`` matches an AUTO_PASSTHROUGH SNI (``outbound_.<port>_...``)."""
    chains = [k for k, v in istiod.items() if k.startswith(f"{listener} chain[") and v == PRESENT]
    return bool(chains) and all("sni=outbound_." in k for k in chains)


DOCUMENTED: tuple[Documented, ...] = (
    Documented(
        "FD01",
        r".* tls subject_alt_names$",
        "istiod writes the deprecated untyped match_subject_alt_names; Envoy 1.40 warns on it, so meshbridge "
        "writes each name as a typed DNS and a typed URI matcher (match_typed_subject_alt_names)",
        "none for DNS and SPIFFE (URI) identities; a peer certificate whose only matching SAN is an IP "
        "address or an e-mail address is accepted by istiod's matcher and refused by meshbridge's",
        when=_typed_san_twins,
    ),
    Documented(
        "FD02",
        r"route \S+ vhost \S+ domains$",
        "a ServiceEntry without addresses gets a VIP from 240.240.0.0/16 in both; meshbridge numbers them in "
        "order (240.240.0.1, .2, ...), istiod hashes the host, so the two VIPs differ",
        "none: the twin's DNS answers the twin's VIP and its sidecar routes it; only the number differs",
        when=_other_vip,
    ),
    Documented(
        "FD03",
        r"(listener virtual(In|Out)bound|cluster InboundPassthroughCluster|route InboundPassthroughCluster)$",
        "the twin has no iptables: an app connects to its sidecar's per-port listeners directly, so the "
        "listeners that receive redirected connections (virtualOutbound on 15001, virtualInbound on 15006) and "
        "the inbound passthrough are not built",
        "none for what an app calls; the twin's apps are callers only, no traffic enters them",
        only_ours=False,
    ),
    Documented(
        "FD04",
        r"(listener [\d.]+_\d+|route \d+)$",
        "the twin's sidecar builds outbound listeners for HTTP and protocol-sniffed ports; istiod also builds "
        "them for the TCP and TLS ports (tcp-..., tls-..., https, a ServiceEntry's TCP port with an address) of "
        "every visible service, and on the proxy's own ports",
        "an app in the twin cannot call a TCP or TLS port through its sidecar (translate warns for a "
        "ServiceEntry's); HTTP ports are not affected. Ports 15000, 15021 and 15090 get no outbound listener "
        "at all: the twin's proxies bind them for their own admin, health and metrics",
        only_ours=False,
        proxies="sidecar",
    ),
    Documented(
        "FD06",
        r"(cluster outbound_\.\d+_\.|listener \S+$)",
        "AUTO_PASSTHROUGH gateway servers (multi-network east-west: SNI outbound_.<port>_.<subset>_.<host>) are "
        "not modelled; istiod builds an SNI-named cluster and filter chain per service, meshbridge skips the "
        "server and says so",
        "a multi-network gateway in the twin forwards nothing on that server; bridges do not use it",
        only_ours=False,
        proxies="router",
        context=lambda path, _, istiod: path.startswith("cluster ") or _only_sni_dnat_chains(path, istiod),
    ),
    Documented(
        "FD07",
        r"cluster outbound\|\d+\|\S*\|\S+$",
        "a ServiceEntry with resolution NONE gives a sidecar an ORIGINAL_DST cluster; without iptables the twin has "
        "no original destination to forward to, so it builds none and translate says so",
        "an app in the twin cannot reach a resolution NONE host through its sidecar (a gateway, which uses EDS, can)",
        only_ours=False,
        proxies="sidecar",
        context=lambda path, _, istiod: istiod.get(f"{path} type") == "ORIGINAL_DST",
    ),
    Documented(
        "FD08",
        r"route \S+ vhost \S+ route\[\d+\] filters$",
        "a route's CORS policy (per-route configuration of the CORS filter) is not translated yet; translate and "
        "lint warn about the field (MB002)",
        "in the twin, the proxy answers no CORS preflight for such a route and adds no CORS headers: the request "
        "goes to the backend as it is",
        when=lambda ours, istiod: _without_route_features(istiod) == _without_route_features(ours),
    ),
    Documented(
        "FD09",
        r"(cluster outbound\|\d+\|\S*\|\S+|route \S+ (vhost \S+|virtual_hosts)"
        r"|listener \S+ chain\[.*\] hcm http_filters)$",
        "a ServiceEntry with resolution DYNAMIC_DNS is read, not modelled: istiod serves its wildcard hosts with "
        "Envoy's dynamic forward proxy (a DFP cluster per port, a virtual host per HTTP port, the DFP filter in the "
        "HTTP listeners, an SNI DFP filter chain per TLS port); meshbridge leaves the ServiceEntry out and the "
        "parser warns about it",
        "in the twin, a request for one of its hosts is routed as for a host no ServiceEntry declares (a sidecar's "
        "allow_any passthrough, a gateway's 404); lint judges routes to those hosts the same way. Judge such entries "
        "with 'translate --against-istiod' or on the real control plane",
        context=_dynamic_forward_proxy,
    ),
)
"""Every known difference; ``docs/fidelity.md`` lists the same ids (a test keeps the two together)."""


# -- reading istiod's JSON -----------------------------------------------------------------------------------

_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake_keys(node: Any) -> Any:
    """``node`` with every mapping key in snake_case (``routeConfigName`` → ``route_config_name``).

    ``@type`` and the keys of protobuf maps that name things (``envoy.extensions.upstreams.http.v3.
    HttpProtocolOptions``, filter names: they hold a dot) are kept as they are.
    """
    if isinstance(node, dict):
        return {
            k if k == "@type" or "." in k else _CAMEL.sub(r"_\1", k).lower(): snake_keys(v) for k, v in node.items()
        }
    if isinstance(node, list):
        return [snake_keys(v) for v in node]
    return node


# -- facts ---------------------------------------------------------------------------------------------------


def facts(
    listeners: Iterable[Mapping[str, Any]],
    routes: Iterable[Mapping[str, Any]],
    clusters: Iterable[Mapping[str, Any]],
    endpoints: Iterable[Mapping[str, Any]],
    secrets: Iterable[str | Mapping[str, Any]],
) -> Facts:
    """The facts of one proxy's configuration (all arguments in Envoy's snake_case field names).

    Args:
        listeners, routes, clusters, endpoints: LDS, RDS, CDS and EDS resources.
        secrets: SDS resources, or their names.
    """
    out: Facts = {}
    assignments = {cla.get("cluster_name", ""): cla for cla in endpoints}
    for lst in listeners:
        _listener(out, lst)
    for rc in routes:
        _route_config(out, rc)
    for c in clusters:
        _cluster(out, c, assignments.get(c.get("name", "")))
    for s in secrets:
        if isinstance(s, str):
            out[f"secret {s}"] = "served"
        else:
            kind = "certificate" if "tls_certificate" in s else "trust" if "validation_context" in s else "other"
            out[f"secret {s.get('name', '')}"] = kind
    return out


PRESENT = "present"
"""The value of a presence fact: a listener, filter chain, cluster, route configuration, virtual host or route."""


def compare(
    ours: Facts, istiod: Facts, documented: Sequence[Documented] = DOCUMENTED, proxy_kind: str | None = None
) -> list[Difference]:
    """Every fact on which the two disagree, in path order, each marked with the entry that documents it.

    An object that only one side has is one difference (its presence fact); the facts inside it are not
    listed again.
    """
    diffs = []
    absent: list[str] = []  # presence facts one side lacks: their descendants are not listed
    for path in sorted(ours.keys() | istiod.keys()):
        a, b = ours.get(path), istiod.get(path)
        if a == b or any(path.startswith(prefix + " ") for prefix in absent):
            continue
        if PRESENT in (a, b) or (path.endswith(" tls") and "plaintext" in (a, b)):
            absent.append(path)  # the object (or the TLS context) only one side has: its insides are not listed
        d = Difference(path, a, b)
        entry = next((e for e in documented if e.covers(d, proxy_kind, ours, istiod)), None)
        diffs.append(Difference(path, a, b, entry.id if entry else ""))
    return diffs


def _typed(f: Mapping[str, Any]) -> Mapping[str, Any]:
    tc = f.get("typed_config") or {}
    return tc if isinstance(tc, Mapping) else {}


def _listener(out: Facts, lst: Mapping[str, Any]) -> None:
    name = lst.get("name", "")
    port = lst.get("address", {}).get("socket_address", {}).get("port_value")
    p = f"listener {name}"
    out[p] = PRESENT
    out[f"{p} port"] = port
    filters = [lf.get("name") for lf in lst.get("listener_filters", []) if lf.get("name") not in ISTIO_PROXY_ONLY]
    out[f"{p} listener_filters"] = sorted(n for n in filters if n)
    chains = list(lst.get("filter_chains", []))
    if lst.get("default_filter_chain"):
        chains.append({**lst["default_filter_chain"], "_default": True})
    for chain in chains:
        _chain(out, f"{p} chain[{_chain_key(chain)}]", chain)


def _chain_key(chain: Mapping[str, Any]) -> str:
    if chain.get("_default"):
        return "default"
    m = chain.get("filter_chain_match") or {}
    parts = []
    if "destination_port" in m:
        parts.append(f"dport={m['destination_port']}")
    if m.get("server_names"):
        parts.append("sni=" + ",".join(sorted(m["server_names"])))
    if m.get("transport_protocol"):
        parts.append(f"transport={m['transport_protocol']}")
    if m.get("application_protocols"):
        parts.append("alpn=" + ",".join(m["application_protocols"]))
    if m.get("prefix_ranges"):
        ranges = (f"{r.get('address_prefix')}/{r.get('prefix_len', 32)}" for r in m["prefix_ranges"])
        parts.append("ip=" + ",".join(ranges))
    return " ".join(parts) or "*"


def _chain(out: Facts, p: str, chain: Mapping[str, Any]) -> None:
    out[p] = PRESENT
    _tls_facts(out, p, chain.get("transport_socket"))
    names = [f.get("name") for f in chain.get("filters", []) if f.get("name") not in ISTIO_PROXY_ONLY]
    out[f"{p} filters"] = names
    for f in chain.get("filters", []):
        tc = _typed(f)
        if f.get("name") == "envoy.filters.network.http_connection_manager":
            _hcm(out, p, tc)
        elif f.get("name") == "envoy.filters.network.tcp_proxy":
            out[f"{p} tcp_proxy"] = _tcp_proxy(tc)


_HCM_SETTINGS = (
    "use_remote_address",
    "xff_num_trusted_hops",
    "server_name",
    "server_header_transformation",
    "forward_client_cert_details",
    "set_current_client_cert_details",
    "stream_idle_timeout",
    "request_headers_timeout",
    "max_request_headers_kb",
    "normalize_path",
    "merge_slashes",
    "path_with_escaped_slashes_action",
    "codec_type",
    "preserve_external_request_id",
)


def _hcm(out: Facts, p: str, hcm: Mapping[str, Any]) -> None:
    rds = hcm.get("rds") or {}
    out[f"{p} route_config"] = rds.get("route_config_name") or (hcm.get("route_config") or {}).get("name")
    for key in _HCM_SETTINGS:
        out[f"{p} hcm {key}"] = _default(key, hcm.get(key))
    idle = (hcm.get("common_http_protocol_options") or {}).get("idle_timeout")
    out[f"{p} hcm idle_timeout"] = idle
    http_filters = [f.get("name") for f in hcm.get("http_filters", []) if f.get("name") not in ISTIO_PROXY_ONLY]
    out[f"{p} hcm http_filters"] = http_filters
    rbac = [f.get("typed_config") for f in hcm.get("http_filters", []) if f.get("name") == RBAC_FILTER]
    if rbac:  # the AuthorizationPolicies, whole: who may call what
        out[f"{p} hcm rbac"] = rbac
    if "route_config" in hcm and "rds" not in hcm:  # inline routes: compare them as a route configuration
        _route_config(out, {"name": out[f"{p} route_config"] or f"{p} inline", **hcm["route_config"]})


_DEFAULTS: Mapping[str, Any] = {
    "use_remote_address": False,
    "xff_num_trusted_hops": 0,
    "normalize_path": False,
    "merge_slashes": False,
    "codec_type": "AUTO",
    "server_header_transformation": "OVERWRITE",
    "forward_client_cert_details": "SANITIZE",
    "path_with_escaped_slashes_action": "IMPLEMENTATION_SPECIFIC_DEFAULT",
    "preserve_external_request_id": False,
}


def _default(key: str, value: Any) -> Any:
    """A field Envoy leaves at its proto default reads the same whether it is written or not."""
    return _DEFAULTS.get(key) if value is None else value


def _tcp_proxy(tc: Mapping[str, Any]) -> Any:
    if "cluster" in tc:
        return tc["cluster"]
    wc = tc.get("weighted_clusters") or {}
    return sorted((c.get("name"), c.get("weight")) for c in wc.get("clusters", []))


def _sds_names(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    return [c.get("name", "") for c in configs]


def _tls_facts(out: Facts, p: str, socket: Mapping[str, Any] | None) -> None:
    """``<p> tls`` (``plaintext`` or ``tls``) and one fact per TLS setting, so that each differs on its own."""
    if not socket or socket.get("name") == "envoy.transport_sockets.raw_buffer":
        out[f"{p} tls"] = "plaintext"
        return
    if socket.get("name") != "envoy.transport_sockets.tls":
        out[f"{p} tls"] = socket.get("name")
        return
    facts_ = _tls(_typed(socket))
    workload = facts_["certificates"] == [WORKLOAD_CERT] and facts_["trust"] == WORKLOAD_ROOTS
    out[f"{p} tls"] = "istio-mutual" if workload else "tls"
    for key, value in facts_.items():
        out[f"{p} tls {key}"] = value


def _tls(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """A TLS context (downstream or upstream) as the facts that decide a handshake."""
    common = ctx.get("common_tls_context") or {}
    combined = common.get("combined_validation_context") or {}
    validation = combined.get("default_validation_context") or common.get("validation_context") or {}
    trust = combined.get("validation_context_sds_secret_config") or common.get("validation_context_sds_secret_config")
    params = common.get("tls_params") or {}
    sans = [_san(m) for m in validation.get("match_subject_alt_names", [])]
    typed = validation.get("match_typed_subject_alt_names", [])
    sans += [_san(m.get("matcher", {}), m.get("san_type", "")) for m in typed]
    out: dict[str, Any] = {
        "certificates": _sds_names(common.get("tls_certificate_sds_secret_configs", [])),
        "trust": trust.get("name") if trust else None,
        "subject_alt_names": sorted(sans),
        "min_version": params.get("tls_minimum_protocol_version", "TLS_AUTO"),
        "max_version": params.get("tls_maximum_protocol_version", "TLS_AUTO"),
        "cipher_suites": list(params.get("cipher_suites", [])),
        "alpn": list(common.get("alpn_protocols", [])),
    }
    if "sni" in ctx or ("common_tls_context" in ctx and "require_client_certificate" not in ctx):
        out["sni"] = ctx.get("sni")
    else:
        out["require_client_certificate"] = bool(ctx.get("require_client_certificate", False))
    return out


def _san(matcher: Mapping[str, Any], san_type: str = "") -> str:
    kind, value = next(iter(matcher.items()), ("", ""))
    if isinstance(value, Mapping):  # safe_regex
        value = value.get("regex", "")
    return f"{san_type + ' ' if san_type else ''}{kind}:{value}"


def _route_config(out: Facts, rc: Mapping[str, Any]) -> None:
    p = f"route {rc.get('name', '')}"
    out[p] = PRESENT
    vhosts = rc.get("virtual_hosts", [])
    out[f"{p} virtual_hosts"] = sorted(v.get("name", "") for v in vhosts)
    for vh in vhosts:
        vp = f"{p} vhost {vh.get('name', '')}"
        out[vp] = PRESENT
        out[f"{vp} domains"] = sorted(vh.get("domains", []))
        out[f"{vp} require_tls"] = vh.get("require_tls", "NONE")
        routes = vh.get("routes", [])
        out[f"{vp} routes"] = len(routes)
        for i, r in enumerate(routes):
            rp = f"{vp} route[{i}]"
            out[f"{rp} match"] = _match(r.get("match", {}))
            out[f"{rp} action"] = _action(r)
            out[f"{rp} headers"] = _header_ops(r)
            per_filter = r.get("typed_per_filter_config") or {}
            out[f"{rp} filters"] = sorted(per_filter.keys())
            if "envoy.filters.http.fault" in per_filter:
                fault = per_filter["envoy.filters.http.fault"]
                out[f"{rp} fault"] = _percentages(_num({k: v for k, v in fault.items() if k != "@type"}))
        if vh.get("include_request_attempt_count") or vh.get("retry_policy"):
            out[f"{vp} retry_policy"] = vh.get("retry_policy")


def _match(m: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("prefix", "path", "path_separated_prefix"):
        if key in m:
            out[key] = m[key]
    if "safe_regex" in m:
        out["regex"] = m["safe_regex"].get("regex")
    if m.get("case_sensitive") is False:
        out["case_sensitive"] = False
    if m.get("headers"):
        out["headers"] = sorted(
            (h.get("name", ""), str({k: v for k, v in h.items() if k != "name"})) for h in m["headers"]
        )
    if m.get("query_parameters"):
        out["query"] = sorted(str(q) for q in m["query_parameters"])
    return out


_ROUTE_ACTION = (
    "timeout",
    "prefix_rewrite",
    "host_rewrite_literal",
    "auto_host_rewrite",
    "regex_rewrite",
    "cluster_not_found_response_code",
)


def _action(r: Mapping[str, Any]) -> dict[str, Any]:
    if "direct_response" in r:
        return {"direct_response": r["direct_response"].get("status")}
    if "redirect" in r:
        return {"redirect": dict(r["redirect"])}
    ra = r.get("route") or {}
    out: dict[str, Any] = {}
    if "cluster" in ra:
        out["cluster"] = ra["cluster"]
    if "cluster_header" in ra:
        out["cluster_header"] = ra["cluster_header"]
    if "weighted_clusters" in ra:
        out["weighted_clusters"] = sorted(
            (c.get("name"), c.get("weight")) for c in ra["weighted_clusters"].get("clusters", [])
        )
    for key in _ROUTE_ACTION:
        if key in ra:
            out[key] = ra[key]
    if ra.get("hash_policy"):
        out["hash_policy"] = _num(ra["hash_policy"])
    if ra.get("request_mirror_policies"):
        out["mirrors"] = sorted(
            (m.get("cluster", ""), percent((m.get("runtime_fraction") or {}).get("default_value")))
            for m in ra["request_mirror_policies"]
        )
    retry = ra.get("retry_policy")
    if retry:
        out["retries"] = {
            "retry_on": retry.get("retry_on"),
            "num_retries": retry.get("num_retries", 1),
            "per_try_timeout": retry.get("per_try_timeout"),
        }
    return out


def _header_ops(r: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("request_headers_to_add", "response_headers_to_add"):
        if r.get(key):
            out[key] = sorted(
                (
                    h.get("header", {}).get("key"),
                    h.get("header", {}).get("value"),
                    h.get("append_action", "APPEND_IF_EXISTS_OR_ADD"),
                )
                for h in r[key]
            )
    for key in ("request_headers_to_remove", "response_headers_to_remove"):
        if r.get(key):
            out[key] = sorted(r[key])
    return out


_CLUSTER_SETTINGS = ("connect_timeout", "dns_lookup_family", "respect_dns_ttl", "dns_refresh_rate")


def _extension_type(cluster_type: Mapping[str, Any]) -> str:
    """The type fact of a cluster of an extension type: the dynamic forward proxy's own, else ORIGINAL_DST."""
    return DYNAMIC_FORWARD_PROXY if cluster_type.get("name") == _DFP_CLUSTER else "ORIGINAL_DST"


def _cluster(out: Facts, c: Mapping[str, Any], cla: Mapping[str, Any] | None) -> None:
    p = f"cluster {c.get('name', '')}"
    out[p] = PRESENT
    kind = c.get("type") or (_extension_type(c["cluster_type"]) if c.get("cluster_type") else "EDS")
    out[f"{p} type"] = kind
    out[f"{p} lb_policy"] = c.get("lb_policy", "ROUND_ROBIN")
    for key in _CLUSTER_SETTINGS:
        if key in c:
            out[f"{p} {key}"] = _num(c[key])
    thresholds = (c.get("circuit_breakers") or {}).get("thresholds") or [{}]
    out[f"{p} circuit_breakers"] = dict(thresholds[0])
    keepalive = (c.get("upstream_connection_options") or {}).get("tcp_keepalive")
    out[f"{p} tcp_keepalive"] = None if keepalive is None else _num(keepalive)
    od = c.get("outlier_detection")
    out[f"{p} outlier_detection"] = None if od is None else {_DIGITS.sub("", k): _num(v) for k, v in od.items()}
    panic = (c.get("common_lb_config") or {}).get("healthy_panic_threshold")
    out[f"{p} healthy_panic_threshold"] = None if panic is None else float(panic.get("value", 0))
    for key in ("ring_hash_lb_config", "maglev_lb_config", "round_robin_lb_config", "least_request_lb_config"):
        if key in c:
            out[f"{p} {key}"] = _num(c[key])
    assignment = c.get("load_assignment") or cla
    _tls_facts(out, p, _effective_socket(c, lb_endpoints(assignment)))
    options = (c.get("typed_extension_protocol_options") or {}).get(
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    )
    if options:
        kinds = ("explicit_http_config", "use_downstream_protocol_config", "auto_config")
        protocol = next((k for k in kinds if k in options), None)
        detail = options.get(protocol) if protocol else None
        upstream = options.get("upstream_http_protocol_options") or {}
        out[f"{p} http_protocol"] = {
            "protocol": protocol,
            "auto_sni": bool(upstream.get("auto_sni")),
            "auto_san_validation": bool(upstream.get("auto_san_validation")),
            "http2": bool(detail and "http2_protocol_options" in detail),
            "idle_timeout": (options.get("common_http_protocol_options") or {}).get("idle_timeout"),
            "max_requests_per_connection": (options.get("common_http_protocol_options") or {}).get(
                "max_requests_per_connection"
            ),
        }
    if assignment is not None:
        out[f"{p} endpoints"] = sorted(_address(lb) for lb in lb_endpoints(assignment))


def _effective_socket(c: Mapping[str, Any], endpoints: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The transport socket the cluster's endpoints get: the first ``transport_socket_matches`` entry an
    endpoint's metadata carries (Istio's auto mTLS keys on ``tlsMode: istio``), else the cluster's own."""
    for m in c.get("transport_socket_matches", []):
        match = m.get("match") or {}
        if (endpoints and all(carries(lb, match) for lb in endpoints)) or (not endpoints and not match):
            return cast("Mapping[str, Any]", m.get("transport_socket"))
    socket = c.get("transport_socket")
    return cast("Mapping[str, Any] | None", socket)


_DIGITS = re.compile(r"_(?=\d)")
"""protobuf JSON drops the underscore before a digit (``consecutive_5xx`` → ``consecutive5xx``): both sides'
keys are read without it."""


def _num(value: Any) -> Any:
    """``value`` with protobuf JSON's 64-bit integers (written as strings) read back as numbers, at any depth."""
    if isinstance(value, dict):
        return {k: _num(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_num(v) for v in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


_DENOMINATORS = {"HUNDRED": 100, "TEN_THOUSAND": 10_000, "MILLION": 1_000_000}
"""Envoy's ``FractionalPercent.denominator``, by name: the numerator's scale (absent: ``HUNDRED``)."""


def percent(fraction: Mapping[str, Any] | None) -> float:
    """An Envoy ``FractionalPercent`` as a percentage (``{numerator: 1000000, denominator: MILLION}`` → 100.0,
    ``{numerator: 10, denominator: TEN_THOUSAND}`` → 0.1): one value whichever denominator a side chose. An
    absent numerator is 0 (protobuf JSON leaves a zero out); an absent fraction is 100 (a mirror policy without
    ``runtime_fraction`` mirrors every request)."""
    if fraction is None:
        return 100.0
    scale = _DENOMINATORS.get(str(fraction.get("denominator", "HUNDRED")), 100)
    return float(Fraction(int(fraction.get("numerator", 0)) * 100, scale))


def _percentages(value: Any) -> Any:
    """``value`` with every ``percentage`` (a fault's delay and abort) read by :func:`percent`, at any depth."""
    if isinstance(value, dict):
        return {
            k: percent(v) if k == "percentage" and isinstance(v, dict) else _percentages(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_percentages(v) for v in value]
    return value


def lb_endpoints(cla: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """Every ``lb_endpoints`` entry of a ``ClusterLoadAssignment`` (none for ``None``)."""
    if cla is None:
        return []
    return [lb for locality in cla.get("endpoints", []) for lb in locality.get("lb_endpoints", [])]


def _address(lb: Mapping[str, Any]) -> str:
    sa = (lb.get("endpoint") or {}).get("address", {}).get("socket_address", {})
    return f"{sa.get('address')}:{sa.get('port_value')}"


def carries(lb: Mapping[str, Any], match: Mapping[str, Any]) -> bool:
    """Whether endpoint ``lb`` carries the metadata a ``transport_socket_matches`` entry's ``match`` asks for."""
    if not match:
        return True
    meta = ((lb.get("metadata") or {}).get("filter_metadata") or {}).get("envoy.transport_socket_match") or {}
    return all(meta.get(k) == v for k, v in match.items())
