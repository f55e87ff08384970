"""Lint on an exporter in the shape of istio.io's "ingress TLS passthrough" task (a Gateway server with tls mode
PASSTHROUGH, a VirtualService tls route on sniHosts): MB314, a warning, says the gateway passes the importer's
mutual TLS through to the backend (istiod builds a chain matching the SNI that runs tcp_proxy), which works only if
the backend terminates it; not MB304's error that the listener is plain HTTP. Twins: the seed's MUTUAL server (no
MB314), a passthrough chain for another SNI (MB303, no passthrough), and a plain HTTP server on the port (MB304
still says plain HTTP)."""

from __future__ import annotations

from typing import Any

from meshbridge.lint import LintReport
from tests.lint_builders import Docs, doc, lint_docs, seed_docs


def _passthrough(sni: str = "lambda.external", protocol: str = "HTTPS") -> Docs:
    """The seed with eks's Gateway server in PASSTHROUGH for ``sni`` and its VirtualService routing by that SNI."""
    docs = seed_docs()
    server: dict[str, Any] = doc(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]
    server["hosts"], server["port"]["protocol"], server["tls"] = [sni], protocol, {"mode": "PASSTHROUGH"}
    service = doc(docs, "eks", "VirtualService", "vs-lambda")["spec"]
    service["hosts"] = [sni]
    route = service.pop("http")[0]["route"]
    service["tls"] = [{"match": [{"port": 443, "sniHosts": [sni]}], "route": route}]
    return docs


def _messages(report: LintReport, code: str) -> list[str]:
    return [f.message for f in report.findings if f.code == code]


def test_mb314_names_the_passthrough_chain_and_where_the_mutual_tls_ends() -> None:
    for protocol in ("HTTPS", "TLS"):  # istio.io's task says HTTPS; TLS builds the same chain
        report = lint_docs(_passthrough(protocol=protocol))
        assert _messages(report, "MB304") == []
        (found,) = [f for f in report.findings if f.code == "MB314"]
        assert found.severity == "warning"  # a backend that terminates the mutual TLS makes it work
        assert "plain HTTP" not in found.message, found.message
        assert "eks/istio-ingressgateway passes the TLS through unterminated" in found.message
        assert "SNI lambda.external -> tcp_proxy to outbound|443||alb.internal.example.com" in found.message
        assert "it works only if the backend terminates it" in found.message
        assert "tls: {mode: MUTUAL, credentialName: <Secret>}" in found.fix and "sniHosts" in found.fix
        assert [(o.kind, o.field) for o in found.objects][1] == ("Gateway", "spec.servers[0].tls.mode")


def test_negative_twin_the_seeds_mutual_server_gets_no_mb314() -> None:
    assert _messages(lint_docs(seed_docs()), "MB314") == []


def test_negative_twin_a_passthrough_chain_for_another_sni_is_an_sni_mismatch() -> None:
    report = lint_docs(_passthrough(sni="nginx.example.com"))
    assert _messages(report, "MB314") == []
    assert any("only has chains for ['nginx.example.com']" in m for m in _messages(report, "MB303"))


def test_negative_twin_a_plain_http_server_on_the_port_is_still_plain_http() -> None:
    docs = seed_docs()
    server = doc(docs, "eks", "Gateway", "eastwestgateway")["spec"]["servers"][0]
    server["port"]["protocol"] = "HTTP"
    server.pop("tls")
    (message,) = _messages(lint_docs(docs), "MB304")
    assert "the listener on 8443 is plain HTTP" in message and "passes the TLS through" not in message
