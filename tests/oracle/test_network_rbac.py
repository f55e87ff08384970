"""The network RBAC filters of a gateway's TCP filter chains against istiod's, whole: the conformance table
compares a TCP chain's filter names only, these tests each filter's configuration (rules, shadow rules, stat
prefixes), in the cases whose gateways have TCP or passed-through TLS servers and AuthorizationPolicies."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.envoy.authz import RBAC_TCP_FILTER
from meshbridge.envoy.view import EnvoyView
from meshbridge.istiod.judge import MeshVerdict

CASES = ["gateway-tcp-authorization", "gateway-tcp-authorization-principals"]


def _network_rbac(view: EnvoyView) -> dict[str, list[Any]]:
    """Each listener's TCP chains' network RBAC filters, by listener name and chain index."""
    return {
        f"{lst.get('name')} chain {i}": [
            f["typed_config"] for f in chain.get("filters", []) if f["name"] == RBAC_TCP_FILTER
        ]
        for lst in view.listeners
        for i, chain in enumerate(lst.get("filter_chains", []))
        if any(f["name"] == "envoy.filters.network.tcp_proxy" for f in chain.get("filters", []))
    }


@pytest.mark.parametrize("name", CASES)
def test_the_network_rbac_filters_are_istiods(judged: dict[str, list[MeshVerdict]], name: str) -> None:
    (mesh,) = judged[name]
    checked = 0
    for verdict in mesh.proxies:
        if verdict.ours.proxy.kind != "router":
            continue
        ours = _network_rbac(EnvoyView.of(verdict.ours))
        theirs = _network_rbac(EnvoyView.from_istiod(verdict.istiod))
        assert ours == theirs, verdict.name
        checked += sum(len(filters) for filters in ours.values())
    assert checked > 0  # the case has TCP chains with policies: a comparison of nothing proves nothing


def test_negative_twin_a_chain_without_its_filter_differs(judged: dict[str, list[MeshVerdict]]) -> None:
    (mesh,) = judged[CASES[0]]
    verdict = next(v for v in mesh.proxies if v.ours.proxy.kind == "router")
    ours = _network_rbac(EnvoyView.of(verdict.ours))
    first = next(k for k, filters in ours.items() if filters)
    assert {**ours, first: ours[first][1:]} != _network_rbac(EnvoyView.from_istiod(verdict.istiod))
