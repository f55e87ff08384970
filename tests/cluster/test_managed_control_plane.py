"""A managed control plane (``-m cluster``, local servers only): preflight recognises it and does not ask to
install Istio over it.

A real API server plays a GKE cluster on managed Cloud Service Mesh: no istiod pod runs in it, and the fleet
declares the control plane with a ``ControlPlaneRevision`` (``mesh.cloud.google.com``). The CRD here is a
minimal one with that group, kind and scope, not Google's schema: detection reads only the API's discovery and
one object's name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from meshbridge.kube import preflight
from meshbridge.kube.client import KubeClient, apply_raw
from meshbridge.kube.envtest import Clusters, grant_permissions, permissions, start_clusters
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.istio_standin import namespace
from meshbridge.kube.managed import managed_control_plane
from meshbridge.kube.preflight import PreflightCheck
from tests.builders import bridge_from
from tests.cluster.conftest import Target
from tests.cluster.support import bridge_data

pytestmark = pytest.mark.cluster

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "controlplanerevisions.mesh.cloud.google.com"},
    "spec": {
        "group": "mesh.cloud.google.com",
        "scope": "Namespaced",
        "names": {
            "kind": "ControlPlaneRevision",
            "plural": "controlplanerevisions",
            "singular": "controlplanerevision",
        },
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}
REVISION = {
    "apiVersion": "mesh.cloud.google.com/v1beta1",
    "kind": "ControlPlaneRevision",
    "metadata": {"name": "asm-managed", "namespace": "istio-system"},
    "spec": {"type": "managed_service", "channel": "regular"},
}
REVISIONS = "/apis/mesh.cloud.google.com/v1beta1/namespaces/istio-system/controlplanerevisions"


@pytest.fixture(scope="module")
def managed(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """A cluster ``managed`` without istiod, serving the ControlPlaneRevision API; the bridge's user for mesh gke."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    run = start_clusters(["managed"], tmp_path_factory.mktemp("managed"))
    try:
        with run["managed"].client() as admin:
            apply_raw(
                admin,
                f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD['metadata']['name']}",
                CRD,
                manager="test",
            )
            rbac = permissions(bridge_from(bridge_data()), "gke")
            for name in {"istio-system"} | {
                str(d["metadata"]["namespace"]) for d in rbac if "namespace" in d["metadata"]
            }:
                namespace(admin, name)
            grant_permissions(admin, rbac)
            _wait_served(admin)
        yield run
    finally:
        run.stop()


@pytest.fixture
def declared(managed: Clusters) -> Iterator[Clusters]:
    """The managed cluster with its ControlPlaneRevision ``istio-system/asm-managed``."""
    with managed["managed"].client() as admin:
        apply_raw(admin, f"{REVISIONS}/asm-managed", REVISION, manager="test")
    yield managed
    with managed["managed"].client() as admin:
        admin.request("DELETE", f"{REVISIONS}/asm-managed", what="asm-managed", verb="delete")


def _wait_served(admin: KubeClient) -> None:
    for _ in range(200):
        try:
            admin.request("GET", REVISIONS, what="controlplanerevisions", verb="list")
            return
        except KubeApiError:  # the CRD is not established yet
            time.sleep(0.1)
    raise AssertionError("the ControlPlaneRevision CRD was never served")


def _gke_checks(managed: Clusters, target: Target, *, admin: bool) -> dict[str, PreflightCheck]:
    """Preflight with mesh gke on the managed cluster (eks on the pair's)."""
    assert target.run is not None
    with managed["managed"].client(admin=admin) as gke, target.run["eks"].client(admin=admin) as eks:
        report = preflight(bridge_from(bridge_data()), {"eks": eks, "gke": gke})
    return {f.check: f for f in report.findings if f.mesh == "gke"}


def test_preflight_names_the_managed_control_plane_and_asks_for_no_istiod(declared: Clusters, target: Target) -> None:
    checks = _gke_checks(declared, target, admin=False)  # the bridge's minimal RBAC: it may not list them
    plane = checks["ControlPlane"]
    assert plane.ok and "Google Cloud Service Mesh (managed)" in plane.message
    assert "do not run 'meshbridge render --install'" in plane.message
    assert checks["IstioRevision"].ok and "runs it" in checks["IstioRevision"].message


def test_an_admin_sees_which_revision_declares_it(declared: Clusters) -> None:
    with declared["managed"].client() as admin:
        found = managed_control_plane(admin)
    assert found is not None
    assert found.describe() == "Google Cloud Service Mesh (managed): ControlPlaneRevision istio-system/asm-managed"


def test_the_api_without_a_revision_is_no_managed_control_plane(managed: Clusters, target: Target) -> None:
    with managed["managed"].client() as admin:
        assert managed_control_plane(admin) is None
    checks = _gke_checks(managed, target, admin=True)
    assert "ControlPlane" not in checks
    revision = checks["IstioRevision"]
    assert (
        not revision.ok
        and "no istiod pod found" in revision.message
        and "install the control plane" in revision.message
    )


def test_a_cluster_without_any_providers_api_is_no_managed_control_plane(target: Target) -> None:
    assert target.run is not None
    with target.run["gke"].client() as admin:
        assert managed_control_plane(admin) is None
