"""The local real API servers themselves: what they run, who may do what, what the Istio stand-in leaves, and
that stopping them leaves no process and no key behind (the session's pair, and 'make clusters-up/-down')."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from meshbridge.kube.binaries import kubernetes_version
from meshbridge.kube.envtest import CERT_GROUP, CERT_USER, USER, Clusters, running
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.istio_standin import lb_hostname
from meshbridge.kube.preflight import pod_ready
from meshbridge.kube.resources import resource_type
from tests.builders import ROOT, SEED, seed_bridge
from tests.cluster.conftest import Target
from tests.tempcheck import leftover_keys

pytestmark = pytest.mark.cluster


def whoami(run: Clusters, mesh: str, context: str) -> dict[str, object]:
    """The user the API server sees for ``context`` (a SelfSubjectReview, as 'kubectl auth whoami')."""
    from meshbridge.kube.client import KubeClient

    with KubeClient.from_kubeconfig(context, kubeconfig=run.kubeconfig) as c:
        review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
        out = c.request(
            "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", body=review, what="whoami", verb="create"
        )
    info: dict[str, object] = out["status"]["userInfo"]
    return info


def test_each_mesh_has_its_own_real_api_server_with_tls_rbac_and_three_users(local: Clusters) -> None:
    assert set(local.clusters) == {"eks", "gke"} and local["eks"].url != local["gke"].url
    for mesh, c in local.clusters.items():
        with c.client(admin=False) as user:
            assert user.version()["gitVersion"] == kubernetes_version()
            with pytest.raises(KubeApiError) as denied:  # RBAC: the documented permissions, not more
                user.request("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", what="clusterroles", verb="list")
            assert denied.value.status == 403 and f'User "{USER}" cannot list resource "clusterroles"' in str(
                denied.value
            )
        assert whoami(local, mesh, mesh)["username"] == USER
        cert = whoami(local, mesh, f"{mesh}-cert")
        assert cert["username"] == CERT_USER and CERT_GROUP in cert["groups"]  # type: ignore[operator]
        assert "system:masters" in whoami(local, mesh, f"{mesh}-admin")["groups"]  # type: ignore[operator]


def test_the_other_clusters_ca_is_not_trusted(local: Clusters) -> None:
    """TLS is verified: the eks client configuration does not accept gke's server certificate."""
    from meshbridge.kube.client import KubeClient

    conf = local["eks"].configuration()
    conf.host = local["gke"].url
    with KubeClient.from_configuration(conf, "eks-ca-against-gke") as c, pytest.raises(KubeApiError) as e:
        c.version()
    assert e.value.status == 0 and "CERTIFICATE_VERIFY_FAILED" in str(e.value)


def test_the_istio_stand_in_is_what_meshbridge_reads(local: Clusters) -> None:
    bridge = seed_bridge()
    with local["eks"].client() as eks, local["gke"].client() as gke:
        for api in ("v1", "v1beta1", "v1alpha3"):  # Istio's CRDs serve every version meshbridge may render
            eks.list_objects(resource_type(f"networking.istio.io/{api}", "Gateway"), namespace="istio-ingress")
        pods = eks.list_objects(resource_type("v1", "Pod"), namespace="istio-ingress")
        assert [p["metadata"]["labels"]["istio.io/rev"] for p in pods] == ["1-17"] and all(map(pod_ready, pods))
        # Ready for preflight, but on no node, as the scheduler leaves a pod when there is none (no kubelet here)
        assert not any(p["spec"].get("nodeName") for p in pods)
        scheduled = [c for p in pods for c in p["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert [(c["status"], c["reason"]) for c in scheduled] == [("False", "Unschedulable")]
        ig = bridge.spec.meshes["eks"].ingress_gateway
        assert ig is not None
        svc = eks.request("GET", f"/api/v1/namespaces/{ig.namespace}/services/{ig.name}", what="svc", verb="get")
        assert svc["status"]["loadBalancer"]["ingress"] == [{"hostname": lb_hostname("eks", ig)}]
        assert svc["spec"]["clusterIP"].startswith("10.0.0.")  # allocated by the real server
        istiod = gke.list_objects(resource_type("v1", "Pod"), label_selector="app=istiod")
        assert len(istiod) == 1 and pod_ready(istiod[0])
        managers = {m["manager"] for m in istiod[0]["metadata"]["managedFields"]}
        assert managers == {"istio-standin", "kubelet"}  # Ready through pods/status, as a kubelet would


def test_the_suite_targets_the_local_pair_when_no_context_is_given(target: Target, local: Clusters) -> None:
    assert target.local and target.contexts == {"eks": "eks", "gke": "gke"}
    config = yaml.safe_load(local.kubeconfig.read_text())
    assert sorted(c["name"] for c in config["contexts"]) == [
        "eks",
        "eks-admin",
        "eks-cert",
        "gke",
        "gke-admin",
        "gke-cert",
    ]
    assert "current-context" not in config
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in local.root.rglob("*.key"))


def _processes(run: Clusters) -> list[int]:
    return [pid for c in run.clusters.values() for pid in c.pids.values()]


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def test_stopping_leaves_no_process_and_no_key(local: Clusters, tmp_path: Path) -> None:
    """A pair of its own (the session's stays up): started, then stopped; nothing of it remains."""
    root = tmp_path / "pair"
    with running(["a", "b"], root) as run:
        pids = _processes(run)
        assert len(pids) == 4 and not any(map(_gone, pids))
        assert leftover_keys(root)  # keys exist while they run
    assert all(map(_gone, pids)) and not root.exists()


def test_make_clusters_up_and_down(local: Clusters, tmp_path: Path) -> None:
    """What a person runs: 'up' returns with the servers running on their own, 'down' stops them and removes
    the folder; a second 'down' has nothing to do."""
    root = tmp_path / "clusters"
    cmd = [sys.executable, "-m", "meshbridge.kube.envtest"]
    up = subprocess.run([*cmd, "up", "-f", str(SEED), "--dir", str(root)], capture_output=True, text=True, cwd=ROOT)
    try:
        assert up.returncode == 0, up.stderr
        assert "clusters-up: ready" in up.stderr and "--context eks=eks --context gke=gke" in up.stderr
        run = Clusters.load(root)
        pids = _processes(run)
        assert len(pids) == 4 and not any(map(_gone, pids))
        env = subprocess.run([*cmd, "env", "--dir", str(root)], capture_output=True, text=True, check=True)
        assert env.stdout.strip() == f"export KUBECONFIG={root / 'kubeconfig'}"
        again = subprocess.run([*cmd, "up", "--dir", str(root)], capture_output=True, text=True)
        assert again.returncode == 2 and "already holds clusters" in again.stderr
    finally:
        down = subprocess.run([*cmd, "down", "--dir", str(root)], capture_output=True, text=True)
    assert down.returncode == 0 and "stopped eks, gke" in down.stderr, down.stderr
    deadline = time.monotonic() + 5
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)  # detached: init reaps them
    assert all(map(_gone, pids)) and not root.exists()
    twice = subprocess.run([*cmd, "down", "--dir", str(root)], capture_output=True, text=True)
    assert twice.returncode == 0 and "nothing to stop" in twice.stderr
