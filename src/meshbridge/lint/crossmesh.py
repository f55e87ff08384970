"""MB3xx: both meshes as one graph (pure).

For every link (an importer's ServiceEntry and the exporter it reaches), lint follows one request the
way the two Envoys would handle it, reading both translations through :class:`~meshbridge.envoy.view.EnvoyView`.
The request is the one the importer's cluster sends (:func:`meshbridge.envoy.pathsim.upstream_request`); what the
exporter gateway does with it is asked of the simulator (:func:`meshbridge.envoy.simulate.simulate`, one
:class:`~meshbridge.envoy.pathsim.Hop`), whose result is mapped to a finding:

1. the importer proxy that routes to the exported host (normally the egress gateway) dials the cluster's
   endpoints (``MB305`` address) on a port the exporter's gateway Service must expose and map to a TLS
   listener that terminates the TLS (``MB304``; ``MB314``, a warning, when the chain for its SNI passes it through
   to the backend, Gateway tls mode PASSTHROUGH: :mod:`meshbridge.envoy.passthrough`);
2. its ClientHello carries the cluster's ``sni`` (or, with automatic SNI, the request's Host), which must
   select a filter chain of that listener that terminates TLS (``MB303``: ``NoFilterChain``, or a plain chain);
3. a MUTUAL chain wants a client certificate, which the cluster must send (``MB306``: ``ClientCertRequired``, or a
   cluster that originates ISTIO_MUTUAL, the mesh's own identity and root, not the bridge's; the
   walk goes on as if it had one);
4. each side's certificate must chain to the CA the other side is served (``MB308``, ``MB309``), carry
   the SANs the other side pins (``MB310``) and not be revoked by the CRLs served beside that CA (``MB311``);
5. the exporter's route configuration for that chain must have a virtual host with routes for the request's
   Host (``MB307``: ``NoRoute`` with no such virtual host), and with a spec, its RBAC filter (the exporter's
   AuthorizationPolicies) must admit a request sent with the importer egress gateway's identity: ``GET /`` or
   one its ALLOW rules name or a DENY rule exempts (``MB312``: ``RBACDenied`` on all; ``MB313``, an info, when
   only the named ones pass).

Secrets that are not served do not stop the walk (``MB205`` reports them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from meshbridge.envoy import sans
from meshbridge.envoy.authz import (
    address_fields,
    applies_to,
    dry_run,
    literal_stars,
    named_methods,
    named_requests,
    source_matchers,
    unsent_methods,
)
from meshbridge.envoy.gateway import resolve_port
from meshbridge.envoy.handshake import istio_mutual, istio_mutual_fix, istio_mutual_why
from meshbridge.envoy.names import SYSTEM_ROOTS, find_rbac_policy, parse_cluster_name
from meshbridge.envoy.passthrough import passthrough_chain, passthrough_fix, passthrough_why
from meshbridge.envoy.pathsim import Hop, upstream_request
from meshbridge.envoy.simulate import Request, principal_matches, simulate
from meshbridge.envoy.view import ChainRef, RouteRef, host_of, sds_names
from meshbridge.errors import PkiError
from meshbridge.istio.parse import secret_values
from meshbridge.istio.resources import SPIFFE_PREFIX, AuthorizationPolicy, DestinationRule, Gateway, Server
from meshbridge.istio.visibility import destination_rule, gateways_for, host_matches
from meshbridge.lint.bypass import bypassing_sidecars
from meshbridge.lint.certificates import Served, crl_error, served_leaf, served_trust
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import Link, LintInput, MeshInput
from meshbridge.lint.paths import misported_tls, replaced_tls, tls_path
from meshbridge.lint.routing import unresolved_endpoints
from meshbridge.lint.view import ProxyView
from meshbridge.pki.checks import CertFinding, check_revocation, served_verifies
from meshbridge.pki.identities import spiffe_id
from meshbridge.pki.x509 import CertBundle


@dataclass(frozen=True)
class Upstream:
    """One importer proxy's cluster toward an exported host."""

    mesh: MeshInput
    view: ProxyView
    cluster: str
    port: int
    subset: str
    routes: tuple[RouteRef, ...]

    @property
    def host_header(self) -> str:
        """The Host the proxy sends upstream: a route's host rewrite, else the request's (the exported host)."""
        for r in self.routes:
            if r.host_rewrite:
                return r.host_rewrite
        return ""


def _upstreams_by_host(mesh: MeshInput) -> dict[str, list[Upstream]]:
    out: dict[str, list[Upstream]] = {}
    for spec in mesh.proxies:
        view = mesh.view(spec.proxy)
        for cluster, routes in view.routed.items():
            parsed = parse_cluster_name(cluster)
            if parsed is None or cluster not in view.clusters:
                continue
            _, port, subset, host = parsed
            out.setdefault(host.lower(), []).append(Upstream(mesh, view, cluster, port, subset, tuple(routes)))
    return out


