"""Request shapes: what meshbridge makes the official client send, recorded by an in-process API server.

These prove the requests (paths, verbs, content types, ``fieldManager``, ``dryRun``, label selectors,
delete preconditions) and the error handling, not a cluster's behaviour; ``tests/cluster`` does that.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from meshbridge.errors import KubeError
from meshbridge.kube import (
    ApplyError,
    ConflictError,
    KubeApiError,
    PreflightError,
    apply_bridge,
    cluster_status,
    connect,
    delete_bridge,
    gateway_pods,
    plan_bridge,
    preflight,
    resolve_contexts,
    verify_clusters,
)
from meshbridge.kube.apply import wait_for_routes
from meshbridge.kube.client import KubeClient, fetch_config_dump
from meshbridge.kube.resources import ResourceRef
from meshbridge.kube.verify import CLUSTER_FAILURES
from tests.builders import bridge_from, seed_dict
from tests.integration.conftest import (
    BRIDGE,
    EGRESS_POD,
    EGRESS_ROUTE,
    INGRESS_POD,
    INGRESS_ROUTE,
    LB_HOST,
    SELECTOR,
    SLEEP_POD,
    World,
    ready_pod,
    routes_dump,
)
from tests.integration.fakeapi import Call, ExecAnswer, FakeApiServer

pytestmark = pytest.mark.integration

ISTIO = "/apis/networking.istio.io/v1beta1"  # the seed spec runs Istio 1.17
VS_IMPORTER = f"{ISTIO}/namespaces/istio-egress/virtualservices/direct-lambda-through-egress-gateway"


def apply_calls(server: FakeApiServer, *, dry: bool) -> list[Call]:
    return [c for c in server.calls if c.method == "PATCH" and (c.q("dryRun") == "All") == dry]


def run_apply(world: World, **kw: Any) -> Any:
    kw.setdefault("timeout", 5.0)
    return apply_bridge(world.bridge, world.clients(), credentials=world.credentials, **kw)


# -- plan ------------------------------------------------------------------------------------------------


def test_plan_sends_only_server_side_dry_runs_and_writes_nothing(world: World) -> None:
    before = {k: dict(v) for k, v in world.eks.objects.items()}
    outcome = plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    for server in (world.eks, world.gke):
        assert apply_calls(server, dry=False) == []
        assert not [c for c in server.calls if c.method == "DELETE"]
        dry = apply_calls(server, dry=True)
        assert dry, server.name
        for c in dry:
            assert c.content_type == "application/apply-patch+yaml"
            assert c.q("fieldManager") == "meshbridge"
            assert c.q("force") is None
    assert world.eks.objects.keys() == before.keys()
    eks = {(c.ref.kind, c.ref.name): c for c in outcome.plans[0].changes}
    assert outcome.plans[0].mesh == "eks"  # exporters first
    assert eks[("Namespace", "istio-ingress")].action == "keep"  # pre-existing, not ours: never taken over
    assert eks[("Gateway", "eastwestgateway")].action == "create"
    assert "credentialName: mtls-credential" in eks[("Gateway", "eastwestgateway")].diff


def test_plan_never_prints_secret_values(world: World) -> None:
    outcome = plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    secrets = [c for p in outcome.plans for c in p.changes if c.ref.kind == "Secret"]
    assert secrets
    for c in secrets:
        assert "<redacted" in c.diff
        assert "LS0t" not in c.diff  # base64 of '---' (PEM); no value leaks
        assert "PRIVATE KEY" not in c.diff


def test_plan_marks_a_field_manager_conflict_from_the_dry_run(world: World) -> None:
    run_apply(world)
    world.gke.fail(
        "PATCH",
        r"/destinationrules/dr-lambda-ext$",
        409,
        message='Apply failed with 1 conflict: conflict with "kubectl-edit" using networking.istio.io/v1beta1: '
        ".spec.trafficPolicy",
    )
    outcome = plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    [conflict] = outcome.conflicts
    assert conflict.ref.name == "dr-lambda-ext" and "kubectl-edit" in conflict.reason


# -- apply -----------------------------------------------------------------------------------------------


def test_apply_uses_server_side_apply_in_apply_order(world: World) -> None:
    lines: list[str] = []
    outcome = run_apply(world, progress=lines.append)
    eks = apply_calls(world.eks, dry=False)
    kinds = [re.sub(r".*/(\w+)/[^/]+$", r"\1", c.path) for c in eks]
    assert kinds == [
        "secrets",
        "serviceentries",
        "destinationrules",
        "authorizationpolicies",  # in place before the Gateway's listener opens
        "gateways",
        "virtualservices",
        "envoyfilters",
    ]
    for c in eks + apply_calls(world.gke, dry=False):
        assert c.content_type == "application/apply-patch+yaml"
        assert c.q("fieldManager") == "meshbridge" and c.q("force") is None and c.q("dryRun") is None
        assert c.body["metadata"]["labels"]["meshbridge.io/bridge"] == BRIDGE
    assert f"{ISTIO}/namespaces/istio-ingress/gateways/eastwestgateway" in [c.path for c in eks]
    assert "/api/v1/namespaces/istio-ingress" not in [c.path for c in eks]  # existing Namespace left alone
    # exporters first: every eks write happened before the first gke write
    first_gke = next(i for i, line in enumerate(lines) if line.startswith("gke (kind-gke): created"))
    assert all(i < first_gke for i, line in enumerate(lines) if line.startswith("eks (kind-eks): created"))
    assert [r.mesh for r in outcome.results] == ["eks", "gke"]
    assert outcome.results[0].count("created") == 7  # the AuthorizationPolicy and the edge-limits EnvoyFilter


def test_apply_discovers_the_exporters_load_balancer_address(world: World) -> None:
    run_apply(world)
    se = world.gke.get(f"{ISTIO}/namespaces/istio-egress/serviceentries/se-lambda-ext")
    assert se is not None
    assert se["spec"]["endpoints"] == [{"address": LB_HOST, "ports": {"http": 443}}]


def test_apply_without_a_load_balancer_address_says_how_to_set_it(world: World) -> None:
    svc = world.eks.get("/api/v1/namespaces/istio-ingress/services/istio-ingressgateway")
    assert svc is not None
    svc["status"]["loadBalancer"]["ingress"] = []
    with pytest.raises(PreflightError) as e:
        run_apply(world)
    assert "no load-balancer address" in str(e.value)
    assert "spec.meshes.eks.ingressGateway.address" in str(e.value)
    assert not world.gke.writes() and not world.eks.writes()


def test_gateway_pods_then_config_dump_is_what_proxy_config_prints(world: World) -> None:
    clients = world.clients()
    [pod] = gateway_pods(world.bridge, "eks", "ingress", clients["eks"])
    dump = fetch_config_dump(clients["eks"], pod["metadata"]["namespace"], pod["metadata"]["name"])
    assert dump["configs"][1]["dynamic_route_configs"][0]["route_config"]["name"] == INGRESS_ROUTE
    assert world.eks.admin_requests[-1] == (*INGRESS_POD, "/config_dump")
    with pytest.raises(KubeError, match="no egress gateway"):
        gateway_pods(world.bridge, "eks", "egress", clients["eks"])


def test_apply_waits_for_the_routes_through_the_port_forward(world: World) -> None:
    run_apply(world)
    assert (*INGRESS_POD, "/config_dump?mask=dynamic_route_configs") in world.eks.admin_requests
    assert (*EGRESS_POD, "/config_dump?mask=dynamic_route_configs") in world.gke.admin_requests
    pf = [c for c in world.eks.calls if c.path.endswith("/portforward")]
    assert pf and pf[0].path == f"/api/v1/namespaces/{INGRESS_POD[0]}/pods/{INGRESS_POD[1]}/portforward"
    assert pf[0].q("ports") == "15000"


def test_apply_times_out_naming_the_missing_route(world: World) -> None:
    world.gke.config_dumps[EGRESS_POD] = routes_dump((EGRESS_ROUTE, []))  # blackhole only: VS not bound yet
    lines: list[str] = []
    with pytest.raises(KubeError) as e:
        run_apply(world, timeout=1.0, progress=lines.append)
    text = str(e.value)
    assert "everything was applied" in text and EGRESS_ROUTE in text and "lambda.external" in text
    assert EGRESS_POD[1] in text and "proxy-status" in text
    assert any(line.startswith("routes: waiting") for line in lines)


NO_HOST = f"pod {INGRESS_POD[1]} does not have a host assigned"  # kube-apiserver's 400 without a kubelet


def test_a_port_forward_the_server_refuses_for_good_stops_the_wait_at_once(world: World) -> None:
    world.eks.fail("GET", r"/portforward$", 400, reason="BadRequest", message=NO_HOST)
    lines: list[str] = []
    with pytest.raises(KubeError) as e:
        run_apply(world, timeout=30.0, progress=lines.append)
    text = str(e.value)
    assert "everything was applied, but the gateways' routes cannot be checked" in text and NO_HOST in text
    assert "not scheduled on a node" in text and "--no-wait" in text and "Re-run with a longer" not in text
    assert len([c for c in world.eks.calls if c.path.endswith("/portforward")]) == 1  # asked once, not retried
    assert not [line for line in lines if line.startswith("routes: waiting")]
    # the twin: a refusal that passes (503, once) is waited out, and the routes are then found
    world.eks.faults.clear()
    world.eks.fail("GET", r"/portforward$", 503, times=1)
    lines.clear()
    run_apply(world, timeout=30.0, progress=lines.append)
    assert [line for line in lines if line.startswith("routes: waiting")] and lines[-1].startswith("routes: every")


def test_the_wait_prints_a_line_only_when_what_is_lacking_changes(world: World) -> None:
    outcome = run_apply(world, wait=False)
    world.gke.config_dumps[EGRESS_POD] = routes_dump((EGRESS_ROUTE, []))  # blackhole only: VS not bound yet
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        if now[0] == 20.0:  # the egress route appears after 10 polls; the ingress pod then lacks one
            world.gke.config_dumps.pop(EGRESS_POD)
            world.eks.config_dumps[INGRESS_POD] = routes_dump()

    lines: list[str] = []
    with pytest.raises(KubeError, match="after 40s the gateways still lack routes"):
        wait_for_routes(
            world.bridge,
            world.clients(),
            outcome.plan.manifests,
            outcome.plan.report.facts,
            timeout=40.0,
            progress=lines.append,
            clock=lambda: now[0],
            sleep=sleep,
        )
    assert len(lines) == 2, lines  # 20 polls, two states: a line each, not one per poll
    assert EGRESS_POD[1] in lines[0] and lines[0].startswith("routes: waiting (0s/40s)")
    assert INGRESS_POD[1] in lines[1] and lines[1].startswith("routes: waiting (20s/40s)")


def test_second_apply_converges_without_writes(world: World) -> None:
    run_apply(world)
    for s in (world.eks, world.gke):
        s.calls.clear()
    outcome = run_apply(world)
    assert apply_calls(world.eks, dry=False) == [] and apply_calls(world.gke, dry=False) == []
    assert all(r.count("created") == r.count("configured") == r.count("pruned") == 0 for r in outcome.results)


def test_refuses_objects_it_does_not_own_unless_forced(world: World) -> None:
    world.eks.seed(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "Gateway",
            "metadata": {"name": "eastwestgateway", "namespace": "istio-ingress"},  # the article's, by hand
            "spec": {"selector": {"istio": "ingressgateway"}, "servers": []},
        }
    )
    with pytest.raises(ConflictError) as e:
        run_apply(world)
    assert "Gateway istio-ingress/eastwestgateway" in str(e.value) and "--force-conflicts" in str(e.value)
    assert apply_calls(world.eks, dry=False) == [] and apply_calls(world.gke, dry=False) == []
    run_apply(world, force_conflicts=True)
    forced = [c for c in apply_calls(world.eks, dry=False) if c.path.endswith("/gateways/eastwestgateway")]
    assert forced and forced[0].q("force") == "true"


def test_another_bridges_object_is_a_conflict(world: World) -> None:
    world.gke.seed(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": "mtls-credential",
                "namespace": "istio-egress",
                "labels": {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "orders"},
            },
        }
    )
    with pytest.raises(ConflictError, match="belongs to bridge 'orders'"):
        run_apply(world)


# -- prune and delete: ownership labels only, never Namespaces -------------------------------------------


def owned(doc: dict[str, Any], bridge: str = BRIDGE) -> dict[str, Any]:
    doc["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": bridge}
    return doc


def vs(name: str, ns: str = "istio-ingress") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "VirtualService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {},
    }


def test_prune_deletes_only_owned_objects_no_longer_rendered(world: World) -> None:
    world.eks.seed(
        owned(vs("vs-old-export")),
        owned(vs("vs-of-orders"), "orders"),
        vs("vs-by-hand"),
        owned({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "old-ns"}}),
    )
    stale = world.eks.get(f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-old-export")
    assert stale is not None
    outcome = run_apply(world)
    deletes = [c for c in world.eks.calls if c.method == "DELETE"]
    assert [c.path for c in deletes] == [f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-old-export"]
    assert deletes[0].body["preconditions"] == {"uid": stale["metadata"]["uid"]}
    assert world.eks.get(f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-of-orders")
    assert world.eks.get(f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-by-hand")
    assert world.eks.get("/api/v1/namespaces/old-ns")
    lists = [c for s in (world.eks, world.gke) for c in s.calls if c.method == "GET" and c.q("labelSelector")]
    owned_lists = [c for c in lists if "managed-by" in (c.q("labelSelector") or "")]
    assert owned_lists and all(c.q("labelSelector") == SELECTOR for c in owned_lists)
    assert outcome.results[0].count("pruned") == 1


def test_delete_removes_only_this_bridges_objects_and_keeps_namespaces(world: World) -> None:
    run_apply(world)
    world.eks.seed(owned(vs("vs-of-orders"), "orders"), vs("vs-by-hand"))
    world.gke.seed(owned({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sleep2"}}))
    results = delete_bridge(world.bridge, world.clients())
    assert [r.mesh for r in results] == ["gke", "eks"]  # importers first
    for server in (world.eks, world.gke):
        deletes = [c for c in server.calls if c.method == "DELETE"]
        assert deletes and all(c.body["preconditions"]["uid"] for c in deletes)
        assert not [c for c in deletes if re.fullmatch(r"/api/v1/namespaces/[^/]+", c.path)]
        assert not [
            p
            for p, o in server.objects.items()
            if (o["metadata"].get("labels") or {}).get("meshbridge.io/bridge") == BRIDGE and o["kind"] != "Namespace"
        ]
    assert world.eks.get(f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-of-orders")
    assert world.eks.get(f"{ISTIO}/namespaces/istio-ingress/virtualservices/vs-by-hand")
    assert world.gke.get("/api/v1/namespaces/sleep2")


def test_delete_dry_run_removes_nothing(world: World) -> None:
    run_apply(world)
    count = len(world.eks.objects)
    delete_bridge(world.bridge, world.clients(), dry_run=True)
    deletes = [c for c in world.eks.calls if c.method == "DELETE"]
    # in the DeleteOptions body: the API server ignores the query string when a body is sent
    assert deletes and all(c.body["dryRun"] == ["All"] and c.body["preconditions"]["uid"] for c in deletes)
    assert len(world.eks.objects) == count
    # the twin: without dry_run the same deletes carry no dryRun and remove the objects
    world.eks.calls.clear()
    delete_bridge(world.bridge, world.clients())
    deletes = [c for c in world.eks.calls if c.method == "DELETE"]
    assert deletes and all("dryRun" not in c.body for c in deletes) and len(world.eks.objects) < count


# -- errors: named, translated, and a partial apply reported precisely -----------------------------------


@pytest.mark.parametrize(
    ("status", "reason", "text"),
    [
        (403, "Forbidden", "403 Forbidden"),
        (404, "NotFound", "404 NotFound"),
        (409, "Conflict", "409 Conflict"),
        (422, "Invalid", "422 Invalid"),
    ],
)
def test_failure_in_the_second_mesh_reports_what_landed(world: World, status: int, reason: str, text: str) -> None:
    world.gke.fail(
        "PATCH",
        r"/virtualservices/direct-lambda-through-egress-gateway$",
        status,
        reason=reason,
        message="spec.http[0].route: Required value" if status == 422 else "injected",
        dry_run=False,  # the plan's dry run passes; the real write fails
    )
    with pytest.raises(ApplyError) as e:
        run_apply(world, wait=False)
    msg = str(e.value)
    assert "'kind-gke'" in msg and "VirtualService istio-egress/direct-lambda-through-egress-gateway" in msg
    assert text in msg
    assert "eks (kind-eks): 7 created" in msg
    assert "gke (kind-gke): landed: Secret istio-egress/mtls-credential" in msg
    assert "FAILED at VirtualService istio-egress/direct-lambda-through-egress-gateway" in msg
    assert "re-run 'meshbridge apply'" in msg
    assert e.value.results[0].count("created") == 7  # the AuthorizationPolicy and the edge-limits EnvoyFilter
    assert e.value.results[1].failed == ResourceRef(
        "networking.istio.io/v1beta1", "VirtualService", "istio-egress", "direct-lambda-through-egress-gateway"
    )
    # the fix: the fault goes away; a re-run converges
    world.gke.faults.clear()
    outcome = run_apply(world, wait=False)
    assert outcome.results[0].count("created") == 0 and outcome.results[1].count("created") == 1


@pytest.mark.parametrize(
    ("status", "expect"),
    [
        (401, "credentials of this context were rejected"),
        (403, "grant the verb"),
        (404, None),
        (409, "--force-conflicts"),
        (422, "metadata.name: Invalid value"),
        (500, "the API server failed"),
    ],
)
def test_api_errors_become_kube_errors_naming_context_and_object(status: int, expect: str | None) -> None:
    server = FakeApiServer().start()
    try:
        server.fail(
            "GET",
            "/secrets/",
            status,
            message="boom",
            causes=[{"field": "metadata.name", "message": "Invalid value"}] if status == 422 else None,
        )
        client = server.client("prod-eu")
        ref = ResourceRef("v1", "Secret", "istio-ingress", "mtls-credential")
        if status == 404:
            assert client.get(ref) is None  # absence is an answer, not an error
            return
        with pytest.raises(KubeApiError) as e:
            client.get(ref)
        assert e.value.status == status and e.value.context == "prod-eu"
        assert "'prod-eu'" in str(e.value) and "Secret istio-ingress/mtls-credential" in str(e.value)
        assert expect is not None and expect in str(e.value)
    finally:
        server.stop()


def test_timeouts_and_unreachable_servers_become_kube_errors() -> None:
    server = FakeApiServer().start()
    try:
        server.fail("PATCH", "/gateways/", 200, delay=2.0)
        client = server.client("slow", request_timeout=0.3)
        doc = {
            "apiVersion": "networking.istio.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "gw", "namespace": "ns"},
        }
        with pytest.raises(KubeApiError) as e:
            client.apply(doc)
        assert e.value.status == 0 and e.value.reason == "Timeout"
        assert "'slow'" in str(e.value) and "Gateway ns/gw" in str(e.value) and "--request-timeout" in str(e.value)
    finally:
        server.stop()
    gone = FakeApiServer().start()
    gone.stop()
    with pytest.raises(KubeApiError) as e2:
        gone.client("down", request_timeout=1).version()
    assert e2.value.status == 0 and "'down'" in str(e2.value) and "could not be reached" in str(e2.value)


def test_no_kubernetes_exception_escapes_a_public_call(world: World) -> None:
    """Every public entry point, against a cluster that answers 500 to everything, raises only KubeErrors."""
    for server in (world.eks, world.gke):
        server.fail("GET", ".*", 500)
        server.fail("PATCH", ".*", 500)
        server.fail("DELETE", ".*", 500)
    clients = world.clients()
    calls = [
        lambda: plan_bridge(world.bridge, clients, credentials=world.credentials),
        lambda: run_apply(world),
        lambda: delete_bridge(world.bridge, clients),
        lambda: clients["eks"].exec("sleep", "x", ["true"]),
        lambda: fetch_config_dump(clients["eks"], *INGRESS_POD),
        lambda: KubeClient.from_kubeconfig("nope", kubeconfig=world.tmp / "missing-kubeconfig"),
    ]
    for call in calls:
        with pytest.raises(KubeError):
            call()
    for st in cluster_status(world.bridge, clients, credentials=world.credentials):
        assert "500" in st.error
    conditions = verify_clusters(world.bridge, clients=clients)
    assert conditions and all(c.status == "Unknown" for c in conditions)
    ran = [c for c in conditions if not c.not_run]
    assert {c.reason for c in ran} <= CLUSTER_FAILURES  # the CLI exits 2 for them, as for plan's 500
    assert {c.name for c in ran} == {"ClusterReachable[eks]", "ClusterReachable[gke]"}
    # the checks of an unreachable cluster are listed, not run, instead of left out
    assert {(c.name, c.reason) for c in conditions if c.not_run} == {
        ("IngressGatewayRoutes[eks]", "NotRunWithoutClusterReachable"),
        ("EgressGatewayRoutes[gke]", "NotRunWithoutClusterReachable"),
        ("AppReachesExport[lambda → gke]", "NotRunWithoutClusterReachable"),
    }


def test_a_failed_request_while_verifying_is_a_cluster_failure_a_failed_check_is_not(world: World) -> None:
    world.gke.fail("GET", ".*/deployments/.*", 403)  # the app's Deployment cannot be read
    [call] = [c for c in verify_clusters(world.bridge, clients=world.clients()) if c.check == "AppReachesExport"]
    assert (call.status, call.reason) == ("Unknown", "ClusterRequestFailed") and call.reason in CLUSTER_FAILURES
    assert "403" in call.message and "kind-gke" in call.message
    # twins: the cluster answered, the path is broken (a missing route) or the workload has no curl
    world.gke.faults.clear()
    world.eks.config_dumps[INGRESS_POD] = routes_dump()
    world.gke.exec_handler = lambda *_: ExecAnswer("", 'exec: "curl": executable file not found', 126)
    conditions = verify_clusters(world.bridge, clients=world.clients())
    assert not [c for c in conditions if c.reason in CLUSTER_FAILURES], conditions
    assert any(c.reason == "RouteMissing" for c in conditions)
    # a gateway pod the port-forward cannot reach (no host assigned) was not read: Unknown, not RouteMissing
    world.eks.fail("GET", r"/portforward$", 400, reason="BadRequest", message=NO_HOST)
    [routes] = [c for c in verify_clusters(world.bridge, clients=world.clients()) if c.check == "IngressGatewayRoutes"]
    assert (routes.status, routes.reason) == ("Unknown", "CannotReadGateway") and routes.reason in CLUSTER_FAILURES
    assert (
        NO_HOST in routes.message and "not scheduled on a node" in routes.message and "selector" not in routes.message
    )


# -- contexts: only the meshes a command needs; messages name the kubeconfig -----------------------------


def kubeconfig_with(world: World, **contexts: str) -> Any:
    import yaml

    path = world.tmp / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": n, "cluster": {"server": url}} for n, url in contexts.items()],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "u"}} for n in contexts],
            }
        )
    )
    return path


def test_connect_looks_up_only_the_contexts_of_the_meshes_asked_for(world: World) -> None:
    kubeconfig = kubeconfig_with(world, CTX_A=world.eks.url)
    clients = connect(world.bridge, {"eks": "CTX_A"}, meshes=["eks"], kubeconfig=kubeconfig)
    try:
        assert list(clients) == ["eks"] and clients["eks"].context == "CTX_A"
        clients["eks"].version()
    finally:
        for c in clients.values():
            c.close()
    assert [c.path for c in world.eks.calls] == ["/version"] and world.gke.calls == []
    no_gke_context = seed_dict()
    del no_gke_context["spec"]["meshes"]["gke"]["context"]
    assert resolve_contexts(bridge_from(no_gke_context), {}, ["eks"]) == {"eks": "eks-cluster"}
    with pytest.raises(KubeError, match="'gke' have no cluster"):
        resolve_contexts(bridge_from(no_gke_context), {})
    # twin: every mesh (the default) needs gke's context too, which this kubeconfig lacks
    with pytest.raises(KubeError) as e:
        connect(world.bridge, {"eks": "CTX_A"}, kubeconfig=kubeconfig)
    assert f"kubeconfig {kubeconfig} (--kubeconfig) has no context 'gke-cluster' (mesh gke, from " in str(e.value)
    assert "its contexts: CTX_A" in str(e.value)
    with pytest.raises(KubeError, match="'nomesh' that the bridge does not define"):
        connect(world.bridge, {"nomesh": "x"}, meshes=["eks"], kubeconfig=kubeconfig)


def test_from_kubeconfig_names_the_file_and_the_contexts_it_has(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = kubeconfig_with(world, a=world.eks.url, b=world.gke.url)
    with pytest.raises(KubeError) as e:
        KubeClient.from_kubeconfig("c", kubeconfig=kubeconfig)
    assert f"kubeconfig {kubeconfig} (--kubeconfig) has no context 'c'; its contexts: a, b" in str(e.value)
    monkeypatch.setenv("KUBECONFIG", str(world.tmp / "gone"))
    with pytest.raises(KubeError, match=r"gone \(from \$KUBECONFIG\) does not exist\. Fix: pass --kubeconfig FILE"):
        KubeClient.from_kubeconfig("a")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # twin: read when called, not when imported
    with KubeClient.from_kubeconfig("b") as client:
        assert client.host == world.gke.url


# -- preflight: each failure names its fix ---------------------------------------------------------------


def findings(world: World) -> dict[str, list[str]]:
    report = preflight(world.bridge, world.clients())
    out: dict[str, list[str]] = {}
    for f in report.findings:
        if f.blocking:
            out.setdefault(f.check, []).append(f.message)
    return out


def test_preflight_passes_on_the_article_installation(world: World) -> None:
    report = preflight(world.bridge, world.clients())
    assert report.passed, [f for f in report.findings if f.blocking]
    assert report.facts["eks"].address == LB_HOST
    assert report.facts["gke"].target_ports[("istio-egress", "istio-egressgateway")][80] == 8080
    assert {f.check for f in report.findings} >= {
        "ContextAnswers",
        "IstioApi",
        "IstioRevision",
        "DnsCapture",
        "GatewayPods",
        "SecretNamespace",
        "GatewayService",
        "LoadBalancer",
    }


def test_preflight_warns_that_the_articles_istio_is_past_its_end_of_life(world: World) -> None:
    """istiod runs 1.17.2 (the article's): a warning with what to do, which does not block plan or apply."""
    report = preflight(world.bridge, world.clients())
    warned = [f for f in report.findings if f.check == "IstioSupported"]
    assert [(f.mesh, f.severity, f.blocking) for f in warned] == [("eks", "warning", False), ("gke", "warning", False)]
    assert warned[0].message.startswith("Istio 1.17.2 is past its end of life: no security fixes (Istio patches 1.30")
    assert "Fix: upgrade the control plane" in warned[0].message and report.passed


def test_preflight_says_nothing_of_a_supported_istio(world: World) -> None:
    """The twin of the test above: an istiod of a supported line (its image tag is what counts)."""
    for server in (world.eks, world.gke):
        pod = server.get("/api/v1/namespaces/istio-system/pods/istiod-1-17-6f5f489dd6-l6krg")
        assert pod is not None
        pod["spec"]["containers"][0]["image"] = "docker.io/istio/pilot:1.31.4-distroless"
    assert not [f for f in preflight(world.bridge, world.clients()).findings if f.check == "IstioSupported"]


def test_preflight_l07_gateway_service_lacks_the_server_port(world: World) -> None:
    svc = world.eks.get("/api/v1/namespaces/istio-ingress/services/istio-ingressgateway")
    assert svc is not None
    svc["spec"]["ports"] = [p for p in svc["spec"]["ports"] if p["port"] != 443]
    [msg] = findings(world)["GatewayService"]
    assert "exposes no port 443" in msg and "lint MB112" in msg and "targetPort" in msg
    assert "the load balancer does not forward it, and istiod has the pod listen on 443 itself" in msg


def test_preflight_a_missing_privileged_port_cannot_bind_only_without_the_charts_sysctl(world: World) -> None:
    svc = world.gke.get("/api/v1/namespaces/istio-egress/services/istio-egressgateway")
    assert svc is not None
    svc["spec"]["ports"] = [p for p in svc["spec"]["ports"] if p["port"] != 80]
    [msg] = findings(world)["GatewayService"]
    assert "exposes no port 80" in msg and "the load balancer does not forward it" in msg
    assert "a privileged port the gateway pod (non-root, no net.ipv4.ip_unprivileged_port_start=0 sysctl)" in msg
    pod = world.gke.get(f"/api/v1/namespaces/{EGRESS_POD[0]}/pods/{EGRESS_POD[1]}")
    assert pod is not None  # the twin: the istio/gateway chart's pod binds 80 itself; the balancer still does not
    pod["spec"]["securityContext"] = {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]}
    [msg] = findings(world)["GatewayService"]
    assert "the load balancer does not forward it" in msg and "cannot bind" not in msg


