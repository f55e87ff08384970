"""Issuing CAs, leaves and CRLs with ``cryptography`` (pure: no files, no clock unless given).

Profiles follow Mozilla Server Side TLS and RFC 5280:

* CA: ``basicConstraints CA:TRUE, pathlen:0`` (critical), ``keyUsage keyCertSign, cRLSign`` (critical),
  subject and authority key identifiers.
* Leaf: ``basicConstraints CA:FALSE`` (critical), ``keyUsage digitalSignature`` (+ ``keyEncipherment`` for
  RSA), **exactly one** EKU (``serverAuth`` for a server, ``clientAuth`` for a client; CVE-2022-21657 shows
  a verifier may not enforce EKU, so dual-use leaves are never minted), and SANs (never CN-only: RFC 9525).
* Keys: ECDSA P-256 by default, RSA-2048 as the article's option.
* Workload certificate (:func:`issue_workload_cert`): the profile of Istio's CA, not ours
  (``security/pkg/pki/util/generate_cert.go``): an empty subject, the SPIFFE ID as the only SAN (critical),
  ``keyUsage digitalSignature, keyEncipherment``, and **both** EKUs, since in the mesh every proxy is the
  client and the server of the same certificate. It never crosses to another mesh: the bridge's gateways
  present the single-EKU leaves above to each other.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshbridge.errors import PkiError
from meshbridge.fsutil import write_atomic

KeyType = Literal["ECDSA_P256", "RSA_2048"]
Role = Literal["server", "client"]

_EKU_OF_ROLE = {"server": ExtendedKeyUsageOID.SERVER_AUTH, "client": ExtendedKeyUsageOID.CLIENT_AUTH}
_BACKDATE = dt.timedelta(minutes=5)  # tolerate small clock skew between the issuer and the peers


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC."""
    return dt.datetime.now(dt.UTC)


def verification_time() -> dt.datetime:
    """Now to the second, the time a served certificate is judged at by the path check and the simulator: X.509
    times have a resolution of one second, so a certificate issued this second is valid at it (a time truncated to
    the minute was up to 59 s in the past, before a certificate issued a moment ago), and a verdict caches for a
    second."""
    return utcnow().replace(microsecond=0)


INPUT_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (CryptographyDeprecationWarning, r"Parsed a serial number which wasn't positive"),
    (CryptographyDeprecationWarning, r"DSA is deprecated"),
    (UserWarning, r"Attribute's length must be"),
)
"""What ``cryptography`` warns about when it reads a certificate, CRL or key that says something RFC 5280 or
its maintainers frown upon (a serial that is not positive, a DSA key, a name attribute out of its length
bounds): facts about the user's input, not about meshbridge's code. meshbridge says them in its own words
instead (:func:`meshbridge.pki.checks.check_profile` warns about the serial, :func:`parse_certificates`
refuses DSA) and keeps cryptography's text off the user's terminal (:func:`input_warnings_silenced`)."""


@contextmanager
def input_warnings_silenced() -> Iterator[None]:
    """Ignore :data:`INPUT_WARNINGS` inside the block, whatever filters are in force (``-W error`` included).

    Used where meshbridge reads a certificate, CRL or key, and around a whole CLI run (``cryptography`` warns
    again each time a serial that is not positive is read). Other warnings are left to the filters in force.
    """
    with warnings.catch_warnings():
        for category, message in INPUT_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        yield


def serial_of(cert: x509.Certificate) -> int:
    """``cert``'s serial number, without ``cryptography``'s warning for one that is not positive (the checks
    report it, :func:`meshbridge.pki.checks.check_profile`)."""
    with input_warnings_silenced():
        return cert.serial_number


