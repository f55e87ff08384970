"""A gateway's network RBAC filter on real Envoy: the seed's twin with the exporter's Gateway server turned into a
TLS server (MUTUAL) whose VirtualService routes ``tcp`` to the Lambda's ALB, as a user bridging a non-HTTP service
writes it. istiod (and the twin) put the network RBAC filter before the TCP proxy: the rendered policy's rule names
``hosts``, which a TCP connection does not carry, so istiod leaves it out and Envoy closes gke's connection (the
app gets a 503 and Envoy counts tcp.rbac.denied; lint says MB120); the same rule on the importer's principal alone
admits it (tcp.rbac.allowed, and the stream goes on to the ALB). The simulator answers each the same on the
configuration Envoy runs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.view import EnvoyView
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.render import render_bridge
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
GKE = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _tcp_export(docs: list[dict[str, Any]], *, hosts_in_rule: bool) -> None:
    """The export's server passes the decrypted stream on as TCP; the policy's rule keeps its hosts or not."""
    for d in docs:
        if d["kind"] == "Gateway":
            d["spec"]["servers"][0]["port"].update({"protocol": "TLS", "name": "tls"})
        elif d["kind"] == "VirtualService":
            d["spec"]["tcp"] = [{"route": d["spec"].pop("http")[0]["route"]}]
        elif d["kind"] == "AuthorizationPolicy" and not hosts_in_rule:
            d["spec"]["rules"][0].pop("to")


@pytest.fixture(scope="module", params=[True, False], ids=["rule-on-hosts", "rule-on-principals"])
def twin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTwin, bool]]:
    tmp = tmp_path_factory.mktemp("network-rbac")
    file, bridge = seed_folder(tmp)
    docs = [dict(d) for d in render_bridge(bridge, None)["eks"]]
    _tcp_export(docs, hosts_in_rule=request.param)
    (tmp / "eks.yaml").write_text(yaml.safe_dump_all(docs))
    local = LocalTwin(bridge, file, tmp / ".meshbridge")
    local.up({"eks": [tmp / "eks.yaml"]})
    try:
        yield local, request.param
    finally:
        local.down()


def test_envoy_closes_the_tcp_connection_only_when_the_rule_names_hosts(twin: tuple[LocalTwin, bool]) -> None:
    local, hosts_in_rule = twin
    before = local.stats("eks/istio-ingressgateway")
    r = curl(local.app_view(), "http://lambda.external/hello-world")
    after = local.stats("eks/istio-ingressgateway")
    counted = {k: after.get(f"tcp.rbac.{k}", 0) - before.get(f"tcp.rbac.{k}", 0) for k in ("allowed", "denied")}
    if hosts_in_rule:
        assert counted["allowed"] == 0 and counted["denied"] >= 1, counted  # gke's egress retries a reset
        assert r.status == 503 and PAGE not in r.body, (r.status, r.body[:200])
    else:
        assert counted["allowed"] >= 1 and counted["denied"] == 0, counted
        assert r.status != 503, (r.status, r.body[:200])  # past the filter: the ALB's answer through tcp_proxy


def test_the_simulator_says_the_same_on_the_configuration_envoy_runs(twin: tuple[LocalTwin, bool]) -> None:
    local, hosts_in_rule = twin
    view = EnvoyView.from_config_dump(local.config_dump("eks/istio-ingressgateway"))
    req = Request(8443, "lambda.external", tls=True, sni="lambda.external", client_cert=True, principal=GKE)
    result = simulate(view, req, secrets=False)
    assert (result.error == "RBACDenied") is hosts_in_rule, result.detail
    assert result.ok is not hosts_in_rule
