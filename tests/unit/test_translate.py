"""Translation of the article's own manifests: what istiod would push to each of its proxies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.envoy.consistency import check_consistency
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import build_config
from tests.builders import ARTICLE
from tests.istio_builders import article_config, proxy_config, rendered_config


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(i for i in items if i["name"] == name)


def hcm(listener: dict[str, Any], chain: int = 0) -> dict[str, Any]:
    return listener["filter_chains"][chain]["filters"][0]["typed_config"]


def test_ingress_gateway_of_the_article(tmp_path: Path) -> None:
    pc = proxy_config(article_config("eks"), "eks/istio-ingressgateway", tmp_path)
    (lst,) = pc.listeners
    assert lst["name"] == "0.0.0.0_8443"  # Service 443 → targetPort 8443
    (chain,) = lst["filter_chains"]
    assert chain["filter_chain_match"] == {"server_names": ["lambda.external"]}
    tls = chain["transport_socket"]["typed_config"]
    assert tls["require_client_certificate"] is True
    common = tls["common_tls_context"]
    assert common["tls_certificate_sds_secret_configs"][0]["name"] == "kubernetes://mtls-credential"
    assert (
        common["combined_validation_context"]["validation_context_sds_secret_config"]["name"]
        == "kubernetes://mtls-credential-cacert"
    )
    assert hcm(lst)["rds"]["route_config_name"] == "https.443.https.eastwestgateway.istio-ingress"
    assert hcm(lst)["server_name"] == "istio-envoy"
    (rc,) = pc.route_configs
    (vh,) = rc["virtual_hosts"]
    assert (vh["name"], vh["domains"]) == ("lambda.external:443", ["lambda.external"])
    (route,) = vh["routes"]
    assert route["match"]["prefix"] == "/"
    assert route["route"]["cluster"] == "outbound|443||alb.jesus2.solo.io"
    assert route["route"]["timeout"] == "0s"
    # Istio 1.17 still retried 503 by default
    assert route["route"]["retry_policy"]["retriable_status_codes"] == [503]
    cluster = by_name(pc.clusters, "outbound|443||alb.jesus2.solo.io")
    assert cluster["type"] == "STRICT_DNS"
    up = cluster["transport_socket"]["typed_config"]
    # VERIFY_CERTIFICATE_AT_CLIENT=true: SIMPLE without a CA verifies against the OS bundle; 1.17 has no auto SNI
    assert (
        up["common_tls_context"]["combined_validation_context"]["validation_context_sds_secret_config"]["name"]
        == "file-root:system"
    )
    assert "sni" not in up and "typed_extension_protocol_options" not in cluster
    assert set(pc.secrets) == {
        "kubernetes://mtls-credential",
        "kubernetes://mtls-credential-cacert",
        "file-root:system",
    }


def test_egress_gateway_of_the_article(tmp_path: Path) -> None:
    pc = proxy_config(article_config("gke"), "gke/istio-egressgateway", tmp_path)
    (lst,) = pc.listeners
    assert lst["name"] == "0.0.0.0_8080"  # Service 80 → targetPort 8080
    assert "filter_chain_match" not in lst["filter_chains"][0]
    assert hcm(lst)["rds"]["route_config_name"] == "http.8080"
    (rc,) = pc.route_configs
    (vh,) = rc["virtual_hosts"]
    assert (vh["name"], vh["domains"]) == ("lambda.external:80", ["lambda.external"])
    # only the egress-gateway leg of the VirtualService survives on the egress gateway
    assert [r["route"]["cluster"] for r in vh["routes"]] == ["outbound|80||lambda.external"]
    cluster = by_name(pc.clusters, "outbound|80||lambda.external")
    assert cluster["type"] == "STRICT_DNS"
    ep = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (ep["address"], ep["port_value"]) == ("ingress.eks.example.com", 443)
    up = cluster["transport_socket"]["typed_config"]
    assert up["sni"] == "lambda.external"
    assert up["common_tls_context"]["tls_certificate_sds_secret_configs"][0]["name"] == "kubernetes://mtls-credential"
    # the article pins no SAN: only the chain is checked
    assert up["common_tls_context"]["combined_validation_context"]["default_validation_context"] == {}


def test_sidecar_of_the_article(tmp_path: Path) -> None:
    pc = proxy_config(article_config("gke"), "gke/sleep", tmp_path)
    (lst,) = [lst for lst in pc.listeners if lst["name"] == "0.0.0.0_80"]
    assert hcm(lst)["rds"]["route_config_name"] == "80"
    assert "server_name" not in hcm(lst)  # sidecars answer with Envoy's own server header
    rc = by_name(pc.route_configs, "80")
    vh = by_name(rc["virtual_hosts"], "lambda.external:80")
    assert vh["domains"][0] == "lambda.external" and vh["domains"][1].startswith("240.240.")
    assert [r["route"]["cluster"] for r in vh["routes"]] == [
        "outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local"
    ]
    assert rc["virtual_hosts"][-1]["name"] == "allow_any"
    sub = by_name(pc.clusters, "outbound|80|lambda|istio-egressgateway.istio-egress.svc.cluster.local")
    assert sub["type"] == "EDS"
    (cla,) = [e for e in pc.endpoints if e["cluster_name"] == sub["name"]]
    ep = cla["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert (ep["address"], ep["port_value"]) == ("127.0.9.3", 8080)  # the egress gateway pod, targetPort


def _partner_entry(name: str, hosts: list[str], cidr: str) -> ConfigSet:
    spec = {
        "hosts": hosts,
        "addresses": [cidr],
        "ports": [{"number": 80, "name": "http", "protocol": "HTTP"}],
        "location": "MESH_EXTERNAL",
        "resolution": "STATIC",
        "endpoints": [{"address": cidr.split("/")[0]}],
    }
    doc = {"apiVersion": "networking.istio.io/v1", "kind": "ServiceEntry", "metadata": {"name": name}, "spec": spec}
    return build_config([("t", {**doc, "metadata": {"name": name, "namespace": "default"}})])


def _domains_of(pc: ProxyConfig, *vhosts: str) -> list[list[str]]:
    rc = by_name(pc.route_configs, "80")
    return [by_name(rc["virtual_hosts"], f"{v}:80")["domains"] for v in vhosts]


def test_two_hosts_of_one_service_entry_share_its_cidr_once(tmp_path: Path) -> None:
    cfg = article_config("gke")
    cfg.service_entries += _partner_entry(
        "partner", ["rates.partner.example", "*.rates.partner.example"], "10.99.0.0/24"
    ).service_entries
    pc = proxy_config(cfg, "gke/sleep", tmp_path)
    wild, apex = _domains_of(pc, "*.rates.partner.example", "rates.partner.example")
    assert "10.99.0.0/24" in wild and "10.99.0.0/24" not in apex  # the first virtual host in order keeps it
    assert not [i for i in check_consistency(pc) if "virtual hosts" in i.message]  # Envoy accepts the route
    # the twin: two entries with their own ranges keep each its own (only a domain seen before is dropped)
    cfg = article_config("gke")
    cfg.service_entries += _partner_entry("a", ["a.partner.example"], "10.98.0.0/24").service_entries
    cfg.service_entries += _partner_entry("b", ["b.partner.example"], "10.97.0.0/24").service_entries
    a, b = _domains_of(proxy_config(cfg, "gke/sleep", tmp_path), "a.partner.example", "b.partner.example")
    assert "10.98.0.0/24" in a and "10.97.0.0/24" in b


def test_rendered_seed_pins_sans_both_ways(tmp_path: Path) -> None:
    ingress = proxy_config(rendered_config("eks"), "eks/istio-ingressgateway", tmp_path)
    tls = ingress.listeners[0]["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
    pins = tls["combined_validation_context"]["default_validation_context"]["match_typed_subject_alt_names"]
    assert {m["matcher"]["exact"] for m in pins} == {
        "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
    }
    assert tls["tls_params"]["tls_minimum_protocol_version"] == "TLSv1_2"
    egress = proxy_config(rendered_config("gke"), "gke/istio-egressgateway", tmp_path)
    up = next(c for c in egress.clusters if c["name"] == "outbound|80||lambda.external")["transport_socket"][
        "typed_config"
    ]
    pins = up["common_tls_context"]["combined_validation_context"]["default_validation_context"][
        "match_typed_subject_alt_names"
    ]
    assert {m["matcher"]["exact"] for m in pins} == {"lambda.external"}


def test_translate_names_the_hop_that_would_fail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``meshbridge translate`` simulates each export's path before any Envoy runs (MB303's rule on the way)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    article = (ARTICLE / "gke.yaml").read_text()
    (tmp_path / "good.yaml").write_text(article)
    (tmp_path / "bad.yaml").write_text(article.replace("sni: lambda.external", "sni: ingress.eks.example.com"))
    capsys.readouterr()

    def notes(manifest: str, proxy: str) -> list[str]:
        assert main(["translate", "--proxy", proxy, "--manifests", f"gke={manifest}"]) == 0
        printed = capsys.readouterr()
        assert yaml.safe_load(printed.out)["static_resources"]["listeners"]
        return [line for line in printed.err.splitlines() if "(export lambda, app gke/sleep)" in line]

    for proxy in ("eks/istio-ingressgateway", "gke/sleep"):  # every proxy of the path reports the broken hop
        (line,) = notes("bad.yaml", proxy)
        assert line.startswith(
            "note: eks/istio-ingressgateway: GET https://lambda.external:8443/hello-world (SNI ingress.eks"
        )
        assert "→ NR: " in line and "filter_chain_not_found" in line
    assert notes("good.yaml", "eks/istio-ingressgateway") == []


def test_translate_asks_each_export_on_the_path_its_routes_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An exporter whose VirtualService routes only ``/status`` (Istio's secure-ingress task) is a working bridge:
    translate asks it on ``/status``, as 'local up' does, with no spurious '/' 404 NR; its twin with the importer's
    wrong SNI is still stopped (no filter chain, so no route declares a path)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOST_GW_CLUSTER2", "ingress.eks.example.com")
    assert main(["init"]) == 0
    assert main(["certs", "issue"]) == 0
    eks = (ARTICLE / "eks.yaml").read_text().replace("            prefix: /\n", "            prefix: /status\n")
    assert "prefix: /status" in eks
    (tmp_path / "eks.yaml").write_text(eks)
    gke = (ARTICLE / "gke.yaml").read_text()
    (tmp_path / "good.yaml").write_text(gke)
    (tmp_path / "bad.yaml").write_text(gke.replace("sni: lambda.external", "sni: ingress.eks.example.com"))
    capsys.readouterr()

    def notes(manifest: str) -> list[str]:
        args = ["--manifests", "eks=eks.yaml", "--manifests", f"gke={manifest}"]
        assert main(["translate", "--proxy", "eks/istio-ingressgateway", *args]) == 0
        return [line for line in capsys.readouterr().err.splitlines() if "(export lambda, app gke/sleep)" in line]

    assert notes("good.yaml") == []
    (line,) = notes("bad.yaml")  # no chain to reach the routes by: asked on the article's path
    assert line.startswith("note: eks/istio-ingressgateway: GET https://lambda.external:8443/hello-world (SNI ingress")
    assert "filter_chain_not_found" in line
