"""One mesh's world as a request to the istiod oracle (pure).

The oracle (``tools/istio-oracle``) runs Istio's in-process discovery server, the harness Istio's own tests
use (``pilot/test/xds.NewFakeDiscoveryServer``). It takes what istiod would watch in a cluster:

* ``config``: the Istio documents (Gateway, VirtualService, DestinationRule, ServiceEntry, EnvoyFilter,
  AuthorizationPolicy), parsed
  and validated by istiod's own code (``crd.ParseInputs``);
* ``kubernetes``: Services, Secrets, and a Pod plus an EndpointSlice for each proxy of the world, so that a
  gateway's Service maps its port to the pod's target port, as it does when the gateway pod is an endpoint
  of its Service (Istio's ``TestTargetPort``); and the mesh's Kubernetes Gateway API objects
  (:attr:`ConfigSet.cluster_objects`), which istiod's gateway controller reads from the cluster;
* ``meshConfig``: the trust domain and ``defaultConfig.proxyMetadata``;
* ``env``: istiod's environment (``PILOT_*``), read by the process at start;
* ``proxies``: one entry per proxy, with the node metadata its istio-agent would send.

Proxy IPs are documentation-range addresses (``192.0.2.0/24``, RFC 5737): the oracle never opens a socket.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from meshbridge.istio.changes import compatibility_env
from meshbridge.istio.config import ConfigSet, MeshSettings
from meshbridge.istio.gatewayapi import CONVERTED_FROM
from meshbridge.istio.resources import IstioModel, KubeService
from meshbridge.istio.visibility import Proxy

PROXY_NETWORK = ipaddress.ip_network("192.0.2.0/24")
"""Where the oracle's proxies live (TEST-NET-1): addresses that name a pod, never a socket."""

ISTIO_DOCUMENT_KINDS = (
    "Gateway",
    "VirtualService",
    "DestinationRule",
    "ServiceEntry",
    "EnvoyFilter",
    "AuthorizationPolicy",
)
"""The Istio kinds a ConfigSet holds, in the order they are sent."""


@dataclass(frozen=True)
class OracleProxy:
    """One proxy the oracle translates for.

    Attributes:
        name: ``<mesh>/<workload>``, the name meshbridge gives it (``eks/istio-ingressgateway``).
        proxy: its kind, workload, namespace and pod labels.
        ip: its pod IP in :data:`PROXY_NETWORK`.
    """

    name: str
    proxy: Proxy
    ip: str

    @property
    def service_account(self) -> str:
        """The pod's service account (:attr:`Proxy.sa`): the twin's workload certificate names the same one."""
        return self.proxy.sa


@dataclass(frozen=True)
class OracleRequest:
    """What the oracle reads on stdin (:meth:`payload`) and in its environment (:attr:`env`)."""

    config: str
    kubernetes: str
    mesh_config: str
    env: Mapping[str, str]
    proxies: Sequence[OracleProxy] = field(default_factory=tuple)
    settings: MeshSettings = field(default_factory=MeshSettings)

    def payload(self) -> dict[str, Any]:
        """The JSON request (see ``tools/istio-oracle/main.go``)."""
        return {
            "config": self.config,
            "kubernetes": self.kubernetes,
            "meshConfig": self.mesh_config,
            "proxies": [self._proxy(p) for p in self.proxies],
        }

    def _proxy(self, p: OracleProxy) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "NAME": f"{p.proxy.name}-0",
            "NAMESPACE": p.proxy.namespace,
            "LABELS": dict(p.proxy.labels),
            "SERVICE_ACCOUNT": p.service_account,
            "ISTIO_VERSION": self.settings.istio_version,
            "CLUSTER_ID": "Kubernetes",
            "WORKLOAD_NAME": p.proxy.name,
        }
        # proxyMetadata ISTIO_META_X reaches istiod as node metadata X, as the istio-agent sends it
        for key, value in self.settings.proxy_metadata.items():
            if key.startswith("ISTIO_META_"):
                metadata[key.removeprefix("ISTIO_META_")] = value
        if self.settings.dns_auto_allocate:  # see build_request: istiod's own allocation stands in
            metadata["DNS_AUTO_ALLOCATE"] = "true"
        return {
            "name": p.name,
            "type": p.proxy.kind,
            "ip": p.ip,
            "trustDomain": self.settings.trust_domain,
            "metadata": metadata,
        }


