"""MB4xx: every certificate a proxy is served, checked on its own (pure).

What a proxy is served is read from its translation (the SDS resources istiod would send, built from the
Secrets with istiod's key precedence), and for the files in the pod that the translation names
(``file-cert:<cert>~<key>``, ``file-root:<ca>`` and a validation context's CRL file) from the files lint was given
for those paths (``--cert PATH=FILE``, :attr:`MeshInput.files`): the same checks, a file's field as the object. A
certificate's role comes from where the proxy uses it: a listener (server) or a cluster (client). The checks
reuse :mod:`meshbridge.pki`: validity windows, key pairs, EKU and SAN accessors.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from meshbridge.envoy.names import SDS_CA_SUFFIX, SYSTEM_ROOTS, parse_file_sds_name, parse_sds_name
from meshbridge.envoy.view import inline, sds_names
from meshbridge.errors import PkiError
from meshbridge.istio.parse import secret_values
from meshbridge.lint.codes import finding
from meshbridge.lint.findings import Finding, ObjectRef
from meshbridge.lint.inputs import LintInput, MeshInput
from meshbridge.lint.view import ProxyView
from meshbridge.pki.checks import (
    check_eku,
    check_eku_breadth,
    check_key_pair,
    check_key_usage,
    check_sans,
    check_validity,
)
from meshbridge.pki.x509 import CertBundle, Role, parse_certificates, parse_crls, signed_by

MAX_LIFETIME_DAYS = 366
_CODE_OF_RULE = {"eku-wrong": "MB405", "key-usage": "MB405", "eku-any-role": "MB406", "san-none": "MB407"}
"""Lint's code for each rule of :mod:`meshbridge.pki.checks` it reports."""
_ROLES: dict[str, Role] = {"server": "server", "client": "client"}


@dataclass(frozen=True)
class Served:
    """A certificate chain (and key) or a CA bundle a proxy is served over SDS.

    Attributes:
        sds: the SDS resource name (``kubernetes://mtls-credential``, ``file-cert:<cert>~<key>``).
        ref: the Secret (and the key) it came from, or the field that names its file in the pod.
        pem: the certificate chain or CA bundle.
        key_pem: the private key (leaves only).
        certs: the parsed certificates; empty when ``error`` is set.
        error: why the PEM cannot be read, or ``None``.
        crl_pem: a CA bundle's CRLs (the Secret's ``crl`` beside ``cacert``, ``ca.crl`` beside ``ca.crt``, or the
            ``caCrl`` file); empty when the proxy checks none.
        key_file: the field that names the private key's file (a leaf read from files); ``None`` for a Secret.
        crl_file: the field that names the CRL's file (a bundle read from files); ``None`` for a Secret.
    """

    sds: str
    ref: ObjectRef
    pem: bytes
    key_pem: bytes | None = field(default=None, repr=False)
    certs: tuple[x509.Certificate, ...] = ()
    error: str | None = None
    crl_pem: bytes = b""
    key_file: ObjectRef | None = None
    crl_file: ObjectRef | None = None

    @property
    def leaf(self) -> x509.Certificate | None:
        """The first certificate."""
        return self.certs[0] if self.certs else None

    @property
    def key_ref(self) -> ObjectRef:
        """Where a leaf's private key comes from: the key beside its ``cert`` (``tls.crt``), or its file."""
        return self.key_file or self.ref.at("data.key" if self.ref.field == "data.cert" else "data.tls.key")

    @property
    def crl_ref(self) -> ObjectRef:
        """Where a CA bundle's CRLs come from: the key beside its ``cacert`` (``ca.crt``), or the ``caCrl`` file."""
        return self.crl_file or self.ref.at("data.ca.crl" if self.ref.field == "data.ca.crt" else "data.crl")


@lru_cache(maxsize=256)
def parse_pem(pem: bytes) -> tuple[tuple[x509.Certificate, ...], str | None]:
    """The certificates of a PEM text, or the reason it is unreadable (cached by content)."""
    try:
        return tuple(parse_certificates(pem)), None
    except PkiError as e:
        return (), str(e).removeprefix("certificate bundle: ")