@dataclass(frozen=True)
class CertBundle:
    """A certificate (PEM) and, when we hold it, its private key (PEM, PKCS#8, unencrypted).

    The key is never shown by ``repr`` and is written only with mode 0600.
    """

    cert_pem: bytes
    key_pem: bytes | None = field(default=None, repr=False)

    @cached_property
    def cert(self) -> x509.Certificate:
        """The parsed certificate. Raises ``PkiError`` if the PEM is not a certificate."""
        return parse_certificate(self.cert_pem)

    @property
    def subject(self) -> str:
        """RFC 4514 subject, e.g. ``CN=lambda.external,O=meshbridge``."""
        return self.cert.subject.rfc4514_string()

    @property
    def issuer(self) -> str:
        """RFC 4514 issuer."""
        return self.cert.issuer.rfc4514_string()

    @property
    def serial(self) -> int:
        """Serial number (RFC 5280 wants it positive; an imported one may not be, see :func:`serial_of`)."""
        return serial_of(self.cert)

    @property
    def not_before(self) -> dt.datetime:
        """Start of validity (UTC)."""
        return self.cert.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        """End of validity (UTC)."""
        return self.cert.not_valid_after_utc

    @property
    def is_ca(self) -> bool:
        """True when basicConstraints says CA:TRUE."""
        try:
            return bool(self.cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
        except x509.ExtensionNotFound:
            return False

    @property
    def dns_names(self) -> list[str]:
        """DNS SANs."""
        return _san(self.cert, x509.DNSName)

    @property
    def uris(self) -> list[str]:
        """URI SANs (e.g. SPIFFE IDs)."""
        return _san(self.cert, x509.UniformResourceIdentifier)

    @property
    def key_type(self) -> str:
        """The certificate's key type in ``spec.tls.keyType``'s words (:func:`key_type_of`)."""
        return key_type_of(self.cert)

    @property
    def ekus(self) -> list[str]:
        """Extended key usages by name (``serverAuth``, ``clientAuth``, or the dotted OID)."""
        try:
            ext = self.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            return []
        names = {ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth", ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth"}
        return [names.get(oid, oid.dotted_string) for oid in ext]

    def private_key(self) -> CertificateIssuerPrivateKeyTypes:
        """The private key. Raises ``PkiError`` when this bundle holds none (e.g. a peer's CA)."""
        if self.key_pem is None:
            raise PkiError(f"no private key is held for {self.subject}")
        return _load_key(self.key_pem, self.subject)

    def write_to(self, directory: Path, name: str) -> tuple[Path, Path | None]:
        """Write ``<name>.crt`` (0644) and, if held, ``<name>.key`` (0600), each atomically.

        Returns:
            The certificate path and the key path (``None`` without a key).
        """
        crt = directory / f"{name}.crt"
        write_atomic(crt, self.cert_pem, mode=0o644)
        key = None
        if self.key_pem is not None:
            key = directory / f"{name}.key"
            write_atomic(key, self.key_pem, mode=0o600)
        return crt, key


def key_type_of(cert: x509.Certificate) -> str:
    """The key type of ``cert``'s public key, named like ``spec.tls.keyType``: ``ECDSA_P256``, ``RSA_2048``, or
    for keys meshbridge never issues (imported ones) the same pattern (``ECDSA_P384``, ``RSA_4096``) or the
    algorithm's name (``Ed25519``)."""
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA_{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "P256", "secp384r1": "P384", "secp521r1": "P521"}
        return f"ECDSA_{curves.get(key.curve.name, key.curve.name)}"
    return type(key).__name__.removesuffix("PublicKey").removeprefix("_")


def new_private_key(key_type: KeyType) -> CertificateIssuerPrivateKeyTypes:
    """A fresh private key: ECDSA P-256 or RSA-2048 (public exponent 65537)."""
    if key_type == "ECDSA_P256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "RSA_2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise PkiError(f"unknown key type {key_type!r}; use ECDSA_P256 or RSA_2048")


def issue_ca(
    common_name: str,
    *,
    organization: str = "meshbridge",
    key_type: KeyType = "ECDSA_P256",
    days: int = 365,
    now: dt.datetime | None = None,
) -> CertBundle:
    """Create a self-signed root CA.

    Args:
        common_name: subject CN, e.g. ``meshbridge eks CA``.
        organization: subject O.
        key_type: ``ECDSA_P256`` or ``RSA_2048``.
        days: lifetime in days, counted from ``now``.
        now: issuance time (UTC); default: the current time. Validity starts 5 minutes earlier.

    Returns:
        The CA's certificate and key.
    """
    now = now or utcnow()
    key = new_private_key(key_type)
    name = _subject(organization, common_name, keep_long_cn=True)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .sign(key, _hash_for(key))
    )
    return CertBundle(_cert_pem(cert), _key_pem(key))


NAME_LIMIT = 64
"""RFC 5280's upper bound for a Common Name and an Organization (``ub-common-name``, ``ub-organization-name``)."""