def _exporter_views(exporter: MeshInput, link: Link) -> list[ProxyView]:
    if link.exporter_proxy is not None:
        named = [
            p
            for p in exporter.routers
            if (p.namespace, p.name) == (link.exporter_proxy.namespace, link.exporter_proxy.name)
        ]
        if named:
            return [exporter.view(p) for p in named]
    serving = []
    for p in exporter.routers:
        for gw in gateways_for(exporter.config, p):
            if any(
                s.tls is not None and any(host_matches(h.split("/", 1)[-1], link.host) for h in s.hosts)
                for s in gw.spec.servers
            ):
                serving.append(p)
                break
    return [exporter.view(p) for p in serving or exporter.routers]


def check_links(inp: LintInput) -> Iterator[Finding]:
    """MB302–MB310 for every link, following one request from the importer to the exporter (not from an app's
    sidecar that sends it only because a VirtualService binds no sidecar: MB122 says so)."""
    upstreams_cache: dict[str, dict[str, list[Upstream]]] = {}
    misrouted: dict[str, set[tuple[str, str, int]]] = {}  # MB122: sidecars that should not send there at all
    seen: set[tuple[str, str, str, str]] = set()
    for link in inp.links:
        importer = inp.mesh(link.importer)
        if importer.name not in upstreams_cache:
            upstreams_cache[importer.name] = _upstreams_by_host(importer)
            misrouted[importer.name] = {(b.app, b.host, b.port) for b in bypassing_sidecars(inp, importer)}
        upstreams = [
            up
            for up in upstreams_cache[importer.name].get(link.host.lower(), [])
            if (up.view.name, link.host.lower(), up.port) not in misrouted[importer.name]
        ]
        exporter = next((m for m in inp.meshes if m.name == link.exporter), None)
        if exporter is None:
            yield finding(
                "MB302",
                [_se_ref(importer, link)],
                f"{link.host} is imported from mesh {link.exporter!r}, whose manifests are not in the input: the "
                "exporter side of the link (SNI, port, route, certificates) was not checked",
                f"add --mesh {link.exporter}=PATH to lint both sides",
            )
        for up in upstreams:
            for f in _follow(inp, link, up, exporter):
                key = (f.code, up.view.name, link.host, f.message)
                if key not in seen:
                    seen.add(key)
                    yield f


def _follow(inp: LintInput, link: Link, up: Upstream, exporter: MeshInput | None) -> Iterator[Finding]:
    if unresolved_endpoints(link.service_entry):
        return  # MB117: the endpoints are never resolved, so nothing past the address can be followed
    address = list(_address(link, up))
    yield from address
    if exporter is None or address:
        return
    host = up.host_header or link.host
    _, auto_san = up.view.auto_sni(up.cluster)
    views = _exporter_views(exporter, link)
    for ep_port in sorted({p for _, p in up.view.endpoints(up.cluster)}):
        x, target = _pick_gateway(views, ep_port)
        if x is None or target is None:
            yield _no_port(link, up, exporter, x, ep_port)
            continue
        tls_chains = x.tls_chains_on(target)
        req = upstream_request(up.view, up.cluster, target, host)
        passing = _passthrough(link, up, exporter, x, target, req)
        if passing is not None:
            yield passing
            continue
        if not tls_chains:
            yield _no_listener(link, up, exporter, x, ep_port, target, bool(x.chains_on(target)))
            continue
        if not req.tls:
            yield _plaintext(link, up, exporter, x, target, any(c.require_client_certificate for c in tls_chains))
            continue
        hop = _exporter_hop(link, up, x, req)
        chain = x.chain(target, hop.result.filter_chain) if hop.result.filter_chain is not None else None
        if istio_mutual(up.view, up.cluster):
            yield _mesh_identity(link, up, exporter, x, chain is not None and chain.tls is not None)
            continue
        if chain is None or chain.tls is None:
            yield _sni_mismatch(link, up, exporter, x, target, req.sni, tls_chains)
            continue
        if hop.result.error == "ClientCertRequired":
            yield _no_client_cert(link, up, exporter, x, chain)
            hop = _exporter_hop(link, up, x, replace(req, client_cert=True))  # to walk on past the handshake
        if _no_virtual_host(x, hop):
            yield _no_route(link, up, exporter, x, chain, host)
        refused = _refused_by_policy(inp, link, exporter, x, replace(req, client_cert=True))
        if refused is not None:
            yield refused
        common_i = (up.view.upstream_tls(up.cluster) or {})["common_tls_context"]
        yield from _certificates(inp, link, up, exporter, x, chain, common_i, req.sni if auto_san else None)


def _exporter_hop(link: Link, up: Upstream, x: ProxyView, req: Request) -> Hop:
    """What the exporter gateway ``x`` does with ``up``'s request, as the simulator says (unserved secrets left to
    MB205; the exporter's AuthorizationPolicy, its RBAC filter, not judged: the walk knows no client identity)."""
    return Hop(link.host, up.view.name, x.name, req, simulate(x, req, secrets=False, rbac=False))


