"""The simulator judges a request against the RBAC policies that can match its host (an index by host), with the
same answer as judging it against every policy."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.envoy.authz import RBAC_FILTER
from meshbridge.envoy.simulate import Request, _rbac_policy_matches, rbac_denial

PRINCIPAL = "spiffe://gke.example.com/ns/istio-egress/sa/egress"


def _authority(match: dict[str, Any]) -> dict[str, Any]:
    return {"header": {"name": ":authority", "string_match": {**match, "ignore_case": True}}}


def _on_hosts(*hosts: str) -> dict[str, Any]:
    rules = [_authority({"exact": h}) for h in hosts] + [_authority({"prefix": f"{h}:"}) for h in hosts]
    principal = {"authenticated": {"principal_name": {"exact": PRINCIPAL}}}
    return {"permissions": [{"and_rules": {"rules": [{"or_rules": {"rules": rules}}]}}], "principals": [principal]}


POLICIES = {
    "a": _on_hosts("a.external"),
    "b": _on_hosts("b.external"),
    "paths": {
        "permissions": [{"header": {"name": ":path", "string_match": {"prefix": "/admin"}}}],
        "principals": [{"any": True}],
    },
}


def _hcm(action: str) -> dict[str, Any]:
    rules: dict[str, Any] = {"policies": POLICIES} | ({"action": "DENY"} if action == "DENY" else {})
    return {"http_filters": [{"name": RBAC_FILTER, "typed_config": {"rules": rules}}]}


@pytest.mark.parametrize(
    "host,path,principal",
    [
        ("a.external", "/", PRINCIPAL),
        ("A.External:443", "/", PRINCIPAL),
        ("b.external", "/", PRINCIPAL),
        ("c.external", "/", PRINCIPAL),
        ("c.external", "/admin/x", None),
        ("a.external", "/", "spiffe://other/ns/x/sa/y"),
    ],
)
@pytest.mark.parametrize("action", ["ALLOW", "DENY"])
def test_the_index_answers_as_judging_every_policy(host: str, path: str, principal: str | None, action: str) -> None:
    req = Request(443, host, path=path, tls=True, principal=principal)
    every = next((n for n, p in sorted(POLICIES.items()) if _rbac_policy_matches(p, req)), None)
    expected = (every is None) if action == "ALLOW" else (every is not None)
    assert (rbac_denial(_hcm(action), req) is not None) is expected


def test_a_host_no_policy_names_is_refused_and_a_named_one_admitted() -> None:
    assert rbac_denial(_hcm("ALLOW"), Request(443, "c.external", tls=True, principal=PRINCIPAL)) is not None
    assert rbac_denial(_hcm("ALLOW"), Request(443, "b.external", tls=True, principal=PRINCIPAL)) is None
