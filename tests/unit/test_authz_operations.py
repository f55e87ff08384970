"""AuthorizationPolicy rules on paths, methods, ports, source namespaces and ``when`` conditions: the RBAC filter
the twin translates them into (istiod's matchers, in istiod's order; the oracle tier compares them whole in
tests/oracle/cases/ingress-authorization-paths-methods-ports.yaml) and how the simulator judges a request with
it, as Envoy does (the path without its query, after the connection manager's normalisation)."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.envoy.authz import quote_meta, rbac_filters
from meshbridge.envoy.simulate import Request, rbac_denial
from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy

EGRESS = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
REPORTER = "spiffe://gke.example.com/ns/apps/sa/reporter"
GATEWAY = Proxy("router", "lambda-gateway", "istio-ingress", {"app": "lambda-gateway", "istio": "ingressgateway"})


def _policy(name: str, spec: dict[str, Any], ns: str = "istio-ingress") -> dict[str, Any]:
    """A policy as users write it: its own namespace, a selector on the gateway's pods."""
    spec = {"selector": {"matchLabels": {"app": "lambda-gateway"}}, **spec}
    md = {"name": name, "namespace": ns}
    return {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": md, "spec": spec}


def _cfg(*docs: dict[str, Any]) -> ConfigSet:
    return build_config([(f"p.yaml#{i}", d) for i, d in enumerate(docs)])


def _hcm(*docs: dict[str, Any], normalize_path: bool = True, merge_slashes: bool = False) -> dict[str, Any]:
    """The gateway's connection manager with the RBAC filters of ``docs`` (the twin's path settings by default)."""
    filters = rbac_filters(_cfg(*docs), GATEWAY)
    return {"http_filters": filters, "normalize_path": normalize_path, "merge_slashes": merge_slashes}


def _call(path: str, method: str = "GET", principal: str | None = EGRESS, port: int = 8443, **kw: Any) -> Request:
    return Request(
        port, "lambda.external", path, tls=True, sni="lambda.external", method=method, principal=principal, **kw
    )


API = _policy(
    "importers",
    {
        "rules": [
            {
                "from": [{"source": {"namespaces": ["istio-egress"]}}],
                "to": [{"operation": {"paths": ["/api/*", "/health"], "methods": ["GET", "POST"], "ports": ["8443"]}}],
            },
            {
                "from": [{"source": {"principals": [REPORTER.removeprefix("spiffe://")]}}],
                "to": [{"operation": {"notPaths": ["/api/*"], "methods": ["GET"]}}],
            },
        ]
    },
)


# -- translation ---------------------------------------------------------------------------------------------


def test_operation_fields_are_istiods_matchers_in_istiods_order() -> None:
    cfg = _cfg(API)
    assert cfg.warnings == []  # every field of it is modelled now
    (f,) = rbac_filters(cfg, GATEWAY)
    first = f["typed_config"]["rules"]["policies"]["ns[istio-ingress]-policy[importers]-rule[0]"]
    (permission,) = first["permissions"]
    assert permission == {
        "and_rules": {
            "rules": [
                {
                    "or_rules": {
                        "rules": [
                            {"header": {"name": ":method", "string_match": {"exact": "GET"}}},
                            {"header": {"name": ":method", "string_match": {"exact": "POST"}}},
                        ]
                    }
                },
                {
                    "or_rules": {
                        "rules": [
                            {"url_path": {"path": {"prefix": "/api/"}}},
                            {"url_path": {"path": {"exact": "/health"}}},
                        ]
                    }
                },
                {"or_rules": {"rules": [{"destination_port": 8443}]}},
            ]
        }
    }
    assert first["principals"] == [
        {
            "and_ids": {
                "ids": [
                    {
                        "or_ids": {
                            "ids": [
                                {
                                    "authenticated": {
                                        "principal_name": {"safe_regex": {"regex": ".*/ns/istio-egress/.*"}}
                                    }
                                }
                            ]
                        }
                    }
                ]
            }
        }
    ]
    second = f["typed_config"]["rules"]["policies"]["ns[istio-ingress]-policy[importers]-rule[1]"]
    assert second["permissions"][0]["and_rules"]["rules"][1] == {
        "not_rule": {"or_rules": {"rules": [{"url_path": {"path": {"prefix": "/api/"}}}]}}
    }


def test_a_policy_of_another_namespace_does_not_reach_the_gateway() -> None:
    assert rbac_filters(_cfg(_policy("importers", API["spec"], ns="apps")), GATEWAY) == []
    assert len(rbac_filters(_cfg(API), GATEWAY)) == 1


@pytest.mark.parametrize(
    "value,path,method",
    [
        ("*", {"safe_regex": {"regex": ".+"}}, {"present_match": True}),
        ("*.json", {"suffix": ".json"}, {"string_match": {"suffix": ".json"}}),
        ("/v1/*", {"prefix": "/v1/"}, {"string_match": {"prefix": "/v1/"}}),
        ("/v1", {"exact": "/v1"}, {"string_match": {"exact": "/v1"}}),
    ],
)
def test_a_star_at_one_end_is_a_prefix_or_suffix_as_istiod_writes_it(
    value: str, path: dict[str, Any], method: dict[str, Any]
) -> None:
    doc = _policy("p", {"rules": [{"to": [{"operation": {"paths": [value], "methods": [value]}}]}]})
    (f,) = rbac_filters(_cfg(doc), GATEWAY)
    (rules,) = [p["permissions"][0]["and_rules"]["rules"] for p in f["typed_config"]["rules"]["policies"].values()]
    assert rules == [
        {"or_rules": {"rules": [{"header": {"name": ":method", **method}}]}},
        {"or_rules": {"rules": [{"url_path": {"path": path}}]}},
    ]


def test_namespaces_and_principals_quote_what_is_literal() -> None:
    src = {"namespaces": ["team.a*"], "notPrincipals": ["*/sa/robot.x"]}
    (f,) = rbac_filters(_cfg(_policy("p", {"action": "DENY", "rules": [{"from": [{"source": src}]}]})), GATEWAY)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    assert policy["principals"][0]["and_ids"]["ids"] == [
        {
            "not_id": {
                "or_ids": {
                    "ids": [
                        {"authenticated": {"principal_name": {"safe_regex": {"regex": r"spiffe://.*/sa/robot\.x"}}}}
                    ]
                }
            }
        },
        {"or_ids": {"ids": [{"authenticated": {"principal_name": {"safe_regex": {"regex": r".*/ns/team\.a.*/.*"}}}}]}},
    ]  # principals first, then namespaces, as istiod's model inserts them
    assert quote_meta(r"a.b+c*d?e(f)g|h[i]j{k}l^m$n\o") == r"a\.b\+c\*d\?e\(f\)g\|h\[i\]j\{k\}l\^m\$n\\o"
    assert quote_meta("plain-name_1/x") == "plain-name_1/x"  # Go leaves these alone (Python's re.escape would not)


def test_when_conditions_join_every_from_and_to_and_unmodelled_keys_fail_closed() -> None:
    when = [
        {"key": "request.headers[x-partner]", "values": ["acme"]},
        {"key": "destination.port", "notValues": ["8080"]},
        {"key": "connection.sni", "values": ["*.external"]},
        {"key": "request.auth.claims[group]", "values": ["admins"]},
    ]
    rule = {"from": [{"source": {"namespaces": ["partners"]}}], "when": when}
    allow = _cfg(_policy("p", {"rules": [rule]}))
    assert [w.field for w in allow.warnings] == ["spec.rules[0].when[3]"]
    (f,) = rbac_filters(allow, GATEWAY)
    assert f["typed_config"]["rules"] == {}  # an ALLOW rule on a claim the twin cannot judge admits nothing
    cfg = _cfg(_policy("p", {"action": "DENY", "rules": [rule]}))
    (f,) = rbac_filters(cfg, GATEWAY)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    assert policy["permissions"] == [
        {
            "and_rules": {
                "rules": [
                    {"not_rule": {"or_rules": {"rules": [{"destination_port": 8080}]}}},
                    {"or_rules": {"rules": [{"requested_server_name": {"suffix": ".external"}}]}},
                ]
            }
        }
    ]
    ids = policy["principals"][0]["and_ids"]["ids"]
    assert ids[1] == {"or_ids": {"ids": [{"header": {"name": "x-partner", "string_match": {"exact": "acme"}}}]}}
    assert len(ids) == 2  # the claim is not there: a DENY rule refuses as if it held (reported)


def test_a_policy_without_rules_never_matches_as_istiods() -> None:
    (f,) = rbac_filters(_cfg(_policy("nothing", {})), GATEWAY)
    assert f["typed_config"]["rules"]["policies"] == {
        "ns[istio-ingress]-policy[nothing]-rule[0]": {
            "permissions": [{"not_rule": {"any": True}}],
            "principals": [{"not_id": {"any": True}}],
        }
    }
    assert rbac_denial(_hcm(_policy("nothing", {})), _call("/api/x")) is not None  # ALLOW nothing: all refused
    assert rbac_denial(_hcm(_policy("nothing", {"action": "DENY"})), _call("/api/x")) is None  # DENY nothing


def test_a_port_that_is_not_a_number_is_an_error_naming_the_field_and_the_fix() -> None:
    bad = _policy("p", {"rules": [{"to": [{"operation": {"ports": ["https"]}}]}]})
    with pytest.raises(IstioConfigError) as e:
        _cfg(bad)
    assert str(e.value) == (
        "p.yaml#0: AuthorizationPolicy istio-ingress/p: spec.rules[0].to[0].operation.ports: 'https' is not a port "
        'number. Fix: write the proxy\'s own port as digits in quotes, e.g. "8443"'
    )
    with pytest.raises(IstioConfigError, match=r"spec.rules\[0\].when\[0\]: '70000'"):
        _cfg(_policy("p", {"rules": [{"when": [{"key": "destination.port", "values": ["70000"]}]}]}))
    assert _cfg(_policy("p", {"rules": [{"to": [{"operation": {"notPorts": ["8080"]}}]}]})).warnings == []


def test_a_path_template_is_istiods_uri_template_in_envoys_syntax() -> None:
    doc = _policy("p", {"rules": [{"to": [{"operation": {"paths": ["/orders/{*}/items/{**}"]}}]}]})
    cfg = _cfg(doc)
    assert cfg.warnings == []  # modelled
    (f,) = rbac_filters(cfg, GATEWAY)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    (template,) = policy["permissions"][0]["and_rules"]["rules"][0]["or_rules"]["rules"]
    assert template == {
        "uri_template": {
            "name": "uri-template",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
                "path_template": "/orders/*/items/**",  # istiod's sanitizePathTemplate
            },
        }
    }


