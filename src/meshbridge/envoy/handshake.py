"""The mutual TLS handshake between an importer's egress gateway and the exporter's ingress gateway, judged on the
certificates and CA bundles the two proxies are served (pure, but for reading the pod files the twin mounted).

The importer's cluster to the exporter presents a client certificate (its ``UpstreamTlsContext``'s certificate
secret) and checks the exporter's server certificate against its validation context; the exporter's filter chain
for the export's SNI presents its server certificate and, under ``MUTUAL`` (``require_client_certificate``), checks
the client certificate against its own validation context. Each side is judged with
:func:`meshbridge.pki.checks.served_verifies` (BoringSSL's path validation as Envoy calls it), then against the CRLs
beside those CAs (:func:`meshbridge.pki.checks.check_revocation`, the rule of ``certs check`` and lint's MB311), on
the PEM the secrets hold: inline (the ``credentialName`` Secrets istiod serves), or in the file the proxy reads (a pod's
``clientCertificate``/``caCertificates`` file as the twin mounts it, the only reading this module does), then
against the SANs its validation context pins (:mod:`meshbridge.envoy.sans`, lint MB310's rule). A side
whose certificate or CA bundle is not served or not readable is not judged here: the proxies' readiness and
``lint`` report those.

The importer checks the server's certificate first (TLS 1.3: the server's Certificate comes before the client's),
so when it refuses, its egress gateway answers 503 ``UF`` (``CERTIFICATE_VERIFY_FAILED``) and the exporter never
sees the client certificate; when the exporter refuses the client's, it closes the connection (alert ``unknown
ca``, ``ssl.fail_verify_error``) after the client has finished its side of the handshake, so the importer's egress
gateway answers 503 ``UC`` (``upstream_reset_before_response_started{connection_termination}``).

An importer's cluster to the exporter that originates ``ISTIO_MUTUAL`` (its ``UpstreamTlsContext`` names the
istio-agent's ``default`` and ``ROOTCA``: a ``portLevelSettings`` entry's ``tls`` replaces the top-level MUTUAL one
whole) is refused before any of this (:func:`istio_mutual`): it presents the importer mesh's workload certificate,
not the bridge's client certificate, and verifies the exporter's server certificate against its own mesh's root.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meshbridge.envoy import sans
from meshbridge.envoy.names import (
    WORKLOAD_CERT,
    WORKLOAD_ROOTS,
    istio_mutual_sni,
    parse_cluster_name,
    parse_file_sds_name,
    sds_credential,
)
from meshbridge.envoy.view import EnvoyView, inline, sds_names
from meshbridge.errors import PkiError
from meshbridge.pki.checks import check_revocation, served_verifies
from meshbridge.pki.x509 import CertBundle, Role, parse_certificates, verification_time
from meshbridge.spec.models import Bridge

CLIENT_REFUSED = "UnknownCA"
"""The exporter's error when it refuses the importer's client certificate (the TLS alert it sends)."""
SERVER_REFUSED = "CertificateVerifyFailed"
"""The importer's error when it refuses the exporter's server certificate (what its egress gateway logs)."""
CLIENT_REVOKED = "CertificateRevoked"
"""The exporter's error when a CRL beside its CAs revokes the importer's client certificate (the TLS alert)."""


CLIENT_SAN_REFUSED = "ClientSanMismatch"
"""The exporter's error when the importer's client certificate carries none of the SANs it pins
(``ssl.fail_verify_san``); the importer refusing the server's on its pins is :data:`SERVER_REFUSED`, as its log says."""


MESH_IDENTITY = "IstioMutualToPeer"
"""The importer's error when its cluster to the exporter originates ISTIO_MUTUAL (:func:`istio_mutual`)."""


