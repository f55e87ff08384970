"""The seed with its importer on an ambient data plane (``meshes.gke.dataplane: ambient``) in the local twin, real
Envoy and real TLS: the waypoint runs istiod's own configuration (the oracle, :mod:`meshbridge.local.waypoint`), the
app has no sidecar and its request reaches the waypoint's listener that stands for ztunnel's capture (ztunnel's
HBONE hop is not run: docs/ambient.md). The app gets the Lambda's page and every verify check passes; its negative
twins: an exporter that trusts another CA refuses the waypoint's certificate (the app gets 503, verify names the
exporter's refusal), and without the oracle 'local up' refuses with what is missing and starts nothing (a caller
the waypoint's policy does not admit, 403: tests/integration/test_waypoint_envoy.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from meshbridge.errors import LocalError
from meshbridge.istiod.oracle import OracleUnavailable, ensure_oracle
from meshbridge.local.certmanager import issuing_bridge, twin_credentials, twin_store
from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin, UpReport
from meshbridge.pki import issue_ca
from meshbridge.render.bridge import render_bridge
from meshbridge.spec import load_bridge
from meshbridge.verify.local import verify_local
from tests.integration.twin_support import seed_folder

pytestmark = [pytest.mark.integration, pytest.mark.oracle]


def ambient_twin(folder: Path) -> LocalTwin:
    file, _ = seed_folder(folder)
    data = yaml.safe_load(file.read_text())
    gke = data["spec"]["meshes"]["gke"]
    gke["dataplane"] = "ambient"
    gke["istio"] = {"version": "1.31.0"}
    file.write_text(yaml.safe_dump(data))
    return LocalTwin(load_bridge(file), file, file.parent / ".meshbridge")


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalTwin, UpReport]]:
    try:
        ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
    twin = ambient_twin(tmp_path_factory.mktemp("ambient"))
    try:
        yield twin, twin.up()
    finally:
        twin.down()


@pytest.fixture
def twin(started: tuple[LocalTwin, UpReport]) -> LocalTwin:
    return started[0]


def test_the_path_simulation_follows_the_app_through_the_waypoints_policy(started: tuple[LocalTwin, UpReport]) -> None:
    """The waypoint's RBAC admits the app by the filter state HBONE would set (its ``filter_state`` principal)."""
    report = started[1]
    assert report.notices == [] and report.stopped == []
    assert report.paths["lambda"].path == "/hello-world" and report.paths["lambda"].routed


def test_the_app_gets_the_lambda_page_through_the_waypoint(twin: LocalTwin) -> None:
    r = curl(twin.app_view(), "http://lambda.external/hello-world")
    assert r.status == 200 and b"Hello World from Lambda" in r.body
    assert [s.name for s in twin.status() if s.mesh == "gke"] == ["gke/istio-egressgateway"]  # no sidecar
    assert any(line.startswith("* ztunnel (not run by the twin; no HBONE)") for line in r.trace)
    with pytest.raises(LocalError, match=r"gke/sleep has no proxy of its own .* ask its waypoint, gke/istio-egress"):
        twin.config_dump("sleep")
    assert twin.config_dump("gke/istio-egressgateway")["configs"]  # its twin: the waypoint answers


def test_every_verify_check_passes(twin: LocalTwin) -> None:
    conditions = verify_local(twin)
    failed = [f"{c.check}: {c.reason}: {c.message}" for c in conditions if c.status != "True"]
    assert not failed, "\n".join(failed)


def test_without_the_oracle_up_refuses_an_ambient_importer_with_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_go() -> Path:
        raise OracleUnavailable("Go is not installed (the oracle is built from tools/istio-oracle)")

    monkeypatch.setattr("meshbridge.local.waypoint.ensure_oracle", no_go)
    twin = ambient_twin(tmp_path)
    with pytest.raises(LocalError) as refused:
        twin.up()
    assert str(refused.value) == (
        "mesh gke has dataplane: ambient: the twin runs its waypoint on istiod's own configuration, which needs the "
        "istiod oracle: Go is not installed (the oracle is built from tools/istio-oracle)"
    )
    assert not twin.running() and not (twin.root / "plan.json").exists()


def test_an_exporter_that_trusts_another_ca_refuses_the_waypoint_and_verify_names_it(tmp_path: Path) -> None:
    try:
        ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
    twin = ambient_twin(tmp_path)
    store = twin_store(twin.bridge, twin.state_dir)
    store.issue(issuing_bridge(twin.bridge))
    eks = [dict(d) for d in render_bridge(twin.bridge, twin_credentials(twin.bridge, store))["eks"]]
    (secret,) = [d for d in eks if d["kind"] == "Secret"]
    secret["data"]["cacert"] = base64.b64encode(issue_ca("another CA").cert_pem).decode()
    manifests = tmp_path / "eks.yaml"
    manifests.write_text(yaml.safe_dump_all(eks))
    try:
        twin.up({"eks": [manifests]})
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        conditions = {c.check: c for c in verify_local(twin)}
    finally:
        twin.down()
    assert r.status == 503
    assert conditions["ExporterAcceptsImporterCert"].status == "False"
    assert conditions["AppReachesExport"].status == "False"
    assert conditions["AppReachesExport"].reason == "HTTP503"


def test_on_istiods_translation_of_the_other_proxies_too(tmp_path: Path) -> None:
    """``--translator istiod``: the exporter's gateway runs istiod's configuration too (the waypoint always does)."""
    try:
        ensure_oracle()
    except OracleUnavailable as e:
        pytest.skip(str(e))
    twin = ambient_twin(tmp_path)
    try:
        report = twin.up(translator="istiod")
        r = curl(twin.app_view(), "http://lambda.external/hello-world")
        failed = [f"{c.check}: {c.reason}" for c in verify_local(twin) if c.status != "True"]
    finally:
        twin.down()
    assert report.notices == []
    assert r.status == 200 and b"Hello World from Lambda" in r.body
    assert failed == []
