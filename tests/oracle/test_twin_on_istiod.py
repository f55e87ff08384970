"""The local twin running istiod's own configuration (``local up --translator istiod``): real Envoy, real TLS,
real awslambdaric, on what Istio's code builds for the seed and for the article's own manifests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.cli.common import SEED_FILES, seed_text
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.render import render_bridge
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.builders import ROOT

pytestmark = [pytest.mark.oracle, pytest.mark.integration]
PAGE = b"Hello World from Lambda"


@pytest.fixture(scope="module")
def istiod_twin(oracle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTwin]:
    work = tmp_path_factory.mktemp("seed-istiod")
    for name in SEED_FILES:
        (work / name).write_text(seed_text(name))
    file = work / "bridge.yaml"
    twin = LocalTwin(load_bridge(file), file, work / ".meshbridge")
    try:
        twin.up(translator="istiod")
        yield twin
    finally:
        twin.down()


def test_the_app_gets_the_lambda_page_on_istiods_configuration(istiod_twin: LocalTwin) -> None:
    r = curl(istiod_twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 200 and PAGE in r.body
    assert istiod_twin.plan()["translator"] == "istiod"


def test_every_verify_check_passes_on_istiods_configuration(istiod_twin: LocalTwin) -> None:
    conditions = verify_local(istiod_twin)
    failed = [f"{c.type}: {c.reason}: {c.message}" for c in conditions if c.status != "True"]
    assert not failed, "\n".join(failed)


def test_the_sidecar_runs_istiods_listeners_not_meshbridges(istiod_twin: LocalTwin) -> None:
    dump = istiod_twin.config_dump("gke/sleep")
    (listeners,) = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")]
    names = sorted(x["name"] for x in listeners.get("dynamic_listeners", []))
    # istiod builds a TLS listener for the egress gateway Service's https port; meshbridge's sidecar does not
    assert names == ["0.0.0.0_443", "0.0.0.0_80"]


def test_a_wrong_sni_in_the_article_breaks_the_path_on_istiods_configuration_too(oracle: Path, tmp_path: Path) -> None:
    """The negative twin: istiod's configuration is not a path that always works. The article's importer
    DestinationRule with an SNI the exporter's Gateway does not serve: the exporter resets the handshake (no
    filter chain for that SNI), the app gets a 503. The article's own path stops too on istiod 1.31's
    configuration, one hop later (istiod verifies the ALB's certificate against the route's host, which the
    article's ALB certificate does not name), so the test asserts where this one stops: at the exporter's
    listener, which counts a connection it found no filter chain for."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    article = tmp_path / "examples" / "article"
    docs = list(yaml.safe_load_all((article / "gke.yaml").read_text()))
    for d in docs:
        if d and d.get("kind") == "DestinationRule" and d["spec"]["host"] == "lambda.external":
            for pl in d["spec"]["trafficPolicy"]["portLevelSettings"]:
                pl["tls"]["sni"] = "not-served.example"
    (article / "gke.yaml").write_text(yaml.safe_dump_all(docs))
    file = article / "bridge.yaml"
    twin = LocalTwin(load_bridge(file), file, tmp_path / ".meshbridge")
    os.environ["HOST_GW_CLUSTER2"] = "ingress.eks.example.com"
    try:
        twin.up({m: [article / f"{m}.yaml"] for m in ("eks", "gke")}, translator="istiod")
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 503
        stats = twin.stats("eks/istio-ingressgateway")
        assert any(k.endswith(".no_filter_chain_match") and v > 0 for k, v in stats.items()), sorted(
            k for k in stats if "filter_chain" in k
        )
    finally:
        twin.down()
        os.environ.pop("HOST_GW_CLUSTER2", None)


def test_local_status_says_whose_configuration_runs(istiod_twin: LocalTwin, capsys: pytest.CaptureFixture[str]) -> None:
    from meshbridge.cli.main import main

    capsys.readouterr()
    assert main(["local", "status", "--json", "-f", str(istiod_twin.bridge_file)]) == 0
    assert '"translator": "istiod"' in capsys.readouterr().out


def test_a_serviceentry_with_a_tls_port_443_runs_on_istiods_configuration(oracle: Path, tmp_path: Path) -> None:
    """The seed's importer documents given as manifests without their Secret (the twin fills it from meshbridge's
    PKI, and istiod's references to it are served), plus a ServiceEntry with a TLS port 443: istiod builds the
    sidecar both 0.0.0.0_443 and the VIP's 240.240.x.y_443; the twin folds the VIP's into the port's listener (one
    address, one port), so the sidecar takes its configuration and the app's call completes. Its twin above: a
    wrong SNI still breaks the path (503)."""
    for name in SEED_FILES:
        (tmp_path / name).write_text(seed_text(name))
    file = tmp_path / "bridge.yaml"
    bridge = load_bridge(file)
    docs = [d for d in render_bridge(bridge, None)["gke"]]
    tls_entry = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "ServiceEntry",
        "metadata": {"name": "lambda-tls", "namespace": "istio-egress"},
        "spec": {
            "hosts": ["tls.lambda.external"],
            "ports": [{"number": 443, "name": "tls", "protocol": "TLS"}],
            "resolution": "DNS",
        },
    }
    (tmp_path / "gke.yaml").write_text(yaml.safe_dump_all([*docs, tls_entry]))
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    try:
        report = twin.up({"gke": [tmp_path / "gke.yaml"]}, translator="istiod")
        assert any("Secret istio-egress/mtls-credential is not in the manifests" in n for n in report.notices)
        dump = twin.config_dump("gke/sleep")
        (listeners,) = [c for c in dump["configs"] if c["@type"].endswith("ListenersConfigDump")]
        names = sorted(x["name"] for x in listeners.get("dynamic_listeners", []))
        assert names == ["0.0.0.0_443", "0.0.0.0_80"]
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        assert r.status == 200 and PAGE in r.body, r.body
    finally:
        twin.down()
