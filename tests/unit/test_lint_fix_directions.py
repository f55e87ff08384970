"""Lint fixes point the right way: the value a finding suggests comes from what the certificate, the spec or the
DestinationRule says, not from a default the user's setup does not have. Each with its twin."""

from __future__ import annotations

from meshbridge.lint import LintReport
from meshbridge.lint.findings import Finding
from tests.unit.test_lint_codes import client_leaf, nothing, run

OTHER = "spiffe://gke.example.com/ns/x/sa/y"


def _only(report: LintReport, code: str) -> Finding:
    (found,) = [f for f in report.findings if f.code == code]
    return found


# -- MB310: the exporter pins a SAN the importer's client certificate lacks --------------------------------------


def test_mb310_first_corrects_the_pin_to_the_identity_the_client_certificate_carries() -> None:
    f = _only(run(client_leaf(uris=[OTHER]), None, True, ("eks", "gke")), "MB310")
    assert f.fix.startswith(f"correct the pin to the certificate's identity (tls.subjectAltNames: [{OTHER}]), or ")
    assert f.fix.endswith(
        "reissue the importer's client certificate with "
        "URI:spiffe://gke.example.com/ns/istio-egress/sa/istio-egressgateway-service-account"
    )


def test_mb310_without_a_san_to_pin_says_only_to_reissue() -> None:
    f = _only(run(client_leaf(), None, True, ("eks", "gke")), "MB310")  # CN only: no pin can name it
    assert f.fix.startswith("reissue the importer's client certificate with URI:spiffe://gke.example.com/")
    assert f.fix.endswith("(it carries no SAN a pin could name)")
    assert "correct the pin" not in f.fix
    assert [f for f in run(nothing, None, True, ("eks", "gke")).findings if f.code == "MB310"] == []
