"""The sidecar's port-80 fallback leaves out the VirtualService hosts a service of port 80 already carries; the
check looks the exact hosts up instead of matching each host against every served one, with the same answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshbridge.envoy.sidecar import _overlaps
from meshbridge.istio.visibility import host_matches

HOSTS = ["a.example.com", "A.Example.com", "*.example.com", "*.b.example.com", "x.b.example.com", "*", "*.com"]
HOSTS += ["example.com", "reviews.default.svc.cluster.local", "*.svc.cluster.local", "other.org"]


def _by_every_host(host: str, served: set[str]) -> bool:
    return any(host_matches(host, s) or host_matches(s, host) for s in served)


def _indexed(host: str, served: set[str]) -> bool:
    return _overlaps(host, served, {s.lower() for s in served}, [s for s in served if s.startswith("*")])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HOSTS), st.sets(st.sampled_from(HOSTS), max_size=5))
def test_the_lookup_answers_as_matching_every_served_host(host: str, served: set[str]) -> None:
    assert _indexed(host, served) is _by_every_host(host, served)


def test_a_host_overlaps_an_exact_or_covering_host_and_not_another() -> None:
    """Positive and negative twin: the same host, case aside, and a covering wildcard overlap; a sibling or a
    parent domain does not."""
    assert _indexed("A.example.com", {"a.example.com"})
    assert _indexed("x.b.example.com", {"other.org", "*.example.com"})
    assert _indexed("*.example.com", {"x.b.example.com"})
    assert not _indexed("b.example.com", {"a.example.com", "*.b.example.com"})
    assert not _indexed("example.com", {"*.example.com"})
