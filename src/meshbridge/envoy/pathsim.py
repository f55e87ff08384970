"""The path of each export, simulated hop by hop over the translated configs, before any Envoy runs (pure).

For every export and every app of every importing mesh, three requests go through
:func:`meshbridge.envoy.simulate.simulate`, as each proxy would receive them:

1. the app's sidecar: plain HTTP to ``http://<the host apps call>:<export port>/`` (``importAs``, else the
   export host);
2. the importer's egress gateway: the request for the export host (its sidecar route rewrites an
   ``importAs`` host's authority to it) on the container port its Service maps the port of the sidecar's
   cluster to (``outbound|80|lambda|istio-egressgateway…`` → Service port 80 → targetPort 8080); when the
   sidecar's cluster is not the egress gateway's (:func:`bypasses`: a VirtualService that binds the egress Gateway
   but not ``mesh``), there is no such hop: the sidecar's own cluster takes the request to the exporter, as it sends
   it (plain HTTP without a DestinationRule the app sees), and the exporter's hop says so (:attr:`Hop.note`);
3. the exporter's ingress gateway: TLS on the targetPort of the export's ``gatewayPort``, with the SNI, ALPN
   and client certificate the egress gateway's cluster sends (its ``UpstreamTlsContext``); when the egress hop
   reached no cluster, the export host as SNI and a client certificate, as rendered. The certificate's identity
   (what the exporter's AuthorizationPolicy, its RBAC filter, judges) is the importer egress gateway's SPIFFE ID,
   and every request comes from the twin's address (:data:`~meshbridge.envoy.placement.TWIN_SOURCE`, what
   ``ipBlocks`` judge).
   The cluster it reaches is the backend the configuration routes to: one without endpoints (a Service no pod
   serves) stops the request there with Envoy's 503 ``UH`` (:func:`unserved`). The handshake between the two
   gateways is judged on the certificates and CAs each is served (:mod:`meshbridge.envoy.handshake`): an importer
   that does not trust the server certificate stops the egress hop with 503 ``UF``, an exporter that does not
   trust the client certificate stops this hop (``UnknownCA``); an egress cluster that originates ISTIO_MUTUAL
   (the mesh's own identity, not the bridge's) stops the egress hop with 503 ``UF`` (``IstioMutualToPeer``); so does
   an exporter chain that passes the TLS through to its backend (``TLSPassthrough``: the handshake is the
   backend's, :mod:`meshbridge.envoy.passthrough`, and no backend of the twin terminates it).

Each hop is simulated even when an earlier one fails, so one run names every proxy that would stop the
request. The behaviour reproduced, and its limits, are those of :mod:`meshbridge.envoy.simulate` (in the
style of istio's ``pilot/pkg/simulation``). A :class:`Hop` is also what lint's cross-mesh walk
(:mod:`meshbridge.lint.crossmesh`) asks the simulator for, one per importer proxy and exporter gateway.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from meshbridge.envoy.handshake import (
    MESH_IDENTITY,
    SERVER_REFUSED,
    End,
    istio_mutual,
    istio_mutual_fix,
    istio_mutual_why,
    judge,
)
from meshbridge.envoy.names import parse_cluster_name
from meshbridge.envoy.passthrough import PASSTHROUGH, passthrough_chain, passthrough_fix, passthrough_why
from meshbridge.envoy.placement import TWIN_SOURCE
from meshbridge.envoy.simulate import Index, Request, Result, simulate
from meshbridge.envoy.translate import ProxyConfig
from meshbridge.envoy.view import EnvoyView, sds_names
from meshbridge.istio.visibility import spiffe_id as workload_id
from meshbridge.pki.identities import spiffe_id
from meshbridge.spec.models import Bridge, GatewayWorkload
from meshbridge.world import proxies


@dataclass(frozen=True)
class Hop:
    """One proxy on an export's path: the request it receives and what it does with it.

    Attributes:
        export: the export's name (for lint's walk: the exported host).
        app: the importing app whose request this is (``<mesh>/<workload>``; for lint's walk: the importer
            proxy that sends it).
        proxy: the proxy of this hop (``<mesh>/<workload>``).
        request: what reaches it.
        result: where it went, or why it stopped.
        note: how the request came there, when not as the path means it to (the app's sidecar sent it to the
            exporter itself, not through its egress gateway); said after a stop.
    """

    export: str
    app: str
    proxy: str
    request: Request
    result: Result
    note: str = ""

    @property
    def ok(self) -> bool:
        """True when the hop reached a cluster."""
        return self.result.ok

    def __str__(self) -> str:
        r = self.result
        outcome = f"→ {r.response_flag or r.error}: {r.detail}{self.note}" if not r.ok else f"→ {r.cluster}"
        return f"{self.proxy}: {describe(self.request)} {outcome} (export {self.export}, app {self.app})"


def describe(req: Request) -> str:
    """``GET http://lambda.external:80/``, with the SNI and client certificate of a TLS request."""
    scheme = "https" if req.tls else "http"
    text = f"GET {scheme}://{req.host}:{req.port}{req.path}"
    if req.tls:
        text += f" (SNI {req.sni or 'none'}, {'a' if req.client_cert else 'no'} client certificate)"
    return text