def _no_virtual_host(x: ProxyView, hop: Hop) -> bool:
    """Whether ``hop`` stopped for want of a virtual host with routes for its Host (a route configuration it
    names, not an inline one: the route for another path is not lint's to judge)."""
    r = hop.result
    if r.error != "NoRoute" or r.route_config is None or x.route_config(r.route_config) is None:
        return False
    if r.virtual_host is None:
        return True
    vhosts = (x.route_config(r.route_config) or {}).get("virtual_hosts", [])
    return not any(vh.get("routes") for vh in vhosts if vh.get("name") == r.virtual_host)


# -- 1. address and port ---------------------------------------------------------------------------------


def _se_ref(mesh: MeshInput, link: Link, field: str = "") -> ObjectRef:
    se = link.service_entry
    return mesh.ref("ServiceEntry", se.metadata.namespace, se.metadata.name, field)


def _address(link: Link, up: Upstream) -> Iterator[Finding]:
    se = link.service_entry
    mesh = up.mesh
    if not se.spec.endpoints:
        yield finding(
            "MB305",
            [_se_ref(mesh, link, "spec.endpoints")],
            f"the ServiceEntry for {link.host} has no endpoints, so {up.view.name} dials {link.host} itself, a name "
            "that exists only inside the mesh"
            + (f"; the exporter gateway is at {link.expected_address}" if link.expected_address else ""),
            f"add endpoints: [{{address: {link.expected_address or '<exporter gateway load-balancer address>'}, "
            "ports: {<port name>: 443}}]",
        )
        return
    if link.expected_address:
        eps = up.view.endpoints(up.cluster)
        wrong = sorted({a for a, _ in eps if a != link.expected_address})
        if wrong:
            yield finding(
                "MB305",
                [_se_ref(mesh, link, "spec.endpoints[0].address")],
                f"{up.view.name} dials {', '.join(wrong)} for {link.host}, but the ingress gateway of mesh "
                f"{link.exporter!r} is at {link.expected_address}",
                f"set the endpoint address to {link.expected_address}",
            )


def _pick_gateway(views: list[ProxyView], port: int) -> tuple[ProxyView | None, int | None]:
    """The exporter gateway whose Service exposes ``port``, and the listener port it maps to."""
    for v in views:
        svc = v.proxy.service
        if svc is None:
            return v, port
        for p in svc.spec.ports:
            if p.port == port:
                return v, resolve_port(v.proxy, port)
    return (views[0] if views else None), None


def _no_port(link: Link, up: Upstream, exporter: MeshInput, x: ProxyView | None, port: int) -> Finding:
    svc = x.proxy.service if x is not None else None
    ports = sorted(p.port for p in svc.spec.ports) if svc is not None else []
    objects = [_se_ref(up.mesh, link, "spec.endpoints[0].ports")]
    if svc is not None:
        objects.append(exporter.ref("Service", svc.metadata.namespace, svc.metadata.name, "spec.ports"))
    stray = _stray_port_keys(link)
    if stray is not None:
        return finding(
            "MB304",
            objects,
            f"{up.view.name} dials port {port} of the exporter gateway for {link.host}, but its Service exposes "
            f"{ports}; {stray[0]}",
            stray[1],
            symptom="importer: 503 UF (connection refused or timed out)",
        )
    return finding(
        "MB304",
        objects,
        f"{up.view.name} dials port {port} of the exporter gateway for {link.host}, but its Service exposes {ports}",
        f"point the endpoint at a port the exporter gateway Service exposes ({', '.join(map(str, ports)) or 'none'}), "
        "normally 443; the port is keyed by the ServiceEntry port's name (endpoints[].ports.<name>)",
        symptom="importer: 503 UF (connection refused or timed out)",
    )


def _no_listener(
    link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, port: int, target: int, plain: bool
) -> Finding:
    svc = x.proxy.service
    objects = [_se_ref(up.mesh, link, "spec.endpoints[0].ports")]
    if svc is not None:
        objects.append(exporter.ref("Service", svc.metadata.namespace, svc.metadata.name, "spec.ports"))
    why = (
        f"the listener on {target} is plain HTTP, so the importer's TLS handshake fails (WRONG_VERSION_NUMBER)"
        if plain
        else f"no Gateway server of {x.name} listens there (no listener on {target})"
    )
    message = f"{up.view.name} dials port {port} of {x.name} for {link.host}, which the Service maps to {target}: {why}"
    stray = _stray_port_keys(link)
    if stray is not None:
        return finding("MB304", objects, f"{message}; {stray[0]}", stray[1])
    return finding(
        "MB304",
        objects,
        message,
        f"give the exporter Gateway a MUTUAL server on port {port} for {link.host}, or dial the port of that server",
    )


