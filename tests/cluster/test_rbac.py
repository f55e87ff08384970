"""The RBAC ``meshbridge render --rbac`` prints, judged by real API servers (``-m cluster``, local servers only).

The suite's user is bound by exactly those documents (:func:`meshbridge.kube.envtest.permissions`): every cluster
command works with them, and with one verb less the command fails (exit 2) with an error that names the verb, the
resource and the namespace. Each test restores the permissions, and waits until the server's authorizer sees them,
before it ends.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.kube import preflight
from meshbridge.kube.envtest import SUBJECTS, Clusters, grant_permissions, permissions
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.resources import resource_type
from tests.builders import SEED, seed_bridge
from tests.cluster.conftest import Target
from tests.cluster.support import Cli, assert_healthy

pytestmark = pytest.mark.cluster

Doc = dict[str, Any]
RBAC = "/apis/rbac.authorization.k8s.io/v1"


def rules_of(docs: list[Doc]) -> dict[tuple[str, str | None], Doc]:
    """``(kind, namespace)`` → ``{"rules": ..., "subjects": ...}`` of RBAC documents (server-set fields left out)."""
    out: dict[tuple[str, str | None], Doc] = {}
    for d in docs:
        key = (d["kind"].removesuffix("Binding"), d["metadata"].get("namespace"))
        entry = out.setdefault(key, {})
        if d["kind"].endswith("Binding"):
            entry["subjects"] = d["subjects"]
            entry["roleRef"] = d["roleRef"]
        else:
            entry["rules"] = [{k: v for k, v in r.items() if v} for r in d["rules"]]
    return out


def on_the_server(local: Clusters, mesh: str) -> list[Doc]:
    """Every RBAC object labelled for the seed bridge in ``mesh``'s cluster, read as the admin."""
    selector = [("labelSelector", "meshbridge.io/bridge=lambda-aws-to-gcp")]
    docs: list[Doc] = []
    with local[mesh].client() as a:
        for plural, kind in (
            ("clusterroles", "ClusterRole"),
            ("clusterrolebindings", "ClusterRoleBinding"),
            ("roles", "Role"),
            ("rolebindings", "RoleBinding"),
        ):
            page = a.request("GET", f"{RBAC}/{plural}", query=selector, what=plural, verb="list")
            docs += [{**item, "kind": kind} for item in page["items"]]
    return docs


def test_the_suite_runs_as_exactly_what_render_rbac_prints(local: Clusters, capsys: pytest.CaptureFixture[str]) -> None:
    """The Roles, ClusterRole and bindings on each server are the documents of 'meshbridge render --rbac', and
    nothing else is bound to the suite's user."""
    subjects = [a for s in SUBJECTS for a in ("--subject", str(s))]
    for mesh in ("eks", "gke"):
        capsys.readouterr()
        assert main(["render", "--rbac", "--mesh", mesh, "-f", str(SEED), *subjects]) == 0
        printed = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
        assert printed == permissions(seed_bridge(), mesh)
        assert rules_of(on_the_server(local, mesh)) == rules_of(printed)
        namespaces = sorted(ns for kind, ns in rules_of(printed) if ns)
        assert namespaces == (
            ["istio-ingress", "istio-system"] if mesh == "eks" else ["istio-egress", "istio-system", "sleep"]
        )
        assert bound_to_the_suites_users(local, mesh) == {
            (d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"])
            for d in printed
            if d["kind"].endswith("Binding")
        }


def bound_to_the_suites_users(local: Clusters, mesh: str) -> set[tuple[str, str | None, str]]:
    """Every (Cluster)RoleBinding in ``mesh``'s cluster that names the suite's user or group."""
    ours = [s.to_dict() for s in SUBJECTS]
    found = set()
    with local[mesh].client() as a:
        for plural, kind in (("clusterrolebindings", "ClusterRoleBinding"), ("rolebindings", "RoleBinding")):
            for b in a.request("GET", f"{RBAC}/{plural}", what=plural, verb="list")["items"]:
                if any(s in ours for s in b.get("subjects") or []):
                    found.add((kind, b["metadata"].get("namespace"), b["metadata"]["name"]))
    return found


@dataclass(frozen=True)
class Permission:
    """One verb on one resource, in a namespace (``None``: cluster-wide) of a mesh's cluster."""

    mesh: str
    namespace: str | None
    group: str
    resource: str
    verb: str

    def removed_from(self, docs: list[Doc]) -> list[Doc]:
        """``docs`` with this verb taken away from this resource only (the resource's other verbs, and the other
        resources of its rule, stay)."""
        out = copy.deepcopy(docs)
        kind = "Role" if self.namespace else "ClusterRole"
        found = False
        for d in out:
            if d["kind"] != kind or d["metadata"].get("namespace") != self.namespace:
                continue
            rules = []
            for r in d["rules"]:
                if self.group in r["apiGroups"] and self.resource in r["resources"] and self.verb in r["verbs"]:
                    found = True
                    if others := [x for x in r["resources"] if x != self.resource]:
                        rules.append({**r, "resources": others})
                    if verbs := [v for v in r["verbs"] if v != self.verb]:
                        rules.append({**r, "resources": [self.resource], "verbs": verbs})
                else:
                    rules.append(r)
            d["rules"] = rules
        assert found, f"render --rbac grants no {self} to remove"
        return out

    def allowed(self, local: Clusters) -> bool:
        """What the server's authorizer answers the suite's user now (a SelfSubjectAccessReview)."""
        resource, _, sub = self.resource.partition("/")
        attributes = {"verb": self.verb, "group": self.group, "resource": resource, "subresource": sub}
        if self.namespace:
            attributes["namespace"] = self.namespace
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}
        review["spec"] = {"resourceAttributes": attributes}
        with local[self.mesh].client(admin=False) as user:
            out = user.request(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                body=review,
                what="access review",
                verb="create",
            )
        return bool(out["status"].get("allowed"))

    def __str__(self) -> str:
        where = f"in namespace {self.namespace}" if self.namespace else "cluster-wide"
        return f"{self.verb} on {self.resource}.{self.group or 'core'} {where} ({self.mesh})"


