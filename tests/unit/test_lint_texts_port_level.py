"""Lint texts that must say what istiod and the gateway really do: MB306 on a DestinationRule whose port-level
setting for the port sets no tls (it replaces the top-level tls whole, istiod's MergeTrafficPolicy), and MB112 on
a server port the gateway Service does not expose (the load balancer does not forward it; a privileged listener
binds only where the pod may bind it, as the istio/gateway chart's sysctl allows), and translate's warning on a
privileged listener, which says the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from meshbridge.lint import LintReport
from tests.builders import bridge_from, seed_dict
from tests.istio_builders import proxy_config, rendered_config
from tests.lint_builders import Docs, doc, lint_docs, seed_docs


def _dr(docs: Docs) -> dict[str, Any]:
    return doc(docs, "gke", "DestinationRule", "dr-lambda-ext")["spec"]["trafficPolicy"]


def _only(report: LintReport, code: str) -> Any:
    (found,) = [f for f in report.findings if f.code == code]
    return found


def test_mb306_names_the_port_level_entry_that_replaced_the_top_level_tls() -> None:
    docs = seed_docs()
    policy = _dr(docs)
    policy["tls"] = policy["portLevelSettings"][0].pop("tls")  # top-level MUTUAL; port 80's entry keeps its pool
    f = _only(lint_docs(docs), "MB306")
    assert f.objects[0].field == "spec.trafficPolicy.portLevelSettings[0]"
    assert (
        "DestinationRule istio-egress/dr-lambda-ext spec.trafficPolicy.portLevelSettings[0] (port 80) sets no tls, "
        "and a port-level setting replaces the policy above it whole (istiod's MergeTrafficPolicy), so the "
        "top-level tls does not apply to this port" in f.message
    )
    assert f.fix == (
        "add tls: {mode: MUTUAL, credentialName: <Secret>, sni: lambda.external} to "
        "spec.trafficPolicy.portLevelSettings[0]"
    )


def test_negative_twin_top_level_tls_without_a_port_level_entry_is_plain_mb306_free() -> None:
    docs = seed_docs()
    policy = _dr(docs)
    policy["tls"] = policy.pop("portLevelSettings")[0]["tls"]
    assert "MB306" not in lint_docs(docs).codes()


def test_mb306_without_any_tls_still_asks_for_a_destination_rule() -> None:
    """The other twin: no port-level entry and no tls at all is the plain message, not the replaced one."""
    docs = seed_docs()
    _dr(docs).pop("portLevelSettings")
    f = _only(lint_docs(docs), "MB306")
    assert "port-level" not in f.message
    assert f.fix.startswith("add a DestinationRule for lambda.external port 80 with tls: {mode: MUTUAL")


def _gateway_port(number: int) -> LintReport:
    docs = seed_docs()
    doc(docs, "gke", "Gateway", "istio-egressgateway")["spec"]["servers"][0]["port"]["number"] = number
    return lint_docs(docs)


def test_mb112_on_a_privileged_port_says_the_balancer_and_both_kinds_of_gateway_pod() -> None:
    f = _only(_gateway_port(81), "MB112")
    said = " ".join(f.message.split())
    assert "the load balancer does not forward port 81, so no client outside the cluster reaches this server" in said
    assert "the istio/gateway chart's pods bind it" in said and "net.ipv4.ip_unprivileged_port_start=0" in said
    assert "a non-root gateway without that sysctl" in said and "rejects its whole listener update" in said


def test_mb112_above_1024_is_the_balancer_alone() -> None:
    f = _only(_gateway_port(8081), "MB112")
    assert "the load balancer does not forward port 8081" in f.message
    assert "sysctl" not in f.message


def test_negative_twin_a_port_the_service_exposes_is_no_mb112() -> None:
    assert "MB112" not in _gateway_port(80).codes()


def _egress_warnings(tmp_path: Path, target: int) -> list[str]:
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["egressGateway"]["ports"] = [
        {"name": "status-port", "port": 15021, "targetPort": 15021},
        {"name": "http2", "port": 80, "targetPort": target},
        {"name": "https", "port": 443, "targetPort": 8443},
    ]
    bridge = bridge_from(d)
    pc = proxy_config(rendered_config("gke", bridge), "gke/istio-egressgateway", tmp_path, bridge)
    return [w.message for w in pc.warnings if "privileged" in w.message]


def test_translate_on_a_privileged_target_port_says_which_gateway_pods_bind_it(tmp_path: Path) -> None:
    (said,) = _egress_warnings(tmp_path, 80)  # the istio/gateway chart's own mapping, 80→80
    assert said.startswith("listener 0.0.0.0_80 binds a privileged port: the istio/gateway chart's pods can")
    assert "a non-root gateway pod without it (the IstioOperator's) cannot" in said


def test_negative_twin_an_unprivileged_target_port_is_no_warning(tmp_path: Path) -> None:
    assert _egress_warnings(tmp_path, 8080) == []
