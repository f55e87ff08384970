"""``meshbridge plan | apply | status | delete`` in-process, through a real kubeconfig pointing at fake clusters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from meshbridge.cli.main import main
from tests.builders import seed_dict
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


@pytest.fixture
def files(world: World) -> tuple[Path, Path]:
    d = seed_dict()
    del d["spec"]["meshes"]["eks"]["ingressGateway"]["address"]
    bridge = world.tmp / "bridge.yaml"
    bridge.write_text(yaml.safe_dump(d))
    kubeconfig = world.tmp / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": n, "cluster": {"server": s.url}} for n, s in (("eks", world.eks), ("gke", world.gke))
                ],
                "users": [{"name": "admin", "user": {"token": "test-token"}}],
                "contexts": [{"name": f"kind-{n}", "context": {"cluster": n, "user": "admin"}} for n in ("eks", "gke")],
                "current-context": "kind-eks",
            }
        )
    )
    return bridge, kubeconfig


def args(files: tuple[Path, Path], world: World, *extra: str) -> list[str]:
    bridge, kubeconfig = files
    return [
        "-f",
        str(bridge),
        "--kubeconfig",
        str(kubeconfig),
        "--context",
        "eks=kind-eks",
        "--context",
        "gke=kind-gke",
        *extra,
    ]


def test_plan_apply_status_delete(files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(world.tmp / "state")]
    assert main(["plan", *args(files, world), *state]) == 0
    shown = capsys.readouterr()
    assert "ACTION" in shown.out and "create" in shown.out and "eastwestgateway" in shown.out
    assert "Plan: 13 to create" in shown.out and "PRIVATE KEY" not in shown.out and "LS0t" not in shown.out
    assert "preflight: eks (kind-eks), gke (kind-gke)" in shown.err
    assert [c for c in world.eks.calls if c.method == "PATCH" and c.q("dryRun") != "All"] == []

    assert main(["apply", *args(files, world), *state, "--timeout", "5"]) == 0
    shown = capsys.readouterr()
    assert "CREATED" in shown.out and "routes: every gateway serves the new routes" in shown.err
    auth = [c.headers.get("authorization") for c in world.eks.calls]
    assert auth and all(a == "Bearer test-token" for a in auth if a is not None)

    assert main(["status", *args(files, world), *state]) == 0
    shown = capsys.readouterr()
    assert "== mesh eks (context kind-eks)" in shown.out and "present" in shown.out and "DAYS LEFT" in shown.out

    assert main(["delete", *args(files, world)]) == 0
    shown = capsys.readouterr()
    assert "DELETED" in shown.out and "Namespaces are never deleted" in shown.out


def test_plan_exits_1_on_a_conflict(files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.gke.seed(
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "ServiceEntry",
            "metadata": {"name": "se-lambda-ext", "namespace": "istio-egress"},
            "spec": {"hosts": ["lambda.external"]},
        }
    )
    assert main(["plan", *args(files, world), "--state-dir", str(world.tmp / "state"), "--no-diff"]) == 1
    assert "conflict" in capsys.readouterr().out


def test_unknown_context_names_the_known_ones(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, kubeconfig = files
    code = main(["status", "-f", str(bridge), "--kubeconfig", str(kubeconfig), "--context", "eks=prod", "--no-secrets"])
    assert code == 2
    err = capsys.readouterr().err
    assert "'prod'" in err and "kind-eks, kind-gke" in err


def test_bad_context_flag(files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["delete", *args(files, world), "--context", "nomesh"]) == 2
    assert "MESH=CONTEXT" in capsys.readouterr().err


def _serve(world: World, state: Path) -> None:
    """Make each fake gateway pod's Envoy serve what the store holds now (as istiod's SDS would)."""
    import base64

    from meshbridge.pki import PkiStore
    from tests.integration.conftest import EGRESS_POD, INGRESS_POD

    def b64(pem: bytes) -> str:
        return base64.b64encode(pem).decode()

    creds = PkiStore(state).credentials(world.bridge)
    for server, pod, leaf, trust, crl in (
        (world.eks, INGRESS_POD, creds["eks"].server, creds["eks"].server_trust, creds["eks"].server_crl),
        (world.gke, EGRESS_POD, creds["gke"].client, creds["gke"].client_trust, creds["gke"].client_crl),
    ):
        assert leaf is not None
        context = {"trusted_ca": {"inline_bytes": b64(trust)}, **({"crl": {"inline_bytes": b64(crl)}} if crl else {})}
        secrets = {
            "dynamic_active_secrets": [
                {
                    "name": "kubernetes://mtls-credential",
                    "secret": {"tls_certificate": {"certificate_chain": {"inline_bytes": b64(leaf.cert_pem)}}},
                },
                {"name": "kubernetes://mtls-credential-cacert", "secret": {"validation_context": context}},
            ]
        }
        server.config_dumps[pod] = {"configs": [*server.config_dumps[pod]["configs"], secrets]}


def test_certs_push_and_rotate_wait_until_every_gateway_pod_serves_the_store(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, kubeconfig = files
    state = world.tmp / "state"
    common = ["-f", str(bridge), "--state-dir", str(state), "--kubeconfig", str(kubeconfig)]
    common += ["--context", "eks=kind-eks", "--context", "gke=kind-gke"]
    _serve(world, state)
    assert main(["certs", "push", *common]) == 0
    shown = capsys.readouterr().out
    assert "eks (kind-eks: 1 Secret(s))" in shown and "Current" in shown
    assert world.eks.get("/api/v1/namespaces/istio-ingress/secrets/mtls-credential") is not None

    # twin: the pods keep serving the old leaves (istiod never delivered the new Secret): the step fails
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke", *common, "--timeout", "1"]) == 2
    shown = capsys.readouterr()
    assert "StaleSecret" in shown.err or "serves kubernetes://mtls-credential serials" in shown.err
    assert "later steps were not run" in shown.err
    _serve(world, state)  # delivered
    assert main(["certs", "push", *common, "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert [c["check"] for c in pushed["conditions"]] == ["GatewaysServeCurrentCerts"]
    assert pushed["conditions"][0]["status"] == "True" and len(pushed["pushed"]) == 2


NO_HOST = "pod {} does not have a host assigned"  # kube-apiserver's 400 to a port-forward without a kubelet


def test_a_pod_on_no_node_says_what_each_command_did_and_names_no_flag_it_lacks(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.integration.conftest import INGRESS_POD

    bridge, kubeconfig = files
    common = ["-f", str(bridge), "--state-dir", str(world.tmp / "state"), "--kubeconfig", str(kubeconfig)]
    common += ["--context", "eks=kind-eks", "--context", "gke=kind-gke"]
    assert main(["certs", "issue", "-f", str(bridge), "--state-dir", str(world.tmp / "state")]) == 0
    world.eks.fail("GET", r"/portforward$", 400, reason="BadRequest", message=NO_HOST.format(INGRESS_POD[1]))
    assert main(["certs", "push", *common]) == 2
    shown = capsys.readouterr()
    err = " ".join(shown.err.split())
    assert "pushed: eks (kind-eks: 1 Secret(s))" in shown.out and "--no-wait" not in err
    assert "The gateway Secrets were written to kind-eks, kind-gke, but whether the gateway pods serve them" in err
    assert "No flag skips this check" in err
    assert main(["certs", "rotate", "--leaf", *common]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--no-wait" not in err and "not run: step 2 (reissue the leaves of gke" in err
    assert "Where it stands: the store holds the certificates of step 1" in err
    assert "then 'meshbridge certs rotate --leaf --mesh gke" in err and "(rotating eks again" in err
    assert "--context eks=kind-eks --context gke=kind-gke --kubeconfig" in err  # the hint carries the user's
    routes = ["proxy-config", "routes", "eks/istio-ingressgateway", "-f", str(bridge), "--kubeconfig", str(kubeconfig)]
    assert main([*routes, "--context", "eks=kind-eks"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--no-wait" not in err and "'meshbridge local proxy-config routes eks/istio-ingressgateway" in err
    # twin: once the pod is on a node, proxy-config reads it and the push is checked
    world.eks.faults.clear()
    assert main([*routes, "--context", "eks=kind-eks"]) == 0
    assert "https.443" in capsys.readouterr().out
    _serve(world, world.tmp / "state")
    assert main(["certs", "push", *common]) == 0


# -- which kubeconfig, which contexts ----------------------------------------------------------------------

CLUSTER_COMMANDS = [
    ["plan", "--no-secrets"],
    ["apply", "--no-secrets", "--no-wait"],
    ["status", "--no-secrets"],
    ["delete"],
    ["verify", "--context", "eks=eks-cluster"],
    ["proxy-config", "routes", "eks/istio-ingressgateway"],
]
KUBECONFIG_FIX = ("--kubeconfig FILE", "KUBECONFIG=FILE", "kubectl config get-contexts", "--context MESH=CONTEXT")


def kubeconfig_of(path: Path, servers: dict[str, str]) -> Path:
    """A kubeconfig with one context per entry (context name → API server URL), without current-context."""
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": n, "cluster": {"server": url}} for n, url in servers.items()],
                "users": [{"name": "admin", "user": {"token": "test-token"}}],
                "contexts": [{"name": n, "context": {"cluster": n, "user": "admin"}} for n in servers],
            }
        )
    )
    return path


@pytest.mark.parametrize("command", CLUSTER_COMMANDS, ids=lambda c: c[0])
def test_a_kubeconfig_that_does_not_exist_is_named_with_the_fix(
    files: tuple[Path, Path], world: World, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, _ = files
    missing = world.tmp / "nonexistent"
    assert main([*command, "-f", str(bridge), "--kubeconfig", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"kubeconfig {missing} (--kubeconfig) does not exist" in err, err
    assert all(fix in err for fix in KUBECONFIG_FIX), err
    assert "Invalid kube-config" not in err and "Traceback" not in err


def test_without_any_kubeconfig_the_default_file_is_named(
    files: tuple[Path, Path], world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, kubeconfig = files
    monkeypatch.setenv("HOME", str(world.tmp))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert main(["status", "-f", str(bridge), "--no-secrets"]) == 2
    err = capsys.readouterr().err
    default = world.tmp / ".kube" / "config"
    assert f"kubeconfig {default} (the default: neither --kubeconfig nor $KUBECONFIG is set) does not exist" in err
    assert all(fix in err for fix in KUBECONFIG_FIX), err

    monkeypatch.setenv("KUBECONFIG", f"{world.tmp / 'a'}:{world.tmp / 'b'}")
    assert main(["status", "-f", str(bridge), "--no-secrets"]) == 2
    err = capsys.readouterr().err
    assert f"kubeconfig {world.tmp / 'a'}, {world.tmp / 'b'} (from $KUBECONFIG) names no file that exists" in err

    # the twin: $KUBECONFIG is read when the command runs (the client itself reads it once, at import)
    monkeypatch.setenv("KUBECONFIG", f"{world.tmp / 'a'}:{kubeconfig}")
    assert main(["delete", "-f", str(bridge), "--context", "eks=kind-eks", "--context", "gke=kind-gke"]) == 0
    assert "Namespaces are never deleted" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "holds no contexts"),
        ("apiVersion: v1\nkind: Config\nclusters: []\n", "holds no contexts"),
        ("clusters: [\n", "cannot be read: while parsing"),
        ("- 1\n", "is not a kubeconfig"),
    ],
    ids=["empty", "no-contexts", "not-yaml", "not-a-mapping"],
)
def test_a_kubeconfig_without_contexts_says_so(
    files: tuple[Path, Path], world: World, content: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, _ = files
    bad = world.tmp / "bad-kubeconfig"
    bad.write_text(content)
    assert main(["plan", "-f", str(bridge), "--kubeconfig", str(bad), "--no-secrets"]) == 2
    err = capsys.readouterr().err
    assert f"kubeconfig {bad} (--kubeconfig) {problem}" in err, err
    assert "Fix:" in err and "Traceback" not in err


def test_contexts_missing_from_the_kubeconfig_are_named_with_their_mesh_and_the_ones_it_has(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, kubeconfig = files
    assert main(["plan", "-f", str(bridge), "--kubeconfig", str(kubeconfig), "--context", "eks=CTX_A"]) == 2
    err = capsys.readouterr().err
    assert "has no context 'CTX_A' (mesh eks, from --context eks=CTX_A)" in err, err
    assert "'gke-cluster' (mesh gke, from spec.meshes.gke.context)" in err
    assert "its contexts: kind-eks, kind-gke" in err and "kubectl config get-contexts" in err
    # twin: a kubeconfig without current-context is fine once every mesh has a context it holds
    plain = kubeconfig_of(world.tmp / "plain", {"kind-eks": world.eks.url, "kind-gke": world.gke.url})
    assert main(["delete", "-f", str(bridge), "--kubeconfig", str(plain), *args(files, world)[4:]]) == 0


def test_proxy_config_connects_only_to_the_mesh_of_its_proxy(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, _ = files
    only_eks = kubeconfig_of(world.tmp / "only-eks", {"CTX_A": world.eks.url})  # gke's 'gke-cluster' is absent
    before = len(world.gke.calls)
    common = ["-f", str(bridge), "--kubeconfig", str(only_eks), "--context", "eks=CTX_A"]
    code = main(["proxy-config", "routes", "eks/istio-ingressgateway", "-o", "wide", *common])  # names unwrapped
    shown = capsys.readouterr()
    assert code == 0, shown.err
    assert "https.443.https.eastwestgateway.istio-ingress" in shown.out
    assert len(world.gke.calls) == before
    # twin: the gke proxy needs gke's context, which this kubeconfig lacks
    code = main(["proxy-config", "routes", "gke/istio-egressgateway", *common])
    assert code == 2
    err = capsys.readouterr().err
    assert "has no context 'gke-cluster' (mesh gke, from spec.meshes.gke.context); its contexts: CTX_A" in err
    assert "CTX_A'" not in err.split("its contexts")[0]  # eks's context was not even looked up


# -- exit codes: 2 when a cluster cannot be reached or read, 1 when it was read and is wrong --------------


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [*CLUSTER_COMMANDS[:4], ["verify"], CLUSTER_COMMANDS[5], ["certs", "push"]],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_cluster_command_exits_2_when_a_cluster_cannot_be_reached(
    files: tuple[Path, Path], world: World, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, _ = files
    down = f"http://127.0.0.1:{closed_port()}"
    kubeconfig = kubeconfig_of(world.tmp / "down", {"kind-eks": down, "kind-gke": world.gke.url})
    extra = ["--state-dir", str(world.tmp / "state")] if command[0] == "certs" else []
    contexts = ["--context", "eks=kind-eks", "--context", "gke=kind-gke"]
    code = main([*command, "-f", str(bridge), "--kubeconfig", str(kubeconfig), *extra, *contexts])
    shown = capsys.readouterr()
    assert code == 2, (shown.out, shown.err)
    text = shown.out + shown.err
    assert "cluster 'kind-eks'" in text and "could not be reached" in text and "Fix:" in text
    assert "Traceback" not in text
    if command[0] == "status":  # the reachable cluster is still shown
        assert "== mesh gke (context kind-gke)" in shown.out and "KIND" in shown.out
        assert "could not read mesh eks (context kind-eks)" in shown.err


def test_status_and_verify_exit_1_when_the_clusters_answer_and_the_bridge_is_not_there(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin of the above: the same commands on clusters that answer, where nothing was applied."""
    from tests.integration.conftest import INGRESS_POD, routes_dump

    world.eks.config_dumps[INGRESS_POD] = routes_dump()  # the ingress gateway serves no route
    assert main(["status", *args(files, world), "--no-secrets"]) == 1
    assert "missing" in capsys.readouterr().out
    assert main(["verify", *args(files, world)]) == 1
    shown = capsys.readouterr()
    assert "RouteMissing" in shown.out and "could not reach" not in shown.err


