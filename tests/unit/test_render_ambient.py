"""An ambient importer (``meshes.<m>.dataplane: ambient``): the waypoint as the egress gateway, the rules bound
to it, the namespaces ztunnel captures, the policy on the imports; the spec's refusals; the owned kinds; the
Helm and IstioOperator installs. Each positive test has its sidecar (or refused) twin."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.errors import LocalError, SpecError
from meshbridge.kube.apply import owned_types
from meshbridge.kube.binaries import KubeServersUnavailable
from meshbridge.kube.istio_standin import istio_crd_file
from meshbridge.local.twin import check_dataplanes
from meshbridge.render.bridge import render_bridge
from meshbridge.render.helm import render_helm
from meshbridge.render.install import render_install
from meshbridge.render.owned import WAYPOINT, owned_kinds
from tests.builders import bridge_from, issued_store, seed_bridge, seed_dict
from tests.golden import check_golden, check_golden_text

Document = dict[str, Any]


def ambient_dict(version: str = "1.31.0") -> dict[str, Any]:
    """The seed bridge with the importer (gke) on an ambient data plane at ``version``."""
    d = seed_dict()
    gke = d["spec"]["meshes"]["gke"]
    gke["dataplane"] = "ambient"
    gke["istio"] = {"version": version}
    return d


def ambient_bridge() -> Any:
    return bridge_from(ambient_dict())


def docs_of(bridge: Any, mesh: str = "gke", credentials: Any = None) -> list[Document]:
    return list(render_bridge(bridge, credentials)[mesh])


def one(docs: list[Document], api: str, kind: str) -> Document:
    found = [d for d in docs if d["apiVersion"] == api and d["kind"] == kind]
    assert len(found) == 1, [d["metadata"]["name"] for d in found]
    return found[0]


# -- render -----------------------------------------------------------------------------------------------


def test_the_waypoint_is_a_gateway_api_gateway_of_class_istio_waypoint_on_hbone() -> None:
    wp = one(docs_of(ambient_bridge()), "gateway.networking.k8s.io/v1", "Gateway")
    assert wp["metadata"]["name"] == "istio-egressgateway"
    assert wp["metadata"]["namespace"] == "istio-egress"
    assert wp["metadata"]["labels"]["istio.io/waypoint-for"] == "service"
    # its pods run as the identity the client certificate names (istiod names the account after the Gateway)
    assert wp["metadata"]["annotations"] == {"gateway.istio.io/service-account": "istio-egressgateway-service-account"}
    assert wp["spec"] == {
        "gatewayClassName": "istio-waypoint",
        "listeners": [{"name": "mesh", "port": 15008, "protocol": "HBONE"}],
    }


def test_a_sidecar_importer_has_no_waypoint_and_keeps_the_gateway_and_routes() -> None:
    docs = docs_of(seed_bridge())
    assert not [d for d in docs if d["apiVersion"].startswith("gateway.networking.k8s.io")]
    assert {d["kind"] for d in docs} >= {"Gateway", "VirtualService", "DestinationRule", "ServiceEntry"}
    assert all("istio.io/use-waypoint" not in d["metadata"].get("labels", {}) for d in docs)
    assert all("istio.io/dataplane-mode" not in d["metadata"].get("labels", {}) for d in docs)


def test_the_service_entry_is_bound_to_the_waypoint_and_the_rule_originates_mutual_tls() -> None:
    docs = docs_of(ambient_bridge())
    se = one(docs, "networking.istio.io/v1", "ServiceEntry")
    assert se["metadata"]["namespace"] == "istio-egress"
    assert se["metadata"]["labels"]["istio.io/use-waypoint"] == "istio-egressgateway"
    assert se["spec"]["hosts"] == ["lambda.external"]
    dr = one(docs, "networking.istio.io/v1", "DestinationRule")
    assert dr["metadata"]["namespace"] == "istio-egress"  # the waypoint's: its SDS reads Secrets there
    tls = dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]
    assert tls == {
        "credentialName": "mtls-credential",
        "mode": "MUTUAL",
        "sni": "lambda.external",
        "subjectAltNames": ["lambda.external"],
    }
    # nothing steers the apps: ztunnel sends the ServiceEntry's traffic to its waypoint
    assert not [d for d in docs if d["kind"] == "VirtualService"]
    assert not [d for d in docs if d["apiVersion"] == "networking.istio.io/v1" and d["kind"] == "Gateway"]


def test_the_client_secret_is_in_the_waypoints_namespace(tmp_path: Path) -> None:
    b = ambient_bridge()
    docs = docs_of(b, credentials=issued_store(tmp_path, b).credentials(b))
    secrets = [d for d in docs if d["kind"] == "Secret"]
    assert [(s["metadata"]["namespace"], s["metadata"]["name"]) for s in secrets] == [
        ("istio-egress", "mtls-credential")
    ]
    assert set(secrets[0]["data"]) >= {"cert", "key", "cacert"}


def test_the_apps_and_egress_namespaces_are_captured_by_ztunnel() -> None:
    d = ambient_dict()
    d["spec"]["meshes"]["gke"]["apps"] = [{"name": "web", "namespace": "shop"}, {"name": "cron", "namespace": "ops"}]
    namespaces = [x for x in docs_of(bridge_from(d)) if x["kind"] == "Namespace"]
    assert [n["metadata"]["name"] for n in namespaces] == ["istio-egress", "ops", "shop"]
    assert all(n["metadata"]["labels"]["istio.io/dataplane-mode"] == "ambient" for n in namespaces)
    assert all(n["metadata"]["labels"]["meshbridge.io/bridge"] == "lambda-aws-to-gcp" for n in namespaces)


def test_only_the_apps_namespaces_may_use_the_imports_at_the_waypoint() -> None:
    d = ambient_dict()
    d["spec"]["meshes"]["gke"]["apps"] = [{"name": "web", "namespace": "shop"}]
    policy = one(docs_of(bridge_from(d)), "security.istio.io/v1", "AuthorizationPolicy")
    assert policy["metadata"] == {
        "name": "istio-egressgateway-imports",
        "namespace": "istio-egress",
        "labels": {"app.kubernetes.io/managed-by": "meshbridge", "meshbridge.io/bridge": "lambda-aws-to-gcp"},
    }
    assert policy["spec"] == {
        "targetRefs": [{"group": "networking.istio.io", "kind": "ServiceEntry", "name": "se-lambda-ext"}],
        "action": "ALLOW",
        "rules": [{"from": [{"source": {"namespaces": ["shop"]}}]}],
    }


def test_the_exporter_is_rendered_as_before_when_the_importer_is_ambient() -> None:
    assert docs_of(ambient_bridge(), "eks") == docs_of(seed_bridge(), "eks")


# -- the spec's refusals ----------------------------------------------------------------------------------


def _error(d: dict[str, Any]) -> str:
    with pytest.raises(SpecError) as exc:
        bridge_from(d)
    return str(exc.value)


def test_ambient_before_istio_1_24_is_refused_and_1_24_is_accepted() -> None:
    msg = _error(ambient_dict("1.23.4"))
    assert "spec.meshes.gke.dataplane" in msg
    assert "runs Istio 1.23.4, before ambient mode (GA in 1.24" in msg
    assert "set istio.version to 1.24 or later, or remove dataplane" in msg
    assert bridge_from(ambient_dict("1.24.0")).spec.meshes["gke"].dataplane == "ambient"


def test_ambient_on_a_mesh_that_only_exports_is_refused() -> None:
    d = ambient_dict()
    d["spec"]["meshes"]["eks"]["dataplane"] = "ambient"
    d["spec"]["meshes"]["eks"]["istio"] = {"version": "1.31.0"}
    msg = _error(d)
    assert "spec.meshes.eks.dataplane: mesh 'eks' imports no service" in msg
    assert "list the mesh in an export's 'to'" in msg
    assert "spec.meshes.gke" not in msg  # the importer's ambient is fine


def test_an_ambient_import_under_another_name_is_refused() -> None:
    d = ambient_dict()
    d["spec"]["exports"][0]["importAs"] = {"host": "lambda.internal"}
    msg = _error(d)
    assert "spec.exports[0].importAs" in msg or "spec.exports.0.importAs" in msg
    assert "remove importAs (apps call 'lambda.external') or use dataplane: sidecar" in msg
    d["spec"]["meshes"]["gke"]["dataplane"] = "sidecar"
    assert bridge_from(d).export("lambda").import_host == "lambda.internal"


def test_an_ambient_importer_needs_no_egress_gateway_port_for_the_apps_port() -> None:
    d = ambient_dict()
    d["spec"]["meshes"]["gke"]["egressGateway"]["ports"] = [{"name": "status-port", "port": 15021, "targetPort": 15021}]
    assert bridge_from(d).spec.meshes["gke"].dataplane == "ambient"  # the waypoint listens on HBONE only
    d["spec"]["meshes"]["gke"]["dataplane"] = "sidecar"
    assert "exposes no port 80" in _error(d)


# -- owned kinds ------------------------------------------------------------------------------------------


def test_an_ambient_importer_owns_its_waypoint_and_policy_and_a_sidecar_one_does_not() -> None:
    kinds = owned_kinds(ambient_bridge().spec.meshes["gke"])
    assert WAYPOINT in kinds
    assert "AuthorizationPolicy" in [k.kind for k in kinds]
    sidecar = owned_kinds(seed_bridge().spec.meshes["gke"])
    assert WAYPOINT not in sidecar and "AuthorizationPolicy" not in [k.kind for k in sidecar]
    types = owned_types(ambient_bridge(), "gke")
    assert [(t.api_version, t.plural) for t in types if t.kind == "Gateway"] == [
        ("networking.istio.io/v1", "gateways"),
        ("gateway.networking.k8s.io/v1", "gateways"),
    ]


# -- install ----------------------------------------------------------------------------------------------


def test_helm_installs_ambient_with_cni_and_ztunnel_after_istiod_and_no_egress_gateway() -> None:
    install = render_helm(ambient_bridge())["gke"]
    assert [(r.release, r.chart) for r in install] == [
        ("istio-base", "base"),
        ("istiod", "istiod"),
        ("istio-cni", "cni"),
        ("ztunnel", "ztunnel"),
    ]
    istiod, cni, ztunnel = install.releases[1:]
    assert istiod.values["profile"] == "ambient" and cni.values == {"profile": "ambient"}
    assert ztunnel.values == {} and cni.wait and ztunnel.wait
    script = install.script()
    assert script.index("istio/istiod") < script.index("istio/cni") < script.index("istio/ztunnel")


def test_helm_of_a_sidecar_mesh_has_no_ambient_profile_or_node_agents() -> None:
    install = render_helm(seed_bridge())["gke"]
    assert [r.chart for r in install] == ["base", "istiod", "gateway"]
    assert "profile" not in install.releases[1].values


def test_the_profile_is_read_by_the_charts_from_their_files(tmp_path: Path) -> None:
    try:
        charts = istio_crd_file().parents[2]
    except KubeServersUnavailable as e:
        pytest.skip(str(e))
    for folder in ("istio-control/istio-discovery", "istio-cni"):
        assert (charts / folder / "files" / "profile-ambient.yaml").is_file()
        assert "Values).profile" in (charts / folder / "templates" / "zzz_profile.yaml").read_text()
    for folder in ("istio-cni", "ztunnel"):  # the revision our releases would pass is a key of these charts
        defaults = yaml.safe_load((charts / folder / "values.yaml").read_text())["_internal_defaults_do_not_set"]
        assert "revision" in defaults


def test_istioctl_installs_the_ambient_profile_without_an_egress_gateway() -> None:
    docs = list(render_install(ambient_bridge())["gke"])
    iops = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "IstioOperator"}
    assert iops["control-plane"]["profile"] == "ambient"
    assert "istio-gateways" not in iops  # gke has only the egress gateway, now a waypoint
    sidecar = {
        d["metadata"]["name"]: d["spec"] for d in render_install(seed_bridge())["gke"] if d["kind"] == "IstioOperator"
    }
    assert sidecar["control-plane"]["profile"] == "minimal"
    assert sidecar["istio-gateways"]["components"]["egressGateways"][0]["name"] == "istio-egressgateway"


def test_before_1_25_helm_turns_on_ambients_dns_proxy_and_from_1_25_leaves_the_default() -> None:
    old = render_helm(bridge_from(ambient_dict("1.24.3")))["gke"]
    istiod, cni = old.releases[1], old.releases[2]
    assert cni.values == {"profile": "ambient", "ambient": {"dnsCapture": True}}
    assert istiod.values["pilot"]["env"]["PILOT_ENABLE_IP_AUTOALLOCATE"] == "true"
    new = render_helm(ambient_bridge())["gke"]
    assert new.releases[2].values == {"profile": "ambient"}
    assert "PILOT_ENABLE_IP_AUTOALLOCATE" not in new.releases[1].values["pilot"]["env"]


def test_the_dns_capture_key_is_the_cni_charts(tmp_path: Path) -> None:
    try:
        charts = istio_crd_file().parents[2]
    except KubeServersUnavailable as e:
        pytest.skip(str(e))
    defaults = yaml.safe_load((charts / "istio-cni" / "values.yaml").read_text())["_internal_defaults_do_not_set"]
    assert "dnsCapture" in defaults["ambient"]


# -- the twin ---------------------------------------------------------------------------------------------


def test_the_twin_refuses_manifests_of_its_own_for_an_ambient_importer_with_what_to_run_instead() -> None:
    with pytest.raises(LocalError) as refused:
        check_dataplanes(ambient_bridge(), {"gke": [Path("gke.yaml")]})
    message = str(refused.value)
    assert message.startswith("--manifests gke: mesh gke of bridge 'lambda-aws-to-gcp' has dataplane: ambient")
    assert "Fix: drop --manifests gke (the twin renders it)" in message
    check_dataplanes(ambient_bridge(), {})  # its twins: the rendered ambient importer runs (its waypoint)
    check_dataplanes(ambient_bridge(), {"eks": [Path("eks.yaml")]})  # the exporter's own manifests too
    check_dataplanes(seed_bridge(), {"gke": [Path("gke.yaml")]})  # and sidecars on manifests


# -- lint -------------------------------------------------------------------------------------------------


def test_lint_does_not_walk_an_ambient_importer_as_sidecars_and_says_so() -> None:
    """The sidecar importer's walk on the waypoint's documents would report MB106 and MB306 (the app's sidecar
    sees no DestinationRule and sends plain text); an ambient mesh has no sidecar: one MB302 says the path was not
    walked. Its twin, the seed's sidecar importer, is walked (no such MB302)."""
    from meshbridge.lint import lint
    from meshbridge.lint.inputs import from_bridge
    from tests.lint_builders import NOW, credentials

    b = ambient_bridge()
    report = lint(from_bridge(b, credentials(b), now=NOW))
    codes = [f.code for f in report.findings]
    assert "MB106" not in codes and "MB306" not in codes
    (note,) = [f for f in report.findings if f.code == "MB302"]
    assert "imported by 'gke' on an ambient data plane" in note.message
    assert note.severity == "info"
    seed = seed_bridge()
    walked = lint(from_bridge(seed, credentials(seed), now=NOW))
    assert not [f for f in walked.findings if f.code == "MB302"]


