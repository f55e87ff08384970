"""Who holds which certificate, and whom each gateway trusts (pure, from the spec).

* Every mesh has its own CA; its key never leaves that mesh's side.
* An exporting mesh's ingress gateway holds a **server** leaf: DNS SANs of every host it exports.
* An importing mesh's egress gateway holds a **client** leaf: the URI SAN
  ``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>`` of the egress gateway.
* The exporter's gateway trusts the CAs of the meshes that import from it; the importer's egress gateway
  trusts the CAs of the meshes it imports from. Only CA *certificates* cross between meshes.
* Each peer pins the other's SANs (the importer's DestinationRule ``subjectAltNames``, the exporter's Gateway
  ``tls.subjectAltNames``) unless ``spec.tls.pinSubjectAltNames`` is false: a leaf still carries its SANs,
  but no peer demands them (:attr:`LeafSpec.pinned_dns_names`, :attr:`LeafSpec.pinned_uris`).
"""

from __future__ import annotations

from dataclasses import dataclass

from meshbridge.istio.visibility import spiffe_id as workload_id
from meshbridge.pki.x509 import Role
from meshbridge.spec.models import Bridge, GatewayWorkload

PINNING = "spec.tls.pinSubjectAltNames"
"""The switch that decides whether peers pin SANs, as findings name it."""


@dataclass(frozen=True)
class LeafSpec:
    """What a leaf must say: its role (EKU), CN and SANs; and whether its peer pins those SANs."""

    role: Role
    common_name: str
    dns_names: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    pinned: bool = True

    @property
    def pinned_dns_names(self) -> tuple[str, ...]:
        """The DNS SANs the peer demands of the leaf (none when ``spec.tls.pinSubjectAltNames`` is false)."""
        return self.dns_names if self.pinned else ()

    @property
    def pinned_uris(self) -> tuple[str, ...]:
        """The URI SANs the peer demands of the leaf (none when ``spec.tls.pinSubjectAltNames`` is false)."""
        return self.uris if self.pinned else ()


def spiffe_id(trust_domain: str, gateway: GatewayWorkload) -> str:
    """``spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>`` of a gateway: Istio's workload identity."""
    return workload_id(trust_domain, gateway.namespace, gateway.sa)


def server_leaf(bridge: Bridge, mesh: str) -> LeafSpec | None:
    """The server leaf of ``mesh``'s ingress gateway, or ``None`` when the mesh exports nothing."""
    hosts = sorted({ex.host for ex in bridge.exports_from(mesh)})
    if not hosts:
        return None
    pinned = bridge.spec.tls.pin_subject_alt_names
    return LeafSpec("server", common_name=hosts[0], dns_names=tuple(hosts), pinned=pinned)


def client_leaf(bridge: Bridge, mesh: str) -> LeafSpec | None:
    """The client leaf of ``mesh``'s egress gateway, or ``None`` when the mesh imports nothing."""
    m = bridge.spec.meshes[mesh]
    if not bridge.exports_to(mesh) or m.egress_gateway is None:
        return None
    eg = m.egress_gateway
    pinned = bridge.spec.tls.pin_subject_alt_names
    return LeafSpec(
        "client", common_name=f"{eg.sa}.{eg.namespace}", uris=(spiffe_id(m.trust_domain, eg),), pinned=pinned
    )


def leaves(bridge: Bridge, mesh: str) -> list[LeafSpec]:
    """The leaves ``mesh`` holds (server and/or client); a leaf's ``role`` is also its store slot."""
    return [s for s in (server_leaf(bridge, mesh), client_leaf(bridge, mesh)) if s is not None]


def importer_ids(bridge: Bridge, export_name: str) -> list[str]:
    """SPIFFE IDs of the egress gateways allowed to call ``export_name`` (its ``to`` meshes)."""
    ex = bridge.export(export_name)
    ids = []
    for mesh in ex.to:
        eg = bridge.spec.meshes[mesh].egress_gateway
        assert eg is not None  # validated by the spec
        ids.append(spiffe_id(bridge.spec.meshes[mesh].trust_domain, eg))
    return ids


def server_trusts(bridge: Bridge, mesh: str) -> list[str]:
    """Meshes whose CA ``mesh``'s ingress gateway trusts: every importer of its exports, sorted."""
    return sorted({dest for ex in bridge.exports_from(mesh) for dest in ex.to})


def client_trusts(bridge: Bridge, mesh: str) -> list[str]:
    """Meshes whose CA ``mesh``'s egress gateway trusts: every exporter it imports from, sorted."""
    return sorted({ex.from_ for ex in bridge.exports_to(mesh)})
