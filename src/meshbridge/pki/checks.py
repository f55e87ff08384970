"""Certificate checks shared by ``certs check``, ``certs import``, ``lint`` and ``verify`` (pure).

Path validation is ``cryptography.x509.verification`` (RFC 5280 plus the CA/B web PKI profile): a server
leaf is verified as a TLS server for each expected DNS name (EKU serverAuth required), a client leaf as a
TLS client (EKU clientAuth required) — the same checks Envoy's BoringSSL makes in the handshake, so a
leaf that passes here is accepted there, and one refused here would be refused there. A leaf's file may
carry its intermediates after it (what a gateway sends, and what an Istio ``credentialName`` Secret's
``tls.crt`` may hold): they are the verifier's untrusted pool, in any order, and :func:`order_chain` puts
them in the order a server sends them (leaf first, then each one's issuer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from meshbridge.errors import PkiError
from meshbridge.pki.x509 import CertBundle, Role, key_matches, parse_certificates, parse_crls, signed_by, utcnow

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
    """A CA must be one certificate, say CA:TRUE, be a self-signed root and, when we hold its key, match it.

    The key is optional: a CA imported without it is trusted by peers, but meshbridge cannot sign with it.
    A root is required because it lands in the peer's ``cacert``, and Envoy accepts no partial chain: an
    intermediate there would make the peer refuse every leaf (the intermediates go in the leaf's file).
    More certificates in the file would all be trusted by the peers, unchecked.

    Raises:
        PkiError: not PEM certificates, or a key that is not an unencrypted PEM key (its text is not shown).
    """
    out = []
    held = parse_certificates(bundle.cert_pem, name)
    if len(held) > 1:
        out.append(
            CertFinding(
                "error",
                name,
                f"holds {len(held)} certificates ({', '.join(c.subject.rfc4514_string() for c in held)}); a mesh "
                "CA is one, and peers would trust every one of them",
                "give the root CA alone; put intermediates after the leaf in its file",
            )
        )
    if not bundle.is_ca:
        out.append(
            CertFinding(
                "error",
                name,
                "is not a CA (basicConstraints CA:FALSE or absent)",
                "use a CA certificate, e.g. one from 'meshbridge certs issue'",
            )
        )
    elif not _self_signed(bundle.cert):
        out.append(
            CertFinding(
                "error",
                name,
                f"is not a root (issued by {bundle.issuer}): peers trust it alone, and Envoy accepts no partial "
                "chain, so they would refuse every leaf under it",
                "import the self-signed root CA as the mesh's CA, and put the intermediates after the leaf in its "
                "file ('meshbridge certs import --slot server|client')",
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
        bundle: the leaf (with its key, when held), optionally followed by its intermediates in any order;
            the leaf must come first, as a server sends it (:func:`order_chain` orders a file).
        role: ``server`` (verified as a TLS server for each of ``dns_names``) or ``client``.
        trust_pem: the CA bundle the *peer* trusts (PEM).
        dns_names: DNS SANs the peer pins (server: the exported hosts).
        uris: URI SANs the peer pins (client: the SPIFFE ID).
        now: verification time; default: now.

    Returns:
        Findings; empty when the peer would accept the leaf. The chain is verified from the leaf through the
        intermediates of its file to a CA of ``trust_pem``; an intermediate that is not a CA (CA:TRUE and
        keyCertSign), not valid at ``now``, or beyond a path length constraint fails it.

    Raises:
        PkiError: ``bundle`` or ``trust_pem`` is not PEM certificates.
    """
    now = now or utcnow()
    out: list[CertFinding] = []
    ordered = order_chain(bundle, name)
    if ordered.cert != bundle.cert:
        out.append(
            CertFinding(
                "error",
                name,
                f"its first certificate ({bundle.subject}) is not the leaf ({ordered.subject}): a gateway sends "
                "the first one as its own",
                "put the leaf first, then its intermediates ('meshbridge certs import' orders the file)",
            )
        )
        bundle = ordered
    extra = _off_path(ordered)
    if extra:
        out.append(
            CertFinding(
                "warning",
                name,
                f"also holds certificate(s) that are not on the leaf's chain: {', '.join(extra)}; peers get them "
                "and ignore them",
                "keep only the leaf and its intermediates in the file",
            )
        )
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
    """Path validation of the leaf through its file's intermediates to ``trust_pem``, as the peer does it.

    ``cryptography``'s verifier (RFC 5280 with the web PKI profile: CA:TRUE and keyCertSign on every issuer,
    validity, path length, EKU) and then :func:`peer_verifies` (OpenSSL's rule that the path ends at a
    self-signed root of the bundle: no partial chain), so that neither accepts what Envoy would refuse.
    """
    if not (now >= bundle.not_before and now <= bundle.not_after):
        return []  # already reported; path validation would only repeat it
    chain = parse_certificates(bundle.cert_pem, name)
    leaf, intermediates = chain[0], chain[1:]
    roots = [c for c in parse_certificates(trust_pem, f"trust bundle for {name}")]
    builder = PolicyBuilder().store(Store(roots)).time(now.replace(tzinfo=None))
    problem: str | None
    try:
        if role == "server":
            for host in dns_names or bundle.dns_names[:1]:
                builder.build_server_verifier(x509.DNSName(host)).verify(leaf, intermediates)
        else:
            builder.build_client_verifier().verify(leaf, intermediates)
    except VerificationError as e:
        problem = str(e)
    else:
        problem = peer_verifies(chain, roots, now)
    if problem is None:
        return []
    issuers = ", ".join(c.subject.rfc4514_string() for c in roots)
    carried = f", with the {len(intermediates)} intermediate(s) of its file" if intermediates else ""
    return [
        CertFinding(
            "error",
            name,
            f"does not verify against the CA its peer trusts ({issuers}){carried}: {problem}",
            "issue it from that CA (put the intermediates between them after the leaf in its file), or add its "
            "CA to the peer's cacert ('meshbridge certs issue')",
        )
    ]


def check_key_type(
    mesh: str, slot: str, bundle: CertBundle, wanted: str, *, imported: bool = False, tls12_server: bool = False
) -> list[CertFinding]:
    """A warning when ``bundle``'s key type is not ``spec.tls.keyType`` (``wanted``), with the fix that fits it.

    ``certs issue`` reissues such a leaf of its own; it never replaces a CA (its peers trust it: a new one
    would break every leaf it issued until they trusted it, which is what the staged rollover does) nor an
    imported certificate (``imported``).

    Args:
        mesh: the mesh that holds it.
        slot: ``ca``, ``server`` or ``client``.
        bundle: the certificate.
        wanted: ``spec.tls.keyType``.
        imported: it came from ``certs import``.
        tls12_server: it is the exporter's server leaf and TLS 1.2 is allowed: the Gateway's TLS 1.2 cipher
            suites follow ``spec.tls.keyType``, so a key of another type serves no TLS 1.2 client.
    """
    stored = bundle.key_type
    if stored == wanted:
        return []
    name = f"{mesh}/{slot}"
    problem = f"key type {stored}, but spec.tls.keyType is {wanted}"
    if tls12_server:
        problem += (
            f" (the exporter Gateway's TLS 1.2 cipher suites are the {wanted} ones, which this key cannot use: "
            "TLS 1.2 clients fail the handshake; TLS 1.3 is unaffected)"
        )
    if imported:
        fix = (
            f"it was imported, so meshbridge keeps it: import a {wanted} one ('meshbridge certs import --mesh "
            f"{mesh} --slot {slot} ...'), or set spec.tls.keyType: {stored}"
        )
    elif bundle.is_ca:
        problem += "; a CA is not replaced in place: until its peers trust a new one, they refuse every leaf it issues"
        fix = f"roll it over in stages: 'meshbridge certs rotate --ca --mesh {mesh}' (the new CA is {wanted})"
    else:
        fix = "run 'meshbridge certs issue' (it reissues a leaf whose key type is not the spec's)"
    return [CertFinding("warning", name, problem, fix)]


def revoked_by(
    cert: x509.Certificate, crls: Sequence[x509.CertificateRevocationList]
) -> x509.CertificateRevocationList | None:
    """The CRL of ``crls`` that ``cert``'s issuer signed (by name) and that lists ``cert``'s serial, or ``None``.

    Serials are unique per issuer only, so a serial on another CA's CRL revokes nothing here.
    """
    for crl in crls:
        if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
            return crl
    return None


def check_revocation(
    name: str, bundle: CertBundle, trust_pem: bytes, crl_pem: bytes | None, *, mesh: str | None = None
) -> list[CertFinding]:
    """Each certificate a peer checks against its CRLs that one of them revokes: one error each.

    The rule of ``certs check``, ``lint`` (``MB311``) and ``verify``. Envoy, once its validation context has
    CRLs, checks every certificate of the path it builds (``only_verify_leaf_cert_crl`` false: the leaf, the
    intermediates of its file, and the root of the trust bundle, which its own CRL may list) against the CRL
    of that certificate's issuer; a revoked one fails the handshake with the TLS alert ``certificate_revoked``.

    Args:
        name: how findings name the certificate.
        bundle: the leaf first, then any intermediates (as served); or a CA alone.
        trust_pem: the CAs the peer trusts (PEM; may be empty): the path goes on to the root found there.
        crl_pem: the CRLs the peer checks (PEM, concatenated), or ``None``/empty when it checks none.
        mesh: the mesh that holds the certificate, for the fix's command; ``None`` names no command.

    Returns:
        One error per revoked certificate of the path, leaf first; empty without CRLs.

    Raises:
        PkiError: ``bundle``, ``trust_pem`` or ``crl_pem`` is not valid PEM.
    """
    if not crl_pem:
        return []
    crls = parse_crls(crl_pem, f"the CRLs checked for {name}")
    chain = parse_certificates(bundle.cert_pem, name)
    trust = parse_certificates(trust_pem, f"trust bundle for {name}") if trust_pem.strip() else []
    path, _ = _path_from(chain[0], chain + trust)
    out = []
    for i, cert in enumerate(path):
        crl = revoked_by(cert, crls)
        if crl is None:
            continue
        serial = f"serial {cert.serial_number:x}"
        refused = "TLS alert certificate_revoked"
        if _self_signed(cert):
            what = serial if i == 0 else f"its CA {cert.subject.rfc4514_string()} ({serial})"
            problem = f"{what} is on its own CRL: peers refuse every certificate it issued ({refused})"
            fix = (
                f"roll the CA over: 'meshbridge certs rotate --ca --mesh {mesh}'"
                if mesh
                else "replace the CA, and the leaves it issued, with new ones"
            )
        elif i == 0 and not _is_ca(cert):
            problem = (
                f"{serial} is revoked (on the CRL of its CA, {crl.issuer.rfc4514_string()}): peers refuse it "
                f"({refused})"
            )
            fix = (
                f"issue a new one: 'meshbridge certs rotate --leaf --mesh {mesh}'"
                if mesh
                else "issue a new leaf from its CA and serve it instead"
            )
        else:
            what = serial if i == 0 else f"its intermediate CA {cert.subject.rfc4514_string()} ({serial})"
            problem = (
                f"{what} is revoked (on the CRL of {crl.issuer.rfc4514_string()}): peers refuse every chain "
                f"through it ({refused})"
            )
            fix = (
                "issue the leaf under an intermediate that is not revoked and import that chain ('meshbridge certs "
                f"import --mesh {mesh or 'MESH'} --slot server|client --cert LEAF.pem --key LEAF.key')"
            )
        out.append(CertFinding("error", name, problem, fix))
    return out


def order_chain(bundle: CertBundle, what: str = "certificate") -> CertBundle:
    """The certificates of ``bundle`` in the order a server sends them: the leaf, then each one's issuer.

    A leaf's PEM file may hold its intermediates in any order. The leaf is the certificate of the bundle's
    key when it holds one, else the one certificate (not a CA, if that decides) that issued none of the
    others; its issuers follow as found in the file (signature checked), up to a self-signed one or the
    first missing link. Certificates off that path keep their file order after it.

    Args:
        bundle: PEM certificates (and the leaf's key, when held; it is kept as is).
        what: how errors name the file.

    Returns:
        ``bundle`` itself (same bytes) when it is already in order or its leaf cannot be told; else a bundle
        of the reordered certificates (PEM re-encoded) with the same key.

    Raises:
        PkiError: not PEM certificates.
    """
    certs = parse_certificates(bundle.cert_pem, what)
    if len(certs) == 1:
        return bundle
    leaf = _leaf_of(certs, bundle.key_pem)
    if leaf is None:
        return bundle
    path, rest = _path_from(leaf, certs)
    ordered = path + rest
    if [_der(c) for c in ordered] == [_der(c) for c in certs]:
        return bundle
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in ordered)
    return CertBundle(pem, bundle.key_pem)


