"""AuthorizationPolicies as Envoy's RBAC HTTP filter, as istiod builds it for a gateway's HTTP connection manager,
and as its network RBAC filter, which istiod puts before the TCP proxy of a gateway's TCP filter chains.

Source (istio/istio): ``pilot/pkg/security/authz/builder/builder.go`` (one ``envoy.filters.http.rbac`` filter per
action, AUDIT's ``LOG`` then DENY then ALLOW, policies named ``ns[<namespace>]-policy[<name>]-rule[<index>]``,
``shadow_rules_stat_prefix`` ``istio_dry_run_allow_`` on all without shadow rules; ``envoy.filters.network.rbac``
likewise with ``stat_prefix`` ``tcp.``), ``pilot/pkg/security/authz/model`` (a rule's ``to``
entries are its permissions, its ``from`` entries its principals, each an ``and_rules``/``and_ids`` of one
``or_rules``/``or_ids`` per field) and ``pilot/pkg/security/authz/matcher`` (a host is a case-insensitive
``:authority`` header match, exact or, with a ``*`` at one end, a prefix or suffix; a principal is the peer
certificate's URI SAN, ``spiffe://`` put back in front). istiod places the filters first in the chain, after
its istio-proxy-only filters, which the twin leaves out (:mod:`meshbridge.envoy.listeners`). Checked against
istiod's own output by the oracle tier (``tests/oracle``).

A policy applies to a proxy in its namespace whose labels include ``selector.matchLabels`` (every proxy there
without a selector), or to every proxy of the mesh from the root namespace. The modelled subset is
:class:`meshbridge.istio.resources.AuthorizationPolicy`'s: principals, namespaces, service accounts, trust domains,
hosts, methods, paths and ports (and their ``not`` forms), IP blocks and remote IP blocks, and the ``when`` keys
of :data:`~meshbridge.istio.resources.AUTHZ_WHEN_KEYS`; AUDIT policies are a ``LOG`` filter that refuses nothing,
dry-run policies shadow rules; CUSTOM policies are left out (the parser reports them, as it reports the rest). A
rule with a condition outside that subset (a JWT's ``requestPrincipals``, ``request.auth.*``) fails closed: an
ALLOW rule is left out (it admits nothing), a DENY rule loses the condition (it refuses more).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

from meshbridge.envoy.names import rbac_policy_name
from meshbridge.istio.authz import names_a_gateway, unmodelled_fields
from meshbridge.istio.config import ConfigSet
from meshbridge.istio.gatewayapi import GATEWAY_NAME_LABEL
from meshbridge.istio.resources import (
    SPIFFE_PREFIX,
    AuthorizationPolicy,
    AuthzCondition,
    AuthzOperation,
    AuthzRule,
    AuthzSource,
)
from meshbridge.istio.visibility import Proxy

RBAC_FILTER = "envoy.filters.http.rbac"
RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
URI_TEMPLATE_TYPE = "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig"
SHADOW_STAT_PREFIX = "istio_dry_run_allow_"
"""istiod's ``shadow_rules_stat_prefix`` of a filter without shadow rules, whatever its action (measured with the
oracle: ``shadowRuleStatPrefix`` of no rules reads ALLOW)."""
RBAC_TCP_FILTER = "envoy.filters.network.rbac"
RBAC_TCP_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
TCP_STAT_PREFIX = "tcp."
"""istiod's ``stat_prefix`` of a network RBAC filter (``RBACTCPFilterStatPrefix``)."""
_HTTP_ONLY = ("hosts", "not_hosts", "methods", "not_methods", "paths", "not_paths")
"""The ``to.operation`` fields a TCP filter chain cannot judge."""
_PATH_TEMPLATE_MARKS = ("{*}", "{**}")
"""What makes a ``paths`` entry a URI template for istiod (``security.ContainsPathTemplate``)."""
DRY_RUN_ANNOTATION = "istio.io/dry-run"
_SHADOW_PREFIXES = {"ALLOW": SHADOW_STAT_PREFIX, "DENY": "istio_dry_run_deny_", "AUDIT": ""}
"""The prefix of a filter with shadow (dry-run) rules, by action: istiod gives a LOG filter none."""
_ENVOY_ACTIONS = {"DENY": "DENY", "AUDIT": "LOG"}


