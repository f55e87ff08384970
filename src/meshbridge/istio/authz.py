"""What the parser says about an AuthorizationPolicy beyond its unsupported fields (pure): the CUSTOM action and
the ``when`` keys the translation (:mod:`meshbridge.envoy.authz`) leaves out, each as a
:class:`~meshbridge.istio.config.ConfigWarning` that lint reports as MB002; ports that are not numbers, as errors.
"""

from __future__ import annotations

from meshbridge.errors import IstioConfigError
from meshbridge.istio.config import ConfigWarning
from meshbridge.istio.gatewayapi import GROUP as GATEWAY_API_GROUP
from meshbridge.istio.resources import AuthorizationPolicy, PolicyTargetReference


def authz_warnings(policy: AuthorizationPolicy, source: str) -> list[ConfigWarning]:
    """A warning per part of ``policy`` that the twin and lint do not act on as istiod's proxy would.

    Args:
        policy: the validated policy.
        source: where it came from (file and document index).

    Raises:
        IstioConfigError: a ``ports``/``notPorts`` entry or a ``destination.port`` value that is not a port number
            (Istio's validation refuses it too).
    """
    _check_ports(policy, source)
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
    for i, rule in enumerate(spec.rules):
        for j, cond in enumerate(rule.when):
            if not cond.modelled:
                wider = {"ALLOW": "admits", "AUDIT": "logs"}.get(spec.action, "refuses")
                out.append(
                    warn(
                        f"spec.rules[{i}].when[{j}]",
                        f"when key {cond.key} is not modelled: the twin and lint leave this condition out, so the "
                        f"rule matches more requests than istiod's and the policy {wider} more. Fix: check it by "
                        "hand, or write it as from.source or to.operation fields",
                    )
                )
    return out


def names_a_gateway(ref: PolicyTargetReference) -> bool:
    """Whether a policy's target reference names a Gateway API ``Gateway`` (istiod's ``matchesGroupKind``: the
    group is written out)."""
    return (ref.group, ref.kind) == (GATEWAY_API_GROUP, "Gateway")


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
