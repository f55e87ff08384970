"""One reader of Envoy configuration: a translation, istiod's camelCase answer and a /config_dump read alike."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.names import credential_name, parse_sds_name, sds_ca_name, sds_name
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView
from meshbridge.istiod.oracle import IstiodConfig
from tests.istio_builders import seed_path

INGRESS = "eks/istio-ingressgateway"
ADMIN = "type.googleapis.com/envoy.admin.v3."


def _dump(pc: ProxyConfig, *, warming_secrets: tuple[str, ...] = ()) -> dict[str, Any]:
    """What a running Envoy's ``/config_dump`` says of ``pc`` (``warming_secrets`` still awaited)."""
    return {
        "configs": [
            {"@type": ADMIN + "BootstrapConfigDump", "bootstrap": {}},
            {
                "@type": ADMIN + "ListenersConfigDump",
                "dynamic_listeners": [{"name": x["name"], "active_state": {"listener": x}} for x in pc.listeners],
            },
            {
                "@type": ADMIN + "ClustersConfigDump",
                "dynamic_active_clusters": [{"cluster": c} for c in pc.clusters],
            },
            {
                "@type": ADMIN + "RoutesConfigDump",
                "dynamic_route_configs": [{"route_config": rc} for rc in pc.route_configs],
            },
            {
                "@type": ADMIN + "SecretsConfigDump",
                "dynamic_active_secrets": [
                    {"name": n, "secret": {"name": n, **s}}
                    for n, s in pc.secrets.items()
                    if s is not None and n not in warming_secrets
                ],
                "dynamic_warming_secrets": [{"name": n} for n in warming_secrets],
            },
            {
                "@type": ADMIN + "EndpointsConfigDump",
                "dynamic_endpoint_configs": [{"endpoint_config": cla} for cla in pc.endpoints],
            },
        ]
    }


def _camel(node: Any) -> Any:
    """``node`` as protobuf JSON spells it (camelCase keys), the way the oracle answers."""
    if isinstance(node, dict):
        return {
            k if k == "@type" or "." in k else re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): _camel(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_camel(v) for v in node]
    return node


def _istiod(pc: ProxyConfig) -> IstiodConfig:
    secrets = [{"name": n, **s} for n, s in pc.secrets.items() if s is not None]
    return IstiodConfig(
        INGRESS,
        *(_camel(copy.deepcopy(x)) for x in (pc.listeners, pc.route_configs, pc.clusters, pc.endpoints, secrets)),
    )


def _answers(view: EnvoyView) -> dict[str, Any]:
    """The questions consumers ask of a gateway, and the view's answers."""
    [chain] = view.chains_on(8443)
    served = view.secret(sds_name("mtls-credential")) or {}
    return {
        "listener": (view.listener(8443) or {}).get("name"),
        "chain": (
            chain.listener,
            chain.index,
            chain.server_names,
            chain.route_config,
            chain.require_client_certificate,
        ),
        "route": [(r.route_config, r.vhost, r.domains, r.clusters, r.virtual_service) for r in view.routes],
        "clusters": sorted(view.clusters),
        "endpoints": view.endpoints("outbound|443||alb.internal.example.com"),
        "secrets": sorted(n for n, s in view.secrets.items() if s is not None),
        "has_chain": "tls_certificate" in served,
        "simulated": simulate(
            view,
            Request(8443, "lambda.external", tls=True, sni="lambda.external", client_cert=True, principal=IMPORTER),
        ),
    }


IMPORTER = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
"""The seed importer's identity, which the exporter's AuthorizationPolicy admits."""


def test_a_translation_istiods_answer_and_a_config_dump_read_alike(tmp_path: Path) -> None:
    pc = seed_path(tmp_path)[INGRESS]
    ours = _answers(EnvoyView.of(pc))
    assert ours["chain"] == (
        "0.0.0.0_8443",
        0,
        ("lambda.external",),
        "https.443.https.eastwestgateway.istio-ingress",
        True,
    )
    assert ours["simulated"].ok and ours["simulated"].cluster == "outbound|443||alb.internal.example.com"
    assert ours["endpoints"] and ours["has_chain"]
    assert _answers(EnvoyView.from_config_dump(_dump(pc))) == ours
    assert _answers(EnvoyView.from_istiod(_istiod(pc))) == ours