def trace_exports(
    bridge: Bridge, configs: Mapping[str, ProxyConfig], paths: Mapping[str, str] | None = None
) -> list[Hop]:
    """Every hop of every export's path, for every app of every importing mesh.

    Args:
        bridge: the bridge (exports, gateways and their Service ports, apps).
        configs: translated proxies by ``<mesh>/<workload>``; a hop whose proxy is missing is skipped.
        paths: the request path each export is asked on, by export name; ``/`` for the others.

    Returns:
        The hops in path order (sidecar, egress gateway, exporter's ingress gateway), per export and app.
    """
    hops: list[Hop] = []
    indexes = {name: Index(pc) for name, pc in configs.items()}

    def hop(export: str, app: str, name: str, req: Request, backend: bool = False) -> Result | None:
        pc = configs.get(name)
        if pc is None:
            return None
        req = replace(req, source=TWIN_SOURCE)
        result = simulate(pc, req, indexes[name])
        hops.append(Hop(export, app, name, req, unserved(indexes[name], result) if backend else result))
        return result

    apps = {mesh: [p.name for p in proxies(bridge, mesh) if p.role == "app"] for mesh in bridge.spec.meshes}
    callers = {
        p.name: workload_id(bridge.spec.meshes[p.mesh].trust_domain, p.proxy.namespace, p.proxy.sa)
        for mesh in bridge.spec.meshes
        for p in proxies(bridge, mesh)
        if p.role == "app"
    }
    for ex in bridge.spec.exports:
        ingress = bridge.spec.meshes[ex.from_].ingress_gateway
        path = (paths or {}).get(ex.name, "/")
        for mesh in ex.to:
            egress = bridge.spec.meshes[mesh].egress_gateway
            for app in apps[mesh]:
                sent = hop(ex.name, app, app, Request(ex.port, ex.import_host, path))
                if egress is None:
                    continue
                egress_name = f"{mesh}/{egress.name}"
                if bridge.spec.meshes[mesh].dataplane != "ambient" and bypasses(sent, egress):
                    if ingress is not None:  # the sidecar's own cluster reaches the exporter, as the curl does
                        port = ingress.target_port(ex.gateway_port) or ex.gateway_port
                        req = Request(port, ex.host, path, tls=True, sni=ex.host, client_cert=True)
                        sent_on = _sent(indexes.get(app), sent, req)
                        sent_on = replace(sent_on, principal=callers[app] if sent_on.client_cert else None)
                        hop(ex.name, app, f"{ex.from_}/{ingress.name}", sent_on, backend=True)
                        _note_bypass(hops, app, egress_name, sent)
                    continue
                port = _service_port(sent, egress) or ex.egress_port
                port = egress.target_port(port) or port
                to_egress = _sent(indexes.get(app), sent, Request(port, ex.host, path))
                if bridge.spec.meshes[mesh].dataplane == "ambient":  # no sidecar: the waypoint gets the app's request
                    to_egress = Request(ex.port, ex.import_host, path, principal=callers[app])  # HBONE's identity
                at_egress = hop(ex.name, app, egress_name, to_egress)
                if ingress is None:
                    continue
                port = ingress.target_port(ex.gateway_port) or ex.gateway_port
                req = Request(port, ex.host, path, tls=True, sni=ex.host, client_cert=True)
                sent_on = _sent(indexes.get(egress_name), at_egress, req)
                identity = spiffe_id(bridge.spec.meshes[mesh].trust_domain, egress) if sent_on.client_cert else None
                ingress_name = f"{ex.from_}/{ingress.name}"
                at_ingress = hop(ex.name, app, ingress_name, replace(sent_on, principal=identity), backend=True)
                if at_egress is not None and at_ingress is not None:
                    ends = _end(configs, indexes, mesh, egress_name), _end(configs, indexes, ex.from_, ingress_name)
                    _judge_handshake(bridge, hops, *ends, port)
    return hops


