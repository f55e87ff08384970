"""Fixtures of the integration tests: two fake clusters with the article's Istio installation (steps 2 and 3), ready
for meshbridge to apply to, and a copy of the article's folder."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.kube.client import KubeClient
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.spec import Bridge
from tests.builders import ROOT, bridge_from, issued_store, seed_dict
from tests.integration.fakeapi import FakeApiServer

Doc = dict[str, Any]
BRIDGE = "lambda-aws-to-gcp"
SELECTOR = f"app.kubernetes.io/managed-by=meshbridge,meshbridge.io/bridge={BRIDGE}"
LB_HOST = "a1b2c3-ingress.elb.us-east-1.amazonaws.com"


def ready_pod(name: str, ns: str, labels: dict[str, str], *, containers: list[Doc] | None = None) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {
            "nodeName": "node-0",  # a kubelet marks only a pod bound to its node Ready (status counts no other)
            "containers": containers or [{"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.17.2"}],
        },
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }


def gateway_service(
    name: str, ns: str, selector: dict[str, str], ports: list[tuple[str, int, int]], lb: str | None
) -> Doc:
    svc: Doc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "type": "LoadBalancer",
            "selector": selector,
            "ports": [{"name": n, "port": p, "targetPort": t, "protocol": "TCP"} for n, p, t in ports],
        },
        "status": {"loadBalancer": {"ingress": [{"hostname": lb}] if lb else []}},
    }
    return svc


def istio_control_plane(server: FakeApiServer, *, dns_capture: bool = True, revision: str = "1-17") -> None:
    meta = {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"} if dns_capture else {}
    server.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "istio-system"}},
        ready_pod(
            "istiod-1-17-6f5f489dd6-l6krg",
            "istio-system",
            {"app": "istiod", "istio.io/rev": revision},
            containers=[
                {
                    "name": "discovery",
                    "image": "docker.io/istio/pilot:1.17.2",
                    "env": [{"name": "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", "value": "true"}],
                }
            ],
        ),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"istio-{revision}", "namespace": "istio-system"},
            "data": {"mesh": yaml.safe_dump({"defaultConfig": {"proxyMetadata": meta}})},
        },
    )


INGRESS_LABELS = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-17"}
EGRESS_LABELS = {"app": "istio-egressgateway", "istio": "egressgateway", "istio.io/rev": "1-17"}
INGRESS_POD = ("istio-ingress", "istio-ingressgateway-57dc66d6ff-d2r75")
EGRESS_POD = ("istio-egress", "istio-egressgateway-7c5f5dcfbb-vz5zh")
SLEEP_POD = ("sleep", "sleep-87549b8d9-622db")
INGRESS_ROUTE = "https.443.https.eastwestgateway.istio-ingress"
EGRESS_ROUTE = "http.8080"


def routes_dump(*routes: tuple[str, list[str]]) -> Doc:
    """A ``/config_dump?mask=dynamic_route_configs`` answer holding ``routes`` (name, domains)."""
    return {
        "configs": [
            {"@type": "type.googleapis.com/envoy.admin.v3.BootstrapConfigDump"},
            {
                "@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
                "dynamic_route_configs": [
                    {
                        "version_info": "2023-05-03T17:54:54Z/9",
                        "route_config": {
                            "@type": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
                            "name": name,
                            "virtual_hosts": [{"name": f"{d}:443", "domains": [d]} for d in domains]
                            + [{"name": "blackhole:443", "domains": ["*"]}] * (not domains),
                        },
                    }
                    for name, domains in routes
                ],
            },
        ]
    }


def exporter_cluster(server: FakeApiServer, *, lb: str | None = LB_HOST) -> None:
    istio_control_plane(server)
    ns, pod = INGRESS_POD
    server.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},  # 'kubectl create namespace', unlabelled
        ready_pod(pod, ns, INGRESS_LABELS),
        gateway_service(
            "istio-ingressgateway",
            ns,
            {"app": "istio-ingressgateway", "istio": "ingressgateway"},
            [("status-port", 15021, 15021), ("http2", 80, 8080), ("https", 443, 8443)],
            lb,
        ),
    )
    server.config_dumps[INGRESS_POD] = routes_dump((INGRESS_ROUTE, ["lambda.external"]))


def importer_cluster(server: FakeApiServer, *, dns_capture: bool = True) -> None:
    istio_control_plane(server, dns_capture=dns_capture)
    ns, pod = EGRESS_POD
    sns, spod = SLEEP_POD
    server.seed(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
        ready_pod(pod, ns, EGRESS_LABELS),
        gateway_service(
            "istio-egressgateway",
            ns,
            {"app": "istio-egressgateway", "istio": "egressgateway"},
            [("http2", 80, 8080), ("https", 443, 8443)],
            None,
        ),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sleep", "namespace": sns},
            "spec": {"selector": {"matchLabels": {"app": "sleep", "version": "v1"}}},
        },
        ready_pod(
            spod,
            sns,
            {"app": "sleep", "version": "v1", "istio.io/rev": "1-17"},
            containers=[{"name": "sleep", "image": "curlimages/curl"}, {"name": "istio-proxy", "image": "proxyv2"}],
        ),
    )
    server.config_dumps[EGRESS_POD] = routes_dump((EGRESS_ROUTE, ["lambda.external"]))


@dataclass
class World:
    """The seed bridge, its certificates, and its two fake clusters (``eks`` exports, ``gke`` imports)."""

    bridge: Bridge
    credentials: dict[str, MeshCredentials]
    eks: FakeApiServer
    gke: FakeApiServer
    tmp: Path

    def clients(self, *, request_timeout: float = 5.0) -> dict[str, KubeClient]:
        return {
            "eks": self.eks.client("kind-eks", request_timeout=request_timeout),
            "gke": self.gke.client("kind-gke", request_timeout=request_timeout),
        }

    def with_spec(self, change: Any) -> Bridge:
        d = seed_dict()
        change(d)
        self.bridge = bridge_from(d)
        return self.bridge


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    d = seed_dict()
    del d["spec"]["meshes"]["eks"]["ingressGateway"]["address"]  # discovered from the Service status
    bridge = bridge_from(d)
    store = issued_store(tmp_path, bridge)
    eks = FakeApiServer("eks").start()
    gke = FakeApiServer("gke").start()
    exporter_cluster(eks)
    importer_cluster(gke)
    try:
        yield World(bridge, store.credentials(bridge), eks, gke, tmp_path)
    finally:
        eks.stop()
        gke.stop()


@pytest.fixture
def article(tmp_path: Path) -> Iterator[Path]:
    """A copy of the article's folder (bridge and manifests), with ``${HOST_GW_CLUSTER2}`` set."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("__pycache__"))
    os.environ["HOST_GW_CLUSTER2"] = "ingress.eks.example.com"
    try:
        yield tmp_path / "examples" / "article"
    finally:
        os.environ.pop("HOST_GW_CLUSTER2", None)
