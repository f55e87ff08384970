"""Certificates of other PKIs, made with ``cryptography``: every knob meshbridge's own issuer never turns
(extensions missing, critical or not, path lengths, name constraints, EKUs on CAs, serials that are not
positive), and :data:`CHAINS`, the chains whose fate in Envoy's handshake the rule set must predict.

Each row of :data:`CHAINS` says whether Envoy 1.40 (BoringSSL) accepts the chain; the unit tests hold
:func:`meshbridge.pki.checks.check_leaf` to it, and ``tests/integration/test_pki_envoy.py`` replays every row
against the real Envoy.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from meshbridge.pki import CertBundle, PkiStore
from meshbridge.pki.x509 import utcnow

HOST = "lambda.external"
SPIFFE = "spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
SERVER_AUTH, CLIENT_AUTH = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
ANY_EKU = ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE
UNKNOWN_EXTENSION = x509.UnrecognizedExtension(ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00")
"""An extension no verifier knows (a private OID, NULL value)."""

_USAGES = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def usage(*on: str) -> x509.KeyUsage:
    """A keyUsage with the named bits (``digital_signature``, ``key_cert_sign``, ...) set."""
    return x509.KeyUsage(**{name: name in on for name in _USAGES})


CA_USAGE = usage("key_cert_sign", "crl_sign")
LEAF_USAGE = usage("digital_signature")


@dataclass(frozen=True)
class Made:
    """A certificate and its key, as :func:`make` returns them."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def bundle(self, *intermediates: Made, key: bool = True) -> CertBundle:
        """This certificate (with its key) followed by ``intermediates``, as a leaf's file holds them."""
        return CertBundle(self.pem + b"".join(i.pem for i in intermediates), self.key_pem if key else None)


_UNSET: Any = object()


def make(
    cn: str | None,
    issuer: Made | None = None,
    *,
    ca: bool | None = True,
    path_length: int | None = None,
    bc_critical: bool = True,
    key_usage: x509.KeyUsage | None = _UNSET,
    ekus: Sequence[ObjectIdentifier] | None = None,
    sans: Sequence[x509.GeneralName] = (),
    san_critical: bool = False,
    ski: bool = True,
    aki: bool = True,
    extra: Sequence[tuple[x509.ExtensionType, bool]] = (),
    not_before: dt.datetime | None = None,
    days: int = 90,
) -> Made:
    """A certificate issued by ``issuer`` (self-signed without one).

    Args:
        cn: the subject's CN; ``None`` for an empty subject.
        issuer: the issuing certificate and key.
        ca: basicConstraints CA:TRUE/FALSE; ``None`` leaves the extension out.
        path_length: basicConstraints pathLenConstraint (CA only).
        bc_critical: whether basicConstraints is critical.
        key_usage: the keyUsage (critical); default: keyCertSign, cRLSign for a CA, digitalSignature for a
            leaf; ``None`` leaves it out.
        ekus: the extendedKeyUsage, or ``None`` for none.
        sans: subjectAltName entries (none: no extension).
        san_critical: whether the subjectAltName is critical.
        ski: add a subjectKeyIdentifier.
        aki: add an authorityKeyIdentifier (the issuer's key).
        extra: more extensions, with their criticality.
        not_before: start of validity (default: five minutes ago).
        days: lifetime.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    signer = issuer.key if issuer is not None else key
    start = not_before or utcnow() - dt.timedelta(minutes=5)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
    )
    if ca is not None:
        bc = x509.BasicConstraints(ca=ca, path_length=path_length if ca else None)
        builder = builder.add_extension(bc, critical=bc_critical)
    if key_usage is _UNSET:
        key_usage = CA_USAGE if ca else LEAF_USAGE
    if key_usage is not None:
        builder = builder.add_extension(key_usage, critical=True)
    if ekus is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=san_critical)
    if ski:
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False
        )
    for ext, critical in extra:
        builder = builder.add_extension(ext, critical=critical)
    return Made(builder.sign(signer, hashes.SHA256()), key)


def server(issuer: Made, **kw: Any) -> Made:
    """A server leaf for the seed's export: serverAuth, DNS SAN, CN the host (each overridable)."""
    kw.setdefault("ca", False)
    kw.setdefault("ekus", [SERVER_AUTH])
    kw.setdefault("sans", [x509.DNSName(HOST)])
    return make(kw.pop("cn", HOST), issuer, **kw)


