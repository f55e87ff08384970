"""AuthorizationPolicy conditions on the client's address (``ipBlocks``, ``remoteIpBlocks``, ``source.ip``,
``remote.ip``), translated as istiod does (``direct_remote_ip``, ``remote_ip``) and judged by the simulator on the
request's source; conditions the twin does not model fail closed (an ALLOW rule admits nothing, a DENY rule refuses
as if they held). The oracle tier compares calls on istiod's own filters
(tests/oracle/cases/gateway-authorization-ip-blocks.yaml).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.authz import rbac_filters
from meshbridge.envoy.pathsim import path_findings, trace_exports
from meshbridge.envoy.simulate import Request, network_rbac_denial, rbac_denial, simulate
from meshbridge.envoy.view import EnvoyView
from meshbridge.errors import IstioConfigError
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy
from meshbridge.lint import Finding
from tests.builders import bridge_from, seed_bridge, seed_dict
from tests.istio_builders import Docs, doc_named, seed_path
from tests.lint_builders import doc, lint_docs, seed_docs

GATEWAY = Proxy("router", "api-gateway", "edge", {"app": "api-gateway"})
PEER = "spiffe://peer.example/ns/egress/sa/gw"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"


def _filters(*rules: dict[str, Any], action: str = "ALLOW", tcp: bool = False) -> list[dict[str, Any]]:
    spec = {"selector": {"matchLabels": {"app": "api-gateway"}}, "action": action, "rules": list(rules)}
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "edge"},
    }
    return rbac_filters(build_config([("p.yaml", {**doc, "spec": spec})]), GATEWAY, tcp=tcp)


def _denied(rules: list[dict[str, Any]], source: str | None, action: str = "ALLOW", **headers: str) -> bool:
    hcm = {"http_filters": _filters(*rules, action=action)}
    req = Request(
        8443,
        "api.example",
        tls=True,
        principal=PEER,
        source=source,
        headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()),
    )
    return rbac_denial(hcm, req) is not None


BLOCK = {
    "from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}],
    "when": [{"key": "request.headers[x-team]", "values": ["shop"]}],
}


def test_ip_blocks_are_istiods_direct_remote_ip_principals() -> None:
    rule = {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"], "remoteIpBlocks": ["203.0.113.7"]}}]}
    (f,) = _filters(rule)
    (policy,) = f["typed_config"]["rules"]["policies"].values()
    assert policy["principals"] == [
        {
            "and_ids": {
                "ids": [
                    {"or_ids": {"ids": [{"remote_ip": {"address_prefix": "203.0.113.7", "prefix_len": 32}}]}},
                    {"or_ids": {"ids": [{"direct_remote_ip": {"address_prefix": "10.0.0.0", "prefix_len": 8}}]}},
                ]
            }
        }
    ]


def test_an_allow_on_a_block_admits_an_address_inside_it() -> None:
    assert not _denied([BLOCK], "10.1.2.3", x_team="shop")


def test_an_allow_on_a_block_refuses_an_address_outside_it_and_an_unknown_one() -> None:
    assert _denied([BLOCK], "127.0.0.1", x_team="shop")  # the twin's own address: outside 10/8
    assert _denied([BLOCK], None, x_team="shop")  # an address no block names
    assert _denied([BLOCK], "10.1.2.3")  # inside, but without the header


def test_a_deny_with_not_ip_blocks_exempts_only_the_addresses_named() -> None:
    deny = [{"from": [{"source": {"ipBlocks": ["10.66.0.0/16"], "notIpBlocks": ["10.66.0.9"]}}]}]
    assert _denied(deny, "10.66.1.1", action="DENY")
    assert not _denied(deny, "10.66.0.9", action="DENY")
    assert not _denied(deny, "192.0.2.1", action="DENY")


def test_source_ip_and_remote_ip_conditions_are_addresses_too() -> None:
    rule = {
        "when": [{"key": "source.ip", "values": ["192.168.7.0/24"]}, {"key": "remote.ip", "notValues": ["192.168.7.9"]}]
    }
    assert not _denied([rule], "192.168.7.20")
    assert _denied([rule], "192.168.7.9")
    assert _denied([rule], "192.168.8.20")
    assert build_config([]).warnings == []


def test_an_address_that_is_not_one_is_refused_with_the_fix() -> None:
    with pytest.raises(
        IstioConfigError, match=r"spec.rules\[0\].from\[0\].source.ipBlocks: '10.0.0.0/33' is not an IP"
    ):
        _filters({"from": [{"source": {"ipBlocks": ["10.0.0.0/33"]}}]})
    with pytest.raises(IstioConfigError, match=r"spec.rules\[0\].when\[0\]: 'office' is not an IP address or CIDR"):
        _filters({"when": [{"key": "source.ip", "values": ["office"]}]})


JWT = {"from": [{"source": {"requestPrincipals": ["issuer.example/*"]}}]}
CLAIM = {"when": [{"key": "request.auth.claims[team]", "values": ["shop"]}]}


@pytest.mark.parametrize("rule", [JWT, CLAIM])
def test_an_allow_rule_on_an_unmodelled_condition_admits_nothing(rule: dict[str, Any]) -> None:
    assert _denied([rule], "10.1.2.3")
    assert not _denied([rule, {"from": [{"source": {"ipBlocks": ["10.0.0.0/8"]}}]}], "10.1.2.3")  # another rule admits


@pytest.mark.parametrize("rule", [JWT, CLAIM])
def test_a_deny_rule_on_an_unmodelled_condition_refuses_as_if_it_held(rule: dict[str, Any]) -> None:
    assert _denied([rule], "10.1.2.3", action="DENY")
    narrowed = {**rule, "to": [{"operation": {"paths": ["/admin"]}}]}
    assert not _denied([narrowed], "10.1.2.3", action="DENY")  # its other fields still narrow it


def _chain(*rules: dict[str, Any], tls: bool) -> EnvoyView:
    """A gateway listener on 8443 whose one chain holds the network RBAC filters of ``rules`` and a TCP proxy;
    ``tls``: the chain ends TLS (a transport socket), else it passes TLS through."""
    tcp_proxy = {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "pg", "stat_prefix": "pg"}}
    chain: dict[str, Any] = {"filters": [*_filters(*rules, tcp=True), tcp_proxy]}
    if tls:
        context = {"@type": DOWNSTREAM_TLS, "require_client_certificate": True}
        chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": context}
    address = {"socket_address": {"address": "0.0.0.0", "port_value": 8443}}
    return EnvoyView([{"name": "0.0.0.0_8443", "address": address, "filter_chains": [chain]}], [{"name": "pg"}])


PRINCIPAL = {"from": [{"source": {"principals": ["peer.example/ns/egress/sa/gw"]}}]}
ADDRESS = {"from": [{"source": {"ipBlocks": ["198.51.100.4"]}}]}
CONNECTION = Request(8443, "", tls=True, client_cert=True, principal=PEER, source="10.1.2.3", alpn=())


def test_a_passthrough_chain_sees_no_principal() -> None:
    assert simulate(_chain(PRINCIPAL, ADDRESS, tls=False), CONNECTION, secrets=False).error == "RBACDenied"


def test_a_chain_that_ends_tls_sees_the_principal() -> None:
    assert simulate(_chain(PRINCIPAL, ADDRESS, tls=True), CONNECTION, secrets=False).ok


def test_a_passthrough_chain_judges_the_address() -> None:
    conn = replace(CONNECTION, source="198.51.100.4")
    assert simulate(_chain(PRINCIPAL, ADDRESS, tls=False), conn, secrets=False).ok
    assert network_rbac_denial({"filters": _filters(ADDRESS, tcp=True)}, CONNECTION) is not None


def _only_from(block: str) -> Callable[[Docs], None]:
    """The seed's exporter policy narrowed to importers connecting from ``block``."""

    def edit(docs: Docs) -> None:
        rule = doc_named(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
        rule["from"][0]["source"]["ipBlocks"] = [block]

    return edit


def test_the_path_check_judges_the_twins_address_inside_the_block(tmp_path: Path) -> None:
    hops = trace_exports(seed_bridge(), seed_path(tmp_path, _only_from("127.0.0.0/8")))
    assert hops[2].request.source == "127.0.0.1" and hops[2].ok


def test_the_path_check_stops_at_the_exporter_for_an_address_outside_the_block(tmp_path: Path) -> None:
    (stop,) = path_findings(seed_bridge(), seed_path(tmp_path, _only_from("10.0.0.0/8")))
    assert (stop.proxy, stop.result.error, stop.result.status) == ("eks/istio-ingressgateway", "RBACDenied", 403)
    assert "at 127.0.0.1" in stop.result.detail


def _lint_exporter_rule(**fields: Any) -> list[Finding]:
    """Lint of the seed whose exporter's policy rule gets ``fields`` (``source``: more from.source fields)."""
    bridge = bridge_from(seed_dict())
    docs = seed_docs(bridge)
    rule = doc(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers")["spec"]["rules"][0]
    rule["from"][0]["source"].update(fields.pop("source", {}))
    rule.update(fields)
    return [f for f in lint_docs(docs, bridge).findings if f.code in ("MB312", "MB313")]


HEADER = [{"key": "request.headers[x-team]", "values": ["shop"]}]


def test_lint_claims_no_admission_that_depends_on_the_address() -> None:
    (f,) = _lint_exporter_rule(source={"ipBlocks": ["10.0.0.0/8"]}, when=HEADER)
    assert f.code == "MB312"  # was MB313 'admits ... only on GET / with x-team: shop': the block was dropped
    assert f.message.endswith(
        "; lint asked from an address no block names, as it cannot know the one the importer's egress gateway "
        "connects from, and istio-ingress/istio-ingressgateway-importers spec.rules[0].from[0].source.ipBlocks "
        "judges it: check the importer's egress address is inside it ('meshbridge local up' judges the twin's, "
        "127.0.0.1)"
    )


def test_negative_twin_without_the_block_lint_names_the_header_it_admits() -> None:
    (f,) = _lint_exporter_rule(when=HEADER)
    assert f.code == "MB313" and "only on GET / with x-team: shop" in f.message
    assert "address" not in f.message


def test_lint_claims_no_admission_that_depends_on_an_unmodelled_condition() -> None:
    (f,) = _lint_exporter_rule(when=[*HEADER, {"key": "request.auth.claims[team]", "values": ["shop"]}])
    assert f.code == "MB312" and "address" not in f.message
