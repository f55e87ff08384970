"""AuthorizationPolicies as Envoy's RBAC HTTP filter, as istiod builds it for a gateway's HTTP connection manager.

Source (istio/istio): ``pilot/pkg/security/authz/builder/builder.go`` (one ``envoy.filters.http.rbac`` filter per
action, DENY before ALLOW, policies named ``ns[<namespace>]-policy[<name>]-rule[<index>]``,
``shadow_rules_stat_prefix`` ``istio_dry_run_allow_`` on both), ``pilot/pkg/security/authz/model`` (a rule's ``to``
entries are its permissions, its ``from`` entries its principals, each an ``and_rules``/``and_ids`` of one
``or_rules``/``or_ids`` per field) and ``pilot/pkg/security/authz/matcher`` (a host is a case-insensitive
``:authority`` header match, exact or, with a ``*`` at one end, a prefix or suffix; a principal is the peer
certificate's URI SAN, ``spiffe://`` put back in front). istiod places the filters first in the chain, after
its istio-proxy-only filters, which the twin leaves out (:mod:`meshbridge.envoy.listeners`). Checked against
istiod's own output by the oracle tier (``tests/oracle``).

A policy applies to a proxy in its namespace whose labels include ``selector.matchLabels`` (every proxy there
without a selector), or to every proxy of the mesh from the root namespace. The modelled subset is
:class:`meshbridge.istio.resources.AuthorizationPolicy`'s: principals and hosts (and their ``not`` forms).
"""

from __future__ import annotations

from typing import Any

from meshbridge.istio.config import ConfigSet
from meshbridge.istio.resources import SPIFFE_PREFIX, AuthorizationPolicy, AuthzFrom, AuthzRule, AuthzTo
from meshbridge.istio.visibility import Proxy

RBAC_FILTER = "envoy.filters.http.rbac"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
SHADOW_STAT_PREFIX = "istio_dry_run_allow_"
"""istiod's ``shadow_rules_stat_prefix``, the same on the DENY filter (measured with the oracle)."""


def applies_to(policy: AuthorizationPolicy, proxy: Proxy, root_namespace: str) -> bool:
    """Whether ``policy`` selects ``proxy``: same namespace (or the root namespace) and matching labels."""
    if policy.metadata.namespace not in (proxy.namespace, root_namespace):
        return False
    wanted = policy.spec.selector.match_labels if policy.spec.selector is not None else {}
    return all(proxy.labels.get(k) == v for k, v in wanted.items())


def rbac_filters(cfg: ConfigSet, proxy: Proxy) -> list[dict[str, Any]]:
    """The RBAC HTTP filters of ``proxy``'s HTTP connection managers: DENY's, then ALLOW's; none without policies."""
    mine = [p for p in cfg.authorization_policies if applies_to(p, proxy, cfg.settings.root_namespace)]
    mine.sort(key=lambda p: (p.metadata.namespace, p.metadata.name))
    out = []
    for action in ("DENY", "ALLOW"):
        chosen = [p for p in mine if p.spec.action == action]
        if not chosen:
            continue
        policies = {
            f"ns[{p.metadata.namespace}]-policy[{p.metadata.name}]-rule[{i}]": _policy(rule)
            for p in chosen
            for i, rule in enumerate(p.spec.rules)
        }
        rules: dict[str, Any] = {"policies": policies}
        if action == "DENY":
            rules["action"] = "DENY"
        config = {"@type": RBAC_TYPE, "rules": rules, "shadow_rules_stat_prefix": SHADOW_STAT_PREFIX}
        out.append({"name": RBAC_FILTER, "typed_config": config})
    return out


def _policy(rule: AuthzRule) -> dict[str, Any]:
    permissions = [_permission(t) for t in rule.to] or [{"any": True}]
    principals = [_principal(f) for f in rule.from_] or [{"any": True}]
    return {"permissions": permissions, "principals": principals}


def _permission(to: AuthzTo) -> dict[str, Any]:
    op = to.operation
    rules: list[dict[str, Any]] = []
    if op.hosts:
        rules.append({"or_rules": {"rules": [_authority(h) for h in op.hosts]}})
    if op.not_hosts:
        rules.append({"not_rule": {"or_rules": {"rules": [_authority(h) for h in op.not_hosts]}}})
    return {"and_rules": {"rules": rules}} if rules else {"any": True}


def _principal(frm: AuthzFrom) -> dict[str, Any]:
    src = frm.source
    ids: list[dict[str, Any]] = []
    if src.principals:
        ids.append({"or_ids": {"ids": [_authenticated(p) for p in src.principals]}})
    if src.not_principals:
        ids.append({"not_id": {"or_ids": {"ids": [_authenticated(p) for p in src.not_principals]}}})
    return {"and_ids": {"ids": ids}} if ids else {"any": True}


def _authority(host: str) -> dict[str, Any]:
    """A ``hosts`` entry: the ``:authority`` header, case-insensitive; ``x:*`` a prefix, ``*.x`` a suffix."""
    if host.endswith("*"):
        match: dict[str, Any] = {"prefix": host[:-1]}
    elif host.startswith("*"):
        match = {"suffix": host[1:]}
    else:
        match = {"exact": host}
    return {"header": {"name": ":authority", "string_match": {**match, "ignore_case": True}}}


def _authenticated(principal: str) -> dict[str, Any]:
    """A ``principals`` entry: the peer certificate's URI SAN, ``spiffe://`` in front; ``*`` at one end a prefix or
    suffix, ``*`` alone any authenticated peer."""
    if principal == "*":
        match: dict[str, Any] = {"safe_regex": {"regex": ".+"}}
    elif principal.endswith("*"):
        match = {"prefix": SPIFFE_PREFIX + principal[:-1]}
    elif principal.startswith("*"):
        match = {"suffix": principal[1:]}
    else:
        match = {"exact": SPIFFE_PREFIX + principal}
    return {"authenticated": {"principal_name": match}}
