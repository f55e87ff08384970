"""``cryptography``'s warnings about a user's certificate (a serial that is not positive, a DSA key, a name longer
than RFC 5280 allows) never reach the terminal: meshbridge says what matters in its own words, and the CLI
runs as well under ``python -W error``. Each case with its twin.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa
from cryptography.x509.oid import NameOID

from meshbridge.cli.main import main
from meshbridge.errors import PkiError
from meshbridge.pki import CertBundle
from meshbridge.pki.checks import check_leaf
from meshbridge.pki.x509 import issue_crl, parse_certificates, parse_crl, utcnow
from tests.lint_builders import key_pem, pem
from tests.pki_builders import SPIFFE, client, files, importing, make, own_ca, said, server, with_serial

# -- 4. cryptography's warnings stay off the terminal ----------------------------------------------------------


@pytest.fixture
def warnings_are_errors() -> Iterator[None]:
    """What ``python -W error`` does: any warning raised is an exception."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def test_a_serial_that_is_not_positive_is_said_in_meshbridge_s_words(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str], warnings_are_errors: None
) -> None:
    ca = own_ca(issued_workdir, "eks")
    negative = with_serial(server(ca), -5, ca)
    assert main(importing("eks", "server", files(issued_workdir, "negative", negative.bundle()))) == 0
    text = said(capsys.readouterr().out)
    assert (
        "has serial number -5, which is not positive: RFC 5280 (4.1.2.2) forbids it, cryptography will stop reading "
        "such certificates, and no CRL can revoke it ('certs revoke' refuses it). Envoy accepts it today. Fix: "
        "reissue it with a positive serial number" in text
    )
    assert "Parsed a serial number" not in text
    for command in (["certs", "show", "--wide"], ["certs", "check"], ["lint"]):
        assert main(command) in (0, 1), command
        captured = capsys.readouterr()
        assert "Parsed a serial number" not in captured.out + captured.err and "Traceback" not in captured.err
    # the twin: a positive serial, nothing to say
    assert (
        main(importing("eks", "server", files(issued_workdir, "positive", with_serial(server(ca), 5, ca).bundle())))
        == 0
    )
    assert "serial number" not in capsys.readouterr().out


def test_a_dsa_certificate_is_refused_in_meshbridge_s_words(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str], warnings_are_errors: None
) -> None:
    ca = own_ca(issued_workdir, "gke")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # making a DSA key is deprecated: the input a user may still bring
        key = dsa.generate_private_key(2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dsa client")]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - dt.timedelta(minutes=5))
        .not_valid_after(utcnow() + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(SPIFFE)]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        leaf = CertBundle(pem(cert), key_pem(key))
    assert main(importing("gke", "client", files(issued_workdir, "dsa", leaf))) == 2
    captured = capsys.readouterr()
    assert (
        "has a DSA key, which Envoy (BoringSSL) cannot verify a TLS handshake with. Fix: reissue it with an ECDSA "
        "P-256 or RSA key" in said(captured.err)
    )
    assert "deprecated" not in captured.out + captured.err
    # the twin: the same leaf with an ECDSA key
    assert main(importing("gke", "client", files(issued_workdir, "ecdsa", client(ca).bundle()))) == 0


def test_a_name_longer_than_rfc_5280_allows_is_read_quietly(
    issued_workdir: Path, capsys: pytest.CaptureFixture[str], warnings_are_errors: None
) -> None:
    key = own_ca(issued_workdir, "eks").key
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography warns as it makes it: the input a user may bring
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "c" * 70, _validate=False)])
    root = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(utcnow() - dt.timedelta(minutes=5))
        .not_valid_after(utcnow() + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    bundle = CertBundle(pem(root))
    assert main(importing("eks", "ca", files(issued_workdir, "long", bundle), "--force")) == 0
    assert main(["certs", "show"]) == 0
    captured = capsys.readouterr()
    assert "Attribute's length" not in captured.out + captured.err


def test_the_pem_readers_keep_cryptography_s_warnings_to_themselves(warnings_are_errors: None) -> None:
    root = make("corp root")
    leaf = with_serial(server(root), 0, root)
    assert [c.subject for c in parse_certificates(leaf.pem, "zero.pem")] == [leaf.cert.subject]
    assert CertBundle(leaf.pem).serial == 0
    (warning,) = [f for f in check_leaf("zero.pem", leaf.bundle(), "server", root.pem) if f.severity == "warning"]
    assert warning.rule == "rfc5280" and "has serial number 0" in warning.problem
    crl = issue_crl(CertBundle(root.pem, root.key_pem), [7])
    assert [e.serial_number for e in parse_crl(crl)] == [7]
    # the twin: what is not about the input stays the caller's (an error here, as -W error asks)
    with pytest.raises(DeprecationWarning):
        warnings.warn("not about a certificate", DeprecationWarning, stacklevel=1)
    with pytest.raises(PkiError, match="not a PEM certificate"):
        parse_certificates(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "x.pem")
