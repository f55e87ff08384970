"""``render --install --format helm``: the values of Istio's base, istiod and gateway charts per mesh (golden
files), every key we set checked against the pinned Istio's charts, ``install.sh``'s order run with a stand-in
helm, and the command line (``--format``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.fsutil import WRITTEN_RECORD
from meshbridge.kube.binaries import KubeServersUnavailable
from meshbridge.kube.istio_standin import istio_crd_file
from meshbridge.render.helm import HelmInstall, render_helm
from tests.builders import bridge_from, seed_bridge, seed_dict
from tests.golden import check_golden, check_golden_text
from tests.peer_support import one_side

Values = dict[str, Any]

# Chart values whose keys are the user's own, not the chart's: the gateway's pod labels and istiod's MeshConfig
# (whose fields are Istio's mesh API, not the chart's defaults).
FREE_FORM = {("labels",), ("meshConfig",)}


@pytest.fixture(scope="module")
def charts() -> Path:
    """``manifests/charts`` of the Istio module ``tools/istio-oracle`` pins (beside its CRDs)."""
    try:
        return istio_crd_file().parents[2]
    except KubeServersUnavailable as e:
        pytest.skip(str(e))


def chart_defaults(charts: Path, chart: str) -> Values:
    folder = {"base": "base", "istiod": "istio-control/istio-discovery", "gateway": "gateway"}[chart]
    values = yaml.safe_load((charts / folder / "values.yaml").read_text())
    return dict(values["_internal_defaults_do_not_set"])


def unknown_keys(values: Values, defaults: Values, path: tuple[str, ...] = ()) -> list[str]:
    """The dotted paths of ``values`` the chart's defaults do not have (below a non-empty default map)."""
    out: list[str] = []
    for key, value in values.items():
        here = (*path, key)
        if key not in defaults:
            out.append(".".join(here))
        elif isinstance(value, dict) and isinstance(defaults[key], dict) and defaults[key] and here not in FREE_FORM:
            out += unknown_keys(value, defaults[key], here)
    return out


def descoped(values: Values) -> Values:
    """What the istiod chart reads: ``.pilot`` merged over the top level (templates/zzy_descope_legacy.yaml)."""
    return {**{k: v for k, v in values.items() if k != "pilot"}, **values.get("pilot", {})}


SCHEMA_TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}


def schema_misses(values: Values, schema: Values, path: tuple[str, ...] = ()) -> list[str]:
    """Keys ``values`` has that the JSON schema's ``properties`` do not, and values of another ``type``."""
    out: list[str] = []
    props = schema.get("properties")
    for key, value in values.items():
        here = ".".join((*path, key))
        if props is None:
            continue
        if key not in props:
            out.append(f"{here}: not in the schema")
            continue
        sub = props[key]
        expected = SCHEMA_TYPES.get(sub.get("type", ""))
        if expected is not None and not isinstance(value, expected):
            out.append(f"{here}: {value!r} is not of type {sub['type']}")
        elif isinstance(value, dict):
            out += schema_misses(value, sub, (*path, key))
        elif isinstance(value, list) and isinstance(sub.get("items"), dict):
            out += [
                m for item in value if isinstance(item, dict) for m in schema_misses(item, sub["items"], (*path, key))
            ]
    return out


def gateway_schema(charts: Path) -> Values:
    schema = json.loads((charts / "gateway" / "values.schema.json").read_text())
    return dict(schema["$defs"]["values"])


def no_revision() -> HelmInstall:
    d = seed_dict()
    d["spec"]["meshes"]["eks"]["istio"].pop("revision")
    return render_helm(bridge_from(d))["eks"]


# -- golden files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_golden_seed_values(mesh: str, update_golden: bool) -> None:
    text = render_helm(seed_bridge())[mesh].to_yaml()
    check_golden(f"install/helm/{mesh}.yaml", [d for d in yaml.safe_load_all(text) if d is not None], update_golden)


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_golden_seed_install_script(mesh: str, update_golden: bool) -> None:
    check_golden_text(f"install/helm/{mesh}.install.sh", render_helm(seed_bridge())[mesh].script(), update_golden)


# -- the charts' own keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_every_key_we_set_is_one_of_the_charts(charts: Path, mesh: str) -> None:
    for release in [*render_helm(seed_bridge())[mesh], *no_revision()]:
        values = descoped(release.values) if release.chart == "istiod" else release.values
        assert unknown_keys(values, chart_defaults(charts, release.chart)) == [], release.release
        if release.chart == "gateway":  # the only one of the three charts that ships a values.schema.json
            assert schema_misses(release.values, gateway_schema(charts)) == [], release.release


