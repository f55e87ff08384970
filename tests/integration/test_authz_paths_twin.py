"""Paths and methods in the exporter's AuthorizationPolicy on real Envoy: the seed's twin, whose eks manifests (as a
user edits them) admit gke's egress gateway to GET /hello-world and below (and /greet/{*}/hello-world) only, and
DENY /hello-world/admin/ to everyone. The app gets the Lambda's page on /hello-world, and 403 ``RBAC: access
denied`` from the exporter's gateway for another path, another method, the denied prefix, a dot segment that
leaves the allowed one (Envoy normalises the path before its RBAC filter) and a template segment too many; the
simulator answers each call the same on the twin's configuration. Negative twin: the rendered policy (hosts only)
lets every path through. Envoy also validates a bootstrap with every RBAC matcher the translation writes, and the
network RBAC filters of a TCP gateway."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.envoy.authz import RBAC_FILTER, RBAC_TCP_FILTER
from meshbridge.envoy.binary import validate
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.translate import translate
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.parse import build_config
from meshbridge.jsontree import mappings
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.render import render_bridge
from tests.integration.test_envoy_validate import placed
from tests.integration.twin_support import seed_folder
from tests.istio_builders import rendered_config
from tests.oracle.corpus import load_case

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"
DENIED = b"RBAC: access denied"
GKE = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"


def _twin(tmp: Path, restrict: bool) -> LocalTwin:
    file, bridge = seed_folder(tmp)
    twin = LocalTwin(bridge, file, tmp / ".meshbridge")
    docs = [dict(d) for d in render_bridge(bridge, None)["eks"]]
    if restrict:
        (policy,) = [d for d in docs if d["kind"] == "AuthorizationPolicy"]
        (rule,) = policy["spec"]["rules"]
        paths = ["/hello-world", "/hello-world/*", "/greet/{*}/hello-world"]
        rule["to"][0]["operation"].update({"paths": paths, "methods": ["GET"]})
        guard = {"action": "DENY", "selector": policy["spec"]["selector"]}
        guard["rules"] = [{"to": [{"operation": {"paths": ["/hello-world/admin/*"]}}]}]
        md = {"name": "no-admin", "namespace": policy["metadata"]["namespace"]}
        docs.append({"apiVersion": policy["apiVersion"], "kind": "AuthorizationPolicy", "metadata": md, "spec": guard})
    (tmp / "eks.yaml").write_text(yaml.safe_dump_all(docs))
    twin.up({"eks": [tmp / "eks.yaml"]})
    return twin


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    twin = _twin(tmp_path_factory.mktemp("authz-paths"), restrict=True)
    try:
        yield twin
    finally:
        twin.down()


CALLS = [
    ("GET", "/hello-world", 200),
    ("GET", "/hello-world/v2?page=/admin", 200),
    ("GET", "/other", 403),
    ("POST", "/hello-world", 403),
    ("GET", "/hello-world/admin/users", 403),
    ("GET", "/hello-world/%2e%2e/other", 403),
    ("GET", "/greet/ada/hello-world", 200),  # a path template: {*} one segment
    ("GET", "/greet/ada/lovelace/hello-world", 403),
]


@pytest.mark.parametrize("method,path,status", CALLS)
def test_the_exporter_admits_only_the_paths_and_methods_its_policy_names(
    restricted: LocalTwin, method: str, path: str, status: int
) -> None:
    r = curl(restricted.app_view(), f"http://lambda.external{path}", method=method)
    assert r.status == status, (r.status, r.body[:200])
    if status == 403:
        assert r.body == DENIED
    else:
        assert PAGE in r.body


@pytest.mark.parametrize("method,path,status", CALLS)
def test_the_simulator_says_the_same_on_the_twins_configuration(
    restricted: LocalTwin, method: str, path: str, status: int
) -> None:
    view = EnvoyView.from_config_dump(restricted.config_dump("eks/istio-ingressgateway"))  # what Envoy runs
    req = Request(8443, "lambda.external", path, True, "lambda.external", True, method=method, principal=GKE)
    result = simulate(view, req, secrets=False)
    assert (result.error, result.status) == (("RBACDenied", 403) if status == 403 else (None, None)), result.detail


def test_negative_twin_the_rendered_policy_admits_every_path(tmp_path: Path) -> None:
    twin = _twin(tmp_path, restrict=False)
    try:
        for method, path in (("GET", "/other"), ("POST", "/hello-world"), ("GET", "/hello-world/admin/users")):
            r = curl(twin.app_view(), f"http://lambda.external{path}", method=method)
            assert r.status == 200 and PAGE in r.body, (method, path, r.status)
    finally:
        twin.down()


def test_envoy_accepts_every_rbac_matcher_the_translation_writes(tmp_path: Path) -> None:
    """AUDIT's LOG filter, dry-run shadow rules, url_path, a uri_template, destination_port, requested_server_name,
    the :method and principal headers and the namespace, service account and trust domain regexes, in one
    bootstrap real Envoy validates."""
    rules = [
        {"to": [{"operation": {"paths": ["/a/*", "*.json", "/b/{*}/c/{**}"], "notMethods": ["DELETE"]}}]},
        {
            "to": [{"operation": {"ports": ["8443"], "notPaths": ["*"]}}],
            "when": [{"key": "connection.sni", "values": ["x*"]}],
        },
        {
            "from": [{"source": {"namespaces": ["a*"], "serviceAccounts": ["ns/sa"], "notTrustDomains": ["t.*"]}}],
            "when": [{"key": "request.headers[x-a]", "values": ["*"]}, {"key": "destination.port", "values": ["8443"]}],
        },
    ]
    docs = []
    for name, action, dry in (("audit", "AUDIT", "false"), ("deny", "DENY", "true"), ("allow", "ALLOW", "false")):
        md = {"name": name, "namespace": "istio-ingress", "annotations": {"istio.io/dry-run": dry}}
        spec = {"action": action, "rules": rules}
        docs.append(
            (
                "p.yaml",
                {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy", "metadata": md, "spec": spec},
            )
        )
    cfg = rendered_config("eks", secrets=True)
    cfg.authorization_policies += build_config(docs).authorization_policies
    bootstrap = placed(cfg, "eks/istio-ingressgateway", tmp_path).static_bootstrap(redact=False)
    hcms = [m for m in mappings(bootstrap) if "http_filters" in m]
    chains = [[f["typed_config"] for f in m["http_filters"] if f["name"] == RBAC_FILTER] for m in hcms]
    rbac = next(c for c in chains if c)  # the gateway server's connection manager
    assert [(c.get("rules", {}).get("action"), "shadow_rules" in c) for c in rbac] == [
        ("LOG", False),
        (None, True),  # the dry-run DENY: shadow rules only
        (None, False),  # ALLOW: meshbridge's own policy and the one here
    ]
    validate(bootstrap)


def test_envoy_accepts_the_network_rbac_of_a_tcp_gateway(tmp_path: Path) -> None:
    """The corpus case whose database gateway has TCP and passed-through TLS chains under AuthorizationPolicies:
    its network RBAC filters (istiod's, the oracle tier checks) in a bootstrap real Envoy validates."""
    case = load_case("gateway-tcp-authorization")
    (proxy,) = [p for p in case.proxies if p.kind == "router"]
    pc = translate(case.cfg, proxy, Placement(address="127.0.9.9", xds_dir=tmp_path / "xds"), [])
    bootstrap = pc.static_bootstrap(redact=False)
    tcp = [m for m in mappings(bootstrap) if any(f.get("name") == RBAC_TCP_FILTER for f in m.get("filters", []))]
    assert len(tcp) == 2  # the TCP chain and the passthrough one
    validate(bootstrap)


def test_verify_on_a_path_the_policy_refuses_names_the_policy_not_the_certificate(restricted: LocalTwin) -> None:
    """The handshake passes (the certificate is accepted); the 403 is the exporter's AuthorizationPolicy, and the
    condition says so and how to verify on a path it admits."""
    from meshbridge.verify.local import verify_local

    (found,) = [c for c in verify_local(restricted, "/other") if c.check == "ExporterAcceptsImporterCert"]
    assert (found.status, found.reason) == ("False", "RBACDenied"), found.message
    assert found.message.startswith("the handshake passed (the gateway accepts the importer's certificate)")
    assert "verify on a path it admits (--path)" in found.message


def test_negative_twin_verify_on_a_path_the_policy_admits_serves_the_page(restricted: LocalTwin) -> None:
    from meshbridge.verify.local import verify_local

    (found,) = [c for c in verify_local(restricted, "/hello-world") if c.check == "ExporterAcceptsImporterCert"]
    assert (found.status, found.reason) == ("True", "PageServed"), found.message
