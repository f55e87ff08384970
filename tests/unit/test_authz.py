"""Authorization at the exporter: the AuthorizationPolicy render writes, how the model reads one, the RBAC filter
the twin translates it into, and where the kube layer finds it. istiod's own RBAC filter for the same policies is
compared in tests/oracle; real Envoy refuses with it in tests/integration/test_authz_twin.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.authz import rbac_filters
from meshbridge.envoy.pathsim import path_findings, trace_exports
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.errors import IstioConfigError, KubeError
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy
from meshbridge.kube.apply import owned_types
from meshbridge.kube.resources import resource_type
from meshbridge.render import render_bridge
from meshbridge.render.owned import owned_kinds
from meshbridge.verify.local import forbidden_host
from tests.builders import bridge_from, seed_bridge, seed_dict, two_exports_three_meshes
from tests.istio_builders import Docs, doc_named, proxy_config, rendered_config, seed_path
from tests.lint_builders import doc, lint_docs, seed_docs

GKE = "gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
AKS = "aks.example.com/ns/egress/sa/egw-service-account"
INGRESS = Proxy("router", "istio-ingressgateway", "istio-ingress", {"app": "istio-ingressgateway"})


def _policies(d: dict[str, Any], mesh: str = "eks") -> list[dict[str, Any]]:
    return [doc for doc in render_bridge(bridge_from(d), None)[mesh] if doc["kind"] == "AuthorizationPolicy"]


def test_each_export_admits_only_its_importers_and_only_its_host() -> None:
    (policy,) = _policies(two_exports_three_meshes())
    assert policy["metadata"]["name"] == "istio-ingressgateway-importers"
    assert policy["metadata"]["namespace"] == "istio-ingress"
    assert policy["metadata"]["labels"]["meshbridge.io/bridge"] == "lambda-aws-to-gcp"
    assert policy["spec"]["selector"] == {
        "matchLabels": {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-17"}
    }  # the pods of the mesh's revision, as the Gateway selects them
    assert policy["spec"]["action"] == "ALLOW"
    lambda_rule, orders_rule = policy["spec"]["rules"]
    assert lambda_rule == {
        "from": [{"source": {"principals": [GKE, AKS]}}],
        "to": [{"operation": {"hosts": ["lambda.external", "lambda.external:*"]}}],
    }
    assert orders_rule["from"] == [{"source": {"principals": [GKE]}}]  # aks imports lambda only
    assert orders_rule["to"] == [{"operation": {"hosts": ["orders.external", "orders.external:*"]}}]


def test_principals_are_the_client_certificates_uri_san_without_spiffe() -> None:
    (policy,) = _policies(seed_dict())
    (principal,) = policy["spec"]["rules"][0]["from"][0]["source"]["principals"]
    assert not principal.startswith("spiffe://")
    assert f"spiffe://{principal}" in [
        d["spec"]["servers"][0]["tls"]["subjectAltNames"][0]
        for d in render_bridge(seed_bridge(), None)["eks"]
        if d["kind"] == "Gateway"
    ]


def test_switched_off_no_policy_is_rendered() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["authorizeImporters"] = False
    assert _policies(d) == []
    assert _policies(seed_dict()) != []  # the default


def test_the_api_version_follows_the_istio_version() -> None:
    for version, api in (("1.21.4", "security.istio.io/v1beta1"), ("1.22.0", "security.istio.io/v1")):
        d = seed_dict()
        d["spec"]["meshes"]["eks"]["istio"]["version"] = version
        (policy,) = _policies(d)
        assert policy["apiVersion"] == api


def test_the_policy_is_owned_where_an_ingress_gateway_is_even_when_switched_off() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["authorizeImporters"] = False
    bridge = bridge_from(d)
    assert "AuthorizationPolicy" in [k.kind for k in owned_kinds(bridge.spec.meshes["eks"])]  # prune finds old ones
    assert "AuthorizationPolicy" not in [k.kind for k in owned_kinds(bridge.spec.meshes["gke"])]  # no ingress
    (t,) = [t for t in owned_types(bridge, "eks") if t.kind == "AuthorizationPolicy"]
    assert t.collection_path("istio-ingress") == (
        "/apis/security.istio.io/v1beta1/namespaces/istio-ingress/authorizationpolicies"
    )


def test_an_authorization_policy_of_another_version_is_not_managed() -> None:
    assert resource_type("security.istio.io/v1", "AuthorizationPolicy").plural == "authorizationpolicies"
    with pytest.raises(KubeError, match=r"does not manage AuthorizationPolicy \(security.istio.io/v1alpha1\)"):
        resource_type("security.istio.io/v1alpha1", "AuthorizationPolicy")


# -- the model and the twin's RBAC filter ----------------------------------------------------------------------


def _policy(spec: dict[str, Any], api: str = "security.istio.io/v1", ns: str = "istio-ingress") -> dict[str, Any]:
    return {"apiVersion": api, "kind": "AuthorizationPolicy", "metadata": {"name": "p", "namespace": ns}, "spec": spec}


ALLOW_GKE = {
    "selector": {"matchLabels": {"app": "istio-ingressgateway"}},
    "rules": [{"from": [{"source": {"principals": [GKE]}}], "to": [{"operation": {"hosts": ["a.example", "a:*"]}}]}],
}


def test_the_rbac_filter_is_istiods_shape() -> None:
    cfg = build_config([("p.yaml#0", _policy(ALLOW_GKE))])
    assert cfg.warnings == []
    (f,) = rbac_filters(cfg, INGRESS)
    assert f["name"] == "envoy.filters.http.rbac"
    config = f["typed_config"]
    assert config["shadow_rules_stat_prefix"] == "istio_dry_run_allow_"
    assert "action" not in config["rules"]  # ALLOW is the proto's zero value: istiod leaves it out
    rule = config["rules"]["policies"]["ns[istio-ingress]-policy[p]-rule[0]"]
    (principal,) = rule["principals"]
    assert principal == {
        "and_ids": {"ids": [{"or_ids": {"ids": [{"authenticated": {"principal_name": {"exact": f"spiffe://{GKE}"}}}]}}]}
    }
    hosts = rule["permissions"][0]["and_rules"]["rules"][0]["or_rules"]["rules"]
    assert [h["header"]["string_match"] for h in hosts] == [
        {"exact": "a.example", "ignore_case": True},
        {"prefix": "a:", "ignore_case": True},
    ]


def test_a_policy_for_other_pods_adds_no_filter() -> None:
    cfg = build_config([("p.yaml#0", _policy(ALLOW_GKE))])
    other = Proxy("router", "istio-ingressgateway", "istio-ingress", {"app": "other"})
    elsewhere = Proxy("router", "istio-ingressgateway", "elsewhere", {"app": "istio-ingressgateway"})
    assert rbac_filters(cfg, other) == [] and rbac_filters(cfg, elsewhere) == []
    root = build_config([("p.yaml#0", _policy({**ALLOW_GKE, "selector": None}, ns="istio-system"))])
    assert len(rbac_filters(root, elsewhere)) == 1  # the root namespace's policy applies to every proxy


def test_deny_comes_before_allow() -> None:
    deny = _policy({"action": "DENY", "rules": [{"from": [{"source": {"notPrincipals": [GKE]}}]}]})
    deny["metadata"]["name"] = "d"
    (d, a) = rbac_filters(build_config([("d.yaml#0", deny), ("a.yaml#0", _policy(ALLOW_GKE))]), INGRESS)
    assert d["typed_config"]["rules"]["action"] == "DENY" and "action" not in a["typed_config"]["rules"]
    assert d["typed_config"]["shadow_rules_stat_prefix"] == "istio_dry_run_allow_"  # istiod's, on DENY too
    (rule,) = d["typed_config"]["rules"]["policies"].values()
    assert rule["permissions"] == [{"and_rules": {"rules": [{"any": True}]}}]  # no 'to': any request, as istiod
    assert rule["principals"][0]["and_ids"]["ids"][0]["not_id"]["or_ids"]["ids"][0]["authenticated"] == {
        "principal_name": {"exact": f"spiffe://{GKE}"}
    }


def test_a_field_outside_the_model_is_reported_not_dropped_silently() -> None:
    spec = {
        "rules": [
            {
                "from": [{"source": {"requestPrincipals": ["*"], "ipBlocks": ["10.0.0.0/8"]}}],
                "to": [{"operation": {"paths": ["/admin"]}}],
                "when": [
                    {"key": "request.auth.claims[x]", "values": ["y"]},
                    {"key": "source.namespace", "values": ["a"]},
                ],
            }
        ]
    }
    cfg = build_config([("p.yaml#0", _policy(spec))])
    assert sorted(w.field for w in cfg.warnings) == [
        "spec.rules[0].from[0].source.requestPrincipals",
        "spec.rules[0].when[0]",
    ]  # paths, ipBlocks and source.namespace are modelled
    (when,) = [w for w in cfg.warnings if w.field == "spec.rules[0].when[0]"]
    assert when.message == (
        "when key request.auth.claims[x] is not modelled: the twin and lint treat this ALLOW rule as matching no "
        "request (failing closed), so they may refuse what istiod's proxy admits, never the reverse. Fix: check it "
        "by hand, or write it as from.source or to.operation fields"
    )


def test_a_custom_action_is_reported_by_name_not_refused() -> None:
    custom = build_config([("p.yaml#0", _policy({"action": "CUSTOM", "provider": {"name": "oauth2-proxy"}}))])
    (w,) = custom.warnings
    assert (w.kind, w.namespace, w.name, w.field) == ("AuthorizationPolicy", "istio-ingress", "p", "spec.action")
    assert str(w) == (
        "p.yaml#0: AuthorizationPolicy istio-ingress/p spec.action: action CUSTOM is not modelled: istiod asks the "
        "ext_authz provider oauth2-proxy about the requests the rules match, and it may refuse them; the twin and "
        "lint admit them. Fix: judge the provider's answers apart, or use an ALLOW or DENY policy where the rule "
        "needs no external authorizer"
    )
    assert rbac_filters(custom, INGRESS) == []  # no filter of its own: the twin does not call the provider
    assert build_config([("p.yaml#0", _policy({"action": "AUDIT", "rules": [{}]}))]).warnings == []  # modelled
    assert build_config([("p.yaml#0", _policy({"action": "DENY", "rules": [{}]}))]).warnings == []  # modelled
    with pytest.raises(IstioConfigError, match=r"AuthorizationPolicy istio-ingress/p: spec.action: Input should be"):
        build_config([("p.yaml#0", _policy({"action": "REJECT"}))])  # not an Istio action at all


def test_verify_asks_for_another_exports_host_the_importer_does_not_import() -> None:
    bridge = bridge_from(two_exports_three_meshes())
    assert forbidden_host(bridge, bridge.export("lambda"), "aks") == "orders.external"  # aks imports lambda only
    assert forbidden_host(bridge, bridge.export("lambda"), "gke") == "not-exported.lambda.external"  # gke: both


# -- the simulator judges the RBAC filter as Envoy does (403 before any route) --------------------------------


def _exporter(tmp: Path, d: dict[str, Any]) -> ProxyConfig:
    bridge = bridge_from(d)
    return proxy_config(rendered_config("eks", bridge, secrets=True), "eks/istio-ingressgateway", tmp, bridge)


def _at_gateway(host: str, principal: str | None, sni: str = "lambda.external") -> Request:
    return Request(8443, host, tls=True, sni=sni, client_cert=True, principal=principal)


def test_the_simulator_refuses_an_importer_another_exports_host(tmp_path: Path) -> None:
    pc = _exporter(tmp_path, two_exports_three_meshes())
    refused = simulate(pc, _at_gateway("orders.external", f"spiffe://{AKS}"))
    assert (refused.error, refused.status, refused.response_flag) == ("RBACDenied", 403, None)
    assert refused.detail == (
        f"403 RBAC: access denied (no ALLOW policy matches GET / on Host 'orders.external' from spiffe://{AKS})"
    )
    assert simulate(pc, _at_gateway("lambda.external", f"spiffe://{AKS}")).ok  # its own export
    assert simulate(pc, _at_gateway("lambda.external:443", f"spiffe://{AKS}")).ok  # with a port
    gke = simulate(pc, _at_gateway("orders.external", f"spiffe://{GKE}"))  # admitted: the lambda chain's 404
    assert (gke.error, gke.status) == ("NoRoute", 404)
    assert simulate(pc, _at_gateway("lambda.external", None)).error == "RBACDenied"  # no identity
    assert simulate(pc, _at_gateway("orders.external", f"spiffe://{AKS}"), rbac=False).error == "NoRoute"


def test_without_the_policy_the_simulator_refuses_nothing(tmp_path: Path) -> None:
    d = two_exports_three_meshes()
    d["spec"]["meshes"]["eks"]["ingressGateway"]["authorizeImporters"] = False
    pc = _exporter(tmp_path, d)
    assert simulate(pc, _at_gateway("orders.external", f"spiffe://{AKS}")).error == "NoRoute"


def test_every_listed_importer_passes_the_exporters_policy_on_its_path(tmp_path: Path) -> None:
    hops = trace_exports(seed_bridge(), seed_path(tmp_path))
    assert hops[2].request.principal == f"spiffe://{GKE}" and hops[2].ok


def test_a_policy_that_leaves_out_a_listed_importer_stops_its_path(tmp_path: Path) -> None:
    def drop_gke(docs: Docs) -> None:
        rule = doc_named(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
        rule["from"][0]["source"]["principals"] = ["other.example/ns/x/sa/y"]

    (stop,) = path_findings(seed_bridge(), seed_path(tmp_path, drop_gke))
    assert (stop.proxy, stop.result.error, stop.result.status) == ("eks/istio-ingressgateway", "RBACDenied", 403)


def test_lint_names_the_policy_that_refuses_a_listed_importer_and_the_rule_that_admits_it() -> None:
    docs = seed_docs(seed_bridge())
    source = doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]["from"][0]
    source["source"]["principals"] = ["gke.example.com/ns/istio-egress/sa/other"]
    (f,) = [f for f in lint_docs(docs).findings if f.code == "MB312"]
    assert [(o.mesh, o.kind, o.namespace, o.name, o.field) for o in f.objects] == [
        ("eks", "AuthorizationPolicy", "istio-ingress", "istio-ingressgateway-importers", "spec.rules")
    ]
    assert f.message == (
        f"eks/istio-ingressgateway refuses {GKE} (mesh gke, an importer of export lambda) asking for Host "
        f"lambda.external: 403 RBAC: access denied (no ALLOW policy matches GET / on Host 'lambda.external' from "
        f"spiffe://{GKE}); istio-ingress/istio-ingressgateway-importers spec.rules[0].from[0].source.principals "
        "excludes it"
    )
    assert f.fix == (
        f"admit it: a rule with from.source.principals [{GKE}] and to.operation.hosts [lambda.external, "
        "'lambda.external:*'] ('meshbridge render --mesh eks' prints it), and no DENY rule that matches it"
    )
    assert not [f for f in lint_docs(seed_docs(seed_bridge())).findings if f.code == "MB312"]  # as rendered
    assert not [f for f in lint_docs(docs, world=False).findings if f.code == "MB312"]  # no spec: no identity