def _passthrough(
    link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, target: int, req: Request
) -> Finding | None:
    """The finding on ``x``'s listener ``target`` when it has chains that pass TLS through (Gateway tls mode
    PASSTHROUGH) and no chain that terminates it for ``req``: MB314 when ``req``'s SNI selects one (a warning: lint
    cannot see whether the backend terminates the mutual TLS, which makes the path work)
    (:mod:`meshbridge.envoy.passthrough`), else what a chain-less listener gets (``MB306`` plain text, ``MB303`` SNI);
    ``None`` when it has none, or a terminating chain may take ``req``."""
    chains = [c for c in x.chains_on(target) if passthrough_chain(x, target, c.index) is not None]
    if not chains:
        return None
    if not req.tls:
        return None if x.tls_chains_on(target) else _plaintext(link, up, exporter, x, target, False)
    chain = passthrough_chain(x, target, _exporter_hop(link, up, x, req).result.filter_chain)
    if chain is None:
        return None if x.tls_chains_on(target) else _sni_mismatch(link, up, exporter, x, target, req.sni, chains)
    return finding(
        "MB314",
        [_se_ref(up.mesh, link, "spec.endpoints[0].ports"), *_server_refs(exporter, x, chain, ".tls.mode")],
        f"{up.view.name} originates {'mutual ' if req.client_cert else ''}TLS to {link.host} on {x.name}'s "
        f"listener {target}, but {passthrough_why(x.name, chain)}",
        passthrough_fix(link.host),
        symptom="importer: 503 UF unless the backend terminates the mutual TLS (CERTIFICATE_VERIFY_FAILED from a "
        "certificate it does not trust, WRONG_VERSION_NUMBER from a plain-text backend)",
    )


def _stray_port_keys(link: Link) -> tuple[str, str] | None:
    """(why, fix) when an endpoint's ``ports`` key names no port of the ServiceEntry: Istio then dials the
    ServiceEntry port's own number (and its validation refuses the entry: "endpoint port N is not defined by
    the service entry")."""
    se = link.service_entry
    names = [p.name for p in se.spec.ports]
    for i, e in enumerate(se.spec.endpoints):
        stray = {k: v for k, v in e.ports.items() if k not in names}
        if not stray or not names:
            continue
        key, number = next(iter(stray.items()))
        rename = names[0] if len(names) == 1 else f"<one of {', '.join(names)}>"
        return (
            f"endpoints[{i}].ports key {key!r} names no port of the ServiceEntry (ports: {', '.join(names)}), so "
            f"its {number} is ignored and the ServiceEntry port's own number is dialled (Istio's validation also "
            f"refuses it: 'endpoint port {number} is not defined by the service entry')",
            f"rename the key to the ServiceEntry port's name: endpoints[{i}].ports: {{{rename}: {number}}}",
        )
    return None


def _plaintext(link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, target: int, mutual: bool) -> Finding:
    ref = _dr_ref(up, link)
    tls = f"tls: {{mode: MUTUAL, credentialName: <Secret>, sni: {link.host}}}"
    message = f"{up.view.name} sends {up.cluster} in plain text, but {x.name} expects TLS on {target}" + (
        " with a client certificate (MUTUAL)" if mutual else ""
    )
    if ref.kind == "DestinationRule" and replaced_tls(ref.field):
        return finding(
            "MB306",
            [ref],
            f"{message}: DestinationRule {ref.namespace}/{ref.name} {ref.field} (port {up.port}) sets no tls, and a "
            "port-level setting replaces the policy above it whole (istiod's MergeTrafficPolicy), so the "
            "top-level tls does not apply to this port",
            f"add {tls} to {ref.field}",
            symptom="exporter: NR filter_chain_not_found (no SNI in plain text); importer: 503 UC/UF",
        )
    first = _dr_of(up) if ref.kind == "DestinationRule" else None
    misported = misported_tls(first, up.port, up.subset or None) if first is not None else None
    if misported is not None:
        entry, number = misported
        return finding(
            "MB306",
            [ref.at(f"{entry}.port.number")],
            f"{message}: DestinationRule {ref.namespace}/{ref.name} {entry} names port {number}, not the cluster's "
            f"port {up.port}, so its tls does not apply (and {ref.field} is not set)",
            f"set {entry}.port.number: {up.port} (the ServiceEntry port {link.host} is dialled on)",
            symptom="exporter: NR filter_chain_not_found (no SNI in plain text); importer: 503 UC/UF",
        )
    return finding(
        "MB306",
        [ref],
        message,
        f"add a DestinationRule for {link.host} port {up.port} with {tls} that applies to {up.view.name}",
        symptom="exporter: NR filter_chain_not_found (no SNI in plain text); importer: 503 UC/UF",
    )


def _no_client_cert(link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, chain: ChainRef) -> Finding:
    return finding(
        "MB306",
        [_dr_ref(up, link, ".mode"), *_server_refs(exporter, x, chain, ".tls.mode")],
        f"{x.name} requires a client certificate for {link.host} (MUTUAL), but {up.view.name} originates TLS "
        "without one (mode SIMPLE, or MUTUAL without a credential)",
        "set the importer's DestinationRule tls to mode: MUTUAL with credentialName: <the egress gateway Secret>",
    )


