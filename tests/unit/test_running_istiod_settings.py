"""The running istiod's settings read from what a cluster holds: its mesh config ConfigMap and its Deployment
(``kubectl get cm istio -n istio-system -o yaml`` given to lint, or read by ``lint --context``)."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.errors import IstioConfigError
from meshbridge.istio.parse import build_config

MESH = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: 'true'\ntrustDomain: gke.example.com\n"


def config_map(name: str = "istio-1-31", mesh: str = MESH) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "istio-system"},
        "data": {"mesh": mesh, "meshNetworks": "networks: {}"},
    }


def deployment(container: str = "discovery", image: str = "docker.io/istio/pilot:1.30.4") -> dict[str, Any]:
    env = [
        {"name": "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", "value": "true"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    pod = {"containers": [{"name": container, "image": image, "env": env}]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "istiod", "namespace": "istio-system"},
        "spec": {"template": {"spec": pod}},
    }


def test_the_mesh_config_configmap_sets_the_mesh_settings() -> None:
    s = build_config([("cluster gke", config_map())]).settings
    assert s.dns_capture and s.trust_domain == "gke.example.com"


def test_another_configmap_is_not_the_mesh_config() -> None:
    s = build_config([("cluster gke", config_map(name="kube-root-ca.crt"))]).settings
    assert not s.dns_capture and s.trust_domain == "cluster.local"


def test_istiods_deployment_gives_its_environment_and_version() -> None:
    s = build_config([("cluster gke", deployment())]).settings
    assert s.pilot_env == {"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "true"}  # valueFrom is the pod's own
    assert s.istio_version == "1.30.4"


def test_a_deployment_without_the_discovery_container_is_not_istiod() -> None:
    s = build_config([("cluster gke", deployment(container="app"))]).settings
    assert s.pilot_env == {} and s.istio_version != "1.30.4"


def test_a_mesh_config_that_is_not_yaml_is_named() -> None:
    with pytest.raises(IstioConfigError, match=r"ConfigMap istio-system/istio-1-31: data.mesh is not YAML"):
        build_config([("cluster gke", config_map(mesh="defaultConfig: [unclosed"))])