def _leaf_of(certs: list[x509.Certificate], key_pem: bytes | None) -> x509.Certificate | None:
    if key_pem is not None:
        try:
            owned = [c for c in certs if key_matches(c, key_pem)]
        except PkiError:
            owned = []  # an unreadable key is reported by the key check; tell the leaf by structure
        if len(owned) == 1:
            return owned[0]
    tops = [c for c in certs if not any(o is not c and signed_by(o, c) for o in certs)]
    if len(tops) > 1:
        tops = [c for c in tops if not _is_ca(c)]
    return tops[0] if len(tops) == 1 else None


def _path_from(
    leaf: x509.Certificate, certs: list[x509.Certificate]
) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    """The leaf and its issuers found in ``certs``, and the certificates off that path (file order)."""
    path = [leaf]
    rest = [c for c in certs if c is not leaf]
    while not _self_signed(path[-1]):
        issuer = next((c for c in rest if signed_by(path[-1], c)), None)
        if issuer is None:
            break
        path.append(issuer)
        rest.remove(issuer)
    return path, rest


def _off_path(bundle: CertBundle) -> list[str]:
    certs = parse_certificates(bundle.cert_pem)
    if len(certs) == 1:
        return []
    _, rest = _path_from(certs[0], certs)
    return [c.subject.rfc4514_string() for c in rest]


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


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


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