def test_a_config_dump_of_a_proxy_still_warming_answers_what_it_holds(tmp_path: Path) -> None:
    pc = seed_path(tmp_path)[INGRESS]
    dump = _dump(pc, warming_secrets=(sds_name("mtls-credential"),))
    clusters = next(c for c in dump["configs"] if c["@type"].endswith("ClustersConfigDump"))
    clusters["dynamic_warming_clusters"] = clusters.pop("dynamic_active_clusters")
    view = EnvoyView.from_config_dump(dump)
    assert view.secret(sds_name("mtls-credential")) is None  # awaited: not served yet
    assert [e.state for e in view.secret_entries if e.name == sds_name("mtls-credential")] == ["WARMING"]
    assert view.clusters == {} and view.warming_clusters  # a warming cluster serves no request
    assert "alb.internal.example.com" in view.upstream_hosts()  # but the proxy holds configuration for it
    result = simulate(view, Request(8443, "lambda.external", tls=True, sni="lambda.external", client_cert=True))
    assert result.error == "SecretNotReady"


def test_a_served_certificate_is_read_inline_and_refused_when_not_base64(tmp_path: Path) -> None:
    pc = seed_path(tmp_path)[INGRESS]
    dump = _dump(pc)
    [entry] = [e for e in EnvoyView.from_config_dump(dump).active_secrets() if e.name == sds_name("mtls-credential")]
    pem = entry.pem("chain")
    assert pem is not None and pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert entry.pem("trust") is None  # a certificate, not a trust bundle
    secrets = next(c for c in dump["configs"] if c["@type"].endswith("SecretsConfigDump"))
    for s in secrets["dynamic_active_secrets"]:
        if "tls_certificate" in s["secret"]:
            s["secret"]["tls_certificate"]["certificate_chain"] = {"inline_bytes": "not base64!"}
    [broken] = [e for e in EnvoyView.from_config_dump(dump).active_secrets() if e.name == sds_name("mtls-credential")]
    with pytest.raises(ValueError):
        broken.pem("chain")


def test_a_resource_dump_holds_one_route_configuration_per_item() -> None:
    rc = {"name": "http.8080", "virtual_hosts": [{"name": "v", "domains": ["lambda.external"], "routes": []}]}
    one = {"configs": [{"@type": ADMIN + "RoutesConfigDump.DynamicRouteConfig", "route_config": rc}]}
    assert EnvoyView.from_config_dump(one).route_config("http.8080") == rc
    other = {"configs": [{"@type": ADMIN + "RoutesConfigDump.DynamicRouteConfig", "route_config": {"name": "80"}}]}
    assert EnvoyView.from_config_dump(other).route_config("http.8080") is None


def test_a_listener_port_is_the_one_in_its_name_even_when_the_twin_moves_it(tmp_path: Path) -> None:
    pc = seed_path(tmp_path)["gke/sleep"]
    moved = copy.deepcopy(pc.listeners)
    moved[0]["address"]["socket_address"]["port_value"] = 10080  # the twin binds 80 + an offset when not root
    view = EnvoyView(moved, pc.clusters, pc.route_configs)
    assert view.listener(80) is moved[0] and view.listener(10080) is None
    unnamed = [{**moved[0], "name": "virtualOutbound"}]
    assert EnvoyView(unnamed).listener(10080) is unnamed[0] and EnvoyView(unnamed).listener(80) is None


def test_sds_names_are_parsed_once() -> None:
    assert sds_name("mtls-credential") == "kubernetes://mtls-credential"
    assert sds_ca_name("mtls-credential") == "kubernetes://mtls-credential-cacert"
    assert parse_sds_name("kubernetes://mtls-credential") == ("mtls-credential", False)
    assert parse_sds_name("kubernetes://mtls-credential-cacert") == ("mtls-credential", True)
    assert credential_name("kubernetes://mtls-credential-cacert") == "mtls-credential-cacert"
    assert credential_name("mtls-credential") == "mtls-credential"


def test_sds_names_of_other_sources_are_no_credential() -> None:
    for name in ("default", "ROOTCA", "file-root:system", "kubernetes-gateway://ns/cred", "mtls-credential"):
        assert parse_sds_name(name) is None, name