def _mesh_identity(link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, matched: bool) -> Finding:
    """MB306 on ``up``'s cluster originating ISTIO_MUTUAL to the exporter (``matched``: its SNI selects a TLS chain of
    ``x``), in the words of the path check (:func:`meshbridge.envoy.handshake.istio_mutual_why`)."""
    ref = _dr_ref(up, link)
    where = f"DestinationRule {ref.namespace}/{ref.name} {ref.field}" if ref.kind == "DestinationRule" else ref.field
    port_level = "portLevelSettings[" in where
    replaced = " (it replaces the top-level tls whole, istiod's MergeTrafficPolicy)" if port_level else ""
    return finding(
        "MB306",
        [ref],
        f"{where} (port {up.port}) says ISTIO_MUTUAL{replaced}, but {x.name} of mesh {exporter.name!r} expects the "
        f"bridge's client certificate: {istio_mutual_why(up.view.name, up.view, up.cluster, x.name, matched)}",
        istio_mutual_fix(where if ref.kind == "DestinationRule" else f"the tls of a DestinationRule for {link.host}"),
        symptom="importer: 503 UF (URX,UF), CERTIFICATE_VERIFY_FAILED unable_to_get_local_issuer_certificate, or a "
        "reset when its SNI selects no chain of the exporter",
    )


# -- 2. SNI ----------------------------------------------------------------------------------------------


def _sni_mismatch(
    link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, target: int, sni: str | None, chains: list[ChainRef]
) -> Finding:
    hosts = sorted({n for c in chains for n in c.server_names or ()})
    if sni is None:
        why = (
            "the importer sends no SNI: its DestinationRule sets no sni and Istio "
            f"{up.mesh.config.settings.istio_version} has no automatic SNI (from 1.21)"
        )
    else:
        why = f"the importer sends SNI {sni!r}"
    return finding(
        "MB303",
        [_dr_ref(up, link, ".sni"), *_server_refs_for_hosts(exporter, x, target)],
        f"{why}, and the exporter listener {target} of {x.name} only has chains for {hosts}",
        f"set the importer's DestinationRule tls.sni to {_sni_fix(link.host, hosts)} "
        "(one of the exporter Gateway's server hosts)",
    )


def _sni_fix(host: str, hosts: list[str]) -> str:
    if not hosts or any(host_matches(h, host) for h in hosts):
        return host
    return hosts[0]


# -- 3. the exporter's route -----------------------------------------------------------------------------


def _no_route(link: Link, up: Upstream, exporter: MeshInput, x: ProxyView, chain: ChainRef, host: str) -> Finding:
    return finding(
        "MB307",
        _server_refs(exporter, x, chain, ".hosts"),
        f"{up.view.name} sends Host {host}; route configuration {chain.route_config} of {x.name} has no virtual "
        f"host with routes for it",
        f"bind a VirtualService with hosts: [{host}] to the exporter Gateway (spec.gateways) and route it to the "
        "backend; check exportTo against the gateway pods' namespace",
    )


def _refused_by_policy(inp: LintInput, link: Link, exporter: MeshInput, x: ProxyView, req: Request) -> Finding | None:
    """MB312: the exporter's RBAC filter (its AuthorizationPolicies) refuses every request an importer the spec
    lists for the export could send with the importer egress gateway's identity (only with a spec: it names it):
    ``GET /`` and each request the ALLOW rules name, or a DENY rule's ``notPaths``/``notMethods`` exempt
    (:func:`~meshbridge.envoy.authz.named_requests`). MB313 when ``GET /`` is refused and some of the others are
    admitted: those alone reach the export. The policy whose rule refused ``GET /`` is the finding's first object."""
    mesh = inp.spec.spec.meshes.get(link.importer) if inp.spec is not None and link.export else None
    if mesh is None or mesh.egress_gateway is None:
        return None
    identity = spiffe_id(mesh.trust_domain, mesh.egress_gateway)
    req = replace(req, principal=identity)
    result = simulate(x, req, secrets=False)
    if result.error != "RBACDenied":
        return None
    root = exporter.config.settings.root_namespace
    policies = [p for p in exporter.config.authorization_policies if applies_to(p, x.proxy, root)]
    refs = [
        exporter.ref("AuthorizationPolicy", p.metadata.namespace, p.metadata.name, "spec.rules")
        for p in _refusing_first(policies, result.detail)
    ]
    named = [replace(req, method=m, path=path, headers=h) for m, path, h in named_requests(policies)]
    named = [n for n in named if (n.method, n.path, n.headers) != (req.method, req.path, req.headers)]
    admitted = [n for n in named if simulate(x, n, secrets=False).error != "RBACDenied"]
    who = f"{identity.removeprefix(SPIFFE_PREFIX)} (mesh {link.importer}, an importer of export {link.export})"
    if admitted:
        return finding(
            "MB313",
            refs,
            f"{x.name} admits {who} asking for Host {req.host} only on {_described(admitted)}; "
            f"{req.method} {req.path}{_without_headers(req, admitted)} is refused: {result.detail}",
            "nothing, if the importer's apps call only those; else admit the others too (to.operation.paths and "
            "methods); 'meshbridge verify --path PATH -H NAME:VALUE' checks the bridge with one they admit",
        )
    tried = f" (nor {_described(named)}, which its rules name)" if named else ""
    tried += _excluded_by(policies, req) + _unknown_address(policies)
    unsent = unsent_methods(named_methods(policies))
    if unsent:
        tried += (
            f"; its rules name methods {', '.join(unsent)}, which no client sends: Envoy compares :method exactly "
            f"and clients send {', '.join(m.upper() for m in unsent)}"
        )
    return finding(
        "MB312",
        refs,
        f"{x.name} refuses {who} asking for Host {req.host}: {result.detail}{tried}",
        f"admit it: a rule with from.source.principals [{identity.removeprefix(SPIFFE_PREFIX)}] and "
        f"to.operation.hosts [{link.host}, '{link.host}:*'] ('meshbridge render --mesh {link.exporter}' prints it), "
        "and no DENY rule that matches it",
    )


