"""Translate one mesh's Istio configuration into what istiod would push to one proxy.

``translate`` is pure: configuration, the proxy's identity and its :class:`Placement` in, a
:class:`ProxyConfig` out. A ``ProxyConfig`` renders two ways:

* :meth:`ProxyConfig.bootstrap` + :meth:`ProxyConfig.xds_files`: what runs — a bootstrap with Istio's
  static parts (admin, the 15021 health and 15090 Prometheus listeners) and LDS/CDS/RDS/EDS/SDS from files,
  so ``/config_dump`` shows ``dynamic_*`` resources as it would under istiod;
* :meth:`ProxyConfig.static_bootstrap`: everything inline in one document, for ``envoy --mode validate``
  and for ``meshbridge translate`` (private keys redacted).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshbridge.envoy.clusters import build_clusters
from meshbridge.envoy.envoyfilter import apply_listener_patches
from meshbridge.envoy.gateway import build_gateway
from meshbridge.envoy.listeners import HCM
from meshbridge.envoy.names import parse_file_sds_name
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.secrets import sds_resource
from meshbridge.envoy.sidecar import build_sidecar
from meshbridge.istio.config import ConfigSet, ConfigWarning
from meshbridge.istio.dns import name_table
from meshbridge.istio.visibility import (
    Proxy,
    Workload,
    gateway_key,
    gateways_for,
    qualify_host,
    service_finder,
    services,
    visible_services,
    vs_gateways,
)
from meshbridge.jsontree import mappings

TYPES = {
    "lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "rds": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "eds": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
    "sds": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
}
REDACTED = "W1JFREFDVEVEXQ=="  # base64 of "[REDACTED]"


@dataclass(frozen=True)
class ProxyConfig:
    """The configuration of one proxy, as istiod would push it.

    Attributes:
        proxy: whom it is for.
        placement: where it runs locally.
        listeners, clusters, route_configs: LDS, CDS and RDS resources (Envoy v3 dicts).
        endpoints: EDS ``ClusterLoadAssignment`` resources.
        secrets: SDS resource name → the ``Secret`` resource, or ``None`` when istiod would serve none.
        warnings: what the translation could not reproduce, or reproduced with a caveat.
        patch_hits: each EnvoyFilter patch that applies to the proxy, by ``(namespace, name, index)``, and how
            many filter chains it changed (0: it selects the proxy but matches none of its listeners).
    """

    proxy: Proxy
    placement: Placement
    listeners: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    route_configs: list[dict[str, Any]]
    endpoints: list[dict[str, Any]]
    secrets: dict[str, dict[str, Any] | None]
    warnings: list[ConfigWarning]
    patch_hits: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def unmounted_files(self) -> list[str]:
        """The pod's files this proxy's Envoy reads that its placement does not mount (:attr:`Placement.mounts`):
        the paths of its ``file-cert:``/``file-root:`` SDS secrets and of its validation contexts' CRL files, sorted.
        """
        mounted = {str(p) for p in self.placement.mounts.values()}
        paths: set[str] = set()
        for d in mappings([self.listeners, self.clusters]):
            if "sds_config" in d and "name" in d:
                paths.update(p for p in parse_file_sds_name(str(d["name"])) or () if p not in self.placement.mounts)
            crl = d.get("crl")
            if isinstance(crl, dict) and "filename" in crl and str(crl["filename"]) not in mounted:
                paths.add(str(crl["filename"]))
        return sorted(paths)

    def bootstrap(self) -> dict[str, Any]:
        """The bootstrap that runs: static admin/health/metrics parts, everything else from xDS files."""
        b = self._base()
        b["dynamic_resources"] = {
            "lds_config": self.placement.config_source("lds"),
            "cds_config": self.placement.config_source("cds"),
        }
        return b

    def xds_files(self) -> dict[Path, dict[str, Any]]:
        """LDS, CDS, RDS and EDS files (path → DiscoveryResponse); SDS is written by :meth:`sds_files`."""
        p = self.placement
        files: dict[Path, dict[str, Any]] = {
            p.file("lds", ""): _response("lds", self.listeners),
            p.file("cds", ""): _response("cds", self.clusters),
        }
        for rc in self.route_configs:
            files[p.file("rds", rc["name"])] = _response("rds", [rc])
        for cla in self.endpoints:
            files[p.file("eds", cla["cluster_name"])] = _response(
                "eds", [{k: v for k, v in cla.items() if k != "@type"}]
            )
        # a route config a listener names but nobody built still gets a file: Envoy then serves no route
        for name in _rds_names(self.listeners):
            files.setdefault(p.file("rds", name), _response("rds", [{"name": name}]))
        return files

    def sds_files(self) -> dict[str, dict[str, Any]]:
        """File name (in the SDS folder) → DiscoveryResponse; a secret istiod would not serve is empty."""
        out = {}
        for name, secret in self.secrets.items():
            resources = [{k: v for k, v in secret.items() if k != "@type"}] if secret is not None else []
            out[self.placement.file("sds", name).name] = _response("sds", resources)
        return out

    def static_bootstrap(self, redact: bool = True) -> dict[str, Any]:
        """Everything inline: routes in the listeners, endpoints in the clusters, secrets static.

        With ``redact`` (the default) private keys are replaced by ``[REDACTED]``; only validation needs them.
        """
        b = self._base()
        routes = {rc["name"]: rc for rc in self.route_configs}
        assignments = {cla["cluster_name"]: cla for cla in self.endpoints}
        listeners = copy.deepcopy(self.listeners)
        for lst in listeners:
            for chain in lst["filter_chains"]:
                for f in chain["filters"]:
                    hcm = f.get("typed_config", {})
                    if "rds" in hcm:
                        name = hcm.pop("rds")["route_config_name"]
                        hcm["route_config"] = copy.deepcopy(routes.get(name, {"name": name}))
        clusters = copy.deepcopy(self.clusters)
        for c in clusters:
            if c.get("type") == "EDS":
                c["type"] = "STATIC"
                c.pop("eds_cluster_config")
                cla = {k: v for k, v in assignments.get(c["name"], {"cluster_name": c["name"]}).items() if k != "@type"}
                c["load_assignment"] = cla
        _strip_sds_config(listeners)
        _strip_sds_config(clusters)
        b["static_resources"]["listeners"] += listeners
        b["static_resources"]["clusters"] += clusters
        b["static_resources"]["secrets"] = [
            _redact({k: v for k, v in s.items() if k != "@type"})
            if redact
            else {k: v for k, v in s.items() if k != "@type"}
            for s in self.secrets.values()
            if s is not None
        ]
        return b

    def _base(self) -> dict[str, Any]:
        p, px = self.placement, self.proxy
        admin = {"socket_address": {"address": p.address, "port_value": p.admin_port}}
        return {
            "node": {
                "id": p.node_id,
                "cluster": p.node_cluster,
                "metadata": {
                    "NAME": px.name,
                    "NAMESPACE": px.namespace,
                    "LABELS": dict(px.labels),
                    "CLUSTER_ID": "Kubernetes",
                },
            },
            "admin": {"address": admin},
            "static_resources": {
                "listeners": [
                    _static_listener(p, "0.0.0.0_15021", 15021, "/healthz/ready", "agent", rewrite="/ready"),
                    _static_listener(p, "0.0.0.0_15090", 15090, "/stats/prometheus", "prometheus_stats"),
                ],
                "clusters": [_admin_cluster("prometheus_stats", p), _admin_cluster("agent", p)],
            },
        }


def translate(
    cfg: ConfigSet, proxy: Proxy, placement: Placement, workloads: list[Workload] | None = None
) -> ProxyConfig:
    """What istiod would push to ``proxy``, placed on this machine by ``placement``.

    Args:
        cfg: the mesh's configuration.
        proxy: the gateway or sidecar (its namespace and labels decide what it sees).
        placement: where it runs locally.
        workloads: the pods of the mesh (endpoints of Kubernetes Services).

    Returns:
        The proxy's listeners, clusters, routes, endpoints, secrets and warnings.
    """
    registry = services(cfg, workloads)
    visible = visible_services(cfg, proxy, registry)
    find = service_finder(visible)

    warnings = list(cfg.warnings)
    if proxy.kind == "router":
        gw = build_gateway(cfg, proxy, placement, find)
        wanted = _gateway_destinations(cfg, proxy) if cfg.settings.filter_gateway_clusters else None
        cs = build_clusters(cfg, proxy, placement, visible, wanted)
        listeners, routes, sds, warnings = (
            gw.listeners,
            gw.route_configs,
            gw.sds_names + cs.sds_names,
            warnings + gw.warnings,
        )
    else:
        sc = build_sidecar(cfg, proxy, placement, visible, name_table(cfg.settings, visible), find)
        cs = build_clusters(cfg, proxy, placement, visible)
        listeners, routes, sds, warnings = sc.listeners, sc.route_configs, cs.sds_names, warnings + sc.warnings
    hits, patched = apply_listener_patches(cfg, proxy, listeners)  # EnvoyFilters: after istiod's own build
    secrets = {n: sds_resource(cfg, proxy.namespace, n, placement) for n in dict.fromkeys(sds)}
    return ProxyConfig(
        proxy,
        placement,
        listeners,
        cs.clusters,
        routes,
        cs.endpoints,
        secrets,
        warnings + cs.warnings + patched,
        hits,
    )


def _gateway_destinations(cfg: ConfigSet, proxy: Proxy) -> set[str]:
    """Hosts that VirtualServices bound to this proxy's gateways route to (istiod ``destinationsByGateway``)."""
    keys = {gateway_key(g) for g in gateways_for(cfg, proxy)}
    out: set[str] = set()
    for vs in cfg.virtual_services:
        if keys & set(vs_gateways(vs)):
            hosts = [rd.destination.host for r in vs.spec.http for rd in r.route]
            hosts += [r.mirror.host for r in vs.spec.http if r.mirror is not None]
            hosts += [rd.destination.host for r in vs.spec.tls for rd in r.route]
            hosts += [rd.destination.host for r in vs.spec.tcp for rd in r.route]
            out |= {qualify_host(h, vs.metadata.namespace) for h in hosts}
    return out


