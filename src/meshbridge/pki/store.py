"""The certificate store in the state directory (default ``.meshbridge/`` beside the bridge file).

Layout, one folder per mesh; a mesh's CA key never leaves its folder::

    <state>/pki/<mesh>/ca.crt      the mesh's CA certificate (given to peers)
    <state>/pki/<mesh>/ca.key      its key (0600)
    <state>/pki/<mesh>/server.crt  the ingress gateway's server leaf (exporting meshes)
    <state>/pki/<mesh>/server.key
    <state>/pki/<mesh>/client.crt  the egress gateway's client leaf (importing meshes)
    <state>/pki/<mesh>/client.key

Files are written atomically; keys with mode 0600.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from meshbridge.errors import PkiError
from meshbridge.pki import identities
from meshbridge.pki.checks import CertFinding, check_ca, check_leaf, check_validity
from meshbridge.pki.identities import LeafSpec
from meshbridge.pki.x509 import CertBundle, issue_ca, issue_leaf, parse_certificate, utcnow
from meshbridge.spec.models import Bridge

Slot = Literal["ca", "server", "client"]
SLOTS: tuple[Slot, ...] = ("ca", "server", "client")


def default_state_dir(bridge_file: Path) -> Path:
    """``.meshbridge/`` in the folder of the bridge file."""
    return bridge_file.resolve().parent / ".meshbridge"


@dataclass(frozen=True)
class IssueAction:
    """What ``certs issue`` did for one certificate: ``issued``, ``reissued`` (with why) or ``kept``."""

    mesh: str
    slot: Slot
    action: Literal["issued", "reissued", "kept"]
    reason: str = ""


@dataclass(frozen=True)
class MeshCredentials:
    """What one mesh's gateways need: its leaves and the CA bundles they trust (PEM)."""

    server: CertBundle | None
    client: CertBundle | None
    server_trust: bytes
    client_trust: bytes


