"""istiod's configuration of a proxy, delivered the way the local twin delivers its own (pure).

``local up --translator istiod`` runs the twin's Envoys on what istiod builds (the oracle) instead of on
meshbridge's translation. Only the delivery changes, as ``docs/fidelity.md`` lists for the twin:

* a sidecar's outbound listeners on the proxy's own ports (15000, 15021, 15090) go (the twin's proxies bind
  them for their own admin, health and metrics: FD04);
* listeners bind the proxy's own loopback address (ports below 1024 moved by the placement when not root), and
  bind even on a sidecar (no iptables hands connections over: ``virtualOutbound`` and ``virtualInbound`` go);
* a listener istiod builds for one destination address (``240.240.236.36_443``: a ServiceEntry's VIP, a
  Service's cluster IP, beside ``0.0.0.0_443`` on the same port) is folded into the port's listener as Envoy
  matches it in a pod: its filter chains join the ``0.0.0.0_<port>`` listener's with ``prefix_ranges`` of that
  address (Envoy's ``destination_ip`` match, the step before SNI), its listener filters are added, and the
  wildcard's default chain stays the default (the first such listener is the port's listener when istiod built no
  wildcard one). Two listeners cannot bind one loopback address and port, and the twin's apps connect to the
  sidecar's own address, not to the VIP: so a connection reaches the chains built for any other address on that
  port, as one to another address does in a pod, and the VIP's chains are loaded, never matched (an app of the
  twin cannot dial the VIP itself);
* route, endpoint and secret references point at the twin's xDS files instead of ADS and ``sds-grpc``, and a CRL
  file named by its path in the pod (``caCrl``) at its mounted copy;
* DNS clusters resolve through the mesh's emulated DNS server, and endpoints reach the twin's addresses;
* the istio-proxy-only filters (metadata exchange, ALPN override, Istio's stats), which upstream Envoy lacks,
  are left out; the twin's access logs are added (Istio's default profile writes none);
* ``PassthroughCluster`` reads the original destination from a header, as the twin's own does (``local curl``).

Secrets are served by the one rule of :func:`meshbridge.envoy.secrets.sds_resource`, for every name istiod's
configuration references (also one meshbridge's translation does not: a DestinationRule istiod applies to a
gateway where meshbridge's does not): the mesh's Secrets (the user's, or those the twin filled from meshbridge's
PKI), and what a pod's istio-agent serves comes from the placement: the workload certificate (``default``) and
the mesh's root (``ROOTCA``) the twin's mesh CA issued, so ISTIO_MUTUAL, set by a DestinationRule or by auto mTLS
(``transport_socket_matches``, kept as istiod writes them), shakes hands as in a pod.
"""

from __future__ import annotations

import copy
from typing import Any

from meshbridge.envoy.clusters import dns_settings
from meshbridge.envoy.compare import ISTIO_PROXY_ONLY
from meshbridge.envoy.listeners import access_log
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.secrets import agent_secret, sds_resource
from meshbridge.envoy.sidecar import PROXY_PORTS
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.config import ConfigSet, ConfigWarning
from meshbridge.istiod.oracle import IstiodConfig
from meshbridge.jsontree import mappings

CAPTURE_LISTENERS = frozenset({"virtualOutbound", "virtualInbound"})
"""Listeners that receive connections iptables redirects in a pod; the twin has no iptables."""


def adopt(istiod: IstiodConfig, ours: ProxyConfig, cfg: ConfigSet | None = None) -> ProxyConfig:
    """istiod's listeners, routes, clusters and endpoints for ``ours.proxy``, placed like ``ours``.

    Args:
        istiod: the oracle's configuration of the proxy, computed with the twin's pod addresses.
        ours: meshbridge's translation of the same proxy (its placement and secrets are reused).
        cfg: the mesh's configuration istiod was given: its Secrets serve the names istiod references and ``ours``
            does not; ``None``: only ``ours``'s secrets and the pod's agent's are served.
    """
    p = ours.placement
    theirs = EnvoyView.from_istiod(istiod)
    kept = [x for x in theirs.listeners if x.get("name") not in CAPTURE_LISTENERS and not _proxy_port(x, ours)]
    listeners = [_listener(x, p) for x in _fold_addresses(kept)]
    clusters = [_cluster(c, p) for c in theirs.clusters.values() if c.get("name") != "InboundPassthroughCluster"]
    routes = [r for r in theirs.route_configs if r.get("name") != "InboundPassthroughCluster"]
    endpoints = [_assignment(cla, p) for cla in theirs.assignments]
    resources: list[Any] = [listeners, clusters, routes]
    for tree in resources:
        _deliver(tree, p)
    names = {d["name"] for d in mappings(resources) if "sds_config" in d and "name" in d}
    secrets = {n: ours.secrets[n] if n in ours.secrets else _secret(cfg, ours, n) for n in sorted(names)}
    missing = [n for n, secret in secrets.items() if secret is None]
    warnings = [
        ConfigWarning(
            "istiod",
            "Secret",
            ours.proxy.namespace,
            n,
            "",
            "istiod references this secret; the twin serves none by that name (the handshakes that need it fail)",
        )
        for n in missing
    ]
    return ProxyConfig(
        ours.proxy,
        p,
        listeners,
        clusters,
        routes,
        endpoints,
        secrets,
        warnings,
    )