def _response(kind: str, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"version_info": "local", "resources": [{"@type": TYPES[kind], **r} for r in resources]}


def _rds_names(listeners: list[dict[str, Any]]) -> list[str]:
    return [
        f["typed_config"]["rds"]["route_config_name"]
        for lst in listeners
        for chain in lst["filter_chains"]
        for f in chain["filters"]
        if "rds" in f.get("typed_config", {})
    ]


def _strip_sds_config(value: Any) -> None:
    """Turn SDS references into references to static secrets (same names)."""
    for d in mappings(value):
        if "sds_config" in d and "name" in d:
            d.pop("sds_config")


def _redact(secret: dict[str, Any]) -> dict[str, Any]:
    """``secret`` without its private key's bytes (a key file's name stays: it is where the key is, not the key)."""
    if "tls_certificate" in secret and "filename" not in secret["tls_certificate"].get("private_key", {}):
        secret = copy.deepcopy(secret)
        secret["tls_certificate"]["private_key"] = {"inline_bytes": REDACTED}
    return secret


def _static_listener(
    p: Placement, name: str, port: int, path: str, cluster: str, rewrite: str | None = None
) -> dict[str, Any]:
    route: dict[str, Any] = {"cluster": cluster}
    if rewrite:
        route["prefix_rewrite"] = rewrite
    hcm = {
        "@type": HCM,
        "stat_prefix": cluster,
        "route_config": {
            "virtual_hosts": [
                {"name": "backend", "domains": ["*"], "routes": [{"match": {"prefix": path}, "route": route}]}
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
            }
        ],
    }
    return {
        "name": name,
        "address": {"socket_address": {"address": p.address, "port_value": p.listen_port(port)}},
        "filter_chains": [
            {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
        ],
    }


def _admin_cluster(name: str, p: Placement) -> dict[str, Any]:
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "0.250s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": p.address, "port_value": p.admin_port}}
                            }
                        }
                    ]
                }
            ],
        },
    }