def client(issuer: Made, **kw: Any) -> Made:
    """A client leaf for the seed's importer: clientAuth, its SPIFFE URI SAN (each overridable)."""
    kw.setdefault("ca", False)
    kw.setdefault("ekus", [CLIENT_AUTH])
    kw.setdefault("sans", [x509.UniformResourceIdentifier(SPIFFE)])
    return make(kw.pop("cn", "istio-egressgateway"), issuer, **kw)


def with_serial(made: Made, serial: int, issuer: Made | None = None) -> Made:
    """``made`` with another serial number, any integer (``CertificateBuilder`` refuses one that is not
    positive), re-signed by ``issuer`` (default: itself): its to-be-signed DER with the serial replaced, signed
    with ``cryptography``."""
    der = made.cert.public_bytes(serialization.Encoding.DER)
    _, body, _ = _tlv(der, 0)
    _, tbs_body, tbs_end = _tlv(der, body)
    pos = tbs_body
    if der[pos] == 0xA0:  # [0] EXPLICIT version
        pos = _tlv(der, pos)[2]
    serial_end = _tlv(der, pos)[2]
    encoded = serial.to_bytes(max(1, (serial.bit_length() + 8) // 8), "big", signed=True)
    tbs = _der(0x30, der[tbs_body:pos] + _der(0x02, encoded) + der[serial_end:tbs_end])
    algorithm = der[tbs_end : _tlv(der, tbs_end)[2]]
    signer = (issuer or made).key
    signature = signer.sign(tbs, ec.ECDSA(hashes.SHA256()))
    out = _der(0x30, tbs + algorithm + _der(0x03, b"\x00" + signature))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns about the serial: what the tests then check
        return Made(x509.load_der_x509_certificate(out), made.key)


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of the value, end of the value) of the DER element at ``pos``."""
    length, start = der[pos + 1], pos + 2
    if length & 0x80:
        count = length & 0x7F
        length, start = int.from_bytes(der[start : start + count], "big"), start + count
    return der[pos], start, start + length


def _der(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = (
        bytes([n])
        if n < 0x80
        else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    )
    return bytes([tag]) + length + value


# -- the chains Envoy accepts or refuses ---------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    """A leaf (with its intermediates) presented in ``role``, and the root its peer trusts.

    Attributes:
        case: what is special about it.
        role: ``client`` (the exporter's gateway verifies it) or ``server`` (the importer's egress does).
        envoy: whether Envoy 1.40 completes the handshake with it.
        rule: the rule of :data:`meshbridge.pki.checks.RULES` that refuses it, or warns about it when Envoy
            accepts it; empty for a chain with nothing to say.
        build: returns what the peer trusts (the root, or a :class:`Trusted` bundle) and the leaf's file (leaf,
            key, intermediates).
    """

    case: str
    role: Literal["client", "server"]
    envoy: bool
    rule: str
    build: Callable[[], tuple[Made | Trusted, CertBundle]]


@dataclass(frozen=True)
class Trusted:
    """A CA bundle a peer trusts that is not one root: ``pem`` holds its certificates."""

    pem: bytes


def _leaf(role: str, issuer: Made, **kw: Any) -> Made:
    return (client if role == "client" else server)(issuer, **kw)


def _direct(role: str, root_kw: dict[str, Any] | None = None, **leaf_kw: Any) -> Callable[[], tuple[Made, CertBundle]]:
    def build() -> tuple[Made, CertBundle]:
        root = make("corp root", **(root_kw or {}))
        return root, _leaf(role, root, **leaf_kw).bundle()

    return build


def _under(
    role: str, *levels: dict[str, Any], root_kw: dict[str, Any] | None = None, **leaf_kw: Any
) -> Callable[[], tuple[Made, CertBundle]]:
    """A root, then one intermediate per ``levels`` (each its :func:`make` options), then the leaf."""

    def build() -> tuple[Made, CertBundle]:
        root = make("corp root", **(root_kw or {}))
        chain: list[Made] = []
        issuer = root
        for i, kw in enumerate(levels):
            issuer = make(f"corp CA {i + 1}", issuer, **kw)
            chain.insert(0, issuer)
        return root, _leaf(role, issuer, **leaf_kw).bundle(*chain)

    return build


def _trusting(
    role: str, *, with_root: bool = False, sent: bool = False, below: bool = False, root_sent: bool = False, **kw: Any
) -> Callable[[], tuple[Made | Trusted, CertBundle]]:
    """A leaf from an intermediate (``kw``: its :func:`make` options), the peer trusting the intermediate (and its
    root, ``with_root``); the leaf's file holds the intermediate too when ``sent``, and an intermediate below it
    that issued the leaf when ``below``, and the root last when ``root_sent``."""

    def build() -> tuple[Made | Trusted, CertBundle]:
        root = make("corp root")
        intermediate = make("corp CA 1", root, **kw)
        issuer = make("corp CA 2", intermediate) if below else intermediate
        sends = ([issuer] if below else []) + ([intermediate] if sent else []) + ([root] if root_sent else [])
        leaf = _leaf(role, issuer).bundle(*sends)
        return Trusted(intermediate.pem + (root.pem if with_root else b"")), leaf

    return build


def _serial(role: str, serial: int) -> Callable[[], tuple[Made, CertBundle]]:
    def build() -> tuple[Made, CertBundle]:
        root = make("corp root")
        return root, with_serial(_leaf(role, root), serial, root).bundle()

    return build


_NC_OTHER = x509.NameConstraints(permitted_subtrees=[x509.DNSName("other.example")], excluded_subtrees=None)
_NC_HOST = x509.NameConstraints(permitted_subtrees=[x509.DNSName("external")], excluded_subtrees=None)

CHAINS = [
    Chain("a leaf straight from the root", "client", True, "", _direct("client")),
    Chain("a leaf straight from the root", "server", True, "", _direct("server")),
    Chain("two intermediates", "client", True, "", _under("client", {}, {})),
    # the peer's CA bundle: Envoy sets X509_V_FLAG_PARTIAL_CHAIN, so an intermediate of it is an anchor whose EKU,
    # path length and critical extensions BoringSSL does not look at, but whose validity and CA:TRUE it does
    Chain("a trust bundle of the intermediate without its root", "client", True, "", _trusting("client")),
    Chain("a trust bundle of the intermediate and its root", "client", True, "", _trusting("client", with_root=True)),
    Chain("a trusted intermediate, also sent", "client", True, "", _trusting("client", sent=True)),
    Chain(
        "a trusted intermediate, sent with its untrusted root",
        "client",
        True,
        "",
        _trusting("client", sent=True, root_sent=True),
    ),
    Chain(
        "a trusted intermediate limited to serverAuth, for a client",
        "client",
        True,
        "",
        _trusting("client", ekus=[SERVER_AUTH]),
    ),
    Chain(
        "a trusted intermediate limited to serverAuth, sent, for a client",
        "client",
        True,
        "",
        _trusting("client", sent=True, ekus=[SERVER_AUTH]),
    ),
    Chain(
        "a trusted intermediate limited to clientAuth, for a server",
        "server",
        True,
        "",
        _trusting("server", ekus=[CLIENT_AUTH]),
    ),
    Chain(
        "a trusted pathLen:0 intermediate above a sent one",
        "client",
        True,
        "",
        _trusting("client", below=True, path_length=0),
    ),
    Chain(
        "a trusted intermediate with an unknown critical extension",
        "client",
        True,
        "",
        _trusting("client", extra=[(UNKNOWN_EXTENSION, True)]),
    ),
    Chain(
        "a trusted expired intermediate",
        "client",
        False,
        "chain",
        _trusting("client", not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC), days=30),
    ),
    Chain("a trusted intermediate that says CA:FALSE", "client", False, "chain", _trusting("client", ca=False)),
    Chain(
        "a trusted intermediate whose keyUsage lacks keyCertSign",
        "client",
        False,
        "chain",
        _trusting("client", key_usage=usage("digital_signature")),
    ),
    # subjectAltName criticality (RFC 5280 4.2.1.6)
    Chain(
        "critical subjectAltName, non-empty subject", "client", True, "rfc5280", _direct("client", san_critical=True)
    ),
    Chain("critical subjectAltName, empty subject", "client", True, "", _direct("client", cn=None, san_critical=True)),
    Chain("non-critical subjectAltName, empty subject", "client", True, "rfc5280", _direct("client", cn=None)),
    # keyUsage and basicConstraints of the CAs
    Chain("a root without keyUsage", "client", True, "", _direct("client", {"key_usage": None})),
    Chain("an intermediate without keyUsage", "client", True, "rfc5280", _under("client", {"key_usage": None})),
    Chain(
        "an intermediate whose basicConstraints is not critical",
        "client",
        True,
        "rfc5280",
        _under("client", {"bc_critical": False}),
    ),
    Chain(
        "a root whose keyUsage lacks keyCertSign",
        "client",
        False,
        "chain",
        _direct("client", {"key_usage": usage("crl_sign", "digital_signature")}),
    ),
    Chain(
        "an intermediate whose keyUsage lacks keyCertSign",
        "client",
        False,
        "chain",
        _under("client", {"key_usage": usage("digital_signature")}),
    ),
    Chain("an intermediate without basicConstraints", "client", False, "chain", _under("client", {"ca": None})),
    Chain("an intermediate that says CA:FALSE", "client", False, "chain", _under("client", {"ca": False})),
    # path lengths: a trusted root's is not enforced (BoringSSL checks the certificates the peer sends)
    Chain(
        "a pathLen:0 root above an intermediate", "client", True, "", _under("client", {}, root_kw={"path_length": 0})
    ),
    Chain(
        "a pathLen:1 root above one intermediate", "server", True, "", _under("server", {}, root_kw={"path_length": 1})
    ),
    Chain("a pathLen:0 intermediate issuing the leaf", "client", True, "", _under("client", {"path_length": 0})),
    Chain("a pathLen:0 intermediate above another", "client", False, "chain", _under("client", {"path_length": 0}, {})),
    Chain("a pathLen:1 intermediate above one other", "client", True, "", _under("client", {"path_length": 1}, {})),
    # EKUs: a leaf's, and an intermediate's (BoringSSL checks the purpose of every certificate sent)
    Chain("a leaf without EKU", "client", True, "eku-any-role", _direct("client", ekus=None)),
    Chain(
        "a leaf with serverAuth and clientAuth",
        "client",
        True,
        "eku-any-role",
        _direct("client", ekus=[SERVER_AUTH, CLIENT_AUTH]),
    ),
    Chain("a server leaf used as a client", "client", False, "eku-wrong", _direct("client", ekus=[SERVER_AUTH])),
    Chain("a leaf with anyExtendedKeyUsage alone", "client", False, "eku-wrong", _direct("client", ekus=[ANY_EKU])),
    Chain(
        "an intermediate limited to serverAuth, for a client",
        "client",
        False,
        "chain",
        _under("client", {"ekus": [SERVER_AUTH]}),
    ),
    Chain(
        "an intermediate limited to serverAuth, for a server",
        "server",
        True,
        "",
        _under("server", {"ekus": [SERVER_AUTH]}),
    ),
    Chain("a root limited to serverAuth, for a client", "client", True, "", _direct("client", {"ekus": [SERVER_AUTH]})),
    # a leaf's keyUsage: TLS signs the handshake with the leaf's key
    Chain(
        "a leaf whose keyUsage lacks digitalSignature",
        "client",
        False,
        "key-usage",
        _direct("client", key_usage=usage("key_agreement")),
    ),
    Chain(
        "a server leaf with keyEncipherment alone",
        "server",
        False,
        "key-usage",
        _direct("server", key_usage=usage("key_encipherment")),
    ),
    Chain("a leaf without keyUsage", "client", True, "", _direct("client", key_usage=None)),
    Chain(
        "a leaf that says CA:TRUE",
        "client",
        True,
        "rfc5280",
        _direct("client", ca=True, key_usage=usage("digital_signature")),
    ),
    # critical extensions BoringSSL does not handle
    Chain(
        "a leaf with an unknown critical extension",
        "client",
        False,
        "chain",
        _direct("client", extra=[(UNKNOWN_EXTENSION, True)]),
    ),
    Chain(
        "a leaf with an unknown non-critical extension",
        "client",
        True,
        "",
        _direct("client", extra=[(UNKNOWN_EXTENSION, False)]),
    ),
    Chain(
        "an intermediate with an unknown critical extension",
        "client",
        False,
        "chain",
        _under("client", {"extra": [(UNKNOWN_EXTENSION, True)]}),
    ),
    Chain(
        "a root with an unknown critical extension",
        "client",
        True,
        "",
        _direct("client", {"extra": [(UNKNOWN_EXTENSION, True)]}),
    ),
    Chain(
        "a leaf with a critical subjectKeyIdentifier",
        "client",
        False,
        "chain",
        _direct("client", ski=False, extra=[(x509.SubjectKeyIdentifier(b"\x01\x02\x03\x04"), True)]),
    ),
    # authority key identifiers
    Chain("a leaf without authorityKeyIdentifier", "client", True, "", _direct("client", aki=False)),
    Chain("a root without subjectKeyIdentifier", "client", True, "", _direct("client", {"ski": False}, aki=False)),
    # name constraints, the root's included
    Chain(
        "an intermediate permitting another domain",
        "server",
        False,
        "chain",
        _under("server", {"extra": [(_NC_OTHER, True)]}),
    ),
    Chain(
        "a root permitting another domain", "server", False, "chain", _direct("server", {"extra": [(_NC_OTHER, True)]})
    ),
    Chain(
        "an intermediate permitting the host's domain",
        "server",
        True,
        "",
        _under("server", {"extra": [(_NC_HOST, True)]}),
    ),
    # validity of the CAs
    Chain(
        "an expired intermediate",
        "client",
        False,
        "chain",
        _under("client", {"not_before": utcnow() - dt.timedelta(days=100), "days": 10}),
    ),
    # serial numbers RFC 5280 forbids
    Chain("a leaf with a negative serial", "client", True, "rfc5280", _serial("client", -5)),
    Chain("a leaf with serial 0", "server", True, "rfc5280", _serial("server", 0)),
]
"""Chains and Envoy 1.40's verdict on each: accepted (``envoy``) with at most warnings, or refused by ``rule``."""


# -- the CLI's side --------------------------------------------------------------------------------------------


def said(text: str) -> str:
    """Console output with its line wrapping undone."""
    return " ".join(text.split())


def files(where: Path, name: str, bundle: CertBundle) -> list[str]:
    """``bundle`` written as ``<name>.crt`` (and ``.key``), as ``certs import`` arguments."""
    crt, key = bundle.write_to(where / "byo", name)
    return ["--cert", str(crt)] + (["--key", str(key)] if key is not None else [])


def importing(mesh: str, slot: str, args: list[str], *more: str) -> list[str]:
    return ["certs", "import", "--mesh", mesh, "--slot", slot, *args, *more]


def own_ca(workdir: Path, mesh: str) -> Made:
    """The CA meshbridge issued for ``mesh``, with its key, to sign leaves of other profiles."""
    ca = PkiStore(workdir / ".meshbridge").load(mesh, "ca")
    assert ca is not None
    return Made(ca.cert, ca.private_key())  # type: ignore[arg-type]