# -- golden files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", ["gke"])
def test_golden_ambient_importer(mesh: str, update_golden: bool) -> None:
    check_golden(f"ambient/{mesh}.yaml", docs_of(ambient_bridge(), mesh), update_golden)


def test_golden_ambient_helm_values(update_golden: bool) -> None:
    check_golden_text("ambient/helm-gke.yaml", render_helm(ambient_bridge())["gke"].to_yaml(), update_golden)


def test_lint_of_the_rendered_manifests_with_the_spec_says_the_same() -> None:
    """lint -f bridge.yaml --mesh gke=RENDERED (from_manifests with the spec): the ambient mesh's path is not walked
    and one MB302 says so; with only the exporter's manifests given, nothing is said about gke's waypoint."""
    from meshbridge.lint import lint
    from meshbridge.lint.inputs import from_manifests
    from tests.lint_builders import NOW, credentials

    b = ambient_bridge()
    rendered = render_bridge(b, credentials(b))
    documents = {m: [("rendered", d) for d in rendered[m]] for m in ("eks", "gke")}
    report = lint(from_manifests(documents, bridge=b, now=NOW))
    codes = [f.code for f in report.findings]
    assert "MB106" not in codes and "MB306" not in codes
    assert [f.objects[0].mesh for f in report.findings if f.code == "MB302"] == ["gke"]
    exporter_only = lint(from_manifests({"eks": documents["eks"]}, bridge=b, now=NOW))
    assert not [f for f in exporter_only.findings if "ambient data plane" in f.message]


def test_the_waypoints_namespace_is_where_kube_commands_look_for_an_ambient_importer() -> None:
    """gateway_workloads leaves the waypoint out (no pod to require before apply); its namespace is still where
    lint --context reads the import's objects and where preflight probes the kinds. Its sidecar twin: none, the
    egress gateway is one of the gateway workloads."""
    from meshbridge.kube.preflight import probe_namespace
    from meshbridge.kube.routes import gateway_workloads, waypoint_namespaces

    b = ambient_bridge()
    assert [role for role, _ in gateway_workloads(b, "gke")] == []
    assert waypoint_namespaces(b, "gke") == ["istio-egress"] and probe_namespace(b, "gke") == "istio-egress"
    assert waypoint_namespaces(b, "eks") == []
    seed = seed_bridge()
    assert [role for role, _ in gateway_workloads(seed, "gke")] == ["egress"]
    assert waypoint_namespaces(seed, "gke") == []
