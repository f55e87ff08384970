"""lint MB312 names the ``from.source`` field of the exporter's ALLOW rule that excludes the importer's identity,
as the RBAC filter judges it, and says when a principal's ``*`` is literal in Istio (only ``*`` alone or one at an
end is a wildcard)."""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.authz import literal_stars
from meshbridge.lint import Finding
from tests.builders import bridge_from, seed_dict
from tests.lint_builders import doc, lint_docs, seed_docs

EGRESS = "gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
RULE = "istio-ingress/istio-ingressgateway-importers spec.rules[0]"


def _mb312(source: dict[str, Any], hosts: list[str] | None = None) -> list[Finding]:
    bridge = bridge_from(seed_dict())
    docs = seed_docs(bridge)
    rule = doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
    rule["from"][0]["source"] = source
    if hosts is not None:
        rule["to"][0]["operation"]["hosts"] = hosts
    return [f for f in lint_docs(docs, bridge).findings if f.code == "MB312"]


def test_the_not_principals_that_exclude_the_importer_are_named() -> None:
    (f,) = _mb312({"principals": ["*"], "notPrincipals": [EGRESS]})
    assert f.message.endswith(f"; {RULE}.from[0].source.notPrincipals excludes it")


def test_a_star_in_the_middle_or_after_a_leading_one_is_said_to_be_literal() -> None:
    (f,) = _mb312({"principals": ["*/ns/istio-egress/sa/*"]})
    assert f.message.endswith(
        f"; {RULE}.from[0].source.principals ('*/ns/istio-egress/sa/*': Istio reads a '*' as a wildcard only alone "
        "or at one end, once, so the other '*' matches only a '*' in the certificate's SAN) excludes it"
    )
    assert literal_stars(["*/ns/a/sa/*", "a/*/b", "*", "*/sa/b", "a/sa/*", "exact"]) == ["*/ns/a/sa/*", "a/*/b"]


def test_negative_twin_a_leading_star_admits_and_nothing_is_reported() -> None:
    assert _mb312({"principals": ["*/ns/istio-egress/sa/istio-egressgateway-service-account"]}) == []


def test_a_rule_whose_source_admits_the_importer_names_no_field() -> None:
    (f,) = _mb312({"principals": [EGRESS]}, hosts=["other.external"])  # refused by its hosts, not its source
    assert "excludes it" not in f.message
