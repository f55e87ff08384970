"""What one mesh's gateways need from the PKI, as a value (pure): the store builds it, render and lint read it."""

from __future__ import annotations

from dataclasses import dataclass

from meshbridge.pki.x509 import CertBundle


@dataclass(frozen=True)
class MeshCredentials:
    """What one mesh's gateways need: its leaves, the CA bundles they trust and those CAs' CRLs (PEM).

    ``server_crl``/``client_crl`` are ``None`` while no trusted CA has revoked anything; otherwise they hold
    one CRL per CA of the matching trust bundle (Envoy needs all or none: see *Revocation* in
    :mod:`meshbridge.pki.store`).

    ``issuer_ca`` is set only when the local twin plays cert-manager (``spec.tls.issuer: cert-manager``): the CA of
    the mesh's own issuer, which cert-manager writes as the ``ca.crt`` of the Secrets it issues.
    """

    server: CertBundle | None
    client: CertBundle | None
    server_trust: bytes
    client_trust: bytes
    server_crl: bytes | None = None
    client_crl: bytes | None = None
    issuer_ca: bytes | None = None
