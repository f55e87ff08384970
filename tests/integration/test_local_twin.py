"""The local twin with real Envoy, real TLS and real awslambdaric processes: the article's path end to end."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import pytest

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.envoy.proxyconfig import KINDS, format_proxy_config
from meshbridge.errors import LocalError
from meshbridge.local import inotify
from meshbridge.local.curl import CurlError, curl
from meshbridge.local.process import ProcessId
from meshbridge.local.twin import LocalTwin
from meshbridge.spec import load_bridge
from meshbridge.tabwriter import TERMINAL_WIDTH
from meshbridge.verify.local import verify_local
from tests.builders import ROOT

pytestmark = pytest.mark.integration
PAGE = b"Hello World from Lambda"


def _seed_dir(tmp: Path) -> Path:
    for name in SEED_FILES:
        (tmp / name).write_text(seed_text(name))
    return tmp / "bridge.yaml"


def _pids(twin: LocalTwin) -> list[ProcessId]:
    status = twin._read_status()
    ids = [ProcessId(c["pid"], c["started"]) for c in status.get("components", []) if c.get("pid")]
    sup = status.get("supervisor")
    return [*ids, ProcessId(sup["pid"], sup["started"])] if sup else ids


@pytest.fixture(scope="module")
def seed_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    file = _seed_dir(tmp_path_factory.mktemp("seed"))
    twin = LocalTwin(load_bridge(file), file, file.parent / ".meshbridge")
    try:
        twin.up()
        yield twin
    finally:
        twin.down()


@pytest.fixture(scope="module")
def article_twin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTwin, list[str]]]:
    work = tmp_path_factory.mktemp("article")
    shutil.copytree(ROOT / "examples", work / "examples")
    file = work / "examples" / "article" / "bridge.yaml"
    twin = LocalTwin(load_bridge(file), file, work / ".meshbridge")
    manifests = {m: [work / "examples" / "article" / f"{m}.yaml"] for m in ("eks", "gke")}
    os.environ["HOST_GW_CLUSTER2"] = "ingress.eks.example.com"
    try:
        report = twin.up(manifests)
        yield twin, report.notices
    finally:
        twin.down()
        os.environ.pop("HOST_GW_CLUSTER2", None)


def test_app_gets_the_lambda_page_through_both_gateways(seed_twin: LocalTwin) -> None:
    r = curl(seed_twin.app_view(), "http://lambda.external/hello-world")
    headers = dict(r.headers)
    assert r.status == 200 and PAGE in r.body
    assert headers["server"] == "envoy"  # the app's own sidecar answers, as in the article's step 6
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert "x-envoy-upstream-service-time" in headers


def test_unknown_host_does_not_resolve(seed_twin: LocalTwin) -> None:
    with pytest.raises(CurlError) as exc:
        curl(seed_twin.app_view(), "http://alb.internal.example.com/")
    assert exc.value.code == 6 and "Could not resolve host" in str(exc.value)


def test_verify_passes_every_check_with_its_refusals(seed_twin: LocalTwin) -> None:
    conditions = {c.check: c for c in verify_local(seed_twin)}
    failed = [f"{c.check}: {c.message}" for c in conditions.values() if not c.passed]
    assert failed == []
    assert "certificate required" in conditions["ExporterRefusesNoClientCert"].message
    assert "unknown ca" in conditions["ExporterRefusesForeignCA"].message
    assert "expired" in conditions["ExporterRefusesExpiredCert"].message


def test_verify_without_the_importers_ca_key_runs_every_check_but_the_forged_one(seed_twin: LocalTwin) -> None:
    """A CA imported without its key ('certs import --slot ca' without --key): the expired certificate cannot
    be forged, so that one check is Unknown; every other check still runs (with the key, it passes: above)."""
    key = seed_twin.state_dir / "pki" / "gke" / "ca.key"
    held = key.read_bytes()
    key.unlink()
    try:
        conditions = {c.check: c for c in verify_local(seed_twin)}
    finally:
        key.write_bytes(held)
        key.chmod(0o600)
    expired = conditions.pop("ExporterRefusesExpiredCert")
    assert (expired.status, expired.reason) == ("Unknown", "NoCAKey")
    assert "imported without it" in expired.message and "not tested" in expired.message
    assert [f"{c.check}: {c.message}" for c in conditions.values() if not c.passed] == []


def test_proxy_config_tables_read_like_istioctl_and_fit_a_terminal(seed_twin: LocalTwin) -> None:
    routes = format_proxy_config("routes", seed_twin.config_dump("eks/istio-ingressgateway"), wide=True)
    row = next(line.split() for line in routes.splitlines() if line.startswith("https."))
    assert row == [
        "https.443.https.eastwestgateway.istio-ingress",
        "lambda.external:443",
        "lambda.external",
        "/*",
        "vs-lambda.istio-ingress",
    ]
    egress = format_proxy_config("routes", seed_twin.config_dump("gke/istio-egressgateway"), wide=True)
    row = next(line.split() for line in egress.splitlines() if line.startswith("http.8080"))
    assert row == [
        "http.8080",
        "lambda.external:80",
        "lambda.external",
        "/*",
        "direct-lambda-through-egress-gateway.istio-egress",
    ]
    secrets = format_proxy_config("secret", seed_twin.config_dump("eks/istio-ingressgateway"), wide=True)
    assert "kubernetes://mtls-credential " in secrets and "kubernetes://mtls-credential-cacert" in secrets
    listeners = format_proxy_config("listeners", seed_twin.config_dump("eks/istio-ingressgateway"), wide=True)
    assert "SNI: lambda.external" in listeners and "Route: https.443.https.eastwestgateway.istio-ingress" in listeners
    for proxy in ("eks/istio-ingressgateway", "gke/istio-egressgateway", "gke/sleep"):  # the default: a terminal's
        for kind in KINDS:
            short = format_proxy_config(kind, seed_twin.config_dump(proxy))
            assert max(len(line) for line in short.splitlines()) <= TERMINAL_WIDTH, (proxy, kind, short)


def test_supervisor_restarts_a_killed_gateway(seed_twin: LocalTwin) -> None:
    before = {s.name: s for s in seed_twin.status()}["eks/istio-ingressgateway"]
    assert before.pid is not None
    os.kill(before.pid, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = {s.name: s for s in seed_twin.status()}["eks/istio-ingressgateway"]
        if now.ready and now.pid not in (None, before.pid):
            break
        time.sleep(0.1)
    assert now.ready and now.restarts == before.restarts + 1
    assert curl(seed_twin.app_view(), "http://lambda.external/hello-world").status == 200


def test_two_topologies_never_collide(seed_twin: LocalTwin, article_twin: tuple[LocalTwin, list[str]]) -> None:
    assert seed_twin.plan()["subnet"] != article_twin[0].plan()["subnet"]


def test_the_articles_manifests_run_as_they_stand(article_twin: tuple[LocalTwin, list[str]]) -> None:
    twin, notices = article_twin
    assert any("Secret istio-ingress/mtls-credential is not in the manifests" in n for n in notices)
    r = curl(twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 200 and PAGE in r.body
    routes = format_proxy_config("routes", twin.config_dump("eks/istio-ingressgateway"), wide=True)
    assert "vs-lambda.istio-ingress" in routes and "https.443.https.eastwestgateway.istio-ingress" in routes
    conditions = {c.check: c for c in verify_local(twin)}
    assert conditions["ExporterAcceptsImporterCert"].passed and conditions["ExporterRefusesForeignCA"].passed
    # the Secrets are not in these manifests, so the twin runs the store's: the store-based checks run
    assert conditions["GatewaysServeCurrentCerts"].passed and conditions["ExporterRefusesExpiredCert"].passed


def test_verify_uses_the_secrets_of_the_users_manifests_and_never_compares_them_with_the_store(
    tmp_path: Path,
) -> None:
    """Manifests that hold the gateway Secrets with the user's own certificates (another PKI): the handshake
    checks present those, the store-based ones are Unknown and name the Secret and the manifest."""
    import yaml

    from meshbridge.local.plan import lb_address
    from meshbridge.pki import PkiStore
    from meshbridge.render import render_bridge
    from meshbridge.spec.loader import read_backend_cas

    file = _seed_dir(tmp_path)
    bridge = load_bridge(file)
    own = PkiStore(tmp_path / "own-pki")
    own.issue(bridge)
    rendered = render_bridge(
        bridge,
        own.credentials(bridge),
        backend_cas=read_backend_cas(bridge, file.parent),
        addresses={ex.from_: lb_address(bridge, ex.from_) for ex in bridge.spec.exports},
    )
    manifests = {}
    for mesh, docs in rendered.items():
        manifests[mesh] = [tmp_path / f"{mesh}.yaml"]
        manifests[mesh][0].write_text(yaml.safe_dump_all(list(docs)))
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        twin.up(manifests)
        conditions = {c.check: c for c in verify_local(twin)}
        served = conditions["GatewaysServeCurrentCerts"]
        assert (served.status, served.reason) == ("Unknown", "SecretsFromManifests")
        assert "Secret istio-ingress/mtls-credential from " + str(tmp_path / "eks.yaml") in served.message
        assert "certs push' would not change it" in served.message
        expired = conditions.pop("ExporterRefusesExpiredCert")
        assert (expired.status, expired.reason) == ("Unknown", "SecretsFromManifests")
        del conditions["GatewaysServeCurrentCerts"]
        assert [f"{c.check}: {c.message}" for c in conditions.values() if not c.passed] == []
    finally:
        twin.down()


def test_down_leaves_no_process_even_after_the_supervisor_was_killed(tmp_path: Path) -> None:
    file = _seed_dir(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    twin.up()
    pids = _pids(twin)
    assert all(p.alive() for p in pids)
    sup = twin._read_status()["supervisor"]
    os.kill(sup["pid"], signal.SIGKILL)
    twin.down()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(p.alive() for p in pids):
        time.sleep(0.1)
    assert [p for p in pids if p.alive()] == []
    assert not twin.running()


def test_an_ingress_without_an_address_gets_a_local_load_balancer_name(tmp_path: Path) -> None:
    file = _seed_dir(tmp_path)
    file.write_text(file.read_text().replace("        address: ingress.eks.example.com\n", ""))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 200 and PAGE in r.body
        dump = json.dumps(twin.config_dump("gke/istio-egressgateway"))
        assert '"address": "istio-ingressgateway.istio-ingress.eks.lb.local"' in dump
        assert "ingress.eks.example.com" not in dump
    finally:
        twin.down()


def test_verify_cli_reports_json_and_junit_for_ci(
    seed_twin: LocalTwin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    file = str(seed_twin.bridge_dir / "bridge.yaml")
    assert main(["verify", "-f", file, "--json", "--junit", str(tmp_path / "verify.xml")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is True and {c["status"] for c in report["conditions"]} == {"True"}
    suite = ElementTree.parse(tmp_path / "verify.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("errors") == "0"
    assert int(suite.get("tests", "0")) == len(report["conditions"])


def test_verify_of_a_misrouted_export_fails_and_names_the_hop_and_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed bridge with the article's own EKS manifests: they route to the article's ALB name, not the seed's
    backend, so verify says where the running route goes and does not blame the bridge for the ALB's answer (its
    gateway would answer 503 UH: the twin has no endpoint for that name)."""
    from meshbridge.cli.main import main

    file = _seed_dir(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up({"eks": [ROOT / "examples" / "article" / "eks.yaml"]})
        conditions = {c.check: c for c in verify_local(twin)}
        backend = conditions["BackendAnswers"]
        assert (backend.status, backend.reason) == ("Unknown", "NotTheExportBackend"), backend
        assert "eks/istio-ingressgateway routes GET / for lambda.external to outbound|443||alb.jesus2.solo.io" in (
            backend.message
        )
        assert "not to the export's backend alb.internal.example.com" in backend.message
        assert "Fix: route the export's VirtualService to alb.internal.example.com" in backend.message
        app = conditions["AppReachesExport"]  # not judged against the seed's ALB
        assert app.reason == "NotRunWithoutBackendAnswers", app
        accepted = conditions["ExporterAcceptsImporterCert"]  # the gateway's 503 UH came through the mutual TLS
        assert (accepted.status, accepted.reason) == ("True", "HandshakePassed"), accepted
        assert "the gateway answered HTTP 503 (server: istio-envoy" in accepted.message
        assert conditions["ExporterRefusesForeignCA"].passed  # the refusals still hold
        assert main(["verify", "-f", str(file), "--json"]) == 1
        assert json.loads(capsys.readouterr().out)["passed"] is False
    finally:
        twin.down()


def test_demo_runs_the_article_and_cleans_up(capsys: pytest.CaptureFixture[str]) -> None:
    from meshbridge.cli.main import main

    before = set(Path(tempfile.gettempdir()).glob("meshbridge-demo-*"))
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "every check passed" in out and "Hello World from Lambda" in out
    assert set(Path(tempfile.gettempdir()).glob("meshbridge-demo-*")) == before


def test_demo_exits_1_when_a_check_fails_and_still_tears_down(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli import verify_cmd
    from meshbridge.cli.main import main
    from meshbridge.verify import Condition

    started: list[LocalTwin] = []
    real = verify_cmd.verify_local

    def failing(twin: LocalTwin) -> list[Condition]:
        started.append(twin)
        return [*real(twin), Condition("Injected", "False", "Test", "a check that fails", "test")]

    monkeypatch.setattr(verify_cmd, "verify_local", failing)
    assert main(["demo"]) == 1
    assert "some checks FAILED" in capsys.readouterr().out
    assert started and not started[0].running() and not started[0].bridge_dir.exists()


OWN_HANDLER = """
def handler(event, context):
    if event["path"] != "/ok":
        return {"statusCode": 404, "body": "not here"}
    return {"statusCode": 200, "headers": {"Content-Type": "text/html"}, "body": "<p>my own page</p>"}
"""


def test_verify_judges_any_function_by_what_it_answers_directly(tmp_path: Path) -> None:
    file = _seed_dir(tmp_path)
    (tmp_path / "own.py").write_text(OWN_HANDLER)
    file.write_text(file.read_text().replace("handler.py:lambda_handler", "own.py:handler"))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        served = {c.check: c for c in verify_local(twin, path="/ok")}
        assert [f"{c.check}: {c.message}" for c in served.values() if not c.passed] == []
        assert "18 bytes (the same body as the backend directly)" in served["AppReachesExport"].message
        missing = verify_local(twin, path="/elsewhere")
        backend = next(c for c in missing if c.check == "BackendAnswers")
        assert (backend.status, backend.reason) == ("False", "HTTP404") and "--path" in backend.message
        by = {c.check: c for c in missing}
        app = by["AppReachesExport"]  # nothing to judge its answer by
        assert (app.status, app.reason) == ("Unknown", "NotRunWithoutBackendAnswers"), app
        assert "it needs BackendAnswers[lambda], which is False (HTTP404)" in app.message
        assert app.subject == "lambda → gke"
        accepted = by["ExporterAcceptsImporterCert"]  # the 404 came through the mutual TLS: the handshake passed
        assert (accepted.status, accepted.reason, accepted.subject) == ("True", "HandshakePassed", "lambda → gke")
        assert "the gateway answered HTTP 404" in accepted.message, accepted.message
        # the negative twins: the checks that need no answer from the backend still run, and pass
        for check in ("ExporterRefusesNoClientCert", "ExporterRefusesForeignCA", "PrivateALBUnreachable"):
            assert by[check].passed, by[check]
    finally:
        twin.down()


def test_up_stops_at_once_when_the_handler_cannot_initialise(tmp_path: Path) -> None:
    """The ALB's init check fails (exit 3, not restarted): 'up' reports that component's error, not a timeout."""
    file = _seed_dir(tmp_path)
    (tmp_path / "own.py").write_text("import no_such_module_xyz\n" + OWN_HANDLER)
    file.write_text(file.read_text().replace("handler.py:lambda_handler", "own.py:handler"))
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    with pytest.raises(LocalError) as e:
        twin.up()
    text = str(e.value)
    assert "cannot start" in text and "failed; last lines of" in text and "Runtime.ImportModuleError" in text
    assert "did not become ready" not in text
    assert not twin.running()
    (tmp_path / "own.py").write_text("def handler(:\n")  # another mistake: only this run's error is shown
    with pytest.raises(LocalError) as again:
        twin.up()
    assert "Runtime.UserCodeSyntaxError" in str(again.value) and "ImportModuleError" not in str(again.value)


def test_each_envoy_holds_no_more_inotify_instances_than_up_budgets(seed_twin: LocalTwin) -> None:
    for c in seed_twin._read_status()["components"]:
        proxy = seed_twin.root / c["name"]
        if not (proxy / "bootstrap.yaml").exists():
            continue  # not an Envoy
        docs = [json.loads(f.read_text()) for f in proxy.rglob("*.yaml") if f.is_file() and ".." not in f.parent.name]
        held = sum(os.readlink(fd) == "anon_inode:inotify" for fd in Path(f"/proc/{c['pid']}/fd").iterdir())
        assert 0 < held <= inotify.watched_files(docs) + inotify.PER_PROXY_MARGIN, c["name"]


def test_up_refuses_to_start_when_the_inotify_budget_is_too_small(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = _seed_dir(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    monkeypatch.setattr(inotify, "instances", lambda: (128, 120))
    with pytest.raises(LocalError, match=r"has 8 left .* Fix: sudo sysctl fs.inotify.max_user_instances=1024"):
        twin.up()
    assert not twin.running()
    monkeypatch.setattr(inotify, "instances", lambda: (128, 0))
    try:
        twin.up()
        assert twin.running()
    finally:
        twin.down()


def test_secrets_are_pushed_with_the_variables_up_saw(
    article_twin: tuple[LocalTwin, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    twin, _ = article_twin
    monkeypatch.delenv("HOST_GW_CLUSTER2", raising=False)  # a new shell, after 'local up'
    assert set(twin.refresh_secrets()) >= {"eks/istio-ingressgateway", "gke/istio-egressgateway"}


def test_a_revocation_recorded_but_not_pushed_is_a_stale_secret(tmp_path: Path) -> None:
    from meshbridge.pki import PkiStore
    from meshbridge.verify.local import served_certificates

    file = _seed_dir(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        store = PkiStore(twin.state_dir)
        assert served_certificates(twin).passed
        store.revoke("gke", 0x1234)  # recorded in the store, not pushed
        stale = served_certificates(twin, timeout=0.5)
        assert (stale.status, stale.reason) == ("False", "StaleSecret")
        assert "revoked serials none" in stale.message and "1234" in stale.message
        twin.refresh_secrets()
        assert served_certificates(twin).passed
    finally:
        twin.down()


def test_a_running_twin_warns_when_its_inputs_changed_and_stops_without_the_bridge_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main
    from meshbridge.local.twin import TwinState

    file = _seed_dir(tmp_path)
    manifest = tmp_path / "extra.yaml"
    manifest.write_text((ROOT / "examples" / "article" / "gke.yaml").read_text())
    args = ["-f", str(file)]
    os.environ["HOST_GW_CLUSTER2"] = "ingress.eks.example.com"
    try:
        assert main(["local", "up", *args, "--manifests", f"gke={manifest}"]) == 0
        pids = _pids(LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge"))
        capsys.readouterr()
        assert main(["local", "status", *args]) == 0
        assert "changed since" not in capsys.readouterr().err  # negative twin: nothing changed yet
        file.write_text(file.read_text() + "# edited\n")
        manifest.write_text(manifest.read_text() + "\n# edited\n")
        for command in (["local", "status"], ["local", "curl", "http://lambda.external/hello-world"], ["verify"]):
            option = ["--bridge", str(file)] if command[1:2] == ["curl"] else args  # local curl's -f is --fail
            assert main([*command, *option]) == 0, command
            err = " ".join(capsys.readouterr().err.split())
            assert f"{file} changed since 'local up' (at " in err, command
            fix = f"Fix: meshbridge local down -f {file} && meshbridge local up -f {file} --manifests gke={manifest}"
            assert f"the running twin still uses the old one. {fix}" in err
            assert f"{manifest} changed since 'local up'" in err, command
        assert main(["local", "up", *args]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "changed since 'local up'" in err and "already up" in err
        file.rename(tmp_path / "moved.yaml")  # the bridge file is gone: down still stops everything
        assert main(["local", "status", *args]) == 0
        assert "was moved or deleted since 'local up'" in capsys.readouterr().err
        assert main(["local", "down", *args]) == 0
        assert "supervisor" in capsys.readouterr().out
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(p.alive() for p in pids):
            time.sleep(0.1)
        assert [p for p in pids if p.alive()] == []
    finally:
        os.environ.pop("HOST_GW_CLUSTER2", None)
        TwinState(tmp_path / ".meshbridge").down()


def test_with_the_supervisor_killed_status_and_curl_say_the_twin_is_not_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from meshbridge.cli.main import main

    file = _seed_dir(tmp_path)
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    try:
        twin.up()
        args = ["-f", str(file)]
        bridge = ["--bridge", str(file)]  # local curl's -f is curl's --fail
        assert main(["local", "curl", "http://lambda.external/hello-world", *bridge]) == 0  # negative twin
        capsys.readouterr()
        os.kill(twin._read_status()["supervisor"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and twin.running():
            time.sleep(0.05)
        assert main(["local", "status", *args]) == 1
        captured = capsys.readouterr()
        assert "READY" not in captured.out  # no table of 'no' rows
        err = " ".join(captured.err.split())
        fix = f"meshbridge local down -f {file} && meshbridge local up -f {file}"
        assert "not running" in err and "supervisor" in err and fix in err
        assert main(["local", "curl", "http://lambda.external/hello-world", *bridge]) == 7
        err = " ".join(capsys.readouterr().err.split())
        assert err.startswith("curl: (7)") and "not running" in err and fix in err
        assert main(["local", "proxy-config", "routes", "gke/sleep", *args]) == 2
        assert "not running" in capsys.readouterr().err
    finally:
        twin.down()


def test_routes_table_is_stable_across_reads(seed_twin: LocalTwin) -> None:
    for proxy in ("eks/istio-ingressgateway", "gke/istio-egressgateway", "gke/sleep"):
        tables = {format_proxy_config("routes", seed_twin.config_dump(proxy), wide=True) for _ in range(3)}
        assert len(tables) == 1, proxy
        backend = [line.split()[-1] for line in tables.pop().splitlines() if " backend " in line]
        assert backend == sorted(backend) and len(backend) == 2, proxy


def test_after_up_with_f_the_hints_repeat_it_and_a_command_without_it_finds_the_twin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The new user's path: 'local up -f examples/seed/bridge.yaml', then the suggested curl."""
    from meshbridge.cli.main import main

    (tmp_path / "examples" / "seed").mkdir(parents=True)
    _seed_dir(tmp_path / "examples" / "seed")
    monkeypatch.chdir(tmp_path)
    args = ["-f", "examples/seed/bridge.yaml"]
    try:
        assert main(["local", "up", *args]) == 0
        captured = capsys.readouterr()
        assert "no backend.local" not in captured.err  # every export of the seed has its local backend
        hint = captured.out.splitlines()[-1]
        assert hint.endswith(  # local curl's -f is curl's --fail: its bridge file is --bridge
            "Try: meshbridge local curl -i http://lambda.external/hello-world --bridge examples/seed/bridge.yaml"
        )
        command = hint.split("Try: meshbridge ")[1].split()
        assert main(command) == 0  # the hint works as printed
        assert PAGE.decode() in capsys.readouterr().out
        assert main(command[:-2]) == 2  # without -f: the folder it looked in, and the twin that runs
        err = " ".join(capsys.readouterr().err.split())
        assert f"never started with the state folder {tmp_path / '.meshbridge'} (nothing in" in err
        assert "Twins started below this folder: --bridge examples/seed/bridge.yaml (running)" in err
        assert main(["local", "up", *args]) == 2
        assert "Fix: stop it first: meshbridge local down -f examples/seed/bridge.yaml" in capsys.readouterr().err
    finally:
        assert main(["local", "down", *args]) == 0


def test_an_export_without_a_local_backend_is_said_at_up_with_what_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml

    from meshbridge.cli.main import main

    file = _seed_dir(tmp_path)
    data = yaml.safe_load(file.read_text())
    orders = {**data["spec"]["exports"][0], "name": "orders", "host": "orders.external"}
    orders["backend"] = {"host": "orders.internal.example.com", "port": 8080, "tls": {"mode": "DISABLE"}}
    data["spec"]["exports"].insert(0, orders)  # first, so that the hint must skip it
    del data["spec"]["aws"]
    file.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["local", "up"]) == 0
        captured = capsys.readouterr()
        err = " ".join(captured.err.split())
        assert (
            "note: spec.exports[0] orders (orders.external) has no backend.local, so the twin runs no ALB or Lambda "
            "for it; its gateway cannot resolve orders.internal.example.com" in err
        )
        assert "'local curl http://orders.external/hello-world' answers 503 no healthy upstream (UH)" in err
        assert "Fix: set spec.exports[0].backend.local.handler to FILE.py:FUNCTION" in err
        assert "spec.exports[1]" not in err  # negative twin: lambda has its local backend
        hint = captured.out.splitlines()[-1]
        assert hint.endswith("Try: meshbridge local curl -i http://lambda.external/hello-world")  # the one served
        assert main(["local", "curl", "-i", "http://orders.external/hello-world"]) == 0
        curled = capsys.readouterr()
        assert curled.out.startswith("HTTP/1.1 503 Service Unavailable")  # as the note said
        said = " ".join(curled.err.split())  # and the curl says why again
        assert "note: spec.exports[0] orders (orders.external) has no backend.local" in said
        assert main(["local", "curl", "-s", "-o", "/dev/null", "http://lambda.external/hello-world"]) == 0
        assert "backend.local" not in capsys.readouterr().err  # the negative twin: the served export
        deadline = time.monotonic() + 5  # Envoy flushes its access log every 0.2 s
        while '" 503 UH ' not in capsys.readouterr().out and time.monotonic() < deadline:
            assert main(["local", "logs", "--access", "eks/istio-ingressgateway"]) == 0
            time.sleep(0.1)
        assert main(["local", "logs", "--access", "eks/istio-ingressgateway"]) == 0
        assert '" 503 UH ' in capsys.readouterr().out
        assert main(["local", "curl", "http://lambda.external/hello-world"]) == 0
        assert PAGE.decode() in capsys.readouterr().out
    finally:
        main(["local", "down"])


def test_status_shows_the_ports_each_component_really_binds(
    seed_twin: LocalTwin, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    from meshbridge.cli.main import main

    args = ["-f", str(seed_twin.bridge_file)]
    capsys.readouterr()
    assert main(["local", "status", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 100
    rows = {line.split()[0]: line for line in lines[1:]}
    offset = 0 if os.geteuid() == 0 else 10000
    assert " 443→8443, admin 15000 " in rows["eks/istio-ingressgateway"]  # the load balancer's 443
    sidecar = "80" if offset == 0 else "80→10080"
    assert f" {sidecar}, admin 15000 " in rows["gke/sleep"]
    assert main(["local", "status", "--json", *args]) == 0
    doc = json.loads(capsys.readouterr().out)
    ports = [(c["kind"], p) for c in doc["components"] for p in c["ports"]]
    assert len(ports) == 2 + 3 * 2 + 2  # DNS of each mesh, a listener and the admin per Envoy, the ALB's two

    def bound(address: str, port: int, udp: bool) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM) as s:
            if not udp:  # TIME_WAIT holds nothing; on UDP it would share the port with a server that sets it too
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                return True
        return False

    assert [p for kind, p in ports if not bound(p["address"], p["port"], kind == "dns")] == []
    # negative twin: the port above each one is free, so 'bound' tells them apart
    assert [p for kind, p in ports if bound(p["address"], p["port"] + 1, kind == "dns")] == []


def test_up_names_each_object_once_and_says_what_its_path_check_found_instead_of_try(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The seed's rendered documents as manifests, with eks's route sent twice to a host nobody defines and a gke
    ServiceEntry with a TLS port: each route warning is said once, the ServiceEntry by its own name, and the last
    line says what the path check predicts and how to see it, not 'Try:'. Its twin is the seed, whose last line is
    the 'Try:' hint (test_after_up_with_f_the_hints_repeat_it_and_a_command_without_it_finds_the_twin)."""
    import yaml

    from meshbridge.cli.main import main
    from meshbridge.render import render_bridge

    file = _seed_dir(tmp_path)
    docs = render_bridge(load_bridge(file), None)
    eks = [dict(d) for d in docs["eks"]]
    (vs,) = [d for d in eks if d["kind"] == "VirtualService"]
    route = {"destination": {"host": "nowhere.example", "port": {"number": 443}}}
    vs["spec"]["http"] = [{"match": [{"uri": {"prefix": "/a"}}], "route": [route]}, {"route": [route]}]
    tls_entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "lambda-tls", "namespace": "istio-egress"},
        "spec": {"hosts": ["tls.lambda.external"], "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}]},
    }
    (tmp_path / "eks.yaml").write_text(yaml.safe_dump_all(eks))
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all([*docs["gke"], tls_entry]))
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["local", "up", "--manifests", "eks=eks.yaml", "--manifests", "gke=gke.yaml"]) == 0
        captured = capsys.readouterr()
        notes = [line for line in captured.err.splitlines() if line.startswith("note: ")]
        assert len(notes) == len(set(notes)), notes
        missing = [n for n in notes if "routes to outbound|443||nowhere.example, which this proxy does not have" in n]
        assert len(missing) == 1, notes
        assert (
            "note: gke/sleep: translate: ServiceEntry istio-egress/lambda-tls spec.ports: TLS port 443 of "
            "tls.lambda.external: only HTTP sidecar routes are modelled locally" in notes
        )
        last = captured.out.splitlines()[-1]
        assert "Try:" not in captured.out
        assert "but the path check predicts that 1 request(s) stop (notes above): export lambda at " in last
        assert last.endswith("(NC). See each hop with: meshbridge local curl -v http://lambda.external/a")
    finally:
        main(["local", "down"])