def _subject(organization: str, common_name: str, *, keep_long_cn: bool) -> x509.Name:
    """A subject within RFC 5280's bounds. A leaf's identities are its SANs (peers ignore the CN, RFC 9525), so a
    Common Name too long to encode is left out; a CA keeps one (its subject names the issuer of every leaf),
    shortened in the middle so its unique end (the issue time) stays. The Organization is cut to the bound."""
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, _fit(organization))]
    if len(common_name) <= NAME_LIMIT:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    elif keep_long_cn:
        half = (NAME_LIMIT - 1) // 2
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name[:half]}~{common_name[-half:]}"))
    return x509.Name(attrs)


def _fit(text: str) -> str:
    return text if len(text) <= NAME_LIMIT else text[:NAME_LIMIT]


def issue_leaf(
    ca: CertBundle,
    role: Role,
    *,
    common_name: str,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    organization: str = "meshbridge",
    key_type: KeyType = "ECDSA_P256",
    days: int = 90,
    now: dt.datetime | None = None,
    not_before: dt.datetime | None = None,
) -> CertBundle:
    """Issue a server or client leaf signed by ``ca``.

    Args:
        ca: the issuing CA (with its key).
        role: ``server`` (EKU serverAuth) or ``client`` (EKU clientAuth); exactly one, never both.
        common_name: subject CN (informational only; identity is in the SANs).
        dns_names: DNS SANs (a server's exported hosts).
        uris: URI SANs (a client's SPIFFE ID ``spiffe://<trust-domain>/ns/<ns>/sa/<sa>``).
        organization: subject O.
        key_type: key algorithm of the leaf.
        days: lifetime in days from ``not_before`` (or from ``now``), capped at the CA's own expiry.
        now: issuance time (UTC); default: the current time.
        not_before: explicit start of validity (tests use it for not-yet-valid and expired leaves).

    Raises:
        PkiError: ``role`` is not exactly one of server/client, no SAN was given, or ``ca`` is not a CA
            with a key.
    """
    if role not in _EKU_OF_ROLE:
        raise PkiError(
            f"cannot issue a leaf with role {role!r}: a leaf carries exactly one EKU, 'server' (serverAuth) or "
            "'client' (clientAuth); dual-use leaves let a client pose as a server (CVE-2022-21657)"
        )
    if not dns_names and not uris:
        raise PkiError(
            f"cannot issue {common_name!r} without a SAN: peers ignore the CN (RFC 9525); give DNS names or URIs"
        )
    if not ca.is_ca:
        raise PkiError(f"{ca.subject} is not a CA (basicConstraints CA:FALSE); issue leaves from a mesh CA")
    ca_key = ca.private_key()
    now = now or utcnow()
    start = not_before or (now - _BACKDATE)
    key = new_private_key(key_type)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    sans += [x509.UniformResourceIdentifier(u) for u in uris]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_subject(organization, common_name, keep_long_cn=False))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(min(start + dt.timedelta(days=days), ca.not_after))  # never outlive the issuing CA
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key_encipherment=isinstance(key, rsa.RSAPrivateKey)), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EKU_OF_ROLE[role]]), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, _hash_for(ca_key))
    )
    return CertBundle(_cert_pem(cert), _key_pem(key))


