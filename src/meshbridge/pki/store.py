"""The certificate store in the state directory (default ``.meshbridge/`` beside the bridge file).

Layout, one folder per mesh; a mesh's CA key never leaves its folder::

    <state>/pki/<mesh>/ca.crt      the mesh's CA certificate (given to peers)
    <state>/pki/<mesh>/ca.key      its key (0600)
    <state>/pki/<mesh>/server.crt  the ingress gateway's server leaf (exporting meshes)
    <state>/pki/<mesh>/server.key
    <state>/pki/<mesh>/client.crt  the egress gateway's client leaf (importing meshes)
    <state>/pki/<mesh>/client.key
    <state>/pki/<mesh>/ca-next.crt the CA being rolled in (stages 1–2 of a rollover), and its key
    <state>/pki/<mesh>/ca-retired.crt  the CA rolled out last (kept for the record; trusted by nobody)

Files are written atomically; keys with mode 0600.

**CA rollover** (``certs rotate --ca``), so that no side ever presents a certificate its peer does not trust:

1. ``ca-next`` is issued; peers trust both ``ca`` and ``ca-next`` (their ``cacert`` holds both).
2. The mesh's leaves are reissued from ``ca-next``.
3. ``ca-next`` becomes ``ca``; the old CA is retired and no longer trusted.
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

Slot = Literal["ca", "ca-next", "ca-retired", "server", "client"]
SLOTS: tuple[Slot, ...] = ("ca", "ca-next", "server", "client")


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
        actions: list[IssueAction] = []
        for mesh in bridge.spec.meshes:
            ca = self.load(mesh, "ca")
            if ca is None or force:
                self.save(mesh, "ca", self._new_ca(bridge, mesh, now))
                self.path(mesh, "ca-next").unlink(missing_ok=True)
                actions.append(IssueAction(mesh, "ca", "reissued" if force else "issued"))
            else:
                actions.append(IssueAction(mesh, "ca", "kept"))
            signing = self.signing_ca(mesh)
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                why = "--force" if force else self._stale(mesh, slot, spec, now)
                if why is None:
                    actions.append(IssueAction(mesh, slot, "kept"))
                    continue
                self.save(mesh, slot, self.mint(bridge, mesh, spec, signing, now))
                actions.append(IssueAction(mesh, slot, "issued" if why == "missing" else "reissued", why))
        return actions

    def rotate_leaves(
        self, bridge: Bridge, meshes: list[str], now: dt.datetime | None = None, ca: CertBundle | None = None
    ) -> list[IssueAction]:
        """New keys and certificates for the leaves of ``meshes``, from ``ca`` (default: their signing CA)."""
        now = now or utcnow()
        actions = []
        for mesh in meshes:
            signing = ca or self.signing_ca(mesh)
            for spec in identities.leaves(bridge, mesh):
                self.save(mesh, spec.role, self.mint(bridge, mesh, spec, signing, now))
                actions.append(IssueAction(mesh, spec.role, "reissued", "leaf rotation"))
        return actions

    def rollover_stage(self, mesh: str) -> int:
        """Where a CA rollover of ``mesh`` stands: 0 none, 1 both CAs trusted, 2 leaves from the new CA."""
        nxt = self.load(mesh, "ca-next")
        if nxt is None:
            return 0
        leaves = [b for b in (self.load(mesh, "server"), self.load(mesh, "client")) if b is not None]
        return 2 if leaves and all(b.issuer == nxt.subject for b in leaves) else 1

    def rollover(self, bridge: Bridge, mesh: str, stage: int, now: dt.datetime | None = None) -> list[IssueAction]:
        """Run one stage of a CA rollover of ``mesh`` (see the module docstring).

        Raises:
            PkiError: the stage is not the next one (stages run in order, each once).
        """
        now = now or utcnow()
        current = self.rollover_stage(mesh)
        expected = current + 1 if current < 2 else 3
        if stage != expected:
            raise PkiError(
                f"mesh {mesh!r} is at rollover stage {current}; the next stage is {expected}, not {stage}. "
                "Fix: run the stages in order (1: trust both CAs, 2: reissue leaves, 3: drop the old CA)"
            )
        if stage == 1:
            self.save(mesh, "ca-next", self._new_ca(bridge, mesh, now))
            return [IssueAction(mesh, "ca-next", "issued", "rollover stage 1: peers trust both CAs")]
        if stage == 2:
            return self.rotate_leaves(bridge, [mesh], now, ca=self.load(mesh, "ca-next"))
        old, new = self.load(mesh, "ca"), self.load(mesh, "ca-next")
        assert old is not None and new is not None
        self.save(mesh, "ca-retired", old)
        self.save(mesh, "ca", new)
        self.path(mesh, "ca-next").unlink()
        self.path(mesh, "ca-next").with_suffix(".key").unlink(missing_ok=True)
        return [IssueAction(mesh, "ca", "reissued", "rollover stage 3: the new CA replaces the old one")]

    def signing_ca(self, mesh: str) -> CertBundle:
        """The CA that issues ``mesh``'s leaves now: ``ca-next`` from rollover stage 2 on, else ``ca``.

        Raises:
            PkiError: the mesh has no CA.
        """
        ca = self.load(mesh, "ca-next") if self.rollover_stage(mesh) == 2 else self.load(mesh, "ca")
        if ca is None:
            raise PkiError(f"mesh {mesh!r} has no CA in {self.root}. Fix: run 'meshbridge certs issue'")
        return ca

    def trusted(self, mesh: str) -> bytes:
        """PEM of the CAs peers trust for ``mesh``'s leaves: ``ca``, plus ``ca-next`` during a rollover."""
        return b"".join(b.cert_pem for b in (self.load(mesh, "ca"), self.load(mesh, "ca-next")) if b is not None)

    def _new_ca(self, bridge: Bridge, mesh: str, now: dt.datetime) -> CertBundle:
        tls = bridge.spec.tls
        return issue_ca(
            f"meshbridge {mesh} CA {now:%Y%m%dT%H%M%S.%f}",  # a distinct name per CA, so issuers tell apart
            organization=_org(bridge, mesh),
            key_type=tls.key_type,
            days=tls.ca_validity_days,
            now=now,
        )

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

    def _stale(self, mesh: str, slot: Slot, spec: LeafSpec, now: dt.datetime) -> str | None:
        leaf = self.load(mesh, slot)
        if leaf is None:
            return "missing"
        if sorted(leaf.dns_names) != sorted(spec.dns_names) or sorted(leaf.uris) != sorted(spec.uris):
            return "SANs changed in the spec"
        if check_leaf(slot, leaf, spec.role, self.trusted(mesh), now=now):
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

        def trust(meshes: list[str]) -> bytes:
            for m in meshes:
                need(m, "ca")
            return b"".join(self.trusted(m) for m in meshes)

        out = {}
        for mesh in bridge.spec.meshes:
            server = need(mesh, "server") if identities.server_leaf(bridge, mesh) else None
            client = need(mesh, "client") if identities.client_leaf(bridge, mesh) else None
            out[mesh] = MeshCredentials(
                server=server,
                client=client,
                server_trust=trust(identities.server_trusts(bridge, mesh)),
                client_trust=trust(identities.client_trusts(bridge, mesh)),
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
            trusted = self.trusted(mesh)
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                leaf = self.load(mesh, slot)
                if leaf is None:
                    findings.append(
                        CertFinding("error", f"{mesh}/{slot}", "was never issued", "run 'meshbridge certs issue'")
                    )
                elif trusted:  # peers trust this mesh's CA(s) for this mesh's leaves
                    findings += check_leaf(
                        f"{mesh}/{slot}",
                        leaf,
                        spec.role,
                        trusted,
                        dns_names=spec.dns_names,
                        uris=spec.uris,
                        now=now,
                    )
        return findings


def _org(bridge: Bridge, mesh: str) -> str:
    return f"meshbridge {bridge.metadata.name} {mesh}"
