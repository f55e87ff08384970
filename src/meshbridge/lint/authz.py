"""AuthorizationPolicy rules a gateway reads otherwise than they say (pure).

MB120: a rule with HTTP-only fields on a gateway's TCP filter chains.

istiod builds a network RBAC filter (``envoy.filters.network.rbac``) before the TCP proxy of each TCP chain of a
gateway (a ``tcp`` server, TLS passed through or terminated to TCP) from the policies that select its pods. A
connection shows no Host, method, path or header there: istiod skips an ALLOW rule that names one (its debug log
says ``skipped rule ... on TCP filter chain``), so the rule admits no connection, and drops those fields from a
DENY rule, which then refuses more (:func:`meshbridge.envoy.authz.http_only_fields` names them, the translation
does the same). The simulator judges the filter (:func:`meshbridge.envoy.simulate.network_rbac_denial`).

MB123: a rule judged on the client certificate (principals, namespaces, service accounts, trust domains) that can
only apply to a gateway's TCP chains that do not end TLS (a ``PASSTHROUGH`` server, a plain ``TCP`` one): its
ports and ``connection.sni`` name only those. The gateway never sees the certificate there (the TLS goes through
to the backend), so istiod's network RBAC filter matches no principal: the field never holds (its ``not`` form
always does). The simulator judges it so (:func:`meshbridge.envoy.simulate.simulate`, a chain without a
``DownstreamTlsContext``); the oracle case ``gateway-authorization-ip-blocks`` shows istiod's filter.

MB121: a rule's ``ports`` name a port of the gateway's Service whose pods listen on another (``targetPort``). The
RBAC filter compares the port the connection reached on the pod (Envoy's destination port, istiod's
``destination_port`` permission): 8443 for a request through the Service's 443, so a rule on ``"443"`` never
matches one.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshbridge.envoy.authz import applies_to, dry_run, http_only_fields, identity_fields
from meshbridge.envoy.simulate import sni_condition_matches
from meshbridge.envoy.view import ChainRef
from meshbridge.istio.resources import AuthorizationPolicy, AuthzRule
from meshbridge.istio.visibility import Proxy
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding
from meshbridge.lint.inputs import LintInput, MeshInput

_EFFECT = {
    "ALLOW": "istiod skips the rule there: it admits no connection on those ports",
    "DENY": "istiod drops those fields there: the rule refuses every connection its other fields match",
}


def check_tcp_chain_rules(inp: LintInput) -> Iterator[Finding]:
    """MB120 for each rule of an ALLOW or DENY policy with HTTP-only fields that selects a gateway with TCP
    chains (once per rule, naming the first such gateway and its TCP ports)."""
    seen: set[tuple[str, str, str, int]] = set()
    for mesh, proxy, policies in _enforced(inp):
        view = mesh.view(proxy)
        ports = sorted({c.port for c in view.chains if c.http is None and c.tcp_proxy is not None})
        if not ports:
            continue
        for policy in policies:
            action, md = policy.spec.action, policy.metadata
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
                    "give the TCP traffic its own rule with only from.source (principals and namespaces only "
                    "where the gateway ends TLS; ipBlocks or remoteIpBlocks where it passes TLS through), "
                    "to.operation.ports and connection.sni conditions, or narrow the policy's selector to "
                    "gateways that serve only HTTP",
                )


def _enforced(inp: LintInput) -> Iterator[tuple[MeshInput, Proxy, list[AuthorizationPolicy]]]:
    """Each gateway of the input with the enforced ALLOW and DENY policies that select it (a dry-run policy, a
    CUSTOM or AUDIT one, is left out), in the mesh's order."""
    for mesh in inp.meshes:
        root = mesh.config.settings.root_namespace
        for proxy in mesh.routers:
            policies = [
                policy
                for policy in mesh.config.authorization_policies
                if policy.spec.action in _EFFECT and not dry_run(policy) and applies_to(policy, proxy, root)
            ]
            yield mesh, proxy, policies


_BLIND_EFFECT = {
    ("ALLOW", False): "the field never holds, so the rule admits no connection",
    ("ALLOW", True): "the field always holds, so the rule admits every connection its other fields match",
    ("DENY", False): "the field never holds, so the rule refuses no connection",
    ("DENY", True): "the field always holds, so the rule refuses every connection its other fields match",
}
"""What an identity field does on a chain that sees no certificate, by action and whether it is a ``not`` form."""


