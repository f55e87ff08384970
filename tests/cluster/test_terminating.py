"""A gateway namespace being deleted (``-m cluster``, local servers only): its 403 says so, not "grant the verb".

The local servers run no namespace controller, so a deleted namespace keeps its ``kubernetes`` finalizer and
stays Terminating for the rest of the session: each test makes one of its own (a unique name) with a gateway
in it, and a bridge whose exporter's ingress gateway runs there.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from meshbridge.kube.client import KubeClient
from meshbridge.kube.envtest import Clusters, grant_permissions, permissions
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.istio_standin import gateway, lb_hostname
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore
from tests.cluster.support import Cli, Doc, admin, assert_healthy, get

pytestmark = pytest.mark.cluster


def role_in(cli: Cli, namespace: str, *, without: str | None = None) -> list[Doc]:
    """The Role and RoleBinding ``render --rbac`` gives the suite's user in ``namespace`` (``without`` a verb);
    the bridge's other namespaces keep the permissions the suite started with."""
    docs = [d for d in permissions(cli.bridge, "eks") if d["metadata"].get("namespace") == namespace]
    for doc in docs:
        if doc["kind"] == "Role" and without:
            doc["rules"] = [dict(r, verbs=[v for v in r["verbs"] if v != without]) for r in doc["rules"]]
    return docs


def until_user_may_create(local: Clusters, namespace: str, allowed: bool = True) -> None:
    """Until the authorizer's cache agrees (RBAC is read from informers): a dry-run create of a Secret as the
    suite's user is allowed (or refused 403). pytest-timeout bounds it."""
    probe: Doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe", "namespace": namespace}}
    with local["eks"].client(admin=False) as user:
        while True:
            try:
                user.apply(probe, dry_run=True)
                if allowed:
                    return
            except KubeApiError as e:
                if e.status != 403:
                    raise
                if not allowed:
                    return


@pytest.fixture
def namespace(cli: Cli, local: Clusters) -> Iterator[str]:
    """A namespace of its own with the exporter's ingress gateway in it, the bridge's gateway namespace on eks,
    and the user's permissions there (``render --rbac`` of that bridge)."""
    name = f"mb-terminating-{secrets.token_hex(3)}"

    def move(d: Doc) -> None:
        d["spec"]["meshes"]["eks"]["ingressGateway"]["namespace"] = name

    cli.write(move)
    PkiStore(cli.state).issue(cli.bridge)
    spec = cli.bridge.spec.meshes["eks"]
    gw = spec.ingress_gateway
    assert gw is not None
    with admin(local, "eks") as a:
        gateway(a, spec, gw, kind="LoadBalancer", address=lb_hostname("eks", gw))
        grant_permissions(a, role_in(cli, name))
    until_user_may_create(local, name)
    yield name


def delete_namespace(a: KubeClient, name: str) -> None:
    a.request("DELETE", f"/api/v1/namespaces/{name}", what=f"Namespace {name}", verb="delete")


def test_the_api_server_refuses_new_objects_in_a_terminating_namespace_with_403(
    namespace: str, local: Clusters
) -> None:
    """Measured: the answer meshbridge handles (403 Forbidden, a NamespaceTerminating cause), even for the admin."""
    secret: Doc = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe", "namespace": namespace}}
    with admin(local, "eks") as a:
        a.apply(secret, dry_run=True)  # negative twin: while the namespace lives, the same write passes
        delete_namespace(a, namespace)
        live = get(local, "eks", f"/api/v1/namespaces/{namespace}")
        assert live is not None and live["status"]["phase"] == "Terminating"
        assert live["metadata"]["deletionTimestamp"] and live["spec"]["finalizers"] == ["kubernetes"]
        with pytest.raises(KubeApiError) as e:
            a.apply(secret, dry_run=True)
    assert (e.value.status, e.value.reason) == (403, "Forbidden")
    assert e.value.server_message == (
        f'secrets "probe" is forbidden: unable to create new content in namespace {namespace} because it is being '
        f"terminated (metadata.namespace: namespace {namespace} is being terminated)"
    )


def test_plan_in_a_terminating_namespace_says_it_is_being_deleted(cli: Cli, namespace: str, local: Clusters) -> None:
    # negative twin: while the namespace lives, the same bridge plans
    code, _, err = cli("plan")
    assert code == 0, err
    with admin(local, "eks") as a:
        delete_namespace(a, namespace)
    code, _, err = cli("plan")
    text = " ".join(err.split())
    assert code == 2
    assert (
        f"cluster 'eks': apply (dry run) Secret {namespace}/mtls-credential failed: 403 Forbidden: secrets "
        f'"mtls-credential" is forbidden: unable to create new content in namespace {namespace} because it is '
        "being terminated"
    ) in text
    assert f"namespace {namespace} is being deleted (Terminating)" in text
    assert f"'kubectl --context eks get namespace {namespace}' no longer finds it" in text
    assert "grant the verb" not in text and "Required RBAC" not in text
    # nothing was written, on either cluster
    assert get(local, "eks", ResourceRef("v1", "Secret", namespace, "mtls-credential").path) is None


def test_an_rbac_403_in_the_same_namespace_keeps_the_rbac_fix(cli: Cli, namespace: str, local: Clusters) -> None:
    """Negative twin: a namespace that lives, and a user whose Role there lacks create: a permission, named."""
    with admin(local, "eks") as a:
        grant_permissions(a, role_in(cli, namespace, without="create"))
    until_user_may_create(local, namespace, allowed=False)
    code, _, err = cli("plan")
    text = " ".join(err.split())
    assert code == 2
    assert f'User "meshbridge" cannot create resource "secrets" in API group "" in the namespace "{namespace}"' in text
    assert "Fix: grant the verb on this resource ('meshbridge render --rbac | kubectl apply -f -'" in text
    assert "being deleted" not in text


def test_status_flags_a_terminating_gateway_namespace_and_the_mesh_is_unhealthy(
    cli: Cli, namespace: str, local: Clusters
) -> None:
    code, _, err = cli("apply", "--no-wait")
    assert code == 0, err
    # negative twin: while the namespace lives, status does not flag it and the bridge is healthy
    json_code, status = cli.json("status")
    eks = status["meshes"][0]
    assert_healthy(json_code, status)
    (ns,) = [o for o in eks["objects"] if o["kind"] == "Namespace" and o["name"] == namespace]
    assert ns["state"] in ("present", "unmanaged")
    code, out, _ = cli("status")
    assert code == json_code and "being deleted" not in out
    with admin(local, "eks") as a:
        delete_namespace(a, namespace)
    code, status = cli.json("status")
    eks, gke = status["meshes"]
    assert code == 1 and status["healthy"] is False and eks["healthy"] is False
    assert all(o["state"] in ("present", "unmanaged") for o in gke["objects"])  # per mesh: gke's namespaces live
    (ns,) = [o for o in eks["objects"] if o["kind"] == "Namespace" and o["name"] == namespace]
    fix = (
        f"namespace {namespace} is being deleted (Terminating): the objects in it go with it, and the API server "
        f"refuses new ones. Fix: wait until 'kubectl --context eks get namespace {namespace}' no longer finds it"
    )
    assert ns["state"] == "terminating" and ns["detail"].startswith(fix)
    assert ns["detail"].endswith("or use another namespace in the bridge spec")
    assert [o for o in eks["objects"] if o["state"] == "terminating"] == [ns]  # one line per mesh
    code, out, _ = cli("status")
    assert code == 1 and f"Namespace - {namespace} terminating" in " ".join(out.split())
    assert "".join(fix.split()) in "".join(out.split())  # the sentence under the row, wrapped (hyphens too)