def _excluded_by(policies: list[AuthorizationPolicy], req: Request) -> str:
    """What MB312 adds to name the ``from.source`` field of each enforced ALLOW rule that excludes ``req``'s
    identity (the first of each ``from`` entry that does not match it, as the RBAC filter judges it; address blocks
    apart, :func:`_unknown_address`), and the principals whose ``*`` istiod reads literally. Empty when none."""
    found: list[str] = []
    for p in policies:
        if p.spec.action != "ALLOW" or dry_run(p):
            continue
        for i, rule in enumerate(p.spec.rules):
            for j, f in enumerate(rule.from_):
                field = next(
                    (n for n, m in source_matchers(f.source, p.metadata.namespace) if not principal_matches(m, req)),
                    None,
                )
                if field is None or field.endswith(("IpBlocks", "ipBlocks")):
                    continue
                at = f"{p.metadata.namespace}/{p.metadata.name} spec.rules[{i}].from[{j}].source.{field}"
                values = f.source.principals if field == "principals" else []
                stars = literal_stars(values) if field == "principals" else []
                found.append(at + (f" ({_literal(stars)})" if stars else ""))
    return f"; {', '.join(found[:3])} excludes it" if found else ""


def _literal(values: list[str]) -> str:
    """Why the principals ``values`` match less than they seem to (see :func:`_excluded_by`)."""
    named = ", ".join(repr(v) for v in values)
    return (
        f"{named}: Istio reads a '*' as a wildcard only alone or at one end, once, so the other '*' matches only "
        "a '*' in the certificate's SAN"
    )


def _unknown_address(policies: list[AuthorizationPolicy]) -> str:
    """What MB312 adds when ``policies`` judge the client's address, which lint cannot know (the importer's egress
    gateway connects from its cluster's NAT or node address): the simulation asked from an address no block names,
    so a rule on one admitted nothing there. Empty when none does."""
    fields = [
        f"{p.metadata.namespace}/{p.metadata.name} spec.rules[{i}].{f}"
        for p in policies
        if not dry_run(p)
        for i, rule in enumerate(p.spec.rules)
        for f in address_fields(rule)
    ]
    if not fields:
        return ""
    return (
        f"; lint asked from an address no block names, as it cannot know the one the importer's egress gateway "
        f"connects from, and {', '.join(fields)} judges it: check the importer's egress address is inside it "
        "('meshbridge local up' judges the twin's, 127.0.0.1)"
    )


def _refusing_first(policies: list[AuthorizationPolicy], detail: str) -> list[AuthorizationPolicy]:
    """``policies`` with the one whose rule refused the request first: the simulation's ``detail`` names it as its
    RBAC policy (``DENY policy ns[<namespace>]-policy[<name>]-rule[<index>] matches``); as they are otherwise."""
    named = find_rbac_policy(detail)
    first = [p for p in policies if (p.metadata.namespace, p.metadata.name) == named]
    return first + [p for p in policies if p not in first]


def _without_headers(refused: Request, admitted: list[Request]) -> str:
    """`` without those headers`` when requests admitted carry headers the refused one lacks, else ``""``."""
    return " without those headers" if any(n.headers for n in admitted) and not refused.headers else ""


def _described(requests: list[Request]) -> str:
    """``GET /hello-world, POST /api/`` (with ``header`` values when a rule names them)."""
    return ", ".join(f"{r.method} {r.path}" + "".join(f" with {k}: {v}" for k, v in r.headers) for r in requests)


# -- 4. certificates ---------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _revocation(chain_pem: bytes, trust_pem: bytes, crl_pem: bytes, mesh: str) -> tuple[CertFinding, ...]:
    """``certs check``'s revocation rule on what the proxies are served; nothing when the CRLs are unreadable
    (``MB401`` reports them)."""
    if crl_error(crl_pem) is not None:
        return ()
    return tuple(check_revocation("", CertBundle(chain_pem), trust_pem, crl_pem, mesh=mesh))


def _revoked(s: Served, trust: Served, holder: MeshInput, what: str, symptom: str = "") -> Iterator[Finding]:
    """MB311: ``s``, served to ``holder``'s proxy, is revoked by the CRLs ``trust`` has beside it (the peer's)."""
    if not trust.crl_pem or not trust.certs:
        return
    for f in _revocation(s.pem, trust.pem, trust.crl_pem, holder.name):
        yield finding("MB311", [s.ref, trust.crl_ref], f"{what}: {f.problem}", f.fix, symptom)


