"""Defects only a real API server showed, each with its fix checked on the local real servers (``-m cluster``).

* the ``kubernetes`` client floor: the code calls ``ApiClient.param_serialize``, which only 37.0 has;
* objects a client-side ``kubectl apply`` made: co-owned, a 409 on the next change; stated, and taken over
  with ``--force-conflicts`` so that later applies converge (``certs push`` included);
* the server's ``Warning:`` headers (a deprecated API version) shown; a field a CRD does not declare (a 500
  from server-side apply) explained, and not retried;
* a 5xx (504 while etcd does not answer) retried, a bounded number of times;
* the WebSocket handshakes of port-forward and exec, refused by a server without kubelet, fail at once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from meshbridge.kube.client import KubeClient
from meshbridge.kube.envtest import Clusters
from meshbridge.kube.errors import KubeApiError
from meshbridge.kube.ownership import LAST_APPLIED
from meshbridge.kube.resources import ResourceRef
from meshbridge.pki import PkiStore
from meshbridge.render import render_bridge
from tests.builders import ROOT
from tests.cluster.support import Cli, admin, get, managers

pytestmark = pytest.mark.cluster

Doc = dict[str, Any]
ADDRESS = {"eks": "istio-ingressgateway.istio-ingress.eks.lb.envtest.invalid"}


# -- the client's floor ----------------------------------------------------------------------------------


def _floor() -> str:
    text = (ROOT / "pyproject.toml").read_text()
    m = re.search(r'"kubernetes>=([0-9.]+)', text)
    assert m, "pyproject.toml names no kubernetes floor"
    return m.group(1)


def _client_at(version: str, folder: Path) -> Path:
    """The ``kubernetes`` package at ``version`` alone in ``folder`` (pip, no dependencies); skip without PyPI."""
    target = folder / f"kubernetes-{version}"
    if not (target / "kubernetes").is_dir():
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"),
                str(target),
                f"kubernetes=={version}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot install kubernetes=={version} from the package index: {done.stderr[-300:]}")
    return target


def _status_with(cli: Cli, client_dir: Path) -> subprocess.CompletedProcess[str]:
    """``meshbridge status`` in a process whose ``kubernetes`` package is the one in ``client_dir``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(client_dir), str(ROOT / "src")])}
    code = "import sys, meshbridge.cli.main as m; sys.exit(m.main(sys.argv[1:]))"
    args = ["status", "-f", str(cli.file), *cli.target.args(), "--state-dir", str(cli.state)]
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_the_declared_client_floor_works_against_the_real_servers(
    cli: Cli, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """pyproject's ``kubernetes>=`` floor, installed alone, runs status against the real servers; the release
    before it (the old floor was 29) cannot even make a request: the client's API changed in 37."""
    folder = tmp_path_factory.getbasetemp() / "clients"
    floor = _floor()
    assert tuple(int(x) for x in floor.split(".")[:2]) >= (37, 0)
    done = _status_with(cli, _client_at(floor, folder))
    assert done.returncode == 1, done.stderr  # read every cluster; nothing applied yet: 'missing'
    assert "missing" in done.stdout and "Traceback" not in done.stderr
    before = _status_with(cli, _client_at("36.0.0", folder))
    assert before.returncode == 2 and "param_serialize" in before.stdout + before.stderr


# -- client-side kubectl apply ---------------------------------------------------------------------------


def kubectl_apply_client_side(local: Clusters, mesh: str, docs: list[Doc]) -> None:
    """What ``kubectl apply -f`` (client-side) does with new objects: create each with the last-applied
    annotation under the field manager ``kubectl-client-side-apply``."""
    with admin(local, mesh) as a:
        for doc in docs:
            if doc["kind"] == "Namespace":
                continue
            ref = ResourceRef.of(doc)
            body = json.loads(json.dumps(doc))
            body["metadata"].setdefault("annotations", {})[LAST_APPLIED] = json.dumps(doc, separators=(",", ":"))
            a.request(
                "POST",
                ref.type.collection_path(ref.namespace),
                query=[("fieldManager", "kubectl-client-side-apply")],
                body=body,
                what=str(ref),
                verb="create",
            )


def rendered(cli: Cli) -> dict[str, list[Doc]]:
    creds = PkiStore(cli.state).credentials(cli.bridge)
    return {m: list(docs) for m, docs in render_bridge(cli.bridge, creds, addresses=ADDRESS).items()}


def _backend(host: str) -> Any:
    def change(d: Doc) -> None:
        d["spec"]["exports"][0]["backend"]["host"] = host

    return change


def test_objects_a_client_side_kubectl_apply_made_are_stated_then_taken_over(cli: Cli, local: Clusters) -> None:
    # the README's GitOps path: meshbridge render --mesh eks | kubectl apply -f -
    kubectl_apply_client_side(local, "eks", rendered(cli)["eks"])
    code, plan = cli.json("plan")
    reasons = {c["name"]: (c["action"], c["reason"]) for c in plan["meshes"][0]["changes"]}
    assert code == 0 and reasons["dr-lambda-backend"][0] == "unchanged"
    assert reasons["dr-lambda-backend"][1].startswith("co-owned with kubectl-client-side-apply")
    # the spec changes a field kubectl set: a conflict, stated with the manager and the fields, never a bare 409
    cli.write(_backend("alb2.internal.example.com"))
    code, plan = cli.json("plan")
    reasons = {c["name"]: (c["action"], c["reason"]) for c in plan["meshes"][0]["changes"]}
    assert code == 1 and reasons["dr-lambda-backend"][0] == "conflict"
    why = reasons["dr-lambda-backend"][1]
    assert "kubectl-client-side-apply (a client-side 'kubectl apply') owns .spec.host" in why
    assert why.endswith("--force-conflicts takes them over")
    code, _, err = cli("apply", "--no-wait")
    assert code == 2 and "nothing was written" in err and "--force-conflicts" in err
    # taken over: meshbridge alone owns each object, the stale annotation is gone
    code, _, err = cli("apply", "--no-wait", "--force-conflicts")
    assert code == 0, err
    dr = "/apis/networking.istio.io/v1/namespaces/istio-ingress/destinationrules/dr-lambda-backend"
    for path in [dr, "/api/v1/namespaces/istio-ingress/secrets/mtls-credential"]:
        live = get(local, "eks", path)
        assert live is not None and managers(live) == {"meshbridge": "Apply"}, live["metadata"]["managedFields"]
        assert LAST_APPLIED not in (live["metadata"].get("annotations") or {})
    live = get(local, "eks", dr)
    assert live is not None and live["spec"]["host"] == "alb2.internal.example.com"
    # and it converges: the next change applies without --force-conflicts, nothing is co-owned any more
    cli.write(_backend("alb3.internal.example.com"))
    code, _, err = cli("apply", "--no-wait")
    assert code == 0, err
    code, plan = cli.json("plan")
    assert code == 0 and plan["totals"]["update"] == 0 and plan["totals"]["conflict"] == 0
    assert not any("co-owned" in (c.get("reason") or "") for m in plan["meshes"] for c in m["changes"])


def test_certs_push_onto_a_secret_kubectl_made_names_the_manager_and_takes_it_over(cli: Cli, local: Clusters) -> None:
    docs = rendered(cli)
    kubectl_apply_client_side(local, "eks", [d for d in docs["eks"] if d["kind"] == "Secret"])
    PkiStore(cli.state).issue(cli.bridge, force=True)  # a new CA and leaves: the Secret's data changes
    code, out, err = cli("certs", "push", "--timeout", "1")
    text = " ".join(err.split())
    assert code == 2 and "kubectl-client-side-apply (a client-side 'kubectl apply') owns .data" in text
    assert "--force-conflicts" in text and "Traceback" not in err
    code, out, err = cli("certs", "push", "--timeout", "1", "--force-conflicts")
    assert "pushed: eks (eks: 1 Secret(s))" in out  # the serve check needs port-forward: no kubelet here
    secret = get(local, "eks", "/api/v1/namespaces/istio-ingress/secrets/mtls-credential")
    new = next(d for d in rendered(cli)["eks"] if d["kind"] == "Secret")
    assert secret is not None and secret["data"] == new["data"] and managers(secret) == {"meshbridge": "Apply"}


# -- warnings, retries, streams --------------------------------------------------------------------------


def test_a_deprecated_api_versions_warning_is_shown(cli: Cli, local: Clusters) -> None:
    """The server's Warning: headers reach the user: here the one a CRD sends for a version it deprecates
    (the seed's Istio 1.17 renders networking.istio.io/v1beta1), naming the cluster and the object."""
    crd = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gateways.networking.istio.io"
    with admin(local, "eks") as a:
        live = a.request("GET", crd, what="crd", verb="get")
        original = json.loads(json.dumps(live["spec"]["versions"]))
        for v in live["spec"]["versions"]:
            if v["name"] == "v1beta1":
                v["deprecated"] = True
                v["deprecationWarning"] = "networking.istio.io/v1beta1 Gateway is deprecated; use v1"
        a.request("PUT", crd, body=live, what="crd", verb="update")
    try:
        time.sleep(1)  # the CRD's handler is rebuilt
        code, _, err = cli("apply", "--no-wait")
        assert code == 0, err
        assert (
            "cluster 'eks': apply (dry run) Gateway istio-ingress/eastwestgateway: warning: "
            "networking.istio.io/v1beta1 Gateway is deprecated; use v1"
        ) in " ".join(err.split())
        assert "cluster 'gke'" not in err.split("warning:")[0].rsplit("\n", 1)[-1]
    finally:
        with admin(local, "eks") as a:
            live = a.request("GET", crd, what="crd", verb="get")
            live["spec"]["versions"] = original
            a.request("PUT", crd, body=live, what="crd", verb="update")


def test_a_field_the_crd_does_not_declare_is_refused_once_and_explained(
    cli: Cli, local: Clusters, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real server refuses a server-side apply carrying a field the CRD's schema does not declare with a
    500 (not the 'unknown field' warning of a create): meshbridge does not retry it and says what it means."""
    from meshbridge.kube import apply as kube_apply

    real = kube_apply.render_bridge

    def with_unknown_field(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        for doc in out["eks"]:
            if doc["kind"] == "Gateway":
                doc["spec"]["servers"][0]["tls"]["sessionTickets"] = True  # not in Istio's schema
        return out

    monkeypatch.setattr(kube_apply, "render_bridge", with_unknown_field)
    start = time.monotonic()
    code, _, err = cli("apply", "--no-wait")
    text = " ".join(err.split())
    assert code == 2 and time.monotonic() - start < 10 and "retrying" not in err
    assert ".spec.servers[0].tls.sessionTickets: field not declared in schema" in text
    assert "a field the installed CRD's schema does not declare" in text
    assert get(local, "eks", "/apis/networking.istio.io/v1/namespaces/istio-ingress/gateways/eastwestgateway") is None


@pytest.fixture
def slow_cluster(tmp_path: Path) -> Any:
    """A cluster of its own whose API server gives up on etcd after 3 s (504) instead of a minute."""
    from meshbridge.kube import envtest

    original = envtest._apiserver_args
    envtest._apiserver_args = lambda b, c: [*original(b, c), "--request-timeout=3s"]  # type: ignore[assignment]
    try:
        with envtest.running(["slow"], tmp_path / "slow") as run:
            yield run
    finally:
        envtest._apiserver_args = original  # type: ignore[assignment]


def test_a_5xx_is_retried_until_the_server_answers(slow_cluster: Clusters) -> None:
    c = slow_cluster["slow"]
    lines: list[str] = []
    client = KubeClient.from_configuration(c.configuration(), "slow", notify=lines.append)
    doc = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": "default"}}
    etcd = c.pids["etcd"]
    os.kill(etcd, signal.SIGSTOP)  # etcd stops answering: writes wait, then the API server answers 504
    timer = threading.Timer(4.0, os.kill, (etcd, signal.SIGCONT))
    timer.start()
    try:
        start = time.monotonic()
        out = client.apply(doc)
        took = time.monotonic() - start
    finally:
        timer.join()
        os.kill(etcd, signal.SIGCONT)
        client.close()
    assert out["metadata"]["name"] == "x" and took > 3
    assert lines and lines[0].startswith("cluster 'slow': apply ConfigMap default/x: 504 Timeout")
    assert "retrying in 0.5 s (retry 1 of 4)" in lines[0]


def test_port_forward_and_exec_are_refused_at_once_without_a_kubelet(local: Clusters) -> None:
    """A real server authorizes the stream, then refuses it (no node): an error naming the pod, not a hang."""
    from meshbridge.kube.resources import resource_type

    # where the user may open them (render --rbac): port-forward to the gateway pods, exec into the app's
    for mesh, namespace, call in (
        ("eks", "istio-ingress", lambda u, pod: u.http_get("istio-ingress", pod, 15000, "/config_dump")),
        ("gke", "sleep", lambda u, pod: u.exec("sleep", pod, ["true"], container="sleep")),
    ):
        with local[mesh].client(admin=False, request_timeout=10) as user:
            pod = user.list_objects(resource_type("v1", "Pod"), namespace=namespace)[0]["metadata"]["name"]
            start = time.monotonic()
            with pytest.raises(KubeApiError) as e:
                call(user, pod)
            assert time.monotonic() - start < 5
            assert e.value.status == 400 and "does not have a host assigned" in str(e.value)
            assert f"pod {namespace}/{pod}" in str(e.value)
