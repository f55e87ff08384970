"""MB122: apps whose sidecars go around the gateway a VirtualService routes their host through (pure).

A VirtualService applies to sidecars only when its ``gateways`` is empty or lists ``mesh``
(:func:`meshbridge.istio.visibility.vs_gateways`). One that lists only the egress Gateway
(``gateways: [istio-egress/istio-egressgateway]``), or the gateway half of a two-VirtualService form whose
``mesh`` half is missing, routes the host on the gateway, but the apps' sidecars never take it: istiod gives them
the ServiceEntry's own route and cluster, and they send the request out themselves, without what the gateway
adds (the mutual TLS it originates). Where each sidecar really sends the request is asked of the simulator
(:mod:`meshbridge.envoy.simulate`) over its translation, as the twin's path check does
(:func:`meshbridge.envoy.pathsim.bypasses` follows the sidecar's own cluster to the exporter).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.istio.protocol import is_http
from meshbridge.istio.resources import VirtualService
from meshbridge.istio.visibility import (
    MESH_GATEWAY,
    Proxy,
    gateway_key,
    gateways_for,
    qualify_host,
    resolve_gateway_name,
    vs_gateways,
)
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding
from meshbridge.lint.inputs import LintInput, MeshInput


@dataclass(frozen=True)
class Bypass:
    """An app's sidecar that sends ``host`` itself, though ``vs`` routes it on the mesh's gateways only.

    Attributes:
        vs: the VirtualService that binds no sidecar.
        gateways: the gateway proxies of the mesh it binds (``<mesh>/<workload>``).
        app: the app's sidecar (``<mesh>/<workload>``).
        host: the host the app calls; ``port``: the port.
        cluster: the cluster the sidecar sends it to instead (the ServiceEntry's).
        tls: whether that cluster originates TLS.
    """

    vs: VirtualService
    gateways: tuple[str, ...]
    app: str
    host: str
    port: int
    cluster: str
    tls: bool


def bypassing_sidecars(inp: LintInput, mesh: MeshInput) -> list[Bypass]:
    """Every app sidecar of ``mesh`` that sends a host itself which a VirtualService routes through the mesh's
    gateways but binds no sidecar for (``gateways`` without ``mesh``). The VirtualService is meant for the apps
    when one of its matches names ``mesh``, or when the host is one ``mesh`` imports (a link of ``inp``); else the
    sidecar's going around the gateway matters when the gateway originates TLS to the host and the sidecar sends
    it in plain text (an import whose exporter is not in the input)."""
    imported = {link.host.lower() for link in inp.links if link.importer == mesh.name}
    out: list[Bypass] = []
    for vs in mesh.config.virtual_services:
        if not vs.spec.gateways or MESH_GATEWAY in vs_gateways(vs):
            continue
        bound = _bound_gateways(mesh, vs)
        if not bound:
            continue  # binds no gateway proxy: MB102/MB103
        for host in (qualify_host(h, vs.metadata.namespace).lower() for h in vs.spec.hosts):
            found = list(_sidecars_sending(mesh, vs, bound, host))
            if host in imported or _names_mesh(vs):
                out += found
            elif found and _originates_tls(mesh, bound, host):
                out += [b for b in found if not b.tls]
    return out


def _originates_tls(mesh: MeshInput, bound: dict[str, Proxy], host: str) -> bool:
    """Whether one of the ``bound`` gateways routes ``host`` to a cluster of that host that originates TLS."""
    views = [mesh.view(proxy) for proxy in bound.values()]
    return any(
        (parsed := parse_cluster_name(cluster)) is not None
        and parsed[3].lower() == host
        and cluster in view.clusters
        and view.upstream_tls(cluster) is not None
        for view in views
        for cluster in view.routed
    )


def _names_mesh(vs: VirtualService) -> bool:
    """Whether a match of ``vs`` names ``mesh`` (the one-VirtualService form: its sidecar half never binds)."""
    return any(
        resolve_gateway_name(g, vs.metadata.namespace) == MESH_GATEWAY
        for http in vs.spec.http
        for m in http.match
        for g in m.gateways
    )


def _bound_gateways(mesh: MeshInput, vs: VirtualService) -> dict[str, Proxy]:
    """The gateway proxies of ``mesh`` whose Gateways ``vs`` lists, by ``<mesh>/<workload>``."""
    keys = set(vs_gateways(vs))
    return {
        f"{mesh.name}/{p.name}": p
        for p in mesh.routers
        if any(gateway_key(gw) in keys for gw in gateways_for(mesh.config, p))
    }


def _sidecars_sending(mesh: MeshInput, vs: VirtualService, bound: dict[str, Proxy], host: str) -> Iterator[Bypass]:
    """The apps whose sidecar routes ``host`` (each HTTP port) to a cluster that is none of ``bound``'s Services."""
    services = {p.service.fqdn.lower() for p in bound.values() if p.service is not None}
    for app in mesh.sidecars:
        svc = mesh.find(app, host)
        if svc is None:
            continue
        view = mesh.view(app)
        for port in (p.number for p in svc.ports if is_http(p.protocol)):
            result = simulate(view, Request(port, host))
            parsed = parse_cluster_name(result.cluster or "") if result.ok else None
            if parsed is not None and parsed[3].lower() not in services:
                tls = view.upstream_tls(str(result.cluster)) is not None
                yield Bypass(vs, tuple(bound), view.name, host, port, str(result.cluster), tls)


def check_sidecars_bypass_gateway(inp: LintInput) -> Iterator[Finding]:
    """MB122: a VirtualService routes a host the apps call through the mesh's gateway, but binds no sidecar."""
    for mesh in inp.meshes:
        by_vs: dict[tuple[int, str, int], list[Bypass]] = {}
        for b in bypassing_sidecars(inp, mesh):
            by_vs.setdefault((id(b.vs), b.host, b.port), []).append(b)
        for found in by_vs.values():
            b, vs = found[0], found[0].vs
            apps = sorted({x.app for x in found})
            senders = f"the sidecar of {apps[0]} sends" if len(apps) == 1 else f"the sidecars of {', '.join(apps)} send"
            listed = ", ".join(vs.spec.gateways)
            yield finding(
                "MB122",
                [mesh.ref("VirtualService", vs.metadata.namespace, vs.metadata.name, "spec.gateways")],
                f"gateways [{listed}] does not list mesh, so the VirtualService binds no sidecar: {senders} "
                f"{b.host}:{b.port} to {b.cluster} (the ServiceEntry's route) instead of through "
                f"{', '.join(b.gateways)}",
                f"add mesh to its gateways (gateways: [mesh, {listed}]) with a route matching gateways: [mesh] to the "
                f"egress gateway's Service, or add a VirtualService for {b.host} bound to the sidecars (gateways: "
                "[mesh], or no gateways) that routes it there",
            )


CHECKS = (check_sidecars_bypass_gateway,)