class PkiStore:
    """Certificates of one bridge under ``<state>/pki``."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "pki"

    def path(self, mesh: str, slot: Slot) -> Path:
        """The certificate file of ``slot`` (``ca``, ``server``, ``client``) of ``mesh``."""
        return self.root / mesh / f"{slot}.crt"

    def load(self, mesh: str, slot: Slot) -> CertBundle | None:
        """The stored bundle (certificate and key, when present), or ``None`` if never issued.

        Raises:
            PkiError: the file exists but is not a certificate.
        """
        crt = self.path(mesh, slot)
        if not crt.exists():
            return None
        key = crt.with_suffix(".key")
        bundle = CertBundle(crt.read_bytes(), key.read_bytes() if key.exists() else None)
        parse_certificate(bundle.cert_pem, str(crt))
        return bundle

    def save(self, mesh: str, slot: Slot, bundle: CertBundle) -> None:
        """Write ``bundle`` into ``slot`` (atomically; the key 0600)."""
        bundle.write_to(self.root / mesh, slot)

    # -- issuing -------------------------------------------------------------------------------------

    def issue(self, bridge: Bridge, *, force: bool = False, now: dt.datetime | None = None) -> list[IssueAction]:
        """Issue what is missing: each mesh's CA, then the leaves the spec asks for.

        Existing certificates are kept unless ``force``, they expire within the warning horizon, their
        SANs no longer match the spec, or their CA changed. A CA is only replaced with ``force``.

        Returns:
            One action per certificate, in mesh order.
        """
        now = now or utcnow()
        tls = bridge.spec.tls
        actions: list[IssueAction] = []
        for mesh in bridge.spec.meshes:
            ca = self.load(mesh, "ca")
            if ca is None or force:
                ca = issue_ca(
                    f"meshbridge {mesh} CA",
                    organization=_org(bridge, mesh),
                    key_type=tls.key_type,
                    days=tls.ca_validity_days,
                    now=now,
                )
                self.save(mesh, "ca", ca)
                actions.append(IssueAction(mesh, "ca", "reissued" if force else "issued"))
            else:
                actions.append(IssueAction(mesh, "ca", "kept"))
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                why = "--force" if force else self._stale(mesh, slot, spec, ca, now)
                if why is None:
                    actions.append(IssueAction(mesh, slot, "kept"))
                    continue
                self.save(mesh, slot, self.mint(bridge, mesh, spec, ca, now))
                actions.append(IssueAction(mesh, slot, "issued" if why == "missing" else "reissued", why))
        return actions

    def mint(self, bridge: Bridge, mesh: str, spec: LeafSpec, ca: CertBundle, now: dt.datetime) -> CertBundle:
        """A new leaf of ``spec`` from ``ca`` with the bridge's key type and lifetime."""
        tls = bridge.spec.tls
        return issue_leaf(
            ca,
            spec.role,
            common_name=spec.common_name,
            dns_names=spec.dns_names,
            uris=spec.uris,
            organization=_org(bridge, mesh),
            key_type=tls.key_type,
            days=tls.leaf_validity_days,
            now=now,
        )

    def _stale(self, mesh: str, slot: Slot, spec: LeafSpec, ca: CertBundle, now: dt.datetime) -> str | None:
        leaf = self.load(mesh, slot)
        if leaf is None:
            return "missing"
        if sorted(leaf.dns_names) != sorted(spec.dns_names) or sorted(leaf.uris) != sorted(spec.uris):
            return "SANs changed in the spec"
        if leaf.issuer != ca.subject or check_leaf(slot, leaf, spec.role, ca.cert_pem, now=now):
            return "no longer valid against its CA"
        if check_validity(slot, leaf, now):
            return "expires soon"
        return None

    # -- reading for render / lint / local ----------------------------------------------------------

    def credentials(self, bridge: Bridge) -> dict[str, MeshCredentials]:
        """Each mesh's leaves and trust bundles.

        Raises:
            PkiError: a certificate the spec needs was never issued (the message says to run
                ``meshbridge certs issue``).
        """
        missing: list[str] = []

        def need(mesh: str, slot: Slot) -> CertBundle:
            b = self.load(mesh, slot)
            if b is None:
                missing.append(str(self.path(mesh, slot)))
                return CertBundle(b"")
            return b

        out = {}
        for mesh in bridge.spec.meshes:
            server = need(mesh, "server") if identities.server_leaf(bridge, mesh) else None
            client = need(mesh, "client") if identities.client_leaf(bridge, mesh) else None
            out[mesh] = MeshCredentials(
                server=server,
                client=client,
                server_trust=b"".join(need(m, "ca").cert_pem for m in identities.server_trusts(bridge, mesh)),
                client_trust=b"".join(need(m, "ca").cert_pem for m in identities.client_trusts(bridge, mesh)),
            )
        if missing:
            raise PkiError(
                f"certificates were never issued: {', '.join(sorted(set(missing)))}. "
                "Fix: run 'meshbridge certs issue' (or render with --no-secrets)"
            )
        return out

    def check(self, bridge: Bridge, now: dt.datetime | None = None) -> list[CertFinding]:
        """Every certificate of the bridge checked as its peer would: validity, chain, EKU, SANs, key."""
        now = now or utcnow()
        findings: list[CertFinding] = []
        for mesh in bridge.spec.meshes:
            ca = self.load(mesh, "ca")
            if ca is None:
                findings.append(CertFinding("error", f"{mesh}/ca", "was never issued", "run 'meshbridge certs issue'"))
                continue
            findings += check_ca(f"{mesh}/ca", ca) + check_validity(f"{mesh}/ca", ca, now)
        for mesh in bridge.spec.meshes:
            ca = self.load(mesh, "ca")
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                leaf = self.load(mesh, slot)
                if leaf is None:
                    findings.append(
                        CertFinding("error", f"{mesh}/{slot}", "was never issued", "run 'meshbridge certs issue'")
                    )
                elif ca is not None:  # peers trust this mesh's CA for this mesh's leaves
                    findings += check_leaf(
                        f"{mesh}/{slot}",
                        leaf,
                        spec.role,
                        ca.cert_pem,
                        dns_names=spec.dns_names,
                        uris=spec.uris,
                        now=now,
                    )
        return findings


def _org(bridge: Bridge, mesh: str) -> str:
    return f"meshbridge {bridge.metadata.name} {mesh}"