@pytest.mark.parametrize(
    "path,admitted",
    [
        ("/orders/42/items/", True),
        ("/orders/42/items/7/notes?x=/y", True),
        ("/orders/a.b~c/items/x", True),
        ("/orders//items/x", False),  # {*} is one segment of one character or more
        ("/orders/4/2/items/x", False),  # and one segment only
        ("/orders/42/item", False),
        ("/other/42/items/x", False),
    ],
)
def test_the_simulator_matches_a_path_template_as_envoy(path: str, admitted: bool) -> None:
    doc = _policy("p", {"rules": [{"to": [{"operation": {"paths": ["/orders/{*}/items/{**}"]}}]}]})
    assert (rbac_denial(_hcm(doc), _call(path)) is None) is admitted


# -- the simulator --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_,admitted",
    [
        (_call("/api/orders"), True),
        (_call("/api/orders", "POST"), True),
        (_call("/health"), True),
        (_call("/api/orders?next=/x"), True),  # the query is not the path
        (_call("/api/orders", "DELETE"), False),
        (_call("/api/orders", "get"), False),  # methods are case-sensitive
        (_call("/admin"), False),
        (_call("/healthz"), False),  # an exact path is exact
        (_call("/other?/api/x"), False),
        (_call("/api/orders", port=8080), False),  # another port of the gateway
        (_call("/api/orders", principal=None), False),  # no certificate: no namespace
        (_call("/api/orders", principal="spiffe://gke.example.com/ns/istio-egress-canary/sa/egress"), False),
        (_call("/reports/daily", principal=REPORTER), True),  # notPaths: anything but /api/
        (_call("/api/orders", principal=REPORTER), False),
        (_call("/reports/daily", "POST", principal=REPORTER), False),
    ],
)
def test_the_simulator_judges_paths_methods_ports_and_namespaces(request_: Request, admitted: bool) -> None:
    denied = rbac_denial(_hcm(API), request_)
    assert (denied is None) is admitted, denied


