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
from meshbridge.istio.gatewayapi import CONVERTED_FROM, DEPLOYED_AS, GATEWAY_NAME_LABEL
from meshbridge.istio.parse import build_config
from meshbridge.istio.resources import KubeService
from meshbridge.istio.visibility import Proxy, Workload, selects
from meshbridge.spec.models import Bridge, GatewayWorkload, IngressGateway, Mesh


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


def gateway_service(mesh: Mesh, gw: GatewayWorkload) -> KubeService:
    """The gateway's Kubernetes Service: its ports and targetPorts, selecting the gateway pods."""
    return KubeService.model_validate(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": gw.name, "namespace": gw.namespace},
            "spec": {
                "selector": mesh.pod_labels(gw.labels),
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
            labels = mesh.pod_labels(gw.labels)
            if isinstance(gw, IngressGateway) and gw.api == "gateway-api":  # Istio deploys it: its pods carry this
                labels[GATEWAY_NAME_LABEL] = gw.gateway
            proxy = Proxy("router", gw.name, gw.namespace, labels, gateway_service(mesh, gw), service_account=gw.sa)
            out.append(ProxySpec(mesh_name, proxy, role))
    if bridge.exports_to(mesh_name):
        for app in mesh.callers():
            out.append(
                ProxySpec(mesh_name, Proxy("sidecar", app.name, app.namespace, mesh.pod_labels(app.labels)), "app")
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
        Workload(p.proxy.name, p.proxy.namespace, p.proxy.labels, addresses[p.name], p.proxy.service_account)
        for p in proxies(bridge, mesh_name)
        if p.name in addresses
    ]


# -- a world without a spec: Istio's chart defaults ------------------------------------------------------

CHART_PORTS = (("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443))
"""Ports of Istio's legacy gateway charts (``manifests/charts/gateways/istio-{ingress,egress}``): 80→8080, 443→8443."""

DEFAULT_APP = ("sleep", "default", {"app": "sleep"})
"""The caller assumed when no spec names one: ``sleep`` in ``default`` (the article's test app)."""


@dataclass(frozen=True)
class AssumedWorld:
    """The world guessed from a mesh's own manifests, and what was assumed (one sentence per guess)."""

    proxies: list[ProxySpec]
    services: list[KubeService]
    assumptions: list[str]


def assumed_world(mesh_name: str, cfg: ConfigSet) -> AssumedWorld:
    """Gateway workloads, their Services and one app, guessed when no bridge spec describes the mesh.

    * Each distinct Gateway ``selector`` (selectors that are subsets of one another are one workload) is
      one gateway pod with exactly those labels. A Service in ``cfg`` whose selector fits those labels is
      its Service (name, namespace, ports); otherwise the pod is named after its ``app`` label (or
      ``istio-<istio label>``), runs in the Gateway's namespace, and gets the chart's Service
      (15021, 80→8080, 443→8443).
    * One app, ``sleep`` in ``default`` (labels ``app: sleep``), stands for the mesh's callers.

    Services that ``cfg`` does not already hold are returned in ``services`` for the caller to add.
    """
    groups: list[tuple[str, dict[str, str], list[str]]] = []  # (namespace, labels, gateways)
    for gw in cfg.gateways:
        sel = dict(gw.spec.selector)
        if not sel:
            continue
        key = f"{gw.metadata.namespace}/{gw.metadata.name}"
        for i, (ns, labels, names) in enumerate(groups):
            compatible = all(labels.get(k, v) == v for k, v in sel.items())
            if compatible and (selects(sel, labels) or selects(labels, sel)):
                groups[i] = (ns, {**labels, **sel}, [*names, key])
                break
        else:
            groups.append((gw.metadata.namespace, sel, [key]))
    proxies: list[ProxySpec] = []
    services: list[KubeService] = []
    assumptions: list[str] = []
    for ns, labels, names in groups:
        svc = next(
            (s for s in cfg.services if _fits(s.spec.selector, labels)),
            None,
        )
        if svc is not None:
            pod_labels = {**labels, **svc.spec.selector}
            name, namespace = svc.metadata.name, svc.metadata.namespace
            assumptions.append(
                f"Gateway(s) {', '.join(names)} select pods of Service {namespace}/{name} "
                f"(labels {_labels(pod_labels)})"
            )
        else:
            pod_labels = labels
            name = _deployed_as(cfg, names) or _gateway_name(labels)
            namespace = ns
            svc = KubeService.model_validate(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": name, "namespace": namespace},
                    "spec": {
                        "selector": dict(labels),
                        "ports": [{"name": n, "port": p, "targetPort": t} for n, p, t in _assumed_ports(cfg, names)],
                        "type": "LoadBalancer",
                    },
                }
            )
            services.append(svc)
            ports = ", ".join(f"{p}→{t}" if p != t else str(p) for _, p, t in _assumed_ports(cfg, names))
            assumptions.append(
                f"Gateway(s) {', '.join(names)} run on a gateway {namespace}/{name} with labels {_labels(labels)} "
                f"and {'Istio' if _converted(cfg, names) else 'the chart'}'s Service ports {ports}"
            )
        role = "ingress" if "ingress" in name else "egress" if "egress" in name else "gateway"
        proxies.append(ProxySpec(mesh_name, Proxy("router", name, namespace, pod_labels, svc), role))
    app, app_ns, app_labels = DEFAULT_APP
    proxies.append(ProxySpec(mesh_name, Proxy("sidecar", app, app_ns, dict(app_labels)), "app"))
    assumptions.append(f"one app calls from namespace {app_ns} ({app}, labels {_labels(app_labels)})")
    return AssumedWorld(proxies, services, assumptions)


def _converted(cfg: ConfigSet, names: list[str]) -> dict[int, str]:
    """The listener ports (and protocols) of the Gateways ``names`` (``namespace/name``) when all are converted from
    a Kubernetes Gateway (:mod:`meshbridge.istio.gatewayapi`), else ``{}``."""
    gateways = [gw for gw in cfg.gateways if f"{gw.metadata.namespace}/{gw.metadata.name}" in names]
    if not gateways or not all(CONVERTED_FROM in gw.metadata.annotations for gw in gateways):
        return {}
    return {s.port.number: s.port.protocol.lower() for gw in gateways for s in gw.spec.servers}


def _deployed_as(cfg: ConfigSet, names: list[str]) -> str | None:
    """The Deployment Istio creates for the Kubernetes Gateway the Gateways ``names`` are converted from, if any."""
    return next(
        (
            gw.metadata.annotations[DEPLOYED_AS]
            for gw in cfg.gateways
            if f"{gw.metadata.namespace}/{gw.metadata.name}" in names and DEPLOYED_AS in gw.metadata.annotations
        ),
        None,
    )


def _assumed_ports(cfg: ConfigSet, names: list[str]) -> list[tuple[str, int, int]]:
    """The assumed Service's ports: the chart's (80→8080, 443→8443), or for a Kubernetes Gateway the Service Istio
    deploys for it, each listener port to itself, named by its protocol (``extractServicePorts``)."""
    listeners = _converted(cfg, names)
    if not listeners:
        return list(CHART_PORTS)
    return [CHART_PORTS[0], *((f"{protocol}-{p}", p, p) for p, protocol in sorted(listeners.items()))]


def _fits(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """A Service selector fits a gateway's labels: they share a key, and every shared key agrees (the
    Service may select on labels the Gateway's selector does not name, such as ``app``)."""
    shared = selector.keys() & labels.keys()
    return bool(shared) and all(selector[k] == labels[k] for k in shared)


def _gateway_name(labels: dict[str, str]) -> str:
    app = labels.get("app", "")
    if "gateway" in app:
        return app
    if labels.get("istio"):
        return f"istio-{labels['istio']}"
    return app or "istio-gateway"


def _labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in sorted(labels.items())) + "}"
