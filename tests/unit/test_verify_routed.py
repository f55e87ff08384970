"""verify's BackendAnswers follows the exporter gateway's running route: a cluster with no endpoints is False
(503 UH), a cluster that is not the export's backend is Unknown, the export's backend is asked directly."""

from __future__ import annotations

from meshbridge.envoy.pathsim import Hop
from meshbridge.envoy.simulate import Request, Result
from meshbridge.verify.local import _routed_elsewhere
from tests.builders import seed_bridge

EX = seed_bridge().spec.exports[0]


def _hop(cluster: str, flag: str | None = None) -> Hop:
    error, status = ("NoHealthyUpstream", 503) if flag else (None, None)
    result = Result(cluster=cluster, error=error, status=status, response_flag=flag)
    return Hop(EX.name, "gke/sleep", "eks/istio-ingressgateway", Request(8443, EX.host, "/hello-world"), result)


def test_a_cluster_without_endpoints_is_a_failed_backend_naming_the_cluster_and_the_fix() -> None:
    c = _routed_elsewhere(EX, _hop("outbound|80||hello.default.svc.cluster.local", "UH"))
    assert c is not None and (c.check, c.status, c.reason) == ("BackendAnswers", "False", "NoEndpoints")
    assert "eks/istio-ingressgateway routes GET /hello-world for lambda.external to outbound|80||hello" in c.message
    assert f"Fix: route the export's VirtualService to its backend {EX.backend.host}" in c.message


def test_another_host_with_endpoints_is_unknown_and_the_exports_backend_is_asked() -> None:
    other = _routed_elsewhere(EX, _hop("outbound|80||hello.default.svc.cluster.local"))
    assert other is not None and (other.status, other.reason) == ("Unknown", "NotTheExportBackend")
    assert f"not to the export's backend {EX.backend.host}" in other.message
    # the negative twin: the export's own backend, reached, is asked directly (no condition here)
    assert _routed_elsewhere(EX, _hop(f"outbound|{EX.backend.port}||{EX.backend.host}")) is None
    assert _routed_elsewhere(EX, None) is None


def test_the_exports_own_backend_without_endpoints_says_the_twin_runs_no_pods_for_a_service() -> None:
    c = _routed_elsewhere(EX, _hop(f"outbound|{EX.backend.port}||{EX.backend.host}", "UH"))
    assert c is not None and (c.status, c.reason) == ("False", "NoEndpoints")
    assert "the export's backend, which has no endpoints in the twin: Envoy answers 503 UH" in c.message
    assert "runs no pods for a Kubernetes Service" in c.message and "the Service's pods answer" in c.message
    assert "route the export's VirtualService" not in c.message  # it already does: no circular fix
    # the negative twin: another host without endpoints is still told to route to the export's backend
    other = _routed_elsewhere(EX, _hop("outbound|80||hello.default.svc.cluster.local", "UH"))
    assert other is not None and "runs no pods for a Kubernetes Service" not in other.message