def test_a_key_the_chart_does_not_have_is_found(charts: Path) -> None:
    gateway = render_helm(seed_bridge())["eks"].releases[2]
    wrong = {**gateway.values, "service": {**gateway.values["service"], "portz": []}, "serviceAcount": {}}
    assert unknown_keys(wrong, chart_defaults(charts, "gateway")) == ["service.portz", "serviceAcount"]
    assert schema_misses(wrong, gateway_schema(charts)) == [
        "service.portz: not in the schema",
        "serviceAcount: not in the schema",
    ]
    istiod = render_helm(seed_bridge())["eks"].releases[1]
    assert unknown_keys(descoped({**istiod.values, "pilot": {"envs": {}}}), chart_defaults(charts, "istiod")) == [
        "envs"
    ]


def test_a_port_of_the_wrong_type_is_found(charts: Path) -> None:
    gateway = render_helm(seed_bridge())["eks"].releases[2]
    ports = [{**p, "targetPort": str(p["targetPort"])} for p in gateway.values["service"]["ports"][:1]]
    wrong = {**gateway.values, "service": {**gateway.values["service"], "ports": ports}}
    assert schema_misses(wrong, gateway_schema(charts)) == ["service.ports.targetPort: '15021' is not of type integer"]


def test_istiod_reads_pilot_env_as_its_env(charts: Path) -> None:
    """``pilot.env`` works on every istiod chart: the pinned one copies ``.pilot`` to the top and reads ``.env``."""
    folder = charts / "istio-control" / "istio-discovery" / "templates"
    assert '(index $.Values "pilot")' in (folder / "zzy_descope_legacy.yaml").read_text()
    assert "range $key, $val := .Values.env" in (folder / "deployment.yaml").read_text()


# -- what the values say ----------------------------------------------------------------------------------


def test_the_revision_goes_to_every_chart_and_names_istiods_release() -> None:
    base, istiod, gateway = render_helm(seed_bridge())["eks"]
    assert base.values == {"defaultRevision": "1-17"}
    assert istiod.release == "istiod-1-17" and istiod.values["revision"] == "1-17"
    assert gateway.values["revision"] == "1-17"


def test_without_a_revision_no_chart_gets_one() -> None:
    base, istiod, gateway = no_revision()
    assert base.values == {} and istiod.release == "istiod"
    assert "revision" not in istiod.values and "revision" not in gateway.values


def test_the_gateway_keeps_the_specs_service_account_not_the_charts_default() -> None:
    """The chart names the ServiceAccount after the release; the spec's is the SPIFFE identity the peer checks."""
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["egressGateway"]["serviceAccount"] = "egress-sa"
    assert render_helm(bridge_from(d))["gke"].releases[2].values["serviceAccount"] == {"name": "egress-sa"}
    default = render_helm(seed_bridge())["gke"].releases[2]
    assert default.values["serviceAccount"] == {"name": "istio-egressgateway-service-account"} != default.release


def test_an_ingress_gateway_is_a_load_balancer_and_an_egress_gateway_is_not() -> None:
    sets = render_helm(seed_bridge())
    assert sets["eks"].releases[2].values["service"]["type"] == "LoadBalancer"
    assert sets["gke"].releases[2].values["service"]["type"] == "ClusterIP"


# -- install.sh -----------------------------------------------------------------------------------------


