"""Certificate checks shared by ``certs check``, ``certs import``, ``lint`` and ``verify`` (pure).

**One rule set, Envoy's.** A certificate is refused (an ``error`` finding) only for what makes Envoy (its
BoringSSL) or the peer fail the handshake: not a CA where one signs, expired or not yet valid, an EKU that is
present without the role's purpose (``anyExtendedKeyUsage`` alone included), a keyUsage that forbids signing
the handshake, a private key that is not the certificate's, a signature that does not verify, a chain that
does not reach a CA the peer trusts (a root, or an intermediate of its bundle alone: Envoy takes partial
chains), an intermediate beyond its issuer's path length or name constraints, a critical extension BoringSSL
does not handle, and a SAN the peer pins but the certificate lacks. What RFC 5280 (or meshbridge's own
profile) merely prefers is a ``warning``: a CA without keyUsage, a basicConstraints that is not critical, a
critical subjectAltName with a non-empty subject, a leaf with no EKU or both purposes, a serial that is not
positive, and so on. Each rule was checked against Envoy 1.40 with real handshakes
(``tests/unit/test_pki_rules.py`` lists them).

Each finding carries its ``rule`` (:data:`RULES`), so ``lint`` reports the same rule under its own code
(``MB402``–``MB407``) instead of a second copy. Path validation is :func:`peer_verifies`, a model of
BoringSSL's ``X509_verify_cert`` as Envoy calls it (purpose ``ssl_client``/``ssl_server``, partial chains);
:func:`served_verifies` asks it on the PEM a proxy is served (lint's MB308/MB309, the path check of
``meshbridge.envoy.handshake`` and the simulator's client certificates). A leaf's file may carry its
intermediates after it (what a gateway sends, and what an Istio ``credentialName`` Secret's ``tls.crt`` may
hold): they are the verifier's untrusted pool, in any order, and :func:`order_chain` puts them in the order a
server sends them (leaf first, then each one's issuer).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from meshbridge.errors import PkiError
from meshbridge.pki.x509 import (
    CertBundle,
    Role,
    key_matches,
    parse_certificates,
    parse_crls,
    serial_of,
    signed_by,
    subject_text,
    utcnow,
)
from meshbridge.severity import Severity

_named = subject_text

EXPIRY_WARNING_DAYS = 30

RULES = {
    "validity": "expired, not yet valid (error), expiring within the horizon (warning), or valid for less than "
    "the horizon in all (info until half of it is left)",
    "ca-count": "a mesh CA file holds more than one certificate (error)",
    "not-ca": "a certificate that must sign others cannot: basicConstraints CA:TRUE missing, or a keyUsage "
    "without keyCertSign (error)",
    "not-root": "a mesh CA that is not self-signed: Envoy takes it (partial chains), other clients may not (warning)",
    "key-mismatch": "the private key is not the certificate's (error)",
    "leaf-order": "the first certificate of a leaf's file is not the leaf (error)",
    "off-path": "a leaf's file holds certificates that are not on its chain (warning)",
    "eku-wrong": "an EKU present without the role's purpose (error)",
    "eku-any-role": "no EKU, or both serverAuth and clientAuth: valid for either role (warning)",
    "key-usage": "a leaf's keyUsage forbids signing the TLS handshake (error)",
    "san-missing": "a SAN the peer pins is missing (error)",
    "san-none": "no SAN while nothing pins one (warning)",
    "chain": "the chain does not verify against the peer's trust, as Envoy verifies it (error)",
    "rfc5280": "what RFC 5280 prefers and Envoy does not enforce (warning)",
    "key-type": "a key type other than spec.tls.keyType (warning)",
    "revoked": "on a CRL the peer checks (error)",
}
"""Every rule a :class:`CertFinding` can carry, and what it catches."""


@dataclass(frozen=True)
class CertFinding:
    """One problem with one certificate: ``subject`` names it (a file, a Secret key or a role)."""

    severity: Severity
    subject: str
    problem: str
    fix: str
    rule: str = ""
    """Which rule of :data:`RULES` found it (empty for the store's own findings: a missing file, a lost key)."""

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
    name: str,
    bundle: CertBundle,
    now: dt.datetime | None = None,
    warn_days: int = EXPIRY_WARNING_DAYS,
    mesh: str | None = None,
    imported: str | None = None,
) -> list[CertFinding]:
    """Expired or not yet valid: error; fewer than ``warn_days`` days left: warning, with the rotation that fixes it
    (of ``mesh``, when the certificate is one of its meshbridge issues: ``certs rotate --leaf --mesh M``, ``--ca``
    for a CA; when it was imported into ``mesh``'s slot ``imported``, the import of a renewed one).

    A certificate valid for less than ``warn_days`` in all is inside the window from its issue on, and so would a
    new one be: it is warned about only once less than half its validity is left (when istio-agent rotates a
    workload's certificate), and before that gets an ``info`` finding that its validity is shorter than the window
    (the fix: a longer ``leafValidityDays``/``caValidityDays``, or for an imported one a longer validity from its
    issuer, or accepting it).
    """
    now = now or utcnow()
    rotate = _rotation(bundle, mesh, imported)
    if now < bundle.not_before:
        return [
            CertFinding(
                "error",
                name,
                f"not valid before {bundle.not_before:%Y-%m-%dT%H:%M:%SZ}",
                f"check the issuer's clock, or reissue it: {rotate}",
                "validity",
            )
        ]
    if now > bundle.not_after:
        return [
            CertFinding(
                "error", name, f"expired at {bundle.not_after:%Y-%m-%dT%H:%M:%SZ}", f"reissue it: {rotate}", "validity"
            )
        ]
    left, lifetime, window = bundle.not_after - now, bundle.not_after - bundle.not_before, dt.timedelta(days=warn_days)
    if left >= window:
        return []
    expires = f"expires in {duration_text(left)} ({bundle.not_after:%Y-%m-%dT%H:%M:%SZ})"
    if lifetime > window:
        return [CertFinding("warning", name, expires, f"rotate it before it expires: {rotate}", "validity")]
    if left * 2 < lifetime:
        return [
            CertFinding(
                "warning",
                name,
                f"{expires}, less than half of its {duration_text(lifetime)} validity",
                f"rotate it before it expires: {rotate}",
                "validity",
            )
        ]
    field = "caValidityDays" if bundle.is_ca else "leafValidityDays"
    longer = f"raise spec.tls.{field} above {warn_days}" if mesh else "issue it for longer"
    if mesh and imported:
        longer = (
            f"have its issuer sign one valid for more than {warn_days} days (spec.tls.{field} applies only to "
            "the certificates meshbridge issues, not to imported ones)"
        )
    return [
        CertFinding(
            "info",
            name,
            f"valid for {duration_text(lifetime)} in all, shorter than the {warn_days}-day expiry warning window, "
            f"so a new one would be inside it too; {expires}",
            f"{longer}, or accept it and rotate it within its validity ({rotate}); it is warned about once less "
            "than half of its validity is left",
            "validity",
        )
    ]


