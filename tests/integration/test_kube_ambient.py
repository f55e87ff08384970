"""Request shapes of an ambient importer: plan sends the waypoint to the Gateway API's path, lists waypoints there
for prune, and keeps a namespace that exists (its ``istio.io/dataplane-mode`` label is then the user's to set)."""

from __future__ import annotations

from typing import Any

import pytest

from meshbridge.kube import PreflightError, plan_bridge, verify_clusters
from meshbridge.kube.preflight import preflight
from tests.integration.conftest import SLEEP_POD, World, exporter_cluster, istio_control_plane
from tests.integration.fakeapi import Call, FakeApiServer

pytestmark = pytest.mark.integration

WAYPOINT = "/apis/gateway.networking.k8s.io/v1/namespaces/istio-egress/gateways/istio-egressgateway"


def ambient(d: dict[str, Any]) -> None:
    d["spec"]["meshes"]["gke"]["dataplane"] = "ambient"
    d["spec"]["meshes"]["gke"]["istio"]["version"] = "1.31.0"  # the fake cluster runs revision 1-17


def patches(server: FakeApiServer, *, dry: bool) -> list[Call]:
    return [c for c in server.calls if c.method == "PATCH" and (c.q("dryRun") == "All") == dry]


def test_plan_sends_the_waypoint_to_the_gateway_api_and_keeps_the_existing_namespaces(world: World) -> None:
    world.with_spec(ambient)
    outcome = plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    gke = {(c.ref.kind, c.ref.api_version, c.ref.name): c for p in outcome.plans if p.mesh == "gke" for c in p.changes}
    waypoint = gke[("Gateway", "gateway.networking.k8s.io/v1", "istio-egressgateway")]
    assert waypoint.action == "create" and "gatewayClassName: istio-waypoint" in waypoint.diff
    assert WAYPOINT in [c.path for c in patches(world.gke, dry=True)]
    assert gke[("Namespace", "v1", "istio-egress")].action == "keep"  # exists, not meshbridge's
    assert ("VirtualService", "networking.istio.io/v1", "direct-lambda-through-egress-gateway") not in gke
    listed = {c.path for c in world.gke.calls if c.method == "GET" and c.q("labelSelector")}
    assert "/apis/gateway.networking.k8s.io/v1/gateways" in listed  # prune finds the waypoints an earlier apply left


def test_a_sidecar_importer_sends_nothing_to_the_gateway_api(world: World) -> None:
    plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    assert not [c for c in world.gke.calls if "gateway.networking.k8s.io" in c.path]


def test_preflight_needs_no_egress_gateway_pod_or_dns_capture_config_for_a_waypoint(world: World) -> None:
    """Before apply there is no waypoint pod (istiod deploys it from the applied Gateway), and ambient's DNS proxy is
    ztunnel's, not the mesh config's proxyMetadata. Its twin: the sidecar importer on that cluster is refused."""
    eks, gke = FakeApiServer("eks").start(), FakeApiServer("gke").start()
    try:
        exporter_cluster(eks)
        istio_control_plane(gke, dns_capture=False)  # no egress gateway pods, no Service, no proxyMetadata
        clients = {"eks": eks.client("kind-eks"), "gke": gke.client("kind-gke")}
        bridge = world.with_spec(ambient)
        report = preflight(bridge, clients)
        gke_checks = [f for f in report.findings if f.mesh == "gke"]
        assert report.passed, [f.message for f in gke_checks if not f.ok]
        assert not [f for f in gke_checks if f.check in ("GatewayPods", "GatewayService", "DnsCapture")]
        with pytest.raises(PreflightError) as refused:
            preflight(world.with_spec(lambda d: None), clients).require()
        assert "GatewayPods" in str(refused.value) and "egress Gateway selects" in str(refused.value)
    finally:
        eks.stop()
        gke.stop()


def test_verify_calls_from_an_app_pod_ztunnel_captures_and_flags_one_it_does_not(world: World) -> None:
    """In an ambient mesh the app has no sidecar: istio-cni marks a captured pod ``ambient.istio.io/redirection:
    enabled``. Without it the call would bypass the waypoint (NotCaptured, with the namespace label to set); with
    it, verify runs the article's curl from the pod."""
    bridge = world.with_spec(ambient)
    path = f"/api/v1/namespaces/{SLEEP_POD[0]}/pods/{SLEEP_POD[1]}"
    pod = world.gke.get(path)
    assert pod is not None
    pod["spec"]["containers"] = [{"name": "sleep", "image": "curlimages/curl"}]  # no istio-proxy in ambient
    [call] = [c for c in verify_clusters(bridge, clients=world.clients()) if c.check == "AppReachesExport"]
    assert (call.status, call.reason) == ("False", "NotCaptured")
    assert "label namespace sleep 'istio.io/dataplane-mode=ambient'" in call.message
    assert call.hop == "gke: app → ztunnel → waypoint → eks ingress gateway → backend"
    pod["metadata"]["annotations"] = {"ambient.istio.io/redirection": "enabled"}
    [call] = [c for c in verify_clusters(bridge, clients=world.clients()) if c.check == "AppReachesExport"]
    assert call.reason not in ("NotCaptured", "NoSidecar")
    assert [c.path for c in world.gke.calls if c.path.endswith("/exec")] == [f"{path}/exec"]


def test_status_counts_the_waypoints_pods_not_the_egress_gateways(world: World) -> None:
    """After apply istiod deploys the waypoint: its pods carry the Gateway's name (gateway.networking.k8s.io/
    gateway-name). Without one Ready the mesh is unhealthy, whatever the old egress gateway's pods."""
    from meshbridge.kube import cluster_status
    from tests.integration.conftest import ready_pod

    bridge = world.with_spec(ambient)
    st = {s.mesh: s for s in cluster_status(bridge, world.clients(), credentials=world.credentials)}
    (waypoint,) = st["gke"].gateways
    assert (waypoint.selector, waypoint.ready, waypoint.total) == (
        "gateway.networking.k8s.io/gateway-name=istio-egressgateway",
        0,
        0,
    )
    assert not st["gke"].healthy
    world.gke.seed(
        ready_pod(
            "istio-egressgateway-5d8f7-x2x9q",
            "istio-egress",
            {"gateway.networking.k8s.io/gateway-name": "istio-egressgateway"},
        )
    )
    st = {s.mesh: s for s in cluster_status(bridge, world.clients(), credentials=world.credentials)}
    assert (st["gke"].gateways[0].ready, st["gke"].gateways[0].total) == (1, 1)
