"""MB312/MB313: lint asks the exporter's gateway whether any request the importer could send is admitted (``GET /``
and each request its ALLOW rules name), not only ``GET /``: a policy that admits the importer on some paths or
methods is an info naming them, one that admits it on none stays an error."""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.authz import named_requests
from meshbridge.istio.parse import build_config
from meshbridge.lint import Finding
from tests.builders import seed_bridge
from tests.lint_builders import doc, lint_docs, seed_docs

GKE = "gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _lint(operation: dict[str, Any], principal: str = GKE, **more: Any) -> list[Finding]:
    """The seed linted with its exporter policy's rule admitting ``principal`` on ``operation`` (beside its hosts)."""
    docs = seed_docs(seed_bridge())
    rule = doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
    rule["from"][0]["source"]["principals"] = [principal]
    rule["to"][0]["operation"].update(operation)
    rule.update(more)
    return [f for f in lint_docs(docs).findings if f.code in ("MB312", "MB313")]


def test_a_policy_on_paths_and_methods_is_an_info_naming_what_it_admits() -> None:
    (f,) = _lint({"paths": ["/hello-world", "/api/*"], "methods": ["GET"]})
    assert (f.code, f.severity) == ("MB313", "info")
    assert f.message.startswith(
        f"eks/istio-ingressgateway admits {GKE} (mesh gke, an importer of export lambda) asking for Host "
        "lambda.external only on GET /hello-world, GET /api/; GET / is refused: 403 RBAC: access denied"
    )


def test_negative_twin_the_same_paths_for_another_principal_stay_an_error() -> None:
    (f,) = _lint({"paths": ["/hello-world", "/api/*"], "methods": ["GET"]}, "gke.example.com/ns/x/sa/y")
    assert (f.code, f.severity) == ("MB312", "error")
    assert "(nor GET /hello-world, GET /api/, which its rules name); " in f.message
    assert f.message.endswith("spec.rules[0].from[0].source.principals excludes it")
    assert "lint asks GET /" not in f.fix


def test_a_header_condition_is_sent_and_its_absence_refused() -> None:
    when = [{"key": "request.headers[x-partner]", "values": ["acme"]}]
    (f,) = _lint({"methods": ["POST"]}, when=when)
    assert f.code == "MB313" and "only on POST / with x-partner: acme; GET / without those headers is refused" in (
        f.message
    )
    (f,) = _lint({"methods": ["POST"]}, when=[{"key": "request.headers[x-partner]", "notValues": ["acme"]}])
    assert f.code == "MB313" and "only on POST /;" in f.message  # a header it must not carry: none sent


def test_a_policy_admitting_get_slash_says_nothing() -> None:
    assert _lint({"methods": ["GET", "POST"]}) == []
    assert _lint({"paths": ["/*"]}) == []  # istiod's prefix '/': every path


def _policy(*rules: dict[str, Any], action: str = "ALLOW", **annotations: str) -> dict[str, Any]:
    md = {"name": "p", "namespace": "gw", "annotations": annotations}
    return {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": md,
        "spec": {"action": action, "rules": list(rules)},
    }


def test_named_requests_are_examples_of_each_pattern_once() -> None:
    rule = {"to": [{"operation": {"paths": ["*", "/api/*", "*.json", "/v1/{*}/items/{**}"], "methods": ["*", "PUT"]}}]}
    cfg = build_config([("p.yaml", _policy(rule, {"to": [{"operation": {"methods": ["PUT"]}}]}))])
    assert named_requests(cfg.authorization_policies) == [
        (m, p, ()) for p in ("/", "/api/", "/x.json", "/v1/x/items/x") for m in ("GET", "PUT")
    ]  # the second rule's PUT / is the first's


def test_deny_and_dry_run_rules_name_no_request() -> None:
    rule = {"to": [{"operation": {"paths": ["/admin/*"]}}]}
    deny = _policy(rule, action="DENY")
    dry = _policy(rule, **{"istio.io/dry-run": "true"})
    assert named_requests(build_config([("p.yaml", deny)]).authorization_policies) == []
    assert named_requests(build_config([("p.yaml", dry)]).authorization_policies) == []
    assert named_requests(build_config([("p.yaml", _policy(rule))]).authorization_policies) == [("GET", "/admin/", ())]


