"""MB209 follows what the destination's server does on the port (the simulator over the gateway's listeners), not
the Service port's number or name."""

from __future__ import annotations

from typing import Any

from meshbridge.lint import LintReport
from tests.builders import bridge_from, seed_dict
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
    (message,) = _mb209(lint_docs(docs, bridge))
    assert message.startswith("gke/sleep routes HTTP to outbound|443|lambda|istio-egressgateway.istio-egress.svc")
    assert message.endswith("and no DestinationRule originates TLS there: plain text reaches a TLS port")
