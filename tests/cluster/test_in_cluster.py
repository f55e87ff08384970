"""meshbridge in a Pod (``-m cluster``, local servers only): ``--context eks=@in-cluster`` as a service account.

What a kubelet gives a Pod is made here by hand: a ServiceAccount, a token for it from the TokenRequest API
(``serviceaccounts/<name>/token``, as the admin), bound to what ``meshbridge render --rbac --subject
ServiceAccount:NS/NAME`` prints; the token and the cluster's CA in a folder standing for
``/var/run/secrets/kubernetes.io/serviceaccount``, and ``KUBERNETES_SERVICE_HOST``/``PORT`` pointing at the eks
server. gke stays a kubeconfig context in the same runs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from meshbridge.kube import kubeconfig
from meshbridge.kube.client import KubeClient, apply_raw
from meshbridge.kube.envtest import Clusters, grant_permissions
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.istio_standin import namespace
from meshbridge.kube.kubeconfig import IN_CLUSTER, in_cluster_configuration
from meshbridge.kube.resources import resource_type
from meshbridge.render.rbac import RBAC_API, Subject, render_rbac
from tests.cluster.conftest import Target
from tests.cluster.support import Cli, Doc, admin, assert_healthy

pytestmark = pytest.mark.cluster

SA_NAMESPACE, SA = "meshbridge-ci", "meshbridge-runner"
ROLE = "meshbridge-in-cluster-test"
"""The name of the service account's Roles and bindings (not the bridge's, which the suite's user holds)."""


def service_account_rbac(cli: Cli) -> list[Doc]:
    """``render --rbac`` of the bridge for mesh eks, bound to the service account only, under :data:`ROLE`."""
    docs = list(render_rbac(cli.bridge, [Subject("ServiceAccount", SA, SA_NAMESPACE)])["eks"])
    for doc in docs:
        doc["metadata"]["name"] = ROLE
        if "roleRef" in doc:
            doc["roleRef"]["name"] = ROLE
    return docs


@pytest.fixture
def pod(cli: Cli, local: Clusters, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A Pod's view of the eks cluster (its service account folder, returned) and the CLI with eks=@in-cluster."""
    cluster = local["eks"]
    docs = service_account_rbac(cli)
    with admin(local, "eks") as a:
        namespace(a, SA_NAMESPACE)
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": SA, "namespace": SA_NAMESPACE}}
        apply_raw(a, f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts/{SA}", account, manager="envtest")
        grant_permissions(a, docs)
        request: Doc = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
        request["spec"] = {"expirationSeconds": 3600}
        minted = a.request(
            "POST",
            f"/api/v1/namespaces/{SA_NAMESPACE}/serviceaccounts/{SA}/token",
            body=request,
            what=f"a token of ServiceAccount {SA_NAMESPACE}/{SA}",
            verb="create",
        )
    folder = tmp_path / "serviceaccount"
    folder.mkdir()
    (folder / "token").touch(mode=0o600)
    (folder / "token").write_text(minted["status"]["token"])
    shutil.copy(cluster.ca_file, folder / "ca.crt")
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT_DIR", folder)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(cluster.port))
    cli.target = Target(cli.target.kubeconfig, {"eks": IN_CLUSTER, "gke": "gke"}, local=True, run=local)
    with KubeClient.from_configuration(in_cluster_configuration(), IN_CLUSTER) as account_client:
        _until_bound(account_client)
    try:
        yield folder
    finally:
        with admin(local, "eks") as a:
            for doc in reversed(docs):
                md = doc["metadata"]
                where = f"namespaces/{md['namespace']}/" if md.get("namespace") else ""
                path = f"/apis/{RBAC_API}/{where}{doc['kind'].lower()}s/{ROLE}"
                a.request("DELETE", path, what=f"{doc['kind']} {ROLE}", verb="delete")


def _until_bound(client: KubeClient) -> None:
    """Until the authorizer's cache has the service account's Roles (RBAC is read from informers); pytest-timeout
    bounds it."""
    secrets = resource_type("v1", "Secret")
    while True:
        try:
            client.list_objects(secrets, namespace="istio-ingress")
            return
        except KubeApiError as e:
            if e.status != 403:
                raise


def test_in_a_pod_plan_apply_and_status_run_as_its_service_account(cli: Cli, pod: Path) -> None:
    code, plan = cli.json("plan")
    assert code == 0 and plan["totals"]["create"] == 13, plan
    assert [m["context"] for m in plan["meshes"]] == [IN_CLUSTER, "gke"]
    code, applied = cli.json("apply", "--no-wait")
    assert code == 0, applied
    json_code, status = cli.json("status")
    assert_healthy(json_code, status)
    eks = status["meshes"][0]
    assert eks["context"] == IN_CLUSTER and all(o["state"] in ("present", "unmanaged") for o in eks["objects"])
    code, out, _ = cli("status")
    assert code == json_code and f"== mesh eks (context {IN_CLUSTER})" in out


def test_a_rejected_token_is_a_401_naming_the_in_cluster_configuration(cli: Cli, pod: Path) -> None:
    """Negative twin: the same Pod with a token the server does not accept."""
    (pod / "token").write_text("not-a-service-account-token")
    code, out, err = cli("status")
    text = " ".join((out + err).split())
    assert code == 2
    assert (
        f"cluster '{IN_CLUSTER}': get the API server version (/version) failed: 401 Unauthorized: Unauthorized; "
        f"the in-cluster configuration's service account token ({pod / 'token'}) was rejected"
    ) in text
    assert "spec.serviceAccountName" in text and "aws eks update-kubeconfig" not in text
    assert "== mesh gke (context gke)" in out  # the other mesh is still shown
