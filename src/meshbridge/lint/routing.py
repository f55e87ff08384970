"""MB1xx: routing and visibility inside one mesh, as istiod decides them (pure).

Each check reads the model (:mod:`meshbridge.istio.visibility`, :mod:`meshbridge.istio.dns`) and the
translation of the proxies that act (:mod:`meshbridge.lint.view`); a check never guesses what istiod does.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from meshbridge.envoy import names
from meshbridge.envoy.gateway import resolve_port, server_kind
from meshbridge.envoy.routes import RouteContext, match_mismatch, translate_virtual_service
from meshbridge.envoy.simulate import index_of
from meshbridge.envoy.view import EnvoyView
from meshbridge.ipaddr import is_ip
from meshbridge.istio.dns import OPT_OUT_LABEL, name_table
from meshbridge.istio.protocol import is_http
from meshbridge.istio.resources import (
    ClientTLSSettings,
    DestinationRule,
    Gateway,
    HTTPMatchRequest,
    ServiceEntry,
    TrafficPolicy,
    VirtualService,
)
from meshbridge.istio.visibility import (
    MESH_GATEWAY,
    MergedDestinationRule,
    MeshService,
    Proxy,
    can_merge,
    destination_rule,
    export_visible,
    find_service,
    gateway_key,
    gateways_for,
    host_matches,
    protocol_from_name,
    qualify_host,
    resolve_gateway_name,
    services,
    virtual_services_for_gateway,
    virtual_services_for_sidecar,
    vs_gateways,
)
from meshbridge.lint.bypass import bypassing_sidecars
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import LintInput, MeshInput
from meshbridge.lint.paths import destination_paths, tls_for_port

# -- MB101: DNS for made-up hosts -----------------------------------------------------------------------


def made_up_hosts(inp: LintInput, mesh: MeshInput) -> dict[str, ServiceEntry]:
    """Hosts that exist only inside the mesh: imported hosts, and ServiceEntry hosts whose endpoints are
    elsewhere (no endpoint has the host's own name). Nobody's public DNS answers them."""
    out: dict[str, ServiceEntry] = {}
    for link in inp.links:
        if link.importer == mesh.name:
            out.setdefault(link.host.lower(), link.service_entry)
    for se in mesh.config.service_entries:
        if not se.spec.endpoints:
            continue
        for host in se.spec.hosts:
            if host.startswith("*") or host.endswith(".cluster.local"):
                continue
            if all((e.address or "").lower() != host.lower() for e in se.spec.endpoints):
                out.setdefault(host.lower(), se)
    return out


def check_dns(inp: LintInput) -> Iterator[Finding]:
    """MB101 (L01): every app must be able to resolve every made-up host it may call."""
    for mesh in inp.meshes:
        hosts = made_up_hosts(inp, mesh)
        if not hosts:
            continue
        settings = mesh.config.settings
        problems: dict[str, tuple[ServiceEntry, str, str, str, list[str]]] = {}
        for app in mesh.sidecars:
            visible = mesh.visible(app)
            table = {h.lower() for h in name_table(settings, visible)}
            by_host = {s.hostname.lower(): s for s in visible if s.entry is not None}
            for host, se in hosts.items():
                if host in table:
                    continue
                svc = by_host.get(host)
                why, fix, field = _dns_reason(mesh, app, se, svc)
                entry = problems.setdefault(host, (se, why, fix, field, []))
                entry[4].append(f"{app.namespace}/{app.name}")
        for host, (se, why, fix, field, apps) in problems.items():
            objects = [mesh.ref("ServiceEntry", se.metadata.namespace, se.metadata.name, field)]
            if "ISTIO_META" in fix:
                objects.append(mesh.settings_field("proxyMetadata"))
            name = f"names under {host}" if host.startswith("*") else host
            yield finding(
                "MB101",
                objects,
                f"app(s) {', '.join(sorted(apps))} cannot resolve {name}: {why}",
                fix,
                symptom=f"curl: (6) Could not resolve host: {'<name>' + host[1:] if host.startswith('*') else host} "
                "(the request never leaves the app)",
            )


def _dns_reason(mesh: MeshInput, app: Proxy, se: ServiceEntry, svc: MeshService | None) -> tuple[str, str, str]:
    settings = mesh.config.settings
    if svc is None:
        return (
            f"ServiceEntry {se.metadata.namespace}/{se.metadata.name} is not exported to namespace {app.namespace} "
            f"(exportTo {se.spec.export_to}), so the sidecar's DNS proxy does not know the host",
            f'export it to the apps\' namespace: exportTo: ["*"] or add "{app.namespace}"',
            "spec.exportTo",
        )
    flags = (
        'set ISTIO_META_DNS_CAPTURE: "true" and ISTIO_META_DNS_AUTO_ALLOCATE: "true" in '
        "meshConfig.defaultConfig.proxyMetadata"
    )
    if not settings.dns_capture:
        return (
            "ISTIO_META_DNS_CAPTURE is off, so the cluster DNS answers, and it does not know a made-up host",
            f"{flags}, or give the ServiceEntry spec.addresses and make the name resolvable",
            "spec.addresses",
        )
    if svc.resolution == "NONE":
        return (
            "resolution NONE gets no auto-allocated address, and the ServiceEntry has no addresses",
            "give the ServiceEntry spec.addresses (a VIP, e.g. 240.240.0.10), or use resolution DNS/STATIC",
            "spec.addresses",
        )
    if se.metadata.labels.get(OPT_OUT_LABEL, "").lower() == "false":
        return (
            f'the label {OPT_OUT_LABEL}: "false" opts the ServiceEntry out of auto-allocation, and it has no addresses',
            f"remove the label {OPT_OUT_LABEL}, or give the ServiceEntry spec.addresses",
            "metadata.labels",
        )
    if svc.hostname.startswith("*"):
        return (
            f"istiod never auto-allocates an address for a wildcard host ({svc.hostname}) unless its resolution is "
            "DYNAMIC_DNS, and the ServiceEntry has no addresses, so the DNS proxy has no answer for a name under it "
            "and forwards the query upstream",
            f"give the ServiceEntry spec.addresses (a VIP, e.g. 240.240.0.10: the DNS proxy answers every name under "
            f"{svc.hostname} with it), or add a ServiceEntry per concrete host the apps call (each gets an "
            "auto-allocated address)",
            "spec.addresses",
        )
    return (
        "ISTIO_META_DNS_CAPTURE is on but no address is auto-allocated (ISTIO_META_DNS_AUTO_ALLOCATE off) and "
        "the ServiceEntry has no addresses, so the DNS proxy forwards the query upstream",
        f"{flags}, or give the ServiceEntry spec.addresses",
        "spec.addresses",
    )


# -- MB102, MB103: Gateway references and selectors ------------------------------------------------------


def check_gateway_references(inp: LintInput) -> Iterator[Finding]:
    """MB102 (L08): every VirtualService ``gateways`` entry (top level and ``match.gateways``) names a Gateway."""
    for mesh in inp.meshes:
        cfg = mesh.config
        keys = {gateway_key(g) for g in cfg.gateways}
        for vs in cfg.virtual_services:
            ns = vs.metadata.namespace
            entries = [(f"spec.gateways[{i}]", g) for i, g in enumerate(vs.spec.gateways)]
            for i, http in enumerate(vs.spec.http):
                for j, m in enumerate(http.match):
                    entries += [(f"spec.http[{i}].match[{j}].gateways[{k}]", g) for k, g in enumerate(m.gateways)]
            for path, g in entries:
                resolved = resolve_gateway_name(g, ns)
                if resolved == MESH_GATEWAY or resolved in keys:
                    continue
                fixed = _suggest_gateway(mesh, g, resolved)
                fix = (
                    f'write "{fixed}" (a Gateway in another namespace is named <namespace>/<name>)'
                    if fixed
                    else (f"create Gateway {resolved}, or name an existing one ({', '.join(sorted(keys)) or 'none'})")
                )
                yield finding(
                    "MB102",
                    [mesh.ref("VirtualService", ns, vs.metadata.name, path)],
                    f"{g!r} resolves to Gateway {resolved}, which does not exist",
                    fix,
                )


def _suggest_gateway(mesh: MeshInput, written: str, resolved: str) -> str | None:
    name = resolved.split("/", 1)[1]
    same_name = sorted(gateway_key(g) for g in mesh.config.gateways if g.metadata.name == name)
    if same_name:
        return same_name[0]
    for proxy in mesh.routers:  # the gateway *workload*'s name instead of the Gateway resource's
        if proxy.name == name:
            served = sorted(gateway_key(g) for g in gateways_for(mesh.config, proxy))
            if served:
                return served[0]
    close = difflib.get_close_matches(resolved, sorted(gateway_key(g) for g in mesh.config.gateways), n=1)
    return close[0] if close else None


def check_gateway_selectors(inp: LintInput) -> Iterator[Finding]:
    """MB103: a Gateway whose selector picks no gateway pod of the world serves nothing."""
    for mesh in inp.meshes:
        selected = {id(g) for p in mesh.routers for g in gateways_for(mesh.config, p)}
        for gw in mesh.config.gateways:
            if id(gw) in selected:
                continue
            pods = "; ".join(f"{p.namespace}/{p.name} {dict(p.labels)}" for p in mesh.routers) or "none"
            scoped = (
                " (PILOT_SCOPE_GATEWAY_TO_NAMESPACE is on: only pods of the Gateway's namespace count)"
                if mesh.config.settings.scope_gateway_to_namespace
                else ""
            )
            yield finding(
                "MB103",
                [mesh.ref("Gateway", gw.metadata.namespace, gw.metadata.name, "spec.selector")],
                f"selector {gw.spec.selector} matches no gateway pod{scoped}; gateway pods: {pods}",
                "make the selector a subset of the gateway pods' labels (check istio.io/rev against the revision)",
            )


# -- MB104, MB105: VirtualServices that add no route -----------------------------------------------------


def _finder(mesh: MeshInput, proxy: Proxy) -> Callable[[str], MeshService | None]:
    return lambda host: mesh.find(proxy, host)


def _routable_servers(gw: Gateway) -> list[Any]:
    """The servers whose hosts need HTTP routes: plain HTTP (not only redirecting) and terminated HTTPS; TCP and
    TLS servers forward connections (``tcp``/``tls`` routes), as :func:`meshbridge.envoy.gateway.server_kind`."""
    return [
        s
        for s in gw.spec.servers
        if not (s.tls is not None and s.tls.https_redirect) and server_kind(s) in ("http", "https")
    ]


def check_unrouted_virtual_services(inp: LintInput) -> Iterator[Finding]:
    """MB104 (and MB106 for exportTo): a VirtualService bound to a gateway must add a route there."""
    for mesh in inp.meshes:
        cfg = mesh.config
        for proxy in mesh.routers:
            view = mesh.view(proxy)
            routed = {r.virtual_service for r in view.routes if r.virtual_service}
            find = _finder(mesh, proxy)
            for gw in gateways_for(cfg, proxy):
                key = gateway_key(gw)
                servers = _routable_servers(gw)
                if not servers:
                    continue
                bound = {id(b) for b in virtual_services_for_gateway(cfg, proxy, key)}
                for vs in cfg.virtual_services:
                    if key not in vs_gateways(vs) or not vs.spec.http:
                        continue
                    ref = mesh.ref("VirtualService", vs.metadata.namespace, vs.metadata.name)
                    if id(vs) not in bound:
                        yield finding(
                            "MB106",
                            [ref.at("spec.exportTo")],
                            f"bound to Gateway {key}, but exportTo {vs.spec.export_to} hides it from namespace "
                            f"{proxy.namespace}, where the gateway pod {proxy.name} runs (visibility is decided for "
                            "the pod's namespace, not the Gateway's)",
                            f'export it to the gateway pods\' namespace (exportTo: ["{proxy.namespace}"] or ["*"]), or '
                            f"move the VirtualService to {proxy.namespace}",
                            symptom="404 NR route_not_found at the gateway",
                        )
                        continue
                    if (vs.metadata.namespace, vs.metadata.name) in routed:
                        continue
                    why = _why_no_route(mesh, proxy, gw, servers, vs, find)
                    yield finding(
                        "MB104",
                        [ref.at(why[1]), mesh.ref("Gateway", gw.metadata.namespace, gw.metadata.name, "spec.servers")],
                        f"bound to Gateway {key} but adds no route on {mesh.name}/{proxy.name}: {why[0]}",
                        why[2],
                    )


def _why_no_route(
    mesh: MeshInput,
    proxy: Proxy,
    gw: Gateway,
    servers: list[Any],
    vs: VirtualService,
    find: Callable[[str], MeshService | None],
) -> tuple[str, str, str]:
    key = gateway_key(gw)
    reasons: list[str] = []
    for s in servers:
        ctx = RouteContext.of(mesh.config, proxy, key, s.port.number, find)
        routes, _ = translate_virtual_service(vs, ctx)
        if routes:
            hosts = sorted({h.split("/", 1)[-1] for srv in servers for h in srv.hosts})
            return (
                f"its hosts {vs.spec.hosts} meet none of the Gateway's server hosts {hosts}",
                "spec.hosts",
                f"add a host the Gateway serves ({', '.join(hosts)}) to spec.hosts, or the host to the Gateway server",
            )
        for i, http in enumerate(vs.spec.http):
            for j, m in enumerate(http.match or [HTTPMatchRequest()]):
                why = match_mismatch(m, vs, ctx)
                if why:
                    reasons.append(f"http[{i}].match[{j}] on server port {s.port.number}: {why}")
    return (
        "every match is dropped there (" + "; ".join(sorted(set(reasons))[:4]) + ")",
        "spec.http",
        "make the matches fit the gateway: match.port is the Gateway server port, sourceLabels are the gateway "
        "pod's labels (or drop them), match.gateways names this Gateway",
    )


def check_dead_matches(inp: LintInput) -> Iterator[Finding]:
    """MB105: a route match that applies on no proxy the VirtualService binds to."""
    for mesh in inp.meshes:
        cfg = mesh.config
        contexts: dict[int, dict[str, list[RouteContext]]] = {}  # VirtualService → gateway key → contexts
        router_bound: dict[int, bool] = {}
        for proxy in mesh.routers:
            find = _finder(mesh, proxy)
            for gw in gateways_for(cfg, proxy):
                key = gateway_key(gw)
                servers = _routable_servers(gw)
                ports = sorted({s.port.number for s in servers})
                for vs in virtual_services_for_gateway(cfg, proxy, key):
                    router_bound[id(vs)] = True
                    contexts.setdefault(id(vs), {}).setdefault(key, []).extend(
                        RouteContext.of(cfg, proxy, key, port, find) for port in ports
                    )
        for app in mesh.sidecars:
            find = _finder(mesh, app)
            by_host: dict[str, MeshService] = {s.hostname.lower(): s for s in mesh.visible(app)}
            for vs in virtual_services_for_sidecar(cfg, app):
                for h in vs.spec.hosts:
                    svc = by_host.get(qualify_host(h, vs.metadata.namespace).lower())
                    if svc is None:
                        continue
                    contexts.setdefault(id(vs), {}).setdefault(MESH_GATEWAY, []).extend(
                        RouteContext.of(cfg, app, MESH_GATEWAY, p.number, find)
                        for p in svc.ports
                        if is_http(p.protocol)
                    )
        routed = {r.virtual_service for spec in mesh.proxies for r in mesh.view(spec.proxy).routes}
        for vs in cfg.virtual_services:
            by_key = contexts.get(id(vs), {})
            if not by_key:
                continue
            if (vs.metadata.namespace, vs.metadata.name) not in routed and router_bound.get(id(vs)):
                continue  # no route on any proxy: MB104 reports it on each gateway
            top = set(vs_gateways(vs))
            for i, http in enumerate(vs.spec.http):
                for j, m in enumerate(http.match):
                    if m.port is None and not m.gateways and not m.source_labels and not m.source_namespace:
                        continue  # nothing in it can drop it
                    named = [resolve_gateway_name(g, vs.metadata.namespace) for g in m.gateways]
                    outside = [g for g, r in zip(m.gateways, named, strict=True) if r not in top]
                    if not outside and any(k not in by_key for k in (named or top)):
                        continue  # a gateway it may apply to has no proxy lint can ask (no app sees the host, ...)
                    ctxs = [c for k in (named or top) for c in by_key.get(k, [])]
                    if not outside and any(match_mismatch(m, vs, c) is None for c in ctxs):
                        continue
                    reasons = sorted({r for c in ctxs if (r := match_mismatch(m, vs, c))})
                    why = (
                        f"match.gateways {outside} are not among the VirtualService's gateways {sorted(top)}, "
                        "so the VirtualService is never bound there"
                        if outside
                        else "; ".join(reasons[:4])
                    )
                    yield finding(
                        "MB105",
                        [
                            mesh.ref(
                                "VirtualService", vs.metadata.namespace, vs.metadata.name, f"spec.http[{i}].match[{j}]"
                            )
                        ],
                        f"http[{i}].match[{j}] applies on no proxy: {why}",
                        "fix the match's port, gateways, sourceLabels or sourceNamespace, or delete the match",
                    )


# -- MB106–MB111: routes whose cluster is missing --------------------------------------------------------


def check_route_clusters(inp: LintInput) -> Iterator[Finding]:
    """MB106, MB107, MB108, MB109, MB110, MB111: every cluster a route sends to exists, with endpoints."""
    for mesh in inp.meshes:
        acc: dict[tuple[Any, ...], tuple[str, list[ObjectRef], str, str, str, list[str]]] = {}
        for spec in mesh.proxies:
            proxy = spec.proxy
            view = mesh.view(proxy)
            for cluster, routes in view.routed.items():
                parsed = names.parse_cluster_name(cluster)
                assert parsed is not None
                _, port, subset, host = parsed
                exists = cluster in view.clusters
                if exists and not (subset and not view.endpoints(cluster)):
                    continue
                diag = _diagnose_cluster(mesh, proxy, host, port, subset, exists)
                if diag is None:
                    continue
                code, objects, message, fix, symptom = diag
                for r in routes:
                    vs_objects = []
                    if r.virtual_service is not None:
                        ns, name = r.virtual_service
                        vs = next(
                            (
                                v
                                for v in mesh.config.virtual_services
                                if (v.metadata.namespace, v.metadata.name) == (ns, name)
                            ),
                            None,
                        )
                        if code == "MB108" and port == 80 and vs is not None and _port_80_fallback(vs, host):
                            continue  # istiod's port-80 fallback for the host, not the route the user wrote
                        paths = destination_paths(vs, host, subset) if vs is not None else []
                        vs_objects = [mesh.ref("VirtualService", ns, name, paths[0] if paths else "spec.http")]
                    key = (code, cluster, tuple(vs_objects), message)
                    entry = acc.setdefault(key, (code, vs_objects + objects, message, fix, symptom, []))
                    if spec.name not in entry[5]:
                        entry[5].append(spec.name)
        for code, objects, message, fix, symptom, proxies in acc.values():
            yield finding(code, objects, f"{message} (on {', '.join(proxies)})", fix, symptom)


def _port_80_fallback(vs: VirtualService, host: str) -> bool:
    """Whether ``vs`` reaches ``host`` on port 80 only through istiod's fallback: its destinations name no port,
    so on the sidecar's port-80 routes (``envoy.sidecar._virtual_service_hosts``) they go to port 80, while the
    service's own port works (MB108 would blame a route the user did not write)."""
    dests = [
        rd.destination
        for http in vs.spec.http
        for rd in http.route
        if qualify_host(rd.destination.host, vs.metadata.namespace).lower() == host.lower()
    ]
    return bool(dests) and all(d.port is None or d.port.number is None for d in dests)


def _diagnose_cluster(
    mesh: MeshInput, proxy: Proxy, host: str, port: int, subset: str, exists: bool
) -> tuple[str, list[ObjectRef], str, str, str] | None:
    cfg = mesh.config
    cluster = names.cluster_name(port, host, subset)
    anywhere = find_service(mesh.registry, host)
    if anywhere is None:
        if host.endswith(".cluster.local"):
            return None  # a Kubernetes Service outside the input: lint cannot know it
        return (
            "MB107",
            [],
            f"the route sends to {host}, which no ServiceEntry or Service defines; cluster {cluster} does not exist",
            f"add a ServiceEntry for {host} (with its port {port}), or fix the destination host",
            f"503 NC cluster_not_found for {cluster}",
        )
    visible = mesh.find(proxy, host)
    if visible is None:
        src_kind, _, src = anywhere.source.partition(" ")
        src_ns, _, src_name = src.partition("/")
        return (
            "MB106",
            [mesh.ref(src_kind, src_ns, src_name, "spec.exportTo")],
            f"{anywhere.source} defines {host} but exportTo {list(anywhere.export_to)} hides it from namespace "
            f"{proxy.namespace} of {proxy.name}, so cluster {cluster} does not exist there",
            f'export it to {proxy.namespace} (exportTo: ["{proxy.namespace}"] or ["*"]), '
            f"or move it to {proxy.namespace}",
            f"503 NC cluster_not_found for {cluster}",
        )
    if visible.port(port) is None:
        ports = [p.number for p in visible.ports]
        src_kind, _, src = visible.source.partition(" ")
        src_ns, _, src_name = src.partition("/")
        return (
            "MB108",
            [mesh.ref(src_kind, src_ns, src_name, "spec.ports")],
            f"the route sends to {host} port {port}, but {visible.source} has ports {ports}; cluster {cluster} "
            "does not exist",
            f"set destination.port.number to one of {ports}, or add port {port} to {visible.source}",
            f"503 NC cluster_not_found for {cluster}",
        )
    dr = destination_rule(cfg, proxy, visible)
    if subset and (dr is None or all(s.name != subset for s in dr.subsets)):
        return _missing_subset(mesh, proxy, host, subset, dr, cluster)
    if visible.hostname != host and not exists:
        return _named_under_wildcard(mesh, visible, host, port, subset)
    if subset:
        labels = next((s.labels for s in dr.subsets if s.name == subset), {}) if dr is not None else {}
        port_info = visible.port(port)
        assert port_info is not None
        if visible.endpoints(port_info) and not visible.endpoints(port_info, labels):
            return _subset_without_endpoints(mesh, visible, cluster, labels, dr, exists)
    return None


def _named_under_wildcard(
    mesh: MeshInput, visible: MeshService, host: str, port: int, subset: str
) -> tuple[str, list[ObjectRef], str, str, str]:
    """MB107: the route names ``host``, which only ``visible`` covers under another name (a wildcard, or another
    spelling). istiod names a route's cluster after the destination's host (``route.GetDestinationCluster``) and
    builds clusters after each service's own hostname, so no cluster is named after ``host``."""
    src_kind, _, src = visible.source.partition(" ")
    src_ns, _, src_name = src.partition("/")
    cluster, built = names.cluster_name(port, host, subset), names.cluster_name(port, visible.hostname, subset)
    return (
        "MB107",
        [mesh.ref(src_kind, src_ns, src_name, "spec.hosts")],
        f"the route sends to {host}, which only {visible.source} covers, as {visible.hostname}; istiod names the "
        f"route's cluster after the host it names ({cluster}) and builds clusters after the service's own host "
        f"({built}), so {cluster} does not exist",
        f"write the destination host as its ServiceEntry lists it ({visible.hostname})"
        if visible.hostname.lower() == host.lower()
        else f"add a ServiceEntry whose hosts list {host} itself (with its port and resolution DNS), or route to a "
        "host a ServiceEntry lists exactly",
        f"503 NC cluster_not_found for {cluster}",
    )


def _subset_without_endpoints(
    mesh: MeshInput,
    visible: MeshService,
    cluster: str,
    labels: dict[str, str],
    dr: MergedDestinationRule | None,
    exists: bool,
) -> tuple[str, list[ObjectRef], str, str, str]:
    """MB111: the subset's ``labels`` select none of the service's endpoints. An EDS cluster (a Kubernetes
    Service's) exists without endpoints (503 UH); istiod builds no DNS or STATIC cluster without endpoints
    (``buildCluster``: "cluster without endpoints"), so a ServiceEntry's subset cluster is missing (503 NC), on
    every proxy, whatever PILOT_FILTER_GATEWAY_CLUSTER_CONFIG says."""
    _, _, subset, host = names.parse_cluster_name(cluster) or ("", 0, "", "")
    objects = (
        [mesh.ref("DestinationRule", dr.first.metadata.namespace, dr.first.metadata.name, "spec.subsets")]
        if dr is not None
        else []
    )
    selects = f"subset {subset!r} of {host} selects labels {labels}, which none of its endpoints carry"
    if exists:
        return (
            "MB111",
            objects,
            selects,
            "make the subset's labels match the endpoints' (pod) labels, or drop the labels",
            f"503 UH no_healthy_upstream for {cluster}",
        )
    return (
        "MB111",
        objects,
        f"{selects} (resolution {visible.resolution}: only spec.endpoints[].labels label them); istiod builds no "
        f"{visible.resolution} cluster without endpoints, so the route's cluster {cluster} does not exist",
        f"drop the subset's labels, or give the ServiceEntry's spec.endpoints those labels ({visible.source})",
        f"503 NC cluster_not_found for {cluster}",
    )


def _missing_subset(
    mesh: MeshInput, proxy: Proxy, host: str, subset: str, dr: MergedDestinationRule | None, cluster: str
) -> tuple[str, list[ObjectRef], str, str, str]:
    """MB110: the route names a subset the DestinationRule ``proxy`` uses for ``host`` (``dr``) lacks; with the
    rule that defines it but does not apply there, if any."""
    defined = sorted({s.name for s in dr.subsets}) if dr is not None else []
    where = (
        f"the DestinationRule {proxy.name} uses for {host} "
        f"({dr.first.metadata.namespace}/{dr.first.metadata.name}) "
        f"defines subsets {defined}"
        if dr is not None
        else f"no DestinationRule for {host} is visible to {proxy.namespace}/{proxy.name}"
    )
    hidden = [
        d
        for d in mesh.config.destination_rules
        if any(s.name == subset for s in d.spec.subsets)
        and host_matches(qualify_host(d.spec.host, d.metadata.namespace), host)
    ]
    objects = [mesh.ref("DestinationRule", d.metadata.namespace, d.metadata.name, "spec.subsets") for d in hidden[:1]]
    hint = (
        f"; DestinationRule {hidden[0].metadata.namespace}/{hidden[0].metadata.name} defines it but does not "
        f"apply to {proxy.namespace}/{proxy.name} (exportTo, workloadSelector, or a rule in a namespace istiod "
        "looks at first)"
        if hidden
        else ""
    )
    return (
        "MB110",
        objects,
        f"the route names subset {subset!r} of {host}, but {where}{hint}",
        f"add subsets: [{{name: {subset}}}] to the DestinationRule for {host} that {proxy.name} uses, or drop the "
        "subset from the route",
        f"503 NC cluster_not_found for {cluster}",
    )


def check_filtered_delegates(inp: LintInput) -> Iterator[Finding]:
    """MB109 (L10): with PILOT_FILTER_GATEWAY_CLUSTER_CONFIG, a delegate VirtualService's destinations get no
    cluster on the gateway: it is not bound to the gateway itself."""
    for mesh in inp.meshes:
        cfg = mesh.config
        if not cfg.settings.filter_gateway_clusters:
            continue
        for proxy in mesh.routers:
            view = mesh.view(proxy)
            clusters_hosts = view.cluster_hosts
            for gw in gateways_for(cfg, proxy):
                for vs in virtual_services_for_gateway(cfg, proxy, gateway_key(gw)):
                    for i, http in enumerate(vs.spec.http):
                        delegate = (http.model_extra or {}).get("delegate")
                        if not isinstance(delegate, dict):
                            continue
                        ns = str(delegate.get("namespace") or vs.metadata.namespace)
                        name = str(delegate.get("name", ""))
                        child = next(
                            (v for v in cfg.virtual_services if (v.metadata.namespace, v.metadata.name) == (ns, name)),
                            None,
                        )
                        if child is None:
                            continue
                        lost = sorted(
                            {
                                qualify_host(rd.destination.host, ns)
                                for h in child.spec.http
                                for rd in h.route
                                if qualify_host(rd.destination.host, ns) not in clusters_hosts
                            }
                        )
                        if lost:
                            yield finding(
                                "MB109",
                                [
                                    mesh.ref("VirtualService", ns, name),
                                    mesh.ref(
                                        "VirtualService",
                                        vs.metadata.namespace,
                                        vs.metadata.name,
                                        f"spec.http[{i}].delegate",
                                    ),
                                    mesh.settings_field("pilotEnv"),
                                ],
                                f"delegate VirtualService {ns}/{name} is not bound to Gateway {gateway_key(gw)}, "
                                f"so with PILOT_FILTER_GATEWAY_CLUSTER_CONFIG on {proxy.name} gets no cluster for "
                                f"{', '.join(lost)}",
                                f"route to {', '.join(lost)} from a VirtualService bound to {gateway_key(gw)}, or turn "
                                "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG off",
                            )


# -- MB106 for DestinationRules --------------------------------------------------------------------------


def check_destination_rule_visibility(inp: LintInput) -> Iterator[Finding]:
    """MB106 (L12): a DestinationRule with TLS for a host a proxy routes to, which does not apply to that proxy
    because of exportTo or because a rule in a namespace istiod looks at first shadows it. An app's sidecar that
    routes the host only because a VirtualService binds no sidecar (MB122) is not asked: the rule is not its to use."""
    for mesh in inp.meshes:
        cfg = mesh.config
        seen: set[tuple[str, str, str]] = set()
        misrouted = {(b.app, b.host, b.port) for b in bypassing_sidecars(inp, mesh)}  # MB122: not the sidecar's
        for spec in mesh.proxies:
            proxy = spec.proxy
            view = mesh.view(proxy)
            find = _finder(mesh, proxy)
            for cluster in view.routed:
                if cluster not in view.clusters:
                    continue
                parsed = names.parse_cluster_name(cluster)
                assert parsed is not None
                _, port, _, host = parsed
                candidates = mesh.tls_rules_for(host, port)
                if not candidates or (spec.name, host.lower(), port) in misrouted:
                    continue
                svc = find(host)
                if svc is None:
                    continue
                applied = destination_rule(cfg, proxy, svc)
                used = {id(r) for r in applied.rules} if applied is not None else set()
                for d, tls in candidates:
                    if id(d) in used or d.spec.workload_selector is not None:
                        continue
                    key = (spec.name, d.metadata.namespace, d.metadata.name)
                    if key in seen:
                        continue
                    seen.add(key)
                    if not export_visible(d.spec.export_to, d.metadata.namespace, proxy.namespace):
                        why = f"exportTo {d.spec.export_to} hides it from namespace {proxy.namespace}"
                        fix = f'export it to {proxy.namespace} (exportTo: ["{proxy.namespace}"]), or move it there'
                        field = "spec.exportTo"
                    elif applied is not None:
                        first = applied.first
                        why = (
                            f"{proxy.name} uses DestinationRule {first.metadata.namespace}/{first.metadata.name} "
                            "instead (istiod looks in the proxy's namespace, then the service's, then the root, "
                            "and takes the first namespace with a rule)"
                        )
                        fix = (
                            f"merge the tls settings into {first.metadata.namespace}/{first.metadata.name}, "
                            "or delete one"
                        )
                        field = "spec.trafficPolicy"
                    else:
                        continue
                    yield finding(
                        "MB106",
                        [mesh.ref("DestinationRule", d.metadata.namespace, d.metadata.name, field)],
                        f"its tls ({tls.mode}) for {host} port {port} does not apply to {spec.name}, which routes "
                        f"there: {why}",
                        fix,
                        symptom=f"{spec.name} sends {cluster} without that TLS: plain text (400) or the wrong "
                        "certificate",
                    )


# -- MB112: Gateway server ports ------------------------------------------------------------------------


def check_gateway_ports(inp: LintInput) -> Iterator[Finding]:
    """MB112 (L07): every server port of a Gateway is a port of the selected gateway's Service."""
    for mesh in inp.meshes:
        seen: set[tuple[str, int]] = set()
        for proxy in mesh.routers:
            svc = proxy.service
            if svc is None:
                continue
            exposed = {p.port: p.target_port for p in svc.spec.ports}
            for gw in gateways_for(mesh.config, proxy):
                for i, s in enumerate(gw.spec.servers):
                    n = s.port.number
                    if n in exposed or (gateway_key(gw), i) in seen:
                        continue
                    seen.add((gateway_key(gw), i))
                    yield finding(
                        "MB112",
                        [
                            mesh.ref(
                                "Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}].port.number"
                            ),
                            mesh.ref("Service", svc.metadata.namespace, svc.metadata.name, "spec.ports"),
                        ],
                        f"server port {n} is not a port of Service {svc.metadata.namespace}/{svc.metadata.name} "
                        f"(ports {sorted(exposed)}); {_unexposed_port_effect(n, resolve_port(proxy, n))}",
                        f"add port {n} to the Service with an unprivileged targetPort (e.g. {{port: {n}, targetPort: "
                        f"{n + 8000 if n < 1024 else n}}}), or use a port the Service exposes ({sorted(exposed)})",
                    )


def _unexposed_port_effect(port: int, listener: int) -> str:
    """What a Gateway server on ``port``, which the gateway Service does not expose, does: the load balancer never
    forwards it, and a privileged ``listener`` binds only where the pod may bind it (the istio/gateway chart sets
    the sysctl that allows it; the IstioOperator's gateways run as user 1337 without it)."""
    said = (
        f"the load balancer does not forward port {port}, so no client outside the cluster reaches this server; "
        f"the pod listens on {listener} itself"
    )
    if listener >= 1024:
        return said
    return (
        f"{said}, a privileged port: the istio/gateway chart's pods bind it ('render --install --format helm': the "
        "chart sets the sysctl net.ipv4.ip_unprivileged_port_start=0), but a non-root gateway without that sysctl "
        "(the IstioOperator's, '--format istioctl': user 1337) cannot, and Envoy rejects its whole listener update "
        "(pod NotReady)"
    )


# -- MB113: protocol on a TLS port ----------------------------------------------------------------------


def check_tls_port_protocol(inp: LintInput) -> Iterator[Finding]:
    """MB113 (L11): a ServiceEntry port 443 (or named https/tls) toward a TLS upstream declared HTTP."""
    for mesh in inp.meshes:
        imported = {id(link.service_entry) for link in inp.links if link.importer == mesh.name}
        for se in mesh.config.service_entries:
            if id(se) in imported:
                continue
            for i, p in enumerate(se.spec.ports):
                proto = (p.protocol or protocol_from_name(p.name)).upper()
                prefix = p.name.split("-", 1)[0].lower()
                if not is_http(proto):
                    continue
                endpoint_ports = {e.ports.get(p.name, p.target_port or p.number) for e in se.spec.endpoints} or {
                    p.target_port or p.number
                }
                if p.number != 443 and prefix not in ("https", "tls"):
                    continue
                if 443 not in endpoint_ports and prefix not in ("https", "tls"):
                    continue
                tls_rules = [
                    d
                    for h in se.spec.hosts
                    for d in mesh.rules_for(h)
                    if (t := tls_for_port(d, p.number)) is not None and t.mode in ("SIMPLE", "MUTUAL")
                ]
                if not tls_rules and prefix not in ("https", "tls"):
                    continue
                why = (
                    f"DestinationRule {tls_rules[0].metadata.namespace}/{tls_rules[0].metadata.name} "
                    "originates TLS on it"
                    if tls_rules
                    else f"its name {p.name!r} says TLS"
                )
                yield finding(
                    "MB113",
                    [mesh.ref("ServiceEntry", se.metadata.namespace, se.metadata.name, f"spec.ports[{i}].protocol")],
                    f"port {p.number} (name {p.name!r}) is declared {proto}, but the upstream speaks TLS there ({why})",
                    f"declare it protocol: HTTPS with name: {_https_name(p.name)} "
                    "(TLS for non-HTTP), and keep the DestinationRule's tls",
                )


def _https_name(name: str) -> str:
    return "https" + ("-" + name.split("-", 1)[1] if "-" in name else "")


# -- MB114: Gateway server hosts without a route ----------------------------------------------------------


def check_server_hosts_routed(inp: LintInput) -> Iterator[Finding]:
    """MB114: every host of a routable Gateway server has a virtual host with routes on the gateway."""
    for mesh in inp.meshes:
        exported = {link.host.lower() for link in inp.links if link.exporter == mesh.name}
        seen: set[tuple[str, int, str]] = set()
        for proxy in mesh.routers:
            view = mesh.view(proxy)
            for gw in gateways_for(mesh.config, proxy):
                for idx, server in _routable_servers_indexed(gw):
                    if server_kind(server) == "https":
                        rc_name = names.https_route_name(
                            server.port.number, server.port.name, gw.metadata.name, gw.metadata.namespace, server.bind
                        )
                    else:
                        rc_name = names.http_route_name(resolve_port(proxy, server.port.number), server.bind)
                    for host in (h.split("/", 1)[-1] for h in server.hosts):
                        if host == "*" or host.lower() in exported or _routed(view, rc_name, host):
                            continue
                        key = (gateway_key(gw), idx, host)
                        if key in seen:
                            continue
                        seen.add(key)
                        yield finding(
                            "MB114",
                            [
                                mesh.ref(
                                    "Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{idx}].hosts"
                                )
                            ],
                            f"host {host} on port {server.port.number} has no route on {mesh.name}/{proxy.name}: no "
                            f"VirtualService bound to {gateway_key(gw)} serves it (route config {rc_name})",
                            f"bind a VirtualService with host {host} to {gateway_key(gw)} (spec.gateways), or remove "
                            "the host from the server",
                        )


def _routed(view: EnvoyView, rc_name: str, host: str) -> bool:
    """Whether the route configuration ``rc_name`` of ``view`` routes requests for server host ``host``: the
    virtual host Envoy picks for it has routes; for a wildcard host (no request carries one), some virtual host
    with routes has a domain it covers, or that covers it."""
    rc = view.route_config(rc_name)
    if rc is None:
        return False
    if not host.startswith("*"):
        vh = index_of(view).vhosts(rc).pick(host)  # the view's virtual hosts, indexed once
        return bool(vh and vh.get("routes"))
    domains = [d for vh in rc.get("virtual_hosts", []) if vh.get("routes") for d in vh.get("domains", [])]
    return any(host_matches(d, host) or host_matches(host, d) for d in domains)


def _routable_servers_indexed(gw: Gateway) -> list[tuple[int, Any]]:
    keep = {id(s) for s in _routable_servers(gw)}
    return [(i, s) for i, s in enumerate(gw.spec.servers) if id(s) in keep]


# -- MB117: ServiceEntry resolution that does not resolve its host names -------------------------------------


def unresolved_endpoints(se: ServiceEntry) -> list[str]:
    """Host-name endpoint addresses of ``se`` that its resolution (NONE or STATIC) never resolves."""
    if se.spec.resolution not in ("NONE", "STATIC"):
        return []
    return [e.address for e in se.spec.endpoints if e.address and not is_ip(e.address) and "://" not in e.address]


def check_service_entry_resolution(inp: LintInput) -> Iterator[Finding]:
    """MB117: host-name endpoints under resolution NONE/STATIC, or a gateway routing to a NONE entry without
    endpoints (gateways cannot pass through to the original destination: istiod gives them an EDS cluster)."""
    for mesh in inp.meshes:
        routed: dict[str, str] = {}
        for proxy in mesh.routers:
            for h in mesh.view(proxy).routed_hosts:
                routed.setdefault(h, proxy.name)
        for se in mesh.config.service_entries:
            ref = mesh.ref("ServiceEntry", se.metadata.namespace, se.metadata.name, "spec.resolution")
            name = f"{se.metadata.namespace}/{se.metadata.name}"
            res = se.spec.resolution
            unset = " (unset: the default)" if res == "NONE" else ""
            bad = unresolved_endpoints(se)
            if bad:
                rule = (
                    "resolution STATIC takes IP endpoints only: Istio's validation refuses it "
                    f"(endpoint address {bad[0]!r} is not a valid IP address)"
                    if res == "STATIC"
                    else "resolution NONE takes no endpoints: Istio's validation refuses it "
                    "('no endpoints should be provided for resolution type none')"
                )
                yield finding(
                    "MB117",
                    [ref],
                    f"ServiceEntry {name} has host-name endpoints {bad} but resolution {res}{unset}; {rule}, and "
                    "if it is applied anyway no proxy resolves the names",
                    f"set resolution: DNS on ServiceEntry {name} (STATIC only with IP endpoints)",
                )
                continue
            if res != "NONE" or se.spec.endpoints or se.spec.addresses:
                continue
            for host in se.spec.hosts:
                gw = routed.get(host.lower())
                if gw is None or host.startswith("*"):
                    continue
                yield finding(
                    "MB117",
                    [ref],
                    f"gateway {mesh.name}/{gw} routes to {host}, but ServiceEntry {name} has resolution NONE{unset} "
                    "and no endpoints: a gateway cannot pass through to the original destination, so istiod gives "
                    "it an EDS cluster with no endpoints and never resolves the host name",
                    f"set resolution: DNS on ServiceEntry {name}, so the gateway resolves {host}",
                )
                break


# -- MB118: a second ServiceEntry for a host whose ports istiod ignores ------------------------------------------


def check_unmerged_service_entries(inp: LintInput) -> Iterator[Finding]:
    """MB118: a later ServiceEntry of a host in the same namespace that istiod cannot merge into the first
    (another resolution, labels or exportTo, ``canMergeServices``) and that declares ports the first lacks: no
    cluster serves those ports. Ports the first also declares still work, so they are not reported."""
    for mesh in inp.meshes:
        first: dict[tuple[str, str], MeshService] = {}
        for svc in services(mesh.config):
            if svc.entry is None:
                continue
            key = (svc.namespace, svc.hostname.lower())
            head = first.setdefault(key, svc)
            lost = [p.number for p in svc.ports if head.port(p.number) is None]
            if head is svc or not lost or can_merge(head, svc):
                continue
            assert head.entry is not None
            name, kept = svc.source.split(" ", 1)[1], head.source.split(" ", 1)[1]
            yield finding(
                "MB118",
                [mesh.ref("ServiceEntry", svc.namespace, svc.entry.metadata.name, "spec.ports")],
                f"ServiceEntry {name} declares {svc.hostname} again with ports {lost} that ServiceEntry {kept} "
                f"(the first for that host in {svc.namespace}) lacks, but istiod cannot merge them "
                f"({_merge_blocker(head, svc)}): it keeps {kept} alone, so no cluster serves {svc.hostname} on {lost}",
                f"declare ports {lost} in ServiceEntry {kept}, or give {name} the same resolution, labels and "
                "exportTo so istiod merges them",
            )


def _merge_blocker(head: MeshService, svc: MeshService) -> str:
    """What keeps istiod from merging ``svc`` into ``head`` (:func:`can_merge` said it does)."""
    if svc.resolution != head.resolution:
        return f"resolution {svc.resolution} vs {head.resolution}"
    if set(svc.export_to) != set(head.export_to):
        return f"exportTo {list(svc.export_to)} vs {list(head.export_to)}"
    return "other labels"


# -- MB119: a later DestinationRule for a host whose TLS istiod drops ------------------------------------------


def _tls_of(tp: TrafficPolicy) -> dict[int | None, ClientTLSSettings]:
    """The TLS a trafficPolicy sets: under ``None`` its top level, else by port number."""
    out: dict[int | None, ClientTLSSettings] = {None: tp.tls} if tp.tls is not None else {}
    for p in tp.port_level_settings:
        if p.tls is not None and p.port is not None and p.port.number:
            out[p.port.number] = p.tls
    return out


def check_dropped_destination_rule_tls(inp: LintInput) -> Iterator[Finding]:
    """MB119: DestinationRules of one host in one namespace (no workloadSelector, the same exportTo) merge in
    istiod with the first trafficPolicy winning whole (``mergeDestinationRule``): a later rule's TLS origination
    that the winning policy does not set for that port is dropped, and the proxy speaks plain text to a TLS port.
    A later rule's other settings, or TLS the winner sets alike, are not reported."""
    for mesh in inp.meshes:
        groups: dict[tuple[str, str, frozenset[str]], list[DestinationRule]] = {}
        for dr in mesh.config.destination_rules:
            if dr.spec.workload_selector is None and dr.spec.traffic_policy is not None:
                ns = dr.metadata.namespace
                key = (ns, qualify_host(dr.spec.host, ns).lower(), frozenset(dr.spec.export_to))
                groups.setdefault(key, []).append(dr)
        for winner, *later in groups.values():
            assert winner.spec.traffic_policy is not None
            kept = _tls_of(winner.spec.traffic_policy)
            for dr in later:
                assert dr.spec.traffic_policy is not None
                lost = sorted(
                    (port or 0, tls.mode)
                    for port, tls in _tls_of(dr.spec.traffic_policy).items()
                    if tls.mode != "DISABLE" and kept.get(port, kept.get(None)) != tls
                )
                if lost:
                    yield _dropped_tls(mesh, winner, dr, lost)


def _dropped_tls(
    mesh: MeshInput, winner: DestinationRule, dr: DestinationRule, lost: Sequence[tuple[int, str]]
) -> Finding:
    ns, host = dr.metadata.namespace, dr.spec.host
    what = ", ".join(f"{mode} on port {port}" if port else f"{mode} (top level)" for port, mode in lost)
    return finding(
        "MB119",
        [mesh.ref("DestinationRule", ns, dr.metadata.name, "spec.trafficPolicy")],
        f"DestinationRule {ns}/{dr.metadata.name} sets TLS {what} for {host}, but DestinationRule "
        f"{ns}/{winner.metadata.name} for the same host comes first and istiod keeps only the first trafficPolicy "
        "when it merges them: the TLS is dropped and the proxy sends plain text to that port",
        f"move the TLS settings into DestinationRule {ns}/{winner.metadata.name} (one DestinationRule per host)",
    )


CHECKS = (
    check_dns,
    check_gateway_references,
    check_gateway_selectors,
    check_unrouted_virtual_services,
    check_dead_matches,
    check_route_clusters,
    check_filtered_delegates,
    check_destination_rule_visibility,
    check_gateway_ports,
    check_tls_port_protocol,
    check_server_hosts_routed,
    check_service_entry_resolution,
    check_unmerged_service_entries,
    check_dropped_destination_rule_tls,
)
