"""The seed with its exporter in the Kubernetes Gateway API (``ingressGateway.api: gateway-api``) on meshbridge's own
translation, real Envoy and real TLS: the model converts the Gateway, HTTPRoute and BackendTLSPolicy as istiod does
(meshbridge.istio.gatewayapi), and every verify check passes, the refusals included. The same on istiod's own
configuration, and the translation compared fact by fact with istiod's: tests/oracle/test_gateway_api.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml

from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.render.gatewayapi import served_credential
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from meshbridge.verify.served import served_problems
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    file, _ = seed_folder(tmp_path_factory.mktemp("gateway-api"))
    data = yaml.safe_load(file.read_text())
    eks = data["spec"]["meshes"]["eks"]
    eks["ingressGateway"]["api"] = "gateway-api"
    eks["istio"]["version"] = "1.31.0"
    file.write_text(yaml.safe_dump(data))
    twin = LocalTwin(load_bridge(file), file, file.parent / ".meshbridge")
    try:
        twin.up()
        yield twin
    finally:
        twin.down()


def test_the_app_gets_the_lambda_page_through_the_converted_gateway(twin: LocalTwin) -> None:
    r = curl(twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 200 and b"Hello World from Lambda" in r.body
    dump = twin.config_dump("eks/istio-ingressgateway")
    (listeners,) = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")]
    names = sorted(x["name"] for x in listeners.get("dynamic_listeners", []))
    assert names == ["0.0.0.0_443"]  # the Gateway's listener port, which Istio's Service maps to itself


def test_every_verify_check_passes_and_the_refusals_are_real(twin: LocalTwin) -> None:
    conditions = verify_local(twin)
    failed = [f"{c.check}: {c.reason}: {c.message}" for c in conditions if c.status != "True"]
    assert not failed, "\n".join(failed)
    refused = {c.check for c in conditions if c.check.startswith("ExporterRefuses") and c.reason == "Refused"}
    assert refused == {
        "ExporterRefusesNoClientCert",
        "ExporterRefusesForeignCA",
        "ExporterRefusesExpiredCert",
        "ExporterRefusesWrongSNI",
    }


def test_certs_push_finds_the_store_served_under_istiods_gateway_api_name(twin: LocalTwin) -> None:
    """What 'certs push' and 'certs rotate' wait for on clusters (kube.verify): the gateway's served secrets,
    compared with the store under the name a Gateway API listener holds them (served_credential)."""
    dump = twin.config_dump("eks/istio-ingressgateway")
    creds = PkiStore(twin.state_dir).credentials(twin.bridge)["eks"]
    name = served_credential(twin.bridge, "eks", "ingress")
    assert served_problems("eks/istio-ingressgateway", "ingress", dump, creds, name) == []
    # its twin: under the Istio form's name the gateway holds nothing
    (problem,) = served_problems("eks/istio-ingressgateway", "ingress", dump, creds, "mtls-credential")
    assert "holds no kubernetes://mtls-credential at all" in problem