def _rotation(bundle: CertBundle, mesh: str | None, imported: str | None = None) -> str:
    """The command that replaces ``bundle``: a CA's rollover or a leaf's reissue, of ``mesh`` when known; for a
    certificate imported into ``mesh``'s slot ``imported``, the import of a renewed one."""
    if mesh and imported:
        key = "" if imported == "ca" else " --key RENEWED.key"
        return f"'meshbridge certs import --mesh {mesh} --slot {imported} --cert RENEWED.pem{key}'"
    which = "--ca" if bundle.is_ca else "--leaf"
    return f"'meshbridge certs rotate {which}{f' --mesh {mesh}' if mesh else ''}'"


def duration_text(span: dt.timedelta) -> str:
    """``23 hours`` under a day (``1 hour``, ``0 hours``), else whole days (``29 days``, ``1 day``)."""
    if span < dt.timedelta(days=1):
        hours = int(span.total_seconds() // 3600)
        return f"{hours} hour{'' if hours == 1 else 's'}"
    return f"{span.days} day{'' if span.days == 1 else 's'}"


def check_ca(name: str, bundle: CertBundle) -> list[CertFinding]:
    """A mesh CA must be one certificate, able to sign (BoringSSL's ``X509_check_ca``) and, when we hold its key,
    match it; it should be a self-signed root, and what RFC 5280 merely prefers of a CA is a warning
    (:func:`check_profile`).

    The key is optional: a CA imported without it is trusted by peers, but meshbridge cannot sign with it.
    A root is preferred (a warning otherwise): it lands in the peer's ``cacert``, where Envoy takes an
    intermediate alone (it sets ``X509_V_FLAG_PARTIAL_CHAIN``), but a client without partial chains does not.
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
                f"holds {len(held)} certificates ({', '.join(_named(c) for c in held)}); a mesh CA is one, and peers "
                "would trust every one of them",
                "give the root CA alone; put intermediates after the leaf in its file",
                "ca-count",
            )
        )
    cert = held[0]
    why_not = _not_a_ca(cert)
    if why_not is not None:
        out.append(
            CertFinding(
                "error",
                name,
                f"is not a CA ({why_not}): it cannot sign the leaves its peers are to trust",
                "use a CA certificate (basicConstraints CA:TRUE, and keyCertSign if it has a keyUsage), e.g. one "
                "from 'meshbridge certs issue'",
                "not-ca",
            )
        )
    elif not _self_signed(cert):
        out.append(
            CertFinding(
                "warning",
                name,
                f"is not a root (issued by {bundle.issuer}): peers trust it alone; Envoy takes that (it sets "
                "X509_V_FLAG_PARTIAL_CHAIN), but a client without partial chains (openssl verify, Python's ssl "
                "before 3.13) refuses every leaf under it",
                "import the self-signed root CA as the mesh's CA, and put the intermediates after the leaf in its "
                "file ('meshbridge certs import --slot server|client'), or keep it if only Envoy verifies",
                "not-root",
            )
        )
    if bundle.key_pem is not None:
        out += check_key_pair(name, cert, bundle.key_pem, "pair the certificate with its own key")
    out += check_profile(name, cert, "root")
    return out


def check_key_pair(name: str, cert: x509.Certificate, key_pem: bytes, fix: str) -> list[CertFinding]:
    """An error when ``key_pem`` is not ``cert``'s private key (Envoy refuses the secret: handshake failure).

    Raises:
        PkiError: the key is not an unencrypted PEM private key (its text is not shown).
    """
    if key_matches(cert, key_pem, f"{name} key"):
        return []
    return [CertFinding("error", name, "the private key does not belong to this certificate", fix, "key-mismatch")]


def check_eku(name: str, cert: x509.Certificate, role: Role) -> list[CertFinding]:
    """An error when ``cert`` has an EKU without ``role``'s purpose (serverAuth, clientAuth).

    BoringSSL checks the purpose of every certificate the peer sends (``X509_PURPOSE_SSL_SERVER``/``_CLIENT``):
    an EKU extension that lacks it fails the handshake (TLS alert ``unsupported_certificate``), and
    ``anyExtendedKeyUsage`` does not stand in for it. No EKU at all passes (:func:`check_eku_breadth` warns).
    """
    ekus = _ekus(cert)
    wanted = _PURPOSE[role]
    if ekus is None or wanted in ekus:
        return []
    names = [_EKU_NAMES.get(e, e.dotted_string) for e in ekus]
    only_any = " (anyExtendedKeyUsage does not count: BoringSSL wants the purpose itself)" if ekus == [_ANY] else ""
    label = _EKU_NAMES[wanted]
    return [
        CertFinding(
            "error",
            name,
            f"EKU is {names}, without {label}{only_any}: peers refuse it as a {role} certificate (TLS alert "
            "unsupported_certificate)",
            f"use a {role} leaf (EKU {label}; 'meshbridge certs issue' issues one per role, CVE-2022-21657)",
            "eku-wrong",
        )
    ]


def check_eku_breadth(name: str, cert: x509.Certificate) -> list[CertFinding]:
    """A warning for a leaf valid for either role: no EKU (``openssl req -x509``'s default), or both
    serverAuth and clientAuth. Envoy accepts both; a client leaf can then pose as a server (CVE-2022-21657)."""
    ekus = _ekus(cert)
    if ekus is not None and not {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(ekus):
        return []
    what = "no EKU" if ekus is None else "both serverAuth and clientAuth"
    return [
        CertFinding(
            "warning",
            name,
            f"has {what}: it is valid for either role, so a client leaf can pose as a server (CVE-2022-21657); "
            "peers accept it",
            "issue one leaf per role: serverAuth for the exporter's server, clientAuth for the importer's client",
            "eku-any-role",
        )
    ]


def check_key_usage(name: str, cert: x509.Certificate) -> list[CertFinding]:
    """An error when a leaf's keyUsage forbids signing the handshake (digitalSignature absent).

    The gateways' cipher suites are ECDHE only and TLS 1.3 signs the handshake with the leaf's key, so
    BoringSSL refuses a peer whose keyUsage lacks digitalSignature (TLS alert ``illegal_parameter``, or the
    importer's 503 ``UF``); no keyUsage at all allows every use.
    """
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    if ku.digital_signature:
        return []
    return [
        CertFinding(
            "error",
            name,
            f"keyUsage is {_key_usages(ku) or 'empty'}, without digitalSignature: the key may not sign the TLS "
            "handshake, and peers refuse it",
            "reissue it with keyUsage digitalSignature (and keyEncipherment for RSA), as 'meshbridge certs issue' does",
            "key-usage",
        )
    ]


def check_sans(
    name: str,
    cert: x509.Certificate,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    *,
    pinning: str = "",
) -> list[CertFinding]:
    """The SANs a peer pins that ``cert`` lacks (an error), or no SAN at all while nothing pins one (a warning).

    A pinned DNS name matches a SAN as Envoy matches it: case-insensitively, or a ``*.`` wildcard SAN for
    exactly one label; a pinned URI (a SPIFFE ID) matches exactly.

    Args:
        name: how findings name the certificate.
        cert: the leaf.
        dns_names: DNS names the peer pins (empty when it pins none).
        uris: URIs the peer pins.
        pinning: where the pin is configured, for the fix (e.g. ``spec.tls.pinSubjectAltNames``); empty
            names no switch.
    """
    dns, uri = _san_values(cert)
    missing = [f"DNS:{d}" for d in dns_names if not any(dns_match(d, san) for san in dns)]
    missing += [f"URI:{u}" for u in uris if u not in uri]
    if missing:
        held = ", ".join([f"DNS:{d}" for d in dns] + [f"URI:{u}" for u in uri]) or "none"
        stop = f"; or stop pinning ({pinning}: false), and peers accept any certificate of the CA" if pinning else ""
        return [
            CertFinding(
                "error",
                name,
                f"lacks the SAN(s) its peer pins: {', '.join(missing)} (it has {held}); the peer refuses it (SAN "
                "mismatch)",
                f"reissue it with those SANs ('meshbridge certs issue' replaces a leaf of its own whose SANs no "
                f"longer match the spec; import one of yours with them){stop}",
                "san-missing",
            )
        ]
    if not dns and not uri:
        return [
            CertFinding(
                "warning",
                name,
                f"has no SAN (subject {_named(cert)}): peers ignore the CN (RFC 9525), so no SAN can be pinned; "
                "peers that pin none accept it",
                "reissue it with SANs: DNS:<exported host> for the server, a SPIFFE URI for the client "
                "('meshbridge certs issue')",
                "san-none",
            )
        ]
    return []


def dns_match(name: str, san: str) -> bool:
    """Whether the DNS SAN ``san`` matches the pinned ``name`` as Envoy's SAN matcher does: the same name in
    any case, or a wildcard ``*.rest`` for one label in front of ``rest``."""
    name, san = name.lower().rstrip("."), san.lower().rstrip(".")
    if name == san:
        return True
    if san.startswith("*.") and len(san) > 2:
        head, _, rest = name.partition(".")
        return bool(head) and rest == san[2:]
    return False


def check_profile(
    name: str, cert: x509.Certificate, kind: Literal["leaf", "intermediate", "root"]
) -> list[CertFinding]:
    """Warnings for what RFC 5280 prefers and Envoy does not enforce, for a leaf, an intermediate or a root.

    Envoy (BoringSSL) accepts each of these, so none refuses a certificate: a CA without keyUsage, a CA whose
    basicConstraints is not critical, a leaf that says CA:TRUE, a critical subjectAltName with a non-empty
    subject (or a non-critical one with an empty subject), a serial number that is not positive, and on a
    root, critical extensions BoringSSL does not handle (it does not look at a trust anchor's extensions; on a
    leaf or an intermediate they are refused, :func:`peer_verifies`).
    """
    found: list[tuple[str, str]] = []
    exts = {e.oid: e for e in cert.extensions}
    bc = exts.get(ExtensionOID.BASIC_CONSTRAINTS)
    is_ca = bc is not None and isinstance(bc.value, x509.BasicConstraints) and bc.value.ca
    if kind != "leaf" and is_ca:
        if ExtensionOID.KEY_USAGE not in exts:
            found.append(
                (
                    "has no keyUsage extension; RFC 5280 (4.2.1.3) wants keyCertSign on a CA. Envoy accepts it",
                    "when the CA is next reissued, give it keyUsage keyCertSign, cRLSign (critical)",
                )
            )
        if bc is not None and not bc.critical:
            found.append(
                (
                    "has a basicConstraints extension that is not critical; RFC 5280 (4.2.1.9) wants it critical on "
                    "a CA. Envoy accepts it",
                    "when the CA is next reissued, mark basicConstraints critical",
                )
            )
    if kind == "leaf" and is_ca:
        found.append(
            (
                "is a leaf that says CA:TRUE: it could sign certificates its peers would trust; RFC 5280 wants "
                "CA:FALSE on an end entity. Envoy accepts it",
                "reissue it with basicConstraints CA:FALSE ('meshbridge certs issue' does)",
            )
        )
    san = exts.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    if san is not None:
        empty = len(cert.subject) == 0
        if san.critical and not empty:
            found.append(
                (
                    f"has a critical subjectAltName and a subject ({_named(cert)}); RFC 5280 (4.2.1.6) wants it "
                    "critical only when the subject is empty. Envoy accepts it",
                    "when it is next reissued, mark the subjectAltName non-critical, or leave the subject empty",
                )
            )
        if not san.critical and empty:
            found.append(
                (
                    "has an empty subject and a subjectAltName that is not critical; RFC 5280 (4.2.1.6) wants it "
                    "critical then. Envoy accepts it",
                    "when it is next reissued, mark the subjectAltName critical, or give it a subject",
                )
            )
    serial = serial_of(cert)
    if serial <= 0:
        found.append(
            (
                f"has serial number {serial}, which is not positive: RFC 5280 (4.1.2.2) forbids it, cryptography "
                "will stop reading such certificates, and no CRL can revoke it ('certs revoke' refuses it). Envoy "
                "accepts it today",
                "reissue it with a positive serial number (meshbridge's are random 159-bit numbers)",
            )
        )
    if kind == "root":
        unhandled = unhandled_critical(cert)
        if unhandled:
            found.append(
                (
                    f"has critical extension(s) Envoy does not handle ({', '.join(unhandled)}); Envoy ignores a "
                    "trusted root's extensions, but other verifiers refuse it",
                    "when the CA is next reissued, mark them non-critical",
                )
            )
    return [CertFinding("warning", name, problem, fix, "rfc5280") for problem, fix in found]


def check_leaf(
    name: str,
    bundle: CertBundle,
    role: Role,
    trust_pem: bytes,
    *,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    now: dt.datetime | None = None,
    pinning: str = "",
    mesh: str | None = None,
    imported: str | None = None,
) -> list[CertFinding]:
    """Check a gateway leaf against what its peer will demand: the module's rule set.

    Args:
        name: how findings name the certificate.
        bundle: the leaf (with its key, when held), optionally followed by its intermediates in any order;
            the leaf must come first, as a server sends it (:func:`order_chain` orders a file).
        role: ``server`` (the peer verifies it as a TLS server) or ``client``.
        trust_pem: the CA bundle the *peer* trusts (PEM).
        dns_names: DNS SANs the peer pins (server: the exported hosts; empty when it pins none).
        uris: URI SANs the peer pins (client: the SPIFFE ID; empty when it pins none).
        now: verification time; default: now.
        pinning: where the pins are configured, named in the fix of a missing SAN (see :func:`check_sans`).
        mesh: the mesh whose meshbridge-issued leaf it is, named in the rotation an expiry's fix gives; ``None``
            for a leaf of no mesh meshbridge rotates.
        imported: the slot of ``mesh`` the leaf was imported into (``server``, ``client``): an expiry's fix is
            then the import of a renewed one, not meshbridge's rotation or ``spec.tls.leafValidityDays``.

    Returns:
        Findings; no error when the peer would accept the leaf. The chain is verified from the leaf through the
        intermediates of its file to a CA of ``trust_pem`` (:func:`peer_verifies`).

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
                f"its first certificate ({_named(bundle.cert)}) is not the leaf ({_named(ordered.cert)}): a gateway "
                "sends the first one as its own",
                "put the leaf first, then its intermediates ('meshbridge certs import' orders the file)",
                "leaf-order",
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
                "off-path",
            )
        )
    leaf = bundle.cert
    out += check_validity(name, bundle, now, mesh=mesh, imported=imported)
    out += check_eku(name, leaf, role) + check_eku_breadth(name, leaf) + check_key_usage(name, leaf)
    out += check_sans(name, leaf, dns_names, uris, pinning=pinning)
    if bundle.key_pem is not None:
        out += check_key_pair(
            name, leaf, bundle.key_pem, "pair the certificate with its own key (a 'tls handshake failure' otherwise)"
        )
    out += check_profile(name, leaf, "leaf")
    chain = parse_certificates(bundle.cert_pem, name)
    for cert in chain[1:]:
        out += check_profile(f"{name}: intermediate {_named(cert)}", cert, "intermediate")
    out += _chain(name, bundle, role, trust_pem, now)
    return out


def _chain(name: str, bundle: CertBundle, role: Role, trust_pem: bytes, now: dt.datetime) -> list[CertFinding]:
    """:func:`peer_verifies` of the leaf through its file's intermediates to ``trust_pem``, as a finding."""
    if not (now >= bundle.not_before and now <= bundle.not_after):
        return []  # already reported; path validation would only repeat it
    chain = parse_certificates(bundle.cert_pem, name)
    roots = parse_certificates(trust_pem, f"trust bundle for {name}")
    problem = peer_verifies(chain, roots, now, role)
    if problem is None:
        return []
    issuers = ", ".join(_named(c) for c in roots)
    carried = f", with the {len(chain) - 1} intermediate(s) of its file" if len(chain) > 1 else ""
    return [
        CertFinding(
            "error",
            name,
            f"does not verify against the CA its peer trusts ({issuers}){carried}: {problem}",
            "issue it from that CA (put the intermediates between them after the leaf in its file), or add its "
            "CA to the peer's cacert ('meshbridge certs issue')",
            "chain",
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
    return [CertFinding("warning", name, problem, fix, "key-type")]


def revoked_by(
    cert: x509.Certificate, crls: Sequence[x509.CertificateRevocationList]
) -> x509.CertificateRevocationList | None:
    """The CRL of ``crls`` that ``cert``'s issuer signed (by name) and that lists ``cert``'s serial, or ``None``.

    Serials are unique per issuer only, so a serial on another CA's CRL revokes nothing here.
    """
    for crl in crls:
        if crl.issuer == cert.issuer and crl.get_revoked_certificate_by_serial_number(serial_of(cert)) is not None:
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
        serial = f"serial {serial_of(cert):x}"
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
        out.append(CertFinding("error", name, problem, fix, "revoked"))
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
    chain: Sequence[x509.Certificate],
    trust: Sequence[x509.Certificate],
    now: dt.datetime | None = None,
    role: Role | None = None,
) -> str | None:
    """Whether a TLS peer (Envoy's BoringSSL, with the ``X509_V_FLAG_PARTIAL_CHAIN`` Envoy sets) accepts ``chain``
    against ``trust``.

    A model of ``X509_verify_cert`` as Envoy calls it, checked against Envoy 1.40 handshake by handshake:

    * the path reaches a certificate of ``trust``: a self-signed root, or any CA of the bundle without its root
      (Envoy sets ``X509_V_FLAG_PARTIAL_CHAIN``: every certificate of ``trusted_ca`` is an anchor); each issuer
      is found by name and signature (and its subjectKeyIdentifier, when the child names one), those of
      ``trust`` first, and only in ``trust`` above a certificate of it;
    * every issuer is valid at ``now``, the trusted ones included, and has keyCertSign if it has a keyUsage;
      one that is not a self-signed root says basicConstraints CA:TRUE, even in ``trust``;
    * every certificate the peer sends (the leaf and the intermediates, not those of ``trust``, whose EKU, path
      length and critical extensions BoringSSL does not look at) has no critical extension BoringSSL does not
      handle; each intermediate keeps within the pathLenConstraint of its own issuers and, when ``role`` is
      given, has an EKU with that role's purpose or none;
    * the names of the certificates below a CA with nameConstraints (DNS, URI and IP SANs) are within them
      (the trusted root's constraints included).

    A self-signed leaf that is itself in ``trust`` is accepted (the article's openssl recipe). The leaf's own
    validity, EKU, keyUsage and SANs are separate rules (:func:`check_leaf`).

    Args:
        chain: the leaf first, then any intermediates the peer sends.
        trust: the peer's trusted CA bundle.
        now: verification time; default: now.
        role: ``server`` or ``client``: the purpose the intermediates' EKUs must allow; ``None`` checks none.

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
    unhandled = unhandled_critical(leaf)
    if unhandled:
        return (
            f"it has critical extension(s) BoringSSL does not handle ({', '.join(unhandled)}): peers refuse it "
            "(unhandled critical extension)"
        )
    pool = list(trust) + list(chain[1:])
    path = [leaf]
    current = leaf
    for _ in range(10):
        within = trust if _der(current) in trusted else pool  # from the trust bundle on, BoringSSL looks only there
        issuers = sorted((c for c in within if _issued(current, c)), key=lambda c: _der(c) not in trusted)
        if not issuers and _der(current) in trusted:  # Envoy sets X509_V_FLAG_PARTIAL_CHAIN
            return _name_constraints(path)
        if not issuers:
            held = ", ".join(_named(c) for c in trust) or "nothing"
            return (
                f"no certificate of the trust bundle ({held}) issued {_named(current)} (unable to get local issuer "
                "certificate)"
            )
        issuer = issuers[0]
        problem = _issuer_problem(issuer, _der(issuer) in trusted, now, len(path) - 1, role)
        if problem is not None:
            return problem
        path.append(issuer)
        if _self_signed(issuer):
            if _der(issuer) in trusted:
                return _name_constraints(path)
            return f"the chain ends at {_named(issuer)}, which is not in the trust bundle"
        current = issuer
    return "the chain is longer than 10 certificates"


@lru_cache(maxsize=1024)
def served_verifies(chain_pem: bytes, trust_pem: bytes, now: dt.datetime, role: Role | None = None) -> str | None:
    """:func:`peer_verifies` on the PEM a proxy is served, cached by content: the one judge of a served chain for
    lint (MB308, MB309), ``local up``'s path check (:mod:`meshbridge.envoy.handshake`) and the simulator.

    Args:
        chain_pem: the certificate a peer presents, then the intermediates it sends (PEM).
        trust_pem: the CA bundle of the verifier's validation context (PEM).
        now: verification time.
        role: the presented certificate's role (``client``: the exporter verifies it, ``server``: the importer
            does); it makes the intermediates' EKUs count, as Envoy's purpose check does.

    Returns:
        ``None`` when the peer accepts the chain, else why not (:func:`peer_verifies`).

    Raises:
        PkiError: ``chain_pem`` or ``trust_pem`` is not PEM certificates.
    """
    chain = parse_certificates(chain_pem, "the presented certificate")
    return peer_verifies(chain, parse_certificates(trust_pem, "the trusted CAs"), now, role)


def _issuer_problem(
    issuer: x509.Certificate, anchor: bool, now: dt.datetime, below: int, role: Role | None
) -> str | None:
    """Why a peer refuses ``issuer`` in a path (not a CA, not valid at ``now``, or, for an intermediate the peer
    sent, one of :func:`_intermediate_problem`'s), or ``None``. ``anchor``: it is in the trust bundle (BoringSSL
    does not look at a trusted certificate's EKU, path length or critical extensions; it reads the basicConstraints
    of one that is not self-signed); ``below``: how many CAs the path has below it."""
    name = _named(issuer)
    why_not = _not_a_ca(issuer, anchor=anchor and _self_signed(issuer))
    if why_not is not None:
        return f"its issuer {name} is not a CA ({why_not})"
    if now < issuer.not_valid_before_utc or now > issuer.not_valid_after_utc:
        at = "%Y-%m-%d %H:%M:%S"  # to the second: a CA issued a moment ago is told apart from one of tomorrow
        window = f"{issuer.not_valid_before_utc:{at}} to {issuer.not_valid_after_utc:{at}} UTC"
        return f"its issuer {name} is not valid at {now:{at}} UTC (valid {window})"
    if not anchor:
        problem = _intermediate_problem(issuer, below=below, role=role)
        if problem is not None:
            return f"its intermediate {name} {problem}"
    return None


_HANDLED_CRITICAL = frozenset(
    {
        ExtensionOID.KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.POLICY_CONSTRAINTS,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.POLICY_MAPPINGS,
        ExtensionOID.INHIBIT_ANY_POLICY,
    }
)
"""The extensions BoringSSL handles when critical (``X509_supported_extension``); any other critical one on a
certificate the peer sends fails the handshake (``X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION``)."""


def unhandled_critical(cert: x509.Certificate) -> list[str]:
    """The critical extensions of ``cert`` that BoringSSL does not handle, by name (or dotted OID)."""
    return [_oid_name(e.oid) for e in cert.extensions if e.critical and e.oid not in _HANDLED_CRITICAL]


def _intermediate_problem(cert: x509.Certificate, *, below: int, role: Role | None) -> str | None:
    """Why BoringSSL refuses ``cert`` as an intermediate with ``below`` CAs between it and the leaf, or ``None``."""
    unhandled = unhandled_critical(cert)
    if unhandled:
        return f"has critical extension(s) BoringSSL does not handle ({', '.join(unhandled)})"
    try:
        path_length = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
    except x509.ExtensionNotFound:
        path_length = None
    if path_length is not None and below > path_length:
        return (
            f"allows {path_length} CA(s) below it (pathLenConstraint), and the chain has {below} (path length exceeded)"
        )
    ekus = _ekus(cert)
    if role is not None and ekus is not None and _PURPOSE[role] not in ekus:
        names = [_EKU_NAMES.get(e, e.dotted_string) for e in ekus]
        return (
            f"has EKU {names}, without {_EKU_NAMES[_PURPOSE[role]]}: peers refuse every {role} certificate under it "
            "(TLS alert unsupported_certificate)"
        )
    return None


def _not_a_ca(cert: x509.Certificate, *, anchor: bool = False) -> str | None:
    """Why ``cert`` cannot sign certificates for BoringSSL (``X509_check_ca``), or ``None``.

    A keyUsage without keyCertSign forbids it; otherwise basicConstraints CA:TRUE is needed (or a version 1
    self-signed root), except on a trusted root (``anchor``), whose basicConstraints BoringSSL does not read.
    """
    try:
        ku: x509.KeyUsage | None = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not ku.key_cert_sign:
        return f"its keyUsage ({_key_usages(ku) or 'empty'}) lacks keyCertSign"
    if anchor or _is_ca(cert) or (cert.version == x509.Version.v1 and _self_signed(cert)):
        return None
    try:
        cert.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return "no basicConstraints extension"
    return "basicConstraints CA:FALSE"


def _name_constraints(path: Sequence[x509.Certificate]) -> str | None:
    """Whether the DNS, URI and IP SANs of each certificate of ``path`` (leaf first) are within the
    nameConstraints of every CA above it; why not, else ``None``. Other name forms are not checked."""
    for i, ca in enumerate(path):
        try:
            nc = ca.extensions.get_extension_for_class(x509.NameConstraints).value
        except x509.ExtensionNotFound:
            continue
        for cert in path[:i]:
            for kind, value in _names_of(cert):
                if any(_within(kind, value, c) for c in nc.excluded_subtrees or ()):
                    return f"{_named(ca)} excludes the name {value} of {_named(cert)} (name constraints)"
                permitted = [c for c in nc.permitted_subtrees or () if _kind(c) == kind]
                if permitted and not any(_within(kind, value, c) for c in permitted):
                    return f"{_named(ca)} does not permit the name {value} of {_named(cert)} (name constraints)"
    return None


def _names_of(cert: x509.Certificate) -> list[tuple[str, str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    out = [("dns", str(v)) for v in san.get_values_for_type(x509.DNSName)]
    out += [("uri", str(v)) for v in san.get_values_for_type(x509.UniformResourceIdentifier)]
    out += [("ip", str(v)) for v in san.get_values_for_type(x509.IPAddress)]
    return out


def _kind(constraint: x509.GeneralName) -> str:
    if isinstance(constraint, x509.DNSName):
        return "dns"
    if isinstance(constraint, x509.UniformResourceIdentifier):
        return "uri"
    if isinstance(constraint, x509.IPAddress):
        return "ip"
    return "other"


def _within(kind: str, value: str, constraint: x509.GeneralName) -> bool:
    """Whether the name ``value`` of form ``kind`` is inside ``constraint`` (RFC 5280 4.2.1.10, as BoringSSL
    reads it: a DNS constraint covers the name and its subdomains, one with a leading dot only subdomains; a URI
    constraint is on the URI's host; an IP constraint is a network)."""
    if _kind(constraint) != kind:
        return False
    if kind == "ip":
        assert isinstance(constraint, x509.IPAddress)
        net = constraint.value
        return isinstance(net, ipaddress.IPv4Network | ipaddress.IPv6Network) and ipaddress.ip_address(value) in net
    base = str(constraint.value).lower()
    host = value.lower() if kind == "dns" else (urlsplit(value).hostname or "")
    if not host:
        return False
    if not base:
        return True
    if base.startswith("."):
        return host.endswith(base)
    return host == base or (kind == "dns" and host.endswith("." + base))


def _ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier] | None:
    """The EKU OIDs of ``cert``, or ``None`` when it has no EKU extension."""
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None


_ANY = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
_PURPOSE: dict[Role, x509.ObjectIdentifier] = {
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
}
_EKU_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    _ANY: "anyExtendedKeyUsage",
}


