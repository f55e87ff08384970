"""Bring your own certificates (``certs import``): leaves that carry their intermediates, and a CA without its key.

Each case has its negative twin. The test PKI is a root of your own (no path length limit, unlike meshbridge's
CAs), intermediates under it, and leaves from those, all made with ``cryptography`` here; a real TLS handshake
(Python ``ssl`` on loopback) checks that the stored chain is what a peer trusting only the root accepts.
"""

from __future__ import annotations

import base64
import datetime as dt
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshbridge.cli.main import main
from meshbridge.envoy.secrets import sds_resource
from meshbridge.errors import PkiError
from meshbridge.pki import CertBundle, PkiStore, check_leaf, issue_leaf
from meshbridge.pki.checks import order_chain
from meshbridge.pki.x509 import parse_certificates, utcnow
from meshbridge.render import render_bridge
from meshbridge.spec.models import Bridge
from meshbridge.world import mesh_config
from tests.builders import bridge_from, issued_store, seed_bridge, seed_dict
from tests.lint_builders import key_pem, pem
from tests.unit.test_pki import CLIENT_ID, HOST, handshake

# -- a PKI of your own ------------------------------------------------------------------------------------


def authority(
    cn: str,
    issuer: CertBundle | None = None,
    *,
    ca: bool = True,
    key_cert_sign: bool = True,
    path_length: int | None = None,
    not_before: dt.datetime | None = None,
    days: int = 365,
) -> CertBundle:
    """A root (``issuer`` None) or an intermediate of ``issuer``; ``ca=False``/``key_cert_sign=False`` make the
    broken intermediates a careless PKI hands out."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "corp"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    signer = issuer.private_key() if issuer is not None else key
    start = not_before or utcnow() - dt.timedelta(minutes=5)
    usage = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "encipher_only"), False
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.cert.subject if issuer is not None else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not key_cert_sign,
                key_cert_sign=key_cert_sign,
                crl_sign=key_cert_sign,
                decipher_only=False,
                **usage,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return CertBundle(pem(cert), key_pem(key))


def server_leaf(issuer: CertBundle) -> CertBundle:
    """A server leaf for the seed's export (meshbridge's profile), signed by ``issuer`` whatever it is: even a
    non-CA, or a CA that has expired (``issue_leaf`` refuses both)."""
    key = ec.generate_private_key(ec.SECP256R1())
    signer = issuer.private_key()
    no = dict.fromkeys(
        ("content_commitment", "key_encipherment", "data_encipherment", "key_agreement", "key_cert_sign"), False
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - dt.timedelta(minutes=5))
        .not_valid_after(utcnow() + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(digital_signature=True, crl_sign=False, encipher_only=False, decipher_only=False, **no),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), critical=False)
        .sign(signer, hashes.SHA256())
    )
    return CertBundle(pem(cert), key_pem(key))


def with_chain(leaf: CertBundle, *intermediates: CertBundle) -> CertBundle:
    """``leaf``'s file carrying ``intermediates`` after it, in the order given."""
    return CertBundle(leaf.cert_pem + b"".join(i.cert_pem for i in intermediates), leaf.key_pem)


def cert_only(b: CertBundle) -> CertBundle:
    return CertBundle(b.cert_pem)


def subjects(pem_text: bytes) -> list[str]:
    return [c.subject.rfc4514_string() for c in parse_certificates(pem_text)]


@pytest.fixture(scope="module")
def corp() -> dict[str, CertBundle]:
    root = authority("corp root")
    return {"root": root, "issuing": authority("corp issuing CA", root), "other root": authority("other root")}


@pytest.fixture
def store(tmp_path: Path) -> PkiStore:
    """A store where meshbridge issued every certificate of the seed."""
    return issued_store(tmp_path, seed_bridge())


