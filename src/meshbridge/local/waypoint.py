"""An ambient importer in the local twin: its waypoint on istiod's own configuration, its apps without a sidecar.

A mesh with ``dataplane: ambient`` egresses through a waypoint (``render/ambient.py``). The twin runs that
waypoint as an Envoy on the part of istiod's waypoint configuration stock Envoy can run
(:func:`meshbridge.istiod.waypoint.outbound_part`, from the oracle), in place of the egress gateway, and starts
no sidecar for the mesh's apps. ztunnel is not run: an app's request that ztunnel would capture and carry
through HBONE to the waypoint goes to the waypoint's plain-HTTP listener of the service port instead, with the
app's identity (what HBONE would authenticate) in the filter state the waypoint's authorization policies read.
So the waypoint's routes, policies, mutual TLS and secrets to the exporter run for real, the app → ztunnel →
waypoint hop does not (docs/ambient.md, docs/fidelity.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshbridge.envoy.translate import ProxyConfig
from meshbridge.errors import LocalError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.visibility import spiffe_id
from meshbridge.istiod.adopt import adopt
from meshbridge.istiod.oracle import IstiodConfig, OracleUnavailable, ensure_oracle, run_oracle
from meshbridge.istiod.waypoint import outbound_part, sds_configs, waypoint_request
from meshbridge.render.bridge import render_bridge
from meshbridge.render.manifests import Document
from meshbridge.spec.models import Bridge
from meshbridge.world import ProxySpec


@dataclass(frozen=True)
class Waypoints:
    """What the twin needs to run the waypoints of a bridge's ambient importers: the oracle, and each such mesh's
    rendered documents (empty: the bridge has none)."""

    binary: Path | None = None
    docs: dict[str, list[Document]] = field(default_factory=dict)

    def app(self, spec: ProxySpec) -> bool:
        """Whether ``spec`` is an app of an ambient importer (no sidecar: its requests go to the waypoint)."""
        return spec.role == "app" and spec.mesh in self.docs

    def waypoint(self, spec: ProxySpec) -> bool:
        """Whether ``spec`` is the egress gateway of an ambient importer (it runs as the waypoint)."""
        return spec.role == "egress" and spec.mesh in self.docs


def ambient_importers(bridge: Bridge) -> list[str]:
    """The meshes of ``bridge`` the twin runs with a waypoint: its own ambient meshes that import something."""
    meshes = bridge.spec.meshes.items()
    return [m for m, spec in meshes if spec.dataplane == "ambient" and not spec.peer and bridge.exports_to(m)]


def waypoint_oracle(bridge: Bridge) -> Path | None:
    """The oracle's binary when ``bridge`` has an ambient importer (its waypoint runs istiod's configuration), else
    ``None``.

    Raises:
        LocalError: the oracle cannot run here (no Go, a failed build), naming the mesh and what is missing.
    """
    ambient = ambient_importers(bridge)
    if not ambient:
        return None
    try:
        return ensure_oracle()
    except OracleUnavailable as e:
        raise LocalError(
            f"mesh {ambient[0]} has dataplane: ambient: the twin runs its waypoint on istiod's own configuration, "
            f"which needs the istiod oracle: {e}"
        ) from None


def waypoints(bridge: Bridge, binary: Path | None, credentials: Any, addresses: Mapping[str, str]) -> Waypoints:
    """The :class:`Waypoints` of ``bridge``: each ambient importer's documents, rendered with ``credentials`` and the
    exporters' load-balancer ``addresses`` as the twin renders them (:func:`meshbridge.inputs.mesh_documents`)."""
    ambient = ambient_importers(bridge)
    if binary is None or not ambient:
        return Waypoints()
    rendered = render_bridge(bridge, credentials, addresses=dict(addresses))
    return Waypoints(binary, {m: [dict(d) for d in rendered[m]] for m in ambient})


def waypoint_config(
    bridge: Bridge, ours: ProxyConfig, cfg: ConfigSet, ambient: Waypoints, app: ProxySpec, zone: Mapping[str, str]
) -> ProxyConfig:
    """istiod's waypoint of an ambient importer, as the twin runs it in place of its egress gateway ``ours``.

    Args:
        bridge: the bridge.
        ours: meshbridge's translation of the mesh's egress gateway: its placement, and the secrets it serves.
        cfg: the mesh's configuration (the Secrets served under istiod's names).
        ambient: the oracle and the mesh's rendered documents (the oracle's request).
        app: the app (of the mesh) whose requests the waypoint's plain-HTTP listeners stand for (its identity is
            the peer's).
        zone: the mesh's DNS (the exporter's load-balancer name → the twin's address).

    Returns:
        One listener per imported service port (``waypoint_<port>``, bound on ``ours``'s address), the clusters
        its routes name, delivered as :func:`meshbridge.istiod.adopt.adopt` delivers istiod's configuration.
    """
    mesh = app.mesh
    spec = bridge.spec.meshes[mesh]
    assert spec.egress_gateway is not None and ambient.binary is not None  # an importer, with the oracle
    request = waypoint_request(mesh, spec, ambient.docs[mesh])
    answer = run_oracle(request, ambient.binary).proxies[f"{mesh}/{spec.egress_gateway.name}"]
    peer = spiffe_id(spec.trust_domain, app.proxy.namespace, app.proxy.sa)
    addresses = {host: (zone.get(host, host), ours.placement.endpoint(host, port)[1]) for host, port in _dns(answer)}
    listeners: list[dict[str, Any]] = []
    clusters: dict[str, dict[str, Any]] = {}
    for port in sorted({ex.port for ex in bridge.exports_to(mesh)}):
        part = outbound_part(answer, port, ("0.0.0.0", port), peer, addresses)
        listeners += part["listeners"]
        clusters.update((c["name"], c) for c in part["clusters"])
    for cluster in clusters.values():
        for sds in sds_configs(cluster):
            sds["sdsConfig"] = {"ads": {}}  # delivered from the twin's SDS files, as every secret of the twin
    return adopt(IstiodConfig(answer.name, listeners, [], list(clusters.values()), [], []), ours, cfg)


def _dns(answer: IstiodConfig) -> list[tuple[str, int]]:
    """The endpoints its DNS clusters resolve, ``(name, port)``."""
    return [
        (sa["address"], int(sa["portValue"]))
        for c in answer.clusters
        if c.get("type") in ("STRICT_DNS", "LOGICAL_DNS")
        for locality in c["loadAssignment"]["endpoints"]
        for ep in locality["lbEndpoints"]
        for sa in [ep["endpoint"]["address"]["socketAddress"]]
    ]
