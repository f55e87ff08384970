"""MB214: the mesh-internal hop from an app's sidecar to a gateway of its mesh that the gateway resets (pure).

Istio's egress TLS-origination task sends the apps' requests to the egress gateway over Istio's mutual TLS: a
VirtualService bound to the sidecars routes the host to the gateway's Service (a subset, port 443), and that
subset's DestinationRule says ``ISTIO_MUTUAL`` with ``sni: <the host>``, the host the egress Gateway's
``ISTIO_MUTUAL`` server serves. Without that ``sni`` the sidecar sends istiod's own SNI
(``outbound_.443_.<subset>_.<gateway Service>``), which selects no filter chain of the gateway: it resets the
connection (``NR filter_chain_not_found``) and the app gets 503. Where the sidecar sends the host and what the
gateway does with it are asked of the simulator (:mod:`meshbridge.envoy.simulate`), the request the sidecar
sends being :func:`meshbridge.envoy.pathsim.upstream_request`'s, as the twin's path check and the oracle's calls
follow it; the hop across meshes (the egress gateway to the exporter) is MB3xx's.
"""

from __future__ import annotations

from collections.abc import Iterator

from meshbridge.envoy.gateway import resolve_port
from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.pathsim import upstream_request
from meshbridge.envoy.simulate import Request, simulate
from meshbridge.istio.protocol import is_http
from meshbridge.istio.visibility import MESH_GATEWAY, Proxy, gateways_for, qualify_host, vs_gateways
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import LintInput, MeshInput


def check_sidecar_to_gateway(inp: LintInput) -> Iterator[Finding]:
    """MB214: an app's sidecar sends a host a VirtualService routes to a gateway of the mesh with TLS whose SNI
    selects no filter chain of that gateway (one finding per DestinationRule field)."""
    for mesh in inp.meshes:
        seen: set[tuple[str, str, str]] = set()
        for host in _sidecar_hosts(mesh):
            for app in mesh.sidecars:
                for found in _stops(mesh, app, host):
                    key = (found.objects[0].namespace, found.objects[0].name, found.objects[0].field)
                    if key not in seen:
                        seen.add(key)
                        yield found


def _sidecar_hosts(mesh: MeshInput) -> list[str]:
    """The hosts of the VirtualServices bound to the sidecars (``gateways`` empty or listing ``mesh``)."""
    hosts = [
        qualify_host(h, vs.metadata.namespace).lower()
        for vs in mesh.config.virtual_services
        if not vs.spec.gateways or MESH_GATEWAY in vs_gateways(vs)
        for h in vs.spec.hosts
    ]
    return list(dict.fromkeys(h for h in hosts if not h.startswith("*")))


def _stops(mesh: MeshInput, app: Proxy, host: str) -> Iterator[Finding]:
    """MB214 for each HTTP port of ``host`` on which ``app``'s sidecar reaches a gateway of ``mesh`` that resets
    its TLS for want of a filter chain matching its SNI."""
    svc = mesh.find(app, host)
    routers = {p.service.fqdn.lower(): p for p in mesh.routers if p.service is not None}
    if svc is None or not routers:
        return
    view = mesh.view(app)
    for port in (p.number for p in svc.ports if is_http(p.protocol)):
        sent = simulate(view, Request(port, host), secrets=False)
        parsed = parse_cluster_name(sent.cluster or "") if sent.ok else None
        gateway = routers.get(parsed[3].lower()) if parsed is not None else None
        if parsed is None or gateway is None:
            continue
        target = resolve_port(gateway, parsed[1])
        req = upstream_request(view, str(sent.cluster), target, host)
        if not req.tls:
            continue  # plain text to a TLS port is MB209's
        at = simulate(mesh.view(gateway), req, secrets=False)
        if at.error != "NoFilterChain":
            continue
        yield _finding(mesh, app, gateway, (host, port), (parsed[3], parsed[1], parsed[2]), req.sni, target)


def _finding(
    mesh: MeshInput,
    app: Proxy,
    gateway: Proxy,
    asked: tuple[str, int],
    dest: tuple[str, int, str],
    sni: str | None,
    target: int,
) -> Finding:
    """MB214 naming the DestinationRule whose tls the sidecar's cluster ``dest`` (gateway Service, port, subset)
    originates for the app's ``asked`` host and port, and the gateway's Gateway servers on ``target``."""
    host, app_port = asked
    service, port, subset = dest
    servers = _servers(mesh, gateway, target)
    names = sorted({h.split("/", 1)[-1] for _, s in servers for h in s})
    want = host if host in names or not names else names[0]
    ref, set_sni = mesh.client_tls(app, service, port, subset) or (None, None)
    rule = ref.at(ref.field + ".sni") if ref is not None and set_sni else ref  # the sni the rule sets, else its tls
    where = f"DestinationRule {rule.namespace}/{rule.name} {rule.field}" if rule else f"the tls for {service}"
    said = f"its sni {sni}" if set_sni else f"istiod's SNI {sni}"
    refs = [r for r in (rule, *(ref for ref, _ in servers)) if r is not None]
    served = ", ".join(names) or "no host"
    return finding(
        "MB214",
        refs,
        f"the sidecar of {mesh.name}/{app.name} sends {host}:{app_port} to {gateway.name} ({service} port {port}, "
        f"subset {subset or '-'}) with TLS and {said}, which no filter chain of {gateway.name} on port {target} "
        f"matches (its Gateway servers there serve {served}): the gateway resets the connection (NR "
        "filter_chain_not_found)",
        f"set sni: {want} in {where} (a host of the Gateway server the gateway terminates it with)",
    )


def _servers(mesh: MeshInput, gateway: Proxy, target: int) -> list[tuple[ObjectRef, list[str]]]:
    """The Gateway servers ``gateway`` listens with on ``target``: their ``hosts`` fields and hosts."""
    return [
        (mesh.ref("Gateway", gw.metadata.namespace, gw.metadata.name, f"spec.servers[{i}].hosts"), list(s.hosts))
        for gw in gateways_for(mesh.config, gateway)
        for i, s in enumerate(gw.spec.servers)
        if resolve_port(gateway, s.port.number) == target
    ]


CHECKS = (check_sidecar_to_gateway,)