def _sans(s: Served) -> frozenset[str]:
    """The SANs ``s``'s leaf carries, of every type a pin can name (:func:`meshbridge.envoy.sans.identity`)."""
    return frozenset(sans.identity(s.pem))


def _certificates(
    inp: LintInput,
    link: Link,
    up: Upstream,
    exporter: MeshInput,
    x: ProxyView,
    chain: ChainRef,
    common_i: dict[str, Any],
    auto_san: str | None,
) -> Iterator[Finding]:
    assert chain.tls is not None
    certs_i, ca_i = sds_names(common_i)
    common_x = chain.tls["common_tls_context"]
    certs_x, ca_x = sds_names(common_x)
    client = served_leaf(up.mesh, up.view, certs_i[0]) if certs_i else None
    server = served_leaf(exporter, x, certs_x[0]) if certs_x else None
    itrust = served_trust(up.mesh, up.view, ca_i) if ca_i else None
    xtrust = served_trust(exporter, x, ca_x) if ca_x else None
    if client and xtrust and client.certs and xtrust.certs and chain.require_client_certificate:
        why = served_verifies(client.pem, xtrust.pem, inp.now, "client")
        if why:
            yield finding(
                "MB308",
                [client.ref, xtrust.ref],
                f"the client certificate of {up.view.name} ({client.certs[0].subject.rfc4514_string()}) does not "
                f"chain to the CA {x.name} trusts for {link.host}: {why}",
                f"put the CA that issued the client certificate into the exporter's {xtrust.ref.name} "
                f"({xtrust.ref.field}), or issue the client certificate from it",
            )
        yield from _revoked(
            client,
            xtrust,
            up.mesh,
            f"the client certificate of {up.view.name} ({client.certs[0].subject.rfc4514_string()}), which {x.name} "
            f"checks for {link.host} against the CRLs of its {xtrust.ref.name}",
        )
    if server and server.certs:
        pins_i = sans.matchers(common_i) + sans.exact([auto_san] if auto_san else [])
        yield from _server_certificate(inp, link, up, exporter, x, server, (itrust, ca_i), pins_i)
    pins_x = sans.shown(sans.matchers(common_x))
    if (
        client
        and client.certs
        and chain.require_client_certificate
        and not sans.accepted(sans.matchers(common_x), client.pem)
    ):
        yield finding(
            "MB310",
            [client.ref, *_server_refs(exporter, x, chain, ".tls.subjectAltNames")],
            f"{x.name} pins client SAN(s) {pins_x}, but the client certificate of {up.view.name} has "
            f"{sorted(_sans(client)) or 'no SAN (CN only)'}",
            _pin_fix(client, pins_x[0]),
        )


def _pin_fix(client: Served, pinned: str) -> str:
    """MB310's fix when the exporter pins ``pinned``: first correct the pin to the identity the client certificate
    carries (its URI SAN before a DNS one), then reissue the certificate with the pinned one; only the latter when
    it carries no SAN."""
    reissue = f"reissue the importer's client certificate with URI:{pinned}"
    carried = sorted(_sans(client), key=lambda san: (not san.startswith("spiffe://"), san))
    if not carried:
        return f"{reissue} (it carries no SAN a pin could name)"
    return f"correct the pin to the certificate's identity (tls.subjectAltNames: [{carried[0]}]), or {reissue}"


def _server_certificate(
    inp: LintInput,
    link: Link,
    up: Upstream,
    exporter: MeshInput,
    x: ProxyView,
    server: Served,
    trust: tuple[Served | None, str | None],
    pins: list[dict[str, Any]],
) -> Iterator[Finding]:
    """The exporter's server certificate as the importer checks it: against the CAs it trusts (``trust``: what its
    egress serves and their SDS names; MB309), their CRLs, and the SANs it pins (MB310)."""
    itrust, ca_i = trust
    if itrust is not None and itrust.certs:
        why = served_verifies(server.pem, itrust.pem, inp.now, "server")
        if why:
            yield finding(
                "MB309",
                [server.ref, itrust.ref],
                f"the server certificate of {x.name} ({server.certs[0].subject.rfc4514_string()}) does not chain "
                f"to the CA {up.view.name} trusts: {why}",
                f"put the CA that issued the exporter's certificate into the importer's {itrust.ref.name} "
                f"({itrust.ref.field})",
            )
        yield from _revoked(
            server,
            itrust,
            exporter,
            f"the server certificate of {x.name} ({server.certs[0].subject.rfc4514_string()}), which "
            f"{up.view.name} checks against the CRLs of its {itrust.ref.name}",
            "the importer refuses the exporter's certificate (certificate revoked): the importer's egress "
            "answers 503 UF",
        )
    elif ca_i == SYSTEM_ROOTS and _private(inp, server):
        yield finding(
            "MB309",
            [server.ref, _dr_ref(up, link, ".credentialName")],
            f"{up.view.name} verifies {x.name} against the OS CA bundle (no credentialName CA), but the "
            f"exporter's certificate ({server.certs[0].subject.rfc4514_string()}) comes from a private CA",
            "set the DestinationRule's credentialName to a Secret whose cacert is the exporter's CA",
        )
    if not sans.accepted(pins, server.pem):
        shown = sans.shown(pins)
        yield finding(
            "MB310",
            [server.ref, _dr_ref(up, link, ".subjectAltNames")],
            f"{up.view.name} pins SAN(s) {shown} for {link.host}, but the exporter's certificate has "
            f"{sorted(_sans(server)) or 'no SAN (CN only)'}",
            f"reissue the exporter's server certificate with DNS:{shown[0]}, or pin a SAN it carries",
        )


