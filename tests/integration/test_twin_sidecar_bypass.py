"""The importer's VirtualService lists the egress Gateway but not ``mesh``: on real Envoy the app's sidecar sends
lambda.external itself, plain HTTP to the exporter's mutual-TLS port, and the curl gets 503 (the exporter resets the
connection). 'local up' predicts that stop instead of 'Try:', and verify's failed AppReachesExport says why; the
negative twin (``mesh`` listed) runs, predicts nothing and answers 200."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshbridge.local.curl import curl
from meshbridge.local.twin import LocalTwin
from meshbridge.pki import PkiStore
from meshbridge.verify.local import verify_local
from tests.integration.test_verify_runs import _rendered_manifests
from tests.integration.twin_support import seed_folder

pytestmark = pytest.mark.integration

URL = "http://lambda.external/hello-world"


def _gateways(listed: list[str]) -> Any:
    def edit(docs: dict[str, list[dict[str, Any]]]) -> None:
        for d in docs["gke"]:
            if d["kind"] == "VirtualService":
                d["spec"]["gateways"] = listed

    return edit


def _up(tmp_path: Path, listed: list[str]) -> tuple[LocalTwin, list[str]]:
    file, bridge = seed_folder(tmp_path)
    store = PkiStore(tmp_path / ".meshbridge")
    store.issue(bridge)
    twin = LocalTwin(bridge, file, tmp_path / ".meshbridge")
    gke = _rendered_manifests(tmp_path, bridge, store, _gateways(listed))["gke"]
    for written in gke:
        written.chmod(0o600)  # the rendered Secrets hold the egress gateway's private key
    report = twin.up({"gke": gke})
    return twin, [str(h) for h in report.stopped]


def test_the_path_check_predicts_the_503_the_app_gets(tmp_path: Path) -> None:
    twin, stopped = _up(tmp_path, ["istio-egress/istio-egressgateway"])
    try:
        (stop,) = stopped
        assert stop.startswith("eks/istio-ingressgateway: GET http://lambda.external:8443/hello-world → NR:")
        assert "gke/sleep sent it there itself (outbound|80||lambda.external), not through gke/istio-egressgateway" in (
            stop
        )
        r = curl(twin.app_view(), URL)
        assert r.status == 503
        assert b"connection termination" in r.body  # the exporter reset the plain-text connection
        (app,) = [c for c in verify_local(twin) if c.check == "AppReachesExport"]
        assert app.status == "False"
        assert "the running configuration predicts why: eks/istio-ingressgateway:" in app.message
        assert "(lint MB122)" in app.message
    finally:
        twin.down()


def test_negative_twin_with_mesh_listed_nothing_is_predicted_and_the_app_gets_200(tmp_path: Path) -> None:
    twin, stopped = _up(tmp_path, ["mesh", "istio-egress/istio-egressgateway"])
    try:
        assert stopped == []
        assert curl(twin.app_view(), URL).status == 200
    finally:
        twin.down()
