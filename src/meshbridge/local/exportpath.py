"""The path each export is asked on: one its routes really serve on every hop of its path (pure).

``/hello-world`` is the article's path, and the rendered VirtualServices route every path of an exported host
(``uri: prefix: /``), so it serves the rendered bridges. Users' own VirtualServices may route less (``prefix:
/api``, ``exact: /ok``): a check asked on ``/hello-world`` there would fail with 404 ``NR`` whatever the bridge
does. So the path is taken from the routes that run: the routes of the exporter gateway's virtual host for
the exported host (the export's own VirtualService, as the proxy holds it) declare the candidates (each
exact path, each prefix), ``/hello-world`` first; the first candidate that every hop (the app's sidecar, the
importer's egress gateway, the exporter's ingress gateway) routes, the last one to the export's backend, is
the export's path. When none does, the exporter's first declared path is used, and the checks say why they
fail.

The proxies' configuration is a :class:`ProxyConfig`: the twin's translation at ``local up``, or what the
running Envoys hold (their ``/config_dump``, :func:`running_config`) for ``verify``. The hops and their
requests are those of :func:`meshbridge.envoy.pathsim.trace_exports`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from meshbridge.envoy.names import parse_cluster_name, parse_file_sds_name, sds_credential
from meshbridge.envoy.pathsim import Hop, trace_exports, unserved
from meshbridge.envoy.placement import Placement
from meshbridge.envoy.simulate import Index, Request, Result, simulate
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView, secret_refs
from meshbridge.spec.models import Bridge, Export
from meshbridge.world import all_proxies, find_proxy

DEFAULT_PATH = "/hello-world"
"""The article's path; every export is asked on it when its routes serve it."""


@dataclass(frozen=True)
class ExportPath:
    """The path an export is asked on, and why.

    Attributes:
        export: the export's name.
        path: the request path.
        routed: whether every hop routes it, the exporter's gateway to the export's backend.
        why: one clause for a person (``the routes serve every path``, ``prefix /api of the exporter's
            route ...``, or why no declared path is routed).
    """

    export: str
    path: str
    routed: bool
    why: str


def export_paths(bridge: Bridge, configs: Mapping[str, ProxyConfig]) -> dict[str, ExportPath]:
    """Each export's path (by export name), from the proxies' configuration ``configs`` (by proxy name)."""
    hops, unreadable = _trace(bridge, configs)
    if unreadable is not None:
        why = f"the routes hold a regex this simulation cannot read ({unreadable}): Envoy alone judges them"
        return {ex.name: ExportPath(ex.name, DEFAULT_PATH, False, why) for ex in bridge.spec.exports}
    return {ex.name: _export_path(ex, [h for h in hops if h.export == ex.name], configs) for ex in bridge.spec.exports}


def _trace(bridge: Bridge, configs: Mapping[str, ProxyConfig]) -> tuple[list[Hop], str | None]:
    """:func:`~meshbridge.envoy.pathsim.trace_exports`, or no hop and why when a route's regex is one Python's
    ``re`` refuses (RE2 syntax, or a regex Envoy itself will reject: the proxy's readiness then says so)."""
    try:
        return trace_exports(bridge, configs), None
    except re.error as e:
        return [], str(e)


def findings(bridge: Bridge, configs: Mapping[str, ProxyConfig], paths: Mapping[str, ExportPath]) -> list[Hop]:
    """The hops that stop each export's request *on its path* (:func:`export_paths`): the hops of
    :func:`~meshbridge.envoy.pathsim.trace_exports` asked on that path that stop it (a VirtualService that routes
    only ``/api`` does not stop an export asked on ``/api/``); none when a route's regex cannot be read here."""
    try:
        hops = trace_exports(bridge, configs, {name: chosen.path for name, chosen in paths.items()})
    except re.error:
        return []
    return [hop for hop in hops if not hop.ok]