def _leaf_key_usage(*, key_encipherment: bool) -> x509.KeyUsage:
    """A leaf's keyUsage: digitalSignature (what TLS 1.2 ECDHE and 1.3 sign with), and keyEncipherment when asked
    (an RSA key's TLS 1.2 key exchange; Istio's CA sets it on workload certificates whatever the key)."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def issue_workload_cert(
    ca: CertBundle, spiffe_id: str, *, days: int = 90, now: dt.datetime | None = None
) -> CertBundle:
    """Issue a proxy's workload certificate as Istio's CA does (the module's profile), ECDSA P-256.

    Args:
        ca: the mesh's CA (with its key).
        spiffe_id: the workload's identity, ``spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>``.
        days: lifetime in days from ``now``, capped at the CA's own expiry (Istio's agent rotates 24-hour
            certificates; nothing rotates these, so they last as long as a gateway leaf).
        now: issuance time (UTC); default: the current time.

    Raises:
        PkiError: ``spiffe_id`` is not a ``spiffe://`` URI, or ``ca`` is not a CA with a key.
    """
    if not spiffe_id.startswith("spiffe://"):
        raise PkiError(
            f"cannot issue a workload certificate for {spiffe_id!r}: its identity must be a SPIFFE ID, "
            "spiffe://<trustDomain>/ns/<namespace>/sa/<serviceAccount>"
        )
    if not ca.is_ca:
        raise PkiError(
            f"{ca.subject} is not a CA (basicConstraints CA:FALSE); issue workload certificates from a mesh CA"
        )
    ca_key = ca.private_key()
    now = now or utcnow()
    key = new_private_key("ECDSA_P256")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(min(now + dt.timedelta(days=days), ca.not_after))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_leaf_key_usage(key_encipherment=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([_EKU_OF_ROLE["server"], _EKU_OF_ROLE["client"]]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, _hash_for(ca_key))
    )
    return CertBundle(_cert_pem(cert), _key_pem(key))


def issue_crl(
    ca: CertBundle, revoked_serials: Iterable[int], *, now: dt.datetime | None = None, days: int = 7
) -> bytes:
    """A PEM CRL signed by ``ca`` that revokes ``revoked_serials`` (next update in ``days`` days).

    Envoy refuses every certificate of a chain whose CRL is past its ``nextUpdate``, so a CRL handed to
    proxies needs a ``days`` that outlives its use (``PkiStore.revoke`` uses the CA's remaining lifetime).
    """
    now = now or utcnow()
    ca_key = ca.private_key()
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + dt.timedelta(days=days))
    )
    for serial in revoked_serials:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - _BACKDATE).build()
        )
    return builder.sign(ca_key, _hash_for(ca_key)).public_bytes(serialization.Encoding.PEM)


def _reason(e: Exception) -> str:
    """``cryptography``'s message without its FAQ link ("Unable to load PEM file. See https://… MalformedFraming"
    → "Unable to load PEM file: MalformedFraming")."""
    text = re.sub(r"\s*See https?://\S+ for more details\.\s*", ": ", str(e)).strip()
    return re.sub(r"\.:", ":", text)


_DER_ERRORS = (
    ValueError,
    TypeError,  # a name attribute of a type its OID does not allow (e.g. a BIT STRING that is no unique id)
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)
"""What ``cryptography`` raises for DER it cannot read (when loading, or when a field is first read)."""


def parse_crl(pem: bytes, what: str = "CRL", issuer: CertBundle | None = None) -> x509.CertificateRevocationList:
    """A PEM CRL, optionally checked to be signed by ``issuer``.

    Raises:
        PkiError: not a PEM CRL, one that lists a serial number that is not positive (RFC 5280: no certificate
            has one, so the entry is damage), or not signed by ``issuer``.
    """
    try:
        with input_warnings_silenced():
            crl = x509.load_pem_x509_crl(pem)
            # cryptography parses the issuer and the entries only when first read: read them here
            issuer_name = crl.issuer
            bad = [entry.serial_number for entry in crl if entry.serial_number <= 0]
            signed = issuer is None or crl.is_signature_valid(issuer.cert.public_key())  # type: ignore[arg-type]
    except _DER_ERRORS as e:
        raise PkiError(f"{what}: not a PEM CRL ({_reason(e)}); expected one '-----BEGIN X509 CRL-----' block") from e
    if bad:
        raise PkiError(
            f"{what}: lists serial number {bad[0]}, which no certificate has (RFC 5280 serials are positive): the "
            "CRL is damaged. Fix: remove it, or revoke again with 'meshbridge certs revoke' to sign a new one"
        )
    if issuer is not None and (issuer_name != issuer.cert.subject or not signed):
        raise PkiError(
            f"{what}: not signed by {issuer.subject} (the CA it sits beside). Fix: remove it, or revoke "
            "again with 'meshbridge certs revoke' to sign a new one"
        )
    return crl


def parse_crls(pem: bytes, what: str = "CRL bundle") -> list[x509.CertificateRevocationList]:
    """Every CRL of a PEM bundle, in order (Envoy's ``crl`` field takes several CRLs concatenated, one per
    trusted CA).

    Raises:
        PkiError: a block is not a valid CRL, or a text that is not blank holds no CRL.
    """
    marker = b"-----BEGIN X509 CRL-----"
    parts = pem.split(marker)[1:]
    if not parts and pem.strip():
        raise PkiError(f"{what}: holds no CRL; expected '-----BEGIN X509 CRL-----' blocks")
    return [parse_crl(marker + part, what) for part in parts]


def revoked_serials(pem: bytes, what: str = "CRL bundle") -> list[int]:
    """The serial numbers revoked by every CRL of a PEM bundle, in order.

    Raises:
        PkiError: a block is not a valid CRL.
    """
    return [r.serial_number for crl in parse_crls(pem, what) for r in crl]


def parse_certificate(pem: bytes, what: str = "certificate") -> x509.Certificate:
    """The first certificate of a PEM text; ``PkiError`` naming ``what`` if there is none."""
    certs = parse_certificates(pem, what)
    return certs[0]


def parse_certificates(pem: bytes, what: str = "certificate bundle") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle, in order.

    Raises:
        PkiError: no certificate, or a block that is not a valid certificate.
    """
    try:
        with input_warnings_silenced():
            certs = x509.load_pem_x509_certificates(pem)
            for cert in certs:
                _read_fields(cert)
    except _DER_ERRORS as e:
        raise PkiError(
            f"{what}: not a PEM certificate ({_reason(e)}); expected '-----BEGIN CERTIFICATE-----' blocks"
        ) from e
    except UnsupportedAlgorithm as e:
        raise PkiError(f"{what}: an algorithm of a certificate is not supported ({e}); use ECDSA P-256 or RSA") from e
    if not certs:
        raise PkiError(f"{what}: holds no certificate")
    for i, cert in enumerate(certs):
        with input_warnings_silenced():  # reading a DSA key is deprecated: it is refused here instead
            key = cert.public_key()
        if not isinstance(key, _SIGNING_KEYS):
            which = f"certificate {i + 1} ({subject_text(cert)})" if len(certs) > 1 else subject_text(cert)
            algorithm = type(key).__name__.removeprefix("_").removesuffix("PublicKey")
            raise PkiError(
                f"{what}: {which} has a {algorithm} key, which Envoy (BoringSSL) cannot verify a TLS handshake "
                "with. Fix: reissue it with an ECDSA P-256 or RSA key"
            )
    return certs