def applies_to(policy: AuthorizationPolicy, proxy: Proxy, root_namespace: str) -> bool:
    """Whether ``policy`` selects ``proxy``, as istiod's ``ShouldAttachPolicy``: same namespace (or the root
    namespace) and matching labels; a policy with ``targetRefs`` only the pods of the Gateway API ``Gateway`` it
    names in its own namespace (the pods labelled ``gateway.networking.k8s.io/gateway-name``), never a pod of
    Istio's own Gateway; such pods take selector policies too (``ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY``, on
    by default)."""
    if policy.metadata.namespace not in (proxy.namespace, root_namespace):
        return False
    spec = policy.spec
    refs = spec.target_refs or ([spec.target_ref] if spec.target_ref is not None else [])
    if refs:
        gateway = proxy.labels.get(GATEWAY_NAME_LABEL)
        return (
            gateway is not None
            and policy.metadata.namespace == proxy.namespace
            and any(names_a_gateway(r) and r.name == gateway and r.namespace in ("", proxy.namespace) for r in refs)
        )
    wanted = spec.selector.match_labels if spec.selector is not None else {}
    return all(proxy.labels.get(k) == v for k, v in wanted.items())


def rbac_filters(cfg: ConfigSet, proxy: Proxy, *, tcp: bool = False) -> list[dict[str, Any]]:
    """The RBAC HTTP filters of ``proxy``'s HTTP connection managers (with ``tcp``: the network RBAC filters of its
    TCP filter chains, before the TCP proxy): AUDIT's (``LOG``), DENY's, then ALLOW's; none without policies. A
    policy annotated ``istio.io/dry-run: "true"`` goes into the filter's ``shadow_rules``, which Envoy evaluates
    without enforcing; a filter with only those has no ``rules``. On TCP, a rule with HTTP-only fields (hosts,
    methods, paths, ``request.*`` conditions) is left out of an ALLOW filter and loses those fields elsewhere, as
    istiod's builder does (``forTCP``)."""
    mine = [p for p in cfg.authorization_policies if applies_to(p, proxy, cfg.settings.root_namespace)]
    mine.sort(key=lambda p: (p.metadata.namespace, p.metadata.name))
    out = []
    for action in ("AUDIT", "DENY", "ALLOW"):
        chosen = [p for p in mine if p.spec.action == action]
        if not chosen:
            continue
        config: dict[str, Any] = {"@type": RBAC_TCP_TYPE if tcp else RBAC_TYPE}
        enforced = [p for p in chosen if not dry_run(p)]
        if enforced:
            config["rules"] = _rules(enforced, action, tcp)
        if tcp:
            config["stat_prefix"] = TCP_STAT_PREFIX
        shadow = [p for p in chosen if dry_run(p)]
        if shadow:
            config["shadow_rules"] = _rules(shadow, action, tcp)
        prefix = _SHADOW_PREFIXES[action] if shadow else SHADOW_STAT_PREFIX
        config["shadow_rules_stat_prefix"] = prefix
        name = RBAC_TCP_FILTER if tcp else RBAC_FILTER
        out.append({"name": name, "typed_config": {k: v for k, v in config.items() if v != ""}})
    return out