def _export_path(ex: Export, hops: list[Hop], configs: Mapping[str, ProxyConfig]) -> ExportPath:
    if not hops:
        return ExportPath(ex.name, DEFAULT_PATH, False, "no proxy of its path runs")
    last = hops[-1]  # the exporter's gateway when the path reaches it, else the last hop there is
    declared = _declared(configs[last.proxy], last.request)
    for path in dict.fromkeys([DEFAULT_PATH, *(p for p, _ in declared)]):
        if all(_routes(configs[h.proxy], h, path, ex if h.proxy == last.proxy else None) for h in hops):
            if path == DEFAULT_PATH:
                return ExportPath(ex.name, path, True, "every hop routes it")
            what = next(d for p, d in declared if p == path)
            return ExportPath(ex.name, path, True, f"{what} of {last.proxy}'s route for {ex.host}, routed by every hop")
    if declared:
        path, what = declared[0]
        return ExportPath(
            ex.name, path, False, f"{what} of {last.proxy}'s route for {ex.host}; no hop-by-hop route serves any path"
        )
    return ExportPath(ex.name, DEFAULT_PATH, False, f"{last.proxy} declares no path for {ex.host}")


def _routes(pc: ProxyConfig, hop: Hop, path: str, ex: Export | None) -> bool:
    """Whether ``pc`` routes ``hop``'s request on ``path`` to a cluster; with ``ex``, to its backend, which has
    endpoints (:func:`~meshbridge.envoy.pathsim.unserved`)."""
    result = _simulate(pc, replace(hop.request, path=path))
    if result is None or not result.ok:
        return False
    if ex is None:
        return True
    parsed = parse_cluster_name(result.cluster or "")
    return parsed is not None and parsed[3] == ex.backend.host and unserved(Index(pc), result).ok


def backend_hop(
    bridge: Bridge,
    configs: Mapping[str, ProxyConfig],
    ex: Export,
    path: str,
    headers: tuple[tuple[str, str], ...] = (),
) -> Hop | None:
    """The exporter gateway's hop of ``ex``'s path asked on ``path`` (with ``headers``): where the configuration that
    runs sends the export's requests (its cluster: the export's backend, or what the user's VirtualService routes to,
    stopped with 503 ``UH`` when it has no endpoints). ``None`` when no hop reaches the exporter's gateway or a
    route's regex cannot be read here."""
    hops = [h for h in _trace(bridge, configs)[0] if h.export == ex.name and h.proxy.split("/", 1)[0] == ex.from_]
    if not hops:
        return None
    hop = hops[0]
    pc = configs[hop.proxy]
    request = replace(hop.request, path=path, headers=(*hop.request.headers, *headers))
    result = _simulate(pc, request)
    return None if result is None else replace(hop, request=request, result=unserved(Index(pc), result))


def _simulate(pc: ProxyConfig, req: Request) -> Result | None:
    try:
        return simulate(pc, req)
    except re.error:  # a regex Envoy takes (RE2) that Python's re does not: unknown here
        return None


def _declared(pc: ProxyConfig, req: Request) -> list[tuple[str, str]]:
    """The paths the virtual host ``req`` reaches declares, in route order: ``(path, what)`` for each exact
    path and each prefix (regexes declare none)."""
    result = _simulate(pc, req)
    if result is None or result.route_config is None or result.virtual_host is None:
        return []
    ix = Index(pc)
    rc = ix.route_configs.get(result.route_config)
    vhosts = rc.get("virtual_hosts", []) if rc else []
    vh = next((v for v in vhosts if v.get("name") == result.virtual_host), None)
    out: list[tuple[str, str]] = []
    for route in vh.get("routes", []) if vh else []:
        if "route" not in route:  # a direct response or a redirect serves no export
            continue
        m = route.get("match", {})
        for key, what in (("path", "exact path"), ("prefix", "prefix"), ("path_separated_prefix", "prefix")):
            value = m.get(key)
            if isinstance(value, str) and value.startswith("/"):
                out.append((value, f"{what} {value}"))
    return out