_CLOSED = "upstream_reset_before_response_started{connection_termination}"
"""The egress gateway's response details when the exporter closes the connection its handshake had completed."""


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
        error: :data:`SERVER_REFUSED` (the importer refuses), :data:`CLIENT_REFUSED`, :data:`CLIENT_REVOKED` or
            :data:`CLIENT_SAN_REFUSED` (the exporter refuses).
        detail: which proxy refuses which certificate, why, what the app sees, and the fix.
    """

    error: str
    detail: str


@dataclass(frozen=True)
class _Verdict:
    """Why a certificate is refused: its issuer, the reason, and (revoked by a CRL) the fix of ``certs check``'s
    revocation rule."""

    issuer: str
    why: str
    revoked_fix: str | None = None


def judge(bridge: Bridge, egress: End, cluster: str, ingress: End, port: int, chain_index: int) -> Refusal | None:
    """Whether the handshake of ``egress``'s ``cluster`` with ``ingress``'s filter chain ``chain_index`` on ``port``
    fails on trust, revocation or SAN pins: the importer's refusal first (it checks the server first), then the
    exporter's; ``None`` when both accept, or when what they hold cannot be judged here."""
    upstream = egress.view.upstream_tls(cluster)
    chain = ingress.view.chain(port, chain_index)
    if upstream is None or chain is None or chain.tls is None:
        return None
    client_certs, egress_ca = sds_names(upstream.get("common_tls_context") or {})  # its certificate, its CAs
    server_certs, ingress_ca = sds_names(chain.tls.get("common_tls_context") or {})
    if server_certs:
        refusal = _refusal(bridge, (egress, egress_ca), (ingress, server_certs[0]), "server") if egress_ca else None
        refusal = refusal or _san_refusal(egress, upstream, (ingress, server_certs[0]), "server")
        if refusal is not None:
            return refusal
    if client_certs and chain.require_client_certificate:
        refusal = _refusal(bridge, (ingress, ingress_ca), (egress, client_certs[0]), "client") if ingress_ca else None
        return refusal or _san_refusal(ingress, chain.tls, (egress, client_certs[0]), "client")
    return None


def istio_mutual(view: EnvoyView, cluster: str) -> bool:
    """Whether ``view``'s ``cluster`` originates ISTIO_MUTUAL, as istiod builds it: the workload certificate
    (SDS ``default``) checked by the mesh's root (``ROOTCA``)."""
    common = (view.upstream_tls(cluster) or {}).get("common_tls_context") or {}
    return sds_names(common) == ([WORKLOAD_CERT], WORKLOAD_ROOTS)


def istio_mutual_why(proxy: str, view: EnvoyView, cluster: str, exporter: str, matched: bool) -> str:
    """Why ``proxy``'s ``cluster`` (ISTIO_MUTUAL, :func:`istio_mutual`) cannot reach ``exporter``'s gateway, whose
    chain for the SNI it sends is ``matched`` or not: the identity it presents, the root it verifies with, and
    istiod's SNI when the rule sets none; then what its egress gateway answers."""
    sni = (view.upstream_tls(cluster) or {}).get("sni")
    parsed = parse_cluster_name(cluster)
    why = (
        f"{proxy} originates ISTIO_MUTUAL on {cluster}: it presents its own mesh's workload certificate (SDS "
        f"{WORKLOAD_CERT}, issued by that mesh's istiod CA, not the bridge's client certificate) and verifies "
        f"{exporter}'s server certificate against that mesh's root ({WORKLOAD_ROOTS}), which did not issue it"
    )
    if parsed is not None and sni == istio_mutual_sni(parsed[1], parsed[3], parsed[2]):
        why += f"; it sends SNI {sni} (istiod's for ISTIO_MUTUAL when the rule sets no sni)"
    if not matched:
        return (
            f"{why}, which selects no filter chain of {exporter}: the exporter resets the handshake and the "
            "importer's egress gateway answers 503 UF (URX,UF once its retries are spent)"
        )
    return why + (
        ". The importer ends the handshake (CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate) and "
        "answers 503 UF (URX,UF once its retries are spent)"
    )


def istio_mutual_fix(where: str) -> str:
    """The fix of an ISTIO_MUTUAL cluster to the exporter (:func:`istio_mutual_why`), ``where`` its ``tls`` is set."""
    return (
        f"set {where} to mode: MUTUAL with the bridge's credentialName and sni (the egress gateway Secret, the "
        "exported host); a portLevelSettings entry for the port replaces the top-level tls whole, so that tls goes "
        "in the entry, or the entry goes (one without tls leaves the port in plain text); ISTIO_MUTUAL belongs on "
        "the sidecar -> egress gateway hop inside the mesh"
    )


