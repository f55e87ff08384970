"""Which Envoy routes each gateway must have once the bridge is applied, and whether a gateway has them (pure).

istiod names a gateway's route configurations (RDS) after the Gateway server (istio/istio
``pilot/pkg/model/gateway.go``, ``gatewayRDSRouteName``):

* an HTTPS server that terminates TLS: ``https.<server port>.<port name>.<Gateway name>.<Gateway namespace>``,
  e.g. ``https.443.https.eastwestgateway.istio-ingress`` on the exporter's ingress gateway;
* a plain HTTP server: ``http.<targetPort>``, the gateway Service's targetPort of the server port, e.g.
  ``http.8080`` on the importer's egress gateway (Service 80→8080).

A route name alone is not enough (istiod emits a ``blackhole`` virtual host, domain ``*``, when no
VirtualService binds), so each expectation also names the hosts that route configuration must serve: the
gateway's ``/config_dump`` is read through :class:`~meshbridge.envoy.view.EnvoyView` and each host is asked of
the simulator's virtual host choice (:func:`meshbridge.envoy.simulate.virtual_host`), the catch-all ``*`` left
out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from meshbridge.envoy import names
from meshbridge.envoy.gateway import server_kind
from meshbridge.envoy.simulate import index_of
from meshbridge.envoy.view import EnvoyView
from meshbridge.istio.resources import Server
from meshbridge.render.manifests import ManifestSet
from meshbridge.spec.models import Bridge, GatewayWorkload, Mesh

Role = Literal["ingress", "egress"]


@dataclass(frozen=True)
class ExpectedRoute:
    """A route configuration one gateway workload must serve.

    Attributes:
        mesh: the mesh.
        role: ``ingress`` (the exporter's) or ``egress`` (the importer's).
        namespace: the gateway pods' namespace.
        selector: the labels the rendered Gateway selects the pods with.
        gateway: the Istio ``Gateway`` resource's name.
        route: the RDS name, e.g. ``http.8080``.
        domains: hosts that must be among the route's virtual-host domains.
    """

    mesh: str
    role: Role
    namespace: str
    selector: tuple[tuple[str, str], ...]
    gateway: str
    route: str
    domains: tuple[str, ...]

    @property
    def selector_text(self) -> str:
        """The selector as a label selector string (``app=x,istio=y``)."""
        return selector_text(dict(self.selector))


def gateway_workloads(bridge: Bridge, mesh: str) -> list[tuple[Role, GatewayWorkload]]:
    """The gateway workloads ``mesh`` uses: its ingress gateway if it exports, its egress gateway if it imports
    with sidecars (an ambient importer's is a waypoint, which istiod deploys from the applied ``Gateway``: no pod,
    Service or route of it to find before, and no Istio Gateway server)."""
    m = bridge.spec.meshes[mesh]
    out: list[tuple[Role, GatewayWorkload]] = []
    if bridge.exports_from(mesh) and m.ingress_gateway is not None:
        out.append(("ingress", m.ingress_gateway))
    if bridge.exports_to(mesh) and m.egress_gateway is not None and m.dataplane == "sidecar":
        out.append(("egress", m.egress_gateway))
    return out


def waypoint_namespaces(bridge: Bridge, mesh: str) -> list[str]:
    """The namespace of an ambient importer's waypoint (where its ServiceEntries, DestinationRules and Secret are),
    which :func:`gateway_workloads` leaves out; none for another mesh."""
    m = bridge.spec.meshes[mesh]
    eg = m.egress_gateway
    return [eg.namespace] if m.dataplane == "ambient" and eg is not None and bridge.exports_to(mesh) else []


def gateway_selector(mesh: Mesh, gw: GatewayWorkload) -> dict[str, str]:
    """The labels the rendered ``Gateway`` selects ``gw``'s pods with: the pods' labels
    (:meth:`~meshbridge.spec.models.Mesh.pod_labels`, which adds ``istio.io/rev`` when the mesh runs a revision)."""
    return mesh.pod_labels(gw.labels)


def selector_text(labels: Mapping[str, str]) -> str:
    """``{"app": "x", "istio": "y"}`` → ``app=x,istio=y`` (a label selector)."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def expected_routes(
    bridge: Bridge,
    mesh: str,
    manifests: ManifestSet,
    target_ports: Mapping[tuple[str, str], Mapping[int, int]] | None = None,
) -> list[ExpectedRoute]:
    """The routes each gateway of ``mesh`` must serve, derived from the rendered Gateways.

    Args:
        bridge: the spec.
        mesh: the mesh.
        manifests: its rendered documents.
        target_ports: the live gateway Services' port → targetPort maps by ``(namespace, service name)``;
            missing entries fall back to the spec's ``ports``.

    Returns:
        One expectation per Gateway server, in document order.
    """
    target_ports = target_ports or {}
    by_gateway = {(gw.namespace, gw.gateway): (role, gw) for role, gw in gateway_workloads(bridge, mesh)}
    out: list[ExpectedRoute] = []
    for doc in manifests:
        if doc.get("kind") != "Gateway":
            continue
        md = doc["metadata"]
        found = by_gateway.get((md.get("namespace"), md.get("name")))
        if found is None:
            continue
        role, gw = found
        spec = doc.get("spec") or {}
        selector = tuple(sorted((str(k), str(v)) for k, v in (spec.get("selector") or {}).items()))
        live_ports = target_ports.get((gw.namespace, gw.name), {})
        for server in (Server.model_validate(s) for s in spec.get("servers") or []):
            number, kind = server.port.number, server_kind(server)
            if kind == "https":
                route = names.https_route_name(number, server.port.name, md["name"], md["namespace"], server.bind)
            elif kind == "http":
                route = names.http_route_name(live_ports.get(number) or gw.target_port(number) or number, server.bind)
            else:
                continue
            hosts = tuple(h.split("/", 1)[-1] for h in server.hosts)
            out.append(ExpectedRoute(mesh, role, gw.namespace, selector, str(md["name"]), route, hosts))
    return out


def missing(expected: Iterable[ExpectedRoute], found: EnvoyView) -> list[str]:
    """What a gateway lacks of ``expected``, one line per problem; ``[]`` = all there.

    Args:
        expected: the routes it must serve.
        found: its configuration, e.g. ``EnvoyView.from_config_dump(dump)`` of its ``/config_dump`` (the whole
            dump, one taken with ``mask=dynamic_route_configs``, or with ``resource=dynamic_route_configs``).
    """
    problems = []
    for e in expected:
        rc = found.route_config(e.route)
        if rc is None:
            problems.append(f"route {e.route} is absent")
            continue
        vhosts = index_of(found).vhosts(rc)  # indexed once per view and route configuration
        lacking = [d for d in e.domains if vhosts.pick(d, catch_all=False) is None]
        if lacking:
            domains = {str(d) for vh in rc.get("virtual_hosts") or [] for d in vh.get("domains") or []}
            problems.append(
                f"route {e.route} has no virtual host for {', '.join(lacking)} "
                f"(domains: {', '.join(sorted(domains)) or 'none'})"
            )
    return problems
