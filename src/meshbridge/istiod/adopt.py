"""istiod's configuration of a proxy, delivered the way the local twin delivers its own (pure).

``local up --translator istiod`` runs the twin's Envoys on what istiod builds (the oracle) instead of on
meshbridge's translation. Only the delivery changes, as ``docs/fidelity.md`` lists for the twin:

* a sidecar's outbound listeners on the proxy's own ports (15000, 15021, 15090) go (the twin's proxies bind
  them for their own admin, health and metrics: FD04);
* listeners bind the proxy's own loopback address (ports below 1024 moved by the placement when not root), and
  bind even on a sidecar (no iptables hands connections over: ``virtualOutbound`` and ``virtualInbound`` go);
* route, endpoint and secret references point at the twin's xDS files instead of ADS and ``sds-grpc``, and a CRL
  file named by its path in the pod (``caCrl``) at its mounted copy;
* DNS clusters resolve through the mesh's emulated DNS server, and endpoints reach the twin's addresses;
* the istio-proxy-only filters (metadata exchange, ALPN override, Istio's stats), which upstream Envoy lacks,
  are left out; the twin's access logs are added (Istio's default profile writes none);
* ``PassthroughCluster`` reads the original destination from a header, as the twin's own does (``local curl``).

Secrets are the twin's own files (the same credentials istiod would serve for the same names), and what a pod's
istio-agent serves comes from the placement: the workload certificate (``default``) and the mesh's root
(``ROOTCA``) the twin's mesh CA issued, so ISTIO_MUTUAL, set by a DestinationRule or by auto mTLS
(``transport_socket_matches``, kept as istiod writes them), shakes hands as in a pod.
"""

from __future__ import annotations

import copy
from typing import Any

from meshbridge.envoy.clusters import dns_settings
from meshbridge.envoy.compare import ISTIO_PROXY_ONLY
from meshbridge.envoy.listeners import access_log
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.secrets import agent_secret
from meshbridge.envoy.sidecar import PROXY_PORTS
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.config import ConfigWarning
from meshbridge.istiod.oracle import IstiodConfig
from meshbridge.jsontree import mappings

CAPTURE_LISTENERS = frozenset({"virtualOutbound", "virtualInbound"})
"""Listeners that receive connections iptables redirects in a pod; the twin has no iptables."""


def adopt(istiod: IstiodConfig, ours: ProxyConfig) -> ProxyConfig:
    """istiod's listeners, routes, clusters and endpoints for ``ours.proxy``, placed like ``ours``.

    Args:
        istiod: the oracle's configuration of the proxy, computed with the twin's pod addresses.
        ours: meshbridge's translation of the same proxy (its placement and secrets are reused).
    """
    p = ours.placement
    theirs = EnvoyView.from_istiod(istiod)
    listeners = [
        _listener(x, p) for x in theirs.listeners if x.get("name") not in CAPTURE_LISTENERS and not _proxy_port(x, ours)
    ]
    clusters = [_cluster(c, p) for c in theirs.clusters.values() if c.get("name") != "InboundPassthroughCluster"]
    routes = [r for r in theirs.route_configs if r.get("name") != "InboundPassthroughCluster"]
    endpoints = [_assignment(cla, p) for cla in theirs.assignments]
    resources: list[Any] = [listeners, clusters, routes]
    for tree in resources:
        _deliver(tree, p)
    names = {d["name"] for d in mappings(resources) if "sds_config" in d and "name" in d}
    secrets = {n: ours.secrets[n] if n in ours.secrets else agent_secret(n, p) for n in sorted(names)}
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
                d[key] = [f for f in d[key] if not _istio_only(f)]
        if d.get("name") == "envoy.filters.network.http_connection_manager":
            d.get("typed_config", {})["access_log"] = access_log(p)


def _istio_only(f: Any) -> bool:
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
