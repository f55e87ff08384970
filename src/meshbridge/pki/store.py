"""The certificate store in the state directory (default ``.meshbridge/`` beside the bridge file).

Layout, one folder per mesh; a mesh's CA key never leaves its folder::

    <state>/pki/<mesh>/ca.crt      the mesh's CA certificate (given to peers)
    <state>/pki/<mesh>/ca.key      its key (0600); absent for a CA imported without it
    <state>/pki/<mesh>/server.crt  the ingress gateway's server leaf (exporting meshes), then any intermediates
    <state>/pki/<mesh>/server.key
    <state>/pki/<mesh>/client.crt  the egress gateway's client leaf (importing meshes)
    <state>/pki/<mesh>/client.key
    <state>/pki/<mesh>/ca-next.crt the CA being rolled in (stages 1–2 of a rollover), and its key
    <state>/pki/<mesh>/ca-retired.crt  the CA rolled out last (kept for the record; trusted by nobody)
    <state>/pki/<mesh>/ca.crl      the CRL of ``ca`` (PEM, signed by it), once something was revoked
    <state>/pki/<mesh>/ca-next.crl the CRL of ``ca-next`` during a rollover
    <state>/pki/<mesh>/<slot>.imported  marks a certificate brought by ``certs import`` (its source file)
    <state>/pki/<peer>/ca.peer     marks a peer's CA (``peer: true`` in the spec) trusted by ``peer accept`` or
                                   ``peer admit`` (the offer or reply it came from): a certificate, never a key

Files are written atomically; keys with mode 0600.

**Key type** (``spec.tls.keyType``): what meshbridge issues gets it. ``issue`` reissues a leaf of its own whose
key type differs; it never replaces a CA for it (peers trust the CA: a new one breaks every leaf until they
trust it), which ``check`` warns about, with the staged rollover as the fix (``rollover`` issues the new CA with
the spec's key type); and it keeps imported certificates as they are, with a note.

**Bring your own** (``import_``): a CA may come without its key (your PKI issues the leaves; peers only need
the certificate in their ``cacert``); meshbridge then refuses whatever would sign with it (issuing or rotating
that mesh's leaves, a CA rollover) and says to import the leaves instead. An imported leaf's file may carry
its intermediates; they are stored and served after the leaf, in chain order (the gateway Secret's ``cert``).

**Two owners** (``meshbridge peer``, :meth:`PkiStore.trust_peer`): a mesh marked ``peer: true`` belongs to
another owner. Its folder holds only the CA certificate(s) its owner's signed offer or reply brought (``ca``,
and ``ca-next`` during its rollover); meshbridge issues nothing for it, and the own meshes' gateways trust it.

**Revocation** (``certs revoke``): a serial is added to the CRL of the CA that issued it, re-signed with a
``nextUpdate`` at the CA's own expiry, so the CRL never expires under the proxies (an expired CRL fails every
handshake of its chain). A peer's gateway gets the CRLs beside the CA bundle it trusts (the Secret's ``crl``
key, istiod's layout). Envoy's rule: once a CRL is given for any CA of a chain, every CA of it needs one, or
every certificate of that chain is refused; so as soon as one trusted CA has revocations, each trusted CA
gets its CRL (an empty one, signed and kept here, if it has none). Without revocations no CRL is rendered.

**CA rollover** (``certs rotate --ca``), so that no side ever presents a certificate its peer does not trust:

1. ``ca-next`` is issued; peers trust both ``ca`` and ``ca-next`` (their ``cacert`` holds both).
2. The mesh's leaves are reissued from ``ca-next``.
3. ``ca-next`` becomes ``ca``; the old CA is retired and no longer trusted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from meshbridge.envoy.names import SDS_CA_SUFFIX
from meshbridge.errors import PkiError
from meshbridge.fsutil import write_atomic
from meshbridge.pki import identities
from meshbridge.pki.checks import (
    CertFinding,
    check_ca,
    check_key_type,
    check_leaf,
    check_revocation,
    check_validity,
    order_chain,
    revoked_by,
)
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.pki.identities import LeafSpec
from meshbridge.pki.x509 import (
    CertBundle,
    issue_ca,
    issue_crl,
    issue_leaf,
    key_matches,
    parse_certificate,
    parse_certificates,
    parse_crl,
    parse_crls,
    utcnow,
)
from meshbridge.spec.models import Bridge

Slot = Literal["ca", "ca-next", "ca-retired", "server", "client"]
SLOTS: tuple[Slot, ...] = ("ca", "ca-next", "server", "client")
ImportSlot = Literal["ca", "server", "client"]
CaSlot = Literal["ca", "ca-next"]
CA_SLOTS: tuple[CaSlot, ...] = ("ca", "ca-next")


def default_state_dir(bridge_file: Path) -> Path:
    """``.meshbridge/`` in the folder of the bridge file."""
    return bridge_file.resolve().parent / ".meshbridge"


@dataclass(frozen=True)
class IssueAction:
    """What ``certs issue`` or a rotation did for one certificate: ``issued``, ``reissued`` (with why), ``kept``, or
    ``replaced`` (a CA rollover's stage 3: the new CA takes the old one's place, which is retired)."""

    mesh: str
    slot: Slot
    action: Literal["issued", "reissued", "kept", "replaced"]
    reason: str = ""


@dataclass(frozen=True)
class Revocation:
    """What ``revoke`` did: the serial, and per CA slot whether it was newly added to that CA's CRL."""

    mesh: str
    serial: int
    cas: tuple[tuple[CaSlot, bool], ...]
    holder: Slot | None = None

    def crl_paths(self, store: PkiStore) -> list[Path]:
        """The CRL files written or kept."""
        return [store.crl_path(self.mesh, slot) for slot, _ in self.cas]


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
        try:
            key_pem: bytes | None = self.key_path(mesh, slot).read_bytes()
        except OSError:  # missing, or unreadable: :meth:`key_problem` says which
            key_pem = None
        bundle = CertBundle(crt.read_bytes(), key_pem)
        parse_certificate(bundle.cert_pem, str(crt))
        return bundle

    def key_path(self, mesh: str, slot: Slot) -> Path:
        """The private key file of ``slot`` of ``mesh`` (beside its certificate)."""
        return self.path(mesh, slot).with_suffix(".key")

    def key_problem(self, mesh: str, slot: Slot) -> str | None:
        """Why the private key of ``mesh``'s certificate in ``slot`` cannot be used, or ``None``.

        ``None`` as well when the slot holds no certificate. A CA without a key file is reported too: whether
        that is expected (a CA imported without its key) is the caller's business (:meth:`is_imported`).

        Returns:
            A sentence fragment naming the key file: missing, unreadable (the OS error), not an unencrypted PEM
            private key, or not the key of the certificate.
        """
        found = self._key_state(mesh, slot)
        return found[1] if found is not None else None

    def _key_state(self, mesh: str, slot: Slot) -> tuple[str, str] | None:
        """``(short reason, sentence)`` for :meth:`key_problem`; the short one is ``issue``'s WHY."""
        crt, key = self.path(mesh, slot), self.key_path(mesh, slot)
        if not crt.exists():
            return None
        try:
            pem = key.read_bytes()
        except FileNotFoundError:
            return "private key missing", f"its private key {key} is missing"
        except OSError as e:
            why = e.strerror or type(e).__name__
            return "private key unreadable", f"its private key {key} cannot be read ({why})"
        bundle = self.load(mesh, slot)
        assert bundle is not None
        try:
            matches = key_matches(bundle.cert, pem, str(key))
        except PkiError:
            return (
                "private key unreadable",
                f"its private key {key} is not an unencrypted PEM private key (the text is not shown)",
            )
        if not matches:
            return "private key of another certificate", f"its private key {key} is not the key of {crt.name}"
        return None

    def orphan_ca_key(self, mesh: str) -> Path | None:
        """The key of ``mesh``'s CA when its certificate is gone (``ca.key`` without ``ca.crt``), else ``None``.

        The CA the peers trust is then lost from the store: a new one would break the link, so ``issue``,
        ``rollover``, ``revoke`` and ``credentials`` refuse (:meth:`require_ca`) and ``check`` reports it.
        """
        key = self.key_path(mesh, "ca")
        return key if key.exists() and not self.path(mesh, "ca").exists() else None

    def require_ca(self, mesh: str, bridge: Bridge | None = None) -> CertBundle:
        """``mesh``'s current CA.

        Raises:
            PkiError: it has none: the CA certificate is missing while its key is there (the message says why
                no new one is made, and how to restore it or replace it knowingly), or it was never issued.
        """
        ca = self.load(mesh, "ca")
        if ca is not None:
            return ca
        if self.orphan_ca_key(mesh) is not None:
            problem, fix = self._orphan_text(mesh, bridge)
            raise PkiError(f"mesh {mesh!r}: {problem}. Fix: {fix}")
        raise PkiError(f"mesh {mesh!r} has no CA in {self.root}. Fix: run 'meshbridge certs issue'")

    def _orphan_text(self, mesh: str, bridge: Bridge | None) -> tuple[str, str]:
        """The problem and the fix of a CA certificate that is gone while its key is there."""
        crt, key = self.path(mesh, "ca"), self.key_path(mesh, "ca")
        peers = ""
        if bridge is not None:
            trusting = sorted(
                m
                for m in bridge.spec.meshes
                if mesh in identities.server_trusts(bridge, m) or mesh in identities.client_trusts(bridge, m)
            )
            peers = f" ({', '.join(trusting)})" if trusting else ""
        problem = (
            f"its CA certificate {crt} is missing, but the CA's private key {key} is still there: a new CA would "
            f"replace the one the peers{peers} trust, and the link would break until every one of them trusts the "
            "new one; meshbridge does not do that on its own"
        )
        fix = (
            f"restore {crt} from a backup (a copy is in each peer's trust bundle: the 'cacert' of its gateway "
            f"Secret); or, to replace the CA knowingly, move {key} aside and run 'meshbridge certs issue' (a new "
            f"CA for {mesh}, then 'meshbridge certs push' or 'meshbridge apply' gives it to the peers), or "
            "'meshbridge certs issue --force' (new CAs for every mesh)"
        )
        return problem, fix

    def save(self, mesh: str, slot: Slot, bundle: CertBundle) -> None:
        """Write ``bundle`` into ``slot`` (atomically; the key 0600); without a key, remove the slot's old key.

        What is saved is meshbridge's own: the slot's import mark goes (``import_`` sets it again after).
        """
        bundle.write_to(self.root / mesh, slot)
        if bundle.key_pem is None:
            self.key_path(mesh, slot).unlink(missing_ok=True)
        self.imported_path(mesh, slot).unlink(missing_ok=True)

    def imported_path(self, mesh: str, slot: Slot) -> Path:
        """The mark of a certificate that ``certs import`` stored in ``slot`` of ``mesh``."""
        return self.root / mesh / f"{slot}.imported"

    def is_imported(self, mesh: str, slot: Slot) -> bool:
        """True when the certificate in ``slot`` came from ``certs import`` rather than from meshbridge.

        The mark :meth:`import_` leaves beside it says so; for stores imported into before the mark existed,
        so does what meshbridge never issues: a CA without its key, a leaf whose file carries intermediates,
        or a leaf from a CA of the store that has no key.
        """
        if self.imported_path(mesh, slot).exists():
            return True
        b = self.load(mesh, slot)
        if b is None:
            return False
        if b.is_ca:
            return b.key_pem is None
        if len(parse_certificates(b.cert_pem, str(self.path(mesh, slot)))) > 1:
            return True
        cas = [ca for s in CA_SLOTS if (ca := self.load(mesh, s)) is not None and ca.subject == b.issuer]
        return bool(cas) and all(ca.key_pem is None for ca in cas)

    def import_(
        self,
        bridge: Bridge,
        mesh: str,
        slot: ImportSlot,
        bundle: CertBundle,
        *,
        name: str = "certificate",
        now: dt.datetime | None = None,
    ) -> tuple[CertBundle, list[CertFinding]]:
        """Check a certificate of your own exactly like issued ones and, when no check fails, store it.

        A CA must be a valid self-signed CA, with its key or without it (the peers only need the certificate;
        meshbridge then issues nothing from it). A leaf needs its key, and must chain to the CAs the peers
        trust for ``mesh`` (``trusted``) through the intermediates its file holds, in any order; it is
        stored leaf first, then its issuers in order (what the gateway serves). A new CA drops the CRL of the
        one it replaces (signed by the old key).

        Args:
            bridge: the spec (which leaves ``mesh`` needs, and their SANs).
            mesh: a mesh of the bridge.
            slot: ``ca``, ``server`` or ``client``.
            bundle: the PEM certificate(s) and the key (``None`` allowed for ``ca`` only).
            name: how findings name it (the file).
            now: the time checks use; default: now.

        Returns:
            The bundle as stored (leaf first), and the findings (warnings only when it was stored).

        Raises:
            PkiError: the mesh is unknown or needs no such leaf, a leaf comes without its key, the mesh has no
                CA to check a leaf against, or the PEM is not certificates.
        """
        if mesh not in bridge.spec.meshes:
            raise PkiError(f"mesh {mesh!r} is not in the bridge (meshes: {', '.join(bridge.spec.meshes)})")
        if slot == "ca":
            findings = check_ca(name, bundle) + check_validity(name, bundle, now, mesh=mesh, imported=slot)
        else:
            spec = identities.server_leaf(bridge, mesh) if slot == "server" else identities.client_leaf(bridge, mesh)
            if spec is None:
                what = "exports" if slot == "server" else "imports"
                raise PkiError(f"mesh {mesh!r} needs no {slot} leaf (it {what} nothing)")
            if bundle.key_pem is None:
                raise PkiError(
                    f"{name}: a {slot} leaf needs its private key, which the gateway of mesh {mesh!r} signs "
                    "the handshake with. Fix: give it with --key (PEM, unencrypted; stored 0600)"
                )
            trusted = self.trusted(mesh)
            if not trusted:
                raise PkiError(
                    f"mesh {mesh!r} has no CA in {self.root}. Fix: import its CA first "
                    f"('meshbridge certs import --mesh {mesh} --slot ca --cert CA.pem') or run 'certs issue'"
                )
            bundle = order_chain(bundle, name)
            findings = _check_against_spec(name, bundle, spec, trusted, now, mesh, imported=slot)
        if any(f.severity == "error" for f in findings):
            return bundle, findings
        old = self.load(mesh, slot)
        self.save(mesh, slot, bundle)
        write_atomic(self.imported_path(mesh, slot), f"{name}\n".encode(), mode=0o644)
        if slot == "ca" and old is not None and old.cert != bundle.cert:
            self.crl_path(mesh, "ca").unlink(missing_ok=True)  # it was signed by the CA just replaced
        return bundle, findings

    def peer_path(self, mesh: str) -> Path:
        """The mark of a peer's CA trusted by ``peer accept`` or ``peer admit`` (what it came from)."""
        return self.root / mesh / "ca.peer"

    def trust_peer(self, bridge: Bridge, mesh: str, ca: CertBundle, nxt: CertBundle | None, source: str) -> None:
        """Trust the peer ``mesh``'s CA (and the CA it is rolling in, ``nxt``): certificates only, no key.

        A new offer or reply replaces what was trusted: its ``nxt`` is trusted beside ``ca`` during the peer's
        rollover, and dropped once the peer's rollover is done.

        Raises:
            PkiError: ``mesh`` is not marked ``peer: true`` in the spec, or this folder holds a CA key for it
                (an own mesh: trusting a peer's CA there would replace the CA its key signs for).
        """
        m = bridge.spec.meshes.get(mesh)
        if m is None or not m.peer:
            raise PkiError(
                f"mesh {mesh!r} is not a peer in the bridge {bridge.metadata.name!r} (peers: "
                f"{', '.join(n for n, x in bridge.spec.meshes.items() if x.peer) or 'none'}). Fix: mark the other "
                f"owner's mesh 'peer: true' under spec.meshes.{mesh}"
            )
        for slot in CA_SLOTS:
            if self.key_path(mesh, slot).exists():
                raise PkiError(
                    f"mesh {mesh!r}: {self.key_path(mesh, slot)} is a CA key, so this folder owns {mesh}; a peer's "
                    f"CA is never written over it. Fix: use the state folder of the other owner's side, or move "
                    f"{self.root / mesh} aside if {mesh} really belongs to the other owner now"
                )
        old = self.load(mesh, "ca")
        self.save(mesh, "ca", CertBundle(ca.cert_pem))
        if nxt is not None:
            self.save(mesh, "ca-next", CertBundle(nxt.cert_pem))
        else:
            self.path(mesh, "ca-next").unlink(missing_ok=True)
        if old is not None and old.cert != ca.cert:
            self.crl_path(mesh, "ca").unlink(missing_ok=True)  # signed by the CA just replaced
        write_atomic(self.peer_path(mesh), f"{source}\n".encode(), mode=0o644)

    # -- issuing -------------------------------------------------------------------------------------

    def issue(self, bridge: Bridge, *, force: bool = False, now: dt.datetime | None = None) -> list[IssueAction]:
        """Issue what is missing: each mesh's CA, then the leaves the spec asks for.

        Existing certificates are kept unless ``force``, they expire within the warning horizon, their
        SANs no longer match the spec, their CA changed, they were revoked, or their key type is not
        ``spec.tls.keyType``. A CA is only replaced with ``force``; a CA of another key type, or an imported
        certificate of another key type, is kept with a note (:meth:`check_key_type` warns about it).

        Returns:
            One action per certificate, in mesh order.

        Raises:
            PkiError: a leaf must be (re)issued from a CA imported without its key; nothing is written then
                (see :meth:`require_key`). Or cert-manager issues the bridge's certificates (``spec.tls.issuer``).
        """
        if bridge.issued_by_cert_manager:
            raise PkiError(
                "spec.tls.issuer is cert-manager: cert-manager issues the gateway certificates in each cluster (the "
                "Certificates 'render' emits), and meshbridge issues none. Fix: import each mesh's issuer CA "
                "certificate ('meshbridge certs import --mesh MESH --slot ca --cert CA.pem'), or set spec.tls.issuer: "
                "meshbridge"
            )
        now = now or utcnow()
        if not force:  # a forced run replaces every CA, so it needs neither a lost certificate nor a key
            for mesh in bridge.own_meshes:
                if self.orphan_ca_key(mesh) is not None:
                    self.require_ca(mesh, bridge)  # raises: the CA the peers trust is gone, its key is not
            self._refuse_unsignable(bridge, now)
        actions: list[IssueAction] = []
        key_type = bridge.spec.tls.key_type
        for mesh in bridge.own_meshes:  # a peer's CA and leaves are its owner's
            ca = self.load(mesh, "ca")
            if ca is None or force:
                self.save(mesh, "ca", self._new_ca(bridge, mesh, now))
                self.path(mesh, "ca-next").unlink(missing_ok=True)
                for ca_slot in CA_SLOTS:  # a CRL belongs to the CA that signed it; the new CA revoked nothing
                    self.crl_path(mesh, ca_slot).unlink(missing_ok=True)
                actions.append(IssueAction(mesh, "ca", "reissued" if force else "issued"))
            else:
                actions.append(IssueAction(mesh, "ca", "kept", self._kept_note(mesh, "ca", ca, key_type)))
            signing = self.signing_ca(mesh)
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                why = "--force" if force else self._stale(mesh, slot, spec, key_type, now)
                if why is None:
                    leaf = self.load(mesh, slot)
                    note = self._kept_note(mesh, slot, leaf, key_type) if leaf is not None else ""
                    actions.append(IssueAction(mesh, slot, "kept", note))
                    continue
                self.save(mesh, slot, self.mint(bridge, mesh, spec, signing, now))
                actions.append(IssueAction(mesh, slot, "issued" if why == "missing" else "reissued", why))
        return actions

    def rotate_leaves(
        self, bridge: Bridge, meshes: list[str], now: dt.datetime | None = None, ca: CertBundle | None = None
    ) -> list[IssueAction]:
        """New keys and certificates for the leaves of ``meshes``, from ``ca`` (default: their signing CA).

        Raises:
            PkiError: a mesh's signing CA was imported without its key (checked for every mesh before anything
                is written, see :meth:`require_key`), or a mesh has no CA.
        """
        now = now or utcnow()
        if ca is None:
            for mesh in meshes:
                if identities.leaves(bridge, mesh):
                    self.require_key(mesh, "leaf")
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
            PkiError: the stage is not the next one (stages run in order, each once), or the mesh's CA was
                imported without its key (its rollover belongs to the PKI that holds it).
        """
        now = now or utcnow()
        self.require_ca(mesh)  # a rollover starts from the CA the peers trust
        self.require_key(mesh, "ca")
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
        self.save(mesh, "ca-retired", CertBundle(old.cert_pem))  # the record only: the retired key is destroyed
        self.path(mesh, "ca-retired").with_suffix(".key").unlink(missing_ok=True)
        self.save(mesh, "ca", new)
        self.path(mesh, "ca-next").unlink()
        self.path(mesh, "ca-next").with_suffix(".key").unlink(missing_ok=True)
        if self.crl_path(mesh, "ca").exists():
            self.crl_path(mesh, "ca").replace(self.root / mesh / "ca-retired.crl")
        if self.crl_path(mesh, "ca-next").exists():
            self.crl_path(mesh, "ca-next").replace(self.crl_path(mesh, "ca"))
        return [IssueAction(mesh, "ca", "replaced", "rollover stage 3: the new CA replaces the old one, retired")]

    def signing_ca(self, mesh: str) -> CertBundle:
        """The CA that issues ``mesh``'s leaves now: ``ca-next`` from rollover stage 2 on, else ``ca``.

        Raises:
            PkiError: the mesh has no CA.
        """
        if self.rollover_stage(mesh) == 2:
            nxt = self.load(mesh, "ca-next")
            assert nxt is not None
            return nxt
        return self.require_ca(mesh)

    def require_key(self, mesh: str, kind: Literal["leaf", "ca"], why: Mapping[str, str] | None = None) -> None:
        """Refuse what would sign with a CA of ``mesh`` that was imported without its key.

        Args:
            mesh: the mesh.
            kind: ``leaf`` (issuing or rotating its leaves: the signing CA, :meth:`signing_ca`, needs its key)
                or ``ca`` (a rollover: the current CA must be meshbridge's own, key held).
            why: the leaves concerned and why each needs issuing, e.g. ``{"server": "missing"}`` (named in
                the message); default: any leaf.

        Raises:
            PkiError: the CA has no key beside it; the message names the mesh, the CA and the fix (import
                the leaves, issued where the CA's key lives). A mesh without a CA passes (one is issued).
        """
        ca = self.load(mesh, "ca")
        if ca is None:
            if self.orphan_ca_key(mesh) is not None:
                self.require_ca(mesh)  # raises: the certificate is gone, its key is not
            return
        slot: CaSlot = "ca-next" if kind == "leaf" and self.rollover_stage(mesh) == 2 else "ca"
        signing = self.load(mesh, slot) or ca
        problem = self.key_problem(mesh, slot)
        if problem is None:
            return
        why = why or {}
        if self.key_path(mesh, slot).exists():  # there, but unusable: not a CA imported without its key
            doing = (
                f"issue {', '.join(f'its {s} leaf ({w})' for s, w in why.items())}"
                if kind == "leaf" and why
                else "sign with it"
            )
            raise PkiError(
                f"mesh {mesh!r}: {problem.replace('its private key', 'the private key of its CA', 1)}, so meshbridge "
                f"cannot {doing}. Fix: restore the CA's key from a backup; or replace the CA knowingly with "
                "'meshbridge certs issue --force' (new CAs for every mesh: the link breaks until every peer trusts "
                "them)"
            )
        leaves = "|".join(why) or "server|client"
        importing = (
            f"'meshbridge certs import --mesh {mesh} --slot {leaves} --cert LEAF.pem --key LEAF.key' "
            "(LEAF.pem may carry its intermediates after the leaf)"
        )
        if kind == "leaf":
            what = f"issue {', '.join(f'its {s} leaf ({w})' for s, w in why.items())}" if why else "rotate its leaves"
            fix = f"issue the leaf from that CA in your PKI and import it: {importing}"
        else:
            what = "roll it over (the new CA and its leaves belong to the PKI that holds the key)"
            fix = (
                "roll the CA over in your PKI, then import the new CA ('meshbridge certs import --mesh "
                f"{mesh} --slot ca --cert CA.pem') and leaves issued by it: {importing}"
            )
        key = self.key_path(mesh, slot)
        if self.imported_path(mesh, slot).exists():
            how = f"was imported without its private key ({key} does not exist)"
        else:  # no import mark: imported before the mark existed, or its key was lost
            how = f"has no private key: {key} does not exist (if it was lost, restoring it from a backup fixes this)"
        raise PkiError(f"mesh {mesh!r}: its CA ({signing.subject}) {how}, so meshbridge cannot {what}. Fix: {fix}")

    def _refuse_unsignable(self, bridge: Bridge, now: dt.datetime) -> None:
        """``issue``'s check before writing: each leaf it would (re)issue has a signing CA with its key."""
        for mesh in bridge.own_meshes:
            if self.load(mesh, "ca") is None:
                continue
            why: dict[str, str] = {}
            for spec in identities.leaves(bridge, mesh):
                reason = self._stale(mesh, spec.role, spec, bridge.spec.tls.key_type, now)
                if reason is not None:
                    why[spec.role] = reason
            if why:
                self.require_key(mesh, "leaf", why)

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

    def _stale(self, mesh: str, slot: Slot, spec: LeafSpec, key_type: str, now: dt.datetime) -> str | None:
        leaf = self.load(mesh, slot)
        if leaf is None:
            return "missing"
        key = self._key_state(mesh, slot)
        if key is not None:  # the gateway cannot sign a handshake with it: nothing else matters
            return key[0]
        imported = self.is_imported(mesh, slot)
        if not imported and (
            sorted(leaf.dns_names) != sorted(spec.dns_names) or sorted(leaf.uris) != sorted(spec.uris)
        ):
            return "SANs changed in the spec"
        # the rule set's errors only: a warning (what RFC 5280 prefers, an imported leaf's profile) keeps it
        # (meshbridge's own leaf carries exactly the spec's SANs, compared above; an imported one, those pinned)
        dns, uris = (spec.pinned_dns_names, spec.pinned_uris) if imported else ((), ())
        found = check_leaf(slot, leaf, spec.role, self.trusted(mesh), dns_names=dns, uris=uris, now=now)
        errors = [f for f in found if f.severity == "error"]
        if any(f.rule == "san-missing" for f in errors):
            return "SANs changed in the spec"
        if errors:
            return "no longer valid against its CA"
        if self.is_revoked(mesh, leaf):
            return "revoked"
        if leaf.key_type != key_type and not imported:  # an imported one is kept (a note)
            return f"key type {key_type} in the spec, {leaf.key_type} stored"
        if any(f.severity != "info" for f in check_validity(slot, leaf, now)):  # a new one would fix it
            return "expires soon"
        return None

    def _kept_note(self, mesh: str, slot: Slot, bundle: CertBundle, key_type: str) -> str:
        """Why a kept certificate of another key type than the spec's was kept (empty when it has the spec's)."""
        if bundle.key_type == key_type:
            return ""
        why = f"key type {key_type} in the spec, {bundle.key_type} stored"
        if self.is_imported(mesh, slot):
            return f"{why}: kept, it was imported (see the warning)"
        return f"{why}: kept, a new CA would break trust (see the warning)"

    def check_key_type(
        self, bridge: Bridge, mesh: str, slot: Slot, bundle: CertBundle | None = None
    ) -> list[CertFinding]:
        """:func:`~meshbridge.pki.checks.check_key_type` of ``mesh``'s certificate in ``slot`` (``bundle``, when
        already loaded) against ``spec.tls.keyType``."""
        b = bundle or self.load(mesh, slot)
        if b is None:
            return []
        tls = bridge.spec.tls
        return check_key_type(
            mesh,
            slot,
            b,
            tls.key_type,
            imported=self.is_imported(mesh, slot),
            tls12_server=slot == "server" and tls.min_protocol_version == "TLSV1_2",
        )

    def key_type_findings(self, bridge: Bridge) -> list[CertFinding]:
        """:meth:`check_key_type` of each mesh's CA and leaves (what ``certs issue`` warns about after issuing)."""
        out = []
        for mesh in bridge.own_meshes:
            slots: list[Slot] = ["ca", *(s.role for s in identities.leaves(bridge, mesh))]
            for slot in slots:
                out += self.check_key_type(bridge, mesh, slot)
        return out

    # -- reading for render / lint / local ----------------------------------------------------------

    def credentials(self, bridge: Bridge) -> dict[str, MeshCredentials]:
        """Each own mesh's leaves and trust bundles (a ``peer: true`` mesh gets none: its owner renders it).

        In cert-manager mode (``spec.tls.issuer``) the leaves are issued in the clusters: each mesh gets its trust
        bundles only, from the CA certificates in the store (``certs import --slot ca``, or a peer's).

        Raises:
            PkiError: a peer's CA is not trusted yet (the message names ``peer accept`` / ``peer admit``), or a
                certificate the spec needs was never issued (the message says to run ``meshbridge certs issue``).
        """
        untrusted = [m for m in bridge.spec.meshes if bridge.spec.meshes[m].peer and self.load(m, "ca") is None]
        if untrusted:
            raise PkiError(
                "; ".join(f"mesh {m!r} is a peer (another owner's) whose CA is not trusted yet" for m in untrusted)
                + f" ({', '.join(str(self.path(m, 'ca')) for m in untrusted)} missing). Fix: the importer runs "
                "'meshbridge peer accept OFFER --fingerprint SHA256', the exporter 'meshbridge peer admit REPLY "
                "--fingerprint SHA256'"
            )
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
        local = not bridge.issued_by_cert_manager
        for mesh in bridge.own_meshes:
            server = need(mesh, "server") if local and identities.server_leaf(bridge, mesh) else None
            client = need(mesh, "client") if local and identities.client_leaf(bridge, mesh) else None
            server_trusts = identities.server_trusts(bridge, mesh)
            client_trusts = identities.client_trusts(bridge, mesh)
            out[mesh] = MeshCredentials(
                server=server,
                client=client,
                server_trust=trust(server_trusts),
                client_trust=trust(client_trusts),
                server_crl=self.trusted_crls(server_trusts),
                client_crl=self.trusted_crls(client_trusts),
            )
        for mesh in bridge.spec.meshes:
            if str(self.path(mesh, "ca")) in missing and self.orphan_ca_key(mesh) is not None:
                self.require_ca(mesh, bridge)  # raises: lost, not never issued ('certs issue' would refuse)
        if missing and not local:
            raise PkiError(
                "cert-manager issues the gateway certificates (spec.tls.issuer), but the peers' trust needs each "
                f"issuer's CA certificate; missing: {', '.join(sorted(set(missing)))}. Fix: 'meshbridge certs "
                "import --mesh MESH --slot ca --cert CA.pem' (the issuer's CA certificate, no key; e.g. the ca.crt of "
                "a Secret it issued)"
            )
        if missing:
            raise PkiError(
                f"certificates were never issued: {', '.join(sorted(set(missing)))}. "
                "Fix: run 'meshbridge certs issue' (or render with --no-secrets)"
            )
        return out

    # -- revocation ------------------------------------------------------------------------------------

    def crl_path(self, mesh: str, slot: CaSlot = "ca") -> Path:
        """The CRL file of ``mesh``'s CA in ``slot`` (``ca`` or ``ca-next``)."""
        return self.root / mesh / f"{slot}.crl"

    def crl(self, mesh: str, slot: CaSlot = "ca") -> bytes | None:
        """The stored CRL (PEM) of ``mesh``'s CA in ``slot``, or ``None`` when it never revoked anything.

        Raises:
            PkiError: the file is not a CRL, or it is not signed by the CA now in ``slot``.
        """
        path = self.crl_path(mesh, slot)
        if not path.exists():
            return None
        pem = path.read_bytes()
        ca = self.load(mesh, slot)
        if ca is None:
            raise PkiError(f"{path} has no CA beside it ({self.path(mesh, slot)}). Fix: remove the stray CRL")
        parse_crl(pem, str(path), issuer=ca)
        return pem

    def revoked(self, mesh: str, slot: CaSlot = "ca") -> list[int]:
        """Serial numbers the CRL of ``mesh``'s CA in ``slot`` revokes (empty without a CRL)."""
        pem = self.crl(mesh, slot)
        if pem is None:
            return []
        return [r.serial_number for r in parse_crl(pem, str(self.crl_path(mesh, slot)))]

    def own_crls(self, mesh: str) -> bytes:
        """The CRLs of ``mesh``'s CAs (``ca``, then ``ca-next``), concatenated; empty when none was ever signed.

        What the peers of ``mesh``'s gateways check its certificates against (beside the other CRLs of their
        trust bundle, see :meth:`trusted_crls`). Read only: unlike ``trusted_crls``, nothing is written.
        """
        return b"".join(pem for slot in CA_SLOTS if (pem := self.crl(mesh, slot)) is not None)

    def is_revoked(self, mesh: str, leaf: CertBundle) -> bool:
        """True when ``leaf`` (issued by one of ``mesh``'s CAs) is on that CA's CRL."""
        return revoked_by(leaf.cert, parse_crls(self.own_crls(mesh), f"CRLs of mesh {mesh!r}")) is not None

    def check_revoked(self, mesh: str, slot: Slot, bundle: CertBundle | None = None) -> list[CertFinding]:
        """:func:`~meshbridge.pki.checks.check_revocation` of ``mesh``'s certificate in ``slot`` (``bundle``, when
        already loaded) against the CRLs its peers check: a leaf on its path to ``mesh``'s trusted CAs, a CA
        on its own. Used by ``certs check`` and ``verify``."""
        b = bundle or self.load(mesh, slot)
        if b is None:
            return []
        trust = b"" if b.is_ca else self.trusted(mesh)
        return check_revocation(f"{mesh}/{slot}", b, trust, self.own_crls(mesh), mesh=mesh)

    def revoke(self, mesh: str, serial: int, now: dt.datetime | None = None) -> Revocation:
        """Put ``serial`` on the CRL of the ``mesh`` CA that issued it; idempotent.

        A serial of a leaf in the store goes on its issuer's CRL (``ca``, or ``ca-next`` during a rollover);
        any other serial goes on the CRL of every CA the mesh has (serials are random 159-bit numbers, so
        listing one under a CA that never issued it revokes nothing else). The CRL is re-signed with a
        ``nextUpdate`` at the CA's expiry. Push it with ``refresh_secrets``/``apply``: until then the peers
        still accept the certificate.

        Args:
            mesh: the mesh whose CA issued the certificate (the *holder's* mesh, e.g. the importer for its
                egress gateway's client leaf).
            serial: the certificate's serial number.
            now: the CRL's ``thisUpdate`` (UTC); default: the current time.

        Returns:
            What was revoked where.

        Raises:
            PkiError: the mesh has no CA in the store, or the serial is not positive or is over 159 bits.
        """
        now = now or utcnow()
        if serial <= 0 or serial.bit_length() > 159:
            raise PkiError(
                f"serial {serial:x} is not a certificate serial: RFC 5280 serials are positive and at most 20 "
                "octets (159 bits here, as 'certs show --wide' prints them)"
            )
        self.require_ca(mesh)
        holder: Slot | None = None
        targets: list[CaSlot] = [s for s in CA_SLOTS if self.load(mesh, s) is not None]
        for leaf_slot in ("server", "client"):
            leaf = self.load(mesh, leaf_slot)
            if leaf is not None and leaf.serial == serial:
                holder = leaf_slot
                targets = [s for s in targets if self._subject(mesh, s) == leaf.issuer] or targets
        done: list[tuple[CaSlot, bool]] = []
        for slot in targets:
            listed = self.revoked(mesh, slot)
            added = serial not in listed
            if added:
                self._write_crl(mesh, slot, [*listed, serial], now)
            done.append((slot, added))
        return Revocation(mesh, serial, tuple(done), holder)

    def trusted_crls(self, meshes: list[str], now: dt.datetime | None = None) -> bytes | None:
        """The CRLs to render beside the trust bundle of ``meshes``' CAs, or ``None`` if none revoked anything.

        When one of those CAs has revocations, every one of them gets a CRL: a CA without one is given an
        empty CRL, signed and written to the store once (so later renders are identical).
        """
        cas = [(m, s) for m in meshes for s in CA_SLOTS if self.load(m, s) is not None]
        if not any(self.revoked(m, s) for m, s in cas):
            return None
        out = b""
        for m, s in cas:
            pem = self.crl(m, s)
            if pem is None:
                pem = self._write_crl(m, s, [], now or utcnow())
            out += pem
        return out

    def _write_crl(self, mesh: str, slot: CaSlot, serials: list[int], now: dt.datetime) -> bytes:
        ca = self.load(mesh, slot)
        assert ca is not None
        if ca.key_pem is None:
            raise PkiError(
                f"{self.path(mesh, slot)} has no key beside it, so its CRL cannot be signed. Fix: sign the CRL "
                f"where that CA's key lives and put it at {self.crl_path(mesh, slot)}"
            )
        days = max(1, -(-(ca.not_after - now) // dt.timedelta(days=1)))  # until the CA itself expires
        pem = issue_crl(ca, serials, now=now, days=days)
        write_atomic(self.crl_path(mesh, slot), pem, mode=0o644)
        return pem

    def _subject(self, mesh: str, slot: CaSlot) -> str | None:
        ca = self.load(mesh, slot)
        return ca.subject if ca is not None else None

    def check_issued(
        self,
        bridge: Bridge,
        secrets: Mapping[tuple[str, str, str], Mapping[str, bytes] | None],
        now: dt.datetime | None = None,
    ) -> list[CertFinding]:
        """What cert-manager issued in the clusters (``spec.tls.issuer: cert-manager``), checked as the peers will.

        Per own mesh and gateway leaf: the Secret named by its credentialName in the gateway's namespace
        (``tls.crt``) by the rule set of :func:`check_leaf` against the issuer CA the peers trust (this store's
        ``<mesh>/ca``: validity and expiry, chain, EKU, the SANs the peer pins); its ``ca.crt`` is the issuer CA
        imported here (else a warning: the issuer changed, or the wrong CA was imported); and
        ``<credentialName>-cacert`` beside it holds exactly the peers' CAs (else the gateway refuses a peer,
        or trusts one no longer meant).

        Args:
            bridge: the spec, in cert-manager mode.
            secrets: the Secrets read from the clusters, by ``(mesh, namespace, name)``, their decoded data;
                ``None``: not found.
            now: verification time; default: now.

        Returns:
            Findings, named ``<mesh>/<role> (Secret <namespace>/<name>)``; none when all is well.
        """
        now = now or utcnow()
        out: list[CertFinding] = []
        for mesh in bridge.own_meshes:
            m = bridge.spec.meshes[mesh]
            name = bridge.credential_name(mesh)
            for spec in identities.leaves(bridge, mesh):
                gw = m.ingress_gateway if spec.role == "server" else m.egress_gateway
                assert gw is not None  # a leaf exists for a gateway of the spec
                label = f"{mesh}/{spec.role} (Secret {gw.namespace}/{name})"
                out += self._check_issued_leaf(mesh, label, spec, secrets.get((mesh, gw.namespace, name)), now)
                peers = (identities.server_trusts if spec.role == "server" else identities.client_trusts)(bridge, mesh)
                ca_name = name + SDS_CA_SUFFIX
                out += self._check_peer_cas(label, peers, secrets.get((mesh, gw.namespace, ca_name)), ca_name)
        return out

    def _check_issued_leaf(
        self, mesh: str, label: str, spec: LeafSpec, data: Mapping[str, bytes] | None, now: dt.datetime
    ) -> list[CertFinding]:
        if data is None or not data.get("tls.crt"):
            what = "is not in the cluster" if data is None else "has no tls.crt"
            return [
                CertFinding(
                    "error",
                    label,
                    f"{what}: cert-manager has not issued it (yet)",
                    "apply the rendered Certificate in the gateway's namespace ('meshbridge apply'), then read why "
                    "cert-manager has not issued it: 'kubectl describe certificate' in that namespace",
                )
            ]
        found = _check_against_spec(label, CertBundle(data["tls.crt"]), spec, self.trusted(mesh), now)
        issuer = data.get("ca.crt")
        imported = set(parse_certificates(self.trusted(mesh), f"{mesh}/ca"))
        if issuer and not imported & set(parse_certificates(issuer, label)):
            found.append(
                CertFinding(
                    "warning",
                    label,
                    f"its ca.crt ({_subjects(issuer)}) is not the issuer CA imported for {mesh} "
                    f"({_subjects(self.trusted(mesh))}), which the peers trust",
                    f"import the issuer's CA certificate: 'meshbridge certs import --mesh {mesh} --slot ca --cert "
                    "CA.pem --force', then 'meshbridge apply' (the peers' -cacert Secrets)",
                )
            )
        return found

    def _check_peer_cas(
        self, label: str, peers: list[str], data: Mapping[str, bytes] | None, ca_name: str
    ) -> list[CertFinding]:
        want = b"".join(self.trusted(p) for p in peers)
        have = (data or {}).get("ca.crt") or (data or {}).get("cacert")
        if not have:
            return [
                CertFinding(
                    "error",
                    label,
                    f"has no Secret {ca_name} with the peers' CAs beside it: the gateway trusts only the ca.crt "
                    "cert-manager writes, its own issuer's, and refuses the peers' certificates",
                    "'meshbridge apply' renders it (or 'meshbridge render' and apply it)",
                )
            ]
        if set(parse_certificates(have, ca_name)) != set(parse_certificates(want, "the peers' CAs")):
            return [
                CertFinding(
                    "error",
                    label,
                    f"Secret {ca_name} holds {_subjects(have)}, not the peers' CAs ({_subjects(want)})",
                    "'meshbridge apply' writes the peers' CAs from this state folder",
                )
            ]
        return []

    def check(self, bridge: Bridge, now: dt.datetime | None = None) -> list[CertFinding]:
        """Every certificate of the bridge checked as its peer would: validity, revocation, chain, EKU, SANs, key;
        and against the spec: a key type other than ``spec.tls.keyType`` is a warning."""
        now = now or utcnow()
        findings: list[CertFinding] = []
        for mesh in bridge.spec.meshes:
            ca = self.load(mesh, "ca")
            if ca is None:
                if bridge.spec.meshes[mesh].peer:
                    findings.append(
                        CertFinding(
                            "error",
                            f"{mesh}/ca",
                            "is a peer's CA, not trusted yet",
                            "run 'meshbridge peer accept OFFER' (importer) or 'meshbridge peer admit REPLY' (exporter)",
                        )
                    )
                elif self.orphan_ca_key(mesh) is not None:
                    findings.append(CertFinding("error", f"{mesh}/ca", *self._orphan_text(mesh, bridge)))
                else:
                    findings.append(
                        CertFinding("error", f"{mesh}/ca", "was never issued", "run 'meshbridge certs issue'")
                    )
                continue
            key = None if bridge.spec.meshes[mesh].peer else self._ca_key_finding(mesh)  # a peer's key is its own
            if key is not None:
                findings.append(key)
                ca = CertBundle(ca.cert_pem)  # the rest is checked without the key that cannot be used
            rotates = None if bridge.spec.meshes[mesh].peer else mesh  # a peer's CA is rotated by its owner
            imported = "ca" if rotates and self.is_imported(mesh, "ca") else None
            findings += check_ca(f"{mesh}/ca", ca) + check_validity(
                f"{mesh}/ca", ca, now, mesh=rotates, imported=imported
            )
            findings += self.check_revoked(mesh, "ca", ca)
            if not bridge.spec.meshes[mesh].peer:  # spec.tls.keyType is this owner's choice, not the peer's
                findings += self.check_key_type(bridge, mesh, "ca", ca)
        for mesh in bridge.own_meshes:
            trusted = self.trusted(mesh)
            for spec in identities.leaves(bridge, mesh):
                slot = spec.role
                leaf = self.load(mesh, slot)
                if leaf is None:
                    findings.append(
                        CertFinding("error", f"{mesh}/{slot}", "was never issued", "run 'meshbridge certs issue'")
                    )
                    continue
                key_problem = self.key_problem(mesh, slot)
                if key_problem is not None:
                    gateway = "ingress gateway" if slot == "server" else "egress gateway"
                    findings.append(
                        CertFinding(
                            "error",
                            f"{mesh}/{slot}",
                            f"{key_problem}: {mesh}'s {gateway} cannot complete a TLS handshake with this "
                            "certificate (render, lint and 'local up' refuse it)",
                            self._leaf_key_fix(mesh, slot),
                        )
                    )
                    leaf = CertBundle(leaf.cert_pem)  # the rest is checked without the key that cannot be used
                if trusted:  # peers trust this mesh's CA(s) for this mesh's leaves
                    findings += self.check_revoked(mesh, slot, leaf) + self.check_key_type(bridge, mesh, slot, leaf)
                    imported = slot if self.is_imported(mesh, slot) else None
                    findings += _check_against_spec(f"{mesh}/{slot}", leaf, spec, trusted, now, mesh, imported)
        return findings

    def _ca_key_finding(self, mesh: str) -> CertFinding | None:
        """An error when ``mesh``'s CA has a key file that cannot be used, or has none and was not imported
        without one (a key lost); ``None`` for a usable key and for a CA imported without its key."""
        problem = self.key_problem(mesh, "ca")
        if problem is None:
            return None
        crt, key = self.path(mesh, "ca"), self.key_path(mesh, "ca")
        cannot = "meshbridge can neither issue, rotate nor revoke with this CA (its peers still trust it)"
        if key.exists():
            fix = (
                f"restore {key} from a backup; or replace the CA knowingly with 'meshbridge certs issue --force' "
                "(new CAs for every mesh: the link breaks until every peer trusts them)"
            )
        elif self.imported_path(mesh, "ca").exists():
            return None  # imported without its key, on purpose: 'certs import' recorded it
        else:
            fix = (
                f"restore {key} from a backup; if the CA was imported without its key on purpose, record that: "
                f"'meshbridge certs import --mesh {mesh} --slot ca --cert {crt}'"
            )
        return CertFinding("error", f"{mesh}/ca", f"{problem}: {cannot}", fix)

    def _leaf_key_fix(self, mesh: str, slot: Slot) -> str:
        """The one command that gives ``mesh``'s leaf in ``slot`` a usable key again."""
        importing = f"'meshbridge certs import --mesh {mesh} --slot {slot} --cert LEAF.pem --key LEAF.key'"
        try:
            self.require_key(mesh, "leaf", {slot: "its private key is unusable"})
        except PkiError:  # its CA's key is not held here: the leaf comes from where it is
            return f"issue a new {slot} leaf where {mesh}'s CA key lives and import it: {importing}"
        if self.imported_path(mesh, slot).exists():
            return (
                f"import it again with its key: {importing} (or 'meshbridge certs issue' replaces it with a new "
                f"leaf from {mesh}'s CA)"
            )
        return "run 'meshbridge certs issue': it reissues this leaf (a new key and certificate) and pushes it"


def _subjects(pem: bytes) -> str:
    """The subjects of a PEM bundle's certificates, for a message."""
    return "; ".join(c.subject.rfc4514_string() for c in parse_certificates(pem))


def _org(bridge: Bridge, mesh: str) -> str:
    return f"meshbridge {bridge.metadata.name} {mesh}"


def _check_against_spec(
    name: str,
    bundle: CertBundle,
    spec: LeafSpec,
    trusted: bytes,
    now: dt.datetime | None,
    mesh: str | None = None,
    imported: str | None = None,
) -> list[CertFinding]:
    """:func:`check_leaf` for a leaf the bridge's spec describes: its role, and the SANs its peer pins; ``mesh``:
    the mesh whose leaf meshbridge rotates (named in an expiry's fix), ``None`` for cert-manager's; ``imported``:
    the slot it was imported into (its fix is a renewed import)."""
    return check_leaf(
        name,
        bundle,
        spec.role,
        trusted,
        dns_names=spec.pinned_dns_names,
        uris=spec.pinned_uris,
        now=now,
        pinning=identities.PINNING,
        mesh=mesh,
        imported=imported,
    )