def _private(inp: LintInput, server: Served) -> bool:
    """A self-signed leaf, or one issued by a CA some mesh of the input trusts (in a Secret, or a file given for a
    path in the pods): not in an OS bundle."""
    leaf = server.certs[0]
    if leaf.issuer == leaf.subject:
        return True
    for mesh in inp.meshes:
        bundles = [secret_values(s).get(key) for s in mesh.config.secrets for key in ("cacert", "ca.crt")]
        bundles += [f.data for f in mesh.files.values()]
        if any(data and _chains_to(server.pem, data, inp.now) for data in bundles):
            return True
    return False


def _chains_to(chain_pem: bytes, trust_pem: bytes, now: dt.datetime) -> bool:
    """Whether a client trusting ``trust_pem`` accepts the server chain ``chain_pem`` (``False`` when either is
    unreadable)."""
    try:
        return served_verifies(chain_pem, trust_pem, now, "server") is None
    except PkiError:  # MB401 reports an unreadable certificate or CA bundle
        return False


# -- object references ---------------------------------------------------------------------------------


def _dr_of(up: Upstream) -> DestinationRule | None:
    """The importer's DestinationRule for the up's cluster (the first of a merged rule), if any applies."""
    svc = up.mesh.find(up.view.proxy, host_of(up.cluster))
    dr = destination_rule(up.mesh.config, up.view.proxy, svc) if svc is not None else None
    return dr.first if dr is not None else None


def _dr_ref(up: Upstream, link: Link, suffix: str = "") -> ObjectRef:
    """The importer's DestinationRule for the up's cluster (the ServiceEntry when no rule applies)."""
    first = _dr_of(up)
    if first is None:
        return _se_ref(up.mesh, link)
    return up.mesh.ref(
        "DestinationRule",
        first.metadata.namespace,
        first.metadata.name,
        tls_path(first, up.port, up.subset or None) + suffix,
    )


def _server_refs(exporter: MeshInput, x: ProxyView, chain: ChainRef, suffix: str) -> list[ObjectRef]:
    """The exporter Gateway server(s) behind a filter chain (by port and hosts)."""
    out = []
    names = set(chain.server_names or ())
    for gw, i, s in _servers(exporter, x):
        if resolve_port(x.proxy, s.port.number) != chain.port:
            continue
        hosts = {h.split("/", 1)[-1] for h in s.hosts}
        if (not names and "*" in hosts) or (names and hosts & names):
            out.append(exporter.ref("Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}]{suffix}"))
    return out[:1]


def _server_refs_for_hosts(exporter: MeshInput, x: ProxyView, target: int) -> list[ObjectRef]:
    for gw, i, s in _servers(exporter, x):
        if resolve_port(x.proxy, s.port.number) == target and s.tls is not None:
            return [exporter.ref("Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}].hosts")]
    return []


def _servers(exporter: MeshInput, x: ProxyView) -> Iterator[tuple[Gateway, int, Server]]:
    for gw in gateways_for(exporter.config, x.proxy):
        for i, s in enumerate(gw.spec.servers):
            yield gw, i, s


# -- MB302: mutual-TLS upstreams that reach no exporter -----------------------------------------------


def check_unmatched_upstreams(inp: LintInput) -> Iterator[Finding]:
    """MB302: a gateway originates mutual TLS toward a host that no link explains (the far side is unknown)."""
    for mesh in inp.meshes:
        linked = {link.host.lower() for link in inp.links if link.importer == mesh.name}
        seen: set[str] = set()
        for proxy in mesh.routers:
            view = mesh.view(proxy)
            for cluster in view.routed:
                tls = view.upstream_tls(cluster)
                parsed = parse_cluster_name(cluster)
                if (
                    tls is None
                    or parsed is None
                    or not tls["common_tls_context"].get("tls_certificate_sds_secret_configs")
                ):
                    continue
                host = parsed[3]
                if host.lower() in linked or host.lower() in seen:
                    continue
                seen.add(host.lower())
                svc = mesh.find(proxy, host)
                objects = []
                if svc is not None and svc.entry is not None:
                    objects.append(mesh.ref("ServiceEntry", svc.entry.metadata.namespace, svc.entry.metadata.name))
                yield finding(
                    "MB302",
                    objects or [mesh.ref("Gateway", proxy.namespace, proxy.name)],
                    f"{mesh.name}/{proxy.name} originates mutual TLS to {host}, which no exporter in the input serves; "
                    "the exporter side (SNI, port, route, its certificates) was not checked",
                    "lint both meshes together (--mesh for each, or the bridge spec)",
                )


CHECKS = (check_links, check_unmatched_upstreams)
