"""The path each export is asked on and the credential each gateway reads, from the proxies' own routes,
listeners and clusters (without Envoy: the seed's translation, edited as users write their manifests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshbridge.envoy.pathsim import path_findings
from meshbridge.local.exportpath import DEFAULT_PATH, backend_hop, export_paths, findings, gateway_credentials
from tests.builders import seed_bridge
from tests.istio_builders import Docs, doc_named, seed_path


def _exporter_match(uri: dict[str, str]) -> Callable[[Docs], None]:
    def edit(docs: Docs) -> None:
        doc_named(docs, "eks", "VirtualService", "vs-lambda")["spec"]["http"][0]["match"] = [{"uri": uri}]

    return edit


# -- the export's path --------------------------------------------------------------------------------------------


def test_an_export_routed_on_every_path_is_asked_on_the_articles_path(tmp_path: Path) -> None:
    chosen = export_paths(seed_bridge(), seed_path(tmp_path))["lambda"]
    assert (chosen.path, chosen.routed, chosen.why) == (DEFAULT_PATH, True, "every hop routes it")


@pytest.mark.parametrize(
    ("uri", "path", "what"),
    [({"prefix": "/api/"}, "/api/", "prefix /api/"), ({"exact": "/ok"}, "/ok", "exact path /ok")],
)
def test_an_export_that_routes_less_is_asked_on_a_path_its_route_declares(
    tmp_path: Path, uri: dict[str, str], path: str, what: str
) -> None:
    configs = seed_path(tmp_path, _exporter_match(uri))
    chosen = export_paths(seed_bridge(), configs)["lambda"]
    assert (chosen.path, chosen.routed) == (path, True)
    assert chosen.why == f"{what} of eks/istio-ingressgateway's route for lambda.external, routed by every hop"
    # up's path findings ask the export's own path: no false 404 NR; the fixed '/' would have reported one
    assert findings(seed_bridge(), configs, {"lambda": chosen}) == []
    assert [h.result.response_flag for h in path_findings(seed_bridge(), configs)] == ["NR"]


def test_a_path_no_hop_routes_to_the_backend_is_said_and_not_passed_off_as_routed(tmp_path: Path) -> None:
    def edit(docs: Docs) -> None:
        _exporter_match({"prefix": "/api/"})(docs)
        sidecar_vs = doc_named(docs, "gke", "VirtualService", "direct-lambda-through-egress-gateway")
        sidecar_route = sidecar_vs["spec"]["http"][0]
        sidecar_route["match"][0]["uri"] = {"prefix": "/other/"}  # the importer routes another prefix only

    configs = seed_path(tmp_path, edit)
    chosen = export_paths(seed_bridge(), configs)["lambda"]
    assert (chosen.path, chosen.routed) == ("/api/", False)
    assert "no hop-by-hop route serves any path" in chosen.why
    (stop,) = findings(seed_bridge(), configs, {"lambda": chosen})
    assert (stop.proxy, stop.request.path, stop.result.response_flag) == ("gke/sleep", "/api/", "NR")


# -- the credential each gateway reads ---------------------------------------------------------------------------


def test_each_gateway_reads_the_credential_its_own_resources_name(tmp_path: Path) -> None:
    seed = gateway_credentials(seed_bridge(), seed_path(tmp_path))
    assert seed == {"eks/istio-ingressgateway": ["mtls-credential"], "gke/istio-egressgateway": ["mtls-credential"]}

    def rename(docs: Docs) -> None:
        dr = doc_named(docs, "gke", "DestinationRule", "dr-lambda-ext")
        dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["credentialName"] = "gke-cred"

    renamed = gateway_credentials(seed_bridge(), seed_path(tmp_path, rename))
    assert renamed == {"eks/istio-ingressgateway": ["mtls-credential"], "gke/istio-egressgateway": ["gke-cred"]}


def test_a_regex_python_cannot_read_leaves_the_path_to_envoy_instead_of_a_traceback(tmp_path: Path) -> None:
    """'([' is no regex at all: Envoy rejects the route (the proxy's readiness names it); the path choice, the
    findings and the credentials must not fail before Envoy is asked."""
    configs = seed_path(tmp_path, _exporter_match({"regex": "(["}))
    chosen = export_paths(seed_bridge(), configs)["lambda"]
    assert (chosen.path, chosen.routed) == (DEFAULT_PATH, False) and "Envoy alone judges them" in chosen.why
    assert findings(seed_bridge(), configs, {"lambda": chosen}) == []
    assert gateway_credentials(seed_bridge(), configs) == {}


# -- the backend the running routes send to ------------------------------------------------------------------------


def _exporter_to_service(docs: Docs) -> None:
    """The user's VirtualService sends the export to a Kubernetes Service of theirs, which no pod serves."""
    docs["eks"].append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "hello", "namespace": "default"},
            "spec": {"selector": {"app": "hello"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
        }
    )
    route = doc_named(docs, "eks", "VirtualService", "vs-lambda")["spec"]["http"][0]
    route["route"] = [{"destination": {"host": "hello.default.svc.cluster.local", "port": {"number": 80}}}]


def test_a_service_no_pod_serves_stops_the_export_with_503_uh_at_up_and_for_verify(tmp_path: Path) -> None:
    configs = seed_path(tmp_path, _exporter_to_service)
    chosen = export_paths(seed_bridge(), configs)["lambda"]
    assert not chosen.routed  # the article's backend is not what runs
    (stop,) = findings(seed_bridge(), configs, {"lambda": chosen})  # up predicts the stop instead of 'Try:'
    assert (stop.proxy, stop.result.status, stop.result.response_flag) == ("eks/istio-ingressgateway", 503, "UH")
    assert "outbound|80||hello.default.svc.cluster.local has no endpoints" in stop.result.detail
    hop = backend_hop(seed_bridge(), configs, seed_bridge().spec.exports[0], DEFAULT_PATH)
    assert hop is not None and hop.result.cluster == "outbound|80||hello.default.svc.cluster.local"
    assert hop.result.response_flag == "UH"


def test_the_exports_own_backend_with_its_addresses_is_served(tmp_path: Path) -> None:
    """The negative twin: the seed's route to the backend (a DNS cluster with the ALB's address) stops nowhere."""
    configs = seed_path(tmp_path)
    assert findings(seed_bridge(), configs, export_paths(seed_bridge(), configs)) == []
    hop = backend_hop(seed_bridge(), configs, seed_bridge().spec.exports[0], DEFAULT_PATH)
    assert hop is not None and hop.ok and hop.result.response_flag is None
    assert hop.result.cluster is not None and hop.result.cluster.endswith(seed_bridge().spec.exports[0].backend.host)
