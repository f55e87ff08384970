"""The mutual TLS handshake between an importer's egress gateway and the exporter's ingress gateway, judged on the
certificates and CA bundles the two proxies are served (pure, but for reading the pod files the twin mounted).

The importer's cluster to the exporter presents a client certificate (its ``UpstreamTlsContext``'s certificate
secret) and checks the exporter's server certificate against its validation context; the exporter's filter chain
for the export's SNI presents its server certificate and, under ``MUTUAL`` (``require_client_certificate``), checks
the client certificate against its own validation context. Each side is judged with
:func:`meshbridge.pki.checks.peer_verifies` (BoringSSL's path validation as Envoy calls it), on the PEM the secrets
hold: inline (the ``credentialName`` Secrets istiod serves), or in the file the proxy reads (a pod's
``clientCertificate``/``caCertificates`` file as the twin mounts it, the only reading this module does). A side
whose certificate or CA bundle is not served or not readable is not judged here: the proxies' readiness and
``lint`` report those.

The importer checks the server's certificate first (TLS 1.3: the server's Certificate comes before the client's),
so when it refuses, its egress gateway answers 503 ``UF`` (``CERTIFICATE_VERIFY_FAILED``) and the exporter never
sees the client certificate; when the exporter refuses the client's, it closes the connection (alert ``unknown
ca``, ``ssl.fail_verify_error``) after the client has finished its side of the handshake, so the importer's egress
gateway answers 503 ``UC`` (``upstream_reset_before_response_started{connection_termination}``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from meshbridge.envoy.names import parse_file_sds_name, sds_credential
from meshbridge.envoy.view import EnvoyView, inline, sds_names
from meshbridge.errors import PkiError
from meshbridge.pki.checks import peer_verifies
from meshbridge.pki.x509 import Role, parse_certificates, utcnow
from meshbridge.spec.models import Bridge

CLIENT_REFUSED = "UnknownCA"
"""The exporter's error when it refuses the importer's client certificate (the TLS alert it sends)."""
SERVER_REFUSED = "CertificateVerifyFailed"
"""The importer's error when it refuses the exporter's server certificate (what its egress gateway logs)."""


@dataclass(frozen=True)
class End:
    """One gateway of the handshake.

    Attributes:
        mesh: its mesh.
        proxy: its proxy name (``<mesh>/<workload>``).
        namespace: its pods' namespace (where istiod reads its ``credentialName`` Secrets).
        view: its configuration.
    """

    mesh: str
    proxy: str
    namespace: str
    view: EnvoyView


@dataclass(frozen=True)
class Refusal:
    """One side of the handshake refuses the other's certificate.

    Attributes:
        error: :data:`CLIENT_REFUSED` (the exporter refuses) or :data:`SERVER_REFUSED` (the importer refuses).
        detail: which proxy does not trust which CA, why, what the app sees, and the fix.
    """

    error: str
    detail: str


def judge(bridge: Bridge, egress: End, cluster: str, ingress: End, port: int, chain_index: int) -> Refusal | None:
    """Whether the handshake of ``egress``'s ``cluster`` with ``ingress``'s filter chain ``chain_index`` on ``port``
    fails on trust: the importer's refusal first (it checks the server first), then the exporter's; ``None`` when
    both accept, or when what they hold cannot be judged here."""
    upstream = egress.view.upstream_tls(cluster)
    chain = ingress.view.chain(port, chain_index)
    if upstream is None or chain is None or chain.tls is None:
        return None
    client_certs, egress_ca = sds_names(upstream.get("common_tls_context") or {})  # its certificate, its CAs
    server_certs, ingress_ca = sds_names(chain.tls.get("common_tls_context") or {})
    if server_certs and egress_ca:
        why = _refused(egress.view, egress_ca, ingress.view, server_certs[0], "server")
        if why is not None:
            return Refusal(
                SERVER_REFUSED,
                f"{egress.proxy} does not trust {ingress.proxy}'s server certificate ({server_certs[0]}, issued by "
                f"{why[0]}): its CAs {_where(egress, egress_ca)} do not verify it: {why[1]}. The importer ends the "
                f"handshake (CERTIFICATE_VERIFY_FAILED) and answers 503 UF (URX,UF once its retries are spent). Fix: "
                + _server_fix(bridge, egress, ingress, egress_ca),
            )
    if client_certs and ingress_ca is not None and chain.require_client_certificate:
        why = _refused(ingress.view, ingress_ca, egress.view, client_certs[0], "client")
        if why is not None:
            return Refusal(
                CLIENT_REFUSED,
                f"{ingress.proxy} does not trust {egress.proxy}'s client certificate ({client_certs[0]}, issued by "
                f"{why[0]}): its CAs {_where(ingress, ingress_ca)} do not verify it: {why[1]}. The exporter ends the "
                "handshake (alert unknown ca) after the importer's side finished it (TLS 1.3), so the importer's "
                "egress gateway answers 503 UC (upstream_reset_before_response_started{connection_termination}). Fix: "
                + _client_fix(bridge, egress, ingress, ingress_ca),
            )
    return None


def _refused(verifier: EnvoyView, trust_sds: str, peer: EnvoyView, cert_sds: str, role: Role) -> tuple[str, str] | None:
    """The issuer of the leaf ``peer`` presents under ``cert_sds`` and why ``verifier`` refuses it against its CAs
    under ``trust_sds``; ``None`` when it accepts it, or when either is not served inline or not readable."""
    chain = _pem(peer.secret(cert_sds), "tls_certificate", "certificate_chain")
    trust = _pem(verifier.secret(trust_sds), "validation_context", "trusted_ca")
    if not chain or not trust:
        return None
    return _verdict(chain, trust, role, utcnow().replace(second=0, microsecond=0))


def _pem(secret: dict[str, Any] | None, kind: str, field: str) -> bytes:
    """The PEM of ``secret``'s ``kind.field``: inline, or the file the proxy reads it from (a pod's file the twin
    mounted); ``b""`` when there is none or the file cannot be read."""
    source = ((secret or {}).get(kind) or {}).get(field)
    if isinstance(source, dict) and "filename" in source:
        try:
            return Path(source["filename"]).read_bytes()
        except OSError:  # not written (yet): the proxy's readiness says so
            return b""
    return inline(source)


@lru_cache(maxsize=256)
def _verdict(chain_pem: bytes, trust_pem: bytes, role: Role, now: dt.datetime) -> tuple[str, str] | None:
    try:
        chain, trust = parse_certificates(chain_pem), parse_certificates(trust_pem)
    except PkiError:  # unreadable: the proxy's readiness and lint (MB401) say so
        return None
    why = peer_verifies(chain, trust, now, role)
    return None if why is None else (chain[0].issuer.rfc4514_string(), why)


def _where(end: End, trust_sds: str) -> str:
    """``end``'s CAs under ``trust_sds``, and the Secret istiod reads them from."""
    parsed = sds_credential(trust_sds)
    files = parse_file_sds_name(trust_sds)
    if files is not None:
        return f"({trust_sds}: the pod's file {files[0]})"
    if parsed is None:
        return f"({trust_sds})"
    cred = f"{end.namespace}/{parsed[0]}"
    return f"({trust_sds}: cacert or ca.crt of Secret {cred}-cacert, else of {cred})"