def run_script(folder: Path, tmp_path: Path, fail_on: str = "") -> tuple[int, list[list[str]]]:
    """Run ``install.sh --kube-context eks`` with a stand-in ``helm`` that logs its arguments (and fails for a
    release named ``fail_on``)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "helm.log"
    helm = bin_dir / "helm"
    helm.write_text(
        '#!/bin/sh\necho "$*" >> "$HELM_LOG"\n'
        'if [ -n "$FAIL_ON" ] && [ "$3" = "$FAIL_ON" ]; then echo "Error: failed" >&2; exit 1; fi\n'
    )
    helm.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "HELM_LOG": str(log), "FAIL_ON": fail_on}
    done = subprocess.run(["sh", str(folder / "install.sh"), "--kube-context", "eks"], env=env, capture_output=True)
    calls = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return done.returncode, calls


def test_install_sh_runs_base_then_istiod_then_the_gateways(tmp_path: Path) -> None:
    render_helm(seed_bridge())["eks"].write_dir(tmp_path / "out")
    code, calls = run_script(tmp_path / "out" / "eks" / "helm", tmp_path)
    assert code == 0
    assert [c[:2] for c in calls] == [["repo", "add"]] + [["upgrade", "--install"]] * 3
    assert [c[2:4] for c in calls[1:]] == [
        ["istio-base", "istio/base"],
        ["istiod-1-17", "istio/istiod"],
        ["istio-ingressgateway", "istio/gateway"],
    ]
    assert all(c[-2:] == ["--kube-context", "eks"] for c in calls[1:])
    assert all(c[4:6] == ["--version", "1.17.2"] for c in calls[1:])
    assert ["--wait" in c for c in calls[1:]] == [True, True, False]


def test_install_sh_stops_at_the_first_failing_release(tmp_path: Path) -> None:
    render_helm(seed_bridge())["eks"].write_dir(tmp_path / "out")
    code, calls = run_script(tmp_path / "out" / "eks" / "helm", tmp_path, fail_on="istiod-1-17")
    assert code != 0
    assert [c[2] for c in calls[1:]] == ["istio-base", "istiod-1-17"]  # no gateway without istiod


def test_write_dir_writes_each_values_file_the_script_names(tmp_path: Path) -> None:
    install = render_helm(seed_bridge())["gke"]
    written, pruned = install.write_dir(tmp_path)
    folder = tmp_path / "gke" / "helm"
    assert [p.name for p in written] == [
        "values-base.yaml",
        "values-istiod.yaml",
        "values-gateway-istio-egress-istio-egressgateway.yaml",
        "install.sh",
    ]
    assert pruned.removed == pruned.left == [] and os.access(folder / "install.sh", os.X_OK)
    for release in install:
        assert f"--values {release.values_file}" in install.script()
        text = (folder / release.values_file).read_text()
        assert text.startswith(f"# mesh gke: chart istio/{release.chart} 1.17.2, release {release.release} in ")
        assert yaml.safe_load(text) == release.values


def test_write_dir_removes_the_values_of_a_gateway_no_longer_in_the_spec(tmp_path: Path) -> None:
    folder = tmp_path / "gke" / "helm"
    folder.mkdir(parents=True)
    old = folder / "values-gateway-istio-egress-old-egressgateway.yaml"
    old.write_text("name: old-egressgateway\n")
    (folder / WRITTEN_RECORD).write_text(f"{old.name}\ninstall.sh\n")  # an earlier render wrote it
    mine = folder / "values-mine.yaml"
    mine.write_text("mine: true\n")
    _, pruned = render_helm(seed_bridge())["gke"].write_dir(tmp_path)
    assert pruned.removed == [old] and not old.exists()
    # negative twin: the user's own values file, which no render wrote, stays (and is named)
    assert pruned.left == [mine] and mine.read_text() == "mine: true\n"


# -- the command line -----------------------------------------------------------------------------------


def test_render_install_prints_helm_values_by_default(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--install", "--mesh", "eks"]) == 0
    out = capsys.readouterr().out
    assert out == render_helm(seed_bridge())["eks"].to_yaml()
    assert "# mesh eks: chart istio/base 1.17.2, release istio-base in istio-system" in out


def test_render_install_format_istioctl_prints_istio_operators(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--install", "--format", "istioctl", "--mesh", "eks"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "IstioOperator"] == ["control-plane", "istio-gateways"]


def test_render_install_istioctl_folder_kustomizes_only_what_kubectl_applies(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kubectl apply -k install/eks`` must work: the IstioOperators (no CRD since Istio 1.24) go to
    ``istioctl install -f``, as the output says, and stay out of the kustomization."""
    assert main(["render", "--install", "--format", "istioctl", "-o", "install"]) == 0
    folder = workdir / "install" / "eks"
    listed = yaml.safe_load((folder / "kustomization.yaml").read_text())["resources"]
    kinds = {name: yaml.safe_load((folder / name).read_text())["kind"] for name in listed}
    assert set(kinds.values()) == {"Namespace", "Service"}
    operators = sorted(p.name for p in folder.glob("*-istiooperator-*.yaml"))
    assert operators == [
        "02-istiooperator-istio-system-control-plane.yaml",
        "03-istiooperator-istio-system-istio-gateways.yaml",
    ]
    err = " ".join(capsys.readouterr().err.split())
    assert f"install it with: istioctl install -f install/eks/{operators[0]}" in err
    # negative twin: the bridge's own documents are all kubectl's, every file is listed and nothing is said
    assert main(["render", "-o", "out", "--no-secrets"]) == 0
    written = sorted(p.name for p in (workdir / "out" / "eks").glob("[0-9]*.yaml"))
    assert sorted(yaml.safe_load((workdir / "out" / "eks" / "kustomization.yaml").read_text())["resources"]) == written
    assert "istioctl install" not in capsys.readouterr().err


