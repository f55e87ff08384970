"""MB504 (no subjectAltNames pinned) says that an sni turns automatic SAN checks off only when the DestinationRule
sets one (istiod's own SNI for ISTIO_MUTUAL is no sni of the user's), and leaves an ISTIO_MUTUAL cluster to the
exporter to MB306, which names it. Each case has its twin."""

from __future__ import annotations

from typing import Any

from meshbridge.lint import LintReport
from tests.lint_builders import Docs, doc, lint_docs, seed_docs


def _lint(tls: dict[str, str]) -> LintReport:
    """The seed, its importer's MUTUAL tls at the top level and the port-level entry for port 80 set to ``tls``."""
    docs: Docs = seed_docs()
    policy: dict[str, Any] = doc(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]
    entry = policy["portLevelSettings"][0]
    policy["tls"] = entry["tls"]
    entry["tls"] = dict(tls)
    return lint_docs(docs)


def _mb504(report: LintReport) -> list[str]:
    return [f.message for f in report.findings if f.code == "MB504"]


MUTUAL = {"mode": "MUTUAL", "credentialName": "mtls-credential"}


def test_istio_mutual_to_the_exporter_is_mb306_alone() -> None:
    report = _lint({"mode": "ISTIO_MUTUAL"})
    assert "MB306" in report.codes()
    assert _mb504(report) == []  # istiod's outbound_.80_._.lambda.external is no sni the user set


def test_negative_twin_mutual_with_an_sni_and_no_pins_is_mb504_naming_that_sni() -> None:
    report = _lint({**MUTUAL, "sni": "lambda.external"})
    assert "MB306" not in report.codes()
    (said,) = _mb504(report)
    assert said.endswith("no subjectAltNames are pinned (and its sni lambda.external turns automatic SAN checks off)")


def test_mutual_without_sni_is_mb504_saying_nothing_of_an_sni() -> None:
    (said,) = _mb504(_lint(MUTUAL))
    assert said.endswith("no subjectAltNames are pinned")
