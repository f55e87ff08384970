"""An importer whose cluster to the exporter originates ISTIO_MUTUAL (a ``portLevelSettings`` entry for the app's
port, which replaces the top-level MUTUAL tls whole, or the top-level tls itself): it presents its mesh's workload
certificate and verifies the exporter with its mesh's root, so lint's MB306 and the path check (503 ``UF`` at the
importer's egress gateway) say so, in the same words. Twins: MUTUAL with the credentialName in that entry, and
ISTIO_MUTUAL on the sidecar -> egress gateway hop (Istio's egress mutual-TLS task)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshbridge.envoy.handshake import MESH_IDENTITY
from meshbridge.envoy.pathsim import Hop, path_findings
from meshbridge.lint import LintReport
from tests.builders import seed_bridge
from tests.istio_builders import istio_mutual_egress, seed_path
from tests.lint_builders import Docs, doc, lint_docs, seed_docs

EGRESS, INGRESS = "gke/istio-egressgateway", "eks/istio-ingressgateway"
ISTIO_MUTUAL = {"mode": "ISTIO_MUTUAL"}
WITH_SNI = {"mode": "ISTIO_MUTUAL", "sni": "lambda.external"}


def _policy(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]


def port_level(tls: dict[str, str]) -> Callable[[Docs], None]:
    """The seed's MUTUAL tls moved to the top level, the port-level entry for port 80 set to ``tls``."""

    def edit(docs: Docs) -> None:
        policy = _policy(docs)
        entry = policy["portLevelSettings"][0]
        policy["tls"] = entry["tls"]
        entry["tls"] = dict(tls)

    return edit


def top_level(docs: Docs) -> None:
    """ISTIO_MUTUAL at the top level, no port-level entry."""
    policy = _policy(docs)
    policy.pop("portLevelSettings")
    policy["tls"] = dict(WITH_SNI)


def _lint(edit: Callable[[Docs], None]) -> LintReport:
    docs = seed_docs()
    edit(docs)
    return lint_docs(docs)


def _mb306(report: LintReport) -> Any:
    (found,) = [f for f in report.findings if f.code == "MB306"]
    return found


def test_port_level_istio_mutual_is_mb306_on_that_entry_with_istiods_sni() -> None:
    report = _lint(port_level(ISTIO_MUTUAL))
    f = _mb306(report)
    assert f.severity == "error"
    assert f.objects[0].field == "spec.trafficPolicy.portLevelSettings[0].tls"
    said = f.message
    assert said.startswith(
        "DestinationRule istio-egress/dr-lambda-ext spec.trafficPolicy.portLevelSettings[0].tls (port 80) says "
        "ISTIO_MUTUAL (it replaces the top-level tls whole, istiod's MergeTrafficPolicy)"
    )
    assert "presents its own mesh's workload certificate (SDS default" in said
    assert "against that mesh's root (ROOTCA)" in said
    assert "it sends SNI outbound_.80_._.lambda.external (istiod's for ISTIO_MUTUAL when the rule sets no sni)" in said
    assert f.fix.startswith(
        "set DestinationRule istio-egress/dr-lambda-ext spec.trafficPolicy.portLevelSettings[0].tls to mode: MUTUAL "
        "with the bridge's credentialName and sni"
    )
    assert "MB303" not in report.codes()  # the SNI is the mode's, not a mistake of its own


def test_port_level_istio_mutual_with_the_exported_sni_is_refused_on_the_servers_certificate() -> None:
    f = _mb306(_lint(port_level(WITH_SNI)))
    assert "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate" in f.message
    assert "it sends SNI" not in f.message


def test_top_level_istio_mutual_is_mb306_on_the_top_level_tls() -> None:
    f = _mb306(_lint(top_level))
    assert f.objects[0].field == "spec.trafficPolicy.tls"
    assert "spec.trafficPolicy.tls (port 80) says ISTIO_MUTUAL, but eks/istio-ingressgateway" in f.message
    assert "replaces" not in f.message.split(":")[0]


def test_negative_twin_the_port_level_entry_with_mutual_and_its_credential_is_clean() -> None:
    edit = port_level({"mode": "MUTUAL", "credentialName": "mtls-credential", "sni": "lambda.external"})
    codes = _lint(edit).codes()
    assert "MB306" not in codes and "MB303" not in codes


def test_negative_twin_istio_mutual_from_the_sidecar_to_the_egress_gateway_is_no_mb306() -> None:
    """Istio's egress mutual-TLS task: ISTIO_MUTUAL inside the mesh, MUTUAL from the egress gateway out."""
    assert "MB306" not in _lint(istio_mutual_egress).codes()


def _stops(tmp: Path, edit: Callable[[Docs], None]) -> list[Hop]:
    return path_findings(seed_bridge(), seed_path(tmp, edit))


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (port_level(ISTIO_MUTUAL), "which selects no filter chain of eks/istio-ingressgateway"),
        (port_level(WITH_SNI), "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"),
        (top_level, "CERTIFICATE_VERIFY_FAILED: unable to get local issuer certificate"),
    ],
)
def test_the_path_check_stops_the_egress_gateway_with_503_uf(
    tmp_path: Path, edit: Callable[[Docs], None], said: str
) -> None:
    stop = next(h for h in _stops(tmp_path, edit) if h.proxy == EGRESS)
    r = stop.result
    assert (r.error, r.status, r.response_flag) == (MESH_IDENTITY, 503, "UF")
    assert r.detail.startswith(f"{EGRESS} originates ISTIO_MUTUAL on outbound|80||lambda.external")
    assert said in r.detail
    assert "Fix: set the tls of the importer's DestinationRule for lambda.external port 80 to mode: MUTUAL" in r.detail


def test_the_path_check_and_lint_give_the_same_explanation(tmp_path: Path) -> None:
    stop = next(h for h in _stops(tmp_path, port_level(WITH_SNI)) if h.proxy == EGRESS)
    why = stop.result.detail.split(". Fix: ")[0]
    assert why in _mb306(_lint(port_level(WITH_SNI))).message


def test_negative_twin_the_path_check_passes_mutual_in_the_port_level_entry(tmp_path: Path) -> None:
    edit = port_level({"mode": "MUTUAL", "credentialName": "mtls-credential", "sni": "lambda.external"})
    assert _stops(tmp_path, edit) == []


def test_negative_twin_the_path_check_passes_istio_mutual_to_the_egress_gateway(tmp_path: Path) -> None:
    assert _stops(tmp_path, istio_mutual_egress) == []