def test_methods_no_client_sends_admit_nothing_and_say_why() -> None:
    """'get' is not 'GET': Envoy compares :method exactly, so a rule on lower-case methods admits no request a
    client sends: MB312, naming the methods and what clients send."""
    (f,) = _lint({"paths": ["/hello-world"], "methods": ["get"]})
    assert (f.code, f.severity) == ("MB312", "error")
    assert f.message.endswith(
        "; its rules name methods get, which no client sends: Envoy compares :method exactly and clients send GET"
    )


def test_negative_twin_the_same_rule_in_capitals_admits_its_path() -> None:
    (f,) = _lint({"paths": ["/hello-world"], "methods": ["GET"]})
    assert f.code == "MB313" and "only on GET /hello-world;" in f.message and "no client sends" not in f.message


def test_a_rule_excluding_paths_or_methods_admits_the_others() -> None:
    """notPaths ['/'] or notMethods ['GET'] refuse GET / but admit other requests: an info naming one, not an error."""
    (f,) = _lint({"notPaths": ["/"]})
    assert f.code == "MB313" and "only on GET /x;" in f.message
    (f,) = _lint({"paths": ["/api/*"], "notPaths": ["/api/"]})
    assert f.code == "MB313" and "only on GET /api/x;" in f.message
    (f,) = _lint({"notMethods": ["GET"]})
    assert f.code == "MB313" and "only on POST /;" in f.message


def test_negative_twin_a_rule_excluding_every_path_or_method_stays_an_error() -> None:
    (f,) = _lint({"notPaths": ["*"]})
    assert (f.code, f.severity) == ("MB312", "error")
    (f,) = _lint({"notMethods": ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]})
    assert (f.code, f.severity) == ("MB312", "error")


def _exporter_only(principal: str) -> list[Finding]:
    """The seed's exporter manifests alone (no Secrets), its policy's rule admitting ``principal``, in the seed's world:
    the importer is the spec's own rendering, as 'local up --manifests eks=...' runs it."""
    docs = seed_docs(seed_bridge(), secrets=False)
    rule = doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
    rule["from"][0]["source"]["principals"] = [principal]
    return list(lint_docs({"eks": docs["eks"]}).findings)


def test_the_exporter_alone_is_walked_to_its_rbac_from_the_spec_rendered_importer() -> None:
    (f,) = [f for f in _exporter_only("gke.example.com/ns/other/sa/someone") if f.code in ("MB312", "MB313")]
    assert (f.code, f.severity) == ("MB312", "error")
    assert f.message.startswith(
        f"eks/istio-ingressgateway refuses {GKE} (mesh gke, an importer of export lambda) asking for Host "
        "lambda.external: 403 RBAC: access denied"
    )
    assert [(o.mesh, o.kind, o.name) for o in f.objects] == [
        ("eks", "AuthorizationPolicy", "istio-ingressgateway-importers")
    ]


def test_negative_twin_the_exporter_alone_admitting_the_importer_says_nothing_of_either_side() -> None:
    found = _exporter_only(GKE)
    assert [f.code for f in found if f.code in ("MB312", "MB313")] == []
    assert {o.mesh for f in found for o in f.objects} == {"eks"}  # the rendered importer is read, not linted


def _importer_only(port: int) -> list[Finding]:
    """The seed's importer manifests alone (no Secrets), its DestinationRule's portLevelSettings on ``port``, in the
    seed's world: the exporter is the spec's own rendering, as 'local up --manifests gke=...' runs it."""
    docs = seed_docs(seed_bridge(), secrets=False)
    doc(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]["portLevelSettings"][0]["port"] = {
        "number": port
    }
    return list(lint_docs({"gke": docs["gke"]}).findings)


def test_the_importer_alone_is_walked_to_the_spec_rendered_exporter_gateway() -> None:
    (f,) = [f for f in _importer_only(8080) if f.code == "MB306"]  # the ServiceEntry's port is 80
    assert f.severity == "error"
    assert f.message.startswith(
        "gke/istio-egressgateway sends outbound|80||lambda.external in plain text, but eks/istio-ingressgateway "
        "expects TLS on 8443 with a client certificate (MUTUAL)"
    )
    assert [(o.mesh, o.kind, o.name) for o in f.objects] == [("gke", "DestinationRule", "dr-lambda-ext")]


def test_negative_twin_the_importer_alone_originating_mutual_tls_on_its_port_says_nothing_of_either_side() -> None:
    found = _importer_only(80)
    assert [f.code for f in found if f.code.startswith("MB3")] == []  # nor MB302: the exporter side was checked
    assert {o.mesh for f in found for o in f.objects} <= {"gke"}  # the rendered exporter is read, not linted