def test_render_install_writes_a_helm_folder_per_mesh(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--install", "-o", "install"]) == 0
    assert (workdir / "install" / "eks" / "helm" / "install.sh").exists()
    assert (workdir / "install" / "gke" / "helm" / "values-istiod.yaml").exists()
    assert "eks: 3 Helm releases → install/eks/helm/install.sh" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (
            ["--install", "--format", "kustomize", "--mesh", "eks"],
            "Invalid value for '--format': Value error, 'kustomize' is not one of 'helm', 'istioctl'",
        ),
        (["--format", "helm", "--mesh", "eks"], "--format chooses the form of the Istio installation; add --install"),
    ],
)
def test_render_install_format_mistakes_are_named(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    assert main(["render", *args]) == 2
    assert problem in " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert not (workdir / "install").exists()


def test_render_install_leaves_a_peer_mesh_to_its_owner(workdir: Path) -> None:
    """A mesh marked ``peer: true`` is installed by the owner of the other spec; its twin above writes both."""
    (workdir / "bridge.yaml").write_text(yaml.safe_dump(one_side("gke"), sort_keys=False))
    assert main(["render", "--install", "-o", "install"]) == 0
    assert [p.name for p in (workdir / "install").iterdir()] == ["eks"]


# -- lint reads the istiod chart's values -----------------------------------------------------------------


def lint_json(workdir: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> list[dict[str, Any]]:
    """Lint the seed's rendered manifests (no bridge spec), plus ``extra`` --mesh paths; the findings."""
    assert main(["render", "--no-secrets", "-o", "m"]) == 0
    args = ["lint", "--mesh", "eks=m/eks", "--mesh", "gke=m/gke", *[a for p in extra for a in ("--mesh", p)]]
    capsys.readouterr()
    main([*args, "--json"])
    return list(json.loads(capsys.readouterr().out)["findings"])


def test_lint_takes_the_mesh_settings_from_the_istiod_values(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--install", "-o", "install"]) == 0
    findings = lint_json(workdir, capsys, "gke=install/gke/helm/values-istiod.yaml")
    assert [f["code"] for f in findings if f["severity"] == "error"] == []


def test_without_the_istiod_values_lint_assumes_istios_defaults_and_finds_no_dns_capture(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    findings = lint_json(workdir, capsys)
    assert [f["code"] for f in findings if f["severity"] == "error"] == ["MB101"]
    note = next(f for f in findings if f["code"] == "MB001" and f["objects"][0]["mesh"] == "gke")
    assert "as no IstioOperator and no istiod Helm values are in the input" in note["message"]


def test_a_setting_off_in_the_istiod_values_is_named_at_its_key(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render", "--install", "-o", "install"]) == 0
    path = workdir / "install" / "gke" / "helm" / "values-istiod.yaml"
    values = yaml.safe_load(path.read_text())
    values["meshConfig"]["defaultConfig"]["proxyMetadata"]["ISTIO_META_DNS_CAPTURE"] = "false"
    path.write_text(yaml.safe_dump(values))
    (finding,) = [f for f in lint_json(workdir, capsys, f"gke={path}") if f["severity"] == "error"]
    assert finding["code"] == "MB101" and "ISTIO_META_DNS_CAPTURE is off" in finding["message"]
    assert finding["objects"][1] == {
        "mesh": "gke",
        "kind": "HelmValues",
        "namespace": "istio-system",
        "name": "istiod",
        "field": "meshConfig.defaultConfig.proxyMetadata",
        "source": f"{path}#0",
    }


def test_the_istiod_values_are_told_from_the_other_charts_values() -> None:
    from meshbridge.istio.parse import is_istiod_values

    base, istiod, gateway = render_helm(seed_bridge())["eks"]
    assert [is_istiod_values(r.values) for r in (base, istiod, gateway)] == [False, True, False]
    assert not is_istiod_values({"apiVersion": "v1", "kind": "ConfigMap", "meshConfig": {}})