def bypasses(sent: Result | None, egress: GatewayWorkload) -> bool:
    """Whether an app's sidecar that routed its request as ``sent`` sends it on itself, not through ``egress``: it
    reached a cluster that is not the egress gateway's (the importer's VirtualService for the host binds no sidecar,
    its ``gateways`` without ``mesh``, so istiod gives the sidecar the ServiceEntry's own route and cluster). A
    request the sidecar stopped or answered itself goes nowhere: no bypass."""
    return sent is not None and sent.ok and sent.cluster is not None and _service_port(sent, egress) is None


def _note_bypass(hops: list[Hop], app: str, egress_name: str, sent: Result | None) -> None:
    """The last of ``hops`` (the exporter's gateway, reached by ``app``'s sidecar itself), with a note saying why the
    request came without what the egress gateway adds."""
    last = hops[-1] if hops else None
    if last is None or last.app != app or sent is None:
        return
    note = (
        f"; {app} sent it there itself ({sent.cluster}), not through {egress_name}: no VirtualService bound to the "
        "sidecars (gateways: mesh, or none) routes the host to the egress gateway (lint MB122)"
    )
    hops[-1] = replace(last, note=note)


def _end(configs: Mapping[str, ProxyConfig], indexes: Mapping[str, Index], mesh: str, name: str) -> End:
    return End(mesh, name, configs[name].proxy.namespace, indexes[name].view)


def _judge_handshake(bridge: Bridge, hops: list[Hop], egress: End, ingress: End, port: int) -> None:
    """The last two ``hops`` (the importer's egress gateway, then the exporter's ingress gateway), stopped where the
    handshake between them fails on trust, revocation or SAN pins (:func:`meshbridge.envoy.handshake.judge`): the
    egress hop with 503 ``UF`` when the importer refuses the server certificate, else the ingress hop when the
    exporter refuses the client certificate. A hop that stops before the handshake (no cluster, no filter chain, no
    TLS) is left as it is. An egress cluster that originates ISTIO_MUTUAL stops the egress hop first
    (:func:`_stop_istio_mutual`)."""
    at_egress, at_ingress = hops[-2].result, hops[-1].result
    if _stop_istio_mutual(hops, egress, ingress) or _stop_passthrough(hops, ingress, port):
        return
    if not at_egress.ok or at_egress.cluster is None or at_ingress.filter_chain is None:
        return
    if at_ingress.error in _BEFORE_HANDSHAKE:
        return
    refusal = judge(bridge, egress, at_egress.cluster, ingress, port, at_ingress.filter_chain)
    if refusal is None:
        return
    if refusal.error == SERVER_REFUSED:
        stopped = replace(at_egress, error=refusal.error, status=503, response_flag="UF", detail=refusal.detail)
        hops[-2] = replace(hops[-2], result=stopped)
        return
    stopped = Result(at_ingress.listener, at_ingress.filter_chain, error=refusal.error, detail=refusal.detail)
    hops[-1] = replace(hops[-1], result=stopped)


def _stop_istio_mutual(hops: list[Hop], egress: End, ingress: End) -> bool:
    """Whether the egress hop (``hops[-2]``) reached a cluster to the exporter that originates ISTIO_MUTUAL
    (:func:`meshbridge.envoy.handshake.istio_mutual`): then it is stopped with 503 ``UF``, the exporter's hop
    (``hops[-1]``) telling whether its SNI selected a chain, and the explanation lint's MB306 gives."""
    at_egress, at_ingress = hops[-2].result, hops[-1].result
    cluster = at_egress.cluster if at_egress.ok else None
    parsed = parse_cluster_name(cluster) if cluster is not None else None
    if cluster is None or parsed is None or not istio_mutual(egress.view, cluster):
        return False
    matched = at_ingress.filter_chain is not None
    why = istio_mutual_why(egress.proxy, egress.view, cluster, ingress.proxy, matched)
    fix = istio_mutual_fix(f"the tls of the importer's DestinationRule for {parsed[3]} port {parsed[1]}")
    stopped = replace(at_egress, error=MESH_IDENTITY, status=503, response_flag="UF", detail=f"{why}. Fix: {fix}")
    hops[-2] = replace(hops[-2], result=stopped)
    return True