def running_config(bridge: Bridge, name: str, address: str, dump: Mapping[str, Any]) -> ProxyConfig:
    """The configuration a running Envoy holds (its ``/config_dump``, read by
    :meth:`~meshbridge.envoy.view.EnvoyView.from_config_dump`), as a :class:`ProxyConfig` the path simulation
    reads: its listeners, clusters, route configurations, endpoints and secrets (``None`` for those it still
    waits for).

    Raises:
        KeyError: ``name`` is not a proxy of ``bridge``.
    """
    view = EnvoyView.from_config_dump(dump)
    return ProxyConfig(
        proxy=find_proxy(bridge, name).proxy,
        placement=Placement(address, Path(".")),
        listeners=view.listeners,
        clusters=list(view.clusters.values()),
        route_configs=view.route_configs,
        endpoints=view.assignments,
        secrets=dict(view.secrets),
        warnings=[],
    )


def gateway_credentials(bridge: Bridge, configs: Mapping[str, ProxyConfig]) -> dict[str, list[str]]:
    """The credentials each gateway really reads on the exports' paths (by proxy name): the ``credentialName``
    of each ``kubernetes://`` secret the exporter's filter chain for the export's SNI serves (a Gateway API
    listener's: ``kubernetes-gateway://<ns>/<name>``, :func:`~meshbridge.envoy.names.sds_credential`), and that the
    importer's cluster to the exporter presents (without the ``-cacert`` suffix), in path order.

    Whatever the spec's ``tls.credentialName``, this is the Secret the gateway reads: the user's manifests may
    name another one. A gateway whose hop reached no filter chain or cluster, or that reads only files of its pod
    (:func:`gateway_files`), is absent.
    """
    return secret_credentials(gateway_secrets(bridge, configs))


def gateway_files(secrets: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The SDS names of the pod's certificate files (``file-cert:<cert>~<key>``, ``file-root:<ca>``: a Gateway's
    ``serverCertificate``/``privateKey``/``caCertificates``, a DestinationRule's ``clientCertificate``...) each
    gateway of ``secrets`` (:func:`gateway_secrets`) reads on the exports' paths; a gateway reading none is
    absent."""
    out = {proxy: [r for r in refs if parse_file_sds_name(r) is not None] for proxy, refs in secrets.items()}
    return {proxy: refs for proxy, refs in out.items() if refs}


def gateway_secrets(bridge: Bridge, configs: Mapping[str, ProxyConfig]) -> dict[str, list[str]]:
    """Every SDS name each gateway uses on the exports' paths (by proxy name): those of the exporter's filter chain
    for the export's SNI, and of the importer's cluster to the exporter, in path order."""
    roles = {p.name: p.role for p in all_proxies(bridge)}
    out: dict[str, list[str]] = {}
    for hop in _trace(bridge, configs)[0]:
        view, result = EnvoyView.of(configs[hop.proxy]), hop.result
        socket: dict[str, Any] = {}
        if roles.get(hop.proxy) == "ingress" and result.filter_chain is not None:
            chain = view.chain(hop.request.port, result.filter_chain)
            socket = chain.config.get("transport_socket", {}) if chain else {}
        elif roles.get(hop.proxy) == "egress" and result.cluster is not None:
            socket = view.clusters.get(result.cluster, {}).get("transport_socket", {})
        for ref in secret_refs(socket):
            if ref not in out.setdefault(hop.proxy, []):
                out[hop.proxy].append(ref)
    return out


def secret_credentials(secrets: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The ``credentialName`` values of ``secrets`` (:func:`gateway_secrets`), each once, by proxy; a proxy without
    any is absent."""
    out: dict[str, list[str]] = {}
    for proxy, refs in secrets.items():
        for ref in refs:
            parsed = sds_credential(ref)
            if parsed is not None and parsed[0] not in out.setdefault(proxy, []):
                out[proxy].append(parsed[0])
    return out
