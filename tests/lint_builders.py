"""Builders for lint tests: the rendered seed (with its certificates) as editable documents, one change at a
time, and odd certificates (CN-only, self-signed, dual EKU, ...) made with ``cryptography``."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshbridge.istio.parse import load_documents
from meshbridge.lint import LintReport, SecretFile, from_bridge, from_manifests, lint
from meshbridge.pki import CertBundle, PkiStore, issue_ca, issue_leaf
from meshbridge.pki.credentials import MeshCredentials
from meshbridge.render import render_bridge
from meshbridge.spec import Bridge
from tests.builders import ARTICLE, bridge_from, scratch_dir, seed_bridge, seed_dict

Docs = dict[str, list[dict[str, Any]]]
NOW = dt.datetime(2026, 1, 15, tzinfo=dt.UTC)
ARTICLE_ENV = {"HOST_GW_CLUSTER2": "ingress.eks.example.com"}


@functools.cache
def _pki(bridge_yaml: str) -> tuple[dict[str, MeshCredentials], dict[str, CertBundle]]:
    bridge = bridge_from(yaml.safe_load(bridge_yaml))
    with scratch_dir("meshbridge-lint-pki-") as tmp:  # the store (CA keys) is gone once it was read
        store = PkiStore(tmp)
        store.issue(bridge, now=NOW - dt.timedelta(days=1))
        cas = {m: store.load(m, "ca") for m in bridge.spec.meshes}
        return store.credentials(bridge), {m: ca for m, ca in cas.items() if ca is not None}


def _key(bridge: Bridge) -> str:
    return yaml.safe_dump(bridge.model_dump(by_alias=True, mode="json"))


def credentials(bridge: Bridge) -> dict[str, MeshCredentials]:
    """Issued certificates for ``bridge`` (cached per spec; valid at :data:`NOW`)."""
    return _pki(_key(bridge))[0]


def seed_docs(bridge: Bridge | None = None, *, secrets: bool = True) -> Docs:
    """What ``bridge`` (default: the seed) renders, per mesh, as plain dicts to edit."""
    b = bridge or seed_bridge()
    sets = render_bridge(b, credentials(b) if secrets else None)
    return {m: [copy.deepcopy(dict(d)) for d in sets[m]] for m in b.spec.meshes}


def doc(docs: Docs, mesh: str, kind: str, name: str) -> dict[str, Any]:
    """The document ``kind``/``name`` of ``mesh`` (to change in place)."""
    for d in docs[mesh]:
        if d["kind"] == kind and d["metadata"]["name"] == name:
            return d
    raise KeyError(f"{mesh}: {kind} {name}")


def drop(docs: Docs, mesh: str, kind: str, name: str) -> None:
    """Remove a document."""
    docs[mesh].remove(doc(docs, mesh, kind, name))


def secret_data(docs: Docs, mesh: str, name: str = "mtls-credential") -> dict[str, bytes]:
    """A Secret's decoded data."""
    return {k: base64.b64decode(v) for k, v in doc(docs, mesh, "Secret", name)["data"].items()}


def set_secret_data(docs: Docs, mesh: str, data: dict[str, bytes], name: str = "mtls-credential") -> None:
    """Replace a Secret's data."""
    doc(docs, mesh, "Secret", name)["data"] = {k: base64.b64encode(v).decode() for k, v in data.items()}


def lint_docs(
    docs: Docs,
    bridge: Bridge | None = None,
    *,
    world: bool = True,
    secret_files: Sequence[SecretFile] = (),
    now: dt.datetime = NOW,
) -> LintReport:
    """Lint ``docs`` in the world of ``bridge`` (default: the seed), or in the assumed world (``world=False``)."""
    pairs = {m: [(f"{m}.yaml#{i}", d) for i, d in enumerate(ds)] for m, ds in docs.items()}
    spec = (bridge or seed_bridge()) if world else None
    return lint(from_manifests(pairs, bridge=spec, secret_files=secret_files, now=now))


def lint_spec(change: Callable[[dict[str, Any]], None] | None = None, *, issued: bool = True) -> LintReport:
    """Lint what the seed spec (after ``change`` to its dict) renders."""
    data = seed_dict()
    if change is not None:
        change(data)
    b = bridge_from(data)
    return lint(from_bridge(b, credentials(b) if issued else None, now=NOW))


def article_docs() -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """The article's own manifests (steps 4 and 5), ``${HOST_GW_CLUSTER2}`` expanded."""
    return {m: load_documents([ARTICLE / f"{m}.yaml"], ARTICLE_ENV) for m in ("eks", "gke")}


# -- certificates ---------------------------------------------------------------------------------------


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any) -> bytes:
    return bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def openssl_self_signed(state: str, *, days: int = 365, now: dt.datetime = NOW) -> tuple[bytes, bytes]:
    """What the article's ``openssl req -x509 -nodes -days 365 -newkey rsa:2048 -subj .../CN=*`` makes: a
    self-signed RSA-2048 certificate, CA:TRUE (openssl's v3_ca defaults), no EKU, no SAN, CN ``*``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "NT"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Solo.io"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Solo.io"),
            x509.NameAttribute(NameOID.COMMON_NAME, "*"),
        ]
    )
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return pem(cert), key_pem(key)


def odd_leaf(
    ca: CertBundle,
    *,
    dns: Sequence[str] = (),
    uris: Sequence[str] = (),
    ekus: Sequence[str] = ("clientAuth",),
    days: int = 90,
    not_before: dt.datetime | None = None,
    rsa_bits: int | None = None,
) -> tuple[bytes, bytes]:
    """A leaf from ``ca`` with exactly the SANs and EKUs given (none allowed), for profiles meshbridge would
    never issue."""
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        if rsa_bits
        else ec.generate_private_key(ec.SECP256R1())
    )
    start = not_before or (NOW - dt.timedelta(days=1))
    ca_key = ca.private_key()
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    oids = {"serverAuth": ExtendedKeyUsageOID.SERVER_AUTH, "clientAuth": ExtendedKeyUsageOID.CLIENT_AUTH}
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage([oids[e] for e in ekus]), critical=False)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [x509.UniformResourceIdentifier(u) for u in uris]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return pem(cert), key_pem(key)


def seed_ca(mesh: str, bridge: Bridge | None = None) -> CertBundle:
    """The CA of ``mesh`` that signed :func:`credentials` (with its key)."""
    return _pki(_key(bridge or seed_bridge()))[1][mesh]


def foreign_leaf(role: str, *, dns: Sequence[str] = (), uris: Sequence[str] = ()) -> tuple[bytes, bytes]:
    """A proper leaf from a CA no mesh trusts."""
    ca = issue_ca("someone else's CA", now=NOW - dt.timedelta(days=2))
    leaf = issue_leaf(ca, role, common_name="x", dns_names=dns, uris=uris, now=NOW - dt.timedelta(days=1))  # type: ignore[arg-type]
    assert leaf.key_pem is not None
    return leaf.cert_pem, leaf.key_pem
