"""MB120: an AuthorizationPolicy rule with HTTP-only fields on a gateway's TCP filter chains (pure).

istiod builds a network RBAC filter (``envoy.filters.network.rbac``) before the TCP proxy of each TCP chain of a
gateway (a ``tcp`` server, TLS passed through or terminated to TCP) from the policies that select its pods. A
connection shows no Host, method, path or header there: istiod skips an ALLOW rule that names one (its debug log
says ``skipped rule ... on TCP filter chain``), so the rule admits no connection, and drops those fields from a
DENY rule, which then refuses more (:func:`meshbridge.envoy.authz.http_only_fields` names them, the translation
does the same). The simulator judges the filter (:func:`meshbridge.envoy.simulate.network_rbac_denial`).
"""

from __future__ import annotations

from collections.abc import Iterator

from meshbridge.envoy.authz import applies_to, dry_run, http_only_fields
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding
from meshbridge.lint.inputs import LintInput

_EFFECT = {
    "ALLOW": "istiod skips the rule there: it admits no connection on those ports",
    "DENY": "istiod drops those fields there: the rule refuses every connection its other fields match",
}


def check_tcp_chain_rules(inp: LintInput) -> Iterator[Finding]:
    """MB120 for each rule of an ALLOW or DENY policy with HTTP-only fields that selects a gateway with TCP
    chains (once per rule, naming the first such gateway and its TCP ports)."""
    seen: set[tuple[str, str, str, int]] = set()
    for mesh in inp.meshes:
        root = mesh.config.settings.root_namespace
        for proxy in mesh.routers:
            view = mesh.view(proxy)
            ports = sorted({c.port for c in view.chains if c.http is None and c.tcp_proxy is not None})
            if not ports:
                continue
            for policy in mesh.config.authorization_policies:
                action, md = policy.spec.action, policy.metadata
                if action not in _EFFECT or dry_run(policy) or not applies_to(policy, proxy, root):
                    continue
                for i, rule in enumerate(policy.spec.rules):
                    fields = http_only_fields(rule)
                    if not fields or (mesh.name, md.namespace, md.name, i) in seen:
                        continue
                    seen.add((mesh.name, md.namespace, md.name, i))
                    yield finding(
                        "MB120",
                        [mesh.ref("AuthorizationPolicy", md.namespace, md.name, f"spec.rules[{i}].{fields[0]}")],
                        f"{action} rule {i} names {', '.join(fields)}, which a TCP connection does not carry, and "
                        f"selects {view.name}, whose TCP chains on port {', '.join(map(str, ports))} have istiod's "
                        f"network RBAC filter: {_EFFECT[action]}",
                        "give the TCP traffic its own rule with only from, to.operation.ports and connection.sni "
                        "conditions, or narrow the policy's selector to gateways that serve only HTTP",
                    )


CHECKS = (check_tcp_chain_rules,)
