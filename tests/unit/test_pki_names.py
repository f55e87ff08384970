"""Certificates from real PKIs' naming: identities in SANs, subjects within RFC 5280's bounds."""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import NameOID

from meshbridge.pki.x509 import NAME_LIMIT, issue_ca, issue_leaf

LONG_SA = "istio-egressgateway-payments-platform-service-account"  # a long service account, as real charts name them
SPIFFE = f"spiffe://payments.example.com/ns/istio-egress-payments/sa/{LONG_SA}"


def _cn(bundle: object) -> list[str]:
    return [str(a.value) for a in bundle.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]  # type: ignore[attr-defined]


def test_a_leaf_whose_common_name_would_exceed_64_characters_is_issued_with_its_identity_in_the_san() -> None:
    ca = issue_ca("meshbridge gke CA")
    leaf = issue_leaf(ca, "client", common_name=f"{LONG_SA}.istio-egress-payments", uris=[SPIFFE])
    assert _cn(leaf) == []  # no CN rather than a crash or a cut identity
    san = leaf.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [SPIFFE]


def test_a_short_common_name_is_kept() -> None:
    ca = issue_ca("meshbridge gke CA")
    leaf = issue_leaf(ca, "server", common_name="lambda.external", dns_names=["lambda.external"])
    assert _cn(leaf) == ["lambda.external"]


def test_a_ca_with_a_long_name_keeps_a_common_name_within_the_bound_and_its_unique_end() -> None:
    name = "meshbridge " + "a-very-long-mesh-name-for-the-payments-platform-" * 2 + "CA 20261206T000000.123456"
    ca = issue_ca(name, organization="meshbridge " + "x" * 80)
    (cn,) = _cn(ca)
    assert len(cn) <= NAME_LIMIT and cn.endswith("20261206T000000.123456")
    (org,) = [str(a.value) for a in ca.cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert len(org) == NAME_LIMIT