def check_passthrough_identities(inp: LintInput) -> Iterator[Finding]:
    """MB123 for each rule of an enforced ALLOW or DENY policy that names an identity field and whose ports and
    ``connection.sni`` values leave only TCP chains of a gateway it selects that do not end TLS (once per rule)."""
    seen: set[tuple[str, str, str, int]] = set()
    for mesh, proxy, policies in _enforced(inp):
        view = mesh.view(proxy)
        for policy in policies:
            action, md = policy.spec.action, policy.metadata
            for i, rule in enumerate(policy.spec.rules):
                fields = identity_fields(rule)
                chains = _chains_of(rule, view.chains)
                if not fields or not chains or any(not _blind(c) for c in chains):
                    continue
                if (mesh.name, md.namespace, md.name, i) in seen:
                    continue
                seen.add((mesh.name, md.namespace, md.name, i))
                effect = _BLIND_EFFECT[action, _negative(rule, fields[0])]
                ports = ", ".join(sorted({str(c.port) for c in chains}))
                yield finding(
                    "MB123",
                    [mesh.ref("AuthorizationPolicy", md.namespace, md.name, f"spec.rules[{i}].{fields[0]}")],
                    f"{action} rule {i} names {', '.join(fields)}, judged on the client certificate, but its "
                    f"ports and SNI leave only chains of {view.name} on port {ports} that pass TLS through (or "
                    f"speak plain TCP): the gateway sees no certificate there: {effect}",
                    "judge the client by the address it connects from (from.source.ipBlocks, or remoteIpBlocks), "
                    "to.operation.ports and connection.sni; or end TLS at the gateway (mode MUTUAL) to judge "
                    "its certificate",
                )


def _chains_of(rule: AuthzRule, chains: list[ChainRef]) -> list[ChainRef]:
    """The TCP and HTTP chains ``rule`` may apply to: those on a port it names (``to.operation.ports``, a
    ``destination.port`` condition; any without), whose server names a ``connection.sni`` value matches (any
    without, or for a chain that matches any SNI)."""
    ports = (
        None
        if not rule.to or any(not t.operation.ports for t in rule.to)
        else {int(p) for t in rule.to for p in t.operation.ports}
    )
    for c in rule.when:
        if c.key == "destination.port" and c.values:
            named = {int(v) for v in c.values}
            ports = named if ports is None else ports & named
    snis = [v for c in rule.when if c.key == "connection.sni" for v in c.values]
    return [
        c
        for c in chains
        if (c.http is not None or c.tcp_proxy is not None)
        and (ports is None or c.port in ports)
        and (
            not snis or c.server_names is None or any(sni_condition_matches(v, n) for v in snis for n in c.server_names)
        )
    ]


def _blind(chain: ChainRef) -> bool:
    """A TCP chain that does not end TLS: no client certificate reaches its network RBAC filter."""
    return chain.http is None and chain.tcp_proxy is not None and chain.tls is None


def _negative(rule: AuthzRule, field: str) -> bool:
    """Whether ``field`` (a path of :func:`~meshbridge.envoy.authz.identity_fields`) is a ``not`` form."""
    if field.startswith("when["):
        cond = rule.when[int(field[5:-1])]
        return bool(cond.not_values) and not cond.values
    return field.rsplit(".", 1)[1].startswith("not")


def check_service_ports(inp: LintInput) -> Iterator[Finding]:
    """MB121 for each ``to.operation.ports``/``notPorts`` value of an enforced ALLOW or DENY rule that selects a
    gateway whose Service maps that port to another targetPort (and no port of its pods is that number)."""
    seen: set[tuple[str, str, str, str]] = set()
    for mesh, proxy, policies in _enforced(inp):
        svc = proxy.service
        if svc is None:
            continue
        targets = {p.port: p.target_port for p in svc.spec.ports if isinstance(p.target_port, int)}
        moved = {port: t for port, t in targets.items() if t != port and port not in targets.values()}
        for policy in policies:
            md = policy.metadata
            for at, value in _port_values(policy):
                n = int(value) if value.isdigit() else None
                if n not in moved or (mesh.name, md.namespace, md.name, at) in seen:
                    continue
                seen.add((mesh.name, md.namespace, md.name, at))
                field = at.rsplit(".", 1)[1]
                yield finding(
                    "MB121",
                    [mesh.ref("AuthorizationPolicy", md.namespace, md.name, at)],
                    f"{policy.spec.action} {at} names port {n} for {proxy.namespace}/{proxy.name}, whose "
                    f"Service {svc.metadata.namespace}/{svc.metadata.name} sends port {n} to targetPort "
                    f"{moved[n]}: the RBAC filter sees the pod's port, {moved[n]}, so {n} matches no request "
                    "through the Service",
                    f'write the pod\'s port: {field}: ["{moved[n]}"]',
                )


def _port_values(policy: AuthorizationPolicy) -> Iterator[tuple[str, str]]:
    """(field path, value) of every ``to.operation.ports`` and ``notPorts`` value of ``policy``'s rules."""
    for i, rule in enumerate(policy.spec.rules):
        for j, to in enumerate(rule.to):
            for field, values in (("ports", to.operation.ports), ("notPorts", to.operation.not_ports)):
                for value in values:
                    yield f"spec.rules[{i}].to[{j}].operation.{field}", value


CHECKS = (check_tcp_chain_rules, check_service_ports, check_passthrough_identities)
