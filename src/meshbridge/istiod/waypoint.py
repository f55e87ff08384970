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

:func:`outbound_part` is what of istiod's waypoint configuration runs on stock Envoy without ztunnel: the
request ztunnel would bring through HBONE arrives as plain HTTP on a listener of its own, with the HTTP
connection manager istiod builds for the service's chain of ``main_internal``; what the HBONE listener
(``connect_terminate``) would tell it, the peer's identity, a ``set_filter_state`` filter says instead, so the
waypoint's authorization policies still judge the caller. From there the route, the cluster, its mutual TLS
and its secrets are istiod's.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from meshbridge.envoy.compare import snake_keys
from meshbridge.envoy.names import PEER_PRINCIPAL
from meshbridge.istiod.adopt import istio_only
from meshbridge.istiod.oracle import IstiodConfig
from meshbridge.istiod.request import OracleRequest
from meshbridge.render.ambient import GATEWAY_API_VERSION, GATEWAY_NAME_LABEL, HBONE_PORT
from meshbridge.render.manifests import Document
from meshbridge.spec.models import EgressGateway, Mesh

WAYPOINT_IP = "192.0.2.200"
"""The waypoint pod's address (TEST-NET-1, as every oracle proxy's: it names a pod, never a socket)."""
WAYPOINT_CLUSTER_IP = "192.0.2.201"
"""The waypoint Service's cluster IP."""
MANAGED_LABEL = "gateway.istio.io/managed"
MESH_CONTROLLER = "istio.io-mesh-controller"
ISTIO_KINDS = ("ServiceEntry", "DestinationRule", "AuthorizationPolicy")
MAIN_INTERNAL = "main_internal"
SET_FILTER_STATE = "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config"


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


def outbound_part(
    cfg: IstiodConfig, port: int, listen: tuple[str, int], peer: str, addresses: Mapping[str, tuple[str, int]]
) -> dict[str, Any]:
    """istiod's waypoint configuration for a request to ``port``, as static Envoy resources (istiod's camelCase).

    Args:
        cfg: the oracle's answer for the waypoint.
        port: the service port the request was sent to (the chain ``main_internal`` picks for it).
        listen: the address and port of the listener that stands for the captured request.
        peer: the caller's SPIFFE identity, which ztunnel's HBONE would have authenticated.
        addresses: where each DNS name of a cluster's endpoints is reached (the clouds' DNS).

    Returns:
        ``static_resources``: one listener, the clusters its routes name (their TLS taken out of the internal
        upstream socket, which only passes metadata to internal listeners), and every secret, served
        statically under istiod's SDS names.

    Raises:
        KeyError: istiod built no chain for ``port`` (no service of that port is bound to the waypoint).
    """
    hcm = copy.deepcopy(_chain(cfg.listeners, port)["filters"][-1]["typedConfig"])
    peer_state = {
        "objectKey": PEER_PRINCIPAL,
        "factoryKey": "envoy.string",
        "formatString": {"textFormatSource": {"inlineString": peer}},
    }
    states: dict[str, Any] = {
        "name": "envoy.filters.http.set_filter_state",
        "typedConfig": {"@type": SET_FILTER_STATE, "onRequestHeaders": [peer_state]},
    }
    hcm["httpFilters"] = [states, *(f for f in hcm["httpFilters"] if not istio_only(snake_keys(f)))]
    hcm.pop("tracing", None)  # its tags read istio-proxy's peer objects; no tracer is configured
    routed = {r["route"]["cluster"] for vh in hcm["routeConfig"]["virtualHosts"] for r in vh["routes"]}
    listener = {
        "name": f"waypoint_{port}",
        "address": {"socketAddress": {"address": listen[0], "portValue": listen[1]}},
        "filterChains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager", "typedConfig": hcm}]}],
    }
    clusters = [_unwrapped(c, addresses) for c in cfg.clusters if c["name"] in routed]
    return {"listeners": [listener], "clusters": clusters, "secrets": copy.deepcopy(list(cfg.secrets))}


def _chain(listeners: Sequence[Mapping[str, Any]], port: int) -> Mapping[str, Any]:
    """The chain of ``main_internal`` its matcher maps ``port`` to (any destination address: the VIP)."""
    lst = next(x for x in listeners if x["name"] == MAIN_INTERNAL)
    tree = lst["filterChainMatcher"]["matcherTree"]["customMatch"]["typedConfig"]
    for r in tree.get("rangeMatchers", []):
        actions = r["onMatch"]["matcher"]["matcherTree"]["exactMatchMap"]["map"]
        if str(port) in actions:
            name = actions[str(port)]["action"]["name"]
            return next(c for c in lst["filterChains"] if c["name"] == name)
    raise KeyError(f"the waypoint has no chain for port {port}: no service of that port is bound to it")


def _unwrapped(cluster: Mapping[str, Any], addresses: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    out = copy.deepcopy(dict(cluster))
    inner = out["transportSocket"]["typedConfig"].get("transportSocket")
    if inner is not None:
        out["transportSocket"] = inner
    else:
        out.pop("transportSocket")
    for sds in sds_configs(out):
        sds.pop("sdsConfig", None)  # served from static_resources.secrets
    if out["type"] in ("STRICT_DNS", "LOGICAL_DNS"):
        out["type"] = "STATIC"
        out.pop("typedDnsResolverConfig", None)
        for locality in out["loadAssignment"]["endpoints"]:
            for ep in locality["lbEndpoints"]:
                sa = ep["endpoint"]["address"]["socketAddress"]
                sa["address"], sa["portValue"] = addresses[sa["address"]]
    return out


def sds_configs(cluster: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The SDS references of a cluster's TLS (istiod's camelCase): its certificates', then its validation's."""
    common = cluster.get("transportSocket", {}).get("typedConfig", {}).get("commonTlsContext", {})
    validation = common.get("combinedValidationContext", {}).get("validationContextSdsSecretConfig")
    return [*common.get("tlsCertificateSdsSecretConfigs", []), *([validation] if validation else [])]


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
