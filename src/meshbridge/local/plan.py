"""The local twin's plan (pure): who runs where, which names resolve to what, which ports are remapped.

Given a bridge, a /24 inside 127.0.0.0/8 and whether low ports can be bound, the plan gives:

* an address per component: each mesh's DNS server (``.53``, ``.54``, ...), each proxy (gateways and
  apps' sidecars, from ``.10``), each export's ALB (after the proxies); the egress gateway of a mesh that
  imports nothing is left out (nothing would send through it), with a note that says so;
* the clouds' DNS: per mesh, the Kubernetes Service names of that mesh's gateways (cluster DNS), the
  load-balancer names of every exporter's ingress gateway (public DNS), and — only in the exporting mesh —
  the backend host of each export (the private ALB is only resolvable inside its VPC);
* each proxy's :class:`~meshbridge.envoy.placement.Placement`: its address, its mesh's DNS server, the folder
  of its workload certificate, and the endpoint remappings a cloud does implicitly (a load balancer's 443 → the
  gateway's 8443; ports below 1024 moved up by 10000 when not running as root);
* each ALB's listeners (HTTP 80 and the backend's port, advertised as AWS would, bound locally).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from meshbridge.envoy.placement import Placement
from meshbridge.errors import LocalError
from meshbridge.ipaddr import is_ip
from meshbridge.spec.models import Bridge, Export
from meshbridge.world import ProxySpec, all_proxies

LOOPBACK = ipaddress.IPv4Network("127.0.0.0/8")
LOW_PORT_OFFSET = 10000
DNS_PORT = 53


@dataclass(frozen=True)
class AlbListenerPlan:
    """One ALB listener: protocol, the port AWS clients dial, the port bound here."""

    protocol: Literal["HTTP", "HTTPS"]
    advertised_port: int
    port: int


@dataclass(frozen=True)
class AlbPlan:
    """The emulated internal ALB of one export, with its Lambda."""

    name: str
    mesh: str
    export: str
    host: str
    address: str
    listeners: tuple[AlbListenerPlan, ...]
    folder: Path


@dataclass(frozen=True)
class LocalPlan:
    """The whole topology of the local twin."""

    subnet: str
    state_dir: Path
    privileged: bool
    dns_servers: dict[str, tuple[str, int]]
    dns_zones: dict[str, dict[str, str]]
    proxies: dict[str, ProxySpec]
    placements: dict[str, Placement]
    albs: list[AlbPlan]
    system_ca: Path
    public_ca_dir: Path
    addresses: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """What the plan leaves out of the spec's world, and why (``local up`` prints them)."""

    def folder(self, component: str) -> Path:
        """The state folder of one component (``<state>/local/<mesh>/<name>``)."""
        return self.state_dir / "local" / component

    def mesh_ca_dir(self, mesh: str) -> Path:
        """The folder of ``mesh``'s own CA in the twin, which plays istiod's (``<state>/local/mesh-ca/<mesh>``)."""
        return self.state_dir / "local" / "mesh-ca" / mesh

    def low(self, port: int) -> int:
        """The local port for ``port``: unchanged as root or when ≥ 1024, else moved up by 10000."""
        return port if self.privileged or port >= 1024 else port + LOW_PORT_OFFSET


def lb_address(bridge: Bridge, mesh: str) -> str:
    """The load-balancer address of ``mesh``'s ingress gateway: the spec's, else a local name for it.

    A real cluster gives the address (``meshbridge apply`` discovers it); locally an unset address becomes
    ``<name>.<namespace>.<mesh>.lb.local``, which the local DNS resolves to the gateway.
    """
    gw = bridge.spec.meshes[mesh].ingress_gateway
    assert gw is not None
    return gw.address or f"{gw.name}.{gw.namespace}.{mesh}.lb.local"


