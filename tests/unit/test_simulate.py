"""Traffic simulation and consistency over translated configs: the data-plane kinds of L06, L10, L12."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import parse_yaml_text
from meshbridge.world import mesh_config
from tests.builders import ARTICLE, bridge_from, seed_bridge, seed_dict
from tests.istio_builders import article_config, proxy_config, rendered_config

MTLS = {"tls": True, "client_cert": True}


def test_ingress_routes_the_exported_host_to_the_alb(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", "/hello-world", sni="lambda.external", **MTLS))
    assert r.ok, r.detail
    assert (r.route_config, r.virtual_host, r.cluster) == (
        "https.443.https.eastwestgateway.istio-ingress",
        "lambda.external:443",
        "outbound|443||alb.jesus2.solo.io",
    )


def test_wrong_sni_finds_no_filter_chain(tmp_path: Path) -> None:
    """Case L06: the importer's SNI must be one of the exporter Gateway's hosts."""
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    for sni in ("ingress.eks.example.com", None):
        r = simulate(pc, Request(8443, "lambda.external", sni=sni, **MTLS))
        assert (r.error, r.response_flag) == ("NoFilterChain", "NR")
        assert "filter_chain_not_found" in r.detail


def test_mutual_server_demands_a_client_certificate(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", sni="lambda.external", tls=True, client_cert=False))
    assert r.error == "ClientCertRequired"
    assert simulate(pc, Request(8443, "lambda.external", sni="lambda.external")).error == "TLSRequired"


def test_host_mismatch_after_sni_gets_404(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "orders.external", sni="lambda.external", **MTLS))
    assert (r.status, r.response_flag, r.error) == (404, "NR", "NoRoute")
    assert simulate(pc, Request(8443, "LAMBDA.external:443", sni="lambda.external", **MTLS)).ok  # case, port ignored


def test_sidecar_and_egress_legs(tmp_path: Path) -> None:
    sidecar = proxy_config(article_config("gke"), "gke/sleep", tmp_path)
    r = simulate(sidecar, Request(80, "lambda.external", "/hello-world"))
    assert r.cluster == "outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local"
    egress = proxy_config(article_config("gke"), "gke/istio-egressgateway", tmp_path)
    r = simulate(egress, Request(8080, "lambda.external", "/hello-world"))
    assert r.ok and r.cluster == "outbound|80||lambda.external"
    assert simulate(egress, Request(8080, "alb.jesus2.solo.io")).error == "NoRoute"


def _eks_with(doc_edit: Callable[[list[dict[str, Any]]], None]) -> ConfigSet:
    """The article's step-4 manifests, edited, with the gateway Secret."""
    docs = [d for d in yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()) if d]
    doc_edit(docs)
    cfg = mesh_config(seed_bridge(), "eks", parse_yaml_text(yaml.safe_dump_all(docs), "eks.yaml"))
    cfg.secrets += article_config("eks").secrets
    return cfg


def test_service_entry_private_to_another_namespace_leaves_no_cluster(tmp_path: Path) -> None:
    """Case L12: visibility is decided for the namespace of the acting proxy."""

    def move_se(docs: list[dict[str, Any]]) -> None:
        docs[0]["metadata"]["namespace"] = "lambda-ns"
        docs[1]["metadata"]["namespace"] = "lambda-ns"

    pc = proxy_config(_eks_with(move_se), "eks/istio-ingressgateway", tmp_path)
    r = simulate(pc, Request(8443, "lambda.external", sni="lambda.external", **MTLS))
    assert (r.status, r.response_flag) == (503, "NC")
    assert any("cluster_not_found" in str(i) for i in check_consistency(pc))

    def export_all(docs: list[dict[str, Any]]) -> None:
        move_se(docs)
        docs[0]["spec"]["exportTo"] = ["*"]

    assert simulate(
        proxy_config(_eks_with(export_all), "eks/istio-ingressgateway", tmp_path),
        Request(8443, "lambda.external", sni="lambda.external", **MTLS),
    ).ok


def test_gateway_cluster_filtering(tmp_path: Path) -> None:
    """Case L10: with PILOT_FILTER_GATEWAY_CLUSTER_CONFIG a gateway only gets clusters its bound VSes use."""

    def extra_se(docs: list[dict[str, Any]]) -> None:
        se = copy.deepcopy(docs[0])
        se["metadata"]["name"] = "se-other"
        se["spec"]["hosts"] = ["other.internal.example.com"]
        docs.append(se)

    pc = proxy_config(_eks_with(extra_se), "eks/istio-ingressgateway", tmp_path)
    names = {c["name"] for c in pc.clusters}
    assert "outbound|443||other.internal.example.com" not in names
    assert "outbound|443||alb.jesus2.solo.io" in names

    d = seed_dict()
    d["spec"]["meshes"]["eks"]["istio"]["pilotEnv"] = {"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG": "false"}
    b = bridge_from(d)
    docs = [d for d in yaml.safe_load_all((ARTICLE / "eks.yaml").read_text()) if d]
    extra_se(docs)
    cfg = mesh_config(b, "eks", parse_yaml_text(yaml.safe_dump_all(docs), "eks.yaml"))
    names = {c["name"] for c in proxy_config(cfg, "eks/istio-ingressgateway", tmp_path, b).clusters}
    assert "outbound|443||other.internal.example.com" in names


def test_rendered_seed_is_consistent_apart_from_missing_secrets(tmp_path: Path) -> None:
    for mesh, proxy in (("eks", "eks/istio-ingressgateway"), ("gke", "gke/istio-egressgateway"), ("gke", "gke/sleep")):
        found = check_consistency(proxy_config(rendered_config(mesh), proxy, tmp_path))
        assert [i for i in found if "is not served" not in i.message] == [], proxy
        assert all(i.severity == "warning" for i in found)
