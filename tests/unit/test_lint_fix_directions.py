"""Lint fixes point the right way: the value a finding suggests comes from what the certificate, the spec or the
DestinationRule says, not from a default the user's setup does not have. Each with its twin."""

from __future__ import annotations

from typing import Any

from meshbridge.lint import LintReport
from meshbridge.lint.findings import Finding
from tests.lint_builders import Docs, drop
from tests.unit.test_lint_codes import Change, both, client_leaf, dr_out, gw_in_tls, nothing, pop, run

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


# -- MB306: an originating DestinationRule whose port-level entry names another port -----------------------------


def _entry_port(number: int) -> Change:
    def change(docs: Docs) -> None:
        dr_out(docs)["spec"]["trafficPolicy"]["portLevelSettings"][0]["port"]["number"] = number

    return change


def test_mb306_names_the_port_level_entry_that_names_another_port_than_the_clusters() -> None:
    f = _only(run(_entry_port(443), None, True, ("eks", "gke")), "MB306")  # the egress cluster dials port 80
    assert f.objects[0].field == "spec.trafficPolicy.portLevelSettings[0].port.number"
    assert (
        "DestinationRule istio-egress/dr-lambda-ext spec.trafficPolicy.portLevelSettings[0] names port 443, not the "
        "cluster's port 80, so its tls does not apply (and spec.trafficPolicy.tls is not set)"
    ) in f.message
    assert f.fix == "set spec.trafficPolicy.portLevelSettings[0].port.number: 80 (the ServiceEntry port " + (
        "lambda.external is dialled on)"
    )
    assert [f for f in run(_entry_port(80), None, True, ("eks", "gke")).findings if f.code == "MB306"] == []


def test_mb306_without_any_tls_in_the_rule_still_says_to_add_one() -> None:
    def no_tls(docs: Docs) -> None:
        del dr_out(docs)["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]

    f = _only(run(no_tls, None, True, ("eks", "gke")), "MB306")  # the entry for 80 replaces the policy whole
    assert "names port" not in f.message
    assert f.fix.startswith("add tls: {mode: MUTUAL, credentialName: <Secret>, sni: lambda.external} to ")


# -- MB506: the exporter Gateway pins no client SAN --------------------------------------------------------------


def _importer_elsewhere(data: dict[str, Any]) -> None:
    """The importer's trust domain and egress gateway namespace are not the seed's (nor the article's)."""
    data["spec"]["meshes"]["gke"]["trustDomain"] = "imp.example.org"
    data["spec"]["meshes"]["gke"]["egressGateway"]["namespace"] = "istio-system"


UNPINNED = both(
    pop(gw_in_tls, "subjectAltNames"),
    lambda docs: drop(docs, "eks", "AuthorizationPolicy", "istio-ingressgateway-importers"),
)


def test_mb506_names_the_importers_identity_the_spec_gives() -> None:
    f = _only(run(UNPINNED, _importer_elsewhere, True, ("eks", "gke")), "MB506")
    assert f.fix == (
        "set tls.subjectAltNames to the importers' identities "
        "(spiffe://imp.example.org/ns/istio-system/sa/istio-egressgateway-service-account), or add an "
        "AuthorizationPolicy on the gateway"
    )


def test_mb506_without_a_spec_says_the_identity_is_not_known() -> None:
    f = _only(run(UNPINNED, _importer_elsewhere, False, ("eks", "gke")), "MB506")
    assert (
        "spiffe://<trust domain>/ns/<namespace>/sa/<service account> of each importer's egress gateway; lint "
        + ("has no bridge spec to name them")
        in f.fix
    )
    assert "istio-egress" not in f.fix  # no made-up namespace
    assert [
        f for f in run(pop(gw_in_tls, "subjectAltNames"), None, True, ("eks", "gke")).findings if f.code == "MB506"
    ] == []  # the twin: the AuthorizationPolicy pins the principals
