"""``render --install --format istioctl``: the IstioOperator documents the seed article installs in each mesh (pure).

What the bridge needs of an installation is stated once here, for both forms (:mod:`meshbridge.render.helm`
maps the same settings onto Istio's Helm charts): :func:`mesh_config`, the mesh's ``pilot_env`` and
:func:`gateways`.

Per mesh, as the article does with ``istioctl install -r <rev> -f -`` and ``kubectl apply``:

1. ``IstioOperator/control-plane``: profile ``minimal`` (``ambient`` for ``dataplane: ambient``: istiod,
   the CNI node agent and ztunnel), the revision, ``components.pilot.k8s.env`` from
   ``istio.pilotEnv`` and ``meshConfig.defaultConfig.proxyMetadata`` from ``istio.proxyMetadata``;
2. the revision-less ``istiod`` Service in ``istio-system`` (so webhooks and gateways find istiod);
3. the gateway namespaces and ``IstioOperator/istio-gateways`` (profile ``empty``) with the mesh's
   ingress and/or egress gateway, their labels and Service ports.
"""

from __future__ import annotations

from typing import Any, Literal

from meshbridge.render.manifests import Document, ManifestSet, ownership_labels
from meshbridge.spec.models import Bridge, GatewayWorkload, Mesh

IOP_API = "install.istio.io/v1alpha1"

GatewayRole = Literal["ingress", "egress"]


def mesh_config(mesh: Mesh) -> dict[str, Any]:
    """The ``meshConfig`` the bridge needs: DNS capture and auto-allocation (``proxyMetadata``), the trust domain.

    The IstioOperator's ``spec.meshConfig`` and the istiod chart's ``meshConfig`` value alike.
    """
    return {
        "defaultConfig": {"proxyMetadata": dict(mesh.istio.proxy_metadata)},
        "enablePrometheusMerge": True,
        "trustDomain": mesh.trust_domain,
    }


def gateways(mesh: Mesh) -> list[tuple[GatewayRole, GatewayWorkload]]:
    """The mesh's gateway workloads to install, ingress first, with their role. An ambient importer's egress
    gateway is not one: it is a waypoint, which istiod deploys from the rendered Gateway API ``Gateway``.

    The role sets the Service type: an ingress gateway's is a ``LoadBalancer`` (the other mesh dials it),
    an egress gateway's a ``ClusterIP`` (only the mesh's own apps call it), as IstioOperator's defaults have it.
    """
    out: list[tuple[GatewayRole, GatewayWorkload]] = []
    if mesh.ingress_gateway is not None:
        out.append(("ingress", mesh.ingress_gateway))
    if mesh.egress_gateway is not None and mesh.dataplane == "sidecar":
        out.append(("egress", mesh.egress_gateway))
    return out


def render_install(bridge: Bridge) -> dict[str, ManifestSet]:
    """The installation documents of every mesh, for ``istioctl install -f`` (IstioOperators) and kubectl."""
    labels = ownership_labels(bridge.metadata.name)
    return {name: ManifestSet.of(name, _mesh_install(mesh, labels)) for name, mesh in bridge.spec.meshes.items()}


def _mesh_install(mesh: Mesh, labels: dict[str, str]) -> list[Document]:
    istio = mesh.istio
    control_plane: dict[str, Any] = {
        "profile": "minimal" if mesh.dataplane == "sidecar" else "ambient",
        "components": {"pilot": {"k8s": {"env": [{"name": k, "value": v} for k, v in istio.pilot_env.items()]}}},
        "meshConfig": mesh_config(mesh),
    }
    if istio.revision:
        control_plane["revision"] = istio.revision
    docs: list[Document] = [
        _iop("control-plane", control_plane, labels),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": "istiod",
                "namespace": "istio-system",
                "labels": {"app": "istiod", "istio": "pilot", "release": "istio", **labels},
            },
            "spec": {
                "type": "ClusterIP",
                "ports": [
                    {"name": "grpc-xds", "port": 15010},
                    {"name": "https-dns", "port": 15012},
                    {"name": "https-webhook", "port": 443, "targetPort": 15017},
                    {"name": "http-monitoring", "port": 15014},
                ],
                "selector": {"app": "istiod"},
            },
        },
    ]
    components: dict[str, Any] = {}
    for role, gw in gateways(mesh):
        components[f"{role}Gateways"] = [_gateway_component(gw)]
    if components:
        gateway_iop: dict[str, Any] = {"profile": "empty", "components": components}
        if istio.revision:
            gateway_iop["revision"] = istio.revision
        namespaces = sorted({g["namespace"] for group in components.values() for g in group})
        docs += [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": dict(labels)}}
            for ns in namespaces
        ]
        docs.append(_iop("istio-gateways", gateway_iop, labels))
    return docs


def _iop(name: str, spec: dict[str, Any], labels: dict[str, str]) -> Document:
    return {
        "apiVersion": IOP_API,
        "kind": "IstioOperator",
        "metadata": {"name": name, "namespace": "istio-system", "labels": dict(labels)},
        "spec": spec,
    }


def _gateway_component(gw: GatewayWorkload) -> dict[str, Any]:
    return {
        "name": gw.name,
        "namespace": gw.namespace,
        "enabled": True,
        "label": dict(gw.labels),
        "k8s": {
            "service": {"ports": [{"name": p.name, "port": p.port, "targetPort": p.target_port} for p in gw.ports]},
        },
    }