_SIGNING_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
"""Public keys a certificate may carry: what can sign (DSA is refused: BoringSSL has no DSA in TLS, and
``cryptography`` deprecates it; X25519 and X448 cannot sign)."""


def subject_text(cert: x509.Certificate) -> str:
    """A certificate's subject for messages (RFC 4514); ``(empty subject)`` when it has none (its names are then
    its SANs)."""
    return cert.subject.rfc4514_string() or "(empty subject)"


def _read_fields(cert: x509.Certificate) -> None:
    """Read every field meshbridge uses: ``cryptography`` parses names, extensions and the key only when first
    read, so a damaged certificate would otherwise raise ``ValueError`` far from where it was loaded.

    Raises:
        ValueError: a field is not valid DER.
        UnsupportedAlgorithm: the public key's or the signature's algorithm is unknown to ``cryptography``.
    """
    cert.subject, cert.issuer, cert.serial_number, cert.public_key(), cert.signature_hash_algorithm
    cert.not_valid_before_utc, cert.not_valid_after_utc  # noqa: B018
    for ext in cert.extensions:
        ext.value  # noqa: B018


def key_matches(cert: x509.Certificate, key_pem: bytes, what: str = "key") -> bool:
    """True when ``key_pem`` is the private key of ``cert``'s public key."""
    key = _load_key(key_pem, what)
    return bool(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """True when ``issuer`` is named as ``cert``'s issuer and its key verifies ``cert``'s signature."""
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _load_key(key_pem: bytes, what: str) -> CertificateIssuerPrivateKeyTypes:
    try:
        with input_warnings_silenced():  # a DSA key: refused below, in meshbridge's words
            key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise PkiError(
            f"{what}: not an unencrypted PEM private key ({type(e).__name__}); the text is not shown"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise PkiError(f"{what}: unsupported key algorithm {type(key).__name__}; use ECDSA P-256 or RSA")
    return key


def _hash_for(key: CertificateIssuerPrivateKeyTypes) -> hashes.SHA256:
    return hashes.SHA256()


def _san(cert: x509.Certificate, kind: type[x509.DNSName] | type[x509.UniformResourceIdentifier]) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(kind)]


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
