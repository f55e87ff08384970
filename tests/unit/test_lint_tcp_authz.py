"""MB120: a rule with HTTP-only fields (hosts, methods, paths, request.* conditions) in an AuthorizationPolicy that
selects a gateway with TCP chains, where istiod's network RBAC filter skips it (ALLOW) or drops those fields
(DENY). On the oracle corpus's shapes: the oracle tier shows the same filters and calls."""

from __future__ import annotations

from meshbridge.istio.parse import load_documents
from meshbridge.lint import Finding, from_manifests, lint
from tests.oracle.corpus import CASES


def _mb120(name: str) -> list[Finding]:
    report = lint(from_manifests({"mesh": load_documents([CASES / f"{name}.yaml"])}))
    return [f for f in report.findings if f.code == "MB120"]


def test_an_allow_on_paths_over_a_tcp_route_is_a_warning_naming_its_fields_and_ports() -> None:
    (f,) = _mb120("gateway-tcp-authorization-principals")  # the MQTT gateway's; the Postgres one names principals
    assert f.severity == "warning"
    assert [(o.kind, o.namespace, o.name, o.field) for o in f.objects] == [
        ("AuthorizationPolicy", "iot", "devices-only", "spec.rules[0].to[0].operation.methods")
    ]
    assert f.message == (
        "ALLOW rule 0 names to[0].operation.methods, to[0].operation.paths, which a TCP connection does not carry, "
        "and selects mesh/iot-gateway, whose TCP chains on port 8883 have istiod's network RBAC filter: istiod "
        "skips the rule there: it admits no connection on those ports"
    )


def test_a_deny_with_a_method_says_it_refuses_more_and_an_allow_on_sources_says_nothing() -> None:
    found = {(f.objects[0].name, f.message.rsplit(": ", 1)[-1]) for f in _mb120("gateway-tcp-authorization")}
    assert found == {
        ("db-clients", "it admits no connection on those ports"),  # rule 1: GET /metrics
        ("no-deletes", "the rule refuses every connection its other fields match"),
    }


def test_negative_twin_http_gateways_with_the_same_policies_say_nothing() -> None:
    assert _mb120("ingress-authorization-paths-methods-ports") == []  # HTTP chains only: the rules apply as written
    assert _mb120("tls-mutual-terminate-tcp") == []  # a TCP chain and no policy


def _mb123(name: str) -> list[Finding]:
    report = lint(from_manifests({"mesh": load_documents([CASES / f"{name}.yaml"])}))
    return [f for f in report.findings if f.code == "MB123"]


def test_principals_on_a_passthrough_rule_are_a_warning_naming_the_field_and_port() -> None:
    (f,) = _mb123("gateway-authorization-ip-blocks")  # db-gateway: rule 0 principals, rule 1 ipBlocks
    assert f.severity == "warning"
    assert [(o.kind, o.namespace, o.name, o.field) for o in f.objects] == [
        ("AuthorizationPolicy", "db", "apps-to-pg", "spec.rules[0].from[0].source.principals")
    ]
    assert f.message == (
        "ALLOW rule 0 names from[0].source.principals, judged on the client certificate, but its ports and SNI "
        "leave only chains of mesh/db-gateway on port 8443 that pass TLS through (or speak plain TCP): the gateway "
        "sees no certificate there: the field never holds, so the rule admits no connection"
    )
    assert "from.source.ipBlocks" in f.fix


def test_negative_twin_principals_where_the_gateway_ends_tls_say_nothing() -> None:
    assert _mb123("gateway-tcp-authorization-principals") == []  # MUTUAL to tcp: the certificate is seen
    assert _mb123("ingress-authorization-locked-and-sni") == []  # HTTPS chains