def test_several_policies_and_rules_deny_before_allow() -> None:
    guard = _policy(
        "guard",
        {
            "action": "DENY",
            "rules": [
                {"to": [{"operation": {"paths": ["/api/admin/*"]}}]},
                {"to": [{"operation": {"ports": ["8443", "9443"], "methods": ["DELETE"]}}]},
            ],
        },
    )
    hcm = _hcm(guard, API)
    assert rbac_denial(hcm, _call("/api/orders")) is None
    assert rbac_denial(hcm, _call("/api/admin/users")) == "DENY policy ns[istio-ingress]-policy[guard]-rule[0] matches"
    assert rbac_denial(_hcm(API), _call("/api/admin/users")) is None  # the ALLOW alone admits it
    open_ = _policy("open", {"rules": [{}]})
    assert rbac_denial(_hcm(guard, open_), _call("/x", "DELETE", port=9443)) is not None
    assert rbac_denial(_hcm(guard, open_), _call("/x", "DELETE", port=8080)) is None  # not a port it names


@pytest.mark.parametrize(
    "path", ["/api/../admin", "/api/%2e%2e/admin", "/api/%2E%2E/admin", "/api/.%2e/admin", "/api/..\\admin"]
)
def test_dot_segments_cannot_step_out_of_an_allowed_prefix(path: str) -> None:
    assert rbac_denial(_hcm(API), _call(path)) is not None  # Envoy normalises to /admin first
    assert rbac_denial(_hcm(API, normalize_path=False), _call(path)) is None  # without it, the prefix holds


