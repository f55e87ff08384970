"""Envoy's SAN matcher (:mod:`meshbridge.envoy.sans`): typed matchers on a certificate's SANs, with their twins."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from meshbridge.envoy import sans
from meshbridge.pki.x509 import issue_ca, issue_leaf

_CA = issue_ca("sans CA")
_LEAF = issue_leaf(
    _CA,
    "server",
    common_name="api",
    dns_names=["*.lambda.external", "api.example.com"],
    uris=["spiffe://exp.example.org/ns/istio-ingress/sa/gw"],
).cert_pem


def _pin(san_type: str, **matcher: Any) -> list[dict[str, Any]]:
    return [{"san_type": san_type, "matcher": matcher}]


@pytest.mark.parametrize(
    ("pins", "accepted"),
    [
        (_pin("DNS", exact="api.example.com"), True),
        (_pin("DNS", exact="other.example.com"), False),
        (_pin("DNS", exact="a.lambda.external"), True),  # the wildcard SAN covers one label
        (_pin("DNS", exact="a.b.lambda.external"), False),
        (_pin("URI", exact="api.example.com"), False),  # a DNS SAN is not a URI one
        (_pin("URI", prefix="spiffe://exp.example.org/"), True),
        (_pin("URI", prefix="spiffe://imp.example.org/"), False),
        (_pin("DNS", suffix=".example.com"), True),
        (_pin("DNS", suffix=".example.org"), False),
        (_pin("URI", contains="/sa/gw"), True),
        (_pin("URI", contains="/sa/other"), False),
        (_pin("DNS", exact="API.example.com", ignore_case=True), True),
        (_pin("DNS", exact="API.example.com"), False),
        (_pin("URI", safe_regex={"regex": "spiffe://exp[.]example[.]org/.*"}), True),
        (_pin("URI", safe_regex={"regex": "exp[.]example"}), False),  # a regex matches the whole SAN
        ([], True),
    ],
)
def test_a_certificate_is_accepted_when_one_san_of_a_matchers_type_matches(
    pins: list[dict[str, Any]], accepted: bool
) -> None:
    assert sans.accepted(pins, _LEAF) is accepted


def _self_signed(alt: list[x509.GeneralName]) -> bytes:
    """A self-signed certificate with the SANs ``alt`` (``issue_leaf`` issues DNS and URI ones, and some)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ip")])
    now = dt.datetime.now(dt.UTC)
    builder = x509.CertificateBuilder(name, name, key.public_key(), x509.random_serial_number(), now, now)
    if alt:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM)


def test_ip_and_email_sans_are_matched_on_their_own_types() -> None:
    leaf = _self_signed([x509.IPAddress(ipaddress.ip_address("10.0.0.7")), x509.RFC822Name("ops@example.com")])
    assert sans.accepted(_pin("IP_ADDRESS", exact="10.0.0.7"), leaf)
    assert not sans.accepted(_pin("IP_ADDRESS", exact="10.0.0.8"), leaf)
    assert not sans.accepted(_pin("DNS", exact="10.0.0.7"), leaf)
    assert sans.accepted(_pin("EMAIL", suffix="@example.com"), leaf)
    assert not sans.accepted(_pin("URI", suffix="@example.com"), leaf)


def test_a_certificate_without_sans_meets_no_pin_and_shows_no_identity() -> None:
    cn_only = _self_signed([])
    assert not sans.accepted(sans.exact(["ip"]), cn_only)
    assert sans.identity(cn_only) == []
    assert sans.identity(_LEAF)[0] == "spiffe://exp.example.org/ns/istio-ingress/sa/gw"


def test_pins_are_read_from_the_validation_context_and_shown_in_a_messages_words() -> None:
    common = {
        "combined_validation_context": {
            "default_validation_context": {
                "match_typed_subject_alt_names": [
                    *sans.exact(["lambda.external"]),
                    *_pin("URI", prefix="spiffe://imp/"),
                ]
            }
        }
    }
    assert sans.shown(sans.matchers(common)) == ["lambda.external", "prefix:spiffe://imp/"]
    assert sans.matchers({"combined_validation_context": {}}) == []
