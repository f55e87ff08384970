"""``render --rbac``: the RBAC documents of each mesh (golden files, which namespace gets what, merged namespaces,
the subjects) and the command line. The real API servers judge them in tests/cluster/test_rbac.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from meshbridge.kube.apply import owned_types
from meshbridge.render.rbac import ISTIOD_NAMESPACE, Subject, render_rbac
from meshbridge.spec.models import Bridge
from tests.builders import ROOT, bridge_from, seed_bridge, seed_dict, two_exports_three_meshes
from tests.golden import check_golden

Doc = dict[str, Any]


def granted(docs: list[Doc], namespace: str | None) -> dict[str, set[str]]:
    """``{"group/resource": verbs}`` of the (Cluster)Role in ``namespace`` (``None``: the ClusterRole)."""
    kind = "Role" if namespace else "ClusterRole"
    roles = [d for d in docs if d["kind"] == kind and d["metadata"].get("namespace") == namespace]
    assert len(roles) <= 1
    out: dict[str, set[str]] = {}
    for rule in roles[0]["rules"] if roles else []:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault(f"{group}/{resource}", set()).update(rule["verbs"])
    return out


def namespaces(docs: list[Doc]) -> list[str]:
    return [d["metadata"]["namespace"] for d in docs if d["kind"] == "Role"]


@pytest.mark.parametrize("mesh", ["eks", "gke"])
def test_golden_seed(mesh: str, update_golden: bool) -> None:
    check_golden(f"rbac/{mesh}.yaml", list(render_rbac(seed_bridge())[mesh]), update_golden)


@pytest.mark.parametrize("mesh", ["eks", "gke", "aks"])
def test_golden_two_exports_three_meshes(mesh: str, update_golden: bool) -> None:
    sets = render_rbac(bridge_from(two_exports_three_meshes()))
    check_golden(f"rbac/multi-{mesh}.yaml", list(sets[mesh]), update_golden)


def test_docs_show_what_render_rbac_prints_for_the_seed() -> None:
    """docs/clusters.md, 'Required RBAC': its two YAML blocks are the seed's eks and gke output, document for
    document (any YAML style)."""
    text = (ROOT / "docs" / "clusters.md").read_text().split("## Required RBAC", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    shown = [[d for d in yaml.safe_load_all(b) if d] for b in blocks]
    assert shown == [list(render_rbac(seed_bridge())[m]) for m in ("eks", "gke")]


def test_the_exporter_writes_in_its_ingress_namespace_and_only_lists_pods_in_istiods() -> None:
    eks = list(render_rbac(seed_bridge())["eks"])
    assert namespaces(eks) == ["istio-ingress", ISTIOD_NAMESPACE]
    owned = {"get", "list", "create", "patch", "delete"}
    istio = ["serviceentries", "destinationrules", "gateways", "virtualservices", "envoyfilters"]
    assert granted(eks, "istio-ingress") == {
        "/secrets": owned,
        **{f"networking.istio.io/{k}": owned for k in istio},
        "security.istio.io/authorizationpolicies": owned,
        "/services": {"get"},
        "/pods": {"list"},
        "/pods/portforward": {"get", "create"},
    }
    assert granted(eks, ISTIOD_NAMESPACE) == {"/pods": {"list"}}  # no mesh config: DnsCapture is the importers'
    assert granted(eks, None) == {"/namespaces": {"get", "create", "patch"}}


def test_the_importer_also_reads_the_mesh_config_and_execs_into_its_app() -> None:
    gke = list(render_rbac(seed_bridge())["gke"])
    assert namespaces(gke) == ["istio-egress", ISTIOD_NAMESPACE, "sleep"]
    assert "networking.istio.io/envoyfilters" not in granted(gke, "istio-egress")  # no ingress gateway, no limits
    assert granted(gke, ISTIOD_NAMESPACE) == {"/pods": {"list"}, "/configmaps": {"get"}}
    assert granted(gke, "sleep") == {"apps/deployments": {"get"}, "/pods": {"list"}, "/pods/exec": {"get", "create"}}
    assert "/pods/exec" not in granted(gke, "istio-egress")  # exec only where verify's caller runs


def _owned_plurals(bridge: Bridge, mesh: str) -> set[str]:
    return {f"{t.group}/{t.plural}" for t in owned_types(bridge, mesh)}


@pytest.mark.parametrize(("mesh", "namespace"), [("eks", "istio-ingress"), ("gke", "istio-egress"), ("aks", "egress")])
def test_every_gateway_namespace_may_do_everything_apply_prune_and_delete_do_to_the_owned_kinds(
    mesh: str, namespace: str
) -> None:
    """The kinds plan, apply, prune, delete and status handle (meshbridge.kube.apply.owned_types), all five verbs."""
    bridge = bridge_from(two_exports_three_meshes())
    rules = granted(list(render_rbac(bridge)[mesh]), namespace)
    writable = {r for r, verbs in rules.items() if verbs >= {"get", "list", "create", "patch", "delete"}}
    assert writable == _owned_plurals(bridge, mesh)


def test_a_mesh_with_an_ingress_gateway_that_only_imports_may_still_prune_envoyfilters() -> None:
    """owned_types lists EnvoyFilters wherever the mesh has an ingress gateway (an earlier export's edge limits)."""
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["ingressGateway"] = {"address": "gke.example.com"}
    bridge = bridge_from(d)
    rules = granted(list(render_rbac(bridge)["gke"]), "istio-egress")
    assert "networking.istio.io/envoyfilters" in rules
    assert {r for r, v in rules.items() if "delete" in v} == _owned_plurals(bridge, "gke")
    assert "istio-ingress" not in namespaces(list(render_rbac(bridge)["gke"]))  # it exports nothing: no Role there


def test_namespaces_that_coincide_get_one_role_with_the_union_of_the_rules() -> None:
    d = seed_dict()
    d["spec"]["meshes"]["gke"]["apps"] = [{"name": "sleep", "namespace": "istio-egress", "labels": {"app": "sleep"}}]
    gke = list(render_rbac(bridge_from(d))["gke"])
    assert namespaces(gke) == ["istio-egress", ISTIOD_NAMESPACE]
    rules = granted(gke, "istio-egress")
    assert rules["/pods"] == {"list"} and rules["/pods/exec"] == {"get", "create"} and "/secrets" in rules
    role = next(x for x in gke if x["kind"] == "Role" and x["metadata"]["namespace"] == "istio-egress")
    resources = [r for rule in role["rules"] for r in rule["resources"]]
    assert len(resources) == len(set(resources))  # each resource once, its verbs merged
    assert "egress gateway's namespace:" in role["metadata"]["annotations"]["meshbridge.io/purpose"]
    assert "app sleep's namespace:" in role["metadata"]["annotations"]["meshbridge.io/purpose"]


def test_each_role_is_bound_in_its_namespace_and_everything_is_labelled_as_the_bridges() -> None:
    for docs in map(list, render_rbac(seed_bridge(), [Subject.parse("Group:ops")]).values()):
        roles = [(d["kind"], d["metadata"].get("namespace")) for d in docs if d["kind"] in ("Role", "ClusterRole")]
        bindings = [(d["kind"], d["metadata"].get("namespace")) for d in docs if d["kind"].endswith("Binding")]
        assert bindings == [(k + "Binding", ns) for k, ns in roles]
        for d in docs:
            assert d["metadata"]["name"] == "meshbridge-lambda-aws-to-gcp"
            assert d["metadata"]["labels"] == {
                "app.kubernetes.io/managed-by": "meshbridge",
                "meshbridge.io/bridge": "lambda-aws-to-gcp",
            }
            if d["kind"].endswith("Binding"):
                assert d["roleRef"] == {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": d["kind"][:-7],
                    "name": d["metadata"]["name"],
                }
                assert d["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}]


@pytest.mark.parametrize(
    ("text", "entry"),
    [
        ("User:meshbridge", {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "meshbridge"}),
        (
            "group:ops@example.com",
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops@example.com"},
        ),
        ("ServiceAccount:ci/meshbridge", {"kind": "ServiceAccount", "name": "meshbridge", "namespace": "ci"}),
    ],
)
def test_subjects_are_users_groups_or_service_accounts(text: str, entry: Doc) -> None:
    subject = Subject.parse(text)
    assert subject.to_dict() == entry
    assert Subject.parse(str(subject)) == subject


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("meshbridge", "'meshbridge' is not a subject: use User:NAME, Group:NAME or ServiceAccount:NAMESPACE/NAME"),
        ("Role:admin", "'Role:admin' is not a subject"),
        ("User:", "'User:' names no User"),
        ("ServiceAccount:deployer", "a service account is NAMESPACE/NAME"),
        ("ServiceAccount:CI/deployer", "a service account is NAMESPACE/NAME"),
    ],
)
def test_a_subject_in_another_form_is_refused_with_the_forms_accepted(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as e:
        Subject.parse(text)
    assert problem in str(e.value)


def test_subjects_bound_in_order_and_once() -> None:
    subjects = [Subject.parse(s) for s in ("Group:b", "User:a", "Group:b")]
    binding = next(d for d in render_rbac(seed_bridge(), subjects)["eks"] if d["kind"] == "ClusterRoleBinding")
    assert [s["name"] for s in binding["subjects"]] == ["b", "a"]


# -- the command line ------------------------------------------------------------------------------------


def test_render_rbac_prints_kubectl_input_without_certificates(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    args = ["render", "--rbac", "--mesh", "gke", "--subject", "Group:ops", "--subject", "ServiceAccount:ci/mb"]
    assert main(args) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in docs] == ["ClusterRole", "ClusterRoleBinding"] + ["Role", "RoleBinding"] * 3
    assert docs[1]["subjects"] == [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"},
        {"kind": "ServiceAccount", "name": "mb", "namespace": "ci"},
    ]
    assert docs == list(
        render_rbac(seed_bridge(), [Subject("Group", "ops"), Subject("ServiceAccount", "mb", "ci")])["gke"]
    )


def test_render_rbac_binds_user_meshbridge_by_default(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["render", "--rbac", "--mesh", "eks"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert docs == list(render_rbac(seed_bridge())["eks"])
    assert docs[1]["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "meshbridge"}]


def test_render_rbac_alone_prints_every_mesh_each_under_the_context_it_goes_to(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It holds no secret: every mesh's documents go to stdout, a comment line per mesh naming its context. Its
    twin: plain 'render' alone (gateway Secrets) is still refused (test_render_rbac_option_mistakes_are_named)."""
    capsys.readouterr()
    assert main(["render", "--rbac"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("#")] == [
        f"# mesh {m}: apply these to context {m}-cluster as an administrator: meshbridge render --rbac --mesh {m} | "
        f"kubectl --context {m}-cluster apply -f -"
        for m in ("eks", "gke")
    ]
    docs = [d for d in yaml.safe_load_all(out) if d]
    sets = render_rbac(seed_bridge())
    assert docs == [*sets["eks"], *sets["gke"]]


def test_render_rbac_writes_a_folder_per_mesh(workdir: Path) -> None:
    assert main(["render", "--rbac", "-o", "rbac"]) == 0
    files = sorted(p.name for p in (workdir / "rbac" / "gke").glob("*.yaml"))  # not render's record of them
    assert files[0] == "00-clusterrole-meshbridge-lambda-aws-to-gcp.yaml" and "kustomization.yaml" in files
    assert "07-rolebinding-sleep-meshbridge-lambda-aws-to-gcp.yaml" in files


def test_render_rbac_refuses_a_subject_in_another_form(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "--rbac", "--mesh", "eks", "--subject", "meshbridge"]) == 2
    shown = " ".join(capsys.readouterr().err.replace("│", " ").split())
    assert "Invalid value for '--subject': 'meshbridge' is not a subject: use User:NAME, Group:NAME or" in shown


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--mesh", "eks", "--subject", "Group:ops"], "--subject says who gets the RBAC of --rbac; add --rbac"),
        (["--mesh", "eks", "--rbac", "--install"], "--install and --rbac render different documents"),
        ([], "error: say where the documents go: --mesh NAME prints one mesh to stdout"),  # the documents hold keys
    ],
)
def test_render_rbac_option_mistakes_are_named(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], problem: str
) -> None:
    assert main(["render", *args]) == 2
    assert problem in " ".join(capsys.readouterr().err.split())
