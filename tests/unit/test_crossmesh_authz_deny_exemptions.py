"""MB312/MB313 with a DENY AuthorizationPolicy on the exporter gateway: lint also asks the requests a DENY rule's
``notPaths``/``notMethods`` exempt (a DENY on every path but ``/api/*`` admits ``/api/x``), so such a policy is an
info naming what it admits, not an error; and the finding names first the policy whose rule refused the request."""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.authz import named_requests
from meshbridge.istio.parse import build_config
from meshbridge.lint import Finding
from tests.builders import seed_bridge
from tests.lint_builders import doc, lint_docs, seed_docs

GKE = "gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
IMPORTERS = ("eks", "AuthorizationPolicy", "istio-ingressgateway-importers")
DENY = ("eks", "AuthorizationPolicy", "deny-nonapi")


def _deny(operation: dict[str, Any]) -> dict[str, Any]:
    """A DENY policy on the exporter gateway (the importers' policy's namespace and selector) with one rule."""
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "deny-nonapi", "namespace": "istio-ingress"},
        "spec": {
            "selector": {"matchLabels": {"istio": "ingressgateway"}},
            "action": "DENY",
            "rules": [{"to": [{"operation": operation}]}],
        },
    }


def _lint(deny: dict[str, Any], allow: dict[str, Any] | None = None) -> list[Finding]:
    """The seed linted with the DENY policy ``deny`` beside its importers' policy (whose operation gets ``allow``)."""
    docs = seed_docs(seed_bridge())
    if allow:
        doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]["to"][0][
            "operation"
        ].update(allow)
    docs["eks"].append(_deny(deny))
    return [f for f in lint_docs(docs).findings if f.code in ("MB312", "MB313")]


def _objects(f: Finding) -> list[tuple[str, str, str]]:
    return [(o.mesh, o.kind, o.name) for o in f.objects]


def test_a_deny_on_every_path_but_some_admits_those_an_info_naming_the_deny_policy_first() -> None:
    (f,) = _lint({"notPaths": ["/api/*"]})
    assert (f.code, f.severity) == ("MB313", "info")
    assert f.message.startswith(
        f"eks/istio-ingressgateway admits {GKE} (mesh gke, an importer of export lambda) asking for Host "
        "lambda.external only on GET /api/x; GET / is refused: 403 RBAC: access denied (DENY policy "
        "ns[istio-ingress]-policy[deny-nonapi]-rule[0] matches)"
    ), f.message
    assert _objects(f) == [DENY, IMPORTERS]


def test_negative_twin_a_deny_on_every_path_stays_an_error_naming_the_deny_policy_first() -> None:
    (f,) = _lint({"paths": ["*"]})
    assert (f.code, f.severity) == ("MB312", "error")
    assert "DENY policy ns[istio-ingress]-policy[deny-nonapi]-rule[0] matches" in f.message
    assert _objects(f) == [DENY, IMPORTERS]


def test_a_deny_on_every_method_but_some_admits_those_only_where_the_allow_rules_do() -> None:
    (f,) = _lint({"notMethods": ["POST"]})
    assert f.code == "MB313" and "only on POST /;" in f.message
    (f,) = _lint({"notPaths": ["/api/*", "/"]}, allow={"methods": ["POST"]})  # the ALLOW rule's method
    assert f.code == "MB313" and "only on POST /, POST /api/x;" in f.message, f.message
    assert "no ALLOW policy matches GET /" in f.message and "DENY policy" not in f.message
    assert _objects(f) == [IMPORTERS, DENY]  # no policy's rule refused GET /: the spec's order


def test_negative_twin_an_exemption_the_allow_rules_refuse_stays_an_error() -> None:
    (f,) = _lint({"notPaths": ["/api/*"]}, allow={"paths": ["/hello-world"]})
    assert (f.code, f.severity) == ("MB312", "error")
    assert f.message.endswith("(nor GET /hello-world, GET /api/x, which its rules name)")


def _policy(rule: dict[str, Any], action: str) -> dict[str, Any]:
    md = {"name": "p", "namespace": "gw"}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": md,
        "spec": {"action": action, "rules": [rule]},
    }


def test_named_requests_vary_the_allow_rules_requests_into_what_a_deny_rule_exempts() -> None:
    allow = _policy({"to": [{"operation": {"methods": ["PUT"], "paths": ["/v1/*"]}}]}, "ALLOW")
    deny = _policy({"to": [{"operation": {"notPaths": ["/v1/items/*", "/health"], "notMethods": ["PUT"]}}]}, "DENY")
    cfg = build_config([("p.yaml", allow), ("d.yaml", deny)])
    assert named_requests(cfg.authorization_policies) == [
        ("PUT", "/v1/", ()),
        ("PUT", "/v1/items/x", ()),
        ("PUT", "/health", ()),
    ]
    alone = build_config([("d.yaml", deny)])  # no ALLOW policy: GET / is varied
    assert named_requests(alone.authorization_policies) == [
        ("GET", "/v1/items/x", ()),
        ("GET", "/health", ()),
        ("PUT", "/", ()),
    ]


def test_negative_twin_a_deny_rule_without_exemptions_names_no_request() -> None:
    deny = _policy({"to": [{"operation": {"paths": ["/admin/*"], "methods": ["DELETE"]}}]}, "DENY")
    assert named_requests(build_config([("d.yaml", deny)]).authorization_policies) == []
    dry = _policy({"to": [{"operation": {"notPaths": ["/api/*"]}}]}, "DENY")
    dry["metadata"]["annotations"] = {"istio.io/dry-run": "true"}
    assert named_requests(build_config([("d.yaml", dry)]).authorization_policies) == []
