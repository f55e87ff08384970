"""MB209 follows what the destination's server does on the port (the simulator over the gateway's listeners), not
the Service port's number or name."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.lint import Finding, LintReport
from tests.builders import bridge_from, seed_dict
from tests.istio_builders import doc_named, istio_mutual_egress
from tests.lint_builders import doc, lint_docs, lint_spec, seed_docs


def _egress_port_443(data: dict[str, Any]) -> None:
    data["spec"]["exports"][0]["egressGatewayPort"] = 443


def _mb209(report: LintReport) -> list[str]:
    return [f.message for f in report.findings if f.code == "MB209"]


def test_an_egress_gateway_http_server_on_443_takes_the_apps_plain_text() -> None:
    """The rendered egress Gateway server on 443 is HTTP: the sidecar's plain text is what it takes, although the
    egress gateway's Service calls port 443 'https'."""
    report = lint_spec(_egress_port_443)
    assert _mb209(report) == []
    assert not report.errors


def test_plain_text_to_an_egress_gateway_server_that_terminates_tls_on_443_is_mb209() -> None:
    """The twin: the same port with the Gateway server terminating TLS: the sidecar still sends plain text."""
    data = seed_dict()
    _egress_port_443(data)
    bridge = bridge_from(data)
    docs = seed_docs(bridge)
    server = doc(docs, "gke", "Gateway", "istio-egressgateway")["spec"]["servers"][0]
    assert server["port"]["number"] == 443
    server["port"] = {"number": 443, "name": "https", "protocol": "HTTPS"}
    server["tls"] = {"mode": "SIMPLE", "credentialName": "mtls-credential"}
    (f,) = [f for f in lint_docs(docs, bridge).findings if f.code == "MB209"]
    assert f.message.startswith("gke/sleep routes HTTP to outbound|443|lambda|istio-egressgateway.istio-egress.svc")
    assert f.message.endswith(
        "and no DestinationRule originates TLS for its subset lambda: plain text reaches a TLS port"
    )
    assert f.fix.endswith("tls: {mode: SIMPLE, sni: lambda.external}}]")  # what a SIMPLE server takes


# -- the egress gateway on ISTIO_MUTUAL (Istio's egress mutual-TLS origination task) ---------------------------


def _istio_mutual(port: int, subset_tls: bool = True) -> list[Finding]:
    """MB209 of the seed with the sidecar → egress gateway hop on ISTIO_MUTUAL on ``port`` of the egress gateway's
    Service; without ``subset_tls`` the subset the sidecar's route names sends plain text."""
    docs = seed_docs()
    istio_mutual_egress(docs, port)
    if not subset_tls:
        doc_named(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"] = [{"name": "lambda"}]
    return [f for f in lint_docs(docs).findings if f.code == "MB209"]


@pytest.mark.parametrize("port", [80, 443])
def test_an_istio_mutual_egress_server_reached_by_the_subset_on_istio_mutual_is_no_mb209(port: int) -> None:
    """On 80 the server's listener (8080) is also where istiod's default route for the egress gateway Service's own
    host lands, in plain text; no VirtualService sends there, so it is not the path of any call."""
    assert _istio_mutual(port) == []


@pytest.mark.parametrize(("port", "protocol", "listener"), [(80, "HTTP2", 8080), (443, "HTTPS", 8443)])
def test_negative_twin_the_subset_without_tls_is_mb209_with_istio_mutual_as_the_fix(
    port: int, protocol: str, listener: int
) -> None:
    (f,) = _istio_mutual(port, subset_tls=False)
    assert f.message == (
        f"gke/sleep routes HTTP to outbound|{port}|lambda|istio-egressgateway.istio-egress.svc.cluster.local (port "
        f"{port} {protocol}, endpoint ports [{listener}]) and no DestinationRule originates TLS for its subset lambda: "
        "plain text reaches a TLS port"
    )
    assert f.fix == (
        "in DestinationRule istio-egress/egressgateway-for-lambda set subsets[name: lambda].trafficPolicy."
        f"portLevelSettings[{{port: {{number: {port}}}, tls: {{mode: ISTIO_MUTUAL, sni: lambda.external}}}}]"
    )


def _external(rule: bool) -> list[Finding]:
    """An app's call to a ServiceEntry host on port 80 whose endpoints listen on 443 (Istio's TLS origination task
    without a VirtualService: istiod's default route is how apps call it), with or without a SIMPLE rule."""
    docs = seed_docs()
    entry = {"hosts": ["api.partner.example"], "resolution": "DNS"}
    entry["ports"] = [{"number": 80, "name": "http", "protocol": "HTTP", "targetPort": 443}]
    docs["gke"].append(
        {
            "apiVersion": "networking.istio.io/v1",
            "kind": "ServiceEntry",
            "metadata": {"name": "api", "namespace": "sleep"},
        }
        | {"spec": entry}
    )
    if rule:
        tls = {"port": {"number": 80}, "tls": {"mode": "SIMPLE", "sni": "api.partner.example"}}
        spec = {"host": "api.partner.example", "trafficPolicy": {"portLevelSettings": [tls]}}
        md = {"name": "api", "namespace": "sleep"}
        docs["gke"].append(
            {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule", "metadata": md} | {"spec": spec}
        )
    return [f for f in lint_docs(docs).findings if f.code == "MB209"]


def test_the_default_route_to_an_external_host_is_still_judged() -> None:
    (f,) = _external(rule=False)
    assert f.message.startswith("gke/sleep routes HTTP to outbound|80||api.partner.example (port 80 HTTP, endpoint")
    assert f.fix.endswith("tls: {mode: SIMPLE, sni: <host>}}]")


def test_negative_twin_the_external_host_with_a_simple_rule_is_no_mb209() -> None:
    assert _external(rule=True) == []