LONG = "arn:aws:eks:us-east-1:111122223333:cluster/production-eks-cluster"


def test_cluster_commands_print_json_with_every_field_and_the_same_exit_codes(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    state = ["--state-dir", str(world.tmp / "state")]
    assert main(["status", *args(files, world), *state, "--json"]) == 1  # nothing applied yet
    doc = json.loads(capsys.readouterr().out)
    assert doc["healthy"] is False and [m["mesh"] for m in doc["meshes"]] == ["eks", "gke"]
    eks = doc["meshes"][0]
    assert eks["context"] == "kind-eks" and eks["error"] is None
    assert {"kind": "Gateway", "name": "eastwestgateway", "state": "missing"}.items() <= next(
        o for o in eks["objects"] if o["kind"] == "Gateway"
    ).items()
    assert eks["gateways"][0]["address"] == "a1b2c3-ingress.elb.us-east-1.amazonaws.com"

    assert main(["plan", *args(files, world), *state, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["totals"]["create"] == 13 and doc["totals"]["keep"] == 2
    secret = next(c for c in doc["meshes"][0]["changes"] if c["kind"] == "Secret")
    assert secret["action"] == "create" and "<redacted" in secret["diff"] and "LS0t" not in json.dumps(doc)
    assert {f["check"] for f in doc["preflight"]} and all("ok" in f for f in doc["preflight"])

    assert main(["apply", *args(files, world), *state, "--timeout", "5", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["meshes"][0]["counts"] == {"created": 7, "configured": 0, "pruned": 0, "unchanged": 0, "kept": 1}
    assert {"outcome": "created", "kind": "Gateway", "name": "eastwestgateway"}.items() <= next(
        o for o in doc["meshes"][0]["objects"] if o["kind"] == "Gateway"
    ).items()

    assert main(["status", *args(files, world), *state, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["healthy"] is True and all(o["state"] in ("present", "unmanaged") for o in doc["meshes"][1]["objects"])
    assert doc["meshes"][0]["secrets"][0]["days_left"] > 0

    assert main(["delete", *args(files, world), "--dry-run", "--json"]) == 0
    shown = capsys.readouterr()
    doc = json.loads(shown.out)
    assert doc["dry_run"] is True and len(doc["meshes"][0]["deleted"]) == 6
    assert "Namespaces are never deleted" in shown.err
    # negative twin: without --json, tables (never JSON) on stdout
    assert main(["status", *args(files, world), *state]) == 0
    with pytest.raises(json.JSONDecodeError):
        json.loads(capsys.readouterr().out)


def test_cluster_tables_fit_100_columns_with_long_contexts_and_reasons(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    bridge, _ = files
    kubeconfig = kubeconfig_of(world.tmp / "long", {LONG: world.eks.url, LONG + "-gke": world.gke.url})
    world.gke.seed(  # a conflict: its reason is a long sentence
        {
            "apiVersion": "networking.istio.io/v1beta1",
            "kind": "ServiceEntry",
            "metadata": {"name": "se-lambda-ext", "namespace": "istio-egress"},
            "spec": {"hosts": ["lambda.external"]},
        }
    )
    common = ["-f", str(bridge), "--kubeconfig", str(kubeconfig), "--state-dir", str(world.tmp / "state")]
    common += ["--context", f"eks={LONG}", "--context", f"gke={LONG}-gke"]
    assert main(["plan", *common, "--no-diff"]) == 1
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 100, text
    assert f"== mesh gke (context {LONG}-gke)" in text
    conflict = text.split("conflict   ServiceEntry", 1)[1].splitlines()
    assert conflict[1].startswith("  ↳ ") and "meshbridge" in conflict[1]  # the reason, under its row
    assert main(["status", *common]) == 1
    text = capsys.readouterr().out
    assert max(map(len, text.splitlines())) <= 100, text
    assert "se-lambda-ext" in text and "conflict" in text


def _served_check(files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["verify", *args(files, world), "--state-dir", str(world.tmp / "state"), "--json"]) in (0, 1)
    doc = json.loads(capsys.readouterr().out)
    [served] = [c for c in doc["conditions"] if c["check"] == "GatewaysServeCurrentCerts"]
    return dict(served)


def test_verify_on_clusters_checks_that_every_gateway_serves_the_stores_certificates(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exporter's and the importer's gateway pods serve what the store holds: Current."""
    state = world.tmp / "state"
    assert main(["apply", *args(files, world), "--state-dir", str(state), "--timeout", "1"]) in (0, 2)
    capsys.readouterr()
    _serve(world, state)
    served = _served_check(files, world, capsys)
    assert served["status"] == "True" and served["reason"] == "Current", served
    assert "every gateway pod of eks, gke serves the store's certificates" in served["message"]


def test_verify_on_clusters_names_a_rotation_never_pushed(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """The twin of the test above: the store's gke leaf was rotated without --context, so the egress gateway pod
    still serves the old one: StaleSecret, naming the pod and how to push."""
    state = world.tmp / "state"
    assert main(["apply", *args(files, world), "--state-dir", str(state), "--timeout", "1"]) in (0, 2)
    _serve(world, state)
    bridge, _ = files
    assert main(["certs", "rotate", "--leaf", "--mesh", "gke", "-f", str(bridge), "--state-dir", str(state)]) == 0
    capsys.readouterr()
    served = _served_check(files, world, capsys)
    assert served["status"] == "False" and served["reason"] == "StaleSecret", served
    assert "kind-gke: pod istio-egress/" in served["message"] and "kind-eks" not in served["message"]
    assert "Fix: 'meshbridge certs push --context MESH=CONTEXT ...'" in served["message"]


def test_verify_on_clusters_says_when_it_cannot_check_the_served_certificates(
    files: tuple[Path, Path], world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """No store beside the spec: the check is left out, and stderr says why (never silently)."""
    assert main(["verify", *args(files, world), "--state-dir", str(world.tmp / "empty"), "--json"]) in (0, 1)
    shown = capsys.readouterr()
    assert "GatewaysServeCurrentCerts" not in shown.out
    assert "note: GatewaysServeCurrentCerts is not checked: the PKI store cannot say what they must serve" in shown.err
