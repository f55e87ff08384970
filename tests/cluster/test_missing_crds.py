"""A cluster without Istio's CRDs (``-m cluster``, local servers only): status and plan name each missing CRD once.

A third real API server is started for this module ("bare": an etcd and a kube-apiserver like the pair's), with
what an Istio installation leaves (istiod, the exporter's ingress gateway, its Service's address) but not
Istio's CRDs, as when the istiod chart was installed without the base chart. It plays the eks mesh; gke stays the
pair's, with its CRDs, in the same run.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from meshbridge.kube.envtest import Clusters, grant_permissions, permissions, start_clusters
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.istio_standin import gateway, istiod, lb_hostname
from meshbridge.kube.resources import ResourceRef
from meshbridge.kube.routes import gateway_workloads
from tests.builders import bridge_from
from tests.cluster.conftest import Target
from tests.cluster.support import Cli, bridge_data

pytestmark = pytest.mark.cluster

CRDS = ["serviceentries", "destinationrules", "gateways", "virtualservices", "envoyfilters"]


@pytest.fixture(scope="module")
def bare(target: Target, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clusters]:
    """One more cluster, ``bare``, without Istio's CRDs; its user has the bridge's permissions for mesh eks."""
    if target.run is None:
        pytest.skip("needs the clusters this suite starts (MESHBRIDGE_CONTEXTS is set)")
    bridge = bridge_from(bridge_data())
    run = start_clusters(["bare"], tmp_path_factory.mktemp("bare"))
    try:
        spec = bridge.spec.meshes["eks"]
        with run["bare"].client() as admin:
            istiod(admin, spec)
            for role, gw in gateway_workloads(bridge, "eks"):
                gateway(
                    admin, spec, gw, kind="LoadBalancer", address=lb_hostname("eks", gw) if role == "ingress" else None
                )
            grant_permissions(admin, permissions(bridge, "eks"))
        yield run
    finally:
        run.stop()


@pytest.fixture
def on_bare(cli: Cli, bare: Clusters, target: Target, monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The CLI with mesh eks on the bare cluster and gke on the pair's (both kubeconfigs, through $KUBECONFIG)."""
    monkeypatch.setenv("KUBECONFIG", f"{target.kubeconfig}:{bare.kubeconfig}")
    cli.target = Target(None, {"eks": "bare", "gke": "gke"}, local=True, run=target.run)
    return cli


def test_the_api_server_answers_404_for_a_kind_it_does_not_serve(bare: Clusters, target: Target) -> None:
    """Measured: a collection and an object of an unserved kind are both a plain 404 ("404 page not found", not a
    Status), so an object read alone would say 'missing'; that is why the kind is asked about first."""
    gateways = "/apis/networking.istio.io/v1/namespaces/istio-ingress/gateways"
    with bare["bare"].client(admin=True) as admin:
        for path in (gateways, f"{gateways}/eastwestgateway"):
            with pytest.raises(KubeApiError) as e:
                admin.request("GET", path, what=path, verb="get")
            assert (e.value.status, e.value.reason, e.value.server_message) == (404, "Not Found", "404 page not found")
    # negative twin: where the kind is served, its collection answers, and an absent object is a Status NotFound
    assert target.run is not None
    with target.run["eks"].client(admin=True) as admin:
        assert admin.request("GET", gateways, what=gateways, verb="list")["kind"] == "GatewayList"
        with pytest.raises(KubeApiError) as e:
            admin.request("GET", f"{gateways}/absent", what="absent", verb="get")
    assert (e.value.status, e.value.reason) == (404, "NotFound")
    assert e.value.server_message == 'gateways.networking.istio.io "absent" not found'


def test_status_names_each_missing_crd_once_instead_of_its_objects(on_bare: Cli) -> None:
    code, out, err = on_bare("status")
    text = " ".join(out.split())
    assert code == 1, err
    for crd in CRDS:
        assert text.count(f"the CRD {crd}.networking.istio.io is not installed in context 'bare'") == 1, crd
    assert (
        "error: the CRD gateways.networking.istio.io is not installed in context 'bare' (networking.istio.io/v1beta1"
        in (text)
    )
    assert "Fix: install Istio's CRDs (the base chart: 'helm install istio-base istio/base -n istio-system'" in text
    eks, gke = text.split("== mesh gke")
    assert "VirtualService" not in eks.split("error: the CRD", 1)[0]  # no row for objects of a missing kind
    # negative twin, in the same run: gke has the CRDs, so its objects are listed as today (nothing applied yet)
    assert "VirtualService istio-egress direct-lambda-through-egress-gateway missing" in gke
    assert "is not installed" not in gke


def test_status_json_lists_the_missing_crds_and_only_served_kinds(on_bare: Cli) -> None:
    code, status = on_bare.json("status")
    assert code == 1
    eks, gke = status["meshes"]
    networking = [
        f"{c}.networking.istio.io" for c in CRDS
    ]  # the AuthorizationPolicy's CRD is missing too, in apply order
    assert [m["crd"] for m in eks["missing_crds"]] == [
        *networking[:2],
        "authorizationpolicies.security.istio.io",
        *networking[2:],
    ]
    assert {o["kind"] for o in eks["objects"]} == {"Namespace", "Secret"}
    assert eks["error"] is None and eks["gateways"][0]["total"] == 1  # not READY: the stand-in's pods are on no node
    # negative twin: the cluster with the CRDs
    assert gke["missing_crds"] == []
    assert {o["kind"]: o["state"] for o in gke["objects"]}["VirtualService"] == "missing"


def test_plan_names_each_missing_crd_once_and_writes_nothing(on_bare: Cli, bare: Clusters) -> None:
    code, _, err = on_bare("plan")
    text = " ".join(err.split())
    assert code == 2
    assert "preflight failed" in text and "nothing was written" in text
    for crd in CRDS:
        assert text.count(f"eks (bare) IstioApi: the CRD {crd}.networking.istio.io is not installed") == 1, crd
    with bare["bare"].client() as admin:
        assert admin.get(ResourceRef("v1", "Secret", "istio-ingress", "mtls-credential")) is None
    # negative twin: with the pair's eks, which has the CRDs, the same plan passes
    on_bare.target = Target(on_bare.target.kubeconfig, {"eks": "eks", "gke": "gke"}, local=True, run=on_bare.target.run)
    code, _, err = on_bare("plan")
    assert code == 0 and "IstioApi" not in err, err
