"""Revocation: the per-CA CRL in the store, its way into the Secrets (``crl`` beside ``cacert``) and SDS, the CLI.

The end-to-end proof that Envoy refuses a revoked leaf is ``tests/security/test_mtls.py`` (S7).
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from cryptography import x509

from meshbridge.cli.main import main
from meshbridge.envoy.secrets import sds_resource
from meshbridge.errors import PkiError
from meshbridge.istio.config import ConfigSet
from meshbridge.lint import from_bridge, lint
from meshbridge.pki import CertBundle, PkiStore, issue_ca, issue_crl, issue_leaf
from meshbridge.pki.checks import check_revocation
from meshbridge.pki.x509 import utcnow
from meshbridge.render import render_bridge
from meshbridge.spec.models import Bridge
from meshbridge.verify.local import _expiry
from meshbridge.verify.report import Condition
from meshbridge.world import mesh_config
from tests.builders import issued_store, seed_bridge


def _crls(pem: bytes) -> list[x509.CertificateRevocationList]:
    blocks = pem.split(b"-----END X509 CRL-----")
    return [x509.load_pem_x509_crl(b + b"-----END X509 CRL-----\n") for b in blocks if b.strip()]


def _secret(bridge_sets: dict[str, list[dict[str, object]]], mesh: str) -> dict[str, bytes]:
    docs = [d for d in bridge_sets[mesh] if d["kind"] == "Secret"]
    assert len(docs) == 1
    data = docs[0]["data"]
    assert isinstance(data, dict)
    return {k: base64.b64decode(v) for k, v in data.items()}


def test_revoke_signs_a_long_lived_crl_with_the_issuing_ca(tmp_path: Path) -> None:
    store = issued_store(tmp_path, seed_bridge())
    client = store.load("gke", "client")
    assert client is not None and store.revoked("gke") == []
    done = store.revoke("gke", client.serial)
    assert done.holder == "client" and done.cas == (("ca", True),)
    crl = x509.load_pem_x509_crl(store.crl_path("gke").read_bytes())
    ca = store.load("gke", "ca")
    assert ca is not None
    assert crl.is_signature_valid(ca.cert.public_key())  # type: ignore[arg-type]
    assert [r.serial_number for r in crl] == [client.serial]
    assert crl.next_update_utc is not None and crl.next_update_utc >= ca.not_after - dt.timedelta(days=1)
    assert store.is_revoked("gke", client)
    # the negative twin: the exporter's server leaf is not revoked, and revoking twice changes nothing
    server = store.load("eks", "server")
    assert server is not None and not store.is_revoked("eks", server)
    before = store.crl_path("gke").read_bytes()
    assert store.revoke("gke", client.serial).cas == (("ca", False),)
    assert store.crl_path("gke").read_bytes() == before


def test_no_revocation_no_crl_anywhere(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    creds = store.credentials(bridge)
    assert all(c.server_crl is None and c.client_crl is None for c in creds.values())
    sets = render_bridge(bridge, creds)
    assert "crl" not in _secret(sets, "eks") and "crl" not in _secret(sets, "gke")  # type: ignore[arg-type]
    assert not list((tmp_path / "state" / "pki").glob("*/*.crl"))


def test_a_revoked_client_leaf_reaches_the_exporter_secret_and_sds(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    client = store.load("gke", "client")
    assert client is not None
    store.revoke("gke", client.serial)
    sets = render_bridge(bridge, store.credentials(bridge))
    eks = _secret(sets, "eks")  # type: ignore[arg-type]
    assert [r.serial_number for c in _crls(eks["crl"]) for r in c] == [client.serial]
    assert "crl" not in _secret(sets, "gke")  # type: ignore[arg-type]  # eks revoked nothing: no CRL for it
    cfg: ConfigSet = mesh_config(bridge, "eks", [("rendered", d) for d in sets["eks"]])
    res = sds_resource(cfg, "istio-ingress", "kubernetes://mtls-credential-cacert", None)
    assert res is not None
    vc = res["validation_context"]
    assert base64.b64decode(vc["crl"]["inline_bytes"]) == eks["crl"]
    assert base64.b64decode(vc["trusted_ca"]["inline_bytes"]) == eks["cacert"]


def test_every_trusted_ca_gets_a_crl_once_one_has_revocations(tmp_path: Path) -> None:
    """Envoy: a CRL for some CAs of a chain but not others fails every certificate of the others."""
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    store.rollover(bridge, "gke", 1)  # the exporter now trusts gke's ca and ca-next
    store.revoke("gke", 0x1234)  # an unknown serial: on the CRL of every gke CA
    assert store.revoked("gke", "ca") == [0x1234] and store.revoked("gke", "ca-next") == [0x1234]
    (tmp_path / "state" / "pki" / "gke" / "ca-next.crl").unlink()  # as if ca-next had never revoked anything
    crl = store.credentials(bridge)["eks"].server_crl
    assert crl is not None
    issuers = sorted(c.issuer.rfc4514_string() for c in _crls(crl))
    cas = [store.load("gke", s) for s in ("ca", "ca-next")]
    assert issuers == sorted(c.subject for c in cas if c is not None)
    assert store.revoked("gke", "ca-next") == []  # an empty CRL, now kept in the store
    assert store.credentials(bridge)["eks"].server_crl == crl  # stable across renders


def test_rollover_moves_the_crls_and_a_new_ca_starts_clean(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    store.rollover(bridge, "gke", 1)
    store.revoke("gke", 0xABC)
    store.rollover(bridge, "gke", 2)
    store.rollover(bridge, "gke", 3)
    assert store.revoked("gke", "ca") == [0xABC]  # ca-next's CRL became ca's, with the CA
    assert (tmp_path / "state" / "pki" / "gke" / "ca-retired.crl").exists()
    store.issue(bridge, force=True)
    assert store.revoked("gke", "ca") == [] and store.credentials(bridge)["eks"].server_crl is None


def test_issue_replaces_a_revoked_leaf_and_check_flags_it(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    client = store.load("gke", "client")
    assert client is not None
    store.revoke("gke", client.serial)
    problems = [f for f in store.check(bridge) if "revoked" in f.problem]
    assert [f.subject for f in problems] == ["gke/client"] and "rotate --leaf --mesh gke" in problems[0].fix
    actions = {(a.mesh, a.slot): a for a in store.issue(bridge)}
    assert actions["gke", "client"].action == "reissued" and actions["gke", "client"].reason == "revoked"
    assert actions["eks", "server"].action == "kept"
    assert not [f for f in store.check(bridge) if "revoked" in f.problem]


# -- one rule for 'certs check', lint (MB311) and verify ---------------------------------------------------


def _lint_mb311(store: PkiStore, bridge: Bridge) -> list[str]:
    """MB311 messages of lint in spec mode (the store's credentials, as 'meshbridge lint' loads them)."""
    report = lint(from_bridge(bridge, store.credentials(bridge)))
    return [
        f"{f.message} | {f.fix} | {[o.display + ' ' + o.field for o in f.objects]}"
        for f in report.findings
        if f.code == "MB311"
    ]


def _verify_certs(store: PkiStore, bridge: Bridge) -> dict[str, Condition]:
    twin = SimpleNamespace(bridge=bridge)  # _expiry reads the twin's bridge only
    return {c.check.removeprefix("CertificateExpiry:"): c for c in _expiry(twin, store)}  # type: ignore[arg-type]


def test_a_revoked_client_leaf_fails_certs_check_lint_and_verify_alike(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    client = store.load("gke", "client")
    assert client is not None
    # the negative twin first: nothing revoked, nothing reported
    assert store.check(bridge) == [] and _lint_mb311(store, bridge) == []
    assert {c.reason for c in _verify_certs(store, bridge).values()} == {"Valid"}

    store.revoke("gke", client.serial)
    (checked,) = [f for f in store.check(bridge) if f.severity == "error"]
    assert checked.subject == "gke/client" and f"serial {client.serial:x} is revoked" in checked.problem
    assert checked.fix == "issue a new one: 'meshbridge certs rotate --leaf --mesh gke'"
    (linted,) = _lint_mb311(store, bridge)
    assert checked.problem in linted and checked.fix in linted
    assert "istio-egress/mtls-credential data.cert" in linted  # the revoked leaf, where it is served
    assert "istio-ingress/mtls-credential data.crl" in linted  # the exporter's CRL beside its cacert
    conditions = _verify_certs(store, bridge)
    assert (conditions["gke/client"].status, conditions["gke/client"].reason) == ("False", "Revoked")
    message = conditions["gke/client"].message
    assert checked.problem in message and "rotate --leaf --mesh gke" in message
    assert {m: c.reason for m, c in conditions.items() if m != "gke/client"} == dict.fromkeys(
        ("eks/ca", "eks/server", "gke/ca"), "Valid"
    )

    store.rotate_leaves(bridge, ["gke"])  # the fix the three of them give
    assert store.check(bridge) == [] and _lint_mb311(store, bridge) == []
    assert _verify_certs(store, bridge)["gke/client"].reason == "Valid"


def test_a_revoked_server_leaf_is_mb311_on_the_importer_side(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    server = store.load("eks", "server")
    assert server is not None
    store.revoke("eks", server.serial)
    (linted,) = _lint_mb311(store, bridge)
    assert "the server certificate of eks/istio-ingressgateway" in linted and "rotate --leaf --mesh eks" in linted
    assert "istio-egress/mtls-credential data.crl" in linted
    assert _verify_certs(store, bridge)["eks/server"].reason == "Revoked"


def test_a_serial_on_the_crl_of_a_ca_that_did_not_issue_it_revokes_nothing(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    client = store.load("gke", "client")
    assert client is not None
    store.revoke("eks", client.serial)  # revoke --force on the wrong mesh: eks's CA never issued it
    assert store.revoked("eks") == [client.serial] and not store.is_revoked("gke", client)
    assert store.check(bridge) == [] and _lint_mb311(store, bridge) == []
    assert _verify_certs(store, bridge)["gke/client"].reason == "Valid"


def test_a_ca_on_its_own_crl_is_reported_on_the_ca_and_on_its_leaves(tmp_path: Path) -> None:
    bridge = seed_bridge()
    store = issued_store(tmp_path, bridge)
    ca = store.load("gke", "ca")
    assert ca is not None
    store.revoke("gke", ca.serial)  # 'revoke --serial --force' takes any serial, a CA's too
    found = {f.subject: f for f in store.check(bridge)}
    assert "is on its own CRL" in found["gke/ca"].problem and "rotate --ca --mesh gke" in found["gke/ca"].fix
    assert f"its CA {ca.subject}" in found["gke/client"].problem
    assert "eks/server" not in found
    (linted,) = _lint_mb311(store, bridge)
    assert "is on its own CRL" in linted
    assert _verify_certs(store, bridge)["gke/ca"].reason == "Revoked"


def test_check_revocation_follows_the_path_through_the_intermediates() -> None:
    root = issue_ca("root", key_type="ECDSA_P256")
    other = issue_ca("other root")
    leaf = issue_leaf(root, "client", common_name="c", uris=["spiffe://x/ns/a/sa/b"])
    assert check_revocation("c", leaf, root.cert_pem, None) == []
    assert check_revocation("c", leaf, root.cert_pem, issue_crl(root, [1234])) == []
    assert check_revocation("c", leaf, root.cert_pem, issue_crl(other, [leaf.serial])) == []  # not its issuer
    (f,) = check_revocation("c", leaf, root.cert_pem, issue_crl(other, []) + issue_crl(root, [leaf.serial]))
    assert f.severity == "error" and f"serial {leaf.serial:x} is revoked" in f.problem
    assert "certificate_revoked" in f.problem and "meshbridge" not in f.fix  # no mesh: no command to name
    # an intermediate of the leaf's file, revoked on the root's CRL
    from tests.unit.test_pki_import import authority

    corp = authority("corp root")
    mid = authority("corp intermediate", corp)
    under = issue_leaf(mid, "client", common_name="c", uris=["spiffe://x/ns/a/sa/b"])
    chain = CertBundle(under.cert_pem + mid.cert_pem, under.key_pem)
    crls = issue_crl(corp, [mid.serial]) + issue_crl(mid, [])
    (f,) = check_revocation("gke/client", chain, corp.cert_pem, crls, mesh="gke")
    assert f"its intermediate CA {mid.subject} (serial {mid.serial:x}) is revoked" in f.problem
    assert "certs import --mesh gke" in f.fix
    assert check_revocation("gke/client", chain, corp.cert_pem, issue_crl(corp, [7]) + issue_crl(mid, [])) == []


def test_lint_cli_exits_1_on_a_revoked_leaf(issued_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint"]) == 0
    assert main(["certs", "revoke", "--mesh", "gke", "--current", "client"]) == 0
    capsys.readouterr()
    assert main(["lint", "--wide"]) == 1
    text = capsys.readouterr().out
    assert "MB311" in text and "certificate_revoked" in text and "certs rotate --leaf --mesh gke" in text
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke"]) == 0
    assert main(["lint"]) == 0


def test_a_crl_from_another_ca_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    store = issued_store(tmp_path, seed_bridge())
    store.crl_path("gke").write_bytes(issue_crl(issue_ca("someone else"), [1]))
    with pytest.raises(PkiError, match=r"gke/ca\.crl: not signed by .*meshbridge gke CA"):
        store.revoked("gke")
    store.crl_path("gke").write_bytes(b"garbage")
    with pytest.raises(PkiError, match=r"not a PEM CRL"):
        store.revoked("gke")


def test_revoke_refuses_a_mesh_without_ca(tmp_path: Path) -> None:
    with pytest.raises(PkiError, match=r"has no CA .* certs issue"):
        PkiStore(tmp_path).revoke("gke", 5)


def test_cli_revoke_current_and_by_serial(issued_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = PkiStore(issued_workdir / ".meshbridge")
    client = store.load("gke", "client")
    assert client is not None
    capsys.readouterr()
    assert main(["certs", "revoke", "--mesh", "gke", "--current", "client"]) == 0
    text = capsys.readouterr().out
    assert f"{client.serial:x}" in text and "revoked" in text and "certs rotate --leaf --mesh gke" in text
    assert main(["certs", "revoke", "--mesh", "gke", "--serial", f"0x{client.serial:X}"]) == 0
    assert "already revoked" in capsys.readouterr().out
    assert main(["certs", "revoke", "--mesh", "eks", "--serial", "ab:cd"]) == 2  # not a serial meshbridge issued
    assert main(["certs", "revoke", "--mesh", "eks", "--serial", "ab:cd", "--force"]) == 0
    assert store.revoked("eks") == [0xABCD]
    assert main(["certs", "check"]) == 1  # the revoked client leaf is an error until rotated
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke"]) == 0
    assert main(["certs", "check"]) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--serial HEX or --current"),
        (["--serial", "1", "--current", "client"], "--serial HEX or --current"),
        (["--serial", "xyz"], "is not a hex number"),
        (["--serial", "0"], "not a certificate serial"),
        (["--current", "server"], "has no server leaf"),
    ],
)
def test_cli_revoke_errors(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["certs", "revoke", "--mesh", "gke", *args]) == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_cli_revoke_help_explains_the_crl(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["certs", "revoke", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("--serial", "--current", "ca.crl", "'crl' key", "rotate --leaf", "Envoy refuses"):
        assert words in text, words


def test_crl_days_outlive_the_next_update_default() -> None:
    ca = issue_ca("t", days=400)
    crl = x509.load_pem_x509_crl(issue_crl(ca, [], days=399))
    assert crl.next_update_utc is not None and crl.next_update_utc > utcnow() + dt.timedelta(days=398)


def _issuer_o_as_bit_string(pem: bytes) -> bytes:
    """``pem`` (a CRL) with its issuer's O attribute tagged BIT STRING instead of UTF8String: DER that loads, and
    fails when the issuer is read (a case hypothesis found)."""
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    o = bytes.fromhex("060355040a0c")  # OID 2.5.4.10 (organizationName), then the UTF8String tag
    assert o in der
    bad = der.replace(o, o[:-1] + b"\x03", 1)
    return b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(bad) + b"-----END X509 CRL-----\n"


def test_a_crl_whose_issuer_is_malformed_is_a_pki_error_not_a_type_error() -> None:
    from meshbridge.pki.x509 import parse_crl, revoked_serials

    ca = issue_ca("meshbridge gke CA", organization="meshbridge")
    good = issue_crl(ca, [0x1234])
    assert [r.serial_number for r in parse_crl(good, "ok.crl")] == [0x1234]  # the twin: the CRL as signed reads
    bad = _issuer_o_as_bit_string(good)
    with pytest.raises(PkiError, match=r"^bad\.crl: not a PEM CRL"):
        parse_crl(bad, "bad.crl")
    with pytest.raises(PkiError, match=r"^bundle: not a PEM CRL"):
        revoked_serials(bad, "bundle")


def test_a_crl_listing_a_serial_that_is_not_positive_is_a_pki_error() -> None:
    from meshbridge.pki.x509 import parse_crl, revoked_serials

    good = issue_crl(issue_ca("meshbridge gke CA"), [0x1234])
    assert revoked_serials(good, "ok") == [0x1234]  # the twin: the CRL as signed
    der = base64.b64decode(b"".join(good.splitlines()[1:-1]))
    assert bytes.fromhex("02021234") in der
    bad = der.replace(bytes.fromhex("02021234"), bytes.fromhex("02028034"), 1)  # the DER of -32716
    pem = b"-----BEGIN X509 CRL-----\n" + base64.encodebytes(bad) + b"-----END X509 CRL-----\n"
    with pytest.raises(PkiError, match=r"^bad\.crl: lists serial number -32716, which no certificate has"):
        parse_crl(pem, "bad.crl")
    with pytest.raises(PkiError, match=r"^bundle: "):
        revoked_serials(pem, "bundle")