def test_a_normalised_path_stays_admitted_and_merge_slashes_is_the_hcms_choice() -> None:
    assert rbac_denial(_hcm(API), _call("/api/./orders/%41")) is None
    assert rbac_denial(_hcm(API), _call("//api/orders")) is not None  # kept as it is without merge_slashes
    assert rbac_denial(_hcm(API, merge_slashes=True), _call("//api/orders")) is None


def test_when_on_a_header_and_the_sni() -> None:
    rule = {
        "when": [
            {"key": "request.headers[x-partner]", "values": ["acme"]},
            {"key": "connection.sni", "values": ["lambda.*"]},
        ]
    }
    hcm = _hcm(_policy("p", {"rules": [rule]}))
    assert rbac_denial(hcm, _call("/x", headers=(("X-Partner", "acme"),))) is None
    assert rbac_denial(hcm, _call("/x", headers=(("x-partner", "other"),))) is not None
    assert rbac_denial(hcm, _call("/x")) is not None  # no header
    other_sni = Request(
        8443, "lambda.external", "/x", tls=True, sni="orders.external", headers=(("x-partner", "acme"),)
    )
    assert rbac_denial(hcm, other_sni) is not None


def test_service_accounts_and_trust_domains_are_istiods_regexes_and_judged() -> None:
    src = {"serviceAccounts": ["reporter", "shop/check.out"], "notTrustDomains": ["old.*"]}
    doc = _policy("p", {"rules": [{"from": [{"source": src}]}]})
    (f,) = rbac_filters(_cfg(doc), GATEWAY)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    accounts, domains = policy["principals"][0]["and_ids"]["ids"]
    assert [i["authenticated"]["principal_name"]["safe_regex"]["regex"] for i in accounts["or_ids"]["ids"]] == [
        "spiffe://.+/ns/istio-ingress/(.+/|)sa/reporter(/.+)?",  # the policy's namespace
        r"spiffe://.+/ns/shop/(.+/|)sa/check\.out(/.+)?",
    ]
    assert domains == {
        "not_id": {
            "or_ids": {
                "ids": [{"authenticated": {"principal_name": {"safe_regex": {"regex": r"spiffe://old\.[^/]*/.*"}}}}]
            }
        }
    }
    hcm = _hcm(doc)
    assert rbac_denial(hcm, _call("/x", principal="spiffe://gke.example.com/ns/istio-ingress/sa/reporter")) is None
    assert rbac_denial(hcm, _call("/x", principal="spiffe://gke.example.com/ns/shop/sa/check.out")) is None
    assert rbac_denial(hcm, _call("/x", principal="spiffe://gke.example.com/ns/shop/sa/reporter")) is not None
    assert rbac_denial(hcm, _call("/x", principal="spiffe://gke.example.com/ns/shop/sa/checkXout")) is not None
    assert (
        rbac_denial(hcm, _call("/x", principal="spiffe://gke.example.com/ns/istio-ingress/sa/reporter-2")) is not None
    )
    assert rbac_denial(hcm, _call("/x", principal="spiffe://old.example/ns/istio-ingress/sa/reporter")) is not None
    assert rbac_denial(hcm, _call("/x", principal=None)) is not None


