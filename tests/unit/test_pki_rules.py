"""One rule set for certificates, Envoy's: ``certs import``, ``certs check`` and ``lint`` refuse only what makes
Envoy (BoringSSL) or the peer fail the handshake, and warn about what RFC 5280 merely prefers.

Each kind has its negative twin. The chains of ``tests.pki_builders.CHAINS`` carry Envoy 1.40's verdict,
which ``tests/integration/test_pki_envoy.py`` replays against the real Envoy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from meshbridge.cli.main import main
from meshbridge.lint import from_bridge, lint
from meshbridge.pki import CertBundle, issue_leaf
from meshbridge.pki.checks import RULES, check_ca, check_leaf, dns_match
from tests.builders import bridge_from, issued_store, seed_dict
from tests.pki_builders import (
    CHAINS,
    HOST,
    SPIFFE,
    UNKNOWN_EXTENSION,
    Chain,
    Made,
    client,
    files,
    importing,
    make,
    own_ca,
    said,
    server,
    usage,
)

# -- 1. the rule set predicts Envoy ---------------------------------------------------------------------------


@pytest.mark.parametrize("chain", CHAINS, ids=[f"{c.role}: {c.case}" for c in CHAINS])
def test_each_chain_is_refused_only_when_envoy_refuses_it(chain: Chain) -> None:
    root, leaf = chain.build()
    pins = {"dns_names": [HOST]} if chain.role == "server" else {"uris": [SPIFFE]}
    findings = check_leaf("leaf.pem", leaf, chain.role, root.pem, **pins)  # type: ignore[arg-type]
    errors = [f for f in findings if f.severity == "error"]
    if chain.envoy:
        assert errors == [], errors
        assert [f.rule for f in findings] == ([chain.rule] if chain.rule else []), findings
    else:
        assert chain.rule in [f.rule for f in errors], findings
    for f in findings:  # each names the certificate, the problem and the fix
        assert f.subject.startswith("leaf.pem") and f.problem and f.fix and f.rule in RULES


def test_a_mesh_ca_is_refused_only_when_it_cannot_sign() -> None:
    def found(ca: Made) -> list[tuple[str, str]]:
        return [(f.severity, f.rule) for f in check_ca("root.pem", CertBundle(ca.pem))]

    assert found(make("corp root")) == []
    assert found(make("corp root", path_length=1)) == []  # a path length limits what is below it, not the root
    assert found(make("older root", key_usage=None)) == [("warning", "rfc5280")]  # RFC 5280 4.2.1.3
    assert found(make("loose root", bc_critical=False)) == [("warning", "rfc5280")]
    assert found(make("root", extra=[(UNKNOWN_EXTENSION, True)])) == [("warning", "rfc5280")]
    # negative twins: what cannot sign the leaves its peers are to trust
    assert found(make("no certSign", key_usage=usage("crl_sign", "digital_signature"))) == [("error", "not-ca")]
    assert found(make("no basicConstraints", ca=None)) == [("error", "not-ca")]
    assert found(make("a leaf", ca=False)) == [("error", "not-ca")]
    (problem,) = check_ca("root.pem", CertBundle(make("older root", key_usage=None).pem))
    assert problem.problem.startswith("has no keyUsage extension; RFC 5280 (4.2.1.3) wants keyCertSign on a CA")
    assert "Envoy accepts it" in problem.problem


# -- 2. certs import takes what Envoy takes -----------------------------------------------------------------


def test_certs_import_takes_a_leaf_whose_subject_alt_name_is_critical(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = own_ca(issued_workdir, "eks")
    critical = server(ca, san_critical=True)
    assert main(importing("eks", "server", files(issued_workdir, "critical-san", critical.bundle()))) == 0
    text = said(capsys.readouterr().out)
    assert "warning: critical-san.crt" not in text  # named by its file
    assert (
        f"{issued_workdir / 'byo' / 'critical-san.crt'}: has a critical subjectAltName and a subject "
        "(CN=lambda.external); RFC 5280 (4.2.1.6) wants it critical only when the subject is empty. Envoy accepts "
        "it. Fix: when it is next reissued, mark the subjectAltName non-critical, or leave the subject empty" in text
    )
    assert "imported" in text
    assert main(["certs", "check"]) == 0  # the same rule, the same warning
    assert "has a critical subjectAltName" in said(capsys.readouterr().out)
    # the usual case: no subject at all, the SAN critical as RFC 5280 wants: nothing to say
    assert (
        main(
            importing(
                "eks", "server", files(issued_workdir, "no-subject", server(ca, cn=None, san_critical=True).bundle())
            )
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().out
    # negative twin: an extension BoringSSL does not handle, critical, fails the handshake: refused
    odd = server(ca, extra=[(UNKNOWN_EXTENSION, True)])
    assert main(importing("eks", "server", files(issued_workdir, "odd", odd.bundle()))) == 2
    captured = capsys.readouterr()
    assert "does not verify against the CA its peer trusts" in said(
        captured.out
    ) and "critical extension(s) BoringSSL does not handle (1.3.6.1.4.1.99999.1)" in said(captured.out)
    assert "was not imported" in said(captured.err)


def test_certs_import_takes_a_ca_without_key_usage(issued_workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    older = make("older corp root", key_usage=None)
    assert main(importing("eks", "ca", files(issued_workdir, "older-root", older.bundle(key=False)), "--force")) == 0
    text = said(capsys.readouterr().out)
    assert "has no keyUsage extension; RFC 5280 (4.2.1.3) wants keyCertSign on a CA. Envoy accepts it" in text
    assert main(importing("eks", "server", files(issued_workdir, "leaf", server(older).bundle()))) == 0
    capsys.readouterr()
    assert main(["certs", "check"]) == 0
    assert "has no keyUsage extension" in said(capsys.readouterr().out)
    # negative twin: a keyUsage without keyCertSign forbids signing certificates; BoringSSL refuses its leaves
    cannot = make("corp root", key_usage=usage("digital_signature", "crl_sign"))
    assert main(importing("eks", "ca", files(issued_workdir, "cannot", cannot.bundle(key=False)), "--force")) == 2
    assert (
        "is not a CA (its keyUsage (digitalSignature, cRLSign) lacks keyCertSign): it cannot sign the leaves its "
        "peers are to trust" in said(capsys.readouterr().out)
    )


def test_certs_import_takes_intermediates_within_their_path_length(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make("corp root", path_length=1)
    assert main(importing("eks", "ca", files(issued_workdir, "root", root.bundle(key=False)), "--force")) == 0
    issuing = make("corp issuing CA", root, path_length=0)
    chain = server(issuing).bundle(issuing)
    capsys.readouterr()
    assert main(importing("eks", "server", files(issued_workdir, "chain", chain))) == 0
    text = said(capsys.readouterr().out)
    assert "warning" not in text and "with 1 intermediate(s) after the leaf" in text
    # negative twin: a pathLen:0 CA above another CA: BoringSSL refuses the chain (path length exceeded)
    lower = make("corp lower CA", issuing)
    assert (
        main(importing("eks", "server", files(issued_workdir, "too-deep", server(lower).bundle(lower, issuing)))) == 2
    )
    assert (
        "its intermediate CN=corp issuing CA allows 0 CA(s) below it (pathLenConstraint), and the chain has 1 (path "
        "length exceeded)" in said(capsys.readouterr().out)
    )


def test_certs_import_takes_a_leaf_without_eku_and_refuses_any_eku_alone(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = own_ca(issued_workdir, "gke")
    assert main(importing("gke", "client", files(issued_workdir, "no-eku", client(ca, ekus=None).bundle()))) == 0
    assert "has no EKU: it is valid for either role" in said(capsys.readouterr().out)
    anything = client(ca, ekus=[x509.oid.ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])
    assert main(importing("gke", "client", files(issued_workdir, "any-eku", anything.bundle()))) == 2
    assert (
        "EKU is ['anyExtendedKeyUsage'], without clientAuth (anyExtendedKeyUsage does not count: BoringSSL wants the "
        "purpose itself): peers refuse it as a client certificate (TLS alert unsupported_certificate)"
        in said(capsys.readouterr().out)
    )


def test_certs_check_and_lint_apply_the_same_rule(tmp_path: Path) -> None:
    """A client leaf whose keyUsage forbids signing the handshake: ``certs check`` errs (``key-usage``), and lint
    reports the very problem as MB405; with digitalSignature, neither says anything."""
    bridge = bridge_from(seed_dict())
    for usages, refused in ((("key_agreement",), True), (("digital_signature",), False)):
        store = issued_store(tmp_path / str(refused), bridge)
        ca = store.load("gke", "ca")
        assert ca is not None
        leaf = client(Made(ca.cert, ca.private_key()), key_usage=usage(*usages))  # type: ignore[arg-type]
        store.save("gke", "client", leaf.bundle())
        checked = [f for f in store.check(bridge) if f.severity == "error"]
        linted = [f for f in lint(from_bridge(bridge, store.credentials(bridge))).findings if f.code == "MB405"]
        if not refused:
            assert checked == [] and linted == []
            continue
        (error,) = checked
        assert error.rule == "key-usage" and error.problem.startswith("keyUsage is keyAgreement, without digital")
        (finding,) = linted
        assert finding.severity == "error" and error.problem in finding.message and error.fix in finding.fix


def test_a_wildcard_san_matches_one_label_as_envoy_matches_it(tmp_path: Path) -> None:
    assert dns_match("lambda.external", "*.external") and dns_match("LAMBDA.external", "lambda.EXTERNAL")
    assert not dns_match("a.lambda.external", "*.external") and not dns_match("external", "*.external")
    bridge = bridge_from(seed_dict())
    store = issued_store(tmp_path, bridge)
    ca = store.load("eks", "ca")
    assert ca is not None
    wild = issue_leaf(ca, "server", common_name="w", dns_names=["*.external"])
    assert store.import_(bridge, "eks", "server", wild, name="wild.pem")[1] == []
    deeper = issue_leaf(ca, "server", common_name="w", dns_names=["*.lambda.external"])
    (error,) = store.import_(bridge, "eks", "server", deeper, name="deeper.pem")[1]
    assert error.rule == "san-missing"
