"""A gateway's virtual hosts that carry the very same routes collapse into one (istiod's collapseDuplicateRoutes),
looked up by their routes instead of compared with every virtual host kept so far."""

from __future__ import annotations

from typing import Any

from meshbridge.envoy.gateway import _collapse


def _vhost(host: str, routes: list[dict[str, Any]], require_tls: str | None = None) -> dict[str, Any]:
    vh: dict[str, Any] = {"name": f"{host}:443", "domains": [host], "routes": routes}
    return vh | ({"require_tls": require_tls} if require_tls else {})


def test_hosts_of_the_same_routes_become_one_virtual_host_named_after_the_most_specific() -> None:
    shared = [{"match": {"prefix": "/"}, "route": {"cluster": "a"}}]
    other = [{"match": {"prefix": "/"}, "route": {"cluster": "b"}}]
    vhosts = [
        _vhost("*.example.com", shared),
        _vhost("b.example.com", other),
        _vhost("a.example.com", shared),
        _vhost("long.a.example.com", shared),
    ]
    kept = _collapse(vhosts)
    assert [(vh["name"], vh["domains"]) for vh in kept] == [
        ("long.a.example.com:443", ["long.a.example.com", "a.example.com", "*.example.com"]),
        ("b.example.com:443", ["b.example.com"]),
    ]


def test_equal_but_distinct_routes_another_require_tls_or_no_routes_stay_apart() -> None:
    """Negative twin: only the very same route objects collapse (istiod compares the routes a VirtualService
    built once), with the same require_tls; virtual hosts without routes never do."""
    route = {"match": {"prefix": "/"}, "route": {"cluster": "a"}}
    vhosts = [
        _vhost("a.example.com", [route]),
        _vhost("b.example.com", [dict(route)]),
        _vhost("c.example.com", [route], require_tls="ALL"),
        _vhost("d.example.com", []),
        _vhost("e.example.com", []),
    ]
    assert [vh["domains"] for vh in _collapse(vhosts)] == [[f"{h}.example.com"] for h in "abcde"]
