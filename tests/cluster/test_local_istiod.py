"""``meshbridge local up --control-plane istiod`` as a user runs it (``-m cluster``): per mesh a kube-apiserver and
etcd, the bridge applied by meshbridge's own apply, upstream istiod, and the gateways' and the app's pilot-agents and
Envoys fed by it over xDS and SDS (:mod:`meshbridge.local.istiod_twin`).

The twin is started once for the module by the real command line in a process of its own (everything must keep
running after it returns), then used as the printed lines say: ``local curl``, ``status --context`` with the printed
kubeconfig, ``apply``; ``local down`` ends it and must leave no process and no key. Waits are for what the twin itself
answers (a status, a restart count), never for a duration. Without Go (and no cached builds), or not as root, the
module skips with the one line that says what is missing.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from meshbridge.cli.main import main
from meshbridge.gotools import ToolUnavailable
from meshbridge.kube.binaries import KubeServersUnavailable
from meshbridge.kube.client import TWIN_APP_VIEW, TWIN_ENVOY_ADMIN, KubeClient
from meshbridge.kube.clusters import connect
from meshbridge.local.istiod_twin import _wildcard_listeners, descendants
from meshbridge.local.process import ProcessId
from meshbridge.pki import CertBundle, PkiStore, issue_ca
from meshbridge.spec import load_bridge
from tests.builders import SEED
from tests.cluster.admission import wait_until
from tests.cluster.support import spec_on_ports

pytestmark = pytest.mark.cluster

CREDENTIAL = "/api/v1/namespaces/istio-ingress/secrets/mtls-credential"
GATEWAY_PORTS = {9080, 9180, 9443, 9444}
"""The targetPorts of this test's gateways (:func:`_seed_copy`), which their Envoys bind on the wildcard address."""
KEY_NAMES = ("*.key", "*key*.pem", "istio-token", "tokens.csv", "kubeconfig")
"""Files of the run that hold a private key or a credential: none may be left after 'local down'."""


@dataclass
class Twin:
    """The started twin: its bridge file, what 'local up' printed, and its kubeconfig."""

    file: Path
    out: str
    err: str

    @property
    def state(self) -> Path:
        return self.file.parent / ".meshbridge" / "local"

    @property
    def kubeconfig(self) -> Path:
        line = next(x for x in self.out.splitlines() if x.startswith("export KUBECONFIG="))
        return Path(line.removeprefix("export KUBECONFIG="))

    def status(self) -> dict[str, Any]:
        return dict(json.loads((self.state / "status.json").read_text()))

    def admin(self, mesh: str) -> KubeClient:
        bridge = load_bridge(self.file)
        return connect(bridge, {mesh: f"{mesh}-admin"}, meshes=[mesh], kubeconfig=self.kubeconfig)[mesh]


def _seed_copy(folder: Path) -> Path:
    """The seed with its handler in ``folder``, its gateways on targetPorts of this test's own (the seed's 8080 and
    8443 are test_controlplane's)."""
    return spec_on_ports(SEED, folder, ingress=(9180, 9443), egress=(9080, 9444))


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    shown = capsys.readouterr()
    return code, shown.out, shown.err


@pytest.fixture(scope="module")
def twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twin]:
    """'local up --control-plane istiod' on a copy of the seed, run as a user runs it; 'local down' at the end."""
    from meshbridge.local.istiod_twin import ensure_tools

    if os.geteuid() != 0:
        pytest.skip("local up --control-plane istiod needs root (a mount namespace per pod, ports 80 and 443)")
    try:
        ensure_tools()
    except ToolUnavailable as e:
        pytest.skip(str(e))
    file = _seed_copy(tmp_path_factory.mktemp("istiod-twin"))
    command = [sys.executable, "-c", "from meshbridge.cli.main import run; run()"]
    for _ in range(5):  # another run of this module may hold the gateways' ports for a while
        wait_until(lambda: not GATEWAY_PORTS & _wildcard_listeners(), "no other wildcard gateway listener", 2400)
        up = [*command, "local", "up", "--control-plane", "istiod", "-f", str(file)]
        done = subprocess.run(up, capture_output=True, text=True)
        if "are taken" not in done.stderr:
            break
    try:
        assert done.returncode == 0, done.stderr + done.stdout
        yield Twin(file, done.stdout, done.stderr)
    finally:
        subprocess.run([*command, "local", "down", "-f", str(file)], capture_output=True, check=False)