def _wait_until(local: Clusters, permission: Permission, allowed: bool) -> None:
    """Until the authorizer's cache has the change (RBAC is read from informers: a grant lands a moment later).
    pytest-timeout bounds it."""
    while permission.allowed(local) != allowed:
        time.sleep(0.05)


@contextmanager
def without(local: Clusters, permission: Permission) -> Iterator[None]:
    """The suite's user without ``permission`` for the block; exactly ``render --rbac`` again after it."""
    full = permissions(seed_bridge(), permission.mesh)
    with local[permission.mesh].client() as a:
        grant_permissions(a, permission.removed_from(full))
    try:
        _wait_until(local, permission, False)
        yield
    finally:
        with local[permission.mesh].client() as a:
            grant_permissions(a, full)
        _wait_until(local, permission, True)


def test_every_cluster_command_works_as_the_user_render_rbac_binds(cli: Cli, local: Clusters) -> None:
    """preflight, plan, apply, status, certs push, verify and delete, as user meshbridge: nothing is forbidden.
    (port-forward and exec are authorized, then refused for want of a kubelet: no 403.)"""
    clients = cli.clients()
    try:
        report = preflight(cli.bridge, clients)
    finally:
        for c in clients.values():
            c.close()
    assert report.passed, [f.message for f in report.findings if f.blocking]
    code, plan = cli.json("plan")
    assert code == 0 and plan["totals"]["create"] == 13, plan
    code, applied = cli.json("apply", "--no-wait")
    assert code == 0, applied
    assert_healthy(*cli.json("status"))
    code, out, err = cli("certs", "push", "--timeout", "1")
    assert "pushed: eks (eks: 1 Secret(s))" in out and "pushed: gke (gke: 1 Secret(s))" in out, err
    assert "does not have a host assigned" in err and "forbidden" not in err  # port-forward authorized
    code, verified = cli.json("verify")
    # port-forward (the routes) and exec (the app's curl) are authorized; the server has no kubelet behind them
    assert code == 2 and "forbidden" not in json.dumps(verified)
    checks = {c["check"]: c for c in verified["conditions"]}
    for check in ("IngressGatewayRoutes", "EgressGatewayRoutes", "AppReachesExport"):
        assert "does not have a host assigned" in checks[check]["message"], checks[check]
    code, deleted = cli.json("delete", state=False)
    assert code == 0 and sum(len(m["deleted"]) for m in deleted["meshes"]) == 13


def test_what_render_rbac_leaves_out_is_refused_and_plan_says_where_it_looked(cli: Cli, local: Clusters) -> None:
    """Listing in all namespaces is not granted (it would read every Secret): the server refuses it, and plan
    looks in the bridge's namespaces instead, with a note."""
    with local["eks"].client(admin=False) as user, pytest.raises(KubeApiError) as e:
        user.list_objects(resource_type("v1", "Secret"))
    assert e.value.status == 403 and 'cannot list resource "secrets" in API group "" at the cluster scope' in str(
        e.value
    )
    for command in ("plan", "apply", "status"):
        code, out, err = cli(command, *(["--no-wait"] if command == "apply" else []))
        assert code == (1 if command == "status" else 0), err  # status: the gateway pods on no node, not READY
        notes = [line for line in err.splitlines() if line.startswith("note:")]
        unscheduled = [n for n in notes if "on no node" in n]  # status: the stand-in's gateway pods, no kubelet
        assert len(unscheduled) == (2 if command == "status" else 0), notes
        notes = [n for n in notes if n not in unscheduled]
        # one line per mesh, naming the kinds and the namespaces searched, on stderr, within 100 columns
        assert notes == [
            "note: eks: looked in istio-ingress only: no permission to list its 7 kinds cluster-wide",
            "note: gke: looked in istio-egress only: no permission to list its 5 kinds cluster-wide",
        ], notes
        assert "note:" not in out and all(len(n) < 100 for n in notes)
    # the twin: the admin may list cluster-wide, and nothing is noted
    t = cli.target
    cli.target = Target(t.kubeconfig, {m: f"{m}-admin" for m in t.contexts}, local=True, run=t.run)
    code, _, err = cli("plan", "--no-diff")
    assert code == 0 and "note:" not in err, err


