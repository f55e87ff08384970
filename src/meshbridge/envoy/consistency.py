"""Structural consistency of one proxy's configuration (pure), before Envoy runs it.

Like go-control-plane's ``Snapshot.Consistent()``: every route configuration a listener names exists,
every EDS cluster has its assignment, names are unique. Then the runtime consequences that istiod's
configuration allows on purpose (``validate_clusters: false``): a route to a cluster the proxy lacks
answers 503 ``NC``; a secret istiod would not serve leaves a listener resetting handshakes or a cluster
answering 503.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from meshbridge.envoy.tls import secret_refs
from meshbridge.envoy.translate import ProxyConfig


@dataclass(frozen=True)
class Inconsistency:
    """One finding: ``error`` means Envoy would reject or never serve it; ``warning`` a runtime failure."""

    severity: Literal["error", "warning"]
    resource: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.resource}: {self.message}"


def check_consistency(pc: ProxyConfig) -> list[Inconsistency]:
    """Every reference of ``pc`` checked; empty when listeners, routes, clusters and secrets all line up."""
    out: list[Inconsistency] = []
    for kind, items in (("listener", pc.listeners), ("cluster", pc.clusters), ("route config", pc.route_configs)):
        for name, n in Counter(i["name"] for i in items).items():
            if n > 1:
                out.append(Inconsistency("error", f"{kind} {name}", f"defined {n} times; Envoy rejects the update"))
    routes = {rc["name"]: rc for rc in pc.route_configs}
    clusters = {c["name"]: c for c in pc.clusters}
    assignments = {e["cluster_name"] for e in pc.endpoints}
    for lst in pc.listeners:
        for chain in lst["filter_chains"]:
            for f in chain["filters"]:
                rds = f.get("typed_config", {}).get("rds", {}).get("route_config_name")
                if rds and rds not in routes:
                    out.append(
                        Inconsistency(
                            "error", f"listener {lst['name']}", f"names route config {rds}, which does not exist"
                        )
                    )
            for ref in secret_refs(chain.get("transport_socket", {})):
                if pc.secrets.get(ref) is None:
                    out.append(
                        Inconsistency(
                            "warning",
                            f"listener {lst['name']}",
                            f"secret {ref} is not served: TLS handshakes on this chain are reset",
                        )
                    )
    for rc in pc.route_configs:
        domains: Counter[str] = Counter(d for vh in rc.get("virtual_hosts", []) for d in vh.get("domains", []))
        for d, n in domains.items():
            if n > 1:
                out.append(
                    Inconsistency(
                        "error", f"route config {rc['name']}", f"domain {d} is in {n} virtual hosts; Envoy rejects it"
                    )
                )
        for vh in rc.get("virtual_hosts", []):
            for route in vh.get("routes", []):
                for target in _route_clusters(route):
                    if target not in clusters:
                        out.append(
                            Inconsistency(
                                "warning",
                                f"route config {rc['name']} vhost {vh['name']}",
                                f"routes to {target}, which this proxy does not have: 503 NC cluster_not_found",
                            )
                        )
    for c in pc.clusters:
        if c.get("type") == "EDS" and c["name"] not in assignments:
            out.append(Inconsistency("error", f"cluster {c['name']}", "EDS cluster without a ClusterLoadAssignment"))
        for ref in secret_refs(c.get("transport_socket", {})):
            if pc.secrets.get(ref) is None:
                out.append(
                    Inconsistency("warning", f"cluster {c['name']}", f"secret {ref} is not served: requests get 503 UF")
                )
    return out


def _route_clusters(route: dict[str, Any]) -> list[str]:
    action = route.get("route", {})
    if "cluster" in action:
        return [action["cluster"]]
    return [c["name"] for c in action.get("weighted_clusters", {}).get("clusters", [])]
