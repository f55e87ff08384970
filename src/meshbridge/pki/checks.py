"""Certificate checks shared by ``certs check``, ``certs import``, ``lint`` and ``verify`` (pure).

Path validation is ``cryptography.x509.verification`` (RFC 5280 plus the CA/B web PKI profile): a server
leaf is verified as a TLS server for each expected DNS name (EKU serverAuth required), a client leaf as a
TLS client (EKU clientAuth required) — the same checks Envoy's BoringSSL makes in the handshake, so a
leaf that passes here is accepted there, and one refused here would be refused there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from meshbridge.pki.x509 import CertBundle, Role, key_matches, parse_certificates, signed_by, utcnow

Severity = Literal["error", "warning"]
EXPIRY_WARNING_DAYS = 30


@dataclass(frozen=True)
class CertFinding:
    """One problem with one certificate: ``subject`` names it (a file, a Secret key or a role)."""

    severity: Severity
    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.subject}: {self.problem}. Fix: {self.fix}"


@dataclass(frozen=True)
class CertInfo:
    """What ``certs show`` prints for one certificate."""

    name: str
    subject: str
    sans: list[str]
    ekus: list[str]
    issuer: str
    serial: int
    not_after: dt.datetime
    days_left: int
    is_ca: bool


def describe(name: str, bundle: CertBundle, now: dt.datetime | None = None) -> CertInfo:
    """Subject, SANs, EKU, issuer, serial, not-after and whole days left (negative once expired)."""
    now = now or utcnow()
    return CertInfo(
        name=name,
        subject=bundle.subject,
        sans=[f"DNS:{d}" for d in bundle.dns_names] + [f"URI:{u}" for u in bundle.uris],
        ekus=bundle.ekus,
        issuer=bundle.issuer,
        serial=bundle.serial,
        not_after=bundle.not_after,
        days_left=(bundle.not_after - now).days if bundle.not_after > now else -((now - bundle.not_after).days + 1),
        is_ca=bundle.is_ca,
    )


def check_validity(
    name: str, bundle: CertBundle, now: dt.datetime | None = None, warn_days: int = EXPIRY_WARNING_DAYS
) -> list[CertFinding]:
    """Expired or not yet valid: error; fewer than ``warn_days`` days left: warning."""
    now = now or utcnow()
    if now < bundle.not_before:
        return [
            CertFinding(
                "error",
                name,
                f"not valid before {bundle.not_before:%Y-%m-%dT%H:%M:%SZ}",
                "check the issuer's clock, or reissue it: 'meshbridge certs rotate --leaf'",
            )
        ]
    if now > bundle.not_after:
        return [
            CertFinding(
                "error",
                name,
                f"expired at {bundle.not_after:%Y-%m-%dT%H:%M:%SZ}",
                "reissue it: 'meshbridge certs rotate --leaf' (a CA: 'meshbridge certs rotate --ca')",
            )
        ]
    left = bundle.not_after - now
    if left < dt.timedelta(days=warn_days):
        return [
            CertFinding(
                "warning",
                name,
                f"expires in {left.days} days ({bundle.not_after:%Y-%m-%dT%H:%M:%SZ})",
                "rotate it before it expires: 'meshbridge certs rotate'",
            )
        ]
    return []


def check_ca(name: str, bundle: CertBundle) -> list[CertFinding]:
    """A CA must say CA:TRUE and, when we hold its key, the key must match."""
    out = []
    if not bundle.is_ca:
        out.append(
            CertFinding(
                "error",
                name,
                "is not a CA (basicConstraints CA:FALSE or absent)",
                "use a CA certificate, e.g. one from 'meshbridge certs issue'",
            )
        )
    if bundle.key_pem is not None and not key_matches(bundle.cert, bundle.key_pem, f"{name} key"):
        out.append(
            CertFinding(
                "error",
                name,
                "the private key does not belong to this certificate",
                "pair the certificate with its own key",
            )
        )
    return out


def check_leaf(
    name: str,
    bundle: CertBundle,
    role: Role,
    trust_pem: bytes,
    *,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> list[CertFinding]:
    """Check a gateway leaf against what its peer will demand.

    Args:
        name: how findings name the certificate.
        bundle: the leaf (with its key, when held).
        role: ``server`` (verified as a TLS server for each of ``dns_names``) or ``client``.
        trust_pem: the CA bundle the *peer* trusts (PEM).
        dns_names: DNS SANs the peer pins (server: the exported hosts).
        uris: URI SANs the peer pins (client: the SPIFFE ID).
        now: verification time; default: now.

    Returns:
        Findings; empty when the peer would accept the leaf.
    """
    now = now or utcnow()
    out: list[CertFinding] = []
    out += check_validity(name, bundle, now)
    ekus = bundle.ekus
    wanted = "serverAuth" if role == "server" else "clientAuth"
    if ekus != [wanted]:
        out.append(
            CertFinding(
                "error",
                name,
                f"EKU is {ekus or 'absent'}, a {role} leaf must carry exactly [{wanted}]",
                f"reissue it as a {role} leaf ('meshbridge certs issue' replaces it); "
                "one EKU per leaf (CVE-2022-21657)",
            )
        )
    if not bundle.dns_names and not bundle.uris:
        out.append(
            CertFinding(
                "error",
                name,
                f"has no SAN (subject {bundle.subject}); peers ignore the CN (RFC 9525)",
                "reissue it with SANs ('meshbridge certs issue')",
            )
        )
    missing = [f"DNS:{d}" for d in dns_names if d not in bundle.dns_names] + [
        f"URI:{u}" for u in uris if u not in bundle.uris
    ]
    if missing:
        out.append(
            CertFinding(
                "error",
                name,
                f"lacks the SAN(s) its peer pins: {', '.join(missing)}",
                "reissue it ('meshbridge certs issue' replaces a leaf whose SANs no longer match the spec)",
            )
        )
    if bundle.key_pem is not None and not key_matches(bundle.cert, bundle.key_pem, f"{name} key"):
        out.append(
            CertFinding(
                "error",
                name,
                "the private key does not belong to this certificate",
                "pair the certificate with its own key (a 'tls handshake failure' otherwise)",
            )
        )
    out += _chain(name, bundle, role, trust_pem, dns_names, now)
    return out


def _chain(
    name: str, bundle: CertBundle, role: Role, trust_pem: bytes, dns_names: Sequence[str], now: dt.datetime
) -> list[CertFinding]:
    if not (now >= bundle.not_before and now <= bundle.not_after):
        return []  # already reported; path validation would only repeat it
    roots = [c for c in parse_certificates(trust_pem, f"trust bundle for {name}")]
    builder = PolicyBuilder().store(Store(roots)).time(now.replace(tzinfo=None))
    try:
        if role == "server":
            for host in dns_names or bundle.dns_names[:1]:
                builder.build_server_verifier(x509.DNSName(host)).verify(bundle.cert, [])
        else:
            builder.build_client_verifier().verify(bundle.cert, [])
    except VerificationError as e:
        issuers = ", ".join(c.subject.rfc4514_string() for c in roots)
        return [
            CertFinding(
                "error",
                name,
                f"does not verify against the CA its peer trusts ({issuers}): {e}",
                "issue it from that CA, or add its CA to the peer's cacert ('meshbridge certs issue')",
            )
        ]
    return []


def peer_verifies(
    chain: Sequence[x509.Certificate], trust: Sequence[x509.Certificate], now: dt.datetime | None = None
) -> str | None:
    """Whether a TLS peer (Envoy's BoringSSL, default verification flags) accepts ``chain`` against ``trust``.

    OpenSSL path building, not the web PKI profile of :func:`check_leaf`: the chain must end at a self-signed
    certificate in ``trust`` (no partial chains); every issuer must be able to sign (basicConstraints
    CA:TRUE, or no basicConstraints with keyUsage keyCertSign, or a v1 self-signed root) and be valid at
    ``now``. A self-signed leaf that is itself in ``trust`` is accepted (the article's openssl recipe). SANs,
    EKUs and the leaf's own validity are separate checks.

    Args:
        chain: the leaf first, then any intermediates the peer sends.
        trust: the peer's trusted CA bundle.
        now: verification time; default: now.

    Returns:
        ``None`` when the peer accepts the chain, else why not (as a sentence fragment).
    """
    now = now or utcnow()
    if not chain:
        return "there is no certificate"
    trusted = {_der(c) for c in trust}
    leaf = chain[0]
    if _der(leaf) in trusted and _self_signed(leaf):
        return None
    pool = list(trust) + list(chain[1:])
    current = leaf
    for _ in range(10):
        issuers = sorted((c for c in pool if signed_by(current, c)), key=lambda c: _der(c) not in trusted)
        if not issuers and _der(current) in trusted:
            return (
                f"the trust bundle holds {current.subject.rfc4514_string()} but not the root that issued it, and "
                "Envoy does not accept partial chains"
            )
        if not issuers:
            held = ", ".join(c.subject.rfc4514_string() for c in trust) or "nothing"
            return (
                f"no certificate of the trust bundle ({held}) issued {current.subject.rfc4514_string()} "
                "(unable to get local issuer certificate)"
            )
        issuer = issuers[0]
        name = issuer.subject.rfc4514_string()
        if not _can_sign(issuer):
            return f"its issuer {name} is not a CA (basicConstraints CA:FALSE or no keyCertSign)"
        if now < issuer.not_valid_before_utc or now > issuer.not_valid_after_utc:
            window = f"{issuer.not_valid_before_utc:%Y-%m-%d} to {issuer.not_valid_after_utc:%Y-%m-%d}"
            return f"its issuer {name} is not valid now (valid {window})"
        if _self_signed(issuer):
            if _der(issuer) in trusted:
                return None
            return f"the chain ends at {name}, which is not in the trust bundle"
        current = issuer
    return "the chain is longer than 10 certificates"


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _self_signed(cert: x509.Certificate) -> bool:
    return signed_by(cert, cert)


def _can_sign(cert: x509.Certificate) -> bool:
    try:
        ku: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not ku.key_cert_sign:
        return False
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        pass
    return ku is not None or (cert.version == x509.Version.v1 and _self_signed(cert))