APPLIED = "apply first"


def case(permission: Permission, before: str | None, command: list[str], then: int, where: str = "") -> Any:
    """One verb taken away; ``where``: how the server's refusal says where, when not the Role's namespace."""
    where = where or f'in the namespace "{permission.namespace}"'
    return pytest.param(permission, before, command, then, where, id=str(permission))


@pytest.mark.parametrize(
    ("permission", "before", "command", "then", "where"),
    [
        # a server-side apply (its dry run too) that creates an object is authorized as create
        case(Permission("eks", "istio-ingress", "", "secrets", "create"), None, ["plan"], 0),
        case(
            Permission("gke", "istio-egress", "networking.istio.io", "virtualservices", "delete"),
            APPLIED,
            ["delete"],
            0,
        ),
        # preflight's IstioApi lists each Istio kind
        case(Permission("eks", "istio-ingress", "networking.istio.io", "gateways", "list"), None, ["plan"], 0),
        # certs push applies onto the existing Secret: a patch (then it waits on port-forward: no kubelet, 2)
        case(
            Permission("gke", "istio-egress", "", "secrets", "patch"), APPLIED, ["certs", "push", "--timeout", "1"], 2
        ),
        # preflight's DnsCapture reads the importer's mesh config
        case(Permission("gke", "istio-system", "", "configmaps", "get"), None, ["plan"], 0),
        # status reads the gateway Namespace (nothing applied: then 1, objects missing); the server says the
        # namespace of a Namespace is itself
        case(Permission("eks", None, "", "namespaces", "get"), None, ["status"], 1, 'in the namespace "istio-ingress"'),
    ],
)
def test_one_verb_less_fails_naming_the_verb_the_resource_and_the_namespace(
    cli: Cli, local: Clusters, permission: Permission, before: str | None, command: list[str], then: int, where: str
) -> None:
    """Each refusal is a 403 that names the verb, the resource and where; its twin, the same command once the
    verb is back, is refused nothing."""
    state = command[0] != "delete"  # delete needs no certificates: it has no --state-dir
    if before == APPLIED:
        assert cli("apply", "--no-wait")[0] == 0
    with without(local, permission):
        code, out, err = cli(*command, state=state)
    shown = " ".join((out + err).split())
    assert code == 2, shown
    denied = (
        f'User "meshbridge" cannot {permission.verb} resource "{permission.resource}" in API group '
        f'"{permission.group}" {where}'
    )
    assert denied in shown
    code, out, err = cli(*command, state=state)
    assert code == then and "forbidden" not in out + err, out + err


@pytest.mark.parametrize("verb", ["get", "create"])
def test_streams_need_both_get_and_create(local: Clusters, verb: str) -> None:
    """The client opens port-forward and exec with a GET and a 1.37 server checks create too: with either verb
    alone the stream is refused, and the message says both are needed (with both, see
    test_every_cluster_command_works_as_the_user_render_rbac_binds: no 403)."""
    pods = resource_type("v1", "Pod")
    forward = Permission("eks", "istio-ingress", "", "pods/portforward", verb)
    with without(local, forward), local["eks"].client(admin=False) as user:
        pod = user.list_objects(pods, namespace="istio-ingress")[0]["metadata"]["name"]
        with pytest.raises(KubeApiError) as e:
            user.http_get("istio-ingress", pod, 15000, "/config_dump")
    assert e.value.status == 403 and "needs both get and create on pods/portforward" in str(e.value)
    execute = Permission("gke", "sleep", "", "pods/exec", verb)
    with without(local, execute), local["gke"].client(admin=False) as user:
        pod = user.list_objects(pods, namespace="sleep")[0]["metadata"]["name"]
        with pytest.raises(KubeApiError) as e:
            user.exec("sleep", pod, ["true"])
    assert e.value.status == 403 and "needs both get and create on pods/exec" in str(e.value)