@pytest.mark.parametrize(
    "domain,match",
    [
        ("*", {"prefix": "spiffe://"}),
        ("gke.example.com", {"prefix": "spiffe://gke.example.com/"}),
        ("*.example.com", {"safe_regex": {"regex": r"spiffe://[^/]*\.example\.com/.*"}}),
    ],
)
def test_a_trust_domain_is_a_prefix_unless_it_has_a_star_inside(domain: str, match: dict[str, Any]) -> None:
    doc = _policy("p", {"rules": [{"when": [{"key": "source.trustDomain", "values": [domain]}]}]})
    cfg = _cfg(doc)
    assert cfg.warnings == []  # a modelled when key
    (f,) = rbac_filters(cfg, GATEWAY)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    (ids,) = policy["principals"][0]["and_ids"]["ids"]
    assert ids == {"or_ids": {"ids": [{"authenticated": {"principal_name": match}}]}}


def test_audit_is_a_log_filter_first_that_refuses_nothing() -> None:
    audit = _policy("audit-admin", {"action": "AUDIT", "rules": [{"to": [{"operation": {"paths": ["/api/*"]}}]}]})
    log, allow = rbac_filters(_cfg(audit, API), GATEWAY)
    assert log["typed_config"]["rules"]["action"] == "LOG" and "action" not in allow["typed_config"]["rules"]
    assert rbac_denial(_hcm(audit, API), _call("/api/orders")) is None  # matched by the LOG filter, admitted
    assert rbac_denial(_hcm(audit, API), _call("/other")) is not None  # the ALLOW filter still refuses


def test_a_dry_run_policy_is_shadow_rules_that_refuse_nothing() -> None:
    deny = _policy("no-api", {"action": "DENY", "rules": [{"to": [{"operation": {"paths": ["/api/*"]}}]}]})
    dry = {**deny, "metadata": {**deny["metadata"], "annotations": {"istio.io/dry-run": "true"}}}
    (f,) = rbac_filters(_cfg(dry), GATEWAY)
    config = f["typed_config"]
    assert "rules" not in config and config["shadow_rules"]["action"] == "DENY"
    assert config["shadow_rules_stat_prefix"] == "istio_dry_run_deny_"
    assert rbac_denial(_hcm(dry), _call("/api/orders")) is None  # evaluated, not enforced
    assert rbac_denial(_hcm(deny), _call("/api/orders")) is not None  # the same policy enforced
    both = rbac_filters(_cfg(dry, {**deny, "metadata": {**deny["metadata"], "name": "no-api-2"}}), GATEWAY)
    assert sorted(both[0]["typed_config"]) == ["@type", "rules", "shadow_rules", "shadow_rules_stat_prefix"]
    maybe = {**deny, "metadata": {**deny["metadata"], "annotations": {"istio.io/dry-run": "yes"}}}
    assert "rules" in rbac_filters(_cfg(maybe), GATEWAY)[0]["typed_config"]  # not a Go bool: enforced