def import_root(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    """The user's root becomes eks's CA, without its key."""
    stored, findings = store.import_(seed_bridge(), "eks", "ca", cert_only(corp["root"]), name="root.pem")
    assert findings == [] and stored.key_pem is None


# -- 1. a leaf that carries its intermediates ---------------------------------------------------------------


def test_a_leaf_with_its_intermediate_under_an_imported_root_is_stored_and_served_leaf_first(
    store: PkiStore, corp: dict[str, CertBundle]
) -> None:
    bridge = seed_bridge()
    import_root(store, corp)
    leaf = server_leaf(corp["issuing"])
    stored, findings = store.import_(bridge, "eks", "server", with_chain(leaf, corp["issuing"]), name="leaf-chain.crt")
    assert findings == []
    served = leaf.cert_pem + corp["issuing"].cert_pem
    assert stored.cert_pem == served and store.path("eks", "server").read_bytes() == served
    assert store.check(bridge) == []  # and 'certs issue' keeps it: it is valid against its CA
    assert {a.slot: a.action for a in store.issue(bridge) if a.mesh == "eks"}["server"] == "kept"
    sets = render_bridge(bridge, store.credentials(bridge))
    secret = next(d for d in sets["eks"] if d["kind"] == "Secret")
    assert base64.b64decode(secret["data"]["cert"]) == served  # istiod's generic layout (cert/key/cacert)
    cfg = mesh_config(bridge, "eks", [("rendered", d) for d in sets["eks"]])
    res = sds_resource(cfg, "istio-ingress", "kubernetes://mtls-credential", None)  # what istiod serves over SDS
    assert res is not None
    assert base64.b64decode(res["tls_certificate"]["certificate_chain"]["inline_bytes"]) == served
    # negative twin: the same leaf without its intermediate is refused, and nothing is written
    _, refused = store.import_(bridge, "eks", "server", leaf, name="leaf.crt")
    assert [f.severity for f in refused] == ["error"] and "does not verify against the CA" in refused[0].problem
    assert store.path("eks", "server").read_bytes() == served


def test_intermediates_in_any_order_are_stored_in_chain_order(corp: dict[str, CertBundle]) -> None:
    second = authority("corp second-level CA", corp["issuing"])
    leaf = server_leaf(second)
    shuffled = CertBundle(corp["issuing"].cert_pem + leaf.cert_pem + second.cert_pem, leaf.key_pem)
    ordered = order_chain(shuffled)
    assert ordered.cert_pem == leaf.cert_pem + second.cert_pem + corp["issuing"].cert_pem
    assert ordered.key_pem == leaf.key_pem
    trust = corp["root"].cert_pem
    assert check_leaf("ordered", ordered, "server", trust, dns_names=[HOST]) == []
    # leaf first, intermediates unordered: accepted as is (the verifier's pool has no order)
    assert check_leaf("loose", with_chain(leaf, corp["issuing"], second), "server", trust, dns_names=[HOST]) == []
    # negative twin: stored with an intermediate first, the gateway would present the intermediate
    problems = check_leaf("shuffled", shuffled, "server", trust, dns_names=[HOST])
    assert [f.problem for f in problems if f.severity == "error"] == [
        f"its first certificate (CN=corp issuing CA,O=corp) is not the leaf ({leaf.subject}): a gateway sends the "
        "first one as its own"
    ]
    # and the key tells the leaf even when structure alone cannot (two unrelated certificates)
    assert order_chain(CertBundle(corp["other root"].cert_pem + leaf.cert_pem, leaf.key_pem)).cert == leaf.cert


def test_the_stored_chain_passes_a_real_handshake_against_the_root_only(
    tmp_path: Path, store: PkiStore, corp: dict[str, CertBundle]
) -> None:
    bridge = seed_bridge()
    import_root(store, corp)
    leaf = server_leaf(corp["issuing"])
    reversed_file = CertBundle(corp["issuing"].cert_pem + leaf.cert_pem, leaf.key_pem)
    assert store.import_(bridge, "eks", "server", reversed_file, name="reversed.crt")[1] == []
    served = store.load("eks", "server")  # read back from the written server.crt / server.key
    gke_ca = store.load("gke", "ca")
    assert served is not None and gke_ca is not None
    cli = issue_leaf(gke_ca, "client", common_name="egress", uris=[CLIENT_ID])
    root = cert_only(corp["root"])
    assert handshake(tmp_path / "chain", served, gke_ca, cli, root) == "ok"
    # negative twin: the bare leaf, which the bug stored, fails the client's verification against the root
    result = handshake(tmp_path / "bare", leaf, gke_ca, cli, root)
    assert result.startswith("client:") and "CERTIFICATE_VERIFY_FAILED" in result


def test_a_leaf_from_an_intermediate_missing_from_its_file_is_refused(corp: dict[str, CertBundle]) -> None:
    trust = corp["root"].cert_pem
    leaf = server_leaf(corp["issuing"])
    assert check_leaf("good", with_chain(leaf, corp["issuing"]), "server", trust, dns_names=[HOST]) == []
    elsewhere = authority("other issuing CA", corp["other root"])
    problems = check_leaf("wrong", with_chain(leaf, elsewhere), "server", trust, dns_names=[HOST])
    assert [f.severity for f in problems] == ["warning", "error"]
    assert "CN=other issuing CA,O=corp" in problems[0].problem and "not on the leaf's chain" in problems[0].problem
    assert "does not verify against the CA" in problems[1].problem
    # a complete chain to a root the peer does not trust is refused as well
    foreign = server_leaf(elsewhere)
    assert check_leaf("foreign", with_chain(foreign, elsewhere), "server", trust, dns_names=[HOST])


def _sound(root: CertBundle) -> list[CertBundle]:
    middle = authority("corp policy CA", root)
    return [authority("corp issuing CA 2", middle), middle]


def _not_a_ca(root: CertBundle) -> list[CertBundle]:
    return [authority("not a CA", root, ca=False)]


def _no_key_cert_sign(root: CertBundle) -> list[CertBundle]:
    return [authority("no keyCertSign", root, key_cert_sign=False)]


def _expired(root: CertBundle) -> list[CertBundle]:
    return [authority("expired issuing CA", root, not_before=utcnow() - dt.timedelta(days=40), days=10)]


def _below_path_length_0(root: CertBundle) -> list[CertBundle]:
    middle = authority("pathlen:0 CA", root, path_length=0)
    return [authority("a CA below a pathlen:0 CA", middle), middle]


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (_sound, None),
        (_not_a_ca, "its issuer CN=not a CA,O=corp is not a CA (basicConstraints CA:FALSE)"),
        (_no_key_cert_sign, "is not a CA (its keyUsage (digitalSignature) lacks keyCertSign)"),
        (_expired, "its issuer CN=expired issuing CA,O=corp is not valid at "),
        (
            _below_path_length_0,
            "allows 0 CA(s) below it (pathLenConstraint), and the chain has 1 (path length exceeded)",
        ),
    ],
    ids=["two-levels-accepted", "not-a-ca", "no-keycertsign", "expired", "path-length"],
)
def test_a_broken_intermediate_is_refused(
    corp: dict[str, CertBundle], make: Callable[[CertBundle], list[CertBundle]], why: str | None
) -> None:
    intermediates = make(corp["root"])
    leaf = with_chain(server_leaf(intermediates[0]), *intermediates)
    problems = check_leaf("leaf", leaf, "server", corp["root"].cert_pem, dns_names=[HOST])
    if why is None:
        assert problems == []
    else:
        assert len(problems) == 1 and why in problems[0].problem, problems


