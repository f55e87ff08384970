"""The shared model pieces lint added or reshaped: the chart-default world, the DNS opt-out label, why a
match is dropped, indexed visibility (same answers, rebuilt on change), the unsupported-field walk,
Envoy-like chain verification, and xDS file names."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from meshbridge.envoy.gateway import resolve_port
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.routes import RouteContext, match_mismatch
from meshbridge.envoy.translate import translate
from meshbridge.istio.config import MeshSettings
from meshbridge.istio.dns import OPT_OUT_LABEL, name_table
from meshbridge.istio.parse import build_config
from meshbridge.istio.resources import HTTPMatchRequest, VirtualService
from meshbridge.istio.visibility import (
    Proxy,
    destination_rule,
    find_service,
    service_finder,
    services,
    visible_services,
)
from meshbridge.pki import issue_ca, issue_leaf
from meshbridge.pki.checks import peer_verifies
from meshbridge.world import assumed_world
from tests.builders import seed_bridge
from tests.lint_builders import NOW, openssl_self_signed

API = "networking.istio.io/v1"


def res(
    kind: str, name: str, ns: str, spec: dict[str, Any], labels: dict[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return ("t", {"apiVersion": API if kind != "Service" else "v1", "kind": kind, "metadata": md, "spec": spec})


def gateway(
    name: str, ns: str, selector: dict[str, str], hosts: list[str], port: int = 80
) -> tuple[str, dict[str, Any]]:
    server = {"port": {"number": port, "name": "http", "protocol": "HTTP"}, "hosts": hosts}
    return res("Gateway", name, ns, {"selector": selector, "servers": [server]})


# -- world without a spec -------------------------------------------------------------------------------


def test_assumed_world_from_gateway_selectors() -> None:
    cfg = build_config(
        [
            gateway("a", "istio-egress", {"istio": "egressgateway"}, ["x.example"]),
            gateway("b", "istio-egress", {"istio": "egressgateway", "app": "istio-egressgateway"}, ["y.example"]),
            gateway("c", "edge", {"app": "edge-gw"}, ["z.example"]),
        ]
    )
    world = assumed_world("m", cfg)
    routers = [p.proxy for p in world.proxies if p.proxy.kind == "router"]
    assert [(p.namespace, p.name, dict(p.labels)) for p in routers] == [
        ("istio-egress", "istio-egressgateway", {"istio": "egressgateway", "app": "istio-egressgateway"}),
        ("edge", "edge-gw", {"app": "edge-gw"}),
    ]
    assert routers[0].service is not None
    assert [(p.port, p.target_port) for p in routers[0].service.spec.ports] == [(15021, 15021), (80, 8080), (443, 8443)]
    app = next(p for p in world.proxies if p.role == "app").proxy
    assert (app.kind, app.namespace, app.name) == ("sidecar", "default", "sleep")
    assert len(world.services) == 2 and any("a, " in a or "istio-egress/a" in a for a in world.assumptions)


def test_assumed_world_uses_a_service_from_the_manifests() -> None:
    svc = res(
        "Service",
        "gw",
        "gateways",
        {"selector": {"app": "gw"}, "ports": [{"name": "https", "port": 443, "targetPort": 443}]},
    )
    cfg = build_config([gateway("g", "apps", {"app": "gw"}, ["x.example"], 443), svc])
    world = assumed_world("m", cfg)
    (router,) = [p.proxy for p in world.proxies if p.proxy.kind == "router"]
    assert (router.namespace, router.name) == ("gateways", "gw")
    assert resolve_port(router, 443) == 443 and world.services == []


# -- DNS ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("label", "resolved"), [(None, True), ("false", False), ("true", True)])
def test_auto_allocation_opt_out_label(label: str | None, resolved: bool) -> None:
    se = res(
        "ServiceEntry",
        "se",
        "ns",
        {
            "hosts": ["lambda.external"],
            "ports": [{"name": "http", "number": 80, "protocol": "HTTP"}],
            "resolution": "DNS",
        },
        {OPT_OUT_LABEL: label} if label else None,
    )
    cfg = build_config([se])
    settings = MeshSettings(proxy_metadata={"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_DNS_AUTO_ALLOCATE": "true"})
    assert ("lambda.external" in name_table(settings, services(cfg))) is resolved


# -- why a match is dropped ------------------------------------------------------------------------------


def test_match_mismatch_names_field_and_values() -> None:
    vs = VirtualService.model_validate(
        {"apiVersion": API, "kind": "VirtualService", "metadata": {"name": "v", "namespace": "ns"}, "spec": {}}
    )
    gw = Proxy("router", "gw", "istio-ingress", {"app": "gw"})
    ctx = RouteContext(gw, "istio-ingress/eastwest", 443, lambda _: None, MeshSettings())
    assert match_mismatch(HTTPMatchRequest(), vs, ctx) is None
    assert match_mismatch(HTTPMatchRequest(port=8443), vs, ctx) == "port 8443 is not the port (443)"
    assert "do not include istio-ingress/eastwest" in str(match_mismatch(HTTPMatchRequest(gateways=["mesh"]), vs, ctx))
    labels = match_mismatch(HTTPMatchRequest.model_validate({"sourceLabels": {"app": "gw", "v": "1"}}), vs, ctx)
    assert labels == "sourceLabels {'v': '1'} are not labels of istio-ingress/gw"
    ns = match_mismatch(HTTPMatchRequest.model_validate({"sourceNamespace": "x"}), vs, ctx)
    assert ns == "sourceNamespace x is not the proxy's namespace (istio-ingress)"


# -- indexed visibility ------------------------------------------------------------------------------------


def test_destination_rule_index_is_rebuilt_when_rules_are_added() -> None:
    se = res(
        "ServiceEntry",
        "se",
        "a",
        {"hosts": ["h.example"], "ports": [{"name": "http", "number": 80}], "resolution": "DNS"},
    )
    cfg = build_config([se])
    proxy = Proxy("router", "gw", "a", {})
    svc = services(cfg)[0]
    assert destination_rule(cfg, proxy, svc) is None
    cfg.destination_rules += build_config(
        [res("DestinationRule", "wild", "a", {"host": "*.example"})]
    ).destination_rules
    assert destination_rule(cfg, proxy, svc).first.metadata.name == "wild"  # type: ignore[union-attr]
    cfg.destination_rules += build_config(
        [res("DestinationRule", "exact", "a", {"host": "h.example"})]
    ).destination_rules
    assert destination_rule(cfg, proxy, svc).first.metadata.name == "exact"  # type: ignore[union-attr]
    other = Proxy("router", "gw", "b", {})  # the rules are in namespace a, the service too: a is the service's ns
    assert destination_rule(cfg, other, svc).first.metadata.name == "exact"  # type: ignore[union-attr]


def test_a_destination_rules_workload_selector_picks_gateways_of_its_namespace() -> None:
    se = res(
        "ServiceEntry",
        "se",
        "egress",
        {"hosts": ["h.example"], "ports": [{"name": "http", "number": 80}], "resolution": "DNS"},
    )
    selected = {"host": "h.example", "workloadSelector": {"matchLabels": {"istio": "egressgateway"}}}
    cfg = build_config(
        [
            se,
            res("DestinationRule", "all", "egress", {"host": "h.example"}),
            res("DestinationRule", "gw", "egress", selected),
        ]
    )
    svc = services(cfg)[0]
    gateway_pod = Proxy("router", "istio-egressgateway", "egress", {"istio": "egressgateway"})
    applied = destination_rule(cfg, gateway_pod, svc)
    assert applied is not None and [r.metadata.name for r in applied.rules] == ["gw"]  # the selected rule, alone
    # the twins: another gateway's labels, or the same labels in another namespace, get the rule without a selector
    ingress = Proxy("router", "istio-ingressgateway", "egress", {"istio": "ingressgateway"})
    assert [r.metadata.name for r in destination_rule(cfg, ingress, svc).rules] == ["all"]  # type: ignore[union-attr]
    elsewhere = Proxy("router", "istio-egressgateway", "other", {"istio": "egressgateway"})
    assert [r.metadata.name for r in destination_rule(cfg, elsewhere, svc).rules] == ["all"]  # type: ignore[union-attr]


def test_a_namespace_whose_rules_select_other_proxies_gives_no_rule() -> None:
    se = res(
        "ServiceEntry",
        "se",
        "shared",
        {"hosts": ["h.example"], "ports": [{"name": "http", "number": 80}], "resolution": "DNS"},
    )
    picky = {"host": "h.example", "workloadSelector": {"matchLabels": {"app": "other"}}}
    cfg = build_config(
        [
            se,
            res("DestinationRule", "picky", "egress", picky),
            res("DestinationRule", "shared", "shared", {"host": "h.example"}),
        ]
    )
    svc = services(cfg)[0]
    # istiod stops at the proxy's namespace, which has a rule for the host: it selects another app, so none applies
    assert destination_rule(cfg, Proxy("router", "gw", "egress", {"istio": "egressgateway"}), svc) is None
    # the twin: a proxy of a namespace without rules for the host reaches the service's namespace's rule
    found = destination_rule(cfg, Proxy("router", "gw", "ingress", {"istio": "egressgateway"}), svc)
    assert found is not None and found.first.metadata.name == "shared"


def test_service_finder_answers_like_find_service() -> None:
    hosts = ["*.example", "*.b.example", "a.b.example", "A.example", "x.y"]
    docs = [
        res(
            "ServiceEntry",
            f"se{i}",
            "ns",
            {"hosts": [h], "ports": [{"name": "http", "number": 80}], "resolution": "NONE"},
        )
        for i, h in enumerate(hosts)
    ]
    cfg = build_config(docs)
    visible = visible_services(cfg, Proxy("router", "gw", "ns", {}), services(cfg))
    find = service_finder(visible)
    for host in ["a.b.example", "c.b.example", "q.example", "a.example", "x.y", "nothing.here", "B.example"]:
        assert find(host) is find_service(visible, host), host


def test_gateway_vhosts_with_wildcards_on_either_side(tmp_path: Path) -> None:
    docs = [
        gateway("g", "gw", {"app": "gw"}, ["*.example", "exact.other", "team/t.other"]),
        res(
            "VirtualService",
            "v1",
            "gw",
            {"hosts": ["a.example"], "gateways": ["g"], "http": [{"directResponse": {"status": 200}}]},
        ),
        res(
            "VirtualService",
            "v2",
            "gw",
            {"hosts": ["*.other"], "gateways": ["g"], "http": [{"directResponse": {"status": 201}}]},
        ),
        res(
            "VirtualService",
            "v3",
            "team",
            {"hosts": ["t.other"], "gateways": ["gw/g"], "http": [{"directResponse": {"status": 202}}]},
        ),
    ]
    cfg = build_config(docs)
    pc = translate(cfg, Proxy("router", "gw", "gw", {"app": "gw"}), Placement("127.0.0.1", tmp_path))
    (rc,) = pc.route_configs
    domains = {vh["domains"][0]: [r["direct_response"]["status"] for r in vh["routes"]] for vh in rc["virtual_hosts"]}
    # the VirtualService's host when the server's matches it, else the server's host when the VirtualService's matches
    assert domains == {"a.example": [200], "exact.other": [201], "t.other": [202]}


def test_a_virtual_service_without_http_routes_for_the_port_gets_no_gateway_vhost(tmp_path: Path) -> None:
    tls_only = {
        "hosts": ["pass.example"],
        "gateways": ["g"],
        "tls": [{"match": [{"sniHosts": ["pass.example"]}], "route": [{"destination": {"host": "b.example"}}]}],
    }
    other_port = {
        "hosts": ["other.example"],
        "gateways": ["g"],
        "http": [{"match": [{"port": 8080}], "directResponse": {"status": 200}}],
    }
    web = {"hosts": ["web.example"], "gateways": ["g"], "http": [{"directResponse": {"status": 200}}]}
    docs = [
        gateway("g", "gw", {"app": "gw"}, ["*"]),
        res("VirtualService", "tls-only", "gw", tls_only),
        res("VirtualService", "other-port", "gw", other_port),
        res("VirtualService", "web", "gw", web),
    ]
    pc = translate(build_config(docs), Proxy("router", "gw", "gw", {"app": "gw"}), Placement("127.0.0.1", tmp_path))
    (rc,) = pc.route_configs
    # the twin: the VirtualService with an HTTP route for port 80 has its virtual host
    assert [vh["domains"] for vh in rc["virtual_hosts"]] == [["web.example"]]


# -- the unsupported-field walk ----------------------------------------------------------------------------


def test_unsupported_fields_are_found_at_any_depth() -> None:
    vs = res(
        "VirtualService",
        "a",
        "n",
        {
            "hosts": ["a"],
            "http": [
                {
                    "match": [{"uri": {"prefix": "/", "bad": 1}, "headers": {"h": {"exact": "v", "zz": 2}}}],
                    "route": [{"destination": {"host": "b", "port": {"number": 1, "q": 1}}}],
                    "mirror": {"host": "m"},
                }
            ],
            "tcp": [{"route": [{"destination": {"host": "b"}}], "bogus": 1}],
        },
    )
    dr = res(
        "DestinationRule",
        "d",
        "n",
        {
            "host": "h",
            "trafficPolicy": {
                "connectionPool": {"tcp": {"maxConnections": 1, "nope": 1}},
                "portLevelSettings": [{"port": {"number": 1}, "tls": {"x": 1}}],
            },
            "subsets": [{"name": "s", "trafficPolicy": {"tls": {"y": 2}}}],
        },
    )
    assert sorted(w.field for w in build_config([vs, dr]).warnings) == sorted(
        [
            "spec.tcp",  # a sidecar's TCP route: not translated, said so
            "spec.tcp[0].bogus",
            "spec.http[0].match[0].uri.bad",
            "spec.http[0].match[0].headers.h.zz",
            "spec.http[0].route[0].destination.port.q",
            "spec.trafficPolicy.connectionPool.tcp.nope",
            "spec.trafficPolicy.portLevelSettings[0].tls.x",
            "spec.subsets[0].trafficPolicy.tls.y",
        ]
    )


# -- chains as Envoy verifies them -------------------------------------------------------------------------


def certs(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def test_peer_verifies_like_envoy() -> None:
    root = issue_ca("root", now=NOW - dt.timedelta(days=1))
    leaf = issue_leaf(root, "client", common_name="c", uris=["spiffe://a/b"], now=NOW)
    assert peer_verifies(certs(leaf.cert_pem), certs(root.cert_pem), NOW) is None
    other = issue_ca("other", now=NOW - dt.timedelta(days=1))
    why = peer_verifies(certs(leaf.cert_pem), certs(other.cert_pem), NOW)
    assert why is not None and "unable to get local issuer certificate" in why
    # a self-signed leaf trusted as itself (the article's recipe) is accepted
    self_signed, _ = openssl_self_signed("Wakanda")
    assert peer_verifies(certs(self_signed), certs(self_signed), NOW) is None
    # a leaf cannot issue: a chain through a CA:FALSE "issuer" fails
    child = issue_leaf(root, "server", common_name="s", dns_names=["s.example"], now=NOW)
    assert peer_verifies(certs(leaf.cert_pem), certs(child.cert_pem), NOW) is not None
    # an expired CA fails the chain
    late = NOW + dt.timedelta(days=400)
    assert f"is not valid at {late:%Y-%m-%d %H:%M:%S} UTC" in str(
        peer_verifies(certs(leaf.cert_pem), certs(root.cert_pem), late)
    )


def test_peer_verifies_takes_partial_chains_as_envoy_does() -> None:
    root = issue_ca("root", now=NOW - dt.timedelta(days=1))
    # an intermediate (signed by the root) as the only trusted certificate: Envoy sets X509_V_FLAG_PARTIAL_CHAIN
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "intermediate")])
    inter = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(root.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root.private_key(), hashes.SHA256())
    )
    from cryptography.hazmat.primitives import serialization

    inter_pem = inter.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    from meshbridge.pki import CertBundle

    leaf = issue_leaf(CertBundle(inter_pem, key_pem), "client", common_name="c", uris=["spiffe://a/b"], now=NOW)
    assert peer_verifies(certs(leaf.cert_pem), certs(inter_pem), NOW) is None  # Envoy takes partial chains
    assert peer_verifies(certs(leaf.cert_pem), certs(root.cert_pem), NOW) is not None  # the intermediate unsent
    assert peer_verifies(certs(leaf.cert_pem + inter_pem), certs(root.cert_pem), NOW) is None


# -- small pieces ------------------------------------------------------------------------------------------


def test_xds_file_names_are_unchanged(tmp_path: Path) -> None:
    p = Placement("127.0.0.1", tmp_path / "xds/")
    assert (
        p.file("sds", "kubernetes://mtls-credential") == tmp_path / "xds" / "sds" / "kubernetes___mtls-credential.yaml"
    )
    assert p.file("lds", "") == tmp_path / "xds" / "lds.yaml"
    source = p.config_source("sds", "kubernetes://x")["path_config_source"]
    assert source == {
        "path": str(tmp_path / "xds/sds/kubernetes___x.yaml"),
        "watched_directory": {"path": str(tmp_path / "xds/sds")},
    }


def test_bridge_export_by_name() -> None:
    bridge = seed_bridge()
    assert bridge.export("lambda").host == "lambda.external"
    with pytest.raises(KeyError):
        bridge.export("nope")
