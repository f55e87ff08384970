"""The exporter in the Kubernetes Gateway API (``ingressGateway.api: gateway-api``), judged by istiod's own code: what
Istio 1.31 builds from the rendered Gateway, HTTPRoute and BackendTLSPolicy (the oracle), and the seed bridge run on
it in the twin (real Envoy, real TLS): the importer's certificate is accepted, none and a foreign CA's refused, and
every verify check passes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.inputs import mesh_configs
from meshbridge.istiod.judge import judge_mesh
from meshbridge.istiod.oracle import IstiodConfig, run_oracle
from meshbridge.istiod.request import build_request
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.pki.x509 import issue_ca, parse_certificates
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from meshbridge.world import proxies
from tests.builders import bridge_from, issued_store, seed_dict

pytestmark = pytest.mark.oracle
GATEWAY = "eks/istio-ingressgateway"
CA_SDS = "kubernetes-gateway://istio-ingress/mtls-credential-cacert"


def _gateway_api(d: dict[str, Any]) -> dict[str, Any]:
    eks = d["spec"]["meshes"]["eks"]
    eks["ingressGateway"]["api"] = "gateway-api"
    eks["istio"]["version"] = "1.31.0"
    return d


def _istiod(oracle: Path, tmp_path: Path, frontend: bool = True) -> tuple[IstiodConfig, bytes]:
    """istiod's configuration of the exporter's gateway for the seed in the Gateway API, and the importers' CA."""
    bridge = bridge_from(_gateway_api(seed_dict()))
    credentials = issued_store(tmp_path, bridge).credentials(bridge)
    cfg = mesh_configs(bridge, credentials)[0]["eks"]
    if not frontend:
        for doc in cfg.cluster_objects:
            doc["spec"].pop("tls", None)
    request = build_request("eks", cfg, [p.proxy for p in proxies(bridge, "eks")])
    return run_oracle(request, oracle).proxies[GATEWAY], credentials["eks"].server_trust


def _chain(istiod: IstiodConfig, sni: str) -> dict[str, Any]:
    (listener,) = [x for x in istiod.listeners if x["name"] == "0.0.0.0_443"]
    (chain,) = [c for c in listener["filterChains"] if c.get("filterChainMatch", {}).get("serverNames") == [sni]]
    return dict(chain["transportSocket"]["typedConfig"])


def test_istiod_requires_the_importers_ca_on_the_gateway_api_listener(oracle: Path, tmp_path: Path) -> None:
    istiod, importers_ca = _istiod(oracle, tmp_path)
    tls = _chain(istiod, "lambda.external")
    assert tls["requireClientCertificate"] is True
    context = tls["commonTlsContext"]
    assert context["tlsCertificateSdsSecretConfigs"][0]["name"] == "kubernetes-gateway://istio-ingress/mtls-credential"
    assert context["combinedValidationContext"]["validationContextSdsSecretConfig"]["name"] == CA_SDS
    (trust,) = [s for s in istiod.secrets if s["name"] == CA_SDS]
    served = base64.b64decode(trust["validationContext"]["trustedCa"]["inlineBytes"])
    assert parse_certificates(served) == parse_certificates(importers_ca)  # the importers' CA, nothing else


def test_without_frontend_validation_istiod_asks_no_client_certificate(oracle: Path, tmp_path: Path) -> None:
    istiod, _ = _istiod(oracle, tmp_path, frontend=False)
    tls = _chain(istiod, "lambda.external")
    assert tls["requireClientCertificate"] is False  # any client is served: the validation is what refuses
    assert "combinedValidationContext" not in tls["commonTlsContext"]


def test_the_backend_tls_policy_gives_the_alb_cluster_its_sni_and_san(oracle: Path, tmp_path: Path) -> None:
    istiod, _ = _istiod(oracle, tmp_path)
    (alb,) = [c for c in istiod.clusters if c["name"] == "outbound|443||alb.internal.example.com"]
    tls = alb["transportSocket"]["typedConfig"]
    assert tls["sni"] == "alb.internal.example.com"
    validation = tls["commonTlsContext"]["combinedValidationContext"]["defaultValidationContext"]
    assert validation["matchSubjectAltNames"] == [{"exact": "alb.internal.example.com"}]
    (route,) = [r for r in istiod.routes if r["name"].startswith("https.443.")]
    (vhost,) = route["virtualHosts"]
    assert vhost["domains"] == ["lambda.external"]
    assert vhost["routes"][0]["route"]["cluster"] == "outbound|443||alb.internal.example.com"


def test_the_importer_keeps_its_client_certificate_in_a_destination_rule(oracle: Path, tmp_path: Path) -> None:
    """istio/istio#61515: Istio 1.31 validates a Gateway's spec.tls.backend.clientCertificateRef for its status
    only, and a BackendTLSPolicy carries no client certificate, so the importer's mutual TLS stays a
    DestinationRule (MUTUAL, credentialName)."""
    bridge = bridge_from(_gateway_api(seed_dict()))
    cfg = mesh_configs(bridge, issued_store(tmp_path, bridge).credentials(bridge))[0]["gke"]
    assert not cfg.cluster_objects
    (rule,) = [dr for dr in cfg.destination_rules if dr.metadata.name == "dr-lambda-ext"]
    tls = rule.spec.traffic_policy.port_level_settings[0].tls if rule.spec.traffic_policy else None
    assert tls is not None and tls.mode == "MUTUAL" and tls.credential_name == "mtls-credential"


