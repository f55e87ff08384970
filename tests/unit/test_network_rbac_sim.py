"""The simulator's judge of a TCP filter chain's network RBAC filters (``envoy.filters.network.rbac``, istiod's
before the TCP proxy): what a connection shows (the peer's principal, the port, the SNI) and nothing of a request.
The oracle tier compares calls on istiod's own filters (tests/oracle/cases/gateway-tcp-authorization-principals.yaml).
"""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.authz import rbac_filters
from meshbridge.envoy.simulate import Request, network_rbac_denial
from meshbridge.istio.parse import build_config
from meshbridge.istio.visibility import Proxy

APP = "spiffe://cluster.local/ns/apps/sa/orders"
INTRUDER = "spiffe://cluster.local/ns/other/sa/intruder"
GATEWAY = Proxy("router", "pg-gateway", "db", {"app": "pg-gateway"})


def _chain(*rules: dict[str, Any], action: str = "ALLOW") -> dict[str, Any]:
    """A TCP chain of the gateway with the network RBAC filters of one policy of ``rules``, then its TCP proxy."""
    spec = {"selector": {"matchLabels": {"app": "pg-gateway"}}, "action": action, "rules": list(rules)}
    doc = {
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": "p", "namespace": "db"},
    }
    filters = rbac_filters(build_config([("p.yaml", {**doc, "spec": spec})]), GATEWAY, tcp=True)
    return {"filters": [*filters, {"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "pg"}}]}


def _connection(principal: str | None = APP, port: int = 5433, sni: str | None = "pg.db.example") -> Request:
    return Request(port, "", tls=True, sni=sni, client_cert=principal is not None, principal=principal)


PRINCIPALS = {"from": [{"source": {"principals": ["cluster.local/ns/apps/sa/*"]}}]}
PATHS = {"to": [{"operation": {"methods": ["GET"], "paths": ["/telemetry/*"]}}]}


def test_an_allow_on_principals_admits_the_app_and_closes_another_peer() -> None:
    assert network_rbac_denial(_chain(PRINCIPALS), _connection()) is None
    assert network_rbac_denial(_chain(PRINCIPALS), _connection(INTRUDER)) == (
        f"no ALLOW policy matches a connection on port 5433 from {INTRUDER}"
    )
    assert network_rbac_denial(_chain(PRINCIPALS), _connection(None)) is not None  # no certificate: no principal


def test_an_allow_with_only_http_fields_admits_nothing_on_tcp() -> None:
    assert network_rbac_denial(_chain(PATHS), _connection()) is not None  # istiod left the rule out
    assert network_rbac_denial(_chain(PATHS, PRINCIPALS), _connection()) is None  # its twin: the other rule admits


def test_ports_and_sni_are_judged_on_a_connection() -> None:
    rule = {
        **PRINCIPALS,
        "to": [{"operation": {"ports": ["5433"]}}],
        "when": [{"key": "connection.sni", "values": ["pg.*"]}],
    }
    assert network_rbac_denial(_chain(rule), _connection()) is None
    assert network_rbac_denial(_chain(rule), _connection(port=5434)) is not None
    assert network_rbac_denial(_chain(rule), _connection(sni="other.example")) is not None


def test_a_deny_loses_its_http_fields_and_closes_more() -> None:
    deny = {"from": [{"source": {"notNamespaces": ["apps"]}}], "to": [{"operation": {"methods": ["DELETE"]}}]}
    assert (
        network_rbac_denial(_chain(deny, action="DENY"), _connection(INTRUDER))
        == "DENY policy ns[db]-policy[p]-rule[0] matches"
    )
    assert network_rbac_denial(_chain(deny, action="DENY"), _connection()) is None


def test_no_policy_no_filter_nothing_closed() -> None:
    bare = {"filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "pg"}}]}
    assert network_rbac_denial(bare, _connection(None)) is None