def _refusal(bridge: Bridge, verifier: tuple[End, str], holder: tuple[End, str], role: Role) -> Refusal | None:
    """The refusal of ``holder``'s certificate (the gateway, its SDS name) by ``verifier`` (the gateway, the SDS name
    of its CAs), or ``None``. ``role``: the certificate's (``server``: the importer verifies)."""
    (end, trust_sds), (peer, cert_sds) = verifier, holder
    chain = _pem(peer.view.secret(cert_sds), "tls_certificate", "certificate_chain")
    secret = end.view.secret(trust_sds)
    trust, crl = _pem(secret, "validation_context", "trusted_ca"), _pem(secret, "validation_context", "crl")
    verdict = _verdict(chain, trust, crl, role, verification_time()) if chain and trust else None
    if verdict is None:
        return None
    what = f"{peer.proxy}'s {role} certificate ({cert_sds}, issued by {verdict.issuer})"
    if verdict.revoked_fix is not None:
        owner = f"{peer.mesh}'s owner: " if bridge.spec.meshes[peer.mesh].peer else ""
        head = f"{end.proxy} refuses {what}: the CRLs beside its CAs {_where(end, trust_sds)} revoke it: {verdict.why}"
        fix, alert, error = owner + verdict.revoked_fix, "certificate revoked", CLIENT_REVOKED
    else:
        head = f"{end.proxy} does not trust {what}: its CAs {_where(end, trust_sds)} do not verify it: {verdict.why}"
        server = role == "server"
        fix = _server_fix(bridge, end, peer, trust_sds) if server else _client_fix(bridge, peer, end, trust_sds)
        alert, error = "unknown ca", CLIENT_REFUSED
    if role == "server":
        return Refusal(
            SERVER_REFUSED,
            f"{head}. The importer ends the handshake (CERTIFICATE_VERIFY_FAILED) and answers 503 UF (URX,UF once its "
            f"retries are spent). Fix: {fix}",
        )
    return Refusal(
        error,
        f"{head}. The exporter ends the handshake (alert {alert}) after the importer's side finished it (TLS 1.3), "
        f"so the importer's egress gateway answers 503 UC ({_CLOSED}). Fix: {fix}",
    )


def _san_refusal(end: End, tls: dict[str, Any], holder: tuple[End, str], role: Role) -> Refusal | None:
    """The refusal of ``holder``'s certificate (the gateway, its SDS name) by ``end``, whose TLS context ``tls``
    pins SANs the certificate has none of (:func:`meshbridge.envoy.sans.accepted`), or ``None``."""
    peer, cert_sds = holder
    pins = sans.matchers(tls.get("common_tls_context") or {})
    pem = _pem(peer.view.secret(cert_sds), "tls_certificate", "certificate_chain")
    if not pem or sans.accepted(pins, pem):
        return None
    carried = sans.identity(pem)
    head = (
        f"{end.proxy} refuses {peer.proxy}'s {role} certificate ({cert_sds}): it pins SAN(s) {sans.shown(pins)}, "
        f"the certificate carries {carried or 'no SAN (CN only)'}"
    )
    pinned = sans.shown(pins)[0]
    if role == "server":
        fix = f"reissue the exporter's server certificate with DNS:{pinned}"
        if carried:
            fix = f"pin a SAN it carries (the DestinationRule's tls.subjectAltNames: [{carried[0]}]), or {fix}"
        return Refusal(
            SERVER_REFUSED,
            f"{head}. The importer ends the handshake (CERTIFICATE_VERIFY_FAILED, its SAN matcher) and answers 503 UF "
            f"(URX,UF once its retries are spent). Fix: {fix}",
        )
    fix = f"reissue the importer's client certificate with URI:{pinned}"
    if carried:
        fix = f"correct the exporter Gateway server's tls.subjectAltNames to its identity ([{carried[0]}]), or {fix}"
    return Refusal(
        CLIENT_SAN_REFUSED,
        f"{head} (ssl.fail_verify_san). The exporter ends the handshake after the importer's side finished it (TLS "
        f"1.3), so the importer's egress gateway answers 503 UC ({_CLOSED}). Fix: {fix}",
    )


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


def _verdict(chain_pem: bytes, trust_pem: bytes, crl_pem: bytes, role: Role, now: dt.datetime) -> _Verdict | None:
    """Why a peer trusting ``trust_pem`` and checking ``crl_pem`` refuses the chain ``chain_pem``
    (:func:`~meshbridge.pki.checks.served_verifies`, then :func:`~meshbridge.pki.checks.check_revocation`)."""
    try:
        why = served_verifies(chain_pem, trust_pem, now, role)
        revoked = [] if why is not None else check_revocation("", CertBundle(chain_pem), trust_pem, crl_pem)
        issuer = parse_certificates(chain_pem)[0].issuer.rfc4514_string()
    except PkiError:  # unreadable: the proxy's readiness and lint (MB401) say so
        return None
    if revoked:
        return _Verdict(issuer, revoked[0].problem, revoked[0].fix)
    return None if why is None else _Verdict(issuer, why)


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
