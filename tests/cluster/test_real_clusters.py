"""meshbridge's cluster commands against real API servers: ``pytest -m cluster`` (opt-in; see docs/clusters.md).

Without ``MESHBRIDGE_CONTEXTS`` they run against the two API servers ``tests/cluster/conftest.py`` starts (real
kube-apiserver and etcd, Istio's CRDs, an Istio stand-in); with it, against those contexts (kind or cloud):

* ``MESHBRIDGE_CONTEXTS``: ``eks=kind-a,gke=kind-b``, the kubeconfig context of each mesh of the bridge.
* ``MESHBRIDGE_BRIDGE``: the bridge file (default: ``examples/seed/bridge.yaml``).
* ``MESHBRIDGE_EXPORTER_ADDRESS``: the exporter gateway's address when its Service gets no load-balancer
  address (kind: a node IP with a NodePort, or MetalLB/cloud-provider-kind).
* ``MESHBRIDGE_VERIFY_CALL=1``: also require the app's call to succeed (needs a real backend).
* ``KUBECONFIG`` as usual.

The tests write under the bridge name ``meshbridge-e2e`` and delete what they wrote. Tests that need the
admin's hand on the cluster (objects made by someone else, reading managedFields) run on the local servers
only; the gateways' Envoy (routes, served certificates) is read through port-forward, which needs a kubelet:
those checks run on given contexts only, and on the fake API server (tests/integration).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from meshbridge.kube import parse_context_overrides, preflight, verify_clusters
from meshbridge.kube.client import KubeClient, apply_raw
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore
from meshbridge.render import render_secrets
from tests.cluster.conftest import Target
from tests.cluster.support import NAME, Cli, Doc, admin, assert_healthy, get, managers, paths

pytestmark = pytest.mark.cluster

# -- the commands ----------------------------------------------------------------------------------------


def test_preflight_passes(cli: Cli) -> None:
    clients = cli.clients()
    try:
        report = preflight(cli.bridge, clients)
    finally:
        for c in clients.values():
            c.close()
    assert report.passed, "\n".join(f"{f.mesh} {f.check}: {f.message}" for f in report.findings if f.blocking)
    found = {(f.mesh, f.check): f.message for f in report.findings if f.ok}
    if cli.target.local:
        assert (
            "importers dial istio-ingressgateway.istio-ingress.eks.lb.envtest.invalid" in found[("eks", "LoadBalancer")]
        )
        assert found[("eks", "ContextAnswers")].startswith("Kubernetes v1.")


def test_plan_is_the_servers_dry_run_and_writes_nothing(cli: Cli, local: Clusters) -> None:
    code, plan = cli.json("plan")
    assert code == 0 and plan["totals"]["create"] == 13 and plan["totals"]["keep"] == 2, plan["totals"]
    gateway = next(c for c in plan["meshes"][0]["changes"] if c["kind"] == "Gateway")
    assert "+    - lambda.external" in gateway["diff"] and "managedFields" not in gateway["diff"]
    assert "uid" not in gateway["diff"] and "creationTimestamp" not in gateway["diff"]
    secret = next(c for c in plan["meshes"][0]["changes"] if c["kind"] == "Secret")
    assert "<redacted: changed>" in secret["diff"] and "LS0t" not in json.dumps(plan)
    for mesh in ("eks", "gke"):  # a dry run persists nothing
        assert all(get(local, mesh, p) is None for p in paths(cli, mesh))


def test_apply_is_server_side_and_a_second_apply_writes_nothing(cli: Cli, local: Clusters) -> None:
    code, first = cli.json("apply", "--no-wait")
    assert code == 0
    assert [m["counts"]["created"] for m in first["meshes"]] == [7, 6]
    before = {}
    for mesh in ("eks", "gke"):
        for path in paths(cli, mesh):
            live = get(local, mesh, path)
            assert live is not None, path
            assert managers(live) == {"meshbridge": "Apply"}, (path, live["metadata"]["managedFields"])
            assert live["metadata"]["labels"]["meshbridge.io/bridge"] == NAME
            before[(mesh, path)] = live["metadata"]["resourceVersion"]
    code, again = cli.json("apply", "--no-wait")
    assert code == 0 and [m["counts"]["unchanged"] for m in again["meshes"]] == [7, 6]
    assert all(m["counts"]["created"] + m["counts"]["configured"] == 0 for m in again["meshes"])
    # and the server agrees: applying the same documents again (force included) changes no resourceVersion
    clients = cli.clients()
    try:
        from meshbridge.render import render_bridge

        docs = render_bridge(
            cli.bridge,
            PkiStore(cli.state).credentials(cli.bridge),
            addresses={"eks": "istio-ingressgateway.istio-ingress.eks.lb.envtest.invalid"},
        )
        for mesh, client in clients.items():
            for doc in docs[mesh]:
                if doc["kind"] != "Namespace":
                    client.apply(doc, force=True)
    finally:
        for c in clients.values():
            c.close()
    after = {(m, p): get(local, m, p)["metadata"]["resourceVersion"] for m, p in before}  # type: ignore[index]
    assert after == before


def test_status_then_drift_by_another_manager_is_a_stated_conflict(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    code, status = cli.json("status")
    assert_healthy(code, status)  # on this suite's servers: the gateway pods on no node, not READY, said so
    eks = status["meshes"][0]
    assert eks["gateways"][0]["total"] == 1 and eks["secrets"][0]["days_left"] > 80
    assert eks["gateways"][0]["ready"] == 1 or any("on no node (spec.nodeName empty)" in n for n in eks["notes"])
    # an admin's PUT adds a field: every value meshbridge renders stays equal, the editor now owns .spec.http
    vs = next(p for p in paths(cli, "eks") if p.endswith("/virtualservices/vs-lambda"))
    with admin(local, "eks") as a:
        live = a.request("GET", vs, what="vs", verb="get")
        live["spec"]["http"][0]["timeout"] = "1s"
        a.request("PUT", vs, query=[("fieldManager", "admin-put")], body=live, what="vs", verb="update")
    code, status = cli.json("status")
    drifted = [o for o in status["meshes"][0]["objects"] if o["state"] == "drifted"]
    assert code == 1 and [(o["kind"], o["name"]) for o in drifted] == [("VirtualService", "vs-lambda")], status
    assert "admin-put owns .spec.http" in drifted[0]["detail"] and "--force-conflicts" in drifted[0]["detail"]
    code, out, _ = cli("plan", "--no-diff")
    assert code == 1 and "conflict    VirtualService" in out and "admin-put" in out and ".spec.http" in out
    assert cli("apply", "--no-wait", "--force-conflicts")[0] == 0
    code, status = cli.json("status")  # the twin: restored, present again
    assert all(o["state"] in ("present", "unmanaged") for o in status["meshes"][0]["objects"]), status
    # someone edits the Gateway's hosts (kubectl edit: an update by another field manager)
    path = "/apis/networking.istio.io/v1/namespaces/istio-ingress/gateways/eastwestgateway"
    with admin(local, "eks") as a:
        live = a.request("GET", path, what="gw", verb="get")
        live["spec"]["servers"][0]["hosts"] = ["other.external"]
        a.request("PUT", path, query=[("fieldManager", "kubectl-edit")], body=live, what="gw", verb="update")
    code, status = cli.json("status")
    assert code == 1
    drifted = [o for o in status["meshes"][0]["objects"] if o["state"] == "drifted"]
    assert [o["kind"] for o in drifted] == ["Gateway"]
    code, out, _ = cli("plan", "--no-diff")
    assert code == 1
    assert "conflict    Gateway" in out and "kubectl-edit" in out and ".spec.servers" in out
    code, out, err = cli("apply", "--no-wait")
    assert code == 2 and "nothing was written" in err and "--force-conflicts" in err
    code, out, err = cli("apply", "--no-wait", "--force-conflicts")
    assert code == 0, err
    restored = get(local, "eks", path)
    assert restored is not None and restored["spec"]["servers"][0]["hosts"] == ["lambda.external"]
    assert_healthy(*cli.json("status"))


def test_delete_dry_run_lists_what_would_go_and_removes_nothing(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    every = [(m, p) for m in ("eks", "gke") for p in paths(cli, m)]
    before = {(m, p): get(local, m, p)["metadata"]["resourceVersion"] for m, p in every}  # type: ignore[index]
    code, out, _ = cli("delete", "--dry-run", state=False)
    assert code == 0 and "DELETED (DRY RUN)" in out and "eastwestgateway" in out
    code, dry = cli.json("delete", "--dry-run", state=False)
    assert code == 0 and dry["dry_run"] is True
    assert sum(len(m["deleted"]) for m in dry["meshes"]) == len(every) == 13
    after = {(m, p): (get(local, m, p) or {}).get("metadata", {}).get("resourceVersion") for m, p in every}
    assert after == before  # the server validated the deletes and kept every object as it was
    # the twin: without --dry-run the same command removes them
    code, done = cli.json("delete", state=False)
    assert code == 0 and done["dry_run"] is False and sum(len(m["deleted"]) for m in done["meshes"]) == 13
    assert all(get(local, m, p) is None for m, p in every)


def _two_exports(d: Doc) -> None:
    orders = json.loads(json.dumps(d["spec"]["exports"][0]))
    orders.update({"name": "orders", "host": "orders.external", "gatewayPort": 443})
    orders["backend"] = {"host": "orders.internal.example.com", "port": 8080, "tls": {"mode": "DISABLE"}}
    d["spec"]["exports"].append(orders)


def test_prune_after_an_export_is_removed(cli: Cli, local: Clusters) -> None:
    cli.write(_two_exports)
    code, applied = cli.json("apply", "--no-wait")
    assert code == 0, applied
    orders = {(m, p) for m in ("eks", "gke") for p in paths(cli, m) if "orders" in p}
    assert orders and all(get(local, m, p) is not None for m, p in orders)
    cli.write()  # the export is removed from the spec
    code, plan = cli.json("plan")
    assert code == 0
    pruned = sorted((m["mesh"], c["name"]) for m in plan["meshes"] for c in m["changes"] if c["action"] == "prune")
    assert pruned and all("orders" in name for _, name in pruned), pruned
    code, done = cli.json("apply", "--no-wait")
    assert code == 0 and sum(m["counts"]["pruned"] for m in done["meshes"]) == len(pruned)
    assert all(get(local, m, p) is None for m, p in orders)
    lambda_paths = [(m, p) for m in ("eks", "gke") for p in paths(cli, m)]
    assert all(get(local, m, p) is not None for m, p in lambda_paths)


def test_delete_touches_only_this_bridges_objects(cli: Cli, local: Clusters) -> None:
    assert cli("apply", "--no-wait")[0] == 0
    theirs = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "metadata": {"name": "someone-elses", "namespace": "istio-ingress"},
        "spec": {"hosts": ["elsewhere.example.com"], "http": [{"route": [{"destination": {"host": "x"}}]}]},
    }
    other_bridge = json.loads(json.dumps(theirs))
    other_bridge["metadata"]["name"] = "other-bridges"
    other_bridge["metadata"]["labels"] = {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "other"}
    vs = "/apis/networking.istio.io/v1/namespaces/istio-ingress/virtualservices"
    with admin(local, "eks") as a:
        for doc in (theirs, other_bridge):
            apply_raw(a, f"{vs}/{doc['metadata']['name']}", doc, manager="someone")
    try:
        code, deleted = cli.json("delete", state=False)
        assert code == 0
        names = sorted(d["name"] for m in deleted["meshes"] for d in m["deleted"])
        assert len(names) == 13 and "someone-elses" not in names and "other-bridges" not in names
        assert get(local, "eks", f"{vs}/someone-elses") is not None
        assert get(local, "eks", f"{vs}/other-bridges") is not None
        assert get(local, "eks", "/api/v1/namespaces/istio-ingress") is not None  # Namespaces stay
        assert all(get(local, m, p) is None for m in ("eks", "gke") for p in paths(cli, m))
        code, again = cli.json("delete", state=False)
        assert code == 0 and all(not m["deleted"] for m in again["meshes"])
    finally:
        with admin(local, "eks") as a:
            for name in ("someone-elses", "other-bridges"):
                a.request("DELETE", f"{vs}/{name}", what=name, verb="delete")


def test_an_object_the_crd_schema_refuses_is_a_422_naming_the_field(
    cli: Cli, local: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRDs' own validation (here a CEL rule of ServiceEntry) refuses what a bug would render: the plan
    exits 2 with the server's field and message, and nothing is written."""
    from meshbridge.kube import apply as kube_apply

    real = kube_apply.render_bridge

    def broken(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        for doc in out["eks"]:
            if doc["kind"] == "ServiceEntry":
                doc["spec"]["ports"][0]["number"] = 70000
        return out

    monkeypatch.setattr(kube_apply, "render_bridge", broken)
    code, _, err = cli("apply", "--no-wait")
    assert code == 2
    text = " ".join(err.split())
    assert "cluster 'eks': apply (dry run) ServiceEntry istio-ingress/se-lambda-backend failed: 422 Invalid" in text
    assert "spec.ports[0].number" in text and "port must be between 1-65535" in text
    assert "rejected the object as invalid" in text and "Traceback" not in err
    assert all(get(local, m, p) is None for m in ("eks", "gke") for p in paths(cli, m))


def test_certs_push_reaches_both_clusters(cli: Cli, local: Clusters) -> None:
    """The store's certificates land in each mesh's gateway Secret; whether the gateways serve them is read from
    their Envoy through port-forward, which these servers cannot do (no kubelet): that part says so."""
    code, out, err = cli("certs", "push", "--timeout", "1")
    creds = PkiStore(cli.state).credentials(cli.bridge)
    rendered = render_secrets(cli.bridge, creds)
    for mesh in ("eks", "gke"):
        for doc in rendered[mesh]:
            live = get(local, mesh, ResourceRef.of(doc).path)
            assert live is not None and live["data"] == doc["data"], mesh
            assert managers(live) == {"meshbridge": "Apply"}
    assert "pushed: eks (eks: 1 Secret(s))" in out and "pushed: gke (gke: 1 Secret(s))" in out
    # the check reads each gateway pod's Envoy through port-forward: a cluster that cannot be read, exit 2
    assert code == 2 and "port-forward to port 15000 of pod istio-ingress/" in err
    assert "does not have a host assigned" in err


def test_apply_without_no_wait_stops_at_once_where_no_kubelet_can_port_forward(cli: Cli, target: Target) -> None:
    """These servers have no nodes: the gateway pods cannot be port-forwarded (400, no host assigned), for good."""
    if not target.local:
        pytest.skip("on clusters with nodes the gateways' Envoy is read: test_routes_are_served_...")
    code, out, err = cli("apply", "--timeout", "600")
    assert code == 2, (out, err)
    assert "everything was applied, but the gateways' routes cannot be checked" in err
    assert "does not have a host assigned" in err and "not scheduled on a node" in err and "--no-wait" in err
    assert "routes: waiting" not in out + err and "Re-run with a longer --timeout" not in err
    code, verified = cli.json("verify")
    routes = [c for c in verified["conditions"] if c["check"].endswith("GatewayRoutes")]
    assert code == 2 and routes and all((c["status"], c["reason"]) == ("Unknown", "CannotReadGateway") for c in routes)
    # the twin: with --no-wait the same apply succeeds, nothing left to write
    code, again = cli.json("apply", "--no-wait")
    assert code == 0 and all(m["counts"]["created"] + m["counts"]["configured"] == 0 for m in again["meshes"])


def test_the_client_certificate_user_reads_and_plans_alike(cli: Cli, target: Target) -> None:
    """The '-cert' contexts: a client certificate of the cluster's CA, group meshbridge-operators, bound to the
    same permissions as the token user."""
    if not target.local:
        pytest.skip("the -cert contexts are the local servers'")
    cli.target = Target(target.kubeconfig, {m: f"{m}-cert" for m in target.contexts}, local=True, run=target.run)
    code, plan = cli.json("plan")
    assert code == 0 and plan["totals"]["create"] == 13
    assert [m["context"] for m in plan["meshes"]] == ["eks-cert", "gke-cert"]


# -- on given clusters only: the gateways' Envoy ---------------------------------------------------------


def test_routes_are_served_and_the_app_calls_the_export(cli: Cli, target: Target) -> None:
    if target.local:
        pytest.skip("the gateways' Envoy is read through port-forward, which needs a kubelet")
    assert cli("apply", "--timeout", "180")[0] == 0
    clients = {
        m: KubeClient.from_kubeconfig(c)
        for m, c in parse_context_overrides([f"{m}={c}" for m, c in target.contexts.items()]).items()
    }
    try:
        conditions = verify_clusters(cli.bridge, clients=clients)
    finally:
        for c in clients.values():
            c.close()
    routes = [c for c in conditions if c.check.endswith("GatewayRoutes")]
    assert routes and all(c.passed for c in routes), routes
    if os.environ.get("MESHBRIDGE_VERIFY_CALL") == "1":
        calls = [c for c in conditions if c.check == "AppReachesExport"]
        assert calls and all(c.passed for c in calls), calls