def plan_topology(bridge: Bridge, state_dir: Path, subnet: str, privileged: bool) -> LocalPlan:
    """Plan the local twin of ``bridge`` in ``subnet`` (a /24 of 127.0.0.0/8).

    Raises:
        LocalError: ``subnet`` is not a /24 inside 127.0.0.0/8, or the bridge needs more addresses than it holds.
    """
    net = ipaddress.IPv4Network(subnet)
    if net.prefixlen != 24 or not net.subnet_of(LOOPBACK):
        raise LocalError(f"{subnet} is not a /24 inside 127.0.0.0/8")
    base = int(net.network_address)

    def ip(n: int) -> str:
        return str(ipaddress.ip_address(base + n))

    offset = 0 if privileged else LOW_PORT_OFFSET
    meshes = list(bridge.spec.meshes)
    dns_servers = {
        m: (ip(53 + i), DNS_PORT if privileged else DNS_PORT + LOW_PORT_OFFSET) for i, m in enumerate(meshes)
    }
    idle = [p for p in all_proxies(bridge) if p.role == "egress" and not bridge.exports_to(p.mesh)]
    proxies = {p.name: p for p in all_proxies(bridge) if p not in idle}
    free = iter([n for n in range(10, 254) if not 53 <= n < 53 + len(meshes)])

    def take() -> str:
        n = next(free, None)
        if n is None:
            raise LocalError(
                f"bridge {bridge.metadata.name} needs more local addresses than a /24 holds (one per proxy, DNS "
                "server and ALB). Fix: run fewer exports with a local backend, or split the bridge"
            )
        return ip(n)

    addresses = {name: take() for name in proxies}
    albs = _alb_plans(bridge, state_dir, offset, take, addresses)
    zones = _dns_zones(bridge, proxies, addresses, albs)
    endpoint_ports, endpoint_addresses = _endpoint_maps(bridge, proxies, addresses, albs, offset)
    system_ca = state_dir / "local" / "system-ca.pem"
    placements = {
        name: Placement(
            address=addresses[name],
            xds_dir=state_dir / "local" / name,
            low_port_offset=offset,
            endpoint_ports=endpoint_ports,
            endpoint_addresses=endpoint_addresses,
            resolver=dns_servers[spec.mesh],
            system_ca=system_ca,
            workload_certs=state_dir / "local" / name / "workload",
            access_log=state_dir / "local" / name / "access.log",
            node_id=f"{spec.proxy.kind}~{addresses[name]}~{spec.proxy.name}-local.{spec.proxy.namespace}~{spec.proxy.namespace}.svc.cluster.local",
            node_cluster=f"{spec.proxy.name}.{spec.proxy.namespace}",
        )
        for name, spec in proxies.items()
    }
    return LocalPlan(
        subnet=str(net),
        state_dir=state_dir,
        privileged=privileged,
        dns_servers=dns_servers,
        dns_zones=zones,
        proxies=proxies,
        placements=placements,
        albs=albs,
        system_ca=system_ca,
        public_ca_dir=state_dir / "local" / "public-ca",
        addresses=addresses,
        notes=[idle_egress_gateway(p) for p in idle] + shared_backend_notes(bridge),
    )


def _alb_plans(
    bridge: Bridge, state_dir: Path, offset: int, take: Callable[[], str], addresses: dict[str, str]
) -> list[AlbPlan]:
    """An ALB for each backend host of a mesh with a local backend, each at the next free address (``take``),
    recorded in ``addresses`` by its name: exports on one host share the first one's ALB and Lambda, as they
    share the host's ServiceEntry (the twin's DNS gives the host one address)."""
    albs: list[AlbPlan] = []
    for ex in (ex for ex in bridge.spec.exports if ex.declared_backend is not None and ex.backend.local is not None):
        if any(a.mesh == ex.from_ and a.host == ex.backend.host for a in albs):
            continue
        address = take()
        name = f"{ex.from_}/alb-{ex.name}"
        addresses[name] = address
        albs.append(
            AlbPlan(
                name,
                ex.from_,
                ex.name,
                ex.backend.host,
                address,
                _alb_listeners(ex, offset),
                state_dir / "local" / name,
            )
        )
    return albs