def test_preflight_l05_gateway_pods_in_another_namespace(world: World) -> None:
    del world.eks.objects[f"/api/v1/namespaces/{INGRESS_POD[0]}/pods/{INGRESS_POD[1]}"]
    world.eks.seed(
        ready_pod(
            "gw-1",
            "mesh-gateways",
            {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-17"},
        )
    )
    [msg] = findings(world)["SecretNamespace"]
    assert "run in mesh-gateways, not in istio-ingress" in msg and "lint MB207" in msg
    assert "spec.meshes.eks.ingressGateway.namespace: mesh-gateways" in msg


def test_preflight_gateway_labels_do_not_select_the_pods(world: World) -> None:
    pod = world.eks.get(f"/api/v1/namespaces/{INGRESS_POD[0]}/pods/{INGRESS_POD[1]}")
    assert pod is not None
    pod["metadata"]["labels"] = {"app": "istio-ingressgateway", "istio": "ingressgateway", "istio.io/rev": "1-18"}
    [msg] = findings(world)["GatewayPods"]
    assert "spec.meshes.eks.ingressGateway.labels" in msg and "istio.io/rev=1-18" in msg


def test_preflight_l01_dns_capture_off_in_the_importer(world: World) -> None:
    cm = world.gke.get("/api/v1/namespaces/istio-system/configmaps/istio-1-17")
    assert cm is not None
    cm["data"]["mesh"] = "defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: 'true'\n"
    [msg] = findings(world)["DnsCapture"]
    assert "ISTIO_META_DNS_AUTO_ALLOCATE is not 'true'" in msg and "lint MB101" in msg
    assert "in meshConfig (the istiod chart's values or the IstioOperator, as 'meshbridge render --install'" in msg


def test_preflight_istio_crds_and_revision(world: World) -> None:
    world.eks.fail("GET", r"^/apis/networking\.istio\.io/v1beta1/", 404)
    pod = world.gke.get("/api/v1/namespaces/istio-system/pods/istiod-1-17-6f5f489dd6-l6krg")
    assert pod is not None
    pod["metadata"]["labels"]["istio.io/rev"] = "1-18"
    found = findings(world)
    assert len(found["IstioApi"]) == 4  # one per kind, each with its CRD
    assert found["IstioApi"][0].startswith(
        "the CRD serviceentries.networking.istio.io is not installed in context 'kind-eks'"
    )
    assert (
        "istiod revisions found: 1-18" in found["IstioRevision"][0]
        and "istioctl install -r 1-17" in found["IstioRevision"][0]
    )


def test_preflight_unreachable_context_stops_before_any_write(world: World) -> None:
    world.gke.fail("GET", "^/version$", 401, message="Unauthorized")
    with pytest.raises(PreflightError) as e:
        run_apply(world)
    assert "gke (kind-gke) ContextAnswers" in str(e.value) and "401" in str(e.value)
    assert not world.eks.writes() and not world.gke.writes()


# -- status ----------------------------------------------------------------------------------------------


def test_status_reports_present_drifted_missing_and_expiry(world: World) -> None:
    run_apply(world, wait=False)
    gw = world.eks.get(f"{ISTIO}/namespaces/istio-ingress/gateways/eastwestgateway")
    assert gw is not None
    gw["spec"]["servers"][0]["tls"]["mode"] = "SIMPLE"  # someone edited it
    del world.gke.objects[f"{ISTIO}/namespaces/istio-egress/serviceentries/se-lambda-ext"]
    st = {s.mesh: s for s in cluster_status(world.bridge, world.clients(), credentials=world.credentials)}
    eks = {o.ref.name: o.state for o in st["eks"].objects}
    gke = {o.ref.name: o.state for o in st["gke"].objects}
    assert eks["eastwestgateway"] == "drifted" and eks["vs-lambda"] == "present"
    assert eks["istio-ingress"] == "unmanaged"
    assert gke["se-lambda-ext"] == "missing"
    assert st["eks"].gateways[0].address == LB_HOST and st["eks"].gateways[0].ready == 1
    assert st["gke"].secrets[0].days_left is not None and 80 < st["gke"].secrets[0].days_left <= 90
    assert not st["eks"].healthy


def test_status_is_read_only(world: World) -> None:
    run_apply(world, wait=False)
    for s in (world.eks, world.gke):
        s.calls.clear()
    cluster_status(world.bridge, world.clients(), credentials=world.credentials)
    assert all(c.method == "GET" for s in (world.eks, world.gke) for c in s.calls)


# -- verify ----------------------------------------------------------------------------------------------


def curl_answer(status_line: str, headers: str, body: str, code: int) -> ExecAnswer:
    return ExecAnswer(f"{status_line}\r\n{headers}\r\n\r\n{body}\n__meshbridge_http_code={code}\n")


def test_verify_runs_the_articles_curl_through_exec(world: World) -> None:
    run_apply(world, wait=False)
    seen: list[tuple[str, str, list[str], str | None]] = []

    def handler(ns: str, pod: str, command: list[str], container: str | None) -> ExecAnswer:
        seen.append((ns, pod, command, container))
        return curl_answer(
            "HTTP/1.1 200 OK",
            "server: envoy\r\ncontent-type: text/html\r\nx-envoy-upstream-service-time: 330",
            "<p>Hello World from Lambda</p>",
            200,
        )

    world.gke.exec_handler = handler
    conditions = verify_clusters(world.bridge, clients=world.clients())
    by = {(c.check, c.hop.split(":")[0]): c for c in conditions}
    assert by[("IngressGatewayRoutes", "eks")].status == "True"
    assert INGRESS_ROUTE in by[("IngressGatewayRoutes", "eks")].message
    assert by[("EgressGatewayRoutes", "gke")].status == "True"
    call = by[("AppReachesExport", "gke")]
    assert call.status == "True" and "HTTP 200" in call.message and "330 ms" in call.message
    [(ns, pod, command, container)] = seen
    assert (ns, pod, container) == (*SLEEP_POD, "sleep")
    assert command[0] == "curl" and command[-1] == "http://lambda.external/hello-world"
    exec_calls = [c for c in world.gke.calls if c.path.endswith("/exec")]
    assert exec_calls[0].path == f"/api/v1/namespaces/{SLEEP_POD[0]}/pods/{SLEEP_POD[1]}/exec"
    assert exec_calls[0].q("stdout") == "true" and exec_calls[0].q("tty") == "false"


def test_verify_workload_curls_from_that_deployments_pod(world: World) -> None:
    """--workload NS/DEPLOYMENT: the caller is found by its Deployment's selector (no labels of its own)."""
    run_apply(world, wait=False)
    seen: list[tuple[str, str]] = []

    def handler(ns: str, pod: str, command: list[str], container: str | None) -> ExecAnswer:
        seen.append((ns, pod))
        return curl_answer("HTTP/1.1 200 OK", "server: envoy", "<p>Hello World from Lambda</p>", 200)

    world.gke.exec_handler = handler
    by = {
        c.check: c for c in verify_clusters(world.bridge, clients=world.clients(), workload="/".join(SLEEP_POD[:1] * 2))
    }
    assert by["AppReachesExport"].status == "True" and seen == [SLEEP_POD]
    # the negative twin: a Deployment that does not exist has no pod to curl from
    seen.clear()
    by = {c.check: c for c in verify_clusters(world.bridge, clients=world.clients(), workload="sleep/nothing")}
    assert (by["AppReachesExport"].status, by["AppReachesExport"].reason) == ("Unknown", "NoCallerPod") and seen == []


def test_verify_headers_go_with_the_apps_curl(world: World) -> None:
    run_apply(world, wait=False)
    seen: list[list[str]] = []

    def handler(ns: str, pod: str, command: list[str], container: str | None) -> ExecAnswer:
        seen.append(command)
        return curl_answer("HTTP/1.1 200 OK", "server: envoy", "<p>Hello World from Lambda</p>", 200)

    world.gke.exec_handler = handler
    headers = (("x-partner-key", "acme-7"), ("x-trace", "a b"))
    [call] = [
        c
        for c in verify_clusters(world.bridge, clients=world.clients(), headers=headers)
        if c.check == "AppReachesExport"
    ]
    assert call.status == "True"
    [command] = seen
    assert command[command.index("-H") : command.index("-H") + 4] == [
        "-H",
        "x-partner-key: acme-7",
        "-H",
        "x-trace: a b",
    ]
    assert "-H 'x-partner-key: acme-7'" in call.message  # the command it ran, quoted as a shell would take it
    seen.clear()
    verify_clusters(world.bridge, clients=world.clients())  # the negative twin: no -H without headers
    assert "-H" not in seen[0]


@pytest.mark.parametrize(
    ("answer", "reason", "words"),
    [
        (curl_answer("HTTP/1.1 404 Not Found", "server: envoy\r\ncontent-length: 0", "", 404), "RouteNotFound", "NR"),
        (ExecAnswer("", "curl: (6) Could not resolve host: lambda.external", 6), "DnsResolutionFailed", "MB101"),
        (
            curl_answer(
                "HTTP/1.1 503 Service Unavailable",
                "server: envoy",
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure, "
                "transport failure reason: TLS error: 268435581:SSL routines:OPENSSL_internal:"
                "CERTIFICATE_VERIFY_FAILED",
                503,
            ),
            "HandshakeRefused",
            "UF",
        ),
    ],
)
def test_verify_explains_failures(world: World, answer: ExecAnswer, reason: str, words: str) -> None:
    world.gke.exec_handler = lambda *_: answer
    [call] = [c for c in verify_clusters(world.bridge, clients=world.clients()) if c.check == "AppReachesExport"]
    assert call.status == "False" and call.reason == reason and words in call.message
    assert call.hop == "gke: app → egress gateway → eks ingress gateway → backend"


def test_verify_flags_missing_routes_and_missing_sidecar(world: World) -> None:
    world.eks.config_dumps[INGRESS_POD] = routes_dump()
    pod = world.gke.get(f"/api/v1/namespaces/{SLEEP_POD[0]}/pods/{SLEEP_POD[1]}")
    assert pod is not None
    pod["spec"]["containers"] = [{"name": "sleep", "image": "curlimages/curl"}]
    conditions = {c.check: c for c in verify_clusters(world.bridge, clients=world.clients())}
    routes = conditions["IngressGatewayRoutes"]
    assert (
        routes.status == "False"
        and routes.reason == "RouteMissing"
        and f"route {INGRESS_ROUTE} is absent" in (routes.message)
    )
    assert conditions["AppReachesExport"].reason == "NoSidecar"
    assert "istio.io/rev=1-17" in conditions["AppReachesExport"].message


def test_kinds_that_may_not_be_listed_cluster_wide_are_one_note_naming_them(world: World) -> None:
    world.eks.fail("GET", r"^/api/v1/secrets$", 403)
    world.eks.fail("GET", r"^/apis/networking.istio.io/[^/]+/gateways$", 403)
    outcome = plan_bridge(world.bridge, world.clients(), credentials=world.credentials)
    assert outcome.plans[0].notes == (
        "looked in istio-ingress only: no permission to list secrets, gateways cluster-wide",
    )
    # the twin: listed cluster-wide, nothing to note
    world.eks.faults.clear()
    assert plan_bridge(world.bridge, world.clients(), credentials=world.credentials).plans[0].notes == ()
