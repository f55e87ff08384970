"""The world a bridge spec describes, beyond its Istio resources (pure).

Per mesh: the mesh settings (Istio version, pilot env, proxyMetadata, trust domain), the gateways'
Kubernetes Services (ports → targetPorts), and the proxies that run: each gateway and each app's sidecar,
with their namespaces and pod labels. ``lint``, ``translate``, the local twin and ``verify`` all read the
world from here, so they agree on who selects whom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from meshbridge.istio.config import ConfigSet, MeshSettings
from meshbridge.istio.parse import build_config
from meshbridge.istio.resources import KubeService
from meshbridge.istio.visibility import Proxy, Workload
from meshbridge.spec.models import Bridge, GatewayWorkload, Mesh


@dataclass(frozen=True)
class ProxySpec:
    """A proxy of the world: ``<mesh>/<workload>``, its role and its identity in the mesh."""

    mesh: str
    proxy: Proxy
    role: str  # "ingress", "egress" or "app"

    @property
    def name(self) -> str:
        """``<mesh>/<workload>``, e.g. ``eks/istio-ingressgateway``; what ``--proxy`` takes."""
        return f"{self.mesh}/{self.proxy.name}"


def settings(mesh: Mesh) -> MeshSettings:
    """The mesh settings the spec declares."""
    return MeshSettings(
        istio_version=mesh.istio.version,
        pilot_env=dict(mesh.istio.pilot_env),
        proxy_metadata=dict(mesh.istio.proxy_metadata),
        trust_domain=mesh.trust_domain,
    )


def pod_labels(mesh: Mesh, labels: dict[str, str]) -> dict[str, str]:
    """A pod's labels, plus ``istio.io/rev`` when the mesh runs a revision."""
    out = dict(labels)
    if mesh.istio.revision:
        out.setdefault("istio.io/rev", mesh.istio.revision)
    return out


def gateway_service(mesh: Mesh, gw: GatewayWorkload) -> KubeService:
    """The gateway's Kubernetes Service: its ports and targetPorts, selecting the gateway pods."""
    return KubeService.model_validate(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": gw.name, "namespace": gw.namespace},
            "spec": {
                "selector": pod_labels(mesh, gw.labels),
                "ports": [{"name": p.name, "port": p.port, "targetPort": p.target_port} for p in gw.ports],
                "type": "LoadBalancer",
            },
        }
    )


def proxies(bridge: Bridge, mesh_name: str) -> list[ProxySpec]:
    """Every proxy of ``mesh_name``: its ingress and egress gateways, and its apps (importers only)."""
    mesh = bridge.spec.meshes[mesh_name]
    out = []
    for role, gw in (("ingress", mesh.ingress_gateway), ("egress", mesh.egress_gateway)):
        if gw is not None:
            proxy = Proxy("router", gw.name, gw.namespace, pod_labels(mesh, gw.labels), gateway_service(mesh, gw))
            out.append(ProxySpec(mesh_name, proxy, role))
    if bridge.exports_to(mesh_name):
        for app in mesh.callers():
            out.append(
                ProxySpec(mesh_name, Proxy("sidecar", app.name, app.namespace, pod_labels(mesh, app.labels)), "app")
            )
    return out


def all_proxies(bridge: Bridge) -> list[ProxySpec]:
    """The proxies of every mesh, in spec order."""
    return [p for mesh in bridge.spec.meshes for p in proxies(bridge, mesh)]


def find_proxy(bridge: Bridge, name: str) -> ProxySpec:
    """The proxy named ``<mesh>/<workload>`` (or just ``<workload>`` when unique).

    Raises:
        KeyError: with the list of known proxies in the message.
    """
    known = all_proxies(bridge)
    matches = [p for p in known if name in (p.name, p.proxy.name)]
    if len(matches) != 1:
        names = ", ".join(p.name for p in known)
        why = "is ambiguous" if matches else "is not a proxy of this bridge"
        raise KeyError(f"{name!r} {why}; proxies: {names}")
    return matches[0]


def mesh_config(bridge: Bridge, mesh_name: str, documents: Iterable[tuple[str, dict[str, Any]]]) -> ConfigSet:
    """The mesh's ConfigSet: its Istio documents plus the gateway Services of the world."""
    mesh = bridge.spec.meshes[mesh_name]
    cfg = build_config(documents, settings(mesh))
    declared = {(s.metadata.namespace, s.metadata.name) for s in cfg.services}
    for spec in proxies(bridge, mesh_name):
        svc = spec.proxy.service
        if svc is not None and (svc.metadata.namespace, svc.metadata.name) not in declared:
            cfg.services.append(svc)
    return cfg


def workloads(bridge: Bridge, mesh_name: str, addresses: dict[str, str]) -> list[Workload]:
    """The mesh's pods, at ``addresses`` (proxy name → IP), so Services have endpoints."""
    return [
        Workload(p.proxy.name, p.proxy.namespace, p.proxy.labels, addresses[p.name])
        for p in proxies(bridge, mesh_name)
        if p.name in addresses
    ]