def named_requests(policies: list[AuthorizationPolicy]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """One request (method, path, headers) for each combination of ``paths`` and ``methods`` an enforced ALLOW
    rule of ``policies`` names, with a value of each ``request.headers`` condition of the rule: what a client
    could send that the rule may admit (its hosts, ports and sources are the caller's to set). A pattern's
    example is the value it matches (``*`` any: ``/`` for a path, ``GET`` for a method, ``x`` for a header;
    ``/api/*`` ``/api/``, ``*.json`` ``/x.json``, a template's ``{*}`` and ``{**}`` ``x``); in rule order, once.
    Where ``notPaths`` or ``notMethods`` may exclude the example, one more is named: under each open-ended path
    pattern (``/x``, ``/api/x``), and a standard method the rule does not exclude.

    Then what an enforced DENY rule exempts: each of those requests (``GET /`` without an ALLOW policy) with the
    path changed to an example of each of the rule's ``notPaths`` (under an open-ended one: ``/api/*`` ``/api/x``),
    and with the method changed to each of its ``notMethods``; a DENY rule on every path but ``/api/*`` may admit
    ``/api/x`` alone."""
    out = _allowed_requests(policies)
    base = list(out) or [("GET", "/", ())]
    for method, path in _exempt_examples(policies):
        for m, p, headers in base:
            varied = (method or m, path or p, headers)
            if varied not in out:
                out.append(varied)
    return out


def _allowed_requests(policies: list[AuthorizationPolicy]) -> list[tuple[str, str, tuple[tuple[str, str], ...]]]:
    """The requests the enforced ALLOW rules of ``policies`` name (see :func:`named_requests`)."""
    out: list[tuple[str, str, tuple[tuple[str, str], ...]]] = []
    rules = [r for p in policies if p.spec.action == "ALLOW" and not dry_run(p) for r in p.spec.rules]
    for rule in rules:
        headers = tuple(
            (c.key.removeprefix("request.headers[").removesuffix("]"), _example(c.values[0], "x"))
            for c in rule.when
            if c.key.startswith("request.headers[") and c.values
        )
        for op in [t.operation for t in rule.to] or [AuthzOperation()]:
            unsent = set(unsent_methods([op.methods]))
            methods = [m for m in _method_examples(op) if m not in unsent]
            if op.methods and not methods:
                continue  # only methods no client sends: no request matches
            for path in _path_examples(op):
                for method in methods:
                    if (method, path, headers) not in out:
                        out.append((method, path, headers))
    return out


def _exempt_examples(policies: list[AuthorizationPolicy]) -> list[tuple[str | None, str | None]]:
    """``(method, path)`` examples of what the enforced DENY rules of ``policies`` exempt, one changed, the other
    ``None``: a path each ``notPaths`` pattern matches (a path under an open-ended one), each ``notMethods``."""
    rules = [r for p in policies if p.spec.action == "DENY" and not dry_run(p) for r in p.spec.rules]
    out: list[tuple[str | None, str | None]] = []
    for op in [t.operation for r in rules for t in r.to]:
        out += [(None, _example(v, "/") + ("x" if v.endswith("*") else "")) for v in op.not_paths]
        out += [(_example(v, "GET"), None) for v in op.not_methods]
    return list(dict.fromkeys(out))


def unsent_methods(method_lists: list[list[str]]) -> list[str]:
    """The methods of ``method_lists`` no client sends: not in capitals (HTTP methods are case-sensitive, the
    standard ones capitals, and Envoy compares ``:method`` exactly, so ``get`` never matches a ``GET``)."""
    return [m for ms in method_lists for m in ms if m != "*" and m != m.upper()]


def named_methods(policies: list[AuthorizationPolicy]) -> list[list[str]]:
    """The ``to.operation.methods`` lists of the enforced ALLOW rules of ``policies``."""
    rules = [r for p in policies if p.spec.action == "ALLOW" and not dry_run(p) for r in p.spec.rules]
    return [t.operation.methods for r in rules for t in r.to]


_STANDARD_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS")


def _method_examples(op: AuthzOperation) -> list[str]:
    """The methods :func:`named_requests` tries for ``op``: an example of each pattern (``GET`` for none), and,
    when ``notMethods`` may exclude it, the first standard method they leave."""
    out = [_example(v, "GET") for v in op.methods] or ["GET"]
    if op.not_methods and (not op.methods or "*" in op.methods):
        out += [m for m in _STANDARD_METHODS if m not in op.not_methods][:1]
    return list(dict.fromkeys(out))


def _path_examples(op: AuthzOperation) -> list[str]:
    """The paths :func:`named_requests` tries for ``op``: an example of each pattern (``/`` for none), and, when
    ``notPaths`` may exclude it, one more under each open-ended pattern (``/x`` for any path, ``/api/x``)."""
    patterns = op.paths or ["*"]
    out = [_example(v, "/") for v in patterns]
    if op.not_paths:
        out += [_example(v, "/") + "x" for v in patterns if v.endswith("*")]
    return list(dict.fromkeys(out))


def _example(pattern: str, any_value: str) -> str:
    """A value istiod's matcher for ``pattern`` admits (see :func:`named_requests`)."""
    if pattern == "*":
        return any_value
    if pattern.startswith("*"):
        return pattern[1:] if pattern[1:].startswith("/") or any_value != "/" else "/x" + pattern[1:]
    if pattern.endswith("*"):
        return pattern[:-1]
    return pattern.replace("{**}", "x").replace("{*}", "x")


def dry_run(policy: AuthorizationPolicy) -> bool:
    """Whether ``policy`` is annotated ``istio.io/dry-run`` true (Go's ``strconv.ParseBool``; anything else: no)."""
    return policy.metadata.annotations.get(DRY_RUN_ANNOTATION, "") in ("1", "t", "T", "true", "TRUE", "True")


def _rules(policies: list[AuthorizationPolicy], action: str, tcp: bool) -> dict[str, Any]:
    """An RBAC ``rules`` (or ``shadow_rules``) message: the policies of every rule (none left: no ``policies``),
    and the action unless ALLOW (the proto's zero value, which istiod's JSON leaves out)."""
    out: dict[str, Any] = {}
    for p in policies:
        for i, rule in enumerate(p.spec.rules or [None]):
            kept = _for_tcp(rule, action) if tcp and rule is not None else rule
            if action == "ALLOW" and kept is not None and unmodelled_fields(kept):
                continue  # fails closed: an ALLOW rule on a condition the twin cannot judge admits nothing
            if kept is not None or rule is None:
                name = rbac_policy_name(p.metadata.namespace, p.metadata.name, i)
                out.setdefault("policies", {})[name] = _policy(kept, p.metadata.namespace)
    if action != "ALLOW":
        out["action"] = _ENVOY_ACTIONS[action]
    return out


def _for_tcp(rule: AuthzRule, action: str) -> AuthzRule | None:
    """``rule`` on a TCP filter chain: as it is without HTTP-only fields; with them, left out of an ALLOW filter
    (istiod's ``Generate`` fails on them, so the rule admits nothing) and without them elsewhere (istiod skips
    their values: a DENY rule matches more)."""
    if not http_only_fields(rule):
        return rule
    if action == "ALLOW":
        return None
    to = [
        t.model_copy(update={"operation": t.operation.model_copy(update={key: [] for key in _HTTP_ONLY})})
        for t in rule.to
    ]
    return rule.model_copy(update={"to": to, "when": [c for c in rule.when if not c.key.startswith("request.")]})


def http_only_fields(rule: AuthzRule) -> list[str]:
    """The fields of ``rule`` a TCP filter chain cannot judge, as paths in the rule (``to[0].operation.paths``,
    ``when[1]``): hosts, methods, paths (and their ``not`` forms), ``request.*`` conditions. istiod's builder
    skips such an ALLOW rule on a TCP chain (its debug log: ``skipped rule ... on TCP filter chain``) and drops the
    fields from a DENY or AUDIT rule (see :func:`rbac_filters`)."""
    to = [
        f"to[{i}].operation.{_CAMEL.get(f, f)}"
        for i, t in enumerate(rule.to)
        for f in _HTTP_ONLY
        if getattr(t.operation, f)
    ]
    return to + [f"when[{i}]" for i, c in enumerate(rule.when) if c.key.startswith("request.")]


_CAMEL = {"not_hosts": "notHosts", "not_methods": "notMethods", "not_paths": "notPaths"}
_IDENTITY = {
    "principals": "principals",
    "not_principals": "notPrincipals",
    "namespaces": "namespaces",
    "not_namespaces": "notNamespaces",
    "service_accounts": "serviceAccounts",
    "not_service_accounts": "notServiceAccounts",
    "trust_domains": "trustDomains",
    "not_trust_domains": "notTrustDomains",
}
"""The ``from.source`` fields judged on the peer certificate's URI SAN, by their names in the YAML."""
_IDENTITY_WHEN = ("source.principal", "source.namespace", "source.serviceAccount", "source.trustDomain")


def address_fields(rule: AuthzRule) -> list[str]:
    """The fields of ``rule`` judged on the client's address, as paths in the rule (``from[0].source.ipBlocks``,
    ``when[1]``): ``ipBlocks``, ``remoteIpBlocks`` (and their ``not`` forms), ``source.ip`` and ``remote.ip``
    conditions."""
    return _fields(rule, _ADDRESS, _WHEN_ADDRESSES)


_ADDRESS = {
    "ip_blocks": "ipBlocks",
    "not_ip_blocks": "notIpBlocks",
    "remote_ip_blocks": "remoteIpBlocks",
    "not_remote_ip_blocks": "notRemoteIpBlocks",
}


def identity_fields(rule: AuthzRule) -> list[str]:
    """The fields of ``rule`` judged on the client certificate, as paths in the rule (``from[0].source.principals``,
    ``when[1]``): principals, namespaces, service accounts, trust domains (and their ``not`` forms), ``source.*``
    conditions on them. Where the proxy does not end TLS, no certificate reaches its RBAC filter: a field matches
    no connection, its ``not`` form every one."""
    return _fields(rule, _IDENTITY, _IDENTITY_WHEN)


def _fields(rule: AuthzRule, source: Mapping[str, str], when: Collection[str]) -> list[str]:
    """The paths in ``rule`` of its set ``from.source`` fields among ``source`` (model name -> YAML name) and of its
    ``when`` conditions on keys among ``when``."""
    out = [
        f"from[{i}].source.{camel}"
        for i, f in enumerate(rule.from_)
        for field, camel in source.items()
        if getattr(f.source, field)
    ]
    return out + [f"when[{j}]" for j, c in enumerate(rule.when) if c.key in when]


def _policy(rule: AuthzRule | None, namespace: str) -> dict[str, Any]:
    """One rule as istiod's ``model.New`` and ``Generate`` write it: an ``and`` per ``to`` (one ``any`` without),
    an ``and`` per ``from`` (likewise), the modelled ``when`` conditions appended to each of them. ``None`` (a
    policy without rules): istiod's policy that never matches. ``namespace``: the policy's, where a service
    account named without one lives."""
    if rule is None:
        return {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}
    when = [c for c in rule.when if c.modelled]
    more_rules = [
        m for c in when if c.key in _WHEN_PERMISSIONS for m in _field(c.values, c.not_values, _WHEN_PERMISSIONS[c.key])
    ]
    more_ids = [m for c in when if c.key not in _WHEN_PERMISSIONS for m in _when_principal(c, namespace)]
    permissions = [_and_rules(_operation(t.operation) + more_rules) for t in rule.to] or [_and_rules(more_rules)]
    principals = [_and_ids(_source(f.source, namespace) + more_ids) for f in rule.from_] or [_and_ids(more_ids)]
    return {"permissions": permissions, "principals": principals}


def _operation(op: AuthzOperation) -> list[dict[str, Any]]:
    """The matchers of one ``to.operation``, in istiod's order: hosts, methods, paths, ports."""
    return [
        *_field(op.hosts, op.not_hosts, _authority),
        *_field(op.methods, op.not_methods, _method),
        *_field(op.paths, op.not_paths, _url_path),
        *_field(op.ports, op.not_ports, _port),
    ]


def _source(src: AuthzSource, namespace: str) -> list[dict[str, Any]]:
    """The matchers of one ``from.source``, in istiod's order (see :func:`source_matchers`)."""
    return [m for _, m in source_matchers(src, namespace)]


def source_matchers(src: AuthzSource, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    """The RBAC principal of each field of one ``from.source``, by the field's name (``principals``,
    ``notPrincipals``), in istiod's order: principals, service accounts, trust domains, namespaces, remote IP
    blocks, IP blocks, each before its ``not`` form (``requestPrincipals`` are not modelled: :func:`_rules`).
    ``namespace``: the policy's, where a service account named without one lives."""
    fields: list[tuple[str, list[str], list[str], Callable[[str], dict[str, Any]]]] = [
        ("principals", src.principals, src.not_principals, _authenticated),
        ("serviceAccounts", src.service_accounts, src.not_service_accounts, _service_account(namespace)),
        ("trustDomains", src.trust_domains, src.not_trust_domains, _trust_domain),
        ("namespaces", src.namespaces, src.not_namespaces, _namespace),
        ("remoteIpBlocks", src.remote_ip_blocks, src.not_remote_ip_blocks, _cidr("remote_ip")),
        ("ipBlocks", src.ip_blocks, src.not_ip_blocks, _cidr("direct_remote_ip")),
    ]
    out: list[tuple[str, dict[str, Any]]] = []
    for name, values, not_values, make in fields:
        out += [(name, m) for m in _field(values, [], make, ids=True)]
        out += [(f"not{name[0].upper()}{name[1:]}", m) for m in _field([], not_values, make, ids=True)]
    return out


def _cidr(kind: str) -> Callable[[str], dict[str, Any]]:
    """An ``ipBlocks`` entry (``direct_remote_ip``: the address the connection comes from) or a ``remoteIpBlocks``
    one (``remote_ip``: the client's, after trusted ``X-Forwarded-For`` hops), as istiod's ``AddrStrToCidrRange``
    writes it: the address as given, the block's length (an address alone: all its bits)."""

    def make(value: str) -> dict[str, Any]:
        address, _, length = value.partition("/")
        bits = int(length) if length else ipaddress.ip_address(address).max_prefixlen
        return {kind: {"address_prefix": address, "prefix_len": bits}}

    return make


def _when_principal(cond: AuthzCondition, namespace: str) -> list[dict[str, Any]]:
    """A ``when`` condition on the peer or the request's headers: principals, as istiod puts them."""
    make: Callable[[str], dict[str, Any]]
    if cond.key == "source.namespace":
        make = _namespace
    elif cond.key == "source.principal":
        make = _authenticated
    elif cond.key == "source.serviceAccount":
        make = _service_account(namespace)
    elif cond.key == "source.trustDomain":
        make = _trust_domain
    elif cond.key in _WHEN_ADDRESSES:
        make = _cidr(_WHEN_ADDRESSES[cond.key])
    else:  # request.headers[<name>]
        name = cond.key.removeprefix("request.headers[").removesuffix("]")
        make = lambda v: {"header": _header(name, v)}  # noqa: E731
    return _field(cond.values, cond.not_values, make, ids=True)


def _field(
    values: list[str], not_values: list[str], make: Callable[[str], dict[str, Any]], *, ids: bool = False
) -> list[dict[str, Any]]:
    """One field: an or of its values, then a not of an or of its ``not`` values (istiod's ``rule.permission`` and
    ``rule.principal``); nothing for a field without either."""
    any_of, items, negate = ("or_ids", "ids", "not_id") if ids else ("or_rules", "rules", "not_rule")
    out: list[dict[str, Any]] = []
    if values:
        out.append({any_of: {items: [make(v) for v in values]}})
    if not_values:
        out.append({negate: {any_of: {items: [make(v) for v in not_values]}}})
    return out


def _and_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"and_rules": {"rules": rules or [{"any": True}]}}


def _and_ids(ids: list[dict[str, Any]]) -> dict[str, Any]:
    return {"and_ids": {"ids": ids or [{"any": True}]}}


def _authority(host: str) -> dict[str, Any]:
    """A ``hosts`` entry: the ``:authority`` header, case-insensitive; ``x:*`` a prefix, ``*.x`` a suffix, ``*``
    present (istiod's ``HostMatcher``)."""
    return {"header": _header(":authority", host, ignore_case=True)}


def _method(method: str) -> dict[str, Any]:
    """A ``methods`` entry: the ``:method`` header, case-sensitive (istiod's ``HeaderMatcher``)."""
    return {"header": _header(":method", method)}


def _header(name: str, value: str, *, ignore_case: bool = False) -> dict[str, Any]:
    """istiod's ``HeaderMatcher``/``HostMatcher``: ``*`` present, ``*x`` a suffix, ``x*`` a prefix, else exact."""
    if value == "*":
        return {"name": name, "present_match": True}
    if value.startswith("*"):
        match: dict[str, Any] = {"suffix": value[1:]}
    elif value.endswith("*"):
        match = {"prefix": value[:-1]}
    else:
        match = {"exact": value}
    return {"name": name, "string_match": {**match, "ignore_case": True} if ignore_case else match}


def _url_path(path: str) -> dict[str, Any]:
    """A ``paths`` entry: Envoy's ``url_path`` (the path without its query), istiod's ``StringMatcher``; a
    template a ``uri_template`` extension in Envoy's syntax, ``{*}`` written ``*`` and ``{**}`` ``**`` (istiod's
    ``sanitizePathTemplate``)."""
    if any(mark in path for mark in _PATH_TEMPLATE_MARKS):
        config = {"@type": URI_TEMPLATE_TYPE, "path_template": path.replace("{**}", "**").replace("{*}", "*")}
        return {"uri_template": {"name": "uri-template", "typed_config": config}}
    return {"url_path": {"path": _string(path)}}


def _port(port: str) -> dict[str, Any]:
    """A ``ports`` entry (or a ``destination.port`` value): the port the connection reached on the proxy (the
    parser refused any that is not a number, :func:`meshbridge.istio.authz.authz_warnings`)."""
    return {"destination_port": int(port)}


def requested_server_name(sni: str) -> dict[str, Any]:
    """A ``connection.sni`` value: the TLS SNI, istiod's ``StringMatcher``."""
    return {"requested_server_name": _string(sni)}


def _string(value: str, prefix: str = "") -> dict[str, Any]:
    """istiod's ``StringMatcherWithPrefix``: ``*`` any non-empty value, ``*x`` a suffix (a regex after ``prefix``),
    ``x*`` a prefix, else exact; ``prefix`` is put in front of the value."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.startswith("*"):
        return {"safe_regex": {"regex": prefix + ".*" + quote_meta(value[1:])}} if prefix else {"suffix": value[1:]}
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def literal_stars(values: list[str]) -> list[str]:
    """The values of ``values`` with a ``*`` istiod's matcher takes literally: only ``*`` alone, one leading ``*``
    (then the rest is literal, a trailing ``*`` included) or one trailing ``*`` is a wildcard
    (``StringMatcherWithPrefix``), so ``*/ns/egress/sa/*`` ends in a literal ``*`` and ``a/*/b`` holds one."""
    out = []
    for v in values:
        rest = v[1:] if v.startswith("*") else v[:-1] if v.endswith("*") else v
        if v != "*" and "*" in rest:
            out.append(v)
    return out


def _authenticated(principal: str) -> dict[str, Any]:
    """A ``principals`` entry: the peer certificate's URI SAN, ``spiffe://`` in front; ``*`` at one end a prefix or
    suffix, ``*`` alone any authenticated peer (another ``*`` is literal: :func:`literal_stars`)."""
    return {"authenticated": {"principal_name": _string(principal, SPIFFE_PREFIX)}}


def _namespace(namespace: str) -> dict[str, Any]:
    """A ``namespaces`` entry: the peer certificate's URI SAN holds ``/ns/<namespace>/`` (a ``*`` any characters)."""
    pattern = ".*".join(quote_meta(part) for part in namespace.split("*"))
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": f".*/ns/{pattern}/.*"}}}}


def _service_account(namespace: str) -> Callable[[str], dict[str, Any]]:
    """A ``serviceAccounts`` entry (``<namespace>/<name>``, or ``<name>`` in the policy's ``namespace``): the URI
    SAN's ``/ns/<namespace>/`` and ``/sa/<name>`` parts, as istiod's ``serviceAccountRegex`` writes them."""

    def make(value: str) -> dict[str, Any]:
        ns, _, sa = value.partition("/") if "/" in value else (namespace, "/", value)
        regex = f"spiffe://.+/ns/{quote_meta(ns)}/(.+/|)sa/{quote_meta(sa)}(/.+)?"
        return {"authenticated": {"principal_name": {"safe_regex": {"regex": regex}}}}

    return make


def _trust_domain(domain: str) -> dict[str, Any]:
    """A ``trustDomains`` entry: the URI SAN's trust domain; ``*`` any, one ``*`` inside any characters but ``/``."""
    if domain == "*":
        match: dict[str, Any] = {"prefix": SPIFFE_PREFIX}
    elif "*" not in domain:
        match = {"prefix": f"{SPIFFE_PREFIX}{domain}/"}
    else:
        before, _, after = domain.partition("*")
        match = {"safe_regex": {"regex": f"{SPIFFE_PREFIX}{quote_meta(before)}[^/]*{quote_meta(after)}/.*"}}
    return {"authenticated": {"principal_name": match}}


def quote_meta(text: str) -> str:
    """Go's ``regexp.QuoteMeta``: a backslash before each of ``\\.+*?()|[]{}^$``, as istiod escapes literals."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


_WHEN_ADDRESSES = {"source.ip": "direct_remote_ip", "remote.ip": "remote_ip"}
"""The ``when`` keys on the client's address, and the RBAC principal istiod makes of each."""
_WHEN_PERMISSIONS: dict[str, Callable[[str], dict[str, Any]]] = {
    "destination.port": _port,
    "connection.sni": requested_server_name,
}
"""The ``when`` keys istiod makes permissions of (the others that are modelled are principals)."""