def test_meshbridges_conversion_gives_the_gateway_istiods_configuration(oracle: Path, tmp_path: Path) -> None:
    """meshbridge.istio.gatewayapi converts the objects as istiod's gateway controller does: the gateway's
    listeners, routes, clusters and secrets are istiod's, fact by fact, but for one documented difference (FD01)."""
    bridge = bridge_from(_gateway_api(seed_dict()))
    cfg = mesh_configs(bridge, issued_store(tmp_path, bridge).credentials(bridge))[0]["eks"]
    verdict = judge_mesh("eks", cfg, [p.proxy for p in proxies(bridge, "eks")], oracle)
    (gateway,) = [v for v in verdict.proxies if v.name == GATEWAY]
    assert not gateway.undocumented, [str(d) for d in gateway.undocumented]
    assert gateway.identical == gateway.facts[1] - len(gateway.differences)
    assert [d.path for d in gateway.differences] == [
        "cluster outbound|443||alb.internal.example.com tls subject_alt_names"
    ]


def test_without_the_conversion_the_model_sees_no_listener(oracle: Path, tmp_path: Path) -> None:
    """Its negative twin: the Istio documents istiod would convert, left out, leave meshbridge's translation without
    the exporter's listener, which istiod has: the comparison sees the conversion's work."""
    bridge = bridge_from(_gateway_api(seed_dict()))
    cfg = mesh_configs(bridge, issued_store(tmp_path, bridge).credentials(bridge))[0]["eks"]
    cfg.gateways.clear()
    verdict = judge_mesh("eks", cfg, [p.proxy for p in proxies(bridge, "eks")], oracle)
    (gateway,) = [v for v in verdict.proxies if v.name == GATEWAY]
    assert "listener 0.0.0.0_443" in [d.path for d in gateway.undocumented]


def test_a_backend_ca_file_reaches_the_alb_cluster_as_istiod_serves_it(oracle: Path, tmp_path: Path) -> None:
    """The caFile becomes a ConfigMap (ca.crt) that the BackendTLSPolicy names: istiod serves it to the gateway as
    configmap://<ns>/<name>-cacert, and meshbridge's translation and twin serve the same."""
    d = _gateway_api(seed_dict())
    d["spec"]["exports"][0]["backend"]["tls"]["caFile"] = "alb-ca.pem"
    bridge = bridge_from(d)
    alb_ca = issue_ca("alb CA").cert_pem
    cfg = mesh_configs(bridge, issued_store(tmp_path, bridge).credentials(bridge), backend_cas={"lambda": alb_ca})[0]
    verdict = judge_mesh("eks", cfg["eks"], [p.proxy for p in proxies(bridge, "eks")], oracle)
    (gateway,) = [v for v in verdict.proxies if v.name == GATEWAY]
    assert not gateway.undocumented, [str(x) for x in gateway.undocumented]
    name = "configmap://istio-ingress/lambda-backend-ca-cacert"
    (trust,) = [s for s in gateway.istiod.secrets if s["name"] == name]
    assert base64.b64decode(trust["validationContext"]["trustedCa"]["inlineBytes"]) == alb_ca


@pytest.fixture(scope="module")
def gateway_api_twin(oracle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    work = tmp_path_factory.mktemp("seed-gateway-api")
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    file = work / "bridge.yaml"
    file.write_text(yaml.safe_dump(_gateway_api(yaml.safe_load(file.read_text()))))
    twin = LocalTwin(load_bridge(file), file, work / ".meshbridge")
    try:
        twin.up(translator="istiod")
        yield twin
    finally:
        twin.down()


@pytest.mark.integration
def test_the_app_gets_the_lambda_page_through_the_gateway_api_exporter(gateway_api_twin: LocalTwin) -> None:
    r = curl(gateway_api_twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 200 and b"Hello World from Lambda" in r.body


@pytest.mark.integration
def test_every_verify_check_passes_on_the_gateway_api_exporter(gateway_api_twin: LocalTwin) -> None:
    conditions = verify_local(gateway_api_twin)
    failed = [f"{c.check}: {c.reason}: {c.message}" for c in conditions if c.status != "True"]
    assert not failed, "\n".join(failed)
    refused = {c.check: c.reason for c in conditions if c.check.startswith("ExporterRefuses")}
    assert refused == {  # real handshakes with istiod's listener
        "ExporterRefusesNoClientCert": "Refused",
        "ExporterRefusesForeignCA": "Refused",
        "ExporterRefusesExpiredCert": "Refused",
        "ExporterRefusesWrongSNI": "Refused",
    }
