"""What the parser says about an AuthorizationPolicy beyond its unsupported fields (pure): the CUSTOM action and
the ``when`` keys the translation (:mod:`meshbridge.envoy.authz`) leaves out, each as a
:class:`~meshbridge.istio.config.ConfigWarning` that lint reports as MB002; ports that are not numbers, as errors.
"""

from __future__ import annotations

import ipaddress

from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import ConfigWarning
from meshbridge.istio.gatewayapi import GROUP as GATEWAY_API_GROUP
from meshbridge.istio.resources import AuthorizationPolicy, AuthzRule, PolicyTargetReference


def authz_warnings(policy: AuthorizationPolicy, source: str) -> list[ConfigWarning]:
    """A warning per part of ``policy`` that the twin and lint do not act on as istiod's proxy would.

    Args:
        policy: the validated policy.
        source: where it came from (file and document index).

    Raises:
        IstioConfigError: a ``ports``/``notPorts`` entry or a ``destination.port`` value that is not a port number,
            an ``ipBlocks``-like entry or ``source.ip``/``remote.ip`` value that is not an address or CIDR block
            (Istio's validation refuses them too).
    """
    _check_ports(policy, source)
    _check_addresses(policy, source)
    md = policy.metadata

    def warn(field: str, message: str) -> ConfigWarning:
        return ConfigWarning(source, "AuthorizationPolicy", md.namespace, md.name, field, message)

    spec = policy.spec
    out = []
    if spec.action == "CUSTOM":
        provider = spec.provider.name if spec.provider is not None else "(none)"
        out.append(
            warn(
                "spec.action",
                f"action CUSTOM is not modelled: istiod asks the ext_authz provider {provider} about the requests "
                "the rules match, and it may refuse them; the twin and lint admit them. Fix: judge the provider's "
                "answers apart, or use an ALLOW or DENY policy where the rule needs no external authorizer",
            )
        )
    refs = [("spec.targetRef", spec.target_ref)] if spec.target_ref is not None else []
    refs += [(f"spec.targetRefs[{i}]", r) for i, r in enumerate(spec.target_refs)]
    for field, ref in refs:
        if not names_a_gateway(ref):
            out.append(
                warn(
                    field,
                    f"a targetRef to {ref.kind or '(no kind)'} {ref.name} attaches the policy to a waypoint, which "
                    "meshbridge does not translate: the twin's own translation and lint leave it out. Fix: run the "
                    "twin on istiod's configuration (local up --translator istiod) to see it enforced",
                )
            )
    effect = _UNMODELLED_EFFECT.get(spec.action, _UNMODELLED_EFFECT["DENY"])
    for i, rule in enumerate(spec.rules):
        for field in unmodelled_fields(rule):
            what = f"when key {rule.when[int(field[5:-1])].key}" if field.startswith("when[") else field
            out.append(
                warn(
                    f"spec.rules[{i}].{field}",
                    f"{what} is not modelled: {effect}. Fix: check it by hand, or write it as from.source or "
                    "to.operation fields",
                )
            )
    return out


_UNMODELLED_EFFECT = {
    "ALLOW": "the twin and lint treat this ALLOW rule as matching no request (failing closed), so they may refuse "
    "what istiod's proxy admits, never the reverse",
    "DENY": "the twin and lint treat the condition as met (failing closed), so this rule refuses more than istiod's",
    "AUDIT": "the twin and lint leave the condition out, so this rule logs more than istiod's",
}
"""What the twin does with a rule that has a condition it does not model (:func:`unmodelled_fields`), by action."""


def unmodelled_fields(rule: AuthzRule) -> list[str]:
    """The conditions of ``rule`` the translation does not model, as paths in the rule
    (``from[0].source.requestPrincipals``, ``when[1]``): a JWT's request principals, ``when`` keys outside
    :data:`~meshbridge.istio.resources.AUTHZ_WHEN_KEYS`. The translation leaves an ALLOW rule with one out (it
    admits nothing) and drops them from a DENY or AUDIT rule (it matches more): never more permissive than
    istiod."""
    out = [
        f"from[{i}].source.{name}"
        for i, f in enumerate(rule.from_)
        for name, values in (
            ("requestPrincipals", f.source.request_principals),
            ("notRequestPrincipals", f.source.not_request_principals),
        )
        if values
    ]
    return out + [f"when[{j}]" for j, c in enumerate(rule.when) if not c.modelled]


def names_a_gateway(ref: PolicyTargetReference) -> bool:
    """Whether a policy's target reference names a Gateway API ``Gateway`` (istiod's ``matchesGroupKind``: the
    group is written out)."""
    return (ref.group, ref.kind) == (GATEWAY_API_GROUP, "Gateway")


def _check_addresses(policy: AuthorizationPolicy, source: str) -> None:
    """An ``ipBlocks``-like entry or a ``source.ip``/``remote.ip`` value must be an address or a CIDR block
    (istiod's ``AddrStrToCidrRange`` fails on anything else, and Istio's validation refuses it)."""
    md = policy.metadata
    for i, rule in enumerate(policy.spec.rules):
        fields = [
            (f"from[{j}].source.{name}", values)
            for j, f in enumerate(rule.from_)
            for name, values in (
                ("ipBlocks", f.source.ip_blocks),
                ("notIpBlocks", f.source.not_ip_blocks),
                ("remoteIpBlocks", f.source.remote_ip_blocks),
                ("notRemoteIpBlocks", f.source.not_remote_ip_blocks),
            )
        ]
        fields += [(f"when[{j}]", c.values + c.not_values) for j, c in enumerate(rule.when) if c.key in _IP_KEYS]
        for field, values in fields:
            bad = [v for v in values if not _is_block(v)]
            if bad:
                raise IstioConfigError(
                    f"{source}: AuthorizationPolicy {md.namespace}/{md.name}: spec.rules[{i}].{field}: {bad[0]!r} is "
                    "not an IP address or CIDR block. Fix: write one like 10.0.0.0/8 or 203.0.113.7"
                )


_IP_KEYS = ("source.ip", "remote.ip")


def _is_block(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _check_ports(policy: AuthorizationPolicy, source: str) -> None:
    md = policy.metadata
    for i, rule in enumerate(policy.spec.rules):
        fields = [
            (f"to[{j}].operation.ports", t.operation.ports + t.operation.not_ports) for j, t in enumerate(rule.to)
        ]
        fields += [
            (f"when[{j}]", c.values + c.not_values) for j, c in enumerate(rule.when) if c.key == "destination.port"
        ]
        for field, ports in fields:
            bad = [p for p in ports if not p.isdigit() or int(p) > 65535]
            if bad:
                raise IstioConfigError(
                    f"{source}: AuthorizationPolicy {md.namespace}/{md.name}: spec.rules[{i}].{field}: {bad[0]!r} is "
                    'not a port number. Fix: write the proxy\'s own port as digits in quotes, e.g. "8443"'
                )