def shared_backend_notes(bridge: Bridge) -> list[str]:
    """One note per export whose ``backend.local`` the twin does not run: it shares its backend host with an
    earlier export of its mesh, whose ALB and Lambda answer both (the host resolves to one ALB)."""
    notes = []
    for ex in (ex for ex in bridge.spec.exports if ex.declared_backend is not None):
        first = bridge.backend_owner(ex)
        if first is not ex and ex.backend.local is not None and ex.backend.local != first.backend.local:
            notes.append(
                f"export {ex.name!r}: its backend.local is not run: it shares backend host {ex.backend.host!r} with "
                f"export {first.name!r}, whose emulated ALB and Lambda answer both (the twin's DNS gives a host one "
                "ALB; on AWS the ALB's listener rules would choose, which meshbridge does not model). Fix: give "
                f"{ex.name!r} a backend host of its own to run its Lambda"
            )
    return notes


def idle_egress_gateway(spec: ProxySpec) -> str:
    """Why the twin does not start the egress gateway of a mesh that imports nothing, and what to change."""
    return (
        f"{spec.name} (spec.meshes.{spec.mesh}.egressGateway) is not started: mesh {spec.mesh} imports nothing (no "
        f"export lists it in 'to'), so no app runs there and nothing would send through it. Fix: nothing to do "
        f"for the twin; remove spec.meshes.{spec.mesh}.egressGateway if {spec.mesh} never imports, or add "
        f"{spec.mesh} to an export's 'to'"
    )


def _alb_listeners(ex: Export, offset: int) -> tuple[AlbListenerPlan, ...]:
    """HTTP 80 and the backend's own listener (HTTPS 443 in the article), as the article's ALB has both."""
    protocol: Literal["HTTP", "HTTPS"] = "HTTPS" if ex.backend.tls.mode == "SIMPLE" else "HTTP"
    wanted = {(ex.backend.port, protocol), (80, "HTTP")}
    return tuple(AlbListenerPlan(proto, port, port + offset if port < 1024 else port) for port, proto in sorted(wanted))


def _dns_zones(
    bridge: Bridge, proxies: dict[str, ProxySpec], addresses: dict[str, str], albs: list[AlbPlan]
) -> dict[str, dict[str, str]]:
    public = {}
    for name, spec in proxies.items():
        gw = bridge.spec.meshes[spec.mesh].ingress_gateway
        if spec.role == "ingress" and gw is not None and not is_ip(lb_address(bridge, spec.mesh)):
            public[lb_address(bridge, spec.mesh)] = addresses[name]
    zones: dict[str, dict[str, str]] = {}
    for mesh in bridge.spec.meshes:
        zone = dict(public)
        for name, spec in proxies.items():
            if spec.mesh == mesh and spec.proxy.service is not None:
                zone[spec.proxy.service.fqdn] = addresses[name]
        for alb in albs:
            if alb.mesh == mesh:
                zone[alb.host] = alb.address
        zones[mesh] = zone
    return zones


def _endpoint_maps(
    bridge: Bridge, proxies: dict[str, ProxySpec], addresses: dict[str, str], albs: list[AlbPlan], offset: int
) -> tuple[dict[tuple[str, int], int], dict[str, str]]:
    """What a cloud does between an endpoint and a listener: LB port → gateway targetPort; low ports."""
    ports: dict[tuple[str, int], int] = {}
    ips: dict[str, str] = {}

    def low(p: int) -> int:
        return p + offset if p < 1024 else p

    for name, spec in proxies.items():
        svc = spec.proxy.service
        if svc is None:
            continue
        targets = {p.port: p.target_port if isinstance(p.target_port, int) else p.port for p in svc.spec.ports}
        for t in targets.values():
            ports[(addresses[name], t)] = low(t)
        gw = bridge.spec.meshes[spec.mesh].ingress_gateway
        if spec.role == "ingress" and gw is not None:
            lb = lb_address(bridge, spec.mesh)
            for port, target in targets.items():
                ports[(lb, port)] = low(target)
            if is_ip(lb):
                ips[lb] = addresses[name]
    for alb in albs:
        for lst in alb.listeners:
            ports[(alb.host, lst.advertised_port)] = lst.port
    return ports, ips