def build_request(
    mesh: str, cfg: ConfigSet, proxies: Iterable[Proxy], addresses: Mapping[str, str] | None = None
) -> OracleRequest:
    """The oracle's request for ``cfg`` (one mesh) and ``proxies`` (the pods that run in it).

    Args:
        mesh: the mesh's name; proxies are named ``<mesh>/<workload>``.
        cfg: the mesh's modelled configuration, with the gateway Services of the world added.
        proxies: the mesh's gateways and apps.
        addresses: each proxy's pod IP by name (the twin's own addresses); by default, IPs of
            :data:`PROXY_NETWORK` in order.
    """
    hosts = PROXY_NETWORK.hosts()
    placed = []
    for p in proxies:
        name = f"{mesh}/{p.name}"
        placed.append(OracleProxy(name, p, (addresses or {}).get(name) or str(next(hosts))))
    # what the model converted from the Gateway API stays out: istiod converts the objects themselves
    istio_docs = [
        d
        for d in (_document(r) for kind in ISTIO_DOCUMENT_KINDS for r in _of_kind(cfg, kind))
        if CONVERTED_FROM not in d["metadata"].get("annotations", {})
    ]
    kube_docs: list[dict[str, Any]] = [_document(s) for s in cfg.services]
    kube_docs += [_document(s) for s in cfg.secrets]
    kube_docs += [_namespace(ns) for ns in sorted({p.proxy.namespace for p in placed})]
    kube_docs += [_pod(p) for p in placed]
    kube_docs += [_endpoint_slice(s, placed) for s in cfg.services if s.spec.selector]
    if cfg.cluster_objects:
        # istiod's Gateway API controller reads them from the cluster, and finds the ServiceEntries a
        # BackendTLSPolicy targets there too (not in its config store): both are sent as Kubernetes objects
        kube_docs += [*cfg.cluster_objects, *(_document(se) for se in cfg.service_entries)]
    s = cfg.settings
    mesh_config: dict[str, Any] = {"trustDomain": s.trust_domain, "rootNamespace": s.root_namespace}
    if s.proxy_metadata:
        mesh_config["defaultConfig"] = {"proxyMetadata": dict(s.proxy_metadata)}
    # A mesh on an older supported line: istiod runs with Istio's compatibility profile for it (the mesh's own
    # pilot_env wins), the way a 1.31 istiod with compatibilityVersion set behaves.
    env = compatibility_env(s.minor) | dict(s.pilot_env)
    if s.dns_auto_allocate:
        # From 1.23 a controller of istiod allocates ServiceEntry VIPs into their status; the harness does not
        # run it. istiod's in-memory allocation (the one before that controller) gives the same kind of VIP
        # from the same range, so it stands in: PILOT_ENABLE_IP_AUTOALLOCATE=false plus DNS_AUTO_ALLOCATE.
        env["PILOT_ENABLE_IP_AUTOALLOCATE"] = "false"
    return OracleRequest(
        config=_stream(istio_docs),
        kubernetes=_stream(kube_docs),
        mesh_config=yaml.safe_dump(mesh_config, sort_keys=True),
        env=env,
        proxies=tuple(placed),
        settings=s,
    )


def _of_kind(cfg: ConfigSet, kind: str) -> list[IstioModel]:
    lists: dict[str, Sequence[IstioModel]] = {
        "Gateway": cfg.gateways,
        "VirtualService": cfg.virtual_services,
        "DestinationRule": cfg.destination_rules,
        "ServiceEntry": cfg.service_entries,
        "EnvoyFilter": cfg.envoy_filters,
        "AuthorizationPolicy": cfg.authorization_policies,
    }
    return list(lists[kind])


def _document(resource: IstioModel) -> dict[str, Any]:
    return resource.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _stream(documents: Iterable[dict[str, Any]]) -> str:
    # the harness splits Kubernetes objects on "\n---\n": every document starts on its own line
    return "".join(f"---\n{yaml.safe_dump(d, sort_keys=False)}" for d in documents)


def _namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _pod(p: OracleProxy) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": f"{p.proxy.name}-0", "namespace": p.proxy.namespace, "labels": dict(p.proxy.labels)},
        "spec": {"serviceAccountName": p.service_account, "nodeName": "node-0", "containers": [{"name": "app"}]},
        "status": {
            "phase": "Running",
            "podIP": p.ip,
            "podIPs": [{"ip": p.ip}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _endpoint_slice(svc: KubeService, placed: Sequence[OracleProxy]) -> dict[str, Any]:
    """The EndpointSlice Kubernetes would keep for ``svc``: the pods its selector picks, on the target ports."""
    selector = svc.spec.selector
    pods = [
        p
        for p in placed
        if p.proxy.namespace == svc.metadata.namespace and all(p.proxy.labels.get(k) == v for k, v in selector.items())
    ]
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{svc.metadata.name}-0",
            "namespace": svc.metadata.namespace,
            "labels": {"kubernetes.io/service-name": svc.metadata.name},
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [p.ip],
                "conditions": {"ready": True},
                "targetRef": {"kind": "Pod", "name": f"{p.proxy.name}-0", "namespace": p.proxy.namespace},
            }
            for p in pods
        ],
        "ports": [
            {"name": port.name, "port": _target_port(port.port, port.target_port), "protocol": port.protocol}
            for port in svc.spec.ports
        ],
    }


def _target_port(port: int, target: int | str | None) -> int:
    # a named targetPort would be resolved against the container's ports; the world's pods name none
    return target if isinstance(target, int) else port