def test_control_plane_nonsense_is_refused_with_the_choices(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "local", "up", "--control-plane", "nonsense", "-f", str(_seed_copy(tmp_path)))
    assert code == 2
    assert "'nonsense' is not one of" in err and "'files'" in err and "'istiod'" in err
    assert not (tmp_path / ".meshbridge" / "local" / "status.json").exists()


def test_the_file_based_twins_options_are_refused_with_the_control_plane(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = str(_seed_copy(tmp_path))
    code, _, err = _cli(capsys, "local", "up", "--control-plane", "istiod", "--translator", "istiod", "-f", file)
    assert code == 2
    assert "--manifests, --cert, --translator and --json are for the file-based twin" in " ".join(err.split())
    assert not (tmp_path / ".meshbridge" / "local" / "status.json").exists()


def test_without_the_tools_one_line_names_what_is_missing_and_the_make_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The twin of every test below: no Go and no cached kube-apiserver: one line, the fix, nothing started."""
    from meshbridge.local import istiod_twin

    def missing(progress: object = None) -> dict[str, Path]:
        raise KubeServersUnavailable("kube-apiserver and etcd need Go to build (tools/kube); 'go' is not on PATH")

    monkeypatch.setattr(istiod_twin, "ensure_binaries", missing)
    code, _, err = _cli(capsys, "local", "up", "--control-plane", "istiod", "-f", str(_seed_copy(tmp_path)))
    assert code != 0
    message = " ".join(err.split())
    assert "needs Go or cached builds of tools/kube and tools/istiod" in message
    assert "'go' is not on PATH" in message and "Fix: make kube istiod" in message
    assert not (tmp_path / ".meshbridge" / "local" / "status.json").exists()


def test_the_pods_envoys_emit_their_listeners_refusal_counters_and_not_all_stats() -> None:
    """What 'verify' proves a refusal by (a listener's TLS counters, an unmatched connection) is in each pod's
    proxyStatsMatcher; the rest of Istio's default stats inclusion is left as it is (no cluster's counters)."""
    import re

    from meshbridge.local.controlplane import PodProxy, agent_env

    pod = PodProxy("gw-0", "istio-ingress", "gw", {"app": "gw"}, "gw-sa", "127.0.0.9")
    ports = dict.fromkeys(("admin", "status", "envoy_status", "prometheus", "dns"), 1)
    env = agent_env("localhost:1", load_bridge(SEED).spec.meshes["eks"], pod, ports, Path("/bin/envoy"))
    (pattern,) = json.loads(env["PROXY_CONFIG"])["proxyStatsMatcher"]["inclusionRegexps"]
    for stat in ("listener.0.0.0.0_9443.ssl.fail_verify_no_cert", "listener.0.0.0.0_9443.no_filter_chain_match"):
        assert re.fullmatch(pattern, stat), stat
    for stat in ("cluster.outbound|443||lambda.external.upstream_cx_total", "listener.admin.downstream_cx_total"):
        assert not re.fullmatch(pattern, stat), stat


def test_the_up_command_a_fix_names_starts_the_same_kind_of_twin(tmp_path: Path) -> None:
    """A twin on the real control plane is started again with --control-plane istiod (the fixes of 'not running'
    and of a changed bridge file print it); the file-based twin's, its twin, without."""
    from meshbridge.local.twin import TwinState

    state = TwinState(tmp_path / ".meshbridge")
    state.root.mkdir(parents=True)
    (state.root / "plan.json").write_text(json.dumps({"control_plane": "istiod", "manifests": {}, "certs": []}))
    assert state.up_command().endswith("local up --control-plane istiod")
    (state.root / "plan.json").write_text(json.dumps({"manifests": {}, "certs": []}))
    assert "--control-plane" not in state.up_command()


def test_up_prints_the_kubeconfig_the_commands_and_the_first_200(twin: Twin) -> None:
    assert "first 200 after" in twin.out
    assert "--context eks=eks --context gke=gke" in twin.out
    assert "local curl -i http://lambda.external/hello-world" in twin.out
    assert twin.kubeconfig.stat().st_mode & 0o777 == 0o600
    # the supervisor runs everything after 'local up' returned: the API servers, istiod and the pilot-agents
    kinds = {c["kind"] for c in twin.status()["components"]}
    assert {"etcd", "kube-apiserver", "istiod", "pilot-agent", "alb", "lb", "dns"} <= kinds
    assert all(c["ready"] for c in twin.status()["components"])


def test_local_curl_returns_the_lambdas_page_through_the_path_istiod_configured(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "http://lambda.external/hello-world"
    code, out, err = _cli(capsys, "local", "curl", "-i", url, "--bridge", str(twin.file))
    assert code == 0, err
    assert out.startswith("HTTP/1.1 200")
    assert "Hello World from Lambda" in out
    assert "note:" not in err


def test_status_on_the_printed_kubeconfig_shows_the_applied_bridge_and_the_running_gateways(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    contexts = ["--context", "eks=eks", "--context", "gke=gke"]
    code, out, err = _cli(capsys, "status", "-f", str(twin.file), "--kubeconfig", str(twin.kubeconfig), *contexts)
    assert code == 0, err
    assert "VirtualService" in out and "vs-lambda" in out
    rows = [line.split() for line in out.splitlines() if line.startswith(("ingress ", "egress "))]
    assert [r[3] for r in rows] == ["1/1", "1/1"]  # the twin's pods, the ones that run (not the stand-in's)


def test_up_says_which_istiod_runs_and_its_tables_fit_100_columns(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """The control plane is the pinned istiod, not the spec's version (what the bridge is rendered for); the
    components' table keeps within 100 columns (istiod's ports and each agent's admin continue on rows of their own),
    and --wide is the twin that does not."""
    said = " ".join((twin.out + twin.err).split())
    assert "the control plane is Istio 1.31's istiod (the spec's 1.17.2 is what the bridge renders for)" in said
    assert "stand-in installed" not in said
    code, out, err = _cli(capsys, "local", "status", "-f", str(twin.file))
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 100
    assert [line for line in out.splitlines() if line.startswith("eks/istiod")]
    code, wide, err = _cli(capsys, "local", "status", "--wide", "-f", str(twin.file))
    assert code == 0, err
    assert max(len(line) for line in wide.splitlines()) > 100


def test_verify_proves_every_refusal_by_the_gateways_own_counters(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """The pods' Envoys emit their listeners' TLS counters (proxyStatsMatcher), so verify sees the exporter count
    each refused client, as on the file-based twin: 17 passed, none unknown."""
    code, out, err = _cli(capsys, "verify", "-f", str(twin.file))
    assert code == 0, out + err
    assert "17 passed, 0 failed, 0 not run" in out and "unknown" not in out.splitlines()[-1]
    said = " ".join(out.split())
    for counter in ("ssl.fail_verify_no_cert +1", "ssl.fail_verify_error +1", "no_filter_chain_match +1"):
        assert counter in said


def test_local_env_prints_the_curl_that_reaches_the_export(twin: Twin, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(capsys, "local", "env", "-f", str(twin.file))
    assert code == 0, err
    assert "nothing to curl" not in out
    (line,) = [x.strip() for x in out.splitlines() if x.strip().startswith("curl ")]
    assert line.endswith("http://lambda.external/hello-world") and "--resolve lambda.external:80:" in line
    done = subprocess.run([*shlex.split(line), "-s", "-o", "/dev/null", "-w", "%{http_code}"], capture_output=True)
    assert done.stdout == b"200"


def _curl_status(capsys: pytest.CaptureFixture[str], twin: Twin) -> tuple[int, str]:
    _, out, err = _cli(
        capsys, "local", "curl", "-s", "-i", "http://lambda.external/hello-world", "--bridge", str(twin.file)
    )
    head = out.split(" ", 2)
    return (int(head[1]) if len(head) > 1 and head[1].isdigit() else 0), out + err


def _component(twin: Twin, name: str) -> dict[str, Any]:
    return dict(next(c for c in twin.status()["components"] if c["name"] == name))


def _restart(twin: Twin, name: str) -> None:
    """SIGKILL a pod's pilot-agent (its Envoy goes with it) and wait until the supervisor restarted it, ready."""
    before = _component(twin, name)
    os.kill(before["pid"], signal.SIGKILL)

    def back() -> bool:
        now = _component(twin, name)
        return bool(now["restarts"] > before["restarts"] and now["ready"])

    wait_until(back, f"the supervisor restarted {name}'s pilot-agent", 2400)


def test_an_exporter_that_trusts_another_ca_refuses_the_importer_until_apply_restores_the_trust(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """The exporter's Secret trusts another CA (its ``cacert``): istiod streams it to the running gateway, which
    refuses gke's client certificate in every new handshake (the egress gateway, restarted, has no connection left
    from before: Envoy checks trust when a connection is made), so the app's call answers 503, and a note names the
    hop whose requests all failed.
    'meshbridge apply' on the printed kubeconfig refuses to take over the hand-made change, then with
    ``--force-conflicts`` writes the bridge's trust back; istiod streams it, and the same call answers 200, the
    exporter's gateway never restarted."""
    exporter = _component(twin, "eks/istio-ingressgateway")
    with twin.admin("eks") as admin:
        secret = admin.request("GET", CREDENTIAL, what="the exporter's Secret", verb="get")
        secret["data"]["cacert"] = base64.b64encode(issue_ca("another CA").cert_pem).decode()
        for key in ("managedFields", "resourceVersion"):
            secret["metadata"].pop(key, None)
        admin.request("PUT", CREDENTIAL, body=secret, what="the exporter's Secret", verb="update")
    _restart(twin, "gke/istio-egressgateway")
    wait_until(lambda: _curl_status(capsys, twin)[0] == 503, "the gateway refused the importer (503)", 2400)
    code, out, err = _cli(capsys, "local", "curl", "http://lambda.external/hello-world", "--bridge", str(twin.file))
    assert code == 0 and "upstream connect error" in out, out + err
    note = " ".join(err.split())  # the hop that failed, from the proxies' own counters (no access log here)
    assert "note: gke/istio-egressgateway: outbound|80||lambda.external → ingress.eks.example.com" in note, note
    assert "none succeeded" in note and "mutual TLS the peer does not trust" in note

    contexts = ["--context", "eks=eks", "--context", "gke=gke"]
    apply = ["apply", "--no-wait", "-f", str(twin.file), "--kubeconfig", str(twin.kubeconfig), *contexts]
    code, _, err = _cli(capsys, *apply)
    assert code == 2 and "owned by another field manager" in err  # the hand-made change is another manager's
    code, _, err = _cli(capsys, *apply, "--force-conflicts")
    assert code == 0, err
    wait_until(lambda: _curl_status(capsys, twin)[0] == 200, "the restored trust reached the gateway (200)", 2400)
    after = _component(twin, "eks/istio-ingressgateway")
    assert (after["pid"], after["restarts"]) == (exporter["pid"], exporter["restarts"])


def test_a_killed_gateway_is_restarted_as_a_kubelet_would_and_serves_again(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    _restart(twin, "eks/istio-ingressgateway")
    wait_until(lambda: _curl_status(capsys, twin)[0] == 200, "the restarted gateway serves the Lambda", 2400)


def _served_leaf(twin: Twin) -> bytes:
    """The certificate the exporter's gateway serves for its credentialName (its Envoy's active SDS secret)."""
    admin = json.loads((twin.state / "plan.json").read_text())["proxies"]["eks/istio-ingressgateway"]["admin"]
    with urllib.request.urlopen(f"http://{admin}/config_dump?resource=dynamic_active_secrets", timeout=10) as r:
        dump = json.loads(r.read())
    (secret,) = [s for s in dump["configs"] if s["name"] == "kubernetes://mtls-credential"]
    return base64.b64decode(secret["secret"]["tls_certificate"]["certificate_chain"]["inline_bytes"])


def _rotated(capsys: pytest.CaptureFixture[str], twin: Twin, store: PkiStore, old: CertBundle, out: str) -> None:
    """Each mesh's step of a leaf rotation checked ``ok``, the store's new server leaf served by the exporter's
    gateway, and the app still answered."""
    rows = [line.split() for line in out.splitlines() if line.startswith(("eks ", "gke "))]
    assert [r[-1] for r in rows] == ["ok", "ok"], out
    new = store.load("eks", "server")
    assert new is not None and new.cert_pem != old.cert_pem
    assert new.cert_pem.strip() in _served_leaf(twin)  # the check passed on what the gateway serves now
    assert _curl_status(capsys, twin)[0] == 200


def test_a_leaf_rotation_without_context_is_pushed_to_the_twins_api_servers_and_checked_there(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """'certs rotate --leaf' beside a control-plane twin, with no --context, pushes every step to the twin's own
    API servers (the kubeconfig and the context per mesh it recorded) and says so; istiod's SDS brings the new leaf
    to the same Envoy process, the check between steps reads it there, and the app keeps getting 200. 'certs push'
    with no --context pushes there too. Its twin: given other contexts than the twin's, the note says how to push
    to the twin."""
    store = PkiStore(twin.file.parent / ".meshbridge")
    old = store.load("eks", "server")
    assert old is not None and old.cert_pem.strip() in _served_leaf(twin)
    gateway = _component(twin, "eks/istio-ingressgateway")
    code, out, err = _cli(capsys, "certs", "rotate", "--leaf", "-f", str(twin.file))
    assert code == 0, out + err
    said = " ".join(err.split())
    assert "so they are pushed there" in said and str(twin.kubeconfig) in err.replace("\n", "")
    assert "nothing is running" not in " ".join((out + err).split())
    _rotated(capsys, twin, store, old, out)
    assert (_component(twin, "eks/istio-ingressgateway")["restarts"]) == gateway["restarts"]

    code, out, err = _cli(capsys, "certs", "push", "-f", str(twin.file))
    assert code == 0, out + err
    assert "pushed: eks (eks:" in out and "pushed: gke (gke:" in out and "nothing to push to" not in err
    assert "push to them" not in " ".join(err.split())

    others = ["--kubeconfig", str(twin.kubeconfig), "--context", "eks=eks-admin", "--context", "gke=gke-admin"]
    _, out, err = _cli(capsys, "certs", "push", "-f", str(twin.file), *others)
    said = " ".join(err.split())
    assert "push to them: --kubeconfig" in said and "--context eks=eks --context gke=gke" in said, out + err


GATEWAY_POD = "/api/v1/namespaces/istio-ingress/pods/istio-ingressgateway-twin-0"


def _record(twin: Twin, admin: str | None) -> None:
    """Set (or, with ``None``, remove) the Envoy admin address the twin recorded on the exporter's gateway pod."""
    _record_on(twin, "eks", GATEWAY_POD, admin)


def _record_on(twin: Twin, mesh: str, pod: str, value: str | None, annotation: str = TWIN_ENVOY_ADMIN) -> None:
    """Set (or, with ``None``, remove) what the twin recorded on ``pod`` of ``mesh`` (its Envoy admin address)."""
    with twin.admin(mesh) as client:
        patch = {"metadata": {"annotations": {annotation: value}}}
        client.request(
            "PATCH", pod, body=patch, content_type="application/merge-patch+json", what="the pod", verb="patch"
        )


def test_a_rotation_with_context_checks_each_gateway_at_the_envoy_the_twin_recorded(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """No kubelet serves the twin's pods a port-forward: 'certs rotate --context' reads each gateway's Envoy at the
    admin address the twin recorded on its pod, so every step is pushed and its serving check passes, and the
    gateway serves the new leaf. Its twin: a pod without that record fails 'certs push' on the port-forward, with
    the error naming the pod's node that no kubelet serves and the fix."""
    store = PkiStore(twin.file.parent / ".meshbridge")
    old = store.load("eks", "server")
    assert old is not None
    kube = ["--kubeconfig", str(twin.kubeconfig), "--context", "eks=eks", "--context", "gke=gke"]
    code, out, err = _cli(capsys, "certs", "rotate", "--leaf", "-f", str(twin.file), *kube)
    assert code == 0, out + err
    assert "push to them" not in " ".join(err.split())  # the user gave exactly the twin's options
    _rotated(capsys, twin, store, old, out)

    with twin.admin("eks") as client:
        pod = client.request("GET", GATEWAY_POD, what="the pod", verb="get")
    recorded = pod["metadata"]["annotations"][TWIN_ENVOY_ADMIN]
    _record(twin, None)
    try:
        code, out, err = _cli(capsys, "certs", "push", "-f", str(twin.file), *kube)
    finally:
        _record(twin, recorded)
    message = " ".join(err.split())
    assert code != 0, out + err
    assert "pod istio-ingress/istio-ingressgateway-twin-0" in message and "bound to node 'twin'" in message
    assert "no kubelet serves the pod" in message and "Fix:" in message


SLEEP_POD = "/api/v1/namespaces/sleep/pods/sleep-twin-0"


def _app_check(capsys: pytest.CaptureFixture[str], twin: Twin) -> tuple[int, dict[str, Any]]:
    kube = ["--kubeconfig", str(twin.kubeconfig), "--context", "eks=eks", "--context", "gke=gke"]
    code, out, err = _cli(capsys, "verify", "-f", str(twin.file), "--json", *kube)
    checks = {c["check"]: c for c in json.loads(out)["conditions"]}
    assert "AppReachesExport" in checks, out + err
    return code, checks["AppReachesExport"]


def test_verify_with_context_sends_as_the_twins_app_where_no_kubelet_serves_exec(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """No kubelet serves exec into the twin's app pod: 'verify --context' on its API servers sends the app's request
    as 'local curl' does, by what the twin recorded on the pod (its sidecar, its agent's names), and the path passes
    (exit 0). Its twins: without that record the check is Unknown with the reason and the local 'meshbridge verify'
    as the way (exit 1, not a cluster failure); a pod the twin did not represent (a cluster's pod whose exec fails)
    stays a cluster failure (exit 2)."""
    code, found = _app_check(capsys, twin)
    assert (found["status"], code) == ("True", 0), found
    assert "sent as its app through its sidecar by the local twin" in " ".join(found["message"].split())

    with twin.admin("gke") as client:
        annotations = client.request("GET", SLEEP_POD, what="the pod", verb="get")["metadata"]["annotations"]
    try:
        _record_on(twin, "gke", SLEEP_POD, None, TWIN_APP_VIEW)
        code, found = _app_check(capsys, twin)
        message = " ".join(found["message"].split())
        assert (found["status"], found["reason"], code) == ("Unknown", "NoExecOnTwin", 1), found
        assert "pod sleep/sleep-twin-0" in message and "no kubelet runs it" in message
        assert "'meshbridge verify -f BRIDGE' without --context" in message

        _record_on(twin, "gke", SLEEP_POD, None)
        code, found = _app_check(capsys, twin)
        assert (found["status"], found["reason"], code) == ("Unknown", "ClusterRequestFailed", 2), found
    finally:
        _record_on(twin, "gke", SLEEP_POD, annotations[TWIN_ENVOY_ADMIN])
        _record_on(twin, "gke", SLEEP_POD, annotations[TWIN_APP_VIEW], TWIN_APP_VIEW)


def test_a_revocation_without_context_names_restarting_the_twin_not_a_rollout_restart(
    twin: Twin, capsys: pytest.CaptureFixture[str]
) -> None:
    """'certs revoke' beside the twin pushes the CRL to its API servers, and the way it names to cut connections
    opened before is starting the twin again (no controller acts on a rollout restart there); a new leaf then
    serves the app 200. Its twin: with other contexts than the twin's (clusters, as far as meshbridge knows) the
    way is 'kubectl rollout restart' per gateway."""
    revoke = ["certs", "revoke", "--mesh", "gke", "--current", "client", "-f", str(twin.file)]
    reissue = ["certs", "rotate", "--leaf", "--mesh", "gke", "-f", str(twin.file)]
    code, out, err = _cli(capsys, *revoke)
    said = " ".join((out + err).split())
    assert code == 0 and "pushed to: eks (eks: 1 Secret(s)); gke (gke: 1 Secret(s))" in said, out + err
    assert "start the twin again: 'meshbridge local down" in said and "rollout restart deployment" not in said
    assert _cli(capsys, *reissue)[0] == 0

    others = ["--kubeconfig", str(twin.kubeconfig), "--context", "eks=eks-admin", "--context", "gke=gke-admin"]
    code, out, err = _cli(capsys, *revoke, *others)
    said = " ".join((out + err).split())
    assert code == 0 and "kubectl --context gke-admin -n istio-egress rollout restart" in said, out + err
    assert "start the twin again" not in said
    assert _cli(capsys, *reissue)[0] == 0
    assert _curl_status(capsys, twin)[0] == 200


def test_down_leaves_no_process_and_no_key(twin: Twin, capsys: pytest.CaptureFixture[str]) -> None:
    st = twin.status()
    roots = [st["supervisor"]["pid"], *(c["pid"] for c in st["components"] if c["pid"])]
    running = [ProcessId.of(p) for root in roots for p in descendants(root)]
    assert len(running) > len(st["components"])  # the agents' Envoys too
    code, out, err = _cli(capsys, "local", "down", "-f", str(twin.file))
    assert code == 0, err
    assert "stopped" in out
    assert [p.pid for p in running if p.alive()] == []
    left = [str(p) for pattern in KEY_NAMES for p in twin.state.rglob(pattern)]
    assert left == []
    code, _, err = _cli(capsys, "local", "curl", "http://lambda.external/hello-world", "--bridge", str(twin.file))
    assert code == 7 and "not running" in " ".join(err.split())
