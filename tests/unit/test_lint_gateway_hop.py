"""lint MB214: the app's sidecar → egress gateway hop of Istio's egress TLS-origination task (ISTIO_MUTUAL to an
ISTIO_MUTUAL egress Gateway server on 443) whose DestinationRule subset sets no ``sni`` (or another host): the
sidecar's SNI selects no filter chain of the egress gateway, which resets the connection. lint says so from the
simulation the twin's path check runs (both predict the stop at the egress gateway); the twin with the task's
``sni`` passes both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from meshbridge.envoy.pathsim import path_findings
from meshbridge.istio.parse import load_documents
from meshbridge.lint import LintReport, from_manifests, lint
from meshbridge.lint.findings import Finding
from tests.builders import seed_bridge
from tests.istio_builders import Docs, doc_named, istio_mutual_egress, seed_path
from tests.lint_builders import lint_docs, seed_docs
from tests.oracle.corpus import CASES

SUBSET_TLS = "spec.subsets[0].trafficPolicy.portLevelSettings[0].tls"


def _sni(value: str | None) -> Callable[[Docs], None]:
    """The task's shape, the subset's ``sni`` set to ``value`` (``None``: removed)."""

    def edit(docs: Docs) -> None:
        istio_mutual_egress(docs)
        tls = doc_named(docs, "gke", "DestinationRule", "egressgateway-for-lambda")["spec"]["subsets"][0][
            "trafficPolicy"
        ]["portLevelSettings"][0]["tls"]
        if value is None:
            del tls["sni"]
        else:
            tls["sni"] = value

    return edit


def _lint(edit: Callable[[Docs], None]) -> LintReport:
    docs = seed_docs()
    edit(docs)
    return lint_docs(docs)


def _mb214(report: LintReport) -> list[Finding]:
    return [f for f in report.findings if f.code == "MB214"]


@pytest.mark.parametrize(
    ("value", "said", "field"),
    [
        (None, "istiod's SNI outbound_.443_.lambda_.istio-egressgateway.istio-egress.svc.cluster.local", SUBSET_TLS),
        ("other.external", "its sni other.external", f"{SUBSET_TLS}.sni"),
    ],
)
def test_an_sni_no_egress_gateway_chain_matches_is_an_error_lint_and_the_path_check_agree_on(
    tmp_path: Path, value: str | None, said: str, field: str
) -> None:
    (f,) = _mb214(_lint(_sni(value)))
    assert f.severity == "error"
    rule, server = f.objects
    assert (rule.kind, rule.namespace, rule.name, rule.field) == (
        "DestinationRule",
        "istio-egress",
        "egressgateway-for-lambda",
        field,
    )
    assert (server.kind, server.name, server.field) == ("Gateway", "istio-egressgateway", "spec.servers[0].hosts")
    assert "the sidecar of gke/sleep sends lambda.external:80 to istio-egressgateway" in f.message
    assert f"with TLS and {said}, which no filter chain of istio-egressgateway on port 8443 matches" in f.message
    assert "(its Gateway servers there serve lambda.external)" in f.message
    assert f.fix.startswith(
        f"set sni: lambda.external in DestinationRule istio-egress/egressgateway-for-lambda {SUBSET_TLS}"
    )
    (stop,) = path_findings(seed_bridge(), seed_path(tmp_path, _sni(value)))  # the path check predicts that stop
    assert (stop.proxy, stop.result.error, stop.result.response_flag) == (
        "gke/istio-egressgateway",
        "NoFilterChain",
        "NR",
    )


def test_negative_twin_the_tasks_sni_passes_lint_and_the_path_check(tmp_path: Path) -> None:
    assert _mb214(_lint(_sni("lambda.external"))) == []
    assert _mb214(_lint(lambda _: None)) == []  # the seed: plain HTTP to the egress gateway
    assert path_findings(seed_bridge(), seed_path(tmp_path, _sni("lambda.external"))) == []


@pytest.mark.parametrize(
    ("case", "codes"), [("egress-mutual-origination-no-sni", ["MB214"]), ("egress-mutual-origination", [])]
)
def test_the_oracle_case_of_the_task_without_its_sni(case: str, codes: list[str]) -> None:
    """The corpus case istiod judges (tests/oracle: its call stops with NR at the egress gateway there too)."""
    report = lint(from_manifests({"mesh": load_documents([CASES / f"{case}.yaml"])}))
    assert [f.code for f in _mb214(report)] == codes