def test_on_tcp_an_allow_rule_with_http_fields_is_left_out_and_a_deny_rule_loses_them() -> None:
    allow = _policy(
        "a", {"rules": [{"from": [{"source": {"namespaces": ["apps"]}}]}, {"to": [{"operation": {"paths": ["/m"]}}]}]}
    )
    deny = _policy(
        "d", {"action": "DENY", "rules": [{"to": [{"operation": {"methods": ["DELETE"], "ports": ["5432"]}}]}]}
    )
    cfg = _cfg(allow, deny)
    d, a = rbac_filters(cfg, GATEWAY, tcp=True)
    assert (d["name"], d["typed_config"]["stat_prefix"]) == ("envoy.filters.network.rbac", "tcp.")
    assert list(a["typed_config"]["rules"]["policies"]) == ["ns[istio-ingress]-policy[a]-rule[0]"]  # rule 1: gone
    (deny_rule,) = d["typed_config"]["rules"]["policies"].values()
    assert deny_rule["permissions"] == [
        {"and_rules": {"rules": [{"or_rules": {"rules": [{"destination_port": 5432}]}}]}}
    ]
    http_a, http_d = rbac_filters(cfg, GATEWAY)[::-1]  # negative twin: on HTTP both rules are whole
    assert len(http_a["typed_config"]["rules"]["policies"]) == 2
    assert (
        len(
            http_d["typed_config"]["rules"]["policies"]["ns[istio-ingress]-policy[d]-rule[0]"]["permissions"][0][
                "and_rules"
            ]["rules"]
        )
        == 2
    )


def test_on_tcp_an_allow_filter_whose_every_rule_is_left_out_has_no_policies() -> None:
    only_http = _policy("a", {"rules": [{"to": [{"operation": {"hosts": ["db.example"]}}]}]})
    (f,) = rbac_filters(_cfg(only_http), GATEWAY, tcp=True)
    assert f["typed_config"]["rules"] == {}  # Envoy's ALLOW with no policy: every connection refused, as istiod's


def test_target_refs_attach_a_policy_to_its_gateway_api_gateway_only() -> None:
    def attached(spec: dict[str, Any], proxy: Proxy) -> bool:
        return len(rbac_filters(_cfg(_policy("p", spec, ns="shop")), proxy)) == 1

    shop = Proxy("router", "shop-gw-istio", "shop", {"gateway.networking.k8s.io/gateway-name": "shop-gw"})
    legacy = Proxy("router", "legacy", "shop", {"app": "lambda-gateway"})  # an Istio Gateway's pod
    ref = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "shop-gw"}
    targeted = {"selector": None, "targetRefs": [ref], "rules": [{}]}
    assert attached(targeted, shop)
    assert not attached(targeted, legacy)  # istiod ignores a targetRefs policy for a non-Gateway-API pod
    assert not attached({**targeted, "targetRefs": [{**ref, "name": "other-gw"}]}, shop)
    assert not attached({**targeted, "targetRefs": [{**ref, "group": ""}]}, shop)  # the core group: no Gateway
    assert attached({"selector": None, "targetRef": ref, "rules": [{}]}, shop)  # the older single field
    assert attached({"selector": None, "rules": [{}]}, shop)  # a selector policy too, by default
    assert _cfg(_policy("p", targeted, ns="shop")).warnings == []  # modelled, not reported


def test_a_target_ref_to_a_service_entry_is_reported_as_a_waypoints() -> None:
    ref = {"group": "networking.istio.io", "kind": "ServiceEntry", "name": "lambda"}
    cfg = _cfg(_policy("imports", {"selector": None, "targetRefs": [ref], "rules": [{}]}, ns="istio-egress"))
    (w,) = cfg.warnings
    assert (w.field, w.name) == ("spec.targetRefs[0]", "imports")
    assert w.message.startswith("a targetRef to ServiceEntry lambda attaches the policy to a waypoint")
    egress = Proxy("router", "istio-egressgateway", "istio-egress", {"app": "istio-egressgateway"})
    assert rbac_filters(cfg, egress) == []  # attached to no proxy meshbridge translates