def _secret_ref(mesh: MeshInput, namespace: str, sds: str, want_ca: bool) -> ObjectRef:
    base = (parse_sds_name(sds) or (sds, False))[0]
    if want_ca:
        for name in (base + SDS_CA_SUFFIX, base):
            s = mesh.config.secret(namespace, name)
            if s is not None:
                values = secret_values(s)
                return mesh.ref("Secret", namespace, name, "data.cacert" if values.get("cacert") else "data.ca.crt")
    s = mesh.config.secret(namespace, base)
    field_ = "data.cert"
    if s is not None and not (secret_values(s).get("cert") and secret_values(s).get("key")):
        field_ = "data.tls.crt"
    return mesh.ref("Secret", namespace, base, field_)


def served_leaf(mesh: MeshInput, view: ProxyView, sds: str) -> Served | None:
    """The certificate chain and key served to ``view``'s proxy under ``sds``, or ``None`` if not served."""
    key = ("leaf", sds)
    if key not in view.memo:
        view.memo[key] = _served_leaf(mesh, view, sds)
    served: Served | None = view.memo[key]
    return served


def _served_leaf(mesh: MeshInput, view: ProxyView, sds: str) -> Served | None:
    res = view.secret(sds)
    paths = parse_file_sds_name(sds)
    if res is None and paths is not None and len(paths) == 2:
        return _file_leaf(mesh, sds, paths[0], paths[1])
    if res is None or "tls_certificate" not in res:
        return None
    tc = res["tls_certificate"]
    pem, key = inline(tc.get("certificate_chain")), inline(tc.get("private_key"))
    certs, error = parse_pem(pem)
    return Served(sds, _secret_ref(mesh, view.proxy.namespace, sds, False), pem, key, certs, error)


def served_trust(mesh: MeshInput, view: ProxyView, sds: str) -> Served | None:
    """The CA bundle served to ``view``'s proxy under ``sds``; ``None`` if not served or the OS bundle."""
    key = ("trust", sds)
    if key not in view.memo:
        view.memo[key] = _served_trust(mesh, view, sds)
    served: Served | None = view.memo[key]
    return served


def _served_trust(mesh: MeshInput, view: ProxyView, sds: str) -> Served | None:
    if sds == SYSTEM_ROOTS:
        return None
    res = view.secret(sds)
    paths = parse_file_sds_name(sds)
    if res is None and paths is not None and len(paths) == 1:
        return _file_trust(mesh, view, sds, paths[0])
    if res is None or "validation_context" not in res:
        return None
    pem = inline(res["validation_context"].get("trusted_ca"))
    crl = inline(res["validation_context"].get("crl"))
    certs, error = parse_pem(pem)
    return Served(sds, _secret_ref(mesh, view.proxy.namespace, sds, True), pem, None, certs, error, crl)


def _file_leaf(mesh: MeshInput, sds: str, cert_path: str, key_path: str) -> Served | None:
    """The certificate and key files given for ``file-cert:<cert>~<key>``; ``None`` without the certificate's (MB210
    names what was not given)."""
    cert, key = mesh.files.get(cert_path), mesh.files.get(key_path)
    if cert is None:
        return None
    certs, error = parse_pem(cert.data)
    key_pem = key.data if key is not None else None
    key_file = mesh.file_ref(key_path, "privateKey") if key is not None else None
    return Served(sds, mesh.file_ref(cert_path), cert.data, key_pem, certs, error, key_file=key_file)


def _file_trust(mesh: MeshInput, view: ProxyView, sds: str, ca_path: str) -> Served | None:
    """The CA file given for ``file-root:<ca>``, with the CRL file the validation context reads beside it if it was
    given too; ``None`` without the CA's (MB210 names what was not given)."""
    ca = mesh.files.get(ca_path)
    if ca is None:
        return None
    crl_path = _crl_file(view, sds)
    crl = mesh.files.get(crl_path) if crl_path else None
    crl_pem = crl.data if crl is not None else b""
    crl_file = mesh.file_ref(crl.path, "caCrl") if crl is not None else None
    certs, error = parse_pem(ca.data)
    ref = mesh.file_ref(ca_path, "caCertificates")
    return Served(sds, ref, ca.data, None, certs, error, crl_pem, crl_file=crl_file)


