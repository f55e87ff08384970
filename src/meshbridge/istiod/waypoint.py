"""An ambient importer's waypoint as a request to the istiod oracle (pure).

istiod builds a waypoint's configuration from what ambient's index reads in the cluster (the harness runs it
when ``PILOT_ENABLE_AMBIENT=true``; Istio's ``pilot/pkg/xds/waypoint_test.go`` sets a waypoint up the same
way): the Gateway of class ``istio-waypoint`` with the address of its Service in its status, that Service
(port 15008, ``appProtocol: hbone``) and the waypoint's pod, and the ServiceEntries bound to it
(``istio.io/use-waypoint``). So the request holds the rendered documents of the mesh, plus what the cluster
holds once istiod's deployment controller has run the waypoint: its Service, its pod and the Gateway's
status address. The Istio documents also go in ``config`` (istiod's config store builds the routes, clusters
and policies from there), as the test sends them to both.

The request asks for one proxy of type ``waypoint`` (``model.Waypoint``), the pod's node metadata as its
istio-agent would send it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from meshbridge.istiod.request import OracleRequest
from meshbridge.render.ambient import GATEWAY_API_VERSION, HBONE_PORT
from meshbridge.render.manifests import Document
from meshbridge.spec.models import EgressGateway, Mesh

WAYPOINT_IP = "192.0.2.200"
"""The waypoint pod's address (TEST-NET-1, as every oracle proxy's: it names a pod, never a socket)."""
WAYPOINT_CLUSTER_IP = "192.0.2.201"
"""The waypoint Service's cluster IP."""
GATEWAY_NAME_LABEL = "gateway.networking.k8s.io/gateway-name"
MANAGED_LABEL = "gateway.istio.io/managed"
MESH_CONTROLLER = "istio.io-mesh-controller"
ISTIO_KINDS = ("ServiceEntry", "DestinationRule", "AuthorizationPolicy")


@dataclass(frozen=True)
class WaypointRequest(OracleRequest):
    """An :class:`OracleRequest` for one waypoint (``proxy``: its name, e.g. ``gke/istio-egressgateway``)."""

    waypoint: dict[str, Any] | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON request, with the waypoint as its one proxy."""
        return {**super().payload(), "proxies": [self.waypoint] if self.waypoint else []}


def waypoint_request(mesh_name: str, mesh: Mesh, docs: Sequence[Document]) -> WaypointRequest:
    """The oracle's request for the waypoint of ``mesh`` (``dataplane: ambient``), from its rendered ``docs``.

    Args:
        mesh_name: the mesh's name; the proxy is ``<mesh>/<egressGateway.name>``.
        mesh: the importing mesh (its egress gateway names the waypoint, its trust domain the identities).
        docs: the mesh's rendered documents (:func:`meshbridge.render.bridge.render_bridge`).
    """
    assert mesh.egress_gateway is not None  # an importer
    eg = mesh.egress_gateway
    istio = [d for d in docs if d["kind"] in ISTIO_KINDS]
    gateways = [_with_status(d) for d in docs if d["apiVersion"] == GATEWAY_API_VERSION]
    kube = [d for d in docs if d["kind"] in ("Namespace", "Secret")]
    kube += [*gateways, _service(eg), _pod(eg), *(d for d in istio if d["kind"] == "ServiceEntry")]
    metadata = {
        "NAME": f"{eg.name}-0",
        "NAMESPACE": eg.namespace,
        "LABELS": _labels(eg),
        "SERVICE_ACCOUNT": eg.sa,
        "ISTIO_VERSION": mesh.istio.version,
        "CLUSTER_ID": "Kubernetes",
        "WORKLOAD_NAME": eg.name,
    }
    return WaypointRequest(
        config=_stream(istio),
        kubernetes=_stream(kube),
        mesh_config=yaml.safe_dump({"trustDomain": mesh.trust_domain}),
        env={**mesh.istio.pilot_env, "PILOT_ENABLE_AMBIENT": "true"},
        waypoint={
            "name": f"{mesh_name}/{eg.name}",
            "type": "waypoint",
            "ip": WAYPOINT_IP,
            "trustDomain": mesh.trust_domain,
            "metadata": metadata,
        },
    )


def _labels(eg: EgressGateway) -> dict[str, str]:
    """The labels istiod's deployment controller gives the waypoint's pods and Service."""
    return {GATEWAY_NAME_LABEL: eg.name, MANAGED_LABEL: MESH_CONTROLLER}


def _with_status(gateway: Document) -> Document:
    md = gateway["metadata"]
    address = f"{md['name']}.{md['namespace']}.svc.cluster.local"
    return {**gateway, "status": {"addresses": [{"type": "Hostname", "value": address}]}}


def _service(eg: EgressGateway) -> Document:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": eg.name, "namespace": eg.namespace, "labels": _labels(eg)},
        "spec": {
            "clusterIP": WAYPOINT_CLUSTER_IP,
            "ports": [{"name": "mesh", "port": HBONE_PORT, "appProtocol": "hbone"}],
            "selector": {GATEWAY_NAME_LABEL: eg.name},
        },
    }


def _pod(eg: EgressGateway) -> Document:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{eg.name}-0", "namespace": eg.namespace, "labels": _labels(eg)},
        "spec": {"serviceAccountName": eg.sa, "nodeName": "node-0", "containers": [{"name": "istio-proxy"}]},
        "status": {
            "phase": "Running",
            "podIP": WAYPOINT_IP,
            "podIPs": [{"ip": WAYPOINT_IP}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _stream(documents: Sequence[Document]) -> str:
    return "".join(f"---\n{yaml.safe_dump(d, sort_keys=False)}" for d in documents)
