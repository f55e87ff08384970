"""The sidecar's port-80 fallback leaves out the VirtualService hosts a service of port 80 already carries, as
istiod's ``separateVSHostsAndServices``: an exact host by its own name only (a name under a served wildcard gets
its own virtual host), a wildcard host by any served host it overlaps."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from meshbridge.envoy.sidecar import _overlaps
from meshbridge.istio.visibility import host_matches

HOSTS = ["a.example.com", "A.Example.com", "*.example.com", "*.b.example.com", "x.b.example.com", "*", "*.com"]
HOSTS += ["example.com", "reviews.default.svc.cluster.local", "*.svc.cluster.local", "other.org"]


def _as_istiod(host: str, served: set[str]) -> bool:
    if not host.startswith("*"):
        return any(host.lower() == s.lower() for s in served)
    return any(host_matches(host, s) or host_matches(s, host) for s in served)


def _indexed(host: str, served: set[str]) -> bool:
    return _overlaps(host, served, {s.lower() for s in served})


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(HOSTS), st.sets(st.sampled_from(HOSTS), max_size=5))
def test_the_lookup_answers_as_istiod_separates_hosts_and_services(host: str, served: set[str]) -> None:
    assert _indexed(host, served) is _as_istiod(host, served)


def test_a_host_overlaps_an_exact_host_or_a_wildcard_host_what_it_covers_and_not_another() -> None:
    """Positive and negative twin: the same host, case aside, and a wildcard host over a served one overlap; a
    name under a served wildcard, a sibling or a parent domain does not."""
    assert _indexed("A.example.com", {"a.example.com"})
    assert not _indexed("x.b.example.com", {"other.org", "*.example.com"})  # istiod: not a service of its own
    assert _indexed("*.example.com", {"x.b.example.com"})
    assert not _indexed("b.example.com", {"a.example.com", "*.b.example.com"})
    assert not _indexed("example.com", {"*.example.com"})