_KEY_USAGES = {
    "digital_signature": "digitalSignature",
    "content_commitment": "contentCommitment",
    "key_encipherment": "keyEncipherment",
    "data_encipherment": "dataEncipherment",
    "key_agreement": "keyAgreement",
    "key_cert_sign": "keyCertSign",
    "crl_sign": "cRLSign",
}


def _key_usages(ku: x509.KeyUsage) -> str:
    """The bits of ``ku`` set, in RFC 5280's names (``digitalSignature, cRLSign``)."""
    on = [name for attr, name in _KEY_USAGES.items() if getattr(ku, attr)]
    if ku.key_agreement:  # encipherOnly and decipherOnly are defined only with keyAgreement
        on += [
            name
            for attr, name in (("encipher_only", "encipherOnly"), ("decipher_only", "decipherOnly"))
            if getattr(ku, attr)
        ]
    return ", ".join(on)


def _san_values(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return [str(v) for v in san.get_values_for_type(x509.DNSName)], [
        str(v) for v in san.get_values_for_type(x509.UniformResourceIdentifier)
    ]


def _oid_name(oid: x509.ObjectIdentifier) -> str:
    name = oid._name
    return oid.dotted_string if name == "Unknown OID" else name


def _issued(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` issued ``cert`` as BoringSSL finds issuers: by name and signature, and by key
    identifier when ``cert`` names its issuer's (authorityKeyIdentifier) and ``issuer`` has one."""
    if not signed_by(cert, issuer):
        return False
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return True
    return aki is None or aki == ski


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _self_signed(cert: x509.Certificate) -> bool:
    return signed_by(cert, cert)
