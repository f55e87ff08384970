"""The pure parts of the Kubernetes layer: plan decisions and diffs, contexts, routes, curl diagnosis."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.main import main
from meshbridge.envoy.view import EnvoyView
from meshbridge.errors import KubeError
from meshbridge.kube.apply import MeshResult, mesh_order
from meshbridge.kube.client import ExecResult
from meshbridge.kube.clusters import parse_context_overrides, resolve_contexts
from meshbridge.kube.plan import (
    REDACTED,
    REDACTED_CHANGED,
    contains,
    diff,
    label_selector,
    normalize,
    plan_mesh,
    why_not_ours,
)
from meshbridge.kube.resources import ResourceRef, resource_type
from meshbridge.kube.routes import expected_routes, gateway_selector, missing
from meshbridge.kube.status import secret_expiry
from meshbridge.kube.verify import diagnose
from meshbridge.render import render_bridge
from meshbridge.world import proxies
from tests.builders import bridge_from, issued_store, seed_bridge, seed_dict, two_exports_three_meshes

OURS = {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "b"}


def doc(kind: str = "Gateway", name: str = "gw", ns: str | None = "istio-ingress", **spec: Any) -> dict[str, Any]:
    api = "v1" if kind in ("Namespace", "Secret") else "networking.istio.io/v1"
    md: dict[str, Any] = {"name": name, "labels": dict(OURS)}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": api, "kind": kind, "metadata": md, "spec": spec or {"a": 1}}


def live(d: dict[str, Any], *, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    out = copy.deepcopy(d)
    out["metadata"].update(
        uid="u-1",
        resourceVersion="42",
        creationTimestamp="2024-01-01T00:00:00Z",
        managedFields=[{"manager": "meshbridge", "operation": "Apply"}],
        generation=3,
    )
    if labels is not None:
        out["metadata"]["labels"] = labels
    if spec:
        out["spec"] = spec
    out["status"] = {"x": "y"}
    return out


def key(d: dict[str, Any]) -> tuple[str, str, str, str]:
    return ResourceRef.of(d).key


def plan(desired: list[dict[str, Any]], lives: list[dict[str, Any] | None], **kw: Any) -> dict[str, Any]:
    lv = {key(d): lv for d, lv in zip(desired, lives, strict=True)}
    dry = kw.pop("dry", {key(d): live(d) for d, lv in zip(desired, lives, strict=True) if lv is not None})
    p = plan_mesh("eks", "ctx", "b", desired, lv, dry, kw.pop("owned", []), **kw)
    return {(c.ref.kind, c.ref.name): c for c in p.changes}


# -- plan decisions --------------------------------------------------------------------------------------


def test_absent_is_create_same_is_unchanged_different_is_update() -> None:
    a, b, c = doc(name="a"), doc(name="b"), doc(name="c")
    changed = live(c)
    dry = {key(b): live(b), key(c): live(c, a=2)}
    out = plan([a, b, c], [None, live(b), changed], dry=dry)
    assert out[("Gateway", "a")].action == "create" and "+  name: a" in out[("Gateway", "a")].diff
    assert out[("Gateway", "b")].action == "unchanged" and out[("Gateway", "b")].diff == ""
    assert out[("Gateway", "c")].action == "update"
    assert "-  a: 1" in out[("Gateway", "c")].diff and "+  a: 2" in out[("Gateway", "c")].diff


def test_server_managed_fields_never_show_as_changes() -> None:
    d = doc()
    assert diff(live(d), live(d, labels=dict(OURS)) | {"status": {"other": 1}}, "x") == ""
    n = normalize(live(d))
    assert "managedFields" not in n["metadata"] and "uid" not in n["metadata"] and "status" not in n


def test_an_object_that_is_not_ours_is_a_conflict_unless_forced() -> None:
    d = doc()
    hand = live(d, labels={})
    other = live(d, labels={"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "orders"})
    assert plan([d], [hand])[("Gateway", "gw")].action == "conflict"
    c = plan([d], [other])[("Gateway", "gw")]
    assert c.action == "conflict" and "belongs to bridge 'orders'" in c.reason
    forced = plan([d], [hand], force_conflicts=True)[("Gateway", "gw")]
    assert forced.action == "update" and "taken over" in forced.reason


def test_a_field_managers_conflict_is_a_conflict_unless_forced() -> None:
    d = doc()
    out = plan([d], [live(d)], dry={}, field_conflicts={key(d): "conflict with kubectl-edit"})
    assert out[("Gateway", "gw")].action == "conflict" and "kubectl-edit" in out[("Gateway", "gw")].reason


def test_existing_namespaces_not_ours_are_kept_untouched() -> None:
    ns = doc("Namespace", "istio-ingress", None)
    out = plan([ns], [live(ns, labels={})])
    assert out[("Namespace", "istio-ingress")].action == "keep"


def test_prune_selects_owned_objects_and_never_namespaces() -> None:
    d = doc(name="kept")
    owned = [
        live(doc(name="stale")),
        live(doc("Namespace", "old", None)),
        live(doc("Secret", "old-secret")),
        live(doc(name="foreign"), labels={"meshbridge.io/bridge": "b"}),  # lacks managed-by: not ours
    ]
    out = plan([d], [live(d)], owned=owned, prunable_kinds=frozenset({"Gateway"}))
    assert out[("Gateway", "stale")].action == "prune" and out[("Gateway", "stale")].uid == "u-1"
    assert out[("Namespace", "old")].action == "keep" and "never deleted" in out[("Namespace", "old")].reason
    assert out[("Secret", "old-secret")].action == "keep"  # --no-secrets: Secrets are not pruned
    assert ("Gateway", "foreign") not in out


def test_secret_values_are_redacted_and_changes_still_show() -> None:
    old = doc("Secret", "mtls-credential")
    old.pop("spec")
    old["data"] = {"key": base64.b64encode(b"-----BEGIN PRIVATE KEY-----").decode(), "cert": "Y2VydA=="}
    new = copy.deepcopy(old)
    new["data"]["key"] = base64.b64encode(b"-----BEGIN PRIVATE KEY----- rotated").decode()
    text = diff(old, new, "Secret istio-ingress/mtls-credential")
    assert f"+  key: '{REDACTED_CHANGED}'" in text and f"-  key: {REDACTED}" in text
    assert "cert" not in [
        ln.split(":")[0].strip("+- ") for ln in text.splitlines() if ln[:1] in "+-" and "---" not in ln
    ]
    assert "LS0t" not in text and "PRIVATE" not in text and "Y2VydA" not in text


def test_contains_is_a_subset_match() -> None:
    assert contains({"a": 1, "b": [{"x": 1, "y": 2}], "extra": 1}, {"a": 1, "b": [{"x": 1}]})
    assert not contains({"a": 1, "b": [{"x": 1}]}, {"a": 1, "b": [{"x": 1}, {"x": 2}]})
    assert not contains({"a": "1"}, {"a": 1})


def test_label_selector_and_reasons() -> None:
    assert label_selector("b") == "app.kubernetes.io/managed-by=meshbridge,meshbridge.io/bridge=b"
    assert "without meshbridge's labels" in why_not_ours({"metadata": {}}, "b")
    assert "managed by 'Helm'" in why_not_ours({"metadata": {"labels": {"app.kubernetes.io/managed-by": "Helm"}}}, "b")


# -- contexts --------------------------------------------------------------------------------------------


def test_context_overrides() -> None:
    assert parse_context_overrides(["eks=a", "gke = b"]) == {"eks": "a", "gke": "b"}
    with pytest.raises(KubeError, match="not MESH=CONTEXT"):
        parse_context_overrides(["eks"])
    with pytest.raises(KubeError, match="twice"):
        parse_context_overrides(["eks=a", "eks=b"])
    bridge = seed_bridge()
    assert resolve_contexts(bridge, {"gke": "kind-b"}) == {"eks": "eks-cluster", "gke": "kind-b"}
    with pytest.raises(KubeError, match="'aks'"):
        resolve_contexts(bridge, {"aks": "x"})
    d = seed_dict()
    del d["spec"]["meshes"]["gke"]["context"]
    with pytest.raises(KubeError, match="--context gke=CONTEXT"):
        resolve_contexts(bridge_from(d))


def test_mesh_order_puts_exporters_first() -> None:
    d = seed_dict()
    d["spec"]["meshes"] = {"gke": d["spec"]["meshes"]["gke"], "eks": d["spec"]["meshes"]["eks"]}
    assert mesh_order(bridge_from(d)) == ["eks", "gke"]


# -- resources -------------------------------------------------------------------------------------------


def test_paths_and_unknown_kinds() -> None:
    assert ResourceRef("v1", "Namespace", None, "x").path == "/api/v1/namespaces/x"
    assert (
        ResourceRef("networking.istio.io/v1beta1", "ServiceEntry", "ns", "se").path
        == "/apis/networking.istio.io/v1beta1/namespaces/ns/serviceentries/se"
    )
    assert resource_type("v1", "Secret").collection_path() == "/api/v1/secrets"
    with pytest.raises(KubeError, match="does not manage CronJob"):
        resource_type("batch/v1", "CronJob")


# -- routes ----------------------------------------------------------------------------------------------


def test_expected_routes_follow_istiod_naming(tmp_path: Path) -> None:
    bridge = seed_bridge()
    sets = render_bridge(bridge, None)
    [ingress] = expected_routes(bridge, "eks", sets["eks"])
    assert ingress.route == "https.443.https.eastwestgateway.istio-ingress" and ingress.domains == ("lambda.external",)
    [egress] = expected_routes(bridge, "gke", sets["gke"])
    assert egress.route == "http.8080"  # Service 80 → targetPort 8080: istiod names the route by the target port
    [live_port] = expected_routes(bridge, "gke", sets["gke"], {("istio-egress", "istio-egressgateway"): {80: 80}})
    assert live_port.route == "http.80"


def test_gateway_selector_is_the_rendered_one() -> None:
    bridge = bridge_from(two_exports_three_meshes())
    sets = render_bridge(bridge, None)
    for mesh_name, mesh in bridge.spec.meshes.items():
        for gw in (mesh.ingress_gateway, mesh.egress_gateway):
            if gw is None:
                continue
            try:
                rendered = sets[mesh_name].find("Gateway", gw.gateway, gw.namespace)
            except KeyError:
                continue
            assert rendered["spec"]["selector"] == gateway_selector(mesh, gw)


def test_one_revision_rule_for_gateway_selectors_service_selectors_and_pod_labels() -> None:
    bridge = seed_bridge()
    mesh = bridge.spec.meshes["eks"]
    assert mesh.istio.revision  # the seed runs revision 1-17, as the article does
    gw = mesh.ingress_gateway
    assert gw is not None
    rendered = render_bridge(bridge, None)["eks"].find("Gateway", gw.gateway, gw.namespace)["spec"]["selector"]
    (ingress,) = [p for p in proxies(bridge, "eks") if p.role == "ingress"]
    service = ingress.proxy.service
    assert service is not None
    for labels in (rendered, gateway_selector(mesh, gw), ingress.proxy.labels, service.spec.selector):
        assert labels == {**gw.labels, "istio.io/rev": mesh.istio.revision}


def test_without_a_revision_nothing_carries_the_revision_label() -> None:
    data = seed_dict()
    for m in data["spec"]["meshes"].values():
        m["istio"].pop("revision", None)
    bridge = bridge_from(data)
    mesh = bridge.spec.meshes["eks"]
    gw = mesh.ingress_gateway
    assert gw is not None
    rendered = render_bridge(bridge, None)["eks"].find("Gateway", gw.gateway, gw.namespace)["spec"]["selector"]
    (ingress,) = [p for p in proxies(bridge, "eks") if p.role == "ingress"]
    for labels in (rendered, gateway_selector(mesh, gw), ingress.proxy.labels):
        assert "istio.io/rev" not in labels and labels == dict(gw.labels)


def _routes_dump(*vhosts: dict[str, Any], by_resource: bool = False) -> dict[str, Any]:
    rc = {"name": "http.8080", "virtual_hosts": list(vhosts)}
    if by_resource:  # /config_dump?resource=dynamic_route_configs: one DynamicRouteConfig per item
        return {"configs": [{"@type": "x.admin.v3.RoutesConfigDump.DynamicRouteConfig", "route_config": rc}]}
    return {"configs": [{"@type": "x.admin.v3.RoutesConfigDump", "dynamic_route_configs": [{"route_config": rc}]}]}


def test_a_gateway_serving_the_host_lacks_nothing_in_either_dump_shape() -> None:
    bridge = seed_bridge()
    expected = expected_routes(bridge, "gke", render_bridge(bridge, None)["gke"])
    for by_resource in (False, True):
        for domains in (["lambda.external"], ["*.external"], ["LAMBDA.external", "lambda.external:*"]):
            dump = _routes_dump({"domains": domains}, {"domains": ["*"]}, by_resource=by_resource)
            assert missing(expected, EnvoyView.from_config_dump(dump)) == [], domains


def test_a_gateway_with_only_the_blackhole_or_another_host_lacks_the_route() -> None:
    bridge = seed_bridge()
    expected = expected_routes(bridge, "gke", render_bridge(bridge, None)["gke"])
    blackhole = EnvoyView.from_config_dump(_routes_dump({"name": "blackhole:80", "domains": ["*"]}))
    assert missing(expected, blackhole) == ["route http.8080 has no virtual host for lambda.external (domains: *)"]
    for domains in (["orders.external", "*.internal"], ["*lambda.external"]):  # a wildcard stands for 1+ characters
        other = EnvoyView.from_config_dump(_routes_dump({"domains": domains}))
        assert "no virtual host for lambda.external" in missing(expected, other)[0], domains
    assert missing(expected, EnvoyView.from_config_dump({"configs": []})) == ["route http.8080 is absent"]


# -- verify and status helpers ---------------------------------------------------------------------------


def export() -> Any:
    return seed_bridge().spec.exports[0]


@pytest.mark.parametrize(
    ("result", "status", "reason"),
    [
        (
            ExecResult("HTTP/1.1 200 OK\r\nserver: envoy\r\n\r\nhi\n__meshbridge_http_code=200\n", "", 0),
            "True",
            "Reachable",
        ),
        (
            ExecResult("HTTP/1.1 404 Not Found\r\nserver: envoy\r\n\r\n\n__meshbridge_http_code=404\n", "", 0),
            "False",
            "RouteNotFound",
        ),
        (
            ExecResult(
                "HTTP/1.1 404 Not Found\r\nserver: envoy\r\nx-envoy-upstream-service-time: 5\r\n\r\nnope\n"
                "__meshbridge_http_code=404\n",
                "",
                0,
            ),
            "False",
            "UnexpectedStatus",
        ),
        (
            ExecResult("HTTP/1.1 503 x\r\n\r\nno healthy upstream\n__meshbridge_http_code=503\n", "", 0),
            "False",
            "NoHealthyUpstream",
        ),
        (ExecResult("HTTP/1.1 503 x\r\n\r\n\n__meshbridge_http_code=503\n", "", 0), "False", "ClusterNotFound"),
        (ExecResult("", "curl: (28) timed out", 28), "False", "Timeout"),
        (ExecResult("", "", None), "Unknown", "ExecTimeout"),
        (ExecResult("", "", None, 'exec: "curl": executable file not found'), "Unknown", "ExecFailed"),
    ],
)
def test_diagnose_maps_curl_outcomes(result: ExecResult, status: str, reason: str) -> None:
    got = diagnose(result, "http://lambda.external/hello-world", export())
    assert (got[0], got[1]) == (status, reason)


def test_secret_expiry_reads_the_cert_key(tmp_path: Path) -> None:
    bridge = seed_bridge()
    creds = issued_store(tmp_path, bridge).credentials(bridge)
    secret = render_bridge(bridge, creds)["gke"].find("Secret", "mtls-credential", "istio-egress")
    st = secret_expiry(secret, dt.datetime.now(dt.UTC))
    assert st.days_left is not None and 85 <= st.days_left <= 90 and st.detail == ""
    late = secret_expiry(secret, dt.datetime.now(dt.UTC) + dt.timedelta(days=100))
    assert late.days_left is not None and late.days_left < 0 and "expired" in late.detail
    assert "no 'cert'" in secret_expiry({"metadata": {}, "data": {"x": "eA=="}}, dt.datetime.now(dt.UTC)).detail


def test_mesh_result_summary_names_what_landed() -> None:
    a = ResourceRef("v1", "Secret", "ns", "s")
    b = ResourceRef("networking.istio.io/v1", "Gateway", "ns", "g")
    c = ResourceRef("networking.istio.io/v1", "VirtualService", "ns", "v")
    ok = MeshResult("eks", "ctx", done=[("created", a), ("unchanged", b)])
    assert ok.summary() == "1 created, 1 unchanged"
    failed = MeshResult("gke", "ctx", done=[("created", a)], failed=b, not_done=[c])
    assert failed.summary() == "landed: Secret ns/s; FAILED at Gateway ns/g; not reached: VirtualService ns/v"


def test_two_meshes_given_the_same_context_are_refused_naming_both_and_the_fix() -> None:
    bridge = seed_bridge()
    with pytest.raises(KubeError) as e:
        resolve_contexts(bridge, {"eks": "X", "gke": "X"})
    message = str(e.value)
    assert "meshes 'eks' and 'gke' would both use the kubeconfig context 'X' (--context eks=X and --context gke=X)" in (
        message
    )
    assert "Fix: give each mesh its own cluster's context, e.g. --context eks=CONTEXT --context gke=CONTEXT" in message
    # one from the spec, one from the command line: each origin is named as the user wrote it
    with pytest.raises(KubeError, match=r"\(spec.meshes.eks.context: eks-cluster and --context gke=eks-cluster\)"):
        resolve_contexts(bridge, {"gke": "eks-cluster"})
    # negative twin: two contexts, or one mesh asked for alone, are fine
    assert resolve_contexts(bridge, {"eks": "X", "gke": "Y"}) == {"eks": "X", "gke": "Y"}
    assert resolve_contexts(bridge, {"eks": "X", "gke": "X"}, ["eks"]) == {"eks": "X"}


@pytest.mark.parametrize("command", ["plan", "apply", "status", "delete", "verify"])
def test_every_cluster_command_refuses_one_context_for_two_meshes(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    assert main(["init"]) == 0
    capsys.readouterr()
    assert main([command, "--context", "eks=X", "--context", "gke=X"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "meshes 'eks' and 'gke' would both use the kubeconfig context 'X'" in err and "Fix:" in err
    # negative twin: two contexts get past that check (to the missing kubeconfig)
    assert main([command, "--context", "eks=X", "--context", "gke=Y"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "would both use" not in err and "no-kubeconfig" in err
