"""The cluster DNS the twin's apps see: Kubernetes Service names, as kube-dns answers them."""

from __future__ import annotations

from meshbridge.istio.config import ConfigSet
from meshbridge.istio.dns import cluster_dns
from meshbridge.istio.resources import KubeService
from meshbridge.istio.visibility import services


def _svc(name: str, ns: str, kind: str = "ClusterIP") -> KubeService:
    spec = {"type": kind, "selector": {"app": name}, "ports": [{"name": "http", "port": 9080}]}
    if kind == "ExternalName":
        spec = {"type": kind, "externalName": "api.example.com", "ports": [{"name": "https", "port": 443}]}
    return KubeService.model_validate(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns}, "spec": spec}
    )


def test_a_service_resolves_by_its_fqdn_and_short_forms_and_by_its_name_in_its_namespace() -> None:
    cfg = ConfigSet(services=[_svc("reviews", "shop"), _svc("ratings", "scoring")])
    table = cluster_dns(services(cfg), "shop")
    ip = table["reviews.shop.svc.cluster.local"]
    assert table["reviews.shop.svc"] == table["reviews.shop"] == table["reviews"] == ip
    assert table["ratings.scoring"] != ip
    assert "ratings" not in table  # a short name resolves only in the Service's own namespace


def test_service_entries_and_external_names_are_not_the_cluster_dns() -> None:
    cfg = ConfigSet(services=[_svc("billing", "pay", "ExternalName")])
    assert cluster_dns(services(cfg), "pay") == {}