@lru_cache(maxsize=256)
def crl_error(pem: bytes) -> str | None:
    """Why a CRL bundle cannot be read, or ``None`` (cached by content)."""
    try:
        parse_crls(pem)
    except PkiError as e:
        return str(e).removeprefix("CRL bundle: ")
    return None


def _contexts(view: ProxyView) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, ``CommonTlsContext``) of each TLS context of the proxy: its listeners' (server), its clusters'
    (client)."""
    for chain in view.chains:
        if chain.tls is not None:
            yield "server", chain.tls["common_tls_context"]
    for name in view.clusters:
        tls = view.upstream_tls(name)
        if tls is not None:
            yield "client", tls["common_tls_context"]


def _crl_file(view: ProxyView, sds: str) -> str | None:
    """The CRL file (``caCrl``) of the first validation context that trusts the SDS bundle ``sds``, or ``None``."""
    for _, common in _contexts(view):
        combined = common.get("combined_validation_context") or {}
        if (combined.get("validation_context_sds_secret_config") or {}).get("name") == sds:
            crl = (combined.get("default_validation_context") or {}).get("crl") or {}
            if "filename" in crl:
                return str(crl["filename"])
    return None


def _uses(view: ProxyView) -> Iterator[tuple[str, str, str | None]]:
    """(role, certificate SDS name or '', validation SDS name) for each TLS context of the proxy."""
    for role, common in _contexts(view):
        certs, ca = sds_names(common)
        for c in certs or [""]:
            yield role, c, ca


def check_certificates(inp: LintInput) -> Iterator[Finding]:
    """MB401–MB409: each served certificate and each trusted CA, once per Secret."""
    for mesh in inp.meshes:
        leaves: dict[tuple[str, str, str, str], tuple[Served, set[str], list[str]]] = {}
        bundles: dict[tuple[str, str, str, str], tuple[Served, list[str]]] = {}
        for spec in mesh.proxies:
            view = mesh.view(spec.proxy)
            for role, cert_sds, ca_sds in dict.fromkeys(_uses(view)):
                if cert_sds:
                    leaf = served_leaf(mesh, view, cert_sds)
                    if leaf is not None:
                        entry = leaves.setdefault(_where(leaf), (leaf, set(), []))
                        entry[1].add(role)
                        if spec.name not in entry[2]:
                            entry[2].append(spec.name)
                if ca_sds:
                    trust = served_trust(mesh, view, ca_sds)
                    if trust is not None:
                        b = bundles.setdefault(_where(trust), (trust, []))
                        if spec.name not in b[1]:
                            b[1].append(spec.name)
        for leaf, roles, users in leaves.values():
            yield from _check_leaf(inp, leaf, roles, users)
        for trust, users in bundles.values():
            yield from _check_bundle(inp, trust, users)


def _where(s: Served) -> tuple[str, str, str, str]:
    """What a served certificate is checked once per: its Secret, or the field that names its file."""
    return s.ref.kind, s.ref.namespace, s.ref.name, s.ref.field


def _check_leaf(inp: LintInput, s: Served, roles: set[str], users: list[str]) -> Iterator[Finding]:
    what = f"the {'/'.join(sorted(roles))} certificate of {', '.join(users)}"
    try:
        yield from list(_leaf_findings(inp, s, roles, what))
    except ValueError as e:  # cryptography refuses malformed extensions lazily
        yield finding("MB401", [s.ref], f"{what} is unreadable: {e}", "reissue it; its extensions cannot be parsed")


def _leaf_findings(inp: LintInput, s: Served, roles: set[str], what: str) -> Iterator[Finding]:
    if s.error is not None or s.leaf is None:
        yield finding(
            "MB401",
            [s.ref],
            f"{what} is unreadable: {s.error}",
            "put the PEM certificate (-----BEGIN CERTIFICATE-----) there",
        )
        return
    cert = s.leaf
    bundle = CertBundle(s.pem, s.key_pem)
    subject = cert.subject.rfc4514_string() or "(empty subject)"
    key_ref = s.key_ref
    if s.key_pem:
        try:
            mismatch = check_key_pair(
                subject,
                cert,
                s.key_pem,
                "store the certificate with its own key (reissue both together: 'meshbridge certs issue')",
            )
        except PkiError as e:
            yield finding(
                "MB401", [key_ref], f"the key of {what} is unreadable: {e}", "put the unencrypted PEM private key there"
            )
        else:
            for f in mismatch:
                yield finding(
                    "MB402",
                    [key_ref, s.ref],
                    f"the private key next to {what} ({subject}) belongs to another certificate",
                    f.fix,
                )
    for f in check_validity(subject, bundle, inp.now, inp.horizon_days):
        if f.severity == "info":  # a validity shorter than the horizon: a new certificate would be no better
            continue
        code = "MB403" if f.severity == "error" else "MB404"
        yield finding(code, [s.ref], f"{what} ({subject}) {f.problem}", f.fix)
    # the rules of 'certs check' and 'certs import' (meshbridge.pki.checks), under lint's codes; the SANs a
    # peer pins are checked across meshes (MB310), where the pins are known
    rules = [f for role in sorted(roles) if role in _ROLES for f in check_eku(subject, cert, _ROLES[role])]
    rules += check_key_usage(subject, cert) + check_eku_breadth(subject, cert) + check_sans(subject, cert)
    for f in rules:
        yield finding(_CODE_OF_RULE[f.rule], [s.ref], f"{what} ({subject}): {f.problem}", f.fix)
    if cert.issuer == cert.subject and signed_by(cert, cert):
        ca = " and says CA:TRUE" if bundle.is_ca else ""
        yield finding(
            "MB408",
            [s.ref],
            f"{what} ({subject}) is self-signed{ca}: each peer trusts this very certificate, so rotating it means "
            "changing the peer's CA at the same time",
            "issue leaves from a CA per mesh and trust the CA ('meshbridge certs issue')",
        )
    weak = _weak(cert)
    if weak:
        yield finding(
            "MB409",
            [s.ref],
            f"{what} ({subject}): {'; '.join(weak)}",
            "reissue it with ECDSA P-256 (or RSA-2048), SHA-256 and at most 366 days",
        )


def _weak(cert: x509.Certificate) -> list[str]:
    out = []
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        out.append(f"RSA-{key.key_size} key (under 2048 bits)")
    algo = cert.signature_hash_algorithm
    if isinstance(algo, hashes.SHA1 | hashes.MD5):
        out.append(f"{algo.name.upper()} signature")
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    if days > MAX_LIFETIME_DAYS:
        out.append(f"lifetime {days} days (over {MAX_LIFETIME_DAYS})")
    return out


def _check_bundle(inp: LintInput, s: Served, users: list[str]) -> Iterator[Finding]:
    what = f"the CA bundle of {', '.join(users)}"
    crl_problem = crl_error(s.crl_pem) if s.crl_pem else None
    if crl_problem is not None:
        yield finding(
            "MB401",
            [s.crl_ref],
            f"the CRLs beside {what} are unreadable: {crl_problem}",
            "put the PEM CRLs (-----BEGIN X509 CRL-----) of the trusted CAs there, one per CA "
            "('meshbridge render' writes them from the store)",
        )
    if s.error is not None:
        yield finding(
            "MB401", [s.ref], f"{what} is unreadable: {s.error}", "put the peer's PEM CA certificate(s) there"
        )
        return
    for cert in s.certs:
        subject = cert.subject.rfc4514_string() or "(empty subject)"
        for severity, problem, fix in _validity(inp, cert):
            code = "MB403" if severity == "error" else "MB404"
            yield finding(code, [s.ref], f"{what}: trusted CA {subject} {problem}", fix)


def _validity(inp: LintInput, cert: x509.Certificate) -> list[tuple[str, str, str]]:
    """check_validity for one certificate of a bundle (``CertBundle`` reads only a bundle's first)."""
    pem = cert.public_bytes(serialization.Encoding.PEM)
    found = check_validity("", CertBundle(pem), inp.now, inp.horizon_days)
    return [(f.severity, f.problem, f.fix) for f in found if f.severity != "info"]  # info: as in _check_leaf


CHECKS = (check_certificates,)
