"""``meshbridge plan | apply | status | delete`` in-process, through a real kubeconfig pointing at fake clusters."""

from __future__ import annotations

from pathlib import Path

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
    assert "Plan: 12 to create" in shown.out and "PRIVATE KEY" not in shown.out and "LS0t" not in shown.out
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
    assert main(["certs", "push", *common]) == 0
