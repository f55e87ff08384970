"""The simulator picks a filter chain through an index (chains by destination port, then by exact server name and
by wildcard suffix), with the same answer as the rule applied step by step over every chain (``select_chain``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshbridge.envoy.simulate import FilterChains, Request, select_chain, simulate
from meshbridge.envoy.view import ChainRef, EnvoyView, listener_chains

NAMES = ["a.example.com", "A.Example.COM", "*.example.com", "*.b.example.com", "b.example.com", "*.com", "other.org"]
SNIS = [None, "", "a.example.com", "A.EXAMPLE.com", "x.b.example.com", "b.example.com", "example.com"]
SNIS += [".example.com", "*.example.com", "c.example.com", "other.org", "x.other.org", "com"]


def _chain(match: dict[str, Any]) -> dict[str, Any]:
    return {
        "filter_chain_match": match,
        "filters": [{"name": "envoy.filters.network.tcp_proxy", "typed_config": {"cluster": "c"}}],
    }


def _chains(matches: list[dict[str, Any]], default: bool = False) -> list[ChainRef]:
    lst: dict[str, Any] = {"name": "0.0.0.0_8443", "filter_chains": [_chain(m) for m in matches]}
    if default:
        lst["default_filter_chain"] = _chain({})
    return listener_chains(lst)


def _optional(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


MATCHES = st.builds(
    lambda *parts: {k: v for p in parts for k, v in p.items()},
    _optional("destination_port", st.sampled_from([8443, 9443])),
    _optional("server_names", st.lists(st.sampled_from(NAMES), max_size=3)),
    _optional("transport_protocol", st.sampled_from(["tls", "raw_buffer"])),
    _optional("application_protocols", st.sampled_from([["h2"], ["http/1.1"], ["istio-peer-exchange", "istio"]])),
)
REQUESTS = st.builds(
    Request,
    port=st.sampled_from([8443, 9443, 15443]),
    host=st.just("h"),
    tls=st.booleans(),
    sni=st.sampled_from(SNIS),
    alpn=st.sampled_from([None, ("h2", "http/1.1"), ("istio",), ()]),
)


def _index_of(chain: ChainRef | None) -> int | None:
    return None if chain is None else chain.index


@settings(max_examples=400, deadline=None)
@given(st.lists(MATCHES, max_size=8), st.booleans(), st.lists(REQUESTS, min_size=1, max_size=6))
def test_the_index_picks_the_chain_the_rule_picks(
    matches: list[dict[str, Any]], default: bool, requests: list[Request]
) -> None:
    chains = _chains(matches, default)
    indexed = FilterChains(chains)
    for req in requests:
        assert _index_of(indexed.select(req)) == _index_of(select_chain(chains, req)), req


CHAINS = [
    {"server_names": ["*.example.com"]},
    {"server_names": ["*.b.example.com"]},
    {"server_names": ["A.example.com", "*.org"]},
    {},
    {"server_names": ["a.example.com"], "destination_port": 9443},
]


@pytest.mark.parametrize(
    "port,sni,expected",
    [
        (8443, "a.example.com", 2),  # exact beats every wildcard, whatever the case
        (8443, "x.b.example.com", 1),  # the longest wildcard suffix
        (8443, "x.y.example.com", 0),  # a wildcard stands for one label or more
        (8443, "other.org", 2),
        (8443, None, 3),  # no SNI: only chains without server_names
        (9443, "a.example.com", 4),  # a chain naming the port beats those naming none
    ],
)
def test_exact_then_longest_wildcard_then_chains_without_names(port: int, sni: str | None, expected: int) -> None:
    chains = _chains(CHAINS)
    req = Request(port, "h", tls=True, sni=sni)
    assert _index_of(FilterChains(chains).select(req)) == expected == _index_of(select_chain(chains, req))


@pytest.mark.parametrize("sni", ["example.com", ".example.com", "b.example.org"])
def test_a_wildcard_needs_a_label_before_its_suffix_and_no_other_name_matches(sni: str) -> None:
    """Negative twin: an SNI no name covers reaches no chain with names; without a chain lacking names the
    connection has none (a port no chain names falls back to the ones naming no port, here none)."""
    only_named = _chains([{"server_names": ["*.example.com", "*.b.example.com"]}])
    req = Request(8443, "h", tls=True, sni=sni)
    assert FilterChains(only_named).select(req) is None is select_chain(only_named, req)
    with_default = _chains([{"server_names": ["*.example.com"]}], default=True)
    assert _index_of(FilterChains(with_default).select(req)) == -1
    view = EnvoyView([{"name": "0.0.0.0_8443", "filter_chains": [_chain({"server_names": ["*.example.com"]})]}])
    assert simulate(view, req).error == "NoFilterChain"
    port_only = _chains([{"destination_port": 9443}])
    assert FilterChains(port_only).select(Request(8443, "h")) is None is select_chain(port_only, Request(8443, "h"))