def test_an_intermediate_as_the_mesh_ca_is_a_warning(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    """Peers trust it alone, which Envoy takes (it sets X509_V_FLAG_PARTIAL_CHAIN; tests/pki_builders.CHAINS: 'a
    trust bundle of the intermediate without its root'), and a client without partial chains does not."""
    _, findings = store.import_(seed_bridge(), "eks", "ca", cert_only(corp["issuing"]), name="issuing.pem")
    (f,) = [f for f in findings if f.rule == "not-root"]
    assert f.severity == "warning" and "is not a root" in f.problem and "X509_V_FLAG_PARTIAL_CHAIN" in f.problem
    assert not [f for f in findings if f.severity == "error"], findings
    assert store.path("eks", "ca").read_bytes() == corp["issuing"].cert_pem
    # negative twin: the root is no such warning
    _, findings = store.import_(seed_bridge(), "gke", "ca", cert_only(corp["root"]), name="root.pem")
    assert "not-root" not in [f.rule for f in findings]
    # a leaf checked against such a bundle is accepted, as Envoy (X509_V_FLAG_PARTIAL_CHAIN) accepts it
    leaf = server_leaf(corp["issuing"])
    assert check_leaf("leaf", leaf, "server", corp["issuing"].cert_pem, dns_names=[HOST]) == []


def test_a_ca_file_holds_one_certificate(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    """Every certificate of ``ca.crt`` lands in the peers' ``cacert``: a second one would be trusted unchecked."""
    two = CertBundle(corp["root"].cert_pem + corp["other root"].cert_pem)
    _, findings = store.import_(seed_bridge(), "eks", "ca", two, name="roots.pem")
    assert [f.severity for f in findings] == ["error"] and "holds 2 certificates" in findings[0].problem
    _, findings = store.import_(seed_bridge(), "eks", "ca", cert_only(corp["root"]), name="root.pem")
    assert findings == []


# -- 2. a CA without its key ----------------------------------------------------------------------------------


def test_a_ca_imports_without_its_key_and_meshbridge_then_refuses_to_sign_with_it(
    issued_workdir: Path, corp: dict[str, CertBundle], capsys: pytest.CaptureFixture[str]
) -> None:
    store = PkiStore(issued_workdir / ".meshbridge")
    root = corp["root"].write_to(issued_workdir / "byo", "root")[0]
    args = ["certs", "import", "--mesh", "eks", "--slot", "ca", "--cert", str(root)]
    kept = store.path("eks", "ca").read_bytes()
    assert main(args) == 2  # eks has meshbridge's CA: replacing it breaks the link until pushed
    assert "already has a CA" in capsys.readouterr().err and store.path("eks", "ca").read_bytes() == kept
    assert main([*args, "--force"]) == 0
    assert "has no key here" in capsys.readouterr().out
    assert main(args) == 0  # the same CA again is no replacement
    assert store.path("eks", "ca").read_bytes() == corp["root"].cert_pem
    assert not store.path("eks", "ca").with_suffix(".key").exists()  # meshbridge's old key is gone with its CA
    before = {p: p.read_bytes() for p in (issued_workdir / ".meshbridge").rglob("*.*")}
    # eks's server leaf came from meshbridge's old CA: reissuing it needs the key
    for args in (["certs", "issue"], ["certs", "rotate", "--leaf", "--mesh", "eks"], ["certs", "rotate", "--ca"]):
        assert main(args) == 2, args
        message = capsys.readouterr().err
        for words in ("mesh 'eks'", "imported without its private key", "certs import --mesh eks --slot server"):
            assert words in " ".join(message.split()), (args, message)
    assert {p: p.read_bytes() for p in (issued_workdir / ".meshbridge").rglob("*.*")} == before  # nothing written
    assert main(["certs", "rotate", "--leaf"]) == 2  # every mesh: the others can go without eks
    assert "nothing was rotated. To rotate the other meshes: add --mesh gke" in " ".join(
        capsys.readouterr().err.split()
    )
    assert {p: p.read_bytes() for p in (issued_workdir / ".meshbridge").rglob("*.*")} == before
    with pytest.raises(PkiError, match="imported without its private key"):
        store.rotate_leaves(seed_bridge(), ["eks"])
    # positive twins: gke's CA has its key; and once eks's leaf comes from the user's PKI, issue has nothing to sign
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke"]) == 0
    leaf = with_chain(server_leaf(corp["issuing"]), corp["issuing"])
    crt, key = leaf.write_to(issued_workdir / "byo", "leaf-chain")
    assert main(["certs", "import", "--mesh", "eks", "--slot", "server", "--cert", str(crt), "--key", str(key)]) == 0
    assert stat.S_IMODE(store.path("eks", "server").with_suffix(".key").stat().st_mode) == 0o600
    assert main(["certs", "issue"]) == 0
    assert main(["certs", "check"]) == 0
    assert "PRIVATE KEY" not in capsys.readouterr().out


def test_a_leaf_needs_its_key(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    import_root(store, corp)
    with pytest.raises(PkiError, match="a server leaf needs its private key"):
        store.import_(seed_bridge(), "eks", "server", cert_only(server_leaf(corp["root"])), name="leaf.pem")


def test_a_ca_with_a_key_that_is_not_its_own_is_refused(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    before = store.path("eks", "ca").read_bytes(), store.path("eks", "ca").with_suffix(".key").read_bytes()
    wrong = CertBundle(corp["root"].cert_pem, corp["other root"].key_pem)
    _, findings = store.import_(seed_bridge(), "eks", "ca", wrong, name="root.pem")
    assert [f.problem for f in findings] == ["the private key does not belong to this certificate"]
    assert (store.path("eks", "ca").read_bytes(), store.path("eks", "ca").with_suffix(".key").read_bytes()) == before
    # positive twin: with its own key it is stored, key 0600, and meshbridge issues from it again
    _, findings = store.import_(seed_bridge(), "eks", "ca", corp["root"], name="root.pem")
    assert findings == []
    assert stat.S_IMODE(store.path("eks", "ca").with_suffix(".key").stat().st_mode) == 0o600
    actions = {(a.mesh, a.slot): a.action for a in store.issue(seed_bridge())}
    assert actions[("eks", "server")] == "reissued"  # its old leaf came from the replaced CA
    server = store.load("eks", "server")
    assert server is not None and server.issuer == corp["root"].subject


def test_a_new_ca_drops_the_crl_of_the_one_it_replaces(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    store.revoke("eks", 0xABC)
    assert store.crl_path("eks").exists()
    import_root(store, corp)
    assert not store.crl_path("eks").exists() and store.crl("eks") is None
    # negative twin: a refused import (two CAs in one file) keeps the CRL
    store.revoke("gke", 0xABC)
    two = CertBundle(corp["root"].cert_pem + corp["other root"].cert_pem)
    _, findings = store.import_(seed_bridge(), "gke", "ca", two, name="two.pem")
    assert "error" in [f.severity for f in findings]
    assert store.revoked("gke") == [0xABC]


# -- 3. spec.tls.keyType changes: imported certificates are kept ---------------------------------------------


def rsa_bridge() -> Bridge:
    d = seed_dict()
    d["spec"]["tls"]["keyType"] = "RSA_2048"
    return bridge_from(d)


def test_an_imported_leaf_of_another_key_type_is_kept_with_a_note(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    bridge = seed_bridge()  # ECDSA_P256, like the corp PKI
    assert store.import_(bridge, "eks", "ca", corp["root"], name="root.pem")[1] == []  # with its key: signable
    assert store.import_(bridge, "eks", "server", server_leaf(corp["root"]), name="leaf.pem")[1] == []
    assert store.is_imported("eks", "ca") and store.is_imported("eks", "server")
    assert not store.is_imported("gke", "ca") and not store.is_imported("gke", "client")
    served = store.path("eks", "server").read_bytes()
    actions = {(a.mesh, a.slot): a for a in store.issue(rsa_bridge())}
    assert actions["eks", "server"].action == "kept" and store.path("eks", "server").read_bytes() == served
    assert actions["eks", "server"].reason == (
        "key type RSA_2048 in the spec, ECDSA_P256 stored: kept, it was imported (see the warning)"
    )
    assert actions["eks", "ca"].reason.endswith("kept, it was imported (see the warning)")
    # the negative twin: meshbridge's own leaf is reissued with the spec's key type
    assert actions["gke", "client"].action == "reissued"
    found = {f.subject: f for f in store.check(rsa_bridge())}
    assert sorted(found) == ["eks/ca", "eks/server", "gke/ca"] and {f.severity for f in found.values()} == {"warning"}
    assert found["eks/server"].fix.startswith("it was imported, so meshbridge keeps it: import a RSA_2048 one")
    assert "--slot server" in found["eks/server"].fix and "spec.tls.keyType: ECDSA_P256" in found["eks/server"].fix
    assert "--slot ca" in found["eks/ca"].fix and "rotate --ca --mesh gke" in found["gke/ca"].fix
    # asked for by name, a rotation reissues it: the slot is meshbridge's again, and the next issue keeps it
    store.rotate_leaves(rsa_bridge(), ["eks"])
    assert not store.is_imported("eks", "server")
    assert {(a.slot, a.reason) for a in store.issue(rsa_bridge()) if a.mesh == "eks" and a.slot == "server"} == {
        ("server", "")
    }


def test_imports_made_before_the_mark_are_still_told_apart(store: PkiStore, corp: dict[str, CertBundle]) -> None:
    bridge = seed_bridge()
    import_root(store, corp)  # without its key
    chain = with_chain(server_leaf(corp["issuing"]), corp["issuing"])
    assert store.import_(bridge, "eks", "server", chain, name="leaf-chain.pem")[1] == []
    for slot in ("ca", "server"):  # a store written before the mark existed
        store.imported_path("eks", slot).unlink()
    assert store.is_imported("eks", "ca") and store.is_imported("eks", "server")  # no key; intermediates
    assert store.import_(bridge, "eks", "server", server_leaf(corp["root"]), name="leaf.pem")[1] == []
    store.imported_path("eks", "server").unlink()
    assert store.is_imported("eks", "server")  # straight from a CA whose key meshbridge does not hold
    assert not store.is_imported("gke", "ca") and not store.is_imported("gke", "client")
    # so a new key type in the spec reissues only meshbridge's own, and asks for no key it does not hold
    actions = {(a.mesh, a.slot): a.action for a in store.issue(rsa_bridge())}
    assert actions == {
        ("eks", "ca"): "kept",
        ("eks", "server"): "kept",
        ("gke", "ca"): "kept",
        ("gke", "client"): "reissued",
    }


def test_cli_import_help_says_the_key_is_optional_for_a_ca(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "import", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "optional for a CA" in text and "intermediates" in text