def _client_fix(bridge: Bridge, egress: End, ingress: End, trust_sds: str) -> str:
    """How the exporter comes to trust the importer's client certificate: a ``peer admit`` by the exporter's owner
    (two owners), else the CA in its Secret."""
    if bridge.spec.meshes[egress.mesh].peer:
        return (
            f"admit {egress.mesh}'s current CA: 'meshbridge peer admit REPLY --fingerprint SHA256' with the reply "
            f"{egress.mesh}'s owner wrote for it ('meshbridge peer accept'), then render {ingress.mesh} again"
        )
    if bridge.spec.meshes[ingress.mesh].peer:
        return (
            f"send {ingress.mesh}'s owner a reply for your current CA ('meshbridge peer accept OFFER --fingerprint "
            f"SHA256 -o reply.yaml'); they run 'meshbridge peer admit' with it and render {ingress.mesh} again"
        )
    return (
        f"add the CA that issued the client certificate to them ({trust_sds}), or issue the client "
        f"certificate from a CA it holds; with two owners, {ingress.mesh}'s owner runs 'meshbridge peer admit' with "
        f"{egress.mesh}'s reply and renders {ingress.mesh} again"
    )


def _server_fix(bridge: Bridge, egress: End, ingress: End, trust_sds: str) -> str:
    """How the importer comes to trust the exporter's server certificate: a ``peer accept`` of a new offer (two
    owners), else the CA in its Secret."""
    if bridge.spec.meshes[ingress.mesh].peer:
        return (
            f"accept {ingress.mesh}'s current CA: 'meshbridge peer accept OFFER --fingerprint SHA256' with a new "
            f"offer from {ingress.mesh}'s owner, then render {egress.mesh} again"
        )
    if bridge.spec.meshes[egress.mesh].peer:
        return f"send {egress.mesh}'s owner a new offer ('meshbridge peer offer'): it carries your current CA"
    return (
        f"add the CA that issued the server certificate to them ({trust_sds}), or issue the server "
        f"certificate from a CA it holds; with two owners, {egress.mesh}'s owner accepts {ingress.mesh}'s new offer "
        f"('meshbridge peer accept') and renders {egress.mesh} again"
    )
