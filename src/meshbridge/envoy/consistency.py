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

from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView, route_clusters, secret_refs
from meshbridge.severity import Severity


@dataclass(frozen=True)
class Inconsistency:
    """One finding: ``error`` means Envoy would reject or never serve it; ``warning`` a runtime failure."""

    severity: Severity
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
    view = EnvoyView.of(pc)
    assignments = {e["cluster_name"] for e in pc.endpoints}
    for chain in view.chains:
        rds = chain.route_config
        if rds and view.route_config(rds) is None:
            out.append(
                Inconsistency("error", f"listener {chain.listener}", f"names route config {rds}, which does not exist")
            )
        for ref in secret_refs(chain.config.get("transport_socket", {})):
            if view.secret(ref) is None:
                out.append(
                    Inconsistency(
                        "warning",
                        f"listener {chain.listener}",
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
                for target in route_clusters(route):
                    if target not in view.clusters:
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
            if view.secret(ref) is None:
                out.append(
                    Inconsistency("warning", f"cluster {c['name']}", f"secret {ref} is not served: requests get 503 UF")
                )
    return out