def _stop_passthrough(hops: list[Hop], ingress: End, port: int) -> bool:
    """Whether the exporter's hop (``hops[-1]``) reached a backend through a chain that passes the TLS through
    (:func:`meshbridge.envoy.passthrough.passthrough_chain`): then the egress hop (``hops[-2]``) is stopped with
    503 ``UF``, the handshake being the backend's to finish, which no backend of the twin can."""
    at_egress, at_ingress = hops[-2].result, hops[-1].result
    chain = passthrough_chain(ingress.view, port, at_ingress.filter_chain) if at_ingress.ok else None
    if chain is None or not at_egress.ok or not hops[-1].request.tls:
        return False
    detail = (
        f"{passthrough_why(ingress.proxy, chain)}; the twin's backends cannot play one (the ALB emulator serves its "
        "own certificate on 443, which the importer does not trust: CERTIFICATE_VERIFY_FAILED; plain HTTP on 80: "
        "WRONG_VERSION_NUMBER; docs/fidelity.md), so the importer's egress gateway answers 503 UF (URX,UF once its "
        f"retries are spent). Fix: {passthrough_fix(hops[-1].request.sni or hops[-1].request.host)}"
    )
    stopped = replace(at_egress, error=PASSTHROUGH, status=503, response_flag="UF", detail=detail)
    hops[-2] = replace(hops[-2], result=stopped)
    return True


_BEFORE_HANDSHAKE = frozenset({"TLSRequired", "PlaintextOnTLS", "SecretNotReady", "ClientCertRequired", "UnknownCA"})
"""The ingress hop's errors that stop the connection before (or as) the handshake checks a certificate's CA."""


def unserved(index: Index, result: Result) -> Result:
    """``result``; or, when the cluster it reached has no endpoint (an EDS cluster of a Service no pod serves, a
    DNS cluster without addresses), the request stopped there as Envoy stops it: 503 with ``UH`` (no healthy
    upstream). Clusters that find their hosts otherwise (``ORIGINAL_DST``, a custom ``cluster_type``) are kept."""
    cluster = index.view.clusters.get(result.cluster or "") if result.ok else None
    if cluster is None or cluster.get("type") == "ORIGINAL_DST" or "cluster_type" in cluster:
        return result
    if index.view.endpoints(str(result.cluster)):
        return result
    return replace(
        result,
        error="NoHealthyUpstream",
        status=503,
        response_flag="UH",
        detail=f"cluster {result.cluster} has no endpoints (no pod serves its Service): Envoy answers 503 UH",
    )


def _sent(index: Index | None, result: Result | None, default: Request) -> Request:
    """The request the proxy of ``index`` sends through the cluster ``result`` reached, to ``default``'s port, host
    and path (its TLS, SNI and client certificate: ISTIO_MUTUAL to the egress gateway, MUTUAL to the exporter);
    ``default`` when that cluster is unknown."""
    cluster = result.cluster if result is not None else None
    if index is None or cluster is None or cluster not in index.view.clusters:
        return default
    return upstream_request(index.view, cluster, default.port, default.host, default.path)


def path_findings(bridge: Bridge, configs: Mapping[str, ProxyConfig]) -> list[Hop]:
    """The hops of :func:`trace_exports` that stop the request (no listener, filter chain, route, cluster…)."""
    return [h for h in trace_exports(bridge, configs) if not h.ok]


def _service_port(result: Result | None, gw: GatewayWorkload) -> int | None:
    """The Service port of ``gw`` that the cluster ``result`` reached dials, when that cluster is ``gw``'s."""
    parsed = parse_cluster_name(result.cluster) if result is not None and result.cluster else None
    if parsed is None or not parsed[3].startswith(f"{gw.name}.{gw.namespace}."):
        return None
    return parsed[1]


def upstream_request(view: EnvoyView, cluster: str, port: int, host: str, path: str = "/") -> Request:
    """The request ``view``'s proxy sends through ``cluster`` to ``port``: TLS or not, with the SNI (the cluster's
    ``sni``, else the Host under ``auto_sni``), ALPN and client certificate its ``UpstreamTlsContext`` sets."""
    tls = view.upstream_tls(cluster)
    if tls is None:
        return Request(port, host, path)
    common = tls.get("common_tls_context") or {}
    auto_sni, _ = view.auto_sni(cluster)
    sni = tls.get("sni") or (host if auto_sni else None)
    alpn = tuple(common.get("alpn_protocols") or ())
    return Request(port, host, path, tls=True, sni=sni, client_cert=bool(sds_names(common)[0]), alpn=alpn)