def _secret(cfg: ConfigSet | None, ours: ProxyConfig, name: str) -> dict[str, Any] | None:
    if cfg is None:
        return agent_secret(name, ours.placement)
    return sds_resource(cfg, ours.proxy.namespace, name, ours.placement)


def _fold_addresses(listeners: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One listener per port: a listener of one destination address folded into the port's (see the module's
    docstring), so no two bind the twin's one address and port. ``listeners`` are the view's own copies."""
    ports: dict[int, dict[str, Any]] = {}
    wildcard = [x for x in listeners if _address(x) in ("0.0.0.0", "::")]
    for x in wildcard:
        ports.setdefault(_port(x), x)
    out = list(wildcard)
    for x in (x for x in listeners if x not in wildcard):
        into = ports.setdefault(_port(x), x)
        if into is x:
            out.append(x)
            continue
        address = _address(x)
        prefix = {"address_prefix": address, "prefix_len": 128 if ":" in address else 32}
        taken = {c.get("name") for c in into.get("filter_chains", []) if c.get("name")}
        for chain in x.get("filter_chains", []):
            chain.setdefault("filter_chain_match", {})["prefix_ranges"] = [prefix]
            if chain.get("name") in taken:
                chain["name"] = f"{x.get('name')}/{chain['name']}"
            into.setdefault("filter_chains", []).append(chain)
        known = {f.get("name") for f in into.get("listener_filters", [])}
        added = [f for f in x.get("listener_filters", []) if f.get("name") not in known]
        if added:
            into["listener_filters"] = added + into.get("listener_filters", [])
        if "default_filter_chain" in x:
            into.setdefault("default_filter_chain", x["default_filter_chain"])
    return out


def _address(lst: dict[str, Any]) -> str:
    return str(lst.get("address", {}).get("socket_address", {}).get("address", "0.0.0.0"))


def _port(lst: dict[str, Any]) -> int:
    return int(lst.get("address", {}).get("socket_address", {}).get("port_value", 0))


def _deliver(tree: Any, p: Placement) -> None:
    """File-based config sources, mounted CRL files, and no istio-proxy-only filter, anywhere in ``tree``."""
    for d in mappings(tree):
        if "sds_config" in d and "name" in d:
            d["sds_config"] = p.config_source("sds", d["name"])
        if "route_config_name" in d and "config_source" in d:
            d["config_source"] = p.config_source("rds", d["route_config_name"])
        if isinstance(d.get("crl"), dict) and "filename" in d["crl"]:
            d["crl"] = {"filename": p.pod_file(str(d["crl"]["filename"]))}
        for key in ("filters", "http_filters", "listener_filters"):
            if isinstance(d.get(key), list):
                d[key] = [f for f in d[key] if not istio_only(f)]
        if d.get("name") == "envoy.filters.network.http_connection_manager":
            d.get("typed_config", {})["access_log"] = access_log(p)


def istio_only(f: Any) -> bool:
    """A filter (snake_case) only istio-proxy has: metadata exchange, ALPN override, Istio's stats, a TypedStruct."""
    if not isinstance(f, dict):
        return False
    kind = str((f.get("typed_config") or {}).get("@type", ""))
    return f.get("name") in ISTIO_PROXY_ONLY or "TypedStruct" in kind or str(f.get("name", "")).startswith("istio.")


def _listener(lst: dict[str, Any], p: Placement) -> dict[str, Any]:
    out = copy.deepcopy(lst)
    sa = out.setdefault("address", {}).setdefault("socket_address", {})
    sa["address"] = p.address
    sa["port_value"] = p.listen_port(int(sa.get("port_value", 0)))
    out.pop("bind_to_port", None)
    out.pop("use_original_dst", None)
    out["access_log"] = access_log(p, listener=True)
    return out


def _proxy_port(lst: dict[str, Any], ours: ProxyConfig) -> bool:
    """A sidecar's outbound listener on a port the twin's proxy binds for itself (admin, health, metrics)."""
    port = lst.get("address", {}).get("socket_address", {}).get("port_value")
    return ours.proxy.kind == "sidecar" and port in PROXY_PORTS


def _cluster(c: dict[str, Any], p: Placement) -> dict[str, Any]:
    out = copy.deepcopy(c)
    name = out.get("name", "")
    if "eds_cluster_config" in out:
        out["eds_cluster_config"] = {"service_name": name, "eds_config": p.config_source("eds", name)}
    if out.get("type") in ("STRICT_DNS", "LOGICAL_DNS"):
        for key in ("typed_dns_resolver_config", "dns_resolvers", "use_tcp_for_dns_lookups"):
            out.pop(key, None)
        out.update(dns_settings(p))
    if "load_assignment" in out:
        out["load_assignment"] = _assignment(out["load_assignment"], p)
    if name == "PassthroughCluster":
        out["original_dst_lb_config"] = {"use_http_header": True}
    return out


def _assignment(cla: dict[str, Any], p: Placement) -> dict[str, Any]:
    out = copy.deepcopy(cla)
    for locality in out.get("endpoints", []):
        for lb in locality.get("lb_endpoints", []):
            sa = lb.get("endpoint", {}).get("address", {}).get("socket_address")
            if sa is not None:
                sa["address"], sa["port_value"] = p.endpoint(sa["address"], int(sa.get("port_value", 0)))
    return out
